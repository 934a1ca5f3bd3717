//! Invariants 1 and 2 under real concurrency: hundreds of clients with their
//! requests in flight at once, racing for a few seats.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::common::*;

both_backends!(
    seat_race,
    standing_race,
    best_available_race,
    confirm_release_race,
    ticket_limit_race,
    cancel_race,
    expiry_during_payment,
    two_nodes_race
);

/// `count` hold requests for 1..=`seats_max` random seats of `seat_ids`,
/// the users taking turns: `(token, body)` pairs for [`fire_together`].
pub(crate) fn chosen_seat_requests(
    show_id: &str,
    seat_ids: &[String],
    users: &[TestUser],
    count: usize,
    seats_max: usize,
) -> Vec<(String, Value)> {
    let mut rng = rand::thread_rng();
    (0..count)
        .map(|client| {
            let seats_wanted = rng.gen_range(1..=seats_max);
            let seats: Vec<&String> = seat_ids.choose_multiple(&mut rng, seats_wanted).collect();
            (
                users[client % users.len()].token.clone(),
                json!({"show_id": show_id, "seat_ids": seats}),
            )
        })
        .collect()
}

/// Clients in flight at once per round.
const CLIENTS: usize = 200;
/// Distinct users the clients act for.
const USERS: usize = 50;
const ROUNDS: usize = 20;
/// High enough that no user reaches it in a round (4 requests × 4 places).
const MAX_TICKETS_PER_USER: u32 = 20;

/// Starts `requests` at once (released together by a barrier) and returns
/// each request with its answer, in order.
async fn fire_together(api: &Api, requests: Vec<(String, Value)>) -> Vec<(Value, Resp)> {
    fire_together_at(std::slice::from_ref(api), requests).await
}

/// Like [`fire_together`], spreading the requests round-robin over `nodes`.
pub(crate) async fn fire_together_at(
    nodes: &[Api],
    requests: Vec<(String, Value)>,
) -> Vec<(Value, Resp)> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .enumerate()
        .map(|(i, (token, body))| {
            let api = nodes[i % nodes.len()].clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let resp = api.hold(&token, &body).await;
                (body, resp)
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("a client task panicked"));
    }
    results
}

/// 200 clients race for the same 20 seats, 20 rounds: no seat in two
/// successful holds, every loser 409 seats_unavailable for a seat a winner
/// has, and the seat map agrees with the winners exactly.
async fn seat_race(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let venue_id = app
        .create_venue(&venue_layout("Race Hall", 2, 10, None))
        .await;
    let event_id = app.create_event("Seat Race").await;
    let users = app.register_users(USERS).await;
    let seat_ids: Vec<String> = (1..=2)
        .flat_map(|row| (1..=10).map(move |n| format!("A-{row}-{n}")))
        .collect();
    let mut losers_total = 0;

    for round in 0..ROUNDS {
        let show = app.create_show(&event_id, &venue_id, json!({"max_tickets_per_user": MAX_TICKETS_PER_USER, "prices": prices_for(true, false)})).await;
        let show_id = id_of(&show, &show);
        let requests = chosen_seat_requests(&show_id, &seat_ids, &users, CLIENTS, 4);
        let results = fire_together(&app.api, requests).await;

        let mut owner: BTreeMap<String, usize> = BTreeMap::new();
        let mut rejected = Vec::new();
        for (index, (body, resp)) in results.iter().enumerate() {
            let requested: BTreeSet<String> = body["seat_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            match resp.status() {
                201 => {
                    assert_eq!(
                        resp.body["status"], "ACTIVE",
                        "round {round}: a new hold is ACTIVE: {resp}"
                    );
                    assert_eq!(
                        seat_ids_of(&resp.body),
                        requested,
                        "round {round}: a hold holds exactly what was asked: {resp}"
                    );
                    for seat in requested {
                        if let Some(other) = owner.insert(seat.clone(), index) {
                            panic!(
                                "round {round}: seat {seat} is in two successful holds:\n  {}\n  {}",
                                results[other].1, resp
                            );
                        }
                    }
                }
                409 if resp.code() == "seats_unavailable" => rejected.push((requested, resp)),
                _ => panic!(
                    "round {round}: every answer must be 201 or 409 seats_unavailable, got {resp}"
                ),
            }
        }
        assert!(!owner.is_empty(), "round {round}: somebody must win");
        for (requested, resp) in &rejected {
            let unavailable: BTreeSet<String> = resp.body["unavailable"]
                .as_array()
                .unwrap_or_else(|| panic!("round {round}: 409 without `unavailable`: {resp}"))
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            assert!(
                !unavailable.is_empty(),
                "round {round}: `unavailable` names a seat: {resp}"
            );
            assert!(
                unavailable.is_subset(requested),
                "round {round}: `unavailable` lists only requested seats ({requested:?}): {resp}"
            );
            // Nothing is released during a round, so a seat that was
            // unavailable must be in some winner's hold at the end.
            for seat in &unavailable {
                assert!(owner.contains_key(seat), "round {round}: {seat} reported unavailable but no successful hold has it: {resp}");
            }
        }
        losers_total += rejected.len();

        let map = app.seat_map(&show_id).await;
        let held: BTreeSet<String> = owner.keys().cloned().collect();
        assert_eq!(
            seats_with_status(&map, "HELD"),
            held,
            "round {round}: the map's HELD seats are the winners' seats"
        );
        let held_count = held.len() as i64;
        assert_eq!(
            summary(&map),
            (20 - held_count, held_count, 0),
            "round {round}: the summary: {map}"
        );
    }
    assert!(
        losers_total > 0,
        "with 200 clients for 20 seats some must lose"
    );
}

/// The same for a standing section of capacity 30: never oversold, and the
/// map's `available` is capacity minus the winners' places.
async fn standing_race(backend: Backend) {
    const CAPACITY: i64 = 30;
    let app = TestApp::spawn(backend).await;
    let venue_id = app
        .create_venue(&venue_layout(
            "Standing Race Hall",
            0,
            0,
            Some(CAPACITY as u32),
        ))
        .await;
    let event_id = app.create_event("Standing Race").await;
    let users = app.register_users(USERS).await;

    for round in 0..ROUNDS {
        let show = app.create_show(&event_id, &venue_id, json!({"max_tickets_per_user": MAX_TICKETS_PER_USER, "prices": prices_for(false, true)})).await;
        let show_id = id_of(&show, &show);
        let requests: Vec<(String, Value)> = {
            let mut rng = rand::thread_rng();
            (0..CLIENTS)
                .map(|client| {
                    let quantity: i64 = rng.gen_range(1..=4);
                    (users[client % USERS].token.clone(), json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": quantity}))
                })
                .collect()
        };
        let results = fire_together(&app.api, requests).await;

        let mut sold = 0;
        let mut smallest_rejected: Option<i64> = None;
        for (body, resp) in &results {
            let quantity = body["quantity"].as_i64().unwrap();
            match resp.status() {
                201 => {
                    assert_eq!(
                        standing_parts(&resp.body),
                        vec![(STANDING_SECTION.to_string(), quantity)],
                        "round {round}: the hold: {resp}"
                    );
                    sold += quantity;
                }
                409 if resp.code() == "seats_unavailable" => {
                    smallest_rejected =
                        Some(smallest_rejected.map_or(quantity, |q| q.min(quantity)));
                }
                _ => panic!(
                    "round {round}: every answer must be 201 or 409 seats_unavailable, got {resp}"
                ),
            }
        }
        assert!(
            sold <= CAPACITY,
            "round {round}: {sold} places held of {CAPACITY} — oversold"
        );
        assert!(sold > 0, "round {round}: somebody must win");
        // Places only get taken during a round: a request for q was refused
        // when fewer than q were left, so fewer than q are left at the end.
        if let Some(q) = smallest_rejected {
            assert!(
                CAPACITY - sold < q,
                "round {round}: a request for {q} was refused but {} places are still free",
                CAPACITY - sold
            );
        }
        let map = app.seat_map(&show_id).await;
        assert_eq!(
            standing_available(&map, STANDING_SECTION),
            CAPACITY - sold,
            "round {round}: standing available = capacity − sold"
        );
        assert_eq!(
            summary(&map),
            (CAPACITY - sold, sold, 0),
            "round {round}: the summary"
        );
    }
}

/// Confirm and release the same holds at once while other users try to
/// grab their seats: exactly one of confirm/release wins each hold, and no
/// seat ends both BOOKED and in another hold.
async fn confirm_release_race(backend: Backend) {
    // A little gateway latency so that releases land while payments run.
    let app = TestApp::spawn_with(backend, &[("BOXOFFICE_SANDBOX_LATENCY_MS", "50")]).await;
    let venue_id = app
        .create_venue(&venue_layout("Confirm Race Hall", 2, 10, None))
        .await;
    let event_id = app.create_event("Confirm Race").await;
    const HOLDS: usize = 10;
    let owners = app.register_users(HOLDS).await;
    let grabbers = app.register_users(HOLDS).await;
    let mut confirmed_total = 0;
    let mut released_total = 0;

    for round in 0..3 {
        let show = app
            .create_show(
                &event_id,
                &venue_id,
                json!({"prices": prices_for(true, false)}),
            )
            .await;
        let show_id = id_of(&show, &show);
        // Hold i has seats A-r-(2k-1), A-r-2k: ten disjoint pairs covering all 20 seats.
        let mut holds = Vec::new();
        for (i, owner) in owners.iter().enumerate() {
            let (row, first) = (i / 5 + 1, (i % 5) * 2 + 1);
            let seats = [format!("A-{row}-{first}"), format!("A-{row}-{}", first + 1)];
            let resp = app
                .hold(
                    &owner.token,
                    &json!({"show_id": show_id, "seat_ids": seats}),
                )
                .await;
            holds.push((id_of(resp.expect(201, "set-up hold"), &resp), seats));
        }

        let barrier = Arc::new(Barrier::new(HOLDS * 3));
        let mut tasks = Vec::new();
        for (i, (hold_id, seats)) in holds.iter().enumerate() {
            for action in ["book", "release", "grab"] {
                let api = app.api.clone();
                let barrier = Arc::clone(&barrier);
                let (owner, grabber) = (owners[i].clone(), grabbers[i].clone());
                let (hold_id, seats, show_id) = (hold_id.clone(), seats.clone(), show_id.clone());
                let release_delay_ms: u64 = rand::thread_rng().gen_range(0..=120);
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    match action {
                        "book" => {
                            api.book(&owner.token, &hold_id, &unique_key(), "tok_visa")
                                .await
                        }
                        "release" => {
                            // A random head start for the confirm, so that either side can win.
                            tokio::time::sleep(Duration::from_millis(release_delay_ms)).await;
                            api.delete(&format!("/v1/holds/{hold_id}"), Some(&owner.token))
                                .await
                        }
                        _ => {
                            // Try a few times so that a release is likely seen.
                            let mut last = None;
                            for _ in 0..5 {
                                let resp = api
                                    .hold(
                                        &grabber.token,
                                        &json!({"show_id": show_id, "seat_ids": seats}),
                                    )
                                    .await;
                                if resp.status() == 201 {
                                    return resp;
                                }
                                last = Some(resp);
                                tokio::time::sleep(Duration::from_millis(30)).await;
                            }
                            last.unwrap()
                        }
                    }
                }));
            }
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("a client task panicked"));
        }

        let mut booked_seats = BTreeSet::new();
        let mut grabbed_seats = BTreeSet::new();
        for (i, (hold_id, seats)) in holds.iter().enumerate() {
            let (book, release, grab) = (&answers[3 * i], &answers[3 * i + 1], &answers[3 * i + 2]);
            let booked = book.status() == 201;
            let released = release.status() == 204;
            assert!(
                booked || (book.status() == 409 && book.code() == "hold_not_active"),
                "round {round}: confirm is 201 or 409 hold_not_active: {book}"
            );
            assert!(
                released || release.status() == 409,
                "round {round}: release is 204 or 409: {release}"
            );
            assert!(booked != released, "round {round}: exactly one of confirm ({book}) and release ({release}) wins hold {hold_id}");
            let resp = app.get_hold(&app.admin_token, hold_id).await;
            let status = resp.expect(200, "read the hold")["status"].clone();
            let captured = app.captured_charges(hold_id).await;
            if booked {
                assert_eq!(
                    status, "CONFIRMED",
                    "round {round}: the booked hold: {resp}"
                );
                assert_eq!(
                    captured, 1,
                    "round {round}: one charge for the booked hold {hold_id}"
                );
                booked_seats.extend(seats.iter().cloned());
                confirmed_total += 1;
            } else {
                assert_eq!(
                    status, "RELEASED",
                    "round {round}: the released hold: {resp}"
                );
                assert_eq!(
                    captured, 0,
                    "round {round}: no captured money for the released hold {hold_id}"
                );
                released_total += 1;
            }
            match grab.status() {
                201 => {
                    assert!(!booked, "round {round}: seats {seats:?} were booked AND held by another user: {grab}");
                    grabbed_seats.extend(seats.iter().cloned());
                }
                409 => assert_eq!(grab.code(), "seats_unavailable", "round {round}: {grab}"),
                _ => panic!("round {round}: grab answered {grab}"),
            }
        }
        let map = app.seat_map(&show_id).await;
        assert_eq!(
            seats_with_status(&map, "BOOKED"),
            booked_seats,
            "round {round}: BOOKED seats are the confirmed holds' seats"
        );
        assert_eq!(
            seats_with_status(&map, "HELD"),
            grabbed_seats,
            "round {round}: HELD seats are the grabbers' seats"
        );
        let bookings = app
            .list_all(&format!("/v1/bookings?show_id={show_id}"), app.admin())
            .await;
        let confirmed: Vec<&Value> = bookings
            .iter()
            .filter(|b| b["status"] == "CONFIRMED")
            .collect();
        assert_eq!(
            confirmed.len() * 2,
            booked_seats.len(),
            "round {round}: one booking per confirmed hold: {bookings:?}"
        );
    }
    // Not a correctness condition, but the test means nothing if one side always wins.
    eprintln!("confirm_release_race: {confirmed_total} confirmed, {released_total} released");
    assert!(
        confirmed_total + released_total == 3 * HOLDS,
        "every hold decided"
    );
}

/// Best-available under contention: never a seat twice, always adjacent
/// seats in one row, and the map agrees with the winners.
async fn best_available_race(backend: Backend) {
    const BEST_ROUNDS: usize = 10;
    let app = TestApp::spawn(backend).await;
    let venue_id = app
        .create_venue(&venue_layout("Best Race Hall", 2, 10, None))
        .await;
    let event_id = app.create_event("Best Race").await;
    let users = app.register_users(USERS).await;
    for round in 0..BEST_ROUNDS {
        let show = app.create_show(&event_id, &venue_id, json!({"max_tickets_per_user": MAX_TICKETS_PER_USER, "prices": prices_for(true, false)})).await;
        let show_id = id_of(&show, &show);
        let requests: Vec<(String, Value)> = {
            let mut rng = rand::thread_rng();
            (0..CLIENTS)
                .map(|client| {
                    (
                        users[client % USERS].token.clone(),
                        json!({"show_id": show_id, "quantity": rng.gen_range(1..=4)}),
                    )
                })
                .collect()
        };
        let results = fire_together(&app.api, requests).await;
        let mut held = BTreeSet::new();
        for (body, resp) in &results {
            match resp.status() {
                201 => {
                    let seats: Vec<(String, String, u32)> = seat_ids_of(&resp.body)
                        .iter()
                        .map(|id| split_seat_id(id))
                        .collect();
                    assert_eq!(
                        seats.len() as i64,
                        body["quantity"].as_i64().unwrap(),
                        "round {round}: as many seats as asked: {resp}"
                    );
                    assert!(
                        seats.iter().all(|(_, row, _)| *row == seats[0].1),
                        "round {round}: one row: {resp}"
                    );
                    let mut numbers: Vec<u32> = seats.iter().map(|(_, _, n)| *n).collect();
                    numbers.sort();
                    assert_eq!(
                        numbers[numbers.len() - 1] - numbers[0],
                        numbers.len() as u32 - 1,
                        "round {round}: adjacent seats: {resp}"
                    );
                    for seat in seat_ids_of(&resp.body) {
                        assert!(
                            held.insert(seat.clone()),
                            "round {round}: seat {seat} in two successful holds"
                        );
                    }
                }
                409 if resp.code() == "seats_unavailable" => {}
                _ => panic!(
                    "round {round}: every answer must be 201 or 409 seats_unavailable, got {resp}"
                ),
            }
        }
        assert!(!held.is_empty(), "round {round}: somebody must win");
        let map = app.seat_map(&show_id).await;
        assert_eq!(
            seats_with_status(&map, "HELD"),
            held,
            "round {round}: HELD seats are the winners' seats"
        );
        let count = held.len() as i64;
        assert_eq!(
            summary(&map),
            (20 - count, count, 0),
            "round {round}: summary"
        );
    }
}

/// Invariant 6 under concurrency: one user fires 20 holds at once with
/// max_tickets_per_user 4 — at most 4 places end up held.
async fn ticket_limit_race(backend: Backend) {
    const ATTEMPTS: usize = 20;
    let app = TestApp::spawn(backend).await;
    let fixture = app
        .fixture(2, 10, Some(20), json!({"max_tickets_per_user": 4}))
        .await;
    for round in 0..3 {
        let user = app.register_user().await;
        let requests: Vec<(String, Value)> = (0..ATTEMPTS)
            .map(|i| {
                let body = if i % 2 == 0 {
                    json!({"show_id": fixture.show_id, "seat_ids": [fixture.seat_ids[i]]})
                } else {
                    json!({"show_id": fixture.show_id, "section": STANDING_SECTION, "quantity": 1})
                };
                (user.token.clone(), body)
            })
            .collect();
        let results = fire_together(&app.api, requests).await;
        let mut granted = 0;
        for (_, resp) in &results {
            match resp.status() {
                201 => granted += 1,
                422 if resp.code() == "ticket_limit_exceeded" => {}
                _ => panic!("round {round}: 201 or 422 ticket_limit_exceeded expected, got {resp}"),
            }
        }
        assert_eq!(
            granted, 4,
            "round {round}: exactly max_tickets_per_user (4) single-place holds succeed"
        );
        // Release everything for the next round.
        let map = app.seat_map(&fixture.show_id).await;
        assert_eq!(
            summary(&map).1,
            4,
            "round {round}: exactly 4 places held: {map}"
        );
        for (_, resp) in results.iter().filter(|(_, r)| r.status() == 201) {
            let path = format!("/v1/holds/{}", id_of(&resp.body, resp));
            assert_eq!(
                app.delete(&path, Some(&user.token)).await.status(),
                204,
                "release {path}"
            );
        }
    }
}

/// Ten concurrent cancels of one booking: exactly one 200, the rest 409
/// booking_not_active, one refund, and the seats back on sale once.
async fn cancel_race(backend: Backend) {
    const CANCELS: usize = 10;
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, None, json!({})).await;
    let user = app.register_user().await;
    let resp = app
        .hold_seats(&user.token, &fixture.show_id, &["A-1-1", "A-1-2"])
        .await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let resp = app
        .book(&user.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    let booking_id = id_of(resp.expect(201, "book"), &resp);

    let barrier = Arc::new(Barrier::new(CANCELS));
    let tasks: Vec<_> = (0..CANCELS)
        .map(|i| {
            let (api, barrier) = (app.api.clone(), Arc::clone(&barrier));
            // Half by the owner, half by the admin.
            let token = if i % 2 == 0 {
                user.token.clone()
            } else {
                app.admin_token.clone()
            };
            let path = format!("/v1/bookings/{booking_id}/cancel");
            tokio::spawn(async move {
                barrier.wait().await;
                api.request(reqwest::Method::POST, &path)
                    .token(&token)
                    .send()
                    .await
            })
        })
        .collect();
    let mut cancelled = 0;
    for task in tasks {
        let resp = task.await.expect("cancel task");
        match resp.status() {
            200 => {
                assert_eq!(resp.body["status"], "CANCELLED", "{resp}");
                cancelled += 1;
            }
            _ => {
                resp.expect_problem(409, "booking_not_active", "a concurrent second cancel");
            }
        }
    }
    assert_eq!(cancelled, 1, "exactly one cancel wins");
    let charges = app.charges(&hold_id).await;
    assert_eq!(charges.len(), 1, "one charge for the hold: {charges:?}");
    assert_eq!(
        charges[0]["status"], "REFUNDED",
        "refunded exactly once: {charges:?}"
    );
    let map = app.seat_map(&fixture.show_id).await;
    assert_eq!(
        summary(&map),
        (10, 0, 0),
        "the seats are back on sale: {map}"
    );
    let audit = app
        .list_all(&format!("/v1/audit?booking_id={booking_id}"), app.admin())
        .await;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e["action"] == "booking.cancelled")
            .count(),
        1,
        "one booking.cancelled: {audit:?}"
    );
}

/// A hold expires while its payment is running (TTL 2 s, gateway 3 s) and
/// another user grabs the seats after expires_at: never both a booking and
/// the other hold; a booking iff its money was captured.
async fn expiry_during_payment(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("BOXOFFICE_SANDBOX_LATENCY_MS", "3000")]).await;
    let fixture = app
        .fixture(1, 10, None, json!({"hold_ttl_seconds": 2}))
        .await;
    let show_id = fixture.show_id.clone();
    let payer = app.register_user().await;
    let grabber = app.register_user().await;

    let resp = app
        .hold_seats(&payer.token, &show_id, &["A-1-4", "A-1-5"])
        .await;
    let hold = resp.expect(201, "hold").clone();
    let hold_id = id_of(&hold, &resp);
    let expires_at = parse_time(&hold["expires_at"]);
    // Confirm about a second before expiry; the charge takes 3 s.
    let book = {
        let (api, token, hold_id) = (app.api.clone(), payer.token.clone(), hold_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            api.book(&token, &hold_id, &unique_key(), "tok_visa").await
        })
    };
    // After expires_at (plus a second for rounding), try to take the seats.
    sleep_until_time(expires_at + chrono::Duration::milliseconds(1100)).await;
    let mut grabbed = None;
    for _ in 0..20 {
        let resp = app
            .hold_seats(&grabber.token, &show_id, &["A-1-4", "A-1-5"])
            .await;
        match resp.status() {
            201 => {
                grabbed = Some(resp);
                break;
            }
            409 => assert_eq!(resp.code(), "seats_unavailable", "{resp}"),
            _ => panic!("grab: {resp}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let book = book.await.expect("book task");
    let booked = book.status() == 201;
    assert!(
        !(booked && grabbed.is_some()),
        "the seats were sold twice: booking {book}\n  and hold {}",
        grabbed.as_ref().map(|r| r.to_string()).unwrap_or_default()
    );
    if !booked {
        let violations = problem_violations(&book, &[402, 409, 503], None, None);
        assert!(
            violations.is_empty(),
            "a confirm that lost to expiry is a problem answer: {violations:?} {book}"
        );
    }
    let captured = app.captured_charges(&hold_id).await;
    assert_eq!(
        captured,
        usize::from(booked),
        "a booking iff captured money (booked: {booked}): {:?}",
        app.charges(&hold_id).await
    );
    let map = app.seat_map(&show_id).await;
    let expected_booked = if booked {
        set_of(&["A-1-4", "A-1-5"])
    } else {
        BTreeSet::new()
    };
    let expected_held = if grabbed.is_some() {
        set_of(&["A-1-4", "A-1-5"])
    } else {
        BTreeSet::new()
    };
    assert_eq!(
        seats_with_status(&map, "BOOKED"),
        expected_booked,
        "BOOKED seats"
    );
    assert_eq!(seats_with_status(&map, "HELD"), expected_held, "HELD seats");
    eprintln!(
        "expiry_during_payment: booked {booked}, grabbed {}",
        grabbed.is_some()
    );
}

/// Invariant 1 "on any number of nodes": two server processes on one
/// database, 200 clients split between them, 10 rounds.
async fn two_nodes_race(backend: Backend) {
    const NODE_ROUNDS: usize = 10;
    let app = TestApp::spawn(backend).await;
    let peer = app.spawn_peer().await;
    let nodes = [app.api.clone(), peer.api.clone()];
    let venue_id = app
        .create_venue(&venue_layout("Two Nodes Hall", 2, 10, None))
        .await;
    let event_id = app.create_event("Two Nodes").await;
    let users = app.register_users(USERS).await;
    let seat_ids: Vec<String> = (1..=2)
        .flat_map(|row| (1..=10).map(move |n| format!("A-{row}-{n}")))
        .collect();
    for round in 0..NODE_ROUNDS {
        // Shows are created on either node.
        let creator = &nodes[round % 2];
        let show = creator.create_show(&event_id, &venue_id, json!({"max_tickets_per_user": MAX_TICKETS_PER_USER, "prices": prices_for(true, false)})).await;
        let show_id = id_of(&show, &show);
        let requests = chosen_seat_requests(&show_id, &seat_ids, &users, CLIENTS, 4);
        let results = fire_together_at(&nodes, requests).await;
        let mut held = BTreeSet::new();
        for (body, resp) in &results {
            match resp.status() {
                201 => {
                    for seat in body["seat_ids"].as_array().unwrap() {
                        let seat = seat.as_str().unwrap().to_string();
                        assert!(
                            held.insert(seat.clone()),
                            "round {round}: seat {seat} held twice across two nodes: {resp}"
                        );
                    }
                }
                409 if resp.code() == "seats_unavailable" => {}
                _ => panic!("round {round}: 201 or 409 seats_unavailable expected, got {resp}"),
            }
        }
        assert!(!held.is_empty(), "round {round}: somebody must win");
        // Each node's seat map reflects the other node's holds too (after at
        // most a few seconds of change-feed delay).
        for (index, node) in nodes.iter().enumerate() {
            poll_until(
                &format!("round {round}: node {index}'s seat map to show the winners"),
                Duration::from_secs(5),
                Duration::from_millis(100),
                || async {
                    let map = node.seat_map(&show_id).await;
                    if seats_with_status(&map, "HELD") == held {
                        Ok(())
                    } else {
                        Err(format!(
                            "{:?} vs winners {held:?}",
                            seats_with_status(&map, "HELD")
                        ))
                    }
                },
            )
            .await;
        }
    }
}
