//! Incoming Stripe webhooks (`POST /v1/payments/webhooks/stripe`) against a
//! real server on the fake Stripe: events delivered twice, before the API
//! answers, badly signed, for a request that died after the charge, and
//! after the hold expired (booked while the seats are free, refunded once
//! they were sold). After each: charges at the fake = bookings + refunds,
//! no seat sold twice, and the audit trail saying what happened.

use std::time::Duration;

use fake_stripe::{Signing, WebhookMode};
use serde_json::{json, Value};

use crate::common::*;
use crate::stripe_support::{
    outcome_of, StripeSetup, BREAKER_COOL_DOWN_MS, SHORT_HOLD_TTL_SECONDS, WEBHOOK_SECRET,
};

both_backends!(
    webhook_delivered_twice_books_once,
    webhook_before_the_api_response_books_once,
    webhook_with_a_bad_signature_writes_nothing,
    webhook_finishes_a_booking_whose_request_died,
    webhook_after_expiry_books_when_the_seats_are_free,
    webhook_after_expiry_refunds_when_the_seats_were_sold,
    webhooks_out_of_order_after_a_cancellation_change_nothing,
);

const SECRET_KEY: &str = "sk_test_boxoffice_webhooks";
/// How long a test waits for the fake's webhook deliveries.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);

async fn start(backend: Backend, show_overrides: Value) -> StripeSetup {
    StripeSetup::start_with_webhooks(backend, SECRET_KEY, &[], show_overrides).await
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
    setup.assert_ledger().await;
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
    setup.assert_ledger().await;
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
    setup.assert_ledger().await;
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

    assert_eq!(setup.deliver_succeeded(&hold_id).await, "booked");
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
    setup.assert_ledger().await;
}

/// The payment arrives after the hold expired, its seats still free: the
/// buyer paid, so the hold is booked anyway.
async fn webhook_after_expiry_books_when_the_seats_are_free(backend: Backend) {
    let setup = start(backend, json!({"hold_ttl_seconds": SHORT_HOLD_TTL_SECONDS})).await;
    let hold_id = setup.hold_as(&setup.user, &["A-1-7"]).await;
    setup.charge_lost_in_an_outage(&hold_id).await;
    setup.wait_until_expired(&hold_id).await;

    assert_eq!(setup.deliver_succeeded(&hold_id).await, "booked");
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
    setup.assert_ledger().await;
}

/// The payment arrives after the hold expired and its seat was sold to
/// someone else: refunded automatically (one refund), no booking for the
/// hold, the other buyer's booking intact.
async fn webhook_after_expiry_refunds_when_the_seats_were_sold(backend: Backend) {
    let setup = start(backend, json!({"hold_ttl_seconds": SHORT_HOLD_TTL_SECONDS})).await;
    let hold_id = setup.hold_as(&setup.user, &["A-1-8", "A-1-9"]).await;
    setup.charge_lost_in_an_outage(&hold_id).await;
    setup.wait_until_expired(&hold_id).await;
    // The breaker opened in the outage: let it cool down for the others.
    tokio::time::sleep(Duration::from_millis(BREAKER_COOL_DOWN_MS + 200)).await;
    let other = setup.app.register_user().await;
    let other_hold = setup.hold_as(&other, &["A-1-9"]).await;
    let resp = setup
        .app
        .book(&other.token, &other_hold, &unique_key(), "tok_visa")
        .await;
    let other_booking = resp.expect(201, "the other buyer books the seat").clone();

    assert_eq!(setup.deliver_succeeded(&hold_id).await, "refunded");
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
    setup.assert_ledger().await;
}

/// Stripe's events out of order, after the buyer cancelled (and was
/// refunded): the refund's `charge.refunded` first, then the payment's own
/// `payment_intent.succeeded` (delivered only now), then a stale
/// `payment_intent.payment_failed`. Each is acknowledged with 200; none books
/// the hold again, refunds twice or touches the cancelled booking.
async fn webhooks_out_of_order_after_a_cancellation_change_nothing(backend: Backend) {
    let setup = start(backend, json!({})).await;
    let hold_id = setup.hold_as(&setup.user, &["A-1-5", "A-1-6"]).await;
    let resp = setup
        .app
        .book(&setup.user.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    let booking_id = id_of(resp.expect(201, "booked"), &resp);
    let resp = setup
        .app
        .post(
            &format!("/v1/bookings/{booking_id}/cancel"),
            Some(&setup.user.token),
            &json!({}),
        )
        .await;
    assert_eq!(resp.expect(200, "cancelled")["status"], "CANCELLED");
    assert_eq!(setup.fake.refunds().len(), 1, "the cancellation refunded");

    let intent = setup
        .fake
        .intent_of_hold(&hold_id)
        .expect("the payment intent");
    let charge = setup
        .fake
        .charges()
        .into_iter()
        .find(|charge| charge.hold_id.as_deref() == Some(hold_id.as_str()))
        .expect("the charge");
    let refunded_charge = json!({
        "id": charge.id, "object": "charge", "payment_intent": charge.payment_intent,
        "amount": charge.amount, "amount_refunded": charge.amount, "refunded": true,
        "currency": charge.currency, "metadata": intent["metadata"],
    });
    let mut failed_intent = intent.clone();
    failed_intent["status"] = json!("requires_payment_method");
    let events = [
        fake_stripe::webhook::event("charge.refunded", refunded_charge),
        fake_stripe::webhook::event("payment_intent.succeeded", intent.clone()),
        fake_stripe::webhook::event("payment_intent.payment_failed", failed_intent),
    ];
    for event in &events {
        let delivery = setup.fake.send_event(event, Signing::Valid).await;
        assert_eq!(
            delivery.status,
            Some(200),
            "{}: {delivery:?}",
            event["type"]
        );
    }

    let bookings: Vec<Value> = setup
        .app
        .list_all(
            &format!("/v1/bookings?show_id={}", setup.show_id),
            setup.app.admin(),
        )
        .await
        .into_iter()
        .filter(|booking| booking["hold_id"] == hold_id)
        .collect();
    assert_eq!(bookings.len(), 1, "no second booking: {bookings:#?}");
    assert_eq!(bookings[0]["status"], "CANCELLED", "{bookings:#?}");
    assert_eq!(setup.fake.charges().len(), 1, "one charge");
    assert_eq!(setup.fake.refunds().len(), 1, "refunded once");
    let map = setup.app.seat_map(&setup.show_id).await;
    let statuses = seat_statuses(&map);
    for seat in ["A-1-5", "A-1-6"] {
        assert_eq!(statuses[seat], "AVAILABLE", "{seat} is back on sale");
    }
    let actions = setup.audit_actions_of(&hold_id).await;
    assert_eq!(count(&actions, "booking.confirmed"), 1, "{actions:?}");
    assert_eq!(count(&actions, "booking.cancelled"), 1, "{actions:?}");
    assert_eq!(
        count(&actions, "payment.refunded"),
        1,
        "refunded once, by the cancellation: {actions:?}"
    );
    setup.assert_ledger().await;
}
