-- Incoming payment webhooks (issue 6). A gateway (Stripe) tells us about a
-- payment by an event it may deliver more than once; each event ID is
-- recorded in the same transaction as its effect, so a replay finds it and
-- does nothing again. Keep equivalent in both backends. Times are BIGINT
-- milliseconds.
CREATE TABLE payment_webhook_events (
    gateway     TEXT NOT NULL,    -- stripe
    event_id    TEXT NOT NULL,    -- the gateway's event ID (evt_…)
    event_type  TEXT NOT NULL,    -- payment_intent.succeeded…
    hold_id     TEXT,             -- the hold the payment was for, when known
    outcome     TEXT,             -- booked, already_confirmed, refunded, ignored…
    received_at BIGINT NOT NULL,
    PRIMARY KEY (gateway, event_id)
);
-- Set once a refund of the hold's charge was decided (a late payment whose
-- places were sold, or a charge whose booking could not be written). A hold
-- with a refund under way is never booked afterwards: invariant 3.
ALTER TABLE holds ADD COLUMN refund_started_at BIGINT;
