//! Invariant 5: one Idempotency-Key → one effect and one stored response;
//! one hold → at most one charge.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use tokio::sync::Barrier;

use crate::common::*;

both_backends!(
    concurrent_confirms_one_key,
    key_rules,
    hold_idempotency_key,
    concurrent_holds_one_key
);

/// Ten concurrent confirms with one key: one booking, one charge, and every
/// answer is the same 201 or 409 request_in_progress.
async fn concurrent_confirms_one_key(backend: Backend) {
    const CONCURRENT: usize = 10;
    let app = TestApp::spawn_with(backend, &[("BOXOFFICE_SANDBOX_LATENCY_MS", "300")]).await;
    let fixture = app.fixture(1, 10, None, json!({})).await;
    let user = app.register_user().await;
    let resp = app
        .hold_seats(&user.token, &fixture.show_id, &["A-1-4", "A-1-5"])
        .await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let key = unique_key();

    let barrier = Arc::new(Barrier::new(CONCURRENT));
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (api, barrier) = (app.api.clone(), Arc::clone(&barrier));
            let (token, hold_id, key) = (user.token.clone(), hold_id.clone(), key.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                api.book(&token, &hold_id, &key, "tok_visa").await
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        let resp = task.await.expect("client task");
        match resp.status() {
            201 => created.push(resp),
            409 => {
                resp.expect_problem(
                    409,
                    "request_in_progress",
                    "a concurrent confirm with the same key",
                );
            }
            _ => {
                panic!("a confirm with a shared key must be 201 or 409 request_in_progress: {resp}")
            }
        }
    }
    assert!(!created.is_empty(), "the first request must succeed");
    let first = created[0].body.clone();
    for resp in &created {
        assert_eq!(resp.body, first, "every 201 carries the same body");
    }
    let booking_id = id_of(&first, &created[0]);

    let bookings = app.list_all("/v1/bookings", Some(&user.token)).await;
    assert_eq!(bookings.len(), 1, "exactly one booking: {bookings:?}");
    assert_eq!(bookings[0]["id"], booking_id.as_str());
    let charges = app.charges(&hold_id).await;
    assert_eq!(
        charges.iter().filter(|c| c["status"] == "CAPTURED").count(),
        1,
        "exactly one captured charge: {charges:?}"
    );
    assert_eq!(
        charges[0]["hold_id"],
        hold_id.as_str(),
        "charge hold_id: {charges:?}"
    );
    assert_eq!(
        charges[0]["amount"],
        money(2 * SEAT_PRICE_CENTS),
        "charge amount = hold total: {charges:?}"
    );

    // A later retry gets the stored answer, byte for byte the same JSON.
    let resp = app.book(&user.token, &hold_id, &key, "tok_visa").await;
    assert_eq!(
        resp.expect(201, "retry with the same key and body"),
        &first,
        "the stored 201 body"
    );
    assert_eq!(
        app.captured_charges(&hold_id).await,
        1,
        "the retry did not charge again"
    );
    let map = app.seat_map(&fixture.show_id).await;
    assert_eq!(summary(&map), (8, 0, 2), "two seats booked once");
}

/// Same key + other body → 422; missing key → 400; a new key on a confirmed
/// hold → 409 hold_not_active; keys are per user.
async fn key_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, json!({})).await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;
    let resp = app.hold_seats(&user.token, show_id, &["A-1-1"]).await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let resp = app.hold_seats(&user.token, show_id, &["A-1-2"]).await;
    let other_hold = id_of(resp.expect(201, "hold"), &resp);

    let resp = app
        .request(Method::POST, "/v1/bookings")
        .token(&user.token)
        .json(&json!({"hold_id": hold_id, "payment_token": "tok_visa"}))
        .send()
        .await;
    resp.expect_problem(
        400,
        "idempotency_key_required",
        "POST /v1/bookings without Idempotency-Key",
    );
    assert_eq!(
        app.get_hold(&user.token, &hold_id).await.body["status"],
        "ACTIVE",
        "nothing happened without a key"
    );

    let key = unique_key();
    let resp = app.book(&user.token, &hold_id, &key, "tok_visa").await;
    let stored = resp.expect(201, "book").clone();
    app.book(&user.token, &other_hold, &key, "tok_visa")
        .await
        .expect_problem(422, "idempotency_key_reused", "same key, another hold");
    app.book(&user.token, &hold_id, &key, "tok_mastercard")
        .await
        .expect_problem(
            422,
            "idempotency_key_reused",
            "same key, another payment token",
        );
    assert_eq!(
        app.get_hold(&user.token, &other_hold).await.body["status"],
        "ACTIVE",
        "the reused key did nothing to the other hold"
    );
    assert_eq!(
        &app.book(&user.token, &hold_id, &key, "tok_visa").await.body,
        &stored,
        "the same key and body still replay"
    );
    app.book(&user.token, &hold_id, &unique_key(), "tok_visa")
        .await
        .expect_problem(409, "hold_not_active", "a new key on a confirmed hold");

    // Keys are scoped to the user: another user's identical key is independent.
    let other = app.register_user().await;
    let resp = app.hold_seats(&other.token, show_id, &["A-1-3"]).await;
    let others_hold = id_of(resp.expect(201, "hold"), &resp);
    let resp = app.book(&other.token, &others_hold, &key, "tok_visa").await;
    let booking = resp.expect(201, "another user with the same key");
    assert_eq!(
        booking["hold_id"],
        others_hold.as_str(),
        "a booking of their own hold: {resp}"
    );
    assert_eq!(
        app.list_all("/v1/bookings", Some(&user.token)).await.len(),
        1,
        "the first user still has one booking"
    );

    // A stored 4xx answer is replayed too: a decline under a key stays a decline.
    let resp = app.hold_seats(&other.token, show_id, &["A-1-6"]).await;
    let declined_hold = id_of(resp.expect(201, "hold"), &resp);
    let declined_key = unique_key();
    let first = app
        .book(&other.token, &declined_hold, &declined_key, "tok_declined")
        .await;
    first.expect_problem(402, "payment_declined", "decline");
    let again = app
        .book(&other.token, &declined_hold, &declined_key, "tok_declined")
        .await;
    assert_eq!(
        (again.status(), &again.body),
        (402, &first.body),
        "a retry of a declined request replays the stored 402: {again}"
    );

    // After a 503 the same key and body may be retried; the hold stays ACTIVE.
    let resp = app.hold_seats(&other.token, show_id, &["A-1-8"]).await;
    let outage_hold = id_of(resp.expect(201, "hold"), &resp);
    let outage_key = unique_key();
    app.book(&other.token, &outage_hold, &outage_key, "tok_unavailable")
        .await
        .expect_problem(503, "payment_unavailable", "outage");
    app.book(&other.token, &outage_hold, &outage_key, "tok_unavailable")
        .await
        .expect_problem(503, "payment_unavailable", "outage again");
    assert_eq!(
        app.get_hold(&other.token, &outage_hold).await.body["status"],
        "ACTIVE",
        "the hold is still ACTIVE"
    );
}

/// The optional Idempotency-Key of POST /v1/holds: a retry returns the same
/// hold and holds nothing more.
async fn hold_idempotency_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, json!({})).await;
    let user = app.register_user().await;
    let key = unique_key();
    let body = json!({"show_id": fixture.show_id, "quantity": 2});
    let hold = |api: Api, token: String, body: serde_json::Value, key: String| async move {
        api.request(Method::POST, "/v1/holds")
            .token(&token)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await
    };
    let first = hold(
        app.api.clone(),
        user.token.clone(),
        body.clone(),
        key.clone(),
    )
    .await;
    first.expect(201, "hold with a key");
    let second = hold(
        app.api.clone(),
        user.token.clone(),
        body.clone(),
        key.clone(),
    )
    .await;
    assert_eq!(
        (second.status(), &second.body),
        (201, &first.body),
        "the retry returns the stored hold: {second}"
    );
    let map = app.seat_map(&fixture.show_id).await;
    assert_eq!(summary(&map), (8, 2, 0), "only one hold was made");
    let other_body = json!({"show_id": fixture.show_id, "quantity": 1});
    hold(app.api.clone(), user.token.clone(), other_body, key.clone())
        .await
        .expect_problem(422, "idempotency_key_reused", "same key, another hold body");
}

/// Ten concurrent POST /v1/holds with one key: one hold.
async fn concurrent_holds_one_key(backend: Backend) {
    const CONCURRENT: usize = 10;
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, json!({})).await;
    let user = app.register_user().await;
    let key = unique_key();
    let body = json!({"show_id": fixture.show_id, "seat_ids": ["A-1-5", "A-1-6"]});
    let barrier = Arc::new(Barrier::new(CONCURRENT));
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (api, barrier, token, key, body) = (
                app.api.clone(),
                Arc::clone(&barrier),
                user.token.clone(),
                key.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                api.request(Method::POST, "/v1/holds")
                    .token(&token)
                    .header("Idempotency-Key", &key)
                    .json(&body)
                    .send()
                    .await
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for task in tasks {
        let resp = task.await.expect("task");
        match resp.status() {
            201 => bodies.push(resp.body.clone()),
            _ => {
                resp.expect_problem(
                    409,
                    "request_in_progress",
                    "a concurrent hold with the same key",
                );
            }
        }
    }
    assert!(!bodies.is_empty(), "the first request must succeed");
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every 201 is the same hold: {bodies:?}"
    );
    let map = app.seat_map(&fixture.show_id).await;
    assert_eq!(summary(&map), (8, 2, 0), "one hold of two seats");
}
