//! Rate limits (issue 4, ADR 0013): 429 `rate_limited` with a `Retry-After`
//! that holds, per-user and per-address budgets, the brake on failed logins,
//! limits shared by two nodes through Redis, and the configuration. Each
//! test starts its server with small limits of its own; the rest of the
//! suite runs with the defaults, which it must never trip.

use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::redis::{counter, RedisServer};

both_backends!(
    over_the_limit_is_429_with_a_retry_after_that_holds,
    users_and_addresses_have_budgets_of_their_own,
    failed_logins_slow_down_their_account,
    a_proxy_header_names_the_client,
    rate_limits_can_be_switched_off
);

/// PostgreSQL only: nodes share a database; the names follow
/// `both_backends!` (`rate_limits::two_nodes_share_limits_through_redis::postgres`).
macro_rules! postgres_only {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )+};
}

postgres_only!(
    two_nodes_share_limits_through_redis,
    without_redis_each_node_limits_on_its_own
);

/// Asserts a 429 `rate_limited` problem whose `Retry-After` header is whole
/// seconds, at least 1, and equal to its `retry_after_seconds`; returns it.
#[track_caller]
fn retry_after(resp: &Resp, what: &str) -> u64 {
    resp.expect_problem(429, "rate_limited", what);
    let header = resp
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: 429 without Retry-After: {resp}"));
    let seconds: u64 = header
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {header:?} is not whole seconds"));
    assert!(seconds >= 1, "{what}: Retry-After {seconds}");
    assert_eq!(
        resp.body["retry_after_seconds"].as_u64(),
        Some(seconds),
        "{what}: retry_after_seconds and Retry-After agree: {resp}"
    );
    seconds
}

fn hold_body(show_id: &str, seat: &str) -> Value {
    json!({"show_id": show_id, "seat_ids": [seat]})
}

/// Two holds a burst, then one every 2 s: the third is refused with a
/// Retry-After of at most 2 s; requests before it has elapsed are still
/// refused (before their bodies are parsed); after waiting it, the next hold
/// passes. Refused requests write nothing, are counted in /metrics, and the
/// OpenAPI document lists the 429.
async fn over_the_limit_is_429_with_a_retry_after_that_holds(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("BOXOFFICE_RATE_LIMIT_HOLDS", "user=1/2s:2")]).await;
    let fixture = app
        .fixture(1, 10, None, json!({"max_tickets_per_user": 10}))
        .await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;

    for seat in ["A-1-1", "A-1-2"] {
        app.hold(&user.token, &hold_body(show_id, seat))
            .await
            .expect(201, "a hold within the burst");
    }
    let refused = app.hold(&user.token, &hold_body(show_id, "A-1-3")).await;
    let wait = retry_after(&refused, "the third hold at once");
    assert!(wait <= 2, "one request per 2 s: Retry-After {wait}");

    // The body of a refused request is read (not parsed), so a client still
    // sending it gets the 429 and its connection stays usable.
    let padded = json!({"show_id": show_id, "seat_ids": ["A-1-3"], "padding": "x".repeat(500_000)});
    retry_after(
        &app.hold(&user.token, &padded).await,
        "a 500 KB body over the limit",
    );
    let early = app
        .request(Method::POST, "/v1/holds")
        .token(&user.token)
        .raw(Some("application/json"), "{not json")
        .send()
        .await;
    let early_wait = retry_after(&early, "a request before Retry-After has elapsed");
    assert!(early_wait <= wait, "{early_wait} > {wait}");
    assert_eq!(
        summary(&app.seat_map(show_id).await),
        (8, 2, 0),
        "refused holds wrote nothing"
    );

    tokio::time::sleep(Duration::from_secs(early_wait)).await;
    app.hold(&user.token, &hold_body(show_id, "A-1-3"))
        .await
        .expect(201, "the hold after waiting Retry-After");

    assert!(counter(&app.api, "boxoffice_rate_limited_total").await >= 2.0);
    let openapi = app.get("/openapi.json", None).await;
    let paths = &openapi.expect(200, "the OpenAPI document")["paths"];
    for (path, method) in [
        ("/v1/holds", "post"),
        ("/v1/bookings", "post"),
        ("/v1/bookings/{id}/cancel", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/auth/register", "post"),
        ("/v1/shows/{id}/queue", "post"),
        ("/v1/shows/{id}/queue/{ticket_id}", "get"),
    ] {
        let response = &paths[path][method]["responses"]["429"];
        assert!(
            response["headers"]["Retry-After"].is_object(),
            "{method} {path} documents 429 with Retry-After: {}",
            paths[path][method]
        );
    }
    assert!(paths["/v1/shows/{id}/seats"]["get"]["responses"]["429"].is_null());
}

/// Per user 2 holds, per address 5, all from 127.0.0.1: each user gets a
/// budget of their own, a user over their limit does not use up the
/// address's, and once the address is over its limit every user behind it
/// (and a request without a token) is refused. Other classes are separate.
async fn users_and_addresses_have_budgets_of_their_own(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_RATE_LIMIT_HOLDS", "user=2/m:2,ip=5/m:5"),
            ("BOXOFFICE_RATE_LIMIT_QUEUE", "user=1/m:1"),
        ],
    )
    .await;
    let fixture = app
        .fixture(1, 10, None, json!({"max_tickets_per_user": 10}))
        .await;
    let show_id = fixture.show_id.as_str();
    let users = app.register_users(4).await;
    let (alice, bob, carol, dave) = (&users[0], &users[1], &users[2], &users[3]);
    let mut seats = fixture.seat_ids.iter();
    let mut hold = |user: &TestUser| {
        let body = hold_body(show_id, seats.next().expect("a free seat"));
        let (api, token) = (app.api.clone(), user.token.clone());
        async move { api.hold(&token, &body).await }
    };

    let alice_hold = hold(alice).await;
    alice_hold.expect(201, "alice's first hold");
    hold(alice).await.expect(201, "alice's second hold");
    retry_after(&hold(alice).await, "alice over her own limit");
    hold(bob)
        .await
        .expect(201, "bob's first hold: his own budget");
    hold(bob).await.expect(201, "bob's second hold");
    retry_after(&hold(bob).await, "bob over his own limit");
    hold(carol)
        .await
        .expect(201, "carol's hold: the address's fifth");
    retry_after(&hold(carol).await, "carol: the address is over its limit");
    retry_after(&hold(dave).await, "dave: the address is over its limit");
    let anonymous = app
        .post("/v1/holds", None, &hold_body(show_id, "A-1-10"))
        .await;
    retry_after(&anonymous, "no token: limited by the address");

    // Bookings are another class: alice can still pay.
    let hold_id = id_of(&alice_hold.body, &alice_hold);
    app.book(&alice.token, &hold_id, &unique_key(), "tok_visa")
        .await
        .expect(201, "alice books: bookings have limits of their own");

    // The waiting room's routes are limited, whatever they answer today.
    let queue = format!("/v1/shows/{show_id}/queue");
    let first = app.post(&queue, Some(&alice.token), &json!({})).await;
    assert_ne!(first.status(), 429, "the first queue request: {first}");
    retry_after(
        &app.post(&queue, Some(&alice.token), &json!({})).await,
        "a second queue request",
    );
    retry_after(
        &app.get(&format!("{queue}/qtk_unknown"), Some(&alice.token))
            .await,
        "polling a queue ticket is the same class",
    );
    let bob_queue = app.post(&queue, Some(&bob.token), &json!({})).await;
    assert_ne!(bob_queue.status(), 429, "bob's queue request: {bob_queue}");
}

/// Three failed logins per account, then one a minute: the fourth attempt
/// is refused even with the right password, also with the e-mail written
/// differently; successful logins never count; another account is not
/// affected, and the account's tokens keep working.
async fn failed_logins_slow_down_their_account(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("BOXOFFICE_RATE_LIMIT_LOGIN", "account=1/m:3")]).await;
    let ada = app.register_user().await;
    let bob = app.register_user().await;

    for _ in 0..5 {
        app.login(&bob.email, &bob.password)
            .await
            .expect(200, "right logins never count");
    }
    for attempt in 1..=3 {
        app.login(&ada.email, "wrong-password-123")
            .await
            .expect_problem(
                401,
                "invalid_credentials",
                &format!("wrong password {attempt}"),
            );
    }
    let refused = app.login(&ada.email, &ada.password).await;
    let wait = retry_after(&refused, "the right password after three failures");
    assert!(wait <= 60, "one attempt a minute: Retry-After {wait}");
    retry_after(
        &app.login(&ada.email.to_uppercase(), &ada.password).await,
        "the same account written in capitals",
    );
    retry_after(
        &app.login(&ada.email, "wrong-password-123").await,
        "another guess",
    );

    app.login(&bob.email, "wrong-password-123")
        .await
        .expect_problem(401, "invalid_credentials", "bob's wrong password");
    app.login(&bob.email, &bob.password)
        .await
        .expect(200, "bob is not affected");
    app.get("/v1/me", Some(&ada.token))
        .await
        .expect(200, "ada's token still works");
}

/// Behind a proxy that appends the client's address to X-Forwarded-For:
/// each forwarded address has its own budget, the rightmost address is the
/// one that counts (what a client writes before it is ignored), and a
/// request without the header counts as its socket peer.
async fn a_proxy_header_names_the_client(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_RATE_LIMIT_HOLDS", "ip=2/m:2"),
            ("BOXOFFICE_CLIENT_IP_HEADER", "X-Forwarded-For"),
        ],
    )
    .await;
    let fixture = app
        .fixture(1, 10, None, json!({"max_tickets_per_user": 10}))
        .await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;
    let hold_from = |forwarded: Option<&'static str>, seat: &str| {
        let mut request = app
            .request(Method::POST, "/v1/holds")
            .token(&user.token)
            .json(&hold_body(show_id, seat));
        if let Some(forwarded) = forwarded {
            request = request.header("X-Forwarded-For", forwarded);
        }
        request.send()
    };

    hold_from(Some("203.0.113.1"), "A-1-1")
        .await
        .expect(201, "first from .1");
    hold_from(Some("203.0.113.1"), "A-1-2")
        .await
        .expect(201, "second from .1");
    retry_after(
        &hold_from(Some("203.0.113.1"), "A-1-3").await,
        "third from .1",
    );
    retry_after(
        &hold_from(Some("198.51.100.9, 203.0.113.1"), "A-1-3").await,
        "a made-up address left of the proxy's is ignored",
    );
    hold_from(Some("203.0.113.2"), "A-1-3")
        .await
        .expect(201, "another forwarded address");
    hold_from(None, "A-1-4")
        .await
        .expect(201, "no header: the socket peer");
}

/// `BOXOFFICE_RATE_LIMITS=off` switches every limit off, tight ones too.
async fn rate_limits_can_be_switched_off(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_RATE_LIMITS", "off"),
            ("BOXOFFICE_RATE_LIMIT_HOLDS", "user=1/m:1,ip=1/m:1"),
            ("BOXOFFICE_RATE_LIMIT_LOGIN", "account=1/m:1"),
        ],
    )
    .await;
    let fixture = app
        .fixture(1, 10, None, json!({"max_tickets_per_user": 10}))
        .await;
    let user = app.register_user().await;
    for seat in ["A-1-1", "A-1-2", "A-1-3"] {
        app.hold(&user.token, &hold_body(&fixture.show_id, seat))
            .await
            .expect(201, "no limit");
    }
    for _ in 0..3 {
        app.login(&user.email, "wrong-password-123")
            .await
            .expect_problem(401, "invalid_credentials", "no brake");
    }
    app.login(&user.email, &user.password)
        .await
        .expect(200, "no brake");
}

/// Two nodes with one Redis: a user's requests spread over both are
/// limited together, and so are failed logins; the keys are in Redis.
async fn two_nodes_share_limits_through_redis(backend: Backend) {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("REDIS_URL", url.as_str()),
            ("BOXOFFICE_RATE_LIMIT_HOLDS", "user=3/m:3"),
            ("BOXOFFICE_RATE_LIMIT_LOGIN", "account=1/m:2"),
        ],
    )
    .await;
    let peer = app.spawn_peer().await;
    let fixture = app
        .fixture(1, 10, None, json!({"max_tickets_per_user": 10}))
        .await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;
    let nodes = [&app.api, &peer.api];

    for (index, seat) in ["A-1-1", "A-1-2", "A-1-3"].iter().enumerate() {
        nodes[index % 2]
            .hold(&user.token, &hold_body(show_id, seat))
            .await
            .expect(201, &format!("hold {index} on node {}", index % 2));
    }
    for (index, node) in nodes.iter().enumerate() {
        retry_after(
            &node.hold(&user.token, &hold_body(show_id, "A-1-4")).await,
            &format!("node {index}: the user's fourth hold across both nodes"),
        );
    }

    for (index, node) in nodes.iter().enumerate() {
        node.login(&user.email, "wrong-password-123")
            .await
            .expect_problem(
                401,
                "invalid_credentials",
                &format!("failure on node {index}"),
            );
    }
    retry_after(
        &app.login(&user.email, &user.password).await,
        "two failures on two nodes use up the account's burst",
    );

    let keys = redis.cli(&["--scan", "--pattern", "bo:rl:*"]).await;
    assert!(
        keys.lines()
            .any(|key| key == format!("bo:rl:holds:user:{}", user.id)),
        "the user's key is in Redis: {keys}"
    );
    assert!(
        keys.lines()
            .any(|key| key.starts_with("bo:rl:login:account:")),
        "the account's key is in Redis: {keys}"
    );
}

/// Without Redis each node keeps its own limits: the same user gets the
/// whole burst on each node.
async fn without_redis_each_node_limits_on_its_own(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("BOXOFFICE_RATE_LIMIT_HOLDS", "user=2/m:2")]).await;
    let peer = app.spawn_peer().await;
    let fixture = app
        .fixture(1, 10, None, json!({"max_tickets_per_user": 10}))
        .await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;
    let mut seats = fixture.seat_ids.iter();
    for (index, node) in [&app.api, &peer.api].iter().enumerate() {
        for _ in 0..2 {
            let seat = seats.next().expect("a free seat");
            node.hold(&user.token, &hold_body(show_id, seat))
                .await
                .expect(201, &format!("node {index}: within its own burst"));
        }
        retry_after(
            &node.hold(&user.token, &hold_body(show_id, "A-1-10")).await,
            &format!("node {index}: over its own burst"),
        );
    }
}

/// A limit the server cannot read stops it at start, naming the option and
/// what is wrong, before it touches a database.
#[tokio::test]
async fn a_bad_limit_stops_the_server_with_a_clear_message() {
    for (variable, value, mentions) in [
        (
            "BOXOFFICE_RATE_LIMIT_HOLDS",
            "user=10/x",
            "the unit must be s, m or h",
        ),
        ("BOXOFFICE_RATE_LIMIT_AUTH", "users=1/s", "unknown scope"),
        ("BOXOFFICE_RATE_LIMIT_LOGIN", "account=0/s", "at least one"),
        ("BOXOFFICE_RATE_LIMITS", "maybe", "maybe"),
    ] {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
            .arg("serve")
            .env("BOXOFFICE_LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", "sqlite:///nonexistent-directory/never.db")
            .env(variable, value)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn `boxoffice serve`");
        let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{variable}={value}: the server did not stop"))
            .expect("wait for `boxoffice serve`");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{variable}={value} must stop the server"
        );
        assert!(
            stderr.contains(mentions) && stderr.contains("rate-limit"),
            "{variable}={value}: the message names the option and says what is wrong: {stderr}"
        );
    }
}
