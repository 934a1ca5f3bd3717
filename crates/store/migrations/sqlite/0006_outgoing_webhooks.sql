-- Outgoing webhooks (issue 6): admins subscribe URLs to domain events; a
-- `webhooks` outbox row of each event is fanned out into one delivery per
-- matching subscription, which a sender POSTs (signed) until it answers 2xx
-- or the retry window passes. Every attempt is logged for the admin.
-- Keep equivalent in both backends. Times are BIGINT milliseconds.
CREATE TABLE webhook_subscriptions (
    id          TEXT PRIMARY KEY,      -- whk_…
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,         -- whsec_…, the HMAC-SHA256 key
    event_types TEXT NOT NULL,         -- JSON array; empty = every type
    description TEXT NOT NULL DEFAULT '',
    active      BIGINT NOT NULL DEFAULT 1, -- 0 = paused
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT                 -- deleted subscriptions are kept for their log
);
CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,  -- whd_…
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id),
    event_id        TEXT NOT NULL,         -- dom_…, sent as Boxoffice-Event-Id
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,         -- JSON, the outbox payload
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,                -- a sender works on it until then (its lease)
    delivered_at    BIGINT,
    failed_at       BIGINT,                -- given up after the retry window
    last_status_code BIGINT,
    last_error      TEXT,
    -- The fan-out may run twice for one event (at least once): one delivery.
    UNIQUE (subscription_id, event_id)
);
-- The sender's question: what is due, oldest first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
-- The admin's log of one subscription, newest first.
CREATE INDEX webhook_deliveries_of_subscription ON webhook_deliveries (subscription_id, id);
CREATE TABLE webhook_attempts (
    delivery_id   TEXT NOT NULL,
    attempt       BIGINT NOT NULL,        -- 1, 2, …
    at            BIGINT NOT NULL,
    status_code   BIGINT,                 -- none when no answer came
    duration_ms   BIGINT NOT NULL,
    error         TEXT,
    response_body TEXT,                   -- its first KiB
    PRIMARY KEY (delivery_id, attempt)
);
