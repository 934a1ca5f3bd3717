//! The virtual waiting room (API.md "Waiting room"): queue tickets,
//! first-come-first-served admission, the shuffled pre-queue, admission
//! tokens on holds, the proof of work on joining, the position stream, and
//! two nodes agreeing on every ticket (PostgreSQL alone, and with Redis).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::*;
use crate::redis::RedisServer;

/// Runs `async fn name(Option<&RedisServer>)` twice: the queue in
/// PostgreSQL (`database`), and in a Redis of its own (`redis`).
macro_rules! both_backends_two_nodes {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn database() {
                super::$name(None).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redis() {
                let redis = crate::redis::RedisServer::start().await;
                super::$name(Some(&redis)).await
            }
        }
    };
}

both_backends!(
    waiting_room_admission,
    admission_follows_the_join_order,
    the_pre_queue_is_shuffled_at_opening,
    admission_tokens_expire,
    proof_of_work_on_joining,
    pausing_and_changing_the_rate,
    the_position_stream_ends_with_admission,
    bad_queue_requests,
);

fn queue_path(show_id: &str) -> String {
    format!("/v1/shows/{show_id}/queue")
}

fn ticket_path(show_id: &str, ticket_id: &str) -> String {
    format!("/v1/shows/{show_id}/queue/{ticket_id}")
}

async fn hold_with_admission(
    api: &Api,
    user: &TestUser,
    show_id: &str,
    seat: &str,
    admission: Option<&str>,
) -> Resp {
    let mut request = api
        .request(Method::POST, "/v1/holds")
        .token(&user.token)
        .json(&json!({"show_id": show_id, "seat_ids": [seat]}));
    if let Some(token) = admission {
        request = request.header("X-Admission-Token", token);
    }
    request.send().await
}

/// Asserts the queue-ticket shape of API.md.
#[track_caller]
fn assert_ticket_shape(ticket: &Value, show_id: &str) {
    assert!(
        ticket["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("qtk_")),
        "ticket id: {ticket}"
    );
    assert_eq!(ticket["show_id"], show_id, "ticket show_id: {ticket}");
    let status = ticket["status"].as_str().unwrap_or("");
    assert!(
        matches!(status, "WAITING" | "ADMITTED" | "EXPIRED"),
        "ticket status: {ticket}"
    );
    assert!(
        ticket["position"].is_u64(),
        "position is a number: {ticket}"
    );
    assert!(
        ticket["estimated_wait_seconds"].is_u64(),
        "estimated_wait_seconds is a number: {ticket}"
    );
    if status == "ADMITTED" {
        assert!(
            ticket["admission_token"].is_string(),
            "ADMITTED has a token: {ticket}"
        );
        parse_time(&ticket["admission_expires_at"]);
    } else {
        assert!(
            ticket["admission_token"].is_null(),
            "no token unless ADMITTED: {ticket}"
        );
        assert!(
            ticket["admission_expires_at"].is_null(),
            "no expiry unless ADMITTED: {ticket}"
        );
    }
}

async fn join(api: &Api, user: &TestUser, show_id: &str) -> Value {
    let resp = api
        .post(&queue_path(show_id), Some(&user.token), &json!({}))
        .await;
    let ticket = resp.expect(201, "join the waiting room").clone();
    assert_ticket_shape(&ticket, show_id);
    ticket
}

async fn read_ticket(api: &Api, user: &TestUser, show_id: &str, ticket_id: &str) -> Value {
    let resp = api
        .get(&ticket_path(show_id, ticket_id), Some(&user.token))
        .await;
    let ticket = resp.expect(200, "read a queue ticket").clone();
    assert_ticket_shape(&ticket, show_id);
    ticket
}

/// Joins the queue and waits until admitted; returns the admission token.
async fn admitted(api: &Api, user: &TestUser, show_id: &str) -> String {
    let ticket = join(api, user, show_id).await;
    let ticket_id = id_of(&ticket, &ticket);
    let again = api
        .post(&queue_path(show_id), Some(&user.token), &json!({}))
        .await;
    assert_eq!(
        again.expect(200, "join again")["id"],
        ticket_id.as_str(),
        "joining twice gives the same ticket: {again}"
    );

    let path = ticket_path(show_id, &ticket_id);
    let ticket: Value = poll_until(
        "admission",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let resp = api.get(&path, Some(&user.token)).await;
            if resp.status() == 200 && resp.body["status"] == "ADMITTED" {
                Ok(resp.body.clone())
            } else {
                Err(resp.to_string())
            }
        },
    )
    .await;
    assert_ticket_shape(&ticket, show_id);
    ticket["admission_token"]
        .as_str()
        .unwrap_or_else(|| panic!("ADMITTED without admission_token: {ticket}"))
        .to_string()
}

fn waiting_room(rate: u32) -> Value {
    json!({"waiting_room": {"enabled": true, "admit_per_minute": rate}})
}

async fn waiting_room_admission(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, waiting_room(6000)).await;
    let show_id = fixture.show_id.as_str();
    let alice = app.register_user().await;
    let bob = app.register_user().await;

    hold_with_admission(&app, &alice, show_id, "A-1-1", None)
        .await
        .expect_problem(403, "admission_required", "hold without admission");
    let token = admitted(&app, &alice, show_id).await;
    hold_with_admission(
        &app,
        &alice,
        show_id,
        "A-1-1",
        Some("forged.admission.token"),
    )
    .await
    .expect_problem(403, "admission_invalid", "a garbage admission token");
    let mut forged: Vec<char> = token.chars().collect();
    let middle = forged.len() / 2;
    forged[middle] = if forged[middle] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    hold_with_admission(&app, &alice, show_id, "A-1-1", Some(&forged))
        .await
        .expect_problem(403, "admission_invalid", "a forged admission token");
    // A token signed with another key: same claims, wrong signature.
    let resigned = format!(
        "{}.{}",
        token.rsplit_once('.').map(|(head, _)| head).unwrap_or(""),
        base64url_encode(&[7u8; 32])
    );
    hold_with_admission(&app, &alice, show_id, "A-1-1", Some(&resigned))
        .await
        .expect_problem(403, "admission_invalid", "a re-signed admission token");
    // The caller's access token is no admission token.
    hold_with_admission(&app, &alice, show_id, "A-1-1", Some(&alice.token))
        .await
        .expect_problem(403, "admission_invalid", "an access token as admission");
    hold_with_admission(&app, &bob, show_id, "A-1-1", Some(&token))
        .await
        .expect_problem(403, "admission_invalid", "another user's admission token");
    hold_with_admission(&app, &alice, show_id, "A-1-1", Some(&token))
        .await
        .expect(201, "hold with a valid admission token");
    // The admission lasts: a second hold with the same token works too.
    hold_with_admission(&app, &alice, show_id, "A-1-2", Some(&token))
        .await
        .expect(201, "a second hold while admitted");

    // The token is for this show only.
    let other_show = app.create_show(&fixture.event_id, &fixture.venue_id, json!({"prices": prices_for(true, false), "waiting_room": {"enabled": true, "admit_per_minute": 6000}})).await;
    let other_show_id = id_of(&other_show, &other_show);
    hold_with_admission(&app, &alice, &other_show_id, "A-1-1", Some(&token))
        .await
        .expect_problem(
            403,
            "admission_invalid",
            "an admission token for another show",
        );

    let map = app.seat_map(show_id).await;
    assert_eq!(
        summary(&map),
        (8, 2, 0),
        "only the admitted holds were written"
    );

    // A show without a waiting room needs no token and has no queue.
    let open_show = app
        .create_show(
            &fixture.event_id,
            &fixture.venue_id,
            json!({"prices": prices_for(true, false)}),
        )
        .await;
    let open_show_id = id_of(&open_show, &open_show);
    hold_with_admission(&app, &bob, &open_show_id, "A-1-1", None)
        .await
        .expect(201, "no waiting room, no token");
    app.post(&queue_path(&open_show_id), Some(&bob.token), &json!({}))
        .await
        .expect_problem(
            409,
            "waiting_room_disabled",
            "joining a show without a waiting room",
        );
}

/// After the opening, buyers who join in a known order are admitted in that
/// order: at every instant the admitted ones are a prefix of the join order.
async fn admission_follows_the_join_order(backend: Backend) {
    const BUYERS: usize = 6;
    let app = TestApp::spawn(backend).await;
    // One buyer every 400 ms: slow enough to watch the order.
    let fixture = app.fixture(1, 10, None, waiting_room(150)).await;
    let show_id = fixture.show_id.as_str();
    let users = app.register_users(BUYERS).await;
    let mut tickets = Vec::new();
    let mut waited = 0;
    for (index, user) in users.iter().enumerate() {
        let ticket = join(&app, user, show_id).await;
        if ticket["status"] == "WAITING" {
            let position = ticket["position"].as_u64().unwrap_or(0);
            assert!(
                position >= 1 && position <= index as u64 + 1,
                "buyer {index} is at most place {}: {ticket}",
                index + 1
            );
            waited += 1;
        }
        tickets.push(id_of(&ticket, &ticket));
    }
    assert!(
        waited >= 3,
        "at 150 a minute most of the six must wait: {waited} waited"
    );
    let started = std::time::Instant::now();
    let mut last_positions = [u64::MAX; BUYERS];
    loop {
        let mut statuses = Vec::new();
        for (index, user) in users.iter().enumerate() {
            let ticket = read_ticket(&app, user, show_id, &tickets[index]).await;
            let status = ticket["status"].as_str().unwrap_or("").to_string();
            if status == "WAITING" {
                let position = ticket["position"].as_u64().unwrap_or(0);
                assert!(
                    position <= last_positions[index],
                    "positions only go down: {} then {position}",
                    last_positions[index]
                );
                last_positions[index] = position;
            }
            statuses.push(status);
        }
        let admitted = statuses.iter().take_while(|s| *s == "ADMITTED").count();
        assert!(
            statuses[admitted..].iter().all(|s| s == "WAITING"),
            "admitted out of join order: {statuses:?}"
        );
        if admitted == BUYERS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not all admitted within 30 s: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pearson's chi-square of a table against a uniform expectation.
fn chi_square(counts: &[u64], expected: f64) -> f64 {
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// Buyers who join before `sales_start` get places drawn at random at the
/// opening: every show's pre-queue is a permutation of 1..N, and over many
/// shows the join order tells nothing about the place (chi-square).
async fn the_pre_queue_is_shuffled_at_opening(backend: Backend) {
    const BUYERS: usize = 5;
    const SHOWS: usize = 40;
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, json!({})).await;
    let users = app.register_users(BUYERS).await;
    let sales_start = Utc::now() + chrono::Duration::seconds(4);
    // Paused: at the opening nobody is admitted, so positions are places.
    let overrides = json!({"prices": prices_for(true, false), "sales_start": rfc3339(sales_start),
        "waiting_room": {"enabled": true, "admit_per_minute": 60, "paused": true}});
    let mut shows = Vec::new();
    for _ in 0..SHOWS {
        let show = app
            .create_show(&fixture.event_id, &fixture.venue_id, overrides.clone())
            .await;
        shows.push(id_of(&show, &show));
    }
    // Everyone joins every show, in the same order, before the opening.
    let mut tickets: Vec<Vec<String>> = Vec::new();
    for show_id in &shows {
        let mut of_show = Vec::new();
        for (index, user) in users.iter().enumerate() {
            let ticket = join(&app, user, show_id).await;
            assert_eq!(ticket["status"], "WAITING", "pre-queue: {ticket}");
            assert_eq!(
                ticket["position"],
                (index + 1) as u64,
                "before the opening the position is the pre-queue's size: {ticket}"
            );
            assert!(
                ticket["estimated_wait_seconds"].as_u64().unwrap_or(0) >= 1,
                "the wait includes the time to the opening: {ticket}"
            );
            of_show.push(id_of(&ticket, &ticket));
        }
        tickets.push(of_show);
    }
    assert!(
        Utc::now() < sales_start,
        "the joins took too long for this test; they must end before the opening"
    );
    sleep_until_time(sales_start + chrono::Duration::milliseconds(200)).await;

    let mut counts = vec![0_u64; BUYERS * BUYERS];
    for (show_id, of_show) in shows.iter().zip(&tickets) {
        let mut places = Vec::new();
        for (index, user) in users.iter().enumerate() {
            let ticket = read_ticket(&app, user, show_id, &of_show[index]).await;
            assert_eq!(ticket["status"], "WAITING", "paused: {ticket}");
            let place = ticket["position"].as_u64().unwrap_or(0) as usize;
            assert!(
                (1..=BUYERS).contains(&place),
                "place within the pre-queue: {ticket}"
            );
            counts[index * BUYERS + place - 1] += 1;
            places.push(place);
        }
        places.sort_unstable();
        assert_eq!(
            places,
            (1..=BUYERS).collect::<Vec<_>>(),
            "show {show_id}: the pre-queue's places are a permutation"
        );
    }
    let statistic = chi_square(&counts, SHOWS as f64 / BUYERS as f64);
    // 16 degrees of freedom; 46.0 is the 0.9999 quantile: one false alarm in
    // ten thousand runs (CI runs this four times). Join order = place would
    // score 160.
    assert!(
        statistic < 46.0,
        "join order predicts the place: chi-square {statistic:.1}, table {counts:?}"
    );

    // Whoever joins after the opening comes after the whole pre-queue.
    let late = app.register_user().await;
    let ticket = join(&app, &late, &shows[0]).await;
    assert_eq!(
        ticket["position"],
        (BUYERS + 1) as u64,
        "after the opening: the back of the queue: {ticket}"
    );
}

async fn admission_tokens_expire(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("BOXOFFICE_ADMISSION_TTL_SECONDS", "2")]).await;
    let fixture = app.fixture(1, 10, None, waiting_room(6000)).await;
    let show_id = fixture.show_id.as_str();
    let alice = app.register_user().await;
    let token = admitted(&app, &alice, show_id).await;
    let ticket = join_existing(&app, &alice, show_id).await;
    let expires_at = parse_time(&ticket["admission_expires_at"]);
    assert!(
        expires_at <= Utc::now() + chrono::Duration::seconds(3),
        "a 2 s admission: {ticket}"
    );
    sleep_until_time(expires_at + chrono::Duration::milliseconds(300)).await;
    hold_with_admission(&app, &alice, show_id, "A-1-1", Some(&token))
        .await
        .expect_problem(403, "admission_invalid", "an expired admission token");
    let ticket_id = id_of(&ticket, &ticket);
    let expired = read_ticket(&app, &alice, show_id, &ticket_id).await;
    assert_eq!(expired["status"], "EXPIRED", "{expired}");
    // Joining again after the admission lapsed: a new ticket at the back.
    let again = app
        .post(&queue_path(show_id), Some(&alice.token), &json!({}))
        .await;
    let again = again.expect(201, "join again after expiry").clone();
    assert_ne!(again["id"], ticket_id.as_str(), "a new ticket: {again}");
}

/// The caller's existing ticket (200).
async fn join_existing(api: &Api, user: &TestUser, show_id: &str) -> Value {
    let resp = api
        .post(&queue_path(show_id), Some(&user.token), &json!({}))
        .await;
    resp.expect(200, "join again").clone()
}

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

fn hash(challenge: &str, nonce: u64) -> Vec<u8> {
    Sha256::digest(format!("{challenge}:{nonce}").as_bytes()).to_vec()
}

/// Solves as a client would: SHA-256(challenge ":" nonce) with `bits` zeros.
fn solve(challenge: &str, bits: u32) -> String {
    (0..u64::MAX)
        .find(|nonce| leading_zero_bits(&hash(challenge, *nonce)) >= bits)
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// A nonce that does NOT solve the challenge.
fn wrong_nonce(challenge: &str, bits: u32) -> String {
    (0..u64::MAX)
        .find(|nonce| leading_zero_bits(&hash(challenge, *nonce)) < bits)
        .map(|n| n.to_string())
        .unwrap_or_default()
}

async fn challenge(api: &Api, user: &TestUser, show_id: &str) -> (String, u32) {
    let resp = api
        .get(
            &format!("/v1/shows/{show_id}/queue/challenge"),
            Some(&user.token),
        )
        .await;
    let body = resp.expect(200, "a proof-of-work challenge");
    assert_eq!(body["algorithm"], "sha256", "{resp}");
    parse_time(&body["expires_at"]);
    (
        body["challenge"]
            .as_str()
            .unwrap_or_else(|| panic!("challenge: {resp}"))
            .to_string(),
        body["difficulty"].as_u64().unwrap_or(0) as u32,
    )
}

async fn proof_of_work_on_joining(backend: Backend) {
    const BITS: u32 = 12;
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, json!({"waiting_room": {"enabled": true, "admit_per_minute": 6000, "pow_difficulty": BITS}})).await;
    let show_id = fixture.show_id.as_str();
    let other_show = app.create_show(&fixture.event_id, &fixture.venue_id, json!({"prices": prices_for(true, false), "waiting_room": {"enabled": true, "pow_difficulty": BITS}})).await;
    let other_show_id = id_of(&other_show, &other_show);
    let alice = app.register_user().await;
    let bob = app.register_user().await;
    let path = queue_path(show_id);

    app.post(&path, Some(&alice.token), &json!({}))
        .await
        .expect_problem(403, "pow_required", "joining without a proof of work");
    let (text, bits) = challenge(&app, &alice, show_id).await;
    assert_eq!(bits, BITS, "the show's difficulty");
    let wrong = wrong_nonce(&text, BITS);
    app.post(
        &path,
        Some(&alice.token),
        &json!({"pow": {"challenge": text, "nonce": wrong}}),
    )
    .await
    .expect_problem(403, "pow_invalid", "a wrong solution");
    app.post(
        &path,
        Some(&alice.token),
        &json!({"pow": {"challenge": "not-a-challenge", "nonce": "1"}}),
    )
    .await
    .expect_problem(403, "pow_invalid", "a made-up challenge");
    let nonce = solve(&text, BITS);
    // Someone else's solution, or one for another show, is refused.
    app.post(
        &path,
        Some(&bob.token),
        &json!({"pow": {"challenge": text, "nonce": nonce}}),
    )
    .await
    .expect_problem(403, "pow_invalid", "another user's solution");
    app.post(
        &queue_path(&other_show_id),
        Some(&alice.token),
        &json!({"pow": {"challenge": text, "nonce": nonce}}),
    )
    .await
    .expect_problem(403, "pow_invalid", "a solution for another show");
    // The right solution is accepted (after the wrong nonce: a typo does not burn it).
    let ticket = app
        .post(
            &path,
            Some(&alice.token),
            &json!({"pow": {"challenge": text, "nonce": nonce}}),
        )
        .await;
    ticket.expect(201, "a right solution");
    // Replayed: refused, even by the same user.
    app.post(
        &path,
        Some(&alice.token),
        &json!({"pow": {"challenge": text, "nonce": nonce}}),
    )
    .await
    .expect_problem(403, "pow_invalid", "a replayed solution");
    // A fresh solution gives the same ticket back.
    let (text, _) = challenge(&app, &alice, show_id).await;
    let nonce = solve(&text, BITS);
    let again = app
        .post(
            &path,
            Some(&alice.token),
            &json!({"pow": {"challenge": text, "nonce": nonce}}),
        )
        .await;
    assert_eq!(
        again.expect(200, "join again with a new solution")["id"],
        ticket.body["id"],
        "{again}"
    );
    // Malformed solutions are 4xx problems, never 5xx.
    for body in [
        json!({"pow": {"challenge": text}}),
        json!({"pow": "x"}),
        json!({"pow": {"challenge": text, "nonce": "-1"}}),
        json!({"pow": {"challenge": text, "nonce": "9".repeat(500)}}),
    ] {
        let resp = app.post(&path, Some(&alice.token), &body).await;
        assert!(
            resp.status() == 400 || resp.status() == 403,
            "malformed solution {body}: {resp}"
        );
    }
}

/// The organizer pauses admission and changes the rate; the queue continues
/// from where it was.
async fn pausing_and_changing_the_rate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app
        .fixture(
            1,
            10,
            None,
            json!({"waiting_room": {"enabled": true, "admit_per_minute": 6000, "paused": true}}),
        )
        .await;
    let show_id = fixture.show_id.as_str();
    let users = app.register_users(4).await;
    let mut tickets = Vec::new();
    for user in &users {
        let ticket = join(&app, user, show_id).await;
        assert_eq!(
            ticket["status"], "WAITING",
            "paused: nobody is let in: {ticket}"
        );
        tickets.push(id_of(&ticket, &ticket));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (index, user) in users.iter().enumerate() {
        let ticket = read_ticket(&app, user, show_id, &tickets[index]).await;
        assert_eq!(ticket["status"], "WAITING", "still paused: {ticket}");
        assert_eq!(
            ticket["position"],
            (index + 1) as u64,
            "positions in join order: {ticket}"
        );
    }
    // Resume slowly: one every 2 s.
    let show_path = format!("/v1/shows/{show_id}");
    let patched = app
        .patch(
            &show_path,
            app.admin(),
            &json!({"waiting_room": {"paused": false, "admit_per_minute": 30}}),
        )
        .await;
    let patched = patched.expect(200, "resume admission");
    assert_eq!(patched["waiting_room"]["admit_per_minute"], 30, "{patched}");
    assert_eq!(
        patched["waiting_room"]["enabled"], true,
        "a PATCH keeps what it does not name: {patched}"
    );
    poll_until(
        "the first buyer admitted",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let ticket = read_ticket(&app, &users[0], show_id, &tickets[0]).await;
            if ticket["status"] == "ADMITTED" {
                Ok(())
            } else {
                Err(ticket.to_string())
            }
        },
    )
    .await;
    let second = read_ticket(&app, &users[1], show_id, &tickets[1]).await;
    assert_eq!(second["status"], "WAITING", "the rate is slow: {second}");
    // Speed up: everyone is in within a second.
    app.patch(
        &show_path,
        app.admin(),
        &json!({"waiting_room": {"admit_per_minute": 60000}}),
    )
    .await
    .expect(200, "speed up");
    for (index, user) in users.iter().enumerate() {
        let ticket_id = tickets[index].clone();
        poll_until(
            "admission after speeding up",
            Duration::from_secs(5),
            Duration::from_millis(100),
            || async {
                let ticket = read_ticket(&app, user, show_id, &ticket_id).await;
                if ticket["status"] == "ADMITTED" {
                    Ok(())
                } else {
                    Err(ticket.to_string())
                }
            },
        )
        .await;
    }
    // Out-of-range settings are refused.
    for (body, field) in [
        (
            json!({"waiting_room": {"admit_per_minute": 0}}),
            "waiting_room.admit_per_minute",
        ),
        (
            json!({"waiting_room": {"admit_per_minute": 1_000_001}}),
            "waiting_room.admit_per_minute",
        ),
        (
            json!({"waiting_room": {"pow_difficulty": 33}}),
            "waiting_room.pow_difficulty",
        ),
        (
            json!({"waiting_room": {"pow_difficulty": -1}}),
            "waiting_room.pow_difficulty",
        ),
    ] {
        let resp = app.patch(&show_path, app.admin(), &body).await;
        resp.expect_problem(400, "invalid_request", &format!("PATCH {body}"));
        assert!(
            resp.error_fields().contains(&field.to_string()),
            "{field} named: {resp}"
        );
    }
}

async fn the_position_stream_ends_with_admission(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // One buyer every 600 ms.
    let fixture = app.fixture(1, 10, None, waiting_room(100)).await;
    let show_id = fixture.show_id.as_str();
    let users = app.register_users(3).await;
    let mut last = Value::Null;
    for user in &users {
        last = join(&app, user, show_id).await;
    }
    let ticket_id = id_of(&last, &last);
    assert_eq!(last["status"], "WAITING", "{last}");
    let url = app.url(&format!("{}/stream", ticket_path(show_id, &ticket_id)));
    // The owner only; by header or, for EventSource, by query parameter.
    let stranger = app
        .client
        .get(&url)
        .bearer_auth(&users[0].token)
        .send()
        .await
        .expect("open a stranger's stream");
    assert_eq!(
        stranger.status().as_u16(),
        404,
        "another user's ticket stream"
    );
    let anonymous = app
        .client
        .get(&url)
        .send()
        .await
        .expect("open without a token");
    assert_eq!(anonymous.status().as_u16(), 401, "no token");
    let response = app
        .client
        .get(format!("{url}?access_token={}", users[2].token))
        .send()
        .await
        .expect("open the stream");
    let mut stream = SseStream::of(response);
    let mut positions = Vec::new();
    loop {
        match stream.next_or_end(Duration::from_secs(15)).await {
            Some(SseEvent {
                name, data: ticket, ..
            }) => {
                assert_eq!(name, "ticket", "{ticket}");
                assert_ticket_shape(&ticket, show_id);
                assert_eq!(ticket["id"], ticket_id.as_str());
                if ticket["status"] == "ADMITTED" {
                    positions.push(0);
                    assert!(
                        stream.next_or_end(Duration::from_secs(5)).await.is_none(),
                        "the stream ends after ADMITTED"
                    );
                    break;
                }
                positions.push(ticket["position"].as_u64().unwrap_or(0));
            }
            None => panic!("the stream ended before ADMITTED; positions {positions:?}"),
        }
    }
    assert!(
        positions.len() >= 2,
        "at least one update before admission: {positions:?}"
    );
    assert!(
        positions.windows(2).all(|w| w[1] < w[0]),
        "each event a new, smaller position: {positions:?}"
    );
}

async fn bad_queue_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, waiting_room(6000)).await;
    let show_id = fixture.show_id.as_str();
    let alice = app.register_user().await;
    let bob = app.register_user().await;
    let path = queue_path(show_id);
    app.post(&path, None, &json!({})).await.expect_problem(
        401,
        "unauthorized",
        "join without a token",
    );
    app.post(&queue_path("shw_nope"), Some(&alice.token), &json!({}))
        .await
        .expect_problem(404, "not_found", "join an unknown show");
    let unknown = format!("/v1/shows/shw_{}/queue", "0".repeat(26));
    app.post(&unknown, Some(&alice.token), &json!({}))
        .await
        .expect_problem(404, "not_found", "join a well-formed unknown show");
    app.post(&path, Some(&alice.token), &json!({"extra": 1}))
        .await
        .expect_problem(400, "invalid_request", "an unknown field");
    app.post(&path, Some(&alice.token), &json!([1, 2]))
        .await
        .expect_problem(400, "invalid_request", "not an object");
    let resp = app
        .request(Method::POST, &path)
        .token(&alice.token)
        .raw(Some("application/json"), "{\"pow\": ")
        .send()
        .await;
    resp.expect_problem(400, "invalid_request", "malformed JSON");
    let resp = app
        .request(Method::POST, &path)
        .token(&alice.token)
        .raw(Some("text/plain"), "hello")
        .send()
        .await;
    assert_eq!(resp.status(), 415, "wrong content type: {resp}");
    // No body at all is a join like `{}`.
    let resp = app
        .request(Method::POST, &path)
        .token(&alice.token)
        .send()
        .await;
    let ticket = resp.expect(201, "join without a body").clone();
    let ticket_id = id_of(&ticket, &ticket);
    // Another user's ticket is 404, like a missing one.
    app.get(&ticket_path(show_id, &ticket_id), Some(&bob.token))
        .await
        .expect_problem(404, "not_found", "another user's ticket");
    app.get(&ticket_path(show_id, "qtk_nope"), Some(&alice.token))
        .await
        .expect_problem(404, "not_found", "a malformed ticket id");
    app.get(
        &ticket_path(show_id, &format!("qtk_{}", "0".repeat(26))),
        Some(&alice.token),
    )
    .await
    .expect_problem(404, "not_found", "an unknown ticket");
    app.get(&ticket_path(show_id, &ticket_id), None)
        .await
        .expect_problem(401, "unauthorized", "no token");
    // The ticket belongs to its show.
    let other = app
        .create_show(
            &fixture.event_id,
            &fixture.venue_id,
            json!({"prices": prices_for(true, false), "waiting_room": {"enabled": true}}),
        )
        .await;
    let other_id = id_of(&other, &other);
    app.get(&ticket_path(&other_id, &ticket_id), Some(&alice.token))
        .await
        .expect_problem(404, "not_found", "a ticket under another show");
    // The admin may read any ticket (support work).
    app.get(&ticket_path(show_id, &ticket_id), app.admin())
        .await
        .expect(200, "the admin reads a ticket");
    // A cancelled show takes no new joins.
    app.patch(
        &format!("/v1/shows/{other_id}"),
        app.admin(),
        &json!({"status": "CANCELLED"}),
    )
    .await
    .expect(200, "cancel");
    app.post(&queue_path(&other_id), Some(&bob.token), &json!({}))
        .await
        .expect_problem(409, "show_not_on_sale", "join a cancelled show");
}

// --- two nodes ----------------------------------------------------------------

both_backends_two_nodes!(two_nodes_agree_on_every_ticket);

/// The fields that must be identical whichever node answers.
fn decision(ticket: &Value) -> Value {
    json!({"id": ticket["id"], "status": ticket["status"], "position": ticket["position"],
           "admission_token": ticket["admission_token"], "admission_expires_at": ticket["admission_expires_at"]})
}

/// Two nodes on one PostgreSQL (the queue in the database) or on one
/// PostgreSQL and one Redis (the queue in Redis) give the same position and
/// the same admission decision for every ticket, whichever node the buyer
/// joined on.
async fn two_nodes_agree_on_every_ticket(redis: Option<&RedisServer>) {
    let url = redis.map(RedisServer::url);
    let env: Vec<(&str, &str)> = url.iter().map(|url| ("REDIS_URL", url.as_str())).collect();
    let app = TestApp::spawn_with(Backend::Postgres, &env).await;
    let peer = app.spawn_peer().await;
    let fixture = app
        .fixture(
            1,
            10,
            None,
            json!({"waiting_room": {"enabled": true, "admit_per_minute": 6000, "paused": true}}),
        )
        .await;
    let show_id = fixture.show_id.as_str();
    let users = app.register_users(6).await;
    let nodes: [&Api; 2] = [&app, &peer];
    let mut tickets = Vec::new();
    for (index, user) in users.iter().enumerate() {
        // Alternate the nodes: the queue is one queue.
        let ticket = join(nodes[index % 2], user, show_id).await;
        assert_eq!(
            ticket["position"],
            (index + 1) as u64,
            "one queue over both nodes: {ticket}"
        );
        tickets.push(id_of(&ticket, &ticket));
    }
    // Joining again on the other node returns the same ticket.
    let again = nodes[1]
        .post(&queue_path(show_id), Some(&users[0].token), &json!({}))
        .await;
    assert_eq!(
        again.expect(200, "join again on the other node")["id"],
        tickets[0].as_str()
    );
    let compare = |phase: &'static str| {
        let tickets = tickets.clone();
        let users = &users;
        async move {
            let mut answers = BTreeMap::new();
            for (index, user) in users.iter().enumerate() {
                let a = read_ticket(nodes[0], user, show_id, &tickets[index]).await;
                let b = read_ticket(nodes[1], user, show_id, &tickets[index]).await;
                assert_eq!(
                    decision(&a),
                    decision(&b),
                    "{phase}: both nodes say the same of ticket {index}"
                );
                answers.insert(index, a["status"].as_str().unwrap_or("").to_string());
            }
            answers
        }
    };
    let waiting = compare("paused").await;
    assert!(
        waiting.values().all(|s| s == "WAITING"),
        "paused: {waiting:?}"
    );
    // Admit three (rate 60/s, so within a moment), then pause again.
    peer.patch(
        &format!("/v1/shows/{show_id}"),
        peer.admin(),
        &json!({"waiting_room": {"paused": false, "admit_per_minute": 60}}),
    )
    .await
    .expect(200, "resume on the peer");
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    app.patch(
        &format!("/v1/shows/{show_id}"),
        app.admin(),
        &json!({"waiting_room": {"paused": true}}),
    )
    .await
    .expect(200, "pause on the first node");
    // Other nodes' copies of the show are at most 1 s old.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let decided = compare("after admitting some").await;
    let admitted = decided.values().filter(|s| *s == "ADMITTED").count();
    assert!(
        (2..=5).contains(&admitted),
        "about three admitted at one per second: {decided:?}"
    );
    assert!(
        decided.values().take(admitted).all(|s| s == "ADMITTED"),
        "admitted in order: {decided:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        compare("still paused").await,
        decided,
        "nobody more while paused"
    );
    // The admission token of either node works on the other.
    let token_from_peer = read_ticket(nodes[1], &users[0], show_id, &tickets[0]).await
        ["admission_token"]
        .as_str()
        .unwrap_or("")
        .to_string();
    hold_with_admission(
        nodes[0],
        &users[0],
        show_id,
        "A-1-1",
        Some(&token_from_peer),
    )
    .await
    .expect(201, "a token from the other node");
}
