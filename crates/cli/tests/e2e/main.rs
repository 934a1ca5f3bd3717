//! Black-box end-to-end tests of `boxoffice serve`, written against the HTTP
//! contract (`API.md`) only. Every test starts its own server on a fresh
//! database and runs once per store (SQLite and PostgreSQL) through
//! `both_backends!`.
//!
//! Run: `cargo test -p boxoffice --test e2e -- --test-threads 2`
//! (`TEST_LOG=1` shows the server logs; PostgreSQL must be reachable at
//! `TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! Layout: `common` (harness), then one module per area of the contract.
//! `redis` runs `redis-server` processes of its own (PostgreSQL backend only),
//! and so does `rate_limits` for its two-node test; `nats` runs
//! `nats-server -js` processes of its own, `mail` an SMTP server.
//! `stripe_support` is shared by the tests on the fake Stripe (`payments`,
//! `webhooks`, `stripe_crash`).

#[macro_use]
mod common;

mod auth;
mod bad_input;
mod browse;
mod checkin;
mod crash;
mod flow;
mod idempotency;
mod late_payments;
mod mail;
mod nats;
mod nodes;
mod pages;
mod payments;
mod race;
mod rate_limits;
mod redis;
mod search;
mod seat_stream;
mod sms;
mod stripe_crash;
mod stripe_support;
mod tickets;
mod tls;
mod waiting_room;
mod webhooks;
mod webhooks_out;
