//! The `stripe` gateway under faults: each test starts a fake Stripe
//! (`fake-stripe`, in this process), points a real server at it with
//! `BOXOFFICE_STRIPE_SECRET_KEY` and `BOXOFFICE_STRIPE_API_BASE`, books
//! through the public API only, and then checks the money against the
//! bookings: charges at the fake = bookings + refunds, no seat sold twice,
//! and the audit trail saying what happened to each payment.

use std::time::{Duration, Instant};

use fake_stripe::Fault;
use serde_json::json;

use crate::common::*;
use crate::stripe_support::StripeSetup;

both_backends!(
    stripe_decline_releases_the_hold,
    stripe_timeout_then_a_later_retry_books_once,
    stripe_server_errors_are_retried_within_the_request,
    stripe_lost_response_books_once,
    stripe_lost_response_in_an_outage_books_once_on_retry,
    stripe_breaker_fails_fast_and_recovers,
);

const SECRET_KEY: &str = "sk_test_boxoffice_e2e";
/// One attempt's timeout: short, so that timeouts keep the tests quick, long
/// enough for a healthy call on a busy 2-core machine running debug builds.
const PAYMENT_TIMEOUT_MS: u64 = 1_000;
/// A confirmation makes at most two guarded calls (charge, look-up), each
/// within two attempt timeouts; the rest is the server's own work.
const CONFIRM_WORST_CASE: Duration = Duration::from_millis(4 * PAYMENT_TIMEOUT_MS + 3_000);
/// Failed attempts in a row that open the breaker: three 500s (one
/// confirmation's worth of attempts) in the breaker test.
const BREAKER_FAILURES: &str = "3";
/// For the timeout test, whose four timed-out attempts (charge and look-up)
/// are not about the breaker.
const BREAKER_FAILURES_OUT_OF_THE_WAY: &str = "10";
const BREAKER_COOL_DOWN_MS: u64 = 1_500;

async fn start(backend: Backend) -> StripeSetup {
    start_with_breaker(backend, BREAKER_FAILURES).await
}

async fn start_with_breaker(backend: Backend, breaker_failures: &str) -> StripeSetup {
    let timeout = PAYMENT_TIMEOUT_MS.to_string();
    let cool_down = BREAKER_COOL_DOWN_MS.to_string();
    StripeSetup::start(
        backend,
        SECRET_KEY,
        &[
            ("BOXOFFICE_PAYMENT_TIMEOUT_MS", &timeout),
            ("BOXOFFICE_PAYMENT_BREAKER_FAILURES", breaker_failures),
            ("BOXOFFICE_PAYMENT_BREAKER_COOL_DOWN_MS", &cool_down),
        ],
        1,
        json!({}),
    )
    .await
}

/// A declined card: 402, the hold released at once, its seats back on sale,
/// nothing charged.
async fn stripe_decline_releases_the_hold(backend: Backend) {
    let setup = start(backend).await;
    let hold_id = setup.hold(&["A-1-1", "A-1-2"]).await;
    let resp = setup
        .book(&hold_id, &unique_key(), "tok_chargeDeclined")
        .await;
    resp.expect_problem(402, "payment_declined", "tok_chargeDeclined");
    assert_eq!(setup.hold_status(&hold_id).await, "RELEASED");
    let map = setup.app.seat_map(&setup.show_id).await;
    assert!(
        seats_with_status(&map, "AVAILABLE").is_superset(&set_of(&["A-1-1", "A-1-2"])),
        "the seats are on sale again: {map}"
    );
    assert!(setup.fake.charges().is_empty(), "nothing charged");
    let actions = setup.audit_actions_of(&hold_id).await;
    assert!(
        actions.iter().any(|a| a == "payment.declined"),
        "{actions:?}"
    );
    setup.assert_ledger().await;
}

/// Stripe does not answer: 503 within the guard's bounds, the hold stays
/// ACTIVE; once Stripe is back, the same request (same Idempotency-Key: a 503
/// is not stored) books it, with one charge.
async fn stripe_timeout_then_a_later_retry_books_once(backend: Backend) {
    let setup = start_with_breaker(backend, BREAKER_FAILURES_OUT_OF_THE_WAY).await;
    let hold_id = setup.hold(&["A-1-3"]).await;
    let key = unique_key();
    setup.fake.set_standing_fault(Some(Fault::Hang));
    let started = Instant::now();
    let resp = setup.book(&hold_id, &key, "tok_visa").await;
    let elapsed = started.elapsed();
    resp.expect_problem(503, "payment_unavailable", "Stripe hangs");
    assert!(
        elapsed >= Duration::from_millis(PAYMENT_TIMEOUT_MS),
        "the request waited for the attempt timeout: {elapsed:?}"
    );
    assert!(
        elapsed < CONFIRM_WORST_CASE,
        "the guard bounds a confirmation: {elapsed:?}"
    );
    assert_eq!(setup.hold_status(&hold_id).await, "ACTIVE");
    assert!(setup.fake.charges().is_empty());

    setup.fake.set_standing_fault(None);
    let resp = setup.book(&hold_id, &key, "tok_visa").await;
    resp.expect(201, "the retry once Stripe is back");
    assert_eq!(setup.fake.charges().len(), 1, "exactly one charge");
    let actions = setup.audit_actions_of(&hold_id).await;
    assert!(
        actions.iter().any(|a| a == "payment.captured"),
        "{actions:?}"
    );
    setup.assert_ledger().await;
}

/// Two 500s, then Stripe answers: the guard retries within the same request.
async fn stripe_server_errors_are_retried_within_the_request(backend: Backend) {
    let setup = start(backend).await;
    let hold_id = setup.hold(&["A-1-4", "A-1-5"]).await;
    setup.fake.push_fault(Fault::ServerError, 2);
    let resp = setup.book(&hold_id, &unique_key(), "tok_visa").await;
    let booking = resp.expect(201, "booked on the third attempt");
    assert_eq!(booking["hold_id"], hold_id.as_str());
    assert_eq!(setup.fake.charges().len(), 1, "exactly one charge");
    assert_eq!(
        setup.fake.requests(),
        3,
        "two failed attempts and one that charged"
    );
    let actions = setup.audit_actions_of(&hold_id).await;
    assert!(
        actions.iter().any(|a| a == "payment.captured"),
        "{actions:?}"
    );
    setup.assert_ledger().await;
}

/// Stripe captures but the answer is lost (the connection closes). The
/// guard retries the charge with the same Stripe `Idempotency-Key`, Stripe
/// replays the stored payment intent, and the request answers 201 — one
/// booking, one charge. A client retry with the same Idempotency-Key gets
/// the same booking back.
async fn stripe_lost_response_books_once(backend: Backend) {
    let setup = start(backend).await;
    let hold_id = setup.hold(&["A-1-6"]).await;
    let key = unique_key();
    setup.fake.push_fault(Fault::DropResponse, 1);
    let resp = setup.book(&hold_id, &key, "tok_visa").await;
    let first = resp
        .expect(201, "booked through the replayed answer")
        .clone();
    assert_eq!(setup.fake.charges().len(), 1, "exactly one charge");
    assert_eq!(setup.fake.requests(), 2, "the charge and its replay");

    let resp = setup.book(&hold_id, &key, "tok_visa").await;
    let again = resp.expect(201, "the client's retry with the same key");
    assert_eq!(again["id"], first["id"], "the same booking");
    assert_eq!(setup.fake.charges().len(), 1, "still one charge");
    assert_eq!(setup.confirmed_bookings().await.len(), 1);
    let actions = setup.audit_actions_of(&hold_id).await;
    assert!(
        actions.iter().any(|a| a == "payment.captured"),
        "{actions:?}"
    );
    setup.assert_ledger().await;
}

/// Stripe fails every request: after `BREAKER_FAILURES` failed attempts the
/// breaker opens, and the next confirmation answers 503 at once without
/// calling Stripe; the hold stays ACTIVE. Once Stripe is back and the
/// cool-down has passed, a confirmation books.
async fn stripe_breaker_fails_fast_and_recovers(backend: Backend) {
    let setup = start(backend).await;
    let hold_id = setup.hold(&["A-1-7", "A-1-8"]).await;
    setup.fake.set_standing_fault(Some(Fault::ServerError));
    let resp = setup.book(&hold_id, &unique_key(), "tok_visa").await;
    resp.expect_problem(503, "payment_unavailable", "Stripe answers 500");
    let requests_when_open = setup.fake.requests();
    assert_eq!(
        requests_when_open, 3,
        "three failed charge attempts opened the breaker; the look-up failed fast"
    );

    // Stripe now hangs: only an open breaker can answer before a timeout.
    setup.fake.set_standing_fault(Some(Fault::Hang));
    let started = Instant::now();
    let resp = setup.book(&hold_id, &unique_key(), "tok_visa").await;
    let elapsed = started.elapsed();
    resp.expect_problem(503, "payment_unavailable", "breaker open");
    assert!(
        elapsed < Duration::from_millis(PAYMENT_TIMEOUT_MS),
        "an open breaker answers at once, not after a timeout: {elapsed:?}"
    );
    assert_eq!(
        setup.fake.requests(),
        requests_when_open,
        "Stripe was not called"
    );
    assert_eq!(setup.hold_status(&hold_id).await, "ACTIVE");

    setup.fake.set_standing_fault(None);
    tokio::time::sleep(Duration::from_millis(BREAKER_COOL_DOWN_MS + 200)).await;
    let resp = setup.book(&hold_id, &unique_key(), "tok_visa").await;
    resp.expect(201, "the probe after the cool-down books");
    assert_eq!(setup.fake.charges().len(), 1, "exactly one charge");
    let actions = setup.audit_actions_of(&hold_id).await;
    assert!(
        actions.iter().any(|a| a == "payment.captured"),
        "{actions:?}"
    );
    setup.assert_ledger().await;
}

/// The worst lost answer: Stripe captures, the answer is lost, and Stripe
/// then fails everything, so neither the guard's retries nor the look-up can
/// learn of the capture. The request answers 503 and the hold stays ACTIVE
/// (with money taken: the buyer's retry must finish it). The retry with the
/// same Idempotency-Key, once Stripe is back and the breaker has cooled down,
/// charges with the same Stripe key, gets the captured intent replayed, and
/// books: one booking, one charge.
async fn stripe_lost_response_in_an_outage_books_once_on_retry(backend: Backend) {
    let setup = start(backend).await;
    let hold_id = setup.hold(&["A-1-9", "A-1-10"]).await;
    let key = unique_key();
    setup.fake.push_fault(Fault::DropResponse, 1);
    setup.fake.set_standing_fault(Some(Fault::ServerError));
    let resp = setup.book(&hold_id, &key, "tok_visa").await;
    resp.expect_problem(
        503,
        "payment_unavailable",
        "captured, answer lost, then 500s",
    );
    assert_eq!(setup.fake.charges().len(), 1, "Stripe did capture");
    assert_eq!(setup.hold_status(&hold_id).await, "ACTIVE");

    setup.fake.set_standing_fault(None);
    tokio::time::sleep(Duration::from_millis(BREAKER_COOL_DOWN_MS + 200)).await;
    let resp = setup.book(&hold_id, &key, "tok_visa").await;
    resp.expect(201, "the retry books the captured payment");
    assert_eq!(setup.fake.charges().len(), 1, "still exactly one charge");
    assert!(setup.fake.refunds().is_empty());
    assert_eq!(setup.confirmed_bookings().await.len(), 1);
    let actions = setup.audit_actions_of(&hold_id).await;
    assert!(
        actions.iter().any(|a| a == "payment.captured"),
        "{actions:?}"
    );
    setup.assert_ledger().await;
}
