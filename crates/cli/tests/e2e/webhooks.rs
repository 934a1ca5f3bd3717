//! Incoming Stripe webhooks (`POST /v1/payments/webhooks/stripe`) against a
//! real server on the fake Stripe: events delivered twice, before the API
//! answers, badly signed, for a request that died after the charge, and
//! after the hold expired (booked while the seats are free, refunded once
//! they were sold). After each: charges at the fake = bookings + refunds,
//! no seat sold twice, and the audit trail saying what happened.

use std::collections::BTreeSet;
use std::time::Duration;

use fake_stripe::{FakeStripe, Fault, Signing, WebhookDelivery, WebhookMode};
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    webhook_delivered_twice_books_once,
    webhook_before_the_api_response_books_once,
    webhook_with_a_bad_signature_writes_nothing,
    webhook_finishes_a_booking_whose_request_died,
    webhook_after_expiry_books_when_the_seats_are_free,
    webhook_after_expiry_refunds_when_the_seats_were_sold,
);

const SECRET_KEY: &str = "sk_test_boxoffice_webhooks";
const WEBHOOK_SECRET: &str = "whsec_boxoffice_e2e";
const PAYMENT_TIMEOUT_MS: u64 = 1_000;
/// Three failed attempts (one confirmation's worth) open the breaker.
const BREAKER_FAILURES: &str = "3";
const BREAKER_COOL_DOWN_MS: u64 = 1_500;
/// The shortest hold a show allows, for the expiry tests.
const SHORT_HOLD_TTL_SECONDS: u64 = 1;
/// How long a test waits for the fake's webhook deliveries.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);
/// How long a test waits for the sweeper to expire a hold (DESIGN.md: 5 s).
const EXPIRY_WAIT: Duration = Duration::from_secs(10);

struct Setup {
    app: TestApp,
    fake: FakeStripe,
    show_id: String,
    user: TestUser,
}

async fn start(backend: Backend, show_overrides: Value) -> Setup {
    let fake = FakeStripe::start(SECRET_KEY).await;
    let timeout = PAYMENT_TIMEOUT_MS.to_string();
    let cool_down = BREAKER_COOL_DOWN_MS.to_string();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_STRIPE_SECRET_KEY", SECRET_KEY),
            ("BOXOFFICE_STRIPE_API_BASE", fake.url()),
            ("BOXOFFICE_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("BOXOFFICE_PAYMENT_TIMEOUT_MS", &timeout),
            ("BOXOFFICE_PAYMENT_BREAKER_FAILURES", BREAKER_FAILURES),
            ("BOXOFFICE_PAYMENT_BREAKER_COOL_DOWN_MS", &cool_down),
        ],
    )
    .await;
    fake.set_webhook_endpoint(&app.url("/v1/payments/webhooks/stripe"), WEBHOOK_SECRET);
    let fixture = app.fixture(1, 10, None, show_overrides).await;
    let user = app.register_user().await;
    Setup {
        app,
        fake,
        show_id: fixture.show_id,
        user,
    }
}

impl Setup {
    async fn hold_as(&self, user: &TestUser, seats: &[&str]) -> String {
        let resp = self.app.hold_seats(&user.token, &self.show_id, seats).await;
        id_of(resp.expect(201, "hold"), &resp)
    }

    async fn hold_status(&self, hold_id: &str) -> String {
        let resp = self.app.get_hold(&self.user.token, hold_id).await;
        resp.expect(200, "the hold")["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn confirmed_bookings(&self) -> Vec<Value> {
        self.app
            .list_all(
                &format!("/v1/bookings?show_id={}", self.show_id),
                self.app.admin(),
            )
            .await
            .into_iter()
            .filter(|booking| booking["status"] == "CONFIRMED")
            .collect()
    }

    async fn bookings_of_hold(&self, hold_id: &str) -> Vec<Value> {
        self.confirmed_bookings()
            .await
            .into_iter()
            .filter(|booking| booking["hold_id"] == hold_id)
            .collect()
    }

    async fn audit_actions_of(&self, hold_id: &str) -> Vec<String> {
        self.app
            .list_all(
                &format!("/v1/audit?show_id={}", self.show_id),
                self.app.admin(),
            )
            .await
            .into_iter()
            .filter(|entry| entry["hold_id"] == hold_id)
            .filter_map(|entry| entry["action"].as_str().map(str::to_string))
            .collect()
    }

    /// A charge captured whose answer the server never learns: Stripe
    /// captures, drops the answer, then fails everything for the request.
    /// The request answers 503 and the hold stays ACTIVE, with money taken.
    async fn charge_lost_in_an_outage(&self, hold_id: &str) {
        self.fake.push_fault(Fault::DropResponse, 1);
        self.fake.set_standing_fault(Some(Fault::ServerError));
        let resp = self
            .app
            .book(&self.user.token, hold_id, &unique_key(), "tok_visa")
            .await;
        resp.expect_problem(
            503,
            "payment_unavailable",
            "captured, answer lost, then 500s",
        );
        assert_eq!(self.fake.charges().len(), 1, "Stripe did capture");
        self.fake.set_standing_fault(None);
    }

    /// Charges at Stripe = bookings + refunds, one charge per hold, and the
    /// BOOKED seats of the map are exactly the bookings' seats.
    async fn assert_money_matches_bookings(&self) {
        let bookings = self.confirmed_bookings().await;
        let charges = self.fake.charges();
        let refunds = self.fake.refunds();
        assert_eq!(
            charges.len(),
            bookings.len() + refunds.len(),
            "charges at Stripe = bookings + refunds; charges {charges:#?}, refunds {refunds:#?}, bookings {bookings:#?}"
        );
        let charged_holds: BTreeSet<_> = charges.iter().map(|c| c.hold_id.clone()).collect();
        assert_eq!(
            charged_holds.len(),
            charges.len(),
            "one charge per hold: {charges:#?}"
        );
        let mut booked_seats = BTreeSet::new();
        for booking in &bookings {
            for seat in seat_ids_of(booking) {
                assert!(
                    booked_seats.insert(seat.clone()),
                    "{seat} is in two bookings"
                );
            }
        }
        let map = self.app.seat_map(&self.show_id).await;
        assert_eq!(
            seats_with_status(&map, "BOOKED"),
            booked_seats,
            "the seat map's BOOKED seats are the bookings' seats"
        );
    }
}

fn outcome_of(delivery: &WebhookDelivery) -> String {
    serde_json::from_str::<Value>(&delivery.body)
        .ok()
        .and_then(|body| body["outcome"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("(no outcome in {delivery:?})"))
}

fn count(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|a| *a == action).count()
}

/// Stripe delivers the same event twice: one booking, one charge; the
/// second delivery is acknowledged as a duplicate.
async fn webhook_delivered_twice_books_once(backend: Backend) {
    let setup = start(backend, json!({})).await;
    setup.fake.set_webhook_mode(WebhookMode::Twice);
    let hold_id = setup.hold_as(&setup.user, &["A-1-1", "A-1-2"]).await;
    let resp = setup
        .app
        .book(&setup.user.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    let booking = resp.expect(201, "booked").clone();
    let deliveries = setup
        .fake
        .wait_for_webhook_deliveries(2, DELIVERY_WAIT)
        .await;
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert_eq!(
        deliveries[0].event_id, deliveries[1].event_id,
        "the same event"
    );
    for delivery in &deliveries {
        assert_eq!(delivery.status, Some(200), "{delivery:?}");
    }
    assert_eq!(outcome_of(&deliveries[1]), "duplicate");
    let bookings = setup.bookings_of_hold(&hold_id).await;
    assert_eq!(bookings.len(), 1, "{bookings:#?}");
    assert_eq!(bookings[0]["id"], booking["id"]);
    assert_eq!(setup.fake.charges().len(), 1, "exactly one charge");
    let actions = setup.audit_actions_of(&hold_id).await;
    assert_eq!(count(&actions, "payment.captured"), 1, "{actions:?}");
    assert_eq!(count(&actions, "booking.confirmed"), 1, "{actions:?}");
    setup.assert_money_matches_bookings().await;
}

/// The webhook arrives before Stripe answers the charge: the webhook books,
/// and the API request answers 201 with that same booking.
async fn webhook_before_the_api_response_books_once(backend: Backend) {
    let setup = start(backend, json!({})).await;
    setup.fake.set_webhook_mode(WebhookMode::BeforeResponse);
    let hold_id = setup.hold_as(&setup.user, &["A-1-3"]).await;
    let resp = setup
        .app
        .book(&setup.user.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    let booking = resp.expect(201, "booked").clone();
    let deliveries = setup.fake.webhook_deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].status, Some(200), "{deliveries:?}");
    assert_eq!(
        outcome_of(&deliveries[0]),
        "booked",
        "the webhook came first"
    );
    let bookings = setup.bookings_of_hold(&hold_id).await;
    assert_eq!(bookings.len(), 1, "{bookings:#?}");
    assert_eq!(
        bookings[0]["id"], booking["id"],
        "the API answered the webhook's booking"
    );
    assert_eq!(setup.fake.charges().len(), 1, "exactly one charge");
    assert_eq!(setup.hold_status(&hold_id).await, "CONFIRMED");
    let actions = setup.audit_actions_of(&hold_id).await;
    assert_eq!(count(&actions, "payment.captured"), 1, "{actions:?}");
    setup.assert_money_matches_bookings().await;
}

/// Wrong secret, no signature, an old timestamp: 400 `invalid_signature`
/// and nothing written — no booking, no audit entry, and the event ID not
/// recorded (the same event, correctly signed, then books).
async fn webhook_with_a_bad_signature_writes_nothing(backend: Backend) {
    let setup = start(backend, json!({})).await;
    let hold_id = setup.hold_as(&setup.user, &["A-1-4"]).await;
    setup.charge_lost_in_an_outage(&hold_id).await;
    let audit_before = setup.audit_actions_of(&hold_id).await;
    let intent = setup
        .fake
        .intent_of_hold(&hold_id)
        .expect("the captured intent");
    let event = fake_stripe::webhook::event("payment_intent.succeeded", intent);
    for signing in [
        Signing::WrongSecret,
        Signing::Missing,
        Signing::Stale(Duration::from_secs(600)),
    ] {
        let delivery = setup.fake.send_event(&event, signing).await;
        assert_eq!(delivery.status, Some(400), "{signing:?}: {delivery:?}");
        let body: Value = serde_json::from_str(&delivery.body).unwrap_or_default();
        assert_eq!(body["code"], "invalid_signature", "{signing:?}: {body}");
    }
    // A tampered body under a valid header for the original.
    let resp = setup
        .app
        .request(reqwest::Method::POST, "/v1/payments/webhooks/stripe")
        .header(
            "stripe-signature",
            &fake_stripe::webhook::signature_header(
                WEBHOOK_SECRET,
                chrono::Utc::now().timestamp(),
                &event.to_string(),
            ),
        )
        .raw(Some("application/json"), format!("{event} "))
        .send()
        .await;
    resp.expect_problem(
        400,
        "invalid_signature",
        "a body that is not the signed one",
    );
    assert!(
        setup.bookings_of_hold(&hold_id).await.is_empty(),
        "no booking"
    );
    assert_eq!(
        setup.audit_actions_of(&hold_id).await,
        audit_before,
        "no audit entry"
    );
    assert_eq!(setup.hold_status(&hold_id).await, "ACTIVE");

    let delivery = setup.fake.send_event(&event, Signing::Valid).await;
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    assert_eq!(
        outcome_of(&delivery),
        "booked",
        "the event ID was not recorded before"
    );
    // An unknown gateway is no route of ours.
    let resp = setup
        .app
        .request(reqwest::Method::POST, "/v1/payments/webhooks/paypal")
        .raw(Some("application/json"), "{}")
        .send()
        .await;
    resp.expect_problem(404, "not_found", "unknown gateway");
    setup.assert_money_matches_bookings().await;
}

/// The confirming request dies after Stripe captured (answer lost, Stripe
/// down for the rest of the request): 503, hold ACTIVE, money taken. The
/// webhook then books it: one charge, the hold CONFIRMED, the booking in
/// the buyer's `GET /v1/bookings`.
async fn webhook_finishes_a_booking_whose_request_died(backend: Backend) {
    let setup = start(backend, json!({})).await;
    let hold_id = setup.hold_as(&setup.user, &["A-1-5", "A-1-6"]).await;
    setup.charge_lost_in_an_outage(&hold_id).await;
    assert_eq!(setup.hold_status(&hold_id).await, "ACTIVE");

    let delivery = setup
        .fake
        .send_succeeded_for_hold(&hold_id)
        .await
        .expect("a captured charge");
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    assert_eq!(outcome_of(&delivery), "booked");
    assert_eq!(setup.hold_status(&hold_id).await, "CONFIRMED");
    let mine = setup
        .app
        .list_all("/v1/bookings", Some(&setup.user.token))
        .await;
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert_eq!(mine[0]["hold_id"], hold_id.as_str());
    assert_eq!(seat_ids_of(&mine[0]), set_of(&["A-1-5", "A-1-6"]));
    assert_eq!(setup.fake.charges().len(), 1, "exactly one charge");
    let actions = setup.audit_actions_of(&hold_id).await;
    assert_eq!(count(&actions, "payment.captured"), 1, "{actions:?}");
    assert_eq!(count(&actions, "booking.confirmed"), 1, "{actions:?}");
    setup.assert_money_matches_bookings().await;
}

async fn wait_until_expired(setup: &Setup, hold_id: &str) {
    poll_until(
        "the hold to expire",
        EXPIRY_WAIT,
        Duration::from_millis(200),
        || async {
            let status = setup.hold_status(hold_id).await;
            if status == "EXPIRED" {
                Ok(())
            } else {
                Err(status)
            }
        },
    )
    .await;
}

/// The payment arrives after the hold expired, its seats still free: the
/// buyer paid, so the hold is booked anyway.
async fn webhook_after_expiry_books_when_the_seats_are_free(backend: Backend) {
    let setup = start(backend, json!({"hold_ttl_seconds": SHORT_HOLD_TTL_SECONDS})).await;
    let hold_id = setup.hold_as(&setup.user, &["A-1-7"]).await;
    setup.charge_lost_in_an_outage(&hold_id).await;
    wait_until_expired(&setup, &hold_id).await;

    let delivery = setup
        .fake
        .send_succeeded_for_hold(&hold_id)
        .await
        .expect("a captured charge");
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    assert_eq!(outcome_of(&delivery), "booked");
    assert_eq!(setup.hold_status(&hold_id).await, "CONFIRMED");
    assert_eq!(setup.bookings_of_hold(&hold_id).await.len(), 1);
    assert!(setup.fake.refunds().is_empty());
    let actions = setup.audit_actions_of(&hold_id).await;
    for action in [
        "hold.expired",
        "hold.reinstated",
        "payment.captured",
        "booking.confirmed",
    ] {
        assert_eq!(count(&actions, action), 1, "{action}: {actions:?}");
    }
    setup.assert_money_matches_bookings().await;
}

/// The payment arrives after the hold expired and its seat was sold to
/// someone else: refunded automatically (one refund), no booking for the
/// hold, the other buyer's booking intact.
async fn webhook_after_expiry_refunds_when_the_seats_were_sold(backend: Backend) {
    let setup = start(backend, json!({"hold_ttl_seconds": SHORT_HOLD_TTL_SECONDS})).await;
    let hold_id = setup.hold_as(&setup.user, &["A-1-8", "A-1-9"]).await;
    setup.charge_lost_in_an_outage(&hold_id).await;
    wait_until_expired(&setup, &hold_id).await;
    // The breaker opened in the outage: let it cool down for the others.
    tokio::time::sleep(Duration::from_millis(BREAKER_COOL_DOWN_MS + 200)).await;
    let other = setup.app.register_user().await;
    let other_hold = setup.hold_as(&other, &["A-1-9"]).await;
    let resp = setup
        .app
        .book(&other.token, &other_hold, &unique_key(), "tok_visa")
        .await;
    let other_booking = resp.expect(201, "the other buyer books the seat").clone();

    let delivery = setup
        .fake
        .send_succeeded_for_hold(&hold_id)
        .await
        .expect("a captured charge");
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    assert_eq!(outcome_of(&delivery), "refunded");
    let refunds = setup.fake.refunds();
    assert_eq!(refunds.len(), 1, "exactly one refund: {refunds:#?}");
    let charge = setup
        .fake
        .charges()
        .into_iter()
        .find(|charge| charge.hold_id.as_deref() == Some(hold_id.as_str()))
        .expect("the late charge");
    assert_eq!(refunds[0].payment_intent, charge.payment_intent);
    assert!(
        setup.bookings_of_hold(&hold_id).await.is_empty(),
        "no booking for the hold"
    );
    assert_eq!(setup.hold_status(&hold_id).await, "EXPIRED");
    let others = setup.bookings_of_hold(&other_hold).await;
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["id"], other_booking["id"]);
    assert_eq!(seat_ids_of(&others[0]), set_of(&["A-1-9"]));
    let actions = setup.audit_actions_of(&hold_id).await;
    assert_eq!(count(&actions, "payment.refunded"), 1, "{actions:?}");
    assert_eq!(count(&actions, "booking.confirmed"), 0, "{actions:?}");

    // Delivered again (Stripe retries): nothing more.
    let failed = fake_stripe::webhook::event(
        "payment_intent.payment_failed",
        json!({"id": charge.payment_intent, "metadata": {"hold_id": hold_id}}),
    );
    let again = setup.fake.send_event(&failed, Signing::Valid).await;
    assert_eq!(
        again.status,
        Some(200),
        "other event types are acknowledged"
    );
    assert_eq!(outcome_of(&again), "ignored");
    assert_eq!(setup.fake.refunds().len(), 1);
    setup.assert_money_matches_bookings().await;
}
