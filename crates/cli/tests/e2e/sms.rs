//! Text messages through the outbox to a provider speaking Twilio's
//! Messages API (a local fake of it, the one thing we cannot run here):
//! sent once per event despite provider errors, only to buyers with a phone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Form, Router};
use base64::Engine;
use serde_json::json;

use crate::common::*;

both_backends!(text_messages_reach_buyers_with_a_phone_once);

pub(crate) const ACCOUNT_SID: &str = "AC0123456789abcdef";
pub(crate) const AUTH_TOKEN: &str = "twilio-test-token";

#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) to: String,
    pub(crate) body: String,
    authorization: String,
}

/// A Twilio-shaped SMS provider (also used by `late_payments`).
#[derive(Default)]
pub(crate) struct FakeTwilio {
    pub(crate) received: Mutex<Vec<Received>>,
    /// Requests still to answer with 500.
    failures_left: Mutex<usize>,
    attempts: Mutex<usize>,
}

async fn messages(
    State(fake): State<Arc<FakeTwilio>>,
    headers: HeaderMap,
    Form(fields): Form<std::collections::HashMap<String, String>>,
) -> (StatusCode, String) {
    *fake.attempts.lock().unwrap() += 1;
    {
        let mut failures = fake.failures_left.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "{\"code\": 20500}".into(),
            );
        }
    }
    fake.received.lock().unwrap().push(Received {
        to: fields.get("To").cloned().unwrap_or_default(),
        body: fields.get("Body").cloned().unwrap_or_default(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
    });
    (
        StatusCode::CREATED,
        json!({"sid": format!("SM{}", random_hex(16)), "status": "queued"}).to_string(),
    )
}

pub(crate) async fn start_fake_twilio(fake: Arc<FakeTwilio>) -> String {
    let router = Router::new()
        .route(
            &format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"),
            post(messages),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake Twilio");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

pub(crate) async fn wait_for_messages(fake: &FakeTwilio, count: usize) -> Vec<Received> {
    let started = Instant::now();
    loop {
        let received = fake.received.lock().unwrap().clone();
        if received.len() >= count {
            return received;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {count} text messages arrived",
            received.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_messages_reach_buyers_with_a_phone_once(backend: Backend) {
    let fake = Arc::new(FakeTwilio::default());
    *fake.failures_left.lock().unwrap() = 2;
    let base = start_fake_twilio(fake.clone()).await;
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_TWILIO_ACCOUNT_SID", ACCOUNT_SID),
            ("BOXOFFICE_TWILIO_AUTH_TOKEN", AUTH_TOKEN),
            ("BOXOFFICE_TWILIO_API_BASE", &base),
            ("BOXOFFICE_OUTBOX_POLL_MS", "50"),
            ("BOXOFFICE_OUTBOX_BACKOFF_MAX_MS", "300"),
        ],
    )
    .await;
    let fixture = app.fixture(1, 10, None, json!({})).await;
    let phone = "+4915112345678";
    let registered = app
        .post(
            "/v1/auth/register",
            None,
            &json!({"email": unique_email(), "password": USER_PASSWORD, "name": "Texted Buyer", "phone": phone}),
        )
        .await;
    let token = registered.expect(201, "register with a phone")["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    let held = app.hold_seats(&token, &fixture.show_id, &["A-1-4"]).await;
    let hold_id = id_of(held.expect(201, "hold"), &held);
    let booked = app.book(&token, &hold_id, &unique_key(), "tok_visa").await;
    let booking_id = id_of(booked.expect(201, "book"), &booked);

    let received = wait_for_messages(&fake, 1).await;
    assert_eq!(received[0].to, phone);
    assert!(
        received[0].body.contains("Fixture Night"),
        "{:?}",
        received[0]
    );
    assert!(received[0].body.contains(&booking_id), "{:?}", received[0]);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    assert_eq!(received[0].authorization, expected);
    assert!(
        *fake.attempts.lock().unwrap() >= 3,
        "two 500s, then success"
    );

    // A buyer without a phone gets no text (their e-mail is written, though).
    let quiet = app.register_user().await;
    let held = app
        .hold_seats(&quiet.token, &fixture.show_id, &["A-1-5"])
        .await;
    let hold_id = id_of(held.expect(201, "hold"), &held);
    app.book(&quiet.token, &hold_id, &unique_key(), "tok_visa")
        .await
        .expect(201, "book");
    app.post(
        &format!("/v1/bookings/{booking_id}/cancel"),
        Some(&token),
        &json!({}),
    )
    .await
    .expect(200, "cancel");
    let received = wait_for_messages(&fake, 2).await;
    assert!(received[1].body.contains("cancelled"), "{:?}", received[1]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        fake.received.lock().unwrap().len(),
        2,
        "one text per event, none to the buyer without a phone"
    );
}
