-- boxoffice core schema (PostgreSQL). Keep equivalent to ../sqlite/0001_core.sql.
-- Times are BIGINT milliseconds since the Unix epoch (UTC) so that both backends
-- share one SQL dialect through sqlx's Any driver (see docs/adr/0002).

-- Server secrets generated on first start (JWT secret, ticket signing seed).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,          -- stored lower-cased
    name          TEXT NOT NULL,
    phone         TEXT,
    role          TEXT NOT NULL CHECK (role IN ('customer', 'staff', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE venues (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    city              TEXT NOT NULL,
    address           TEXT NOT NULL,
    timezone          TEXT NOT NULL,
    layout            TEXT NOT NULL,             -- JSON, the validated layout
    seat_count        BIGINT NOT NULL,
    standing_capacity BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    performer   TEXT NOT NULL,
    genre       TEXT NOT NULL,
    tags        TEXT NOT NULL,                   -- JSON array of strings
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE shows (
    id                   TEXT PRIMARY KEY,
    event_id             TEXT NOT NULL REFERENCES events (id),
    venue_id             TEXT NOT NULL REFERENCES venues (id),
    starts_at            BIGINT NOT NULL,
    sales_start          BIGINT NOT NULL,
    prices               TEXT NOT NULL,          -- JSON {category: Money}
    hold_ttl_seconds     BIGINT NOT NULL CHECK (hold_ttl_seconds BETWEEN 1 AND 3600),
    max_tickets_per_user BIGINT NOT NULL CHECK (max_tickets_per_user >= 1),
    waiting_room         TEXT NOT NULL,          -- JSON {enabled, admit_per_minute}
    status               TEXT NOT NULL CHECK (status IN ('ON_SALE', 'PAUSED', 'CANCELLED')),
    version              BIGINT NOT NULL DEFAULT 0, -- grows with every inventory change
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX shows_by_event ON shows (event_id, starts_at);

-- One row per seat of a show. The primary key makes invariant 1 structural:
-- a seat row carries at most one hold_id or booking_id.
CREATE TABLE show_seats (
    show_id    TEXT NOT NULL REFERENCES shows (id),
    seat_id    TEXT NOT NULL,
    section    TEXT NOT NULL,
    category   TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('AVAILABLE', 'HELD', 'BOOKED')),
    hold_id    TEXT,
    booking_id TEXT,
    held_until BIGINT,                           -- NULL while the hold is PAYING: it never lapses then
    PRIMARY KEY (show_id, seat_id),
    CHECK ((status = 'AVAILABLE') = (hold_id IS NULL))
);
CREATE INDEX show_seats_by_hold ON show_seats (hold_id);

-- Standing sections: counters changed only by conditional updates; the CHECK
-- is the last line of defence for invariant 2.
CREATE TABLE show_standing (
    show_id  TEXT NOT NULL REFERENCES shows (id),
    section  TEXT NOT NULL,
    category TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    held     BIGINT NOT NULL DEFAULT 0,
    booked   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (show_id, section),
    CHECK (held >= 0 AND booked >= 0 AND held + booked <= capacity)
);

-- Places held or booked per user and show (invariant 6), kept by conditional updates.
CREATE TABLE user_show_tickets (
    user_id TEXT NOT NULL,
    show_id TEXT NOT NULL,
    tickets BIGINT NOT NULL CHECK (tickets >= 0),
    PRIMARY KEY (user_id, show_id)
);

CREATE TABLE holds (
    id                 TEXT PRIMARY KEY,
    show_id            TEXT NOT NULL REFERENCES shows (id),
    user_id            TEXT NOT NULL REFERENCES users (id),
    status             TEXT NOT NULL CHECK (status IN ('ACTIVE', 'PAYING', 'CONFIRMED', 'RELEASED', 'EXPIRED')),
    items              TEXT NOT NULL,            -- JSON: seats with prices, standing quantities
    ticket_count       BIGINT NOT NULL,
    total_amount       BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    payment_started_at BIGINT,
    booking_id         TEXT,
    ended_at           BIGINT
);
CREATE INDEX holds_by_status_due ON holds (status, expires_at);
CREATE INDEX holds_by_show_status_due ON holds (show_id, status, expires_at);
CREATE INDEX holds_by_user ON holds (user_id, show_id);

CREATE TABLE payments (
    id                TEXT PRIMARY KEY,
    hold_id           TEXT NOT NULL UNIQUE,      -- one hold, at most one charge
    gateway           TEXT NOT NULL,
    gateway_reference TEXT NOT NULL,
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('CAPTURED', 'REFUNDED')),
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE bookings (
    id           TEXT PRIMARY KEY,
    hold_id      TEXT NOT NULL UNIQUE REFERENCES holds (id),
    show_id      TEXT NOT NULL REFERENCES shows (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    status       TEXT NOT NULL CHECK (status IN ('CONFIRMED', 'CANCELLED')),
    items        TEXT NOT NULL,
    total_amount BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    payment_id   TEXT NOT NULL REFERENCES payments (id),
    created_at   BIGINT NOT NULL,
    cancelled_at BIGINT
);
CREATE INDEX bookings_by_user ON bookings (user_id, id);
CREATE INDEX bookings_by_show ON bookings (show_id, id);

CREATE TABLE tickets (
    id            TEXT PRIMARY KEY,
    booking_id    TEXT NOT NULL REFERENCES bookings (id),
    show_id       TEXT NOT NULL,
    seat_id       TEXT,
    section       TEXT NOT NULL,
    code          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('VALID', 'CANCELLED')),
    checked_in_at BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX tickets_by_booking ON tickets (booking_id);

-- Idempotency-Key records: claimed before the work, completed in the same
-- transaction as the effect they guard.
CREATE TABLE idempotency_keys (
    user_id         TEXT NOT NULL,
    route           TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('IN_PROGRESS', 'DONE')),
    response_status BIGINT,
    response_body   TEXT,
    locked_at       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, route, key)
);

CREATE TABLE audit_log (
    seq           BIGSERIAL PRIMARY KEY,         -- total order for "newest first"
    id            TEXT NOT NULL UNIQUE,
    at            BIGINT NOT NULL,
    action        TEXT NOT NULL,
    actor_user_id TEXT,
    show_id       TEXT,
    hold_id       TEXT,
    booking_id    TEXT,
    data          TEXT NOT NULL
);
CREATE INDEX audit_by_show ON audit_log (show_id, seq);
CREATE INDEX audit_by_booking ON audit_log (booking_id, seq);
CREATE INDEX audit_by_user ON audit_log (actor_user_id, seq);

-- The sandbox payment gateway's own ledger. It plays a third party, so it is
-- written in its own transactions, never in ours.
CREATE TABLE sandbox_charges (
    id              TEXT PRIMARY KEY,
    hold_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('CAPTURED', 'REFUNDED')),
    created_at      BIGINT NOT NULL
);
CREATE INDEX sandbox_charges_by_hold ON sandbox_charges (hold_id);
