//! Outgoing webhooks (`/v1/webhooks`): receivers started here (small axum
//! servers that record every request and can be told to fail) get domain
//! events signed with their subscription's secret, which the tests verify
//! on their own; failures are retried and logged attempt by attempt.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::*;

both_backends!(
    events_arrive_signed_with_the_subscription_secret,
    each_subscription_gets_the_types_it_asked_for_once,
    a_failing_receiver_gets_the_event_again_until_it_answers,
    a_delivery_fails_after_the_retry_window_and_an_admin_retries_it,
    an_expired_hold_is_announced,
    the_admin_api_refuses_bad_requests,
    the_admin_pages_subscribe_and_show_the_log,
    redirects_timeouts_and_refused_connections_are_failed_attempts,
);

/// Short retries so that the tests see several attempts.
const FAST_RETRIES: [(&str, &str); 2] = [
    ("BOXOFFICE_WEBHOOK_BACKOFF_INITIAL_MS", "100"),
    ("BOXOFFICE_WEBHOOK_BACKOFF_MAX_MS", "500"),
];
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(100);

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn event_type(&self) -> String {
        self.header("Boxoffice-Event-Type").to_string()
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answer 500 to this many more requests.
    fail_next: AtomicU32,
    fail_always: AtomicBool,
}

/// A webhook receiver on 127.0.0.1 (stopped on drop).
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let shared = state.clone();
        let app = axum::Router::new()
            // A redirect to /hook: the sender must not follow it.
            .route(
                "/moved",
                axum::routing::post(|| async {
                    (StatusCode::TEMPORARY_REDIRECT, [("location", "/hook")])
                }),
            )
            // Answers later than any test's webhook timeout.
            .route(
                "/slow",
                axum::routing::post(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    StatusCode::OK
                }),
            )
            .route(
                "/hook",
                axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                    let state = shared.clone();
                    async move {
                        state
                            .received
                            .lock()
                            .unwrap()
                            .push(Received { headers, body });
                        let failing = state.fail_always.load(Ordering::SeqCst)
                            || state
                                .fail_next
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok();
                        if failing {
                            (StatusCode::INTERNAL_SERVER_ERROR, "receiver down")
                        } else {
                            (StatusCode::OK, "thanks")
                        }
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let address = listener.local_addr().expect("receiver address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{address}/hook"),
            state,
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.event_type() == event_type)
            .collect()
    }

    async fn wait_for(&self, event_type: &str, count: usize) -> Vec<Received> {
        poll_until(
            &format!("{count} × {event_type} at the receiver"),
            DELIVERY_DEADLINE,
            POLL_EVERY,
            || async {
                let got = self.of_type(event_type);
                if got.len() >= count {
                    Ok(got)
                } else {
                    Err(format!(
                        "{:?}",
                        self.received()
                            .iter()
                            .map(Received::event_type)
                            .collect::<Vec<_>>()
                    ))
                }
            },
        )
        .await
    }
}

/// The subscription's answer (with its secret).
async fn subscribe(app: &TestApp, url: &str, event_types: &[&str]) -> Value {
    app.post(
        "/v1/webhooks",
        app.admin(),
        &json!({"url": url, "event_types": event_types, "description": "e2e"}),
    )
    .await
    .expect(201, "subscribe")
    .clone()
}

/// Books `seats` for a new customer; returns the booking.
async fn book(app: &TestApp, user: &TestUser, show_id: &str, seats: &[&str]) -> Value {
    let held = app.hold_seats(&user.token, show_id, seats).await;
    let hold_id = id_of(held.expect(201, "hold"), &held);
    app.book(&user.token, &hold_id, &unique_key(), "tok_visa")
        .await
        .expect(201, "book")
        .clone()
}

/// `Boxoffice-Signature` checked as a receiver would: HMAC-SHA256 of
/// `"{t}.{body}"` under the secret, hex, in `v1`.
fn signature_valid(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = Some(value.to_string()),
            Some(("v1", value)) => signature = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

fn delivery_path(subscription_id: &str, delivery_id: &str) -> String {
    format!("/v1/webhooks/{subscription_id}/deliveries/{delivery_id}")
}

async fn deliveries(app: &TestApp, subscription_id: &str, query: &str) -> Vec<Value> {
    app.list_all(
        &format!("/v1/webhooks/{subscription_id}/deliveries{query}"),
        app.admin(),
    )
    .await
}

/// The subscription's deliveries once `count` of them are DELIVERED (the
/// receiver has a request before the sender records its answer).
async fn wait_delivered(app: &TestApp, subscription_id: &str, count: usize) -> Vec<Value> {
    poll_until(
        &format!("{count} deliveries of {subscription_id} DELIVERED"),
        DELIVERY_DEADLINE,
        POLL_EVERY,
        || async {
            let log = deliveries(app, subscription_id, "?status=DELIVERED").await;
            if log.len() >= count {
                Ok(log)
            } else {
                Err(format!("{log:?}"))
            }
        },
    )
    .await
}

async fn events_arrive_signed_with_the_subscription_secret(backend: Backend) {
    let app = TestApp::spawn_with(backend, &FAST_RETRIES).await;
    let receiver = Receiver::start().await;
    let subscription = subscribe(&app, &receiver.url, &[]).await;
    let secret = subscription["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("whsec_"), "{subscription}");
    let fixture = app.fixture(1, 4, None, json!({})).await;
    let user = app.register_user().await;

    let booking = book(&app, &user, &fixture.show_id, &["A-1-1", "A-1-2"]).await;
    let confirmed = receiver.wait_for("booking.confirmed", 1).await;
    assert_eq!(confirmed.len(), 1, "one confirmation");
    let request = &confirmed[0];
    let signature = request.header("Boxoffice-Signature");
    assert!(
        signature_valid(&secret, signature, &request.body),
        "signature {signature:?} of {:?}",
        request.body
    );
    let mut tampered = request.body.to_vec();
    tampered.extend_from_slice(b" ");
    assert!(
        !signature_valid(&secret, signature, &tampered),
        "a changed body must not verify"
    );
    assert!(
        !signature_valid("whsec_wrong", signature, &request.body),
        "another secret must not verify"
    );
    assert_eq!(request.header("Content-Type"), "application/json");
    assert_eq!(request.header("User-Agent"), "boxoffice-webhooks/1");
    assert!(request.header("Boxoffice-Delivery-Id").starts_with("whd_"));
    let body = request.json();
    assert_eq!(
        body["id"].as_str(),
        Some(request.header("Boxoffice-Event-Id")),
        "{body}"
    );
    assert!(
        body["id"].as_str().is_some_and(|id| id.starts_with("dom_")),
        "{body}"
    );
    assert_eq!(body["type"], "booking.confirmed");
    assert!(body["created_at"].is_string(), "{body}");
    assert_eq!(body["data"]["booking_id"], booking["id"], "{body}");
    assert_eq!(
        body["data"]["show_id"].as_str(),
        Some(fixture.show_id.as_str())
    );
    assert_eq!(body["data"]["user_id"], booking["user_id"], "{body}");

    let booking_id = booking["id"].as_str().expect("booking id");
    app.post(
        &format!("/v1/bookings/{booking_id}/cancel"),
        Some(user.token.as_str()),
        &json!({}),
    )
    .await
    .expect(200, "cancel");
    let cancelled = receiver.wait_for("booking.cancelled", 1).await;
    let body = cancelled[0].json();
    assert_eq!(body["data"]["booking_id"], booking["id"], "{body}");
    assert!(signature_valid(
        &secret,
        cancelled[0].header("Boxoffice-Signature"),
        &cancelled[0].body
    ));
    let refunded = receiver.wait_for("payment.refunded", 1).await;
    assert_eq!(refunded[0].json()["data"]["booking_id"], booking["id"]);

    // The log shows each as delivered at the first attempt.
    let subscription_id = subscription["id"].as_str().expect("id");
    wait_delivered(&app, subscription_id, 3).await;
    let log = deliveries(&app, subscription_id, "").await;
    assert_eq!(log.len(), 3, "{log:?}");
    for delivery in &log {
        assert_eq!(delivery["status"], "DELIVERED", "{delivery}");
        assert_eq!(delivery["attempts"], 1, "{delivery}");
        assert_eq!(delivery["last_status_code"], 200, "{delivery}");
    }
    // Newest first.
    assert_eq!(
        log.last().expect("oldest")["event_type"],
        "booking.confirmed"
    );
    // The secret is shown once only.
    let shown = app
        .get(&format!("/v1/webhooks/{subscription_id}"), app.admin())
        .await;
    assert!(
        shown.expect(200, "subscription").get("secret").is_none(),
        "{shown}"
    );
}

async fn each_subscription_gets_the_types_it_asked_for_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, &FAST_RETRIES).await;
    let (all, cancellations, deleted, paused) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let all_id = id_of(&subscribe(&app, &all.url, &[]).await, &"all");
    let cancellations_id = id_of(
        &subscribe(&app, &cancellations.url, &["booking.cancelled"]).await,
        &"cancellations",
    );
    let deleted_id = id_of(&subscribe(&app, &deleted.url, &[]).await, &"deleted");
    let paused_id = id_of(&subscribe(&app, &paused.url, &[]).await, &"paused");
    app.delete(&format!("/v1/webhooks/{deleted_id}"), app.admin())
        .await
        .expect(204, "delete");
    let patched = app
        .patch(
            &format!("/v1/webhooks/{paused_id}"),
            app.admin(),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(patched.expect(200, "pause")["active"], false);
    let listed = app.list_all("/v1/webhooks", app.admin()).await;
    let listed_ids: Vec<&str> = listed.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(
        listed_ids.len(),
        3,
        "the deleted one is not listed: {listed:?}"
    );
    assert!(!listed_ids.contains(&deleted_id.as_str()));

    let fixture = app.fixture(1, 4, None, json!({})).await;
    let user = app.register_user().await;
    let booking = book(&app, &user, &fixture.show_id, &["A-1-1"]).await;
    let booking_id = booking["id"].as_str().expect("booking id");
    app.post(
        &format!("/v1/bookings/{booking_id}/cancel"),
        Some(user.token.as_str()),
        &json!({}),
    )
    .await
    .expect(200, "cancel");

    all.wait_for("booking.confirmed", 1).await;
    all.wait_for("booking.cancelled", 1).await;
    all.wait_for("payment.refunded", 1).await;
    let cancelled = cancellations.wait_for("booking.cancelled", 1).await;
    // Every subscription's deliveries of an event are written together: once
    // `all` has the last event, the others have every delivery they will get.
    let all_log = wait_delivered(&app, &all_id, 3).await;
    assert_eq!(all_log.len(), 3, "{all_log:?}");
    let cancellations_log = deliveries(&app, &cancellations_id, "").await;
    assert_eq!(cancellations_log.len(), 1, "{cancellations_log:?}");
    assert_eq!(cancellations_log[0]["event_type"], "booking.cancelled");
    assert_eq!(
        cancelled[0].header("Boxoffice-Event-Id"),
        all.of_type("booking.cancelled")[0].header("Boxoffice-Event-Id"),
        "one event, one ID for every subscription"
    );
    assert!(
        deliveries(&app, &paused_id, "").await.is_empty(),
        "a paused subscription gets nothing"
    );
    app.get(
        &format!("/v1/webhooks/{deleted_id}/deliveries"),
        app.admin(),
    )
    .await
    .expect_problem(404, "not_found", "a deleted subscription's log");
    // Settled: nothing is left to send to anyone.
    wait_delivered(&app, &cancellations_id, 1).await;
    assert_eq!(all.received().len(), 3, "each event once");
    assert_eq!(cancellations.received().len(), 1, "only what it asked for");
    assert!(
        deleted.received().is_empty(),
        "a deleted subscription gets nothing"
    );
    assert!(
        paused.received().is_empty(),
        "a paused subscription gets nothing"
    );
}

async fn a_failing_receiver_gets_the_event_again_until_it_answers(backend: Backend) {
    let app = TestApp::spawn_with(backend, &FAST_RETRIES).await;
    let receiver = Receiver::start().await;
    receiver.state.fail_next.store(3, Ordering::SeqCst);
    let subscription = subscribe(&app, &receiver.url, &["booking.confirmed"]).await;
    let subscription_id = id_of(&subscription, &subscription);
    let fixture = app.fixture(1, 4, None, json!({})).await;
    let user = app.register_user().await;
    book(&app, &user, &fixture.show_id, &["A-1-3"]).await;

    let delivered = poll_until(
        "the delivery DELIVERED",
        DELIVERY_DEADLINE,
        POLL_EVERY,
        || async {
            let log = deliveries(&app, &subscription_id, "?status=DELIVERED").await;
            log.into_iter()
                .next()
                .ok_or_else(|| format!("{} requests so far", receiver.received().len()))
        },
    )
    .await;
    let requests = receiver.received();
    assert_eq!(requests.len(), 4, "three failures and one success");
    let event_id = requests[0].header("Boxoffice-Event-Id").to_string();
    assert!(event_id.starts_with("dom_"));
    for request in &requests {
        assert_eq!(
            request.header("Boxoffice-Event-Id"),
            event_id,
            "the same event every time"
        );
        assert_eq!(
            request.header("Boxoffice-Delivery-Id"),
            delivered["id"].as_str().unwrap_or("")
        );
    }
    let detail = app
        .get(
            &delivery_path(&subscription_id, delivered["id"].as_str().expect("id")),
            app.admin(),
        )
        .await;
    let detail = detail.expect(200, "delivery").clone();
    assert_eq!(detail["status"], "DELIVERED");
    assert_eq!(detail["attempts"], 4);
    assert_eq!(detail["event_id"].as_str(), Some(event_id.as_str()));
    assert_eq!(detail["payload"]["type"], "booking.confirmed", "{detail}");
    let log = detail["attempt_log"].as_array().expect("attempt_log");
    let codes: Vec<i64> = log
        .iter()
        .filter_map(|a| a["status_code"].as_i64())
        .collect();
    assert_eq!(codes, vec![500, 500, 500, 200], "{detail}");
    let numbers: Vec<i64> = log.iter().filter_map(|a| a["attempt"].as_i64()).collect();
    assert_eq!(numbers, vec![1, 2, 3, 4]);
    assert_eq!(log[0]["response_body"], "receiver down");
    assert!(log[0]["error"].is_string(), "{detail}");
    assert!(log[3]["error"].is_null(), "{detail}");
}

async fn a_delivery_fails_after_the_retry_window_and_an_admin_retries_it(backend: Backend) {
    let mut env = FAST_RETRIES.to_vec();
    env.push(("BOXOFFICE_WEBHOOK_RETRY_WINDOW_SECONDS", "2"));
    let app = TestApp::spawn_with(backend, &env).await;
    let receiver = Receiver::start().await;
    receiver.state.fail_always.store(true, Ordering::SeqCst);
    let subscription = subscribe(&app, &receiver.url, &["booking.confirmed"]).await;
    let subscription_id = id_of(&subscription, &subscription);
    let fixture = app.fixture(1, 4, None, json!({})).await;
    let user = app.register_user().await;
    book(&app, &user, &fixture.show_id, &["A-1-4"]).await;

    let failed = poll_until(
        "the delivery FAILED",
        DELIVERY_DEADLINE,
        POLL_EVERY,
        || async {
            let log = deliveries(&app, &subscription_id, "?status=FAILED").await;
            log.into_iter()
                .next()
                .ok_or_else(|| format!("{} requests so far", receiver.received().len()))
        },
    )
    .await;
    assert_eq!(failed["last_status_code"], 500, "{failed}");
    assert!(failed["failed_at"].is_string(), "{failed}");
    let delivery_id = failed["id"].as_str().expect("id").to_string();
    let detail = app
        .get(&delivery_path(&subscription_id, &delivery_id), app.admin())
        .await;
    let attempts = detail.expect(200, "delivery")["attempt_log"]
        .as_array()
        .expect("attempt_log")
        .clone();
    assert!(
        attempts.len() >= 2,
        "retried before giving up: {attempts:?}"
    );
    assert!(
        attempts.iter().all(|a| a["status_code"] == 500),
        "{attempts:?}"
    );
    assert!(deliveries(&app, &subscription_id, "?status=PENDING")
        .await
        .is_empty());
    let tried = receiver.received().len();
    assert_eq!(tried, attempts.len(), "every request is in the log");

    receiver.state.fail_always.store(false, Ordering::SeqCst);
    let retried = app
        .post(
            &format!("{}/retry", delivery_path(&subscription_id, &delivery_id)),
            app.admin(),
            &json!({}),
        )
        .await;
    let retried = retried.expect(202, "retry");
    assert_eq!(retried["status"], "PENDING", "{retried}");
    assert!(retried["failed_at"].is_null(), "{retried}");
    poll_until(
        "the retried delivery DELIVERED",
        DELIVERY_DEADLINE,
        POLL_EVERY,
        || async {
            let detail = app
                .get(&delivery_path(&subscription_id, &delivery_id), app.admin())
                .await;
            if detail.body["status"] == "DELIVERED" {
                Ok(())
            } else {
                Err(detail.to_string())
            }
        },
    )
    .await;
    assert_eq!(receiver.received().len(), tried + 1, "one more request");
    let detail = app
        .get(&delivery_path(&subscription_id, &delivery_id), app.admin())
        .await;
    let log = detail.expect(200, "delivery")["attempt_log"]
        .as_array()
        .expect("log")
        .clone();
    assert_eq!(log.last().expect("last attempt")["status_code"], 200);
}

async fn an_expired_hold_is_announced(backend: Backend) {
    let app = TestApp::spawn_with(backend, &FAST_RETRIES).await;
    let receiver = Receiver::start().await;
    let subscription = subscribe(&app, &receiver.url, &["hold.expired"]).await;
    let secret = subscription["secret"].as_str().expect("secret").to_string();
    let fixture = app
        .fixture(1, 4, None, json!({"hold_ttl_seconds": 1}))
        .await;
    let user = app.register_user().await;
    let held = app
        .hold_seats(&user.token, &fixture.show_id, &["A-1-1", "A-1-2"])
        .await;
    let hold_id = id_of(held.expect(201, "hold"), &held);

    let expired = receiver.wait_for("hold.expired", 1).await;
    assert_eq!(expired.len(), 1);
    assert!(signature_valid(
        &secret,
        expired[0].header("Boxoffice-Signature"),
        &expired[0].body
    ));
    let body = expired[0].json();
    assert_eq!(body["type"], "hold.expired");
    assert_eq!(
        body["data"]["hold_id"].as_str(),
        Some(hold_id.as_str()),
        "{body}"
    );
    assert_eq!(
        body["data"]["show_id"].as_str(),
        Some(fixture.show_id.as_str()),
        "{body}"
    );
    assert_eq!(
        body["data"]["user_id"].as_str(),
        Some(user.id.as_str()),
        "{body}"
    );
    assert_eq!(body["data"]["seats"], json!(["A-1-1", "A-1-2"]), "{body}");
    assert!(
        receiver.of_type("booking.confirmed").is_empty(),
        "it asked for hold.expired only"
    );
}

async fn the_admin_api_refuses_bad_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let customer = app.register_user().await;
    let good = json!({"url": "https://example.com/hooks"});

    app.post("/v1/webhooks", None, &good)
        .await
        .expect_problem(401, "unauthorized", "no token");
    app.get("/v1/webhooks", None)
        .await
        .expect_problem(401, "unauthorized", "no token");
    app.post("/v1/webhooks", Some(customer.token.as_str()), &good)
        .await
        .expect_problem(403, "forbidden", "customer creates");
    app.get("/v1/webhooks", Some(customer.token.as_str()))
        .await
        .expect_problem(403, "forbidden", "customer lists");

    let invalid = |resp: Resp, field: &str, what: &str| {
        let violations = problem_violations(&resp, &[400], Some("invalid_request"), Some(field));
        assert!(
            violations.is_empty(),
            "{what}: {violations:?}\n  answer: {resp}"
        );
    };
    for url in ["ftp://example.com/x", "not a url", "/relative/path", ""] {
        invalid(
            app.post("/v1/webhooks", app.admin(), &json!({"url": url}))
                .await,
            "url",
            url,
        );
    }
    let long = format!("https://example.com/{}", "a".repeat(2048));
    invalid(
        app.post("/v1/webhooks", app.admin(), &json!({"url": long}))
            .await,
        "url",
        "long url",
    );
    invalid(
        app.post(
            "/v1/webhooks",
            app.admin(),
            &json!({"url": "https://example.com/", "event_types": ["booking.confirmed", "booking.exploded"]}),
        )
        .await,
        "event_types",
        "unknown event type",
    );
    app.post(
        "/v1/webhooks",
        app.admin(),
        &json!({"url": "https://example.com/", "secret": "mine"}),
    )
    .await
    .expect_problem(400, "invalid_request", "unknown field");
    app.post("/v1/webhooks", app.admin(), &json!({"url": 42}))
        .await
        .expect_problem(400, "invalid_request", "url not a string");
    let not_json = app
        .request(reqwest::Method::POST, "/v1/webhooks")
        .token(&app.admin_token)
        .raw(Some("application/json"), "{not json")
        .send()
        .await;
    not_json.expect_problem(400, "invalid_request", "non-JSON body");

    let created = app.post("/v1/webhooks", app.admin(), &good).await;
    let id = id_of(created.expect(201, "create"), &created);
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["event_types"], json!([]));
    invalid(
        app.patch(
            &format!("/v1/webhooks/{id}"),
            app.admin(),
            &json!({"url": "gopher://x"}),
        )
        .await,
        "url",
        "patch with a bad url",
    );
    app.patch(
        &format!("/v1/webhooks/{id}"),
        app.admin(),
        &json!({"enabled": false}),
    )
    .await
    .expect_problem(400, "invalid_request", "patch with an unknown field");
    app.patch(
        &format!("/v1/webhooks/{id}"),
        Some(customer.token.as_str()),
        &json!({"active": false}),
    )
    .await
    .expect_problem(403, "forbidden", "customer patches");
    let patched = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            app.admin(),
            &json!({"event_types": ["hold.expired"], "description": "expiries"}),
        )
        .await;
    let patched = patched.expect(200, "patch");
    assert_eq!(patched["event_types"], json!(["hold.expired"]));
    assert_eq!(patched["description"], "expiries");
    app.get(
        &format!("/v1/webhooks/{id}/deliveries?status=LOST"),
        app.admin(),
    )
    .await
    .expect_problem(400, "invalid_request", "unknown status");
    app.get(
        &format!("/v1/webhooks/{id}/deliveries?color=red"),
        app.admin(),
    )
    .await
    .expect_problem(400, "invalid_request", "unknown query parameter");

    for path in [
        "/v1/webhooks/whk_01JAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        "/v1/webhooks/nonsense".to_string(),
        "/v1/webhooks/whk_01JAAAAAAAAAAAAAAAAAAAAAAA/deliveries".to_string(),
        delivery_path(&id, "whd_01JAAAAAAAAAAAAAAAAAAAAAAA"),
        delivery_path(&id, "nonsense"),
    ] {
        app.get(&path, app.admin())
            .await
            .expect_problem(404, "not_found", &path);
    }
    app.post(
        &format!(
            "{}/retry",
            delivery_path(&id, "whd_01JAAAAAAAAAAAAAAAAAAAAAAA")
        ),
        app.admin(),
        &json!({}),
    )
    .await
    .expect_problem(404, "not_found", "retry of an unknown delivery");
    app.delete(&format!("/v1/webhooks/{id}"), Some(customer.token.as_str()))
        .await
        .expect_problem(403, "forbidden", "customer deletes");
    app.delete(&format!("/v1/webhooks/{id}"), app.admin())
        .await
        .expect(204, "delete");
    app.get(&format!("/v1/webhooks/{id}"), app.admin())
        .await
        .expect_problem(404, "not_found", "deleted");
    app.delete(&format!("/v1/webhooks/{id}"), app.admin())
        .await
        .expect_problem(404, "not_found", "deleted twice");
    app.patch(
        &format!("/v1/webhooks/{id}"),
        app.admin(),
        &json!({"active": true}),
    )
    .await
    .expect_problem(404, "not_found", "patch after delete");

    let openapi = app.get("/openapi.json", None).await;
    let paths = &openapi.expect(200, "openapi")["paths"];
    for path in [
        "/v1/webhooks",
        "/v1/webhooks/{id}",
        "/v1/webhooks/{id}/deliveries",
        "/v1/webhooks/{id}/deliveries/{delivery_id}",
        "/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
    ] {
        assert!(
            paths.get(path).is_some(),
            "{path} is not in the OpenAPI document"
        );
    }
}

/// The organizer pages: a form post subscribes and shows the secret once
/// (it verifies what the receiver gets), the log page lists the delivery.
async fn the_admin_pages_subscribe_and_show_the_log(backend: Backend) {
    let app = TestApp::spawn_with(backend, &FAST_RETRIES).await;
    let receiver = Receiver::start().await;
    let customer = app.register_user().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let cookie = |token: &str| format!("bx_session={token}");
    let page = |token: &str, path: &str| {
        client
            .get(app.url(path))
            .header(reqwest::header::COOKIE, cookie(token))
            .send()
    };
    let customer_page = page(&customer.token, "/admin/webhooks").await.expect("GET");
    assert_eq!(customer_page.status(), 403);

    let refused = client
        .post(app.url("/admin/webhooks"))
        .header(reqwest::header::COOKIE, cookie(&app.admin_token))
        .form(&[("url", "ftp://nope")])
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap_or_default().contains("url"));

    let created = client
        .post(app.url("/admin/webhooks"))
        .header(reqwest::header::COOKIE, cookie(&app.admin_token))
        .form(&[
            ("url", receiver.url.as_str()),
            ("event_types", "booking.confirmed"),
            ("description", "from the page"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    let html = created.text().await.unwrap_or_default();
    let secret: String = html
        .split("whsec_")
        .nth(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_hexdigit).collect())
        .map(|hex: String| format!("whsec_{hex}"))
        .expect("the secret on the page");
    let listed = app.list_all("/v1/webhooks", app.admin()).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["event_types"], json!(["booking.confirmed"]));
    let subscription_id = listed[0]["id"].as_str().expect("id").to_string();

    let fixture = app.fixture(1, 2, None, json!({})).await;
    book(&app, &customer, &fixture.show_id, &["A-1-1"]).await;
    let received = receiver.wait_for("booking.confirmed", 1).await;
    assert!(
        signature_valid(
            &secret,
            received[0].header("Boxoffice-Signature"),
            &received[0].body
        ),
        "the secret shown on the page signs the deliveries"
    );
    wait_delivered(&app, &subscription_id, 1).await;
    let log = page(
        &app.admin_token,
        &format!("/admin/webhooks/{subscription_id}"),
    )
    .await
    .expect("GET");
    assert_eq!(log.status(), 200);
    let html = log.text().await.unwrap_or_default();
    assert!(
        html.contains("booking.confirmed") && html.contains("DELIVERED"),
        "{html}"
    );
    let list = page(&app.admin_token, "/admin/webhooks")
        .await
        .expect("GET");
    let html = list.text().await.unwrap_or_default();
    assert!(html.contains(&receiver.url), "{html}");
    assert!(!html.contains(&secret), "the secret is shown once only");
}

/// A redirect (not followed), a receiver slower than the timeout and a
/// closed port are all failed attempts, logged with what happened, retried
/// until the window passes.
async fn redirects_timeouts_and_refused_connections_are_failed_attempts(backend: Backend) {
    let mut env = FAST_RETRIES.to_vec();
    env.push(("BOXOFFICE_WEBHOOK_RETRY_WINDOW_SECONDS", "2"));
    env.push(("BOXOFFICE_WEBHOOK_TIMEOUT_MS", "300"));
    let app = TestApp::spawn_with(backend, &env).await;
    let receiver = Receiver::start().await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let base = receiver.url.trim_end_matches("/hook").to_string();
    let mut subscriptions = Vec::new();
    for url in [
        format!("{base}/moved"),
        format!("{base}/slow"),
        format!("http://127.0.0.1:{closed_port}/hook"),
    ] {
        let created = subscribe(&app, &url, &["booking.confirmed"]).await;
        subscriptions.push(id_of(&created, &created));
    }
    let fixture = app.fixture(1, 2, None, json!({})).await;
    let user = app.register_user().await;
    book(&app, &user, &fixture.show_id, &["A-1-2"]).await;

    let mut failed = Vec::new();
    for subscription_id in &subscriptions {
        let delivery = poll_until(
            "the delivery FAILED",
            DELIVERY_DEADLINE,
            POLL_EVERY,
            || async {
                let log = deliveries(&app, subscription_id, "?status=FAILED").await;
                log.into_iter()
                    .next()
                    .ok_or_else(|| format!("{subscription_id}: not failed yet"))
            },
        )
        .await;
        let detail = app
            .get(
                &delivery_path(subscription_id, delivery["id"].as_str().expect("id")),
                app.admin(),
            )
            .await;
        failed.push(detail.expect(200, "delivery").clone());
    }
    let [moved, slow, closed] = [&failed[0], &failed[1], &failed[2]];
    for attempt in moved["attempt_log"].as_array().expect("log") {
        assert_eq!(attempt["status_code"], 307, "{moved}");
    }
    assert!(receiver.received().is_empty(), "the redirect was followed");
    for attempt in slow["attempt_log"].as_array().expect("log") {
        assert!(attempt["status_code"].is_null(), "{slow}");
        assert_eq!(attempt["error"], "timed out", "{slow}");
    }
    for attempt in closed["attempt_log"].as_array().expect("log") {
        assert!(attempt["status_code"].is_null(), "{closed}");
        assert!(
            attempt["error"]
                .as_str()
                .is_some_and(|e| e.contains("connection")),
            "{closed}"
        );
    }
    for delivery in failed {
        assert!(
            delivery["attempt_log"]
                .as_array()
                .is_some_and(|log| log.len() >= 2),
            "{delivery}"
        );
    }
}
