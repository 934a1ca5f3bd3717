-- The search index of every node asks every 500 ms for the events whose
-- row, or one of whose shows' rows, changed since its last look
-- (docs/adr/0015-search-index.md): both lookups go by `updated_at`.
-- Keep equivalent in both backends.
CREATE INDEX events_by_updated_at ON events (updated_at);
CREATE INDEX shows_by_updated_at ON shows (updated_at);
