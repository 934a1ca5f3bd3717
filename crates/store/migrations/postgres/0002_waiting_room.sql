-- The virtual waiting room (PostgreSQL; with REDIS_URL it lives in Redis).
-- Keep equivalent in both backends. Times are BIGINT milliseconds.

-- One row per show with a waiting room: the admission clock (see the domain
-- module `waiting_room`). Joins lock this row, so places are handed out one
-- at a time per show.
CREATE TABLE queue_rooms (
    show_id          TEXT PRIMARY KEY REFERENCES shows (id),
    pre_count        BIGINT NOT NULL,
    tail             BIGINT NOT NULL,
    opened           BIGINT NOT NULL CHECK (opened IN (0, 1)),
    anchor_place     BIGINT NOT NULL,
    anchor_ms        BIGINT NOT NULL,
    admit_per_minute BIGINT NOT NULL CHECK (admit_per_minute >= 1),
    paused           BIGINT NOT NULL CHECK (paused IN (0, 1)),
    sales_start      BIGINT NOT NULL,
    config_version   BIGINT NOT NULL
);

-- A user's place in a show's queue. `place` is NULL for the pre-queue until
-- the opening ranks it by `pre_key`. A user has one live ticket per show; an
-- expired one is kept and a new one joins at the back.
CREATE TABLE queue_tickets (
    id          TEXT PRIMARY KEY,
    show_id     TEXT NOT NULL REFERENCES shows (id),
    user_id     TEXT NOT NULL,
    place       BIGINT,
    pre_key     BIGINT,
    joined_at   BIGINT NOT NULL,
    admitted_at BIGINT
);
CREATE INDEX queue_tickets_by_user ON queue_tickets (show_id, user_id, joined_at);
CREATE INDEX queue_tickets_pre_queue ON queue_tickets (show_id, pre_key);

-- Proof-of-work challenges already used (replays are refused until expiry).
CREATE TABLE pow_spent (
    challenge_id TEXT PRIMARY KEY,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX pow_spent_by_expiry ON pow_spent (expires_at);
