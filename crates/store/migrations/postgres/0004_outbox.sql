-- The transactional outbox (issue 6). What other systems must hear about a
-- change (an e-mail, an SMS, a NATS message…) is written in the same
-- transaction as the change, one row per channel; a dispatcher delivers the
-- rows at least once, with retries and backoff, and marks them delivered.
-- Keep equivalent in both backends. Times are BIGINT milliseconds.
CREATE TABLE outbox (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,  -- obx_…, this delivery
    event_id        TEXT NOT NULL,         -- dom_…, shared by the event's channels; consumers dedup on it
    event_type      TEXT NOT NULL,         -- booking.confirmed, booking.cancelled, payment.refunded…
    channel         TEXT NOT NULL,         -- email, events…
    payload         TEXT NOT NULL,         -- JSON
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,       -- due from then (backoff after a failure)
    claimed_until   BIGINT,                -- a dispatcher works on it until then (its lease)
    delivered_at    BIGINT,
    failed_at       BIGINT,                -- given up after the retry window
    last_error      TEXT
);
-- The dispatcher's question: what is due, oldest first.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_by_event ON outbox (event_id);
