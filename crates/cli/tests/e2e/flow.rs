//! The buy flow over HTTP, one contract rule per test.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde_json::json;

use crate::common::*;

both_backends!(
    buy_flow,
    best_available_and_standing,
    release_and_privacy,
    payment_declined_and_unavailable,
    ticket_limit,
    hold_expiry,
    expires_at_is_exact,
    expired_hold_never_blocks,
    expiry_timer_expires_at_the_deadline,
    sales_start_and_paused,
    patch_show_prices,
    audit_trail,
    operational_endpoints,
);

/// Register, browse, hold, book, cancel — every step checked against API.md.
async fn buy_flow(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    // --- account -----------------------------------------------------------
    let email = unique_email();
    let resp = app.register(&email, USER_PASSWORD, "Flow Buyer").await;
    let body = resp.expect(201, "register");
    let user_id = body["user"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("register: no user.id: {resp}"))
        .to_string();
    assert_eq!(body["user"]["email"], email, "register: user.email: {resp}");
    assert_eq!(
        body["user"]["role"], "customer",
        "register: default role: {resp}"
    );
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "register: access_token: {resp}"
    );

    let resp = app.login(&email, USER_PASSWORD).await;
    let body = resp.expect(200, "login");
    assert_eq!(body["token_type"], "Bearer", "login: token_type: {resp}");
    assert!(
        body["expires_in"].as_i64().is_some_and(|s| s > 0),
        "login: expires_in: {resp}"
    );
    let token = body["access_token"]
        .as_str()
        .expect("login: access_token")
        .to_string();

    let resp = app.get("/v1/me", Some(&token)).await;
    let me = resp.expect(200, "GET /v1/me");
    assert_eq!(me["id"], user_id.as_str(), "me.id: {resp}");
    assert_eq!(me["email"], email.as_str(), "me.email: {resp}");
    assert_eq!(me["name"], "Flow Buyer", "me.name: {resp}");
    assert_eq!(me["role"], "customer", "me.role: {resp}");
    parse_time(&me["created_at"]);

    // --- catalogue ---------------------------------------------------------
    let venue_id = app
        .create_venue(&venue_layout("Riverside Flow Arena", 3, 10, Some(50)))
        .await;
    let resp = app.get(&format!("/v1/venues/{venue_id}"), None).await;
    let venue = resp.expect(200, "GET venue");
    assert_eq!(venue["id"], venue_id.as_str(), "venue id: {resp}");
    assert!(
        resp.text.contains("FLOOR") && resp.text.contains("\"A\""),
        "venue detail has its layout: {resp}"
    );
    let venues = app.list_all("/v1/venues", None).await;
    assert!(
        venues.iter().any(|v| v["id"] == venue_id.as_str()),
        "GET /v1/venues lists the venue: {venues:?}"
    );

    let event_id = app
        .create_event_with(
            &json!({"title": "Moonlight Quartet", "description": "Strings at night",
            "performer": "The Moonlighters", "genre": "classical", "tags": ["strings", "night"]}),
        )
        .await;
    let other_event_id = app
        .create_event_with(
            &json!({"title": "Thunder Brass Parade", "description": "Loud",
            "performer": "Brass Band", "genre": "jazz", "tags": ["brass"]}),
        )
        .await;
    let show = app.create_show(&event_id, &venue_id, json!({})).await;
    let show_id = id_of(&show, &show);
    assert_eq!(
        show["status"], "ON_SALE",
        "a new show is ON_SALE by default: {show}"
    );

    let events = app.list_all("/v1/events", None).await;
    let listed: BTreeSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert!(
        listed.contains(event_id.as_str()) && listed.contains(other_event_id.as_str()),
        "GET /v1/events lists both: {events:?}"
    );

    // Search may be fed asynchronously; give it a few seconds.
    poll_until(
        "GET /v1/events?q=moonlight to find the event",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || async {
            let resp = app.get("/v1/events?q=moonlight", None).await;
            if resp.status() != 200 {
                return Err(resp.to_string());
            }
            let ids: Vec<&str> = resp.body["items"]
                .as_array()
                .map(|i| i.iter().filter_map(|e| e["id"].as_str()).collect())
                .unwrap_or_default();
            assert!(
                !ids.contains(&other_event_id.as_str()),
                "q=moonlight must not match 'Thunder Brass Parade': {resp}"
            );
            if ids.contains(&event_id.as_str()) {
                Ok(())
            } else {
                Err(resp.to_string())
            }
        },
    )
    .await;

    let resp = app.get(&format!("/v1/events/{event_id}"), None).await;
    let event = resp.expect(200, "event detail");
    assert_eq!(event["title"], "Moonlight Quartet", "event title: {resp}");
    let shows = event["shows"]
        .as_array()
        .unwrap_or_else(|| panic!("event detail has `shows`: {resp}"));
    assert!(
        shows.iter().any(|s| s["id"] == show_id.as_str()),
        "event detail lists the show: {resp}"
    );
    app.get("/v1/events/evt_does_not_exist", None)
        .await
        .expect_problem(404, "not_found", "unknown event");

    let resp = app.get(&format!("/v1/shows/{show_id}"), None).await;
    let detail = resp.expect(200, "show detail");
    assert_eq!(detail["id"], show_id.as_str(), "show id: {resp}");
    assert_eq!(detail["status"], "ON_SALE", "show status: {resp}");
    assert!(
        resp.text.contains(&event_id) && resp.text.contains(&venue_id),
        "show detail names its event and venue: {resp}"
    );
    assert_eq!(
        detail["prices"][SEAT_CATEGORY],
        money(SEAT_PRICE_CENTS),
        "show prices: {resp}"
    );

    // --- seat map ------------------------------------------------------------
    let seats_path = format!("/v1/shows/{show_id}/seats");
    let resp = app.get(&seats_path, None).await;
    let map = resp.expect(200, "seat map").clone();
    assert_eq!(map["show_id"], show_id.as_str(), "seat map show_id");
    let etag = resp
        .header("etag")
        .unwrap_or_else(|| panic!("seat map without ETag: {resp}"))
        .to_string();
    let version = map["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("seat map without integer version: {resp}"));
    let seats = map["seats"].as_array().expect("seats");
    assert_eq!(seats.len(), 30, "3 rows × 10 seats");
    for seat in seats {
        assert_eq!(seat["status"], "AVAILABLE", "fresh seat: {seat}");
        assert_eq!(seat["category"], SEAT_CATEGORY, "seat category: {seat}");
        assert_eq!(
            seat["price"],
            money(SEAT_PRICE_CENTS),
            "seat price per category: {seat}"
        );
        assert_eq!(seat["section"], SEATED_SECTION, "seat section: {seat}");
    }
    let a_2_5 = seats
        .iter()
        .find(|s| s["id"] == "A-2-5")
        .expect("seat A-2-5 exists");
    // API.md shows `number` as a string; accept a JSON number too.
    let number = a_2_5["number"]
        .as_str()
        .map(str::to_string)
        .or_else(|| a_2_5["number"].as_i64().map(|n| n.to_string()));
    assert_eq!(
        (a_2_5["row"].as_str(), number.as_deref()),
        (Some("2"), Some("5")),
        "seat row and number: {a_2_5}"
    );
    let floor = standing_entry(&map, STANDING_SECTION);
    assert_eq!(floor["capacity"], 50, "standing capacity: {floor}");
    assert_eq!(floor["available"], 50, "standing available: {floor}");
    assert_eq!(
        floor["category"], STANDING_CATEGORY,
        "standing category: {floor}"
    );
    assert_eq!(
        summary(&map),
        (80, 0, 0),
        "summary counts seated and standing: {map}"
    );

    let resp = app
        .request(Method::GET, &seats_path)
        .header("If-None-Match", &etag)
        .send()
        .await;
    assert_eq!(
        resp.status(),
        304,
        "If-None-Match with the current ETag: {resp}"
    );

    // --- hold ---------------------------------------------------------------
    let chosen = ["A-1-3", "A-1-4", "A-2-5"];
    let before = Utc::now();
    let resp = app.hold_seats(&token, &show_id, &chosen).await;
    let hold = resp.expect(201, "hold chosen seats").clone();
    let hold_id = id_of(&hold, &resp);
    assert_eq!(hold["status"], "ACTIVE", "hold status: {resp}");
    assert_eq!(hold["show_id"], show_id.as_str(), "hold show_id: {resp}");
    assert_eq!(seat_ids_of(&hold), set_of(&chosen), "hold seats: {resp}");
    for seat in hold["seats"].as_array().unwrap() {
        assert_eq!(
            seat["price"],
            money(SEAT_PRICE_CENTS),
            "hold seat price: {resp}"
        );
        assert_eq!(
            seat["category"], SEAT_CATEGORY,
            "hold seat category: {resp}"
        );
    }
    assert_eq!(
        hold["total"],
        money(3 * SEAT_PRICE_CENTS),
        "hold total = sum of prices: {resp}"
    );
    let expires_at = parse_time(&hold["expires_at"]);
    let ttl = (expires_at - before).num_seconds();
    assert!(
        (595..=601).contains(&ttl),
        "default hold TTL is 600 s, expires_at is {ttl} s away: {resp}"
    );
    let expires_in = hold["expires_in_seconds"]
        .as_i64()
        .unwrap_or_else(|| panic!("expires_in_seconds: {resp}"));
    assert!(
        (590..=600).contains(&expires_in),
        "expires_in_seconds: {resp}"
    );

    let resp = app
        .request(Method::GET, &seats_path)
        .header("If-None-Match", &etag)
        .send()
        .await;
    let map = resp
        .expect(200, "the old ETag after a change is no longer current")
        .clone();
    assert_ne!(
        resp.header("etag"),
        Some(etag.as_str()),
        "ETag changes with the map"
    );
    assert!(
        map["version"].as_i64().unwrap_or(0) > version,
        "version grows: {} → {}",
        version,
        map["version"]
    );
    assert_eq!(
        seats_with_status(&map, "HELD"),
        set_of(&chosen),
        "held seats on the map"
    );
    assert_eq!(summary(&map), (77, 3, 0), "summary after the hold");

    let resp = app.get_hold(&token, &hold_id).await;
    let fetched = resp.expect(200, "GET hold");
    assert_eq!(fetched["status"], "ACTIVE", "GET hold status: {resp}");
    assert_eq!(
        seat_ids_of(fetched),
        set_of(&chosen),
        "GET hold seats: {resp}"
    );

    // --- book ---------------------------------------------------------------
    let resp = app.book(&token, &hold_id, &unique_key(), "tok_visa").await;
    let booking = resp.expect(201, "book with tok_visa").clone();
    let booking_id = id_of(&booking, &resp);
    assert_eq!(booking["status"], "CONFIRMED", "booking status: {resp}");
    assert_eq!(
        booking["hold_id"],
        hold_id.as_str(),
        "booking hold_id: {resp}"
    );
    assert_eq!(
        booking["show_id"],
        show_id.as_str(),
        "booking show_id: {resp}"
    );
    assert_eq!(
        booking["total"],
        money(3 * SEAT_PRICE_CENTS),
        "booking total: {resp}"
    );
    parse_time(&booking["created_at"]);
    let tickets = booking["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("booking tickets: {resp}"));
    assert_eq!(tickets.len(), 3, "one ticket per seat: {resp}");
    let ticket_seats: BTreeSet<String> = tickets
        .iter()
        .filter_map(|t| t["seat_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ticket_seats, set_of(&chosen), "ticket seat_ids: {resp}");
    let codes: BTreeSet<&str> = tickets
        .iter()
        .filter_map(|t| t["code"].as_str())
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        codes.len(),
        3,
        "three distinct non-empty ticket codes: {resp}"
    );

    let resp = app.get_hold(&token, &hold_id).await;
    assert_eq!(
        resp.expect(200, "GET hold after booking")["status"],
        "CONFIRMED",
        "hold is CONFIRMED: {resp}"
    );

    let map = app.seat_map(&show_id).await;
    assert_eq!(
        seats_with_status(&map, "BOOKED"),
        set_of(&chosen),
        "booked seats on the map"
    );
    assert!(
        seats_with_status(&map, "HELD").is_empty(),
        "nothing held any more"
    );
    assert_eq!(summary(&map), (77, 0, 3), "summary after booking");

    let resp = app
        .get(&format!("/v1/shows/{show_id}/sales"), app.admin())
        .await;
    let sales = resp.expect(200, "sales report");
    assert_eq!(sales["tickets_sold"], 3, "tickets_sold: {resp}");
    assert_eq!(
        sales["revenue"],
        money(3 * SEAT_PRICE_CENTS),
        "revenue: {resp}"
    );
    app.get(&format!("/v1/shows/{show_id}/sales"), Some(&token))
        .await
        .expect_problem(403, "forbidden", "a customer reads sales");

    let bookings = app.list_all("/v1/bookings", Some(&token)).await;
    assert_eq!(
        bookings.len(),
        1,
        "GET /v1/bookings lists the caller's one booking: {bookings:?}"
    );
    assert_eq!(bookings[0]["id"], booking_id.as_str());

    let resp = app
        .get(&format!("/v1/bookings/{booking_id}"), Some(&token))
        .await;
    let detail = resp.expect(200, "booking detail");
    assert_eq!(
        detail["status"], "CONFIRMED",
        "booking detail status: {resp}"
    );
    assert_eq!(
        detail["tickets"].as_array().map(Vec::len),
        Some(3),
        "booking detail tickets: {resp}"
    );

    // --- cancel --------------------------------------------------------------
    let cancel_path = format!("/v1/bookings/{booking_id}/cancel");
    let resp = app
        .request(Method::POST, &cancel_path)
        .token(&token)
        .send()
        .await;
    let cancelled = resp.expect(200, "cancel");
    assert_eq!(
        cancelled["status"], "CANCELLED",
        "cancelled booking: {resp}"
    );
    assert_eq!(
        cancelled["id"],
        booking_id.as_str(),
        "cancel returns the booking: {resp}"
    );

    let map = app.seat_map(&show_id).await;
    for seat in chosen {
        assert_eq!(
            seat_statuses(&map)[seat],
            "AVAILABLE",
            "{seat} is back on sale after the cancel"
        );
    }
    assert_eq!(summary(&map), (80, 0, 0), "summary after the cancel");
    let charges = app.charges(&hold_id).await;
    assert_eq!(charges.len(), 1, "one charge for the hold: {charges:?}");
    assert_eq!(
        charges[0]["status"], "REFUNDED",
        "the cancel refunded the charge: {charges:?}"
    );
    assert_eq!(
        charges[0]["amount"],
        money(3 * SEAT_PRICE_CENTS),
        "the charge amount: {charges:?}"
    );

    let resp = app
        .request(Method::POST, &cancel_path)
        .token(&token)
        .send()
        .await;
    resp.expect_problem(409, "booking_not_active", "cancel a cancelled booking");
    let resp = app
        .get(&format!("/v1/bookings/{booking_id}"), Some(&token))
        .await;
    assert_eq!(
        resp.expect(200, "booking after cancel")["status"],
        "CANCELLED",
        "{resp}"
    );
}

/// Best-available picks adjacent seats in one row (the first, near the
/// centre); standing holds and their tickets.
async fn best_available_and_standing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(3, 10, Some(20), json!({})).await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;

    let resp = app
        .hold(
            &user.token,
            &json!({"show_id": show_id, "quantity": 3, "category": SEAT_CATEGORY}),
        )
        .await;
    let hold = resp.expect(201, "best available, 3 seats").clone();
    let seats: Vec<(String, String, u32)> = seat_ids_of(&hold)
        .iter()
        .map(|id| split_seat_id(id))
        .collect();
    assert_eq!(seats.len(), 3, "three seats: {resp}");
    assert!(
        seats.iter().all(|(_, row, _)| row == "1"),
        "on an empty show the first row is the best: {resp}"
    );
    let mut numbers: Vec<u32> = seats.iter().map(|(_, _, n)| *n).collect();
    numbers.sort();
    assert_eq!(numbers[2] - numbers[0], 2, "adjacent seats: {resp}");
    assert!(
        numbers[0] >= 4 && numbers[2] <= 7,
        "the block nearest the centre of a 10-seat row: {resp}"
    );
    assert_eq!(hold["total"], money(3 * SEAT_PRICE_CENTS), "total: {resp}");

    let resp = app
        .hold(&user.token, &json!({"show_id": show_id, "quantity": 1}))
        .await;
    let single = resp.expect(201, "best available without category").clone();
    assert_eq!(seat_ids_of(&single).len(), 1, "one seat: {resp}");
    assert!(
        seat_ids_of(&single).is_disjoint(&seat_ids_of(&hold)),
        "never a seat twice: {resp}"
    );

    let other = app.register_user().await;
    let resp = app
        .hold(&other.token, &json!({"show_id": show_id, "quantity": 4}))
        .await;
    let four = resp.expect(201, "best available, 4 seats").clone();
    let four_seats: Vec<(String, String, u32)> = seat_ids_of(&four)
        .iter()
        .map(|id| split_seat_id(id))
        .collect();
    assert_eq!(four_seats.len(), 4, "{resp}");
    assert!(
        four_seats.iter().all(|(_, row, _)| *row == four_seats[0].1),
        "one row: {resp}"
    );
    let mut numbers: Vec<u32> = four_seats.iter().map(|(_, _, n)| *n).collect();
    numbers.sort();
    assert_eq!(numbers[3] - numbers[0], 3, "adjacent: {resp}");
    assert!(
        seat_ids_of(&four).is_disjoint(&seat_ids_of(&hold))
            && seat_ids_of(&four).is_disjoint(&seat_ids_of(&single)),
        "disjoint: {resp}"
    );

    // Standing.
    let standing_user = app.register_user().await;
    let resp = app
        .hold(
            &standing_user.token,
            &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 2}),
        )
        .await;
    let standing = resp.expect(201, "standing hold").clone();
    assert_eq!(
        standing_parts(&standing),
        vec![(STANDING_SECTION.to_string(), 2)],
        "standing part: {resp}"
    );
    assert!(
        seat_ids_of(&standing).is_empty(),
        "no seats in a standing hold: {resp}"
    );
    assert_eq!(
        standing["total"],
        money(2 * STANDING_PRICE_CENTS),
        "standing total: {resp}"
    );

    let map = app.seat_map(show_id).await;
    assert_eq!(
        standing_available(&map, STANDING_SECTION),
        18,
        "standing available after holding 2"
    );
    assert_eq!(
        summary(&map),
        (30 + 20 - 10, 10, 0),
        "summary: 3 + 1 + 4 seats and 2 standing held"
    );

    let resp = app
        .book(
            &standing_user.token,
            &id_of(&standing, &standing),
            &unique_key(),
            "tok_visa",
        )
        .await;
    let booking = resp.expect(201, "book standing").clone();
    let tickets = booking["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("tickets: {resp}"));
    assert_eq!(tickets.len(), 2, "one ticket per standing place: {resp}");
    for ticket in tickets {
        assert!(
            ticket["seat_id"].is_null(),
            "standing ticket seat_id is null: {resp}"
        );
        assert_eq!(
            ticket["section"], STANDING_SECTION,
            "standing ticket section: {resp}"
        );
        assert!(
            ticket["code"].as_str().is_some_and(|c| !c.is_empty()),
            "ticket code: {resp}"
        );
    }
    assert_eq!(
        booking["total"],
        money(2 * STANDING_PRICE_CENTS),
        "booking total: {resp}"
    );
    let map = app.seat_map(show_id).await;
    assert_eq!(
        standing_available(&map, STANDING_SECTION),
        18,
        "booked standing places stay taken"
    );
    assert_eq!(
        summary(&map),
        (40, 8, 2),
        "summary after booking the standing hold"
    );
}

/// DELETE releases at once; another user's hold or booking is 404.
async fn release_and_privacy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(2, 10, None, json!({})).await;
    let show_id = fixture.show_id.as_str();
    let alice = app.register_user().await;
    let mallory = app.register_user().await;

    let resp = app
        .hold_seats(&alice.token, show_id, &["A-1-1", "A-1-2"])
        .await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);

    // Mallory sees nothing of it.
    app.get_hold(&mallory.token, &hold_id).await.expect_problem(
        404,
        "not_found",
        "another user's hold",
    );
    app.delete(&format!("/v1/holds/{hold_id}"), Some(&mallory.token))
        .await
        .expect_problem(404, "not_found", "delete another user's hold");
    app.book(&mallory.token, &hold_id, &unique_key(), "tok_visa")
        .await
        .expect_problem(404, "not_found", "book another user's hold");
    // The admin may read it.
    app.get_hold(&app.admin_token, &hold_id)
        .await
        .expect(200, "admin reads a hold");
    assert_eq!(
        app.get_hold(&alice.token, &hold_id).await.body["status"],
        "ACTIVE",
        "Mallory's attempts changed nothing"
    );

    let resp = app
        .delete(&format!("/v1/holds/{hold_id}"), Some(&alice.token))
        .await;
    assert_eq!(resp.status(), 204, "DELETE own hold: {resp}");
    let map = app.seat_map(show_id).await;
    assert_eq!(
        seat_statuses(&map)["A-1-1"],
        "AVAILABLE",
        "released seats are available at once"
    );
    assert_eq!(
        seat_statuses(&map)["A-1-2"],
        "AVAILABLE",
        "released seats are available at once"
    );
    assert_eq!(summary(&map), (20, 0, 0), "summary after release");
    let resp = app.get_hold(&alice.token, &hold_id).await;
    assert_eq!(
        resp.expect(200, "GET released hold")["status"],
        "RELEASED",
        "{resp}"
    );
    let resp = app
        .book(&alice.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    resp.expect_problem(409, "hold_not_active", "book a released hold");

    // Someone else can take the released seats straight away.
    let resp = app
        .hold_seats(&mallory.token, show_id, &["A-1-1", "A-1-2"])
        .await;
    resp.expect(201, "hold released seats");

    // Bookings are private too.
    let resp = app.hold_seats(&alice.token, show_id, &["A-2-1"]).await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let resp = app
        .book(&alice.token, &hold_id, &unique_key(), "tok_visa")
        .await;
    let booking_id = id_of(resp.expect(201, "book"), &resp);
    app.get(&format!("/v1/bookings/{booking_id}"), Some(&mallory.token))
        .await
        .expect_problem(404, "not_found", "another user's booking");
    app.request(Method::POST, &format!("/v1/bookings/{booking_id}/cancel"))
        .token(&mallory.token)
        .send()
        .await
        .expect_problem(404, "not_found", "cancel another user's booking");
    let by_user = app
        .list_all(&format!("/v1/bookings?user_id={}", alice.id), app.admin())
        .await;
    assert_eq!(
        by_user
            .iter()
            .filter_map(|b| b["id"].as_str())
            .collect::<Vec<_>>(),
        vec![booking_id.as_str()],
        "admin filter by user_id: {by_user:?}"
    );
    let by_other = app
        .list_all(&format!("/v1/bookings?user_id={}", mallory.id), app.admin())
        .await;
    assert!(
        by_other.is_empty(),
        "admin filter by another user_id: {by_other:?}"
    );
    let mallorys = app.list_all("/v1/bookings", Some(&mallory.token)).await;
    assert!(mallorys.is_empty(), "Mallory has no bookings: {mallorys:?}");
    let resp = app
        .get(&format!("/v1/bookings/{booking_id}"), Some(&alice.token))
        .await;
    assert_eq!(
        resp.expect(200, "own booking")["status"],
        "CONFIRMED",
        "Mallory's cancel changed nothing: {resp}"
    );
    app.get(&format!("/v1/bookings/{booking_id}"), app.admin())
        .await
        .expect(200, "admin reads a booking");
    app.get("/v1/bookings/bkg_does_not_exist", Some(&alice.token))
        .await
        .expect_problem(404, "not_found", "unknown booking");
    app.get("/v1/holds/hld_does_not_exist", Some(&alice.token))
        .await
        .expect_problem(404, "not_found", "unknown hold");
}

/// 402 releases the seats at once; 503 keeps the hold ACTIVE for a retry.
async fn payment_declined_and_unavailable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(2, 10, None, json!({})).await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;

    let resp = app
        .hold_seats(&user.token, show_id, &["A-1-5", "A-1-6"])
        .await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let resp = app
        .book(&user.token, &hold_id, &unique_key(), "tok_declined")
        .await;
    resp.expect_problem(402, "payment_declined", "tok_declined");
    let map = app.seat_map(show_id).await;
    assert_eq!(
        seat_statuses(&map)["A-1-5"],
        "AVAILABLE",
        "declined: seats back on sale at once"
    );
    assert_eq!(
        seat_statuses(&map)["A-1-6"],
        "AVAILABLE",
        "declined: seats back on sale at once"
    );
    assert_eq!(summary(&map), (20, 0, 0), "declined: summary");
    let resp = app.get_hold(&user.token, &hold_id).await;
    assert_eq!(
        resp.expect(200, "declined hold")["status"],
        "RELEASED",
        "a declined hold is released: {resp}"
    );
    app.book(&user.token, &hold_id, &unique_key(), "tok_visa")
        .await
        .expect_problem(409, "hold_not_active", "book a declined hold again");
    assert_eq!(
        app.captured_charges(&hold_id).await,
        0,
        "no money for a declined hold"
    );
    assert!(
        app.list_all("/v1/bookings", Some(&user.token))
            .await
            .is_empty(),
        "no booking after a decline"
    );

    let resp = app
        .hold_seats(&user.token, show_id, &["A-2-5", "A-2-6"])
        .await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let resp = app
        .book(&user.token, &hold_id, &unique_key(), "tok_unavailable")
        .await;
    resp.expect_problem(503, "payment_unavailable", "tok_unavailable");
    let resp = app.get_hold(&user.token, &hold_id).await;
    assert_eq!(
        resp.expect(200, "hold after 503")["status"],
        "ACTIVE",
        "the hold stays ACTIVE after a gateway outage: {resp}"
    );
    let map = app.seat_map(show_id).await;
    assert_eq!(
        seats_with_status(&map, "HELD"),
        set_of(&["A-2-5", "A-2-6"]),
        "still held after 503"
    );
    let resp = app
        .book(&user.token, &hold_id, &unique_key(), "tok_amex")
        .await;
    let booking = resp.expect(
        201,
        "retry with another tok_… (any tok_ but the test failures succeeds) and a new key",
    );
    assert_eq!(booking["status"], "CONFIRMED", "{resp}");
    assert_eq!(
        app.captured_charges(&hold_id).await,
        1,
        "exactly one captured charge"
    );
    let map = app.seat_map(show_id).await;
    assert_eq!(
        seats_with_status(&map, "BOOKED"),
        set_of(&["A-2-5", "A-2-6"]),
        "booked after the retry"
    );
}

/// held + booked by one user for one show never passes max_tickets_per_user.
async fn ticket_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app
        .fixture(2, 10, Some(10), json!({"max_tickets_per_user": 4}))
        .await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;

    let resp = app
        .hold_seats(&user.token, show_id, &["A-1-1", "A-1-2", "A-1-3"])
        .await;
    let first = id_of(resp.expect(201, "3 of 4"), &resp);
    app.hold_seats(&user.token, show_id, &["A-2-1", "A-2-2"])
        .await
        .expect_problem(422, "ticket_limit_exceeded", "3 held + 2");
    app.hold(&user.token, &json!({"show_id": show_id, "quantity": 5}))
        .await
        .expect_problem(422, "ticket_limit_exceeded", "best available 5 > 4");
    app.book(&user.token, &first, &unique_key(), "tok_visa")
        .await
        .expect(201, "book the 3");
    let resp = app
        .hold(
            &user.token,
            &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 1}),
        )
        .await;
    let fourth = id_of(resp.expect(201, "3 booked + 1 standing = 4"), &resp);
    app.hold_seats(&user.token, show_id, &["A-2-9"])
        .await
        .expect_problem(422, "ticket_limit_exceeded", "3 booked + 1 held + 1");
    app.hold(
        &user.token,
        &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 1}),
    )
    .await
    .expect_problem(422, "ticket_limit_exceeded", "standing counts too");
    // Releasing gives the quota back.
    assert_eq!(
        app.delete(&format!("/v1/holds/{fourth}"), Some(&user.token))
            .await
            .status(),
        204,
        "release"
    );
    app.hold_seats(&user.token, show_id, &["A-2-9"])
        .await
        .expect(201, "after the release 3 + 1 fits again");
    // Another user has a quota of their own.
    let other = app.register_user().await;
    app.hold_seats(&other.token, show_id, &["A-2-1", "A-2-2", "A-2-3", "A-2-4"])
        .await
        .expect(201, "another user, 4");
    let map = app.seat_map(show_id).await;
    assert_eq!(
        summary(&map),
        (30 - 8, 5, 3),
        "nothing from the rejected holds was written"
    );
}

/// A 2-second hold expires: booking it is 409 hold_expired, and its seats
/// are AVAILABLE within expires_at + 5 s.
async fn hold_expiry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app
        .fixture(2, 10, Some(10), json!({"hold_ttl_seconds": 2}))
        .await;
    let show_id = fixture.show_id.clone();
    let user = app.register_user().await;

    let resp = app
        .hold_seats(&user.token, &show_id, &["A-1-1", "A-1-2"])
        .await;
    let hold = resp.expect(201, "2-second hold").clone();
    let hold_id = id_of(&hold, &resp);
    let expires_at = parse_time(&hold["expires_at"]);
    assert!(
        hold["expires_in_seconds"]
            .as_i64()
            .is_some_and(|s| (0..=2).contains(&s)),
        "expires_in_seconds ≤ 2: {resp}"
    );
    assert!(
        (expires_at - Utc::now()).num_milliseconds() <= 2500,
        "expires_at about 2 s away: {resp}"
    );
    let resp = app
        .hold(
            &user.token,
            &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 2}),
        )
        .await;
    let standing_id = id_of(resp.expect(201, "standing 2-second hold"), &resp);
    let expires_at = expires_at.max(parse_time(&resp.body["expires_at"]));

    // A whole second past expires_at, so that this test does not depend on
    // how expires_at is rounded (`expires_at_is_exact` checks that).
    sleep_until_time(expires_at + chrono::Duration::milliseconds(1100)).await;
    app.book(&user.token, &hold_id, &unique_key(), "tok_visa")
        .await
        .expect_problem(409, "hold_expired", "book after expires_at");

    let deadline = expires_at + chrono::Duration::seconds(5);
    loop {
        let asked_at = Utc::now();
        let map = app.seat_map(&show_id).await;
        let statuses = seat_statuses(&map);
        if statuses["A-1-1"] == "AVAILABLE"
            && statuses["A-1-2"] == "AVAILABLE"
            && standing_available(&map, STANDING_SECTION) == 10
        {
            assert_eq!(
                summary(&map),
                (30, 0, 0),
                "summary once the expired holds are swept"
            );
            break;
        }
        assert!(
            asked_at <= deadline,
            "seats still not AVAILABLE 5 s after expires_at {expires_at}: {map}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in [&hold_id, &standing_id] {
        poll_until(
            "the hold's status to become EXPIRED",
            Duration::from_secs(10),
            Duration::from_millis(200),
            || async {
                let resp = app.get_hold(&user.token, id).await;
                if resp.body["status"] == "EXPIRED" {
                    Ok(())
                } else {
                    Err(resp.to_string())
                }
            },
        )
        .await;
    }
    assert_eq!(
        app.captured_charges(&hold_id).await,
        0,
        "no charge for an expired hold"
    );
}

/// `expires_at` is when the hold really ends: never before request time +
/// TTL, and once it has passed, booking is 409 hold_expired.
async fn expires_at_is_exact(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_EXPIRY_INTERVAL_MS", "600000"),
            ("BOXOFFICE_EXPIRY_TIMER", "false"),
        ],
    )
    .await;
    let fixture = app
        .fixture(1, 10, None, json!({"hold_ttl_seconds": 2}))
        .await;
    let user = app.register_user().await;
    let sent_at = Utc::now();
    let resp = app
        .hold_seats(&user.token, &fixture.show_id, &["A-1-1"])
        .await;
    let hold = resp.expect(201, "2-second hold").clone();
    let expires_at = parse_time(&hold["expires_at"]);
    assert!(
        expires_at >= sent_at + chrono::Duration::seconds(2),
        "a 2-second hold requested at {} cannot expire at {} (is expires_at rounded down?): {resp}",
        rfc3339(sent_at),
        rfc3339(expires_at)
    );
    sleep_until_time(expires_at + chrono::Duration::milliseconds(200)).await;
    app.book(&user.token, &id_of(&hold, &resp), &unique_key(), "tok_visa")
        .await
        .expect_problem(
            409,
            "hold_expired",
            "book 200 ms after the hold's expires_at",
        );
}

/// The expiry timer (a delay queue per node) expires a hold at its deadline
/// even with the safety-net sweep stopped: `hold.expired` is audited and the
/// hold shows `EXPIRED`. The same for a hold that existed before a restart
/// (the queue is filled from the store at start).
async fn expiry_timer_expires_at_the_deadline(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("BOXOFFICE_EXPIRY_INTERVAL_MS", "600000")]).await;
    let fixture = app
        .fixture(1, 10, None, json!({"hold_ttl_seconds": 2}))
        .await;
    let user = app.register_user().await;
    let mut holds = Vec::new();
    for seat in ["A-1-1", "A-1-2"] {
        let resp = app.hold_seats(&user.token, &fixture.show_id, &[seat]).await;
        let hold = resp.expect(201, "2-second hold").clone();
        holds.push((id_of(&hold, &resp), parse_time(&hold["expires_at"])));
    }
    // The second hold's deadline passes while the node is down: the restarted
    // node must find it in the store.
    app.restart().await;
    for (hold_id, expires_at) in &holds {
        sleep_until_time(*expires_at + chrono::Duration::milliseconds(1500)).await;
        let audit = app
            .list_all(
                &format!("/v1/audit?show_id={}", fixture.show_id),
                app.admin(),
            )
            .await;
        let expired = audit
            .iter()
            .filter(|entry| {
                entry["action"] == "hold.expired" && entry["hold_id"] == hold_id.as_str()
            })
            .count();
        assert_eq!(
            expired, 1,
            "hold {hold_id} (expires_at {expires_at}) was not expired by the timer within 1.5 s \
             with the sweep stopped; audit: {audit:?}"
        );
        let resp = app
            .get(&format!("/v1/holds/{hold_id}"), Some(&user.token))
            .await;
        assert_eq!(
            resp.expect(200, "expired hold")["status"],
            "EXPIRED",
            "{resp}"
        );
    }
}

/// Expiry is part of the availability check: with the sweeper stopped, an
/// expired hold neither blocks its seats nor counts against the limit.
async fn expired_hold_never_blocks(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("BOXOFFICE_EXPIRY_INTERVAL_MS", "600000"),
            ("BOXOFFICE_EXPIRY_TIMER", "false"),
        ],
    )
    .await;
    let fixture = app
        .fixture(
            2,
            10,
            Some(4),
            json!({"hold_ttl_seconds": 2, "max_tickets_per_user": 4}),
        )
        .await;
    let show_id = fixture.show_id.as_str();
    let alice = app.register_user().await;
    let bob = app.register_user().await;

    let resp = app
        .hold_seats(&alice.token, show_id, &["A-1-1", "A-1-2"])
        .await;
    let seated = resp.expect(201, "seated hold").clone();
    let resp = app
        .hold(
            &alice.token,
            &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 2}),
        )
        .await;
    let standing = resp.expect(201, "standing hold").clone();
    let expires_at = parse_time(&seated["expires_at"]).max(parse_time(&standing["expires_at"]));
    // A whole second past expires_at, whatever its rounding (see `expires_at_is_exact`).
    sleep_until_time(expires_at + chrono::Duration::milliseconds(1100)).await;

    // The sweeper cannot have run; Bob still gets the seats and the places.
    app.hold_seats(&bob.token, show_id, &["A-1-1", "A-1-2"])
        .await
        .expect(201, "hold the seats of an expired, unswept hold");
    app.hold(
        &bob.token,
        &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 2}),
    )
    .await
    .expect(201, "standing places of an expired, unswept hold");
    // Alice's expired holds count for nothing: she may hold 4 again.
    let resp = app
        .hold_seats(&alice.token, show_id, &["A-2-1", "A-2-2", "A-2-3", "A-2-4"])
        .await;
    resp.expect(
        201,
        "an expired hold does not count against max_tickets_per_user",
    );
    app.book(
        &alice.token,
        &id_of(&seated, &seated),
        &unique_key(),
        "tok_visa",
    )
    .await
    .expect_problem(409, "hold_expired", "book an expired, unswept hold");
    // Capacity 4: only Bob's 2 live places count, Alice's expired 2 do not.
    let map = app.seat_map(show_id).await;
    assert_eq!(
        standing_available(&map, STANDING_SECTION),
        2,
        "only Bob's 2 live places count: {map}"
    );
    assert_eq!(
        seats_with_status(&map, "HELD"),
        set_of(&["A-1-1", "A-1-2", "A-2-1", "A-2-2", "A-2-3", "A-2-4"]),
        "held seats"
    );
}

/// Before sales_start and while PAUSED, holds are 409 show_not_on_sale.
async fn sales_start_and_paused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tomorrow = rfc3339(Utc::now() + chrono::Duration::days(1));
    let fixture = app
        .fixture(1, 10, Some(10), json!({"sales_start": tomorrow}))
        .await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;

    app.hold_seats(&user.token, show_id, &["A-1-1"])
        .await
        .expect_problem(409, "show_not_on_sale", "before sales_start");
    app.hold(
        &user.token,
        &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 1}),
    )
    .await
    .expect_problem(409, "show_not_on_sale", "standing before sales_start");
    let an_hour_ago = rfc3339(Utc::now() - chrono::Duration::hours(1));
    app.patch(
        &format!("/v1/shows/{show_id}"),
        app.admin(),
        &json!({"sales_start": an_hour_ago}),
    )
    .await
    .expect(200, "move sales_start");
    let resp = app.hold_seats(&user.token, show_id, &["A-1-1"]).await;
    let hold_id = id_of(resp.expect(201, "after sales_start"), &resp);

    let resp = app
        .patch(
            &format!("/v1/shows/{show_id}"),
            app.admin(),
            &json!({"status": "PAUSED"}),
        )
        .await;
    assert_eq!(
        resp.expect(200, "pause")["status"],
        "PAUSED",
        "PATCH returns the show: {resp}"
    );
    let resp = app.get(&format!("/v1/shows/{show_id}"), None).await;
    assert_eq!(
        resp.expect(200, "show detail")["status"],
        "PAUSED",
        "{resp}"
    );
    app.hold_seats(&user.token, show_id, &["A-1-2"])
        .await
        .expect_problem(409, "show_not_on_sale", "while PAUSED");
    app.hold(&user.token, &json!({"show_id": show_id, "quantity": 1}))
        .await
        .expect_problem(409, "show_not_on_sale", "best available while PAUSED");

    app.patch(
        &format!("/v1/shows/{show_id}"),
        app.admin(),
        &json!({"status": "ON_SALE"}),
    )
    .await
    .expect(200, "resume");
    app.hold_seats(&user.token, show_id, &["A-1-2"])
        .await
        .expect(201, "on sale again");
    let map = app.seat_map(show_id).await;
    assert_eq!(
        summary(&map).1,
        2,
        "exactly the two successful holds are held: {map}"
    );
    assert_eq!(
        app.get_hold(&user.token, &hold_id).await.body["status"],
        "ACTIVE",
        "pausing keeps existing holds"
    );

    let resp = app
        .patch(
            &format!("/v1/shows/{show_id}"),
            app.admin(),
            &json!({"status": "CANCELLED"}),
        )
        .await;
    assert_eq!(
        resp.expect(200, "cancel the show")["status"],
        "CANCELLED",
        "{resp}"
    );
    let other = app.register_user().await;
    app.hold_seats(&other.token, show_id, &["A-1-5"])
        .await
        .expect_problem(409, "show_not_on_sale", "a CANCELLED show");
}

/// New prices apply to the seat map and to new holds.
async fn patch_show_prices(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, Some(10), json!({})).await;
    let show_id = fixture.show_id.as_str();
    let prices = json!({SEAT_CATEGORY: money(3100), STANDING_CATEGORY: money(1200)});
    let resp = app
        .patch(
            &format!("/v1/shows/{show_id}"),
            app.admin(),
            &json!({"prices": prices, "max_tickets_per_user": 6}),
        )
        .await;
    let show = resp.expect(200, "PATCH prices");
    assert_eq!(
        show["prices"], prices,
        "PATCH returns the new prices: {resp}"
    );
    assert_eq!(
        show["max_tickets_per_user"], 6,
        "PATCH returns the new limit: {resp}"
    );
    let map = app.seat_map(show_id).await;
    assert!(
        map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["price"] == money(3100)),
        "the seat map shows the new price: {map}"
    );
    let user = app.register_user().await;
    let resp = app
        .hold_seats(
            &user.token,
            show_id,
            &["A-1-1", "A-1-2", "A-1-3", "A-1-4", "A-1-5"],
        )
        .await;
    assert_eq!(
        resp.expect(201, "5 seats under the raised limit")["total"],
        money(5 * 3100),
        "new holds use the new price: {resp}"
    );
    let resp = app
        .hold(
            &user.token,
            &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 1}),
        )
        .await;
    assert_eq!(
        resp.expect(201, "the 6th place")["total"],
        money(1200),
        "{resp}"
    );
    app.hold(
        &user.token,
        &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 1}),
    )
    .await
    .expect_problem(422, "ticket_limit_exceeded", "the 7th place");
}

/// The audit trail records every state change, newest first.
async fn audit_trail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(2, 10, None, json!({})).await;
    let show_id = fixture.show_id.clone();
    let user = app.register_user().await;

    let resp = app.hold_seats(&user.token, &show_id, &["A-1-1"]).await;
    let booked_hold = id_of(resp.expect(201, "hold"), &resp);
    let resp = app
        .book(&user.token, &booked_hold, &unique_key(), "tok_visa")
        .await;
    let booking_id = id_of(resp.expect(201, "book"), &resp);
    app.request(Method::POST, &format!("/v1/bookings/{booking_id}/cancel"))
        .token(&user.token)
        .send()
        .await
        .expect(200, "cancel");
    let resp = app.hold_seats(&user.token, &show_id, &["A-1-2"]).await;
    let released_hold = id_of(resp.expect(201, "hold"), &resp);
    assert_eq!(
        app.delete(&format!("/v1/holds/{released_hold}"), Some(&user.token))
            .await
            .status(),
        204
    );
    app.patch(
        &format!("/v1/shows/{show_id}"),
        app.admin(),
        &json!({"hold_ttl_seconds": 1}),
    )
    .await
    .expect(200, "short TTL");
    let resp = app.hold_seats(&user.token, &show_id, &["A-1-3"]).await;
    let expired_hold = id_of(resp.expect(201, "1-second hold"), &resp);
    poll_until(
        "the 1-second hold to expire",
        Duration::from_secs(15),
        Duration::from_millis(200),
        || async {
            let resp = app.get_hold(&user.token, &expired_hold).await;
            if resp.body["status"] == "EXPIRED" {
                Ok(())
            } else {
                Err(resp.to_string())
            }
        },
    )
    .await;

    let entries = poll_until(
        "the audit trail to contain hold.expired",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || async {
            let entries = app
                .list_all(&format!("/v1/audit?show_id={show_id}"), app.admin())
                .await;
            if entries.iter().any(|e| e["action"] == "hold.expired") {
                Ok(entries)
            } else {
                Err(format!("{entries:?}"))
            }
        },
    )
    .await;
    let position = |action: &str, key: &str, id: &str| {
        entries
            .iter()
            .position(|e| e["action"] == action && e[key] == id)
            .unwrap_or_else(|| {
                panic!("no {action} with {key}={id} in the audit trail: {entries:#?}")
            })
    };
    let created = position("hold.created", "hold_id", &booked_hold);
    let captured = entries
        .iter()
        .position(|e| {
            e["action"] == "payment.captured"
                && (e["hold_id"] == booked_hold.as_str() || e["booking_id"] == booking_id.as_str())
        })
        .unwrap_or_else(|| panic!("no payment.captured for the booking: {entries:#?}"));
    let confirmed = position("booking.confirmed", "booking_id", &booking_id);
    let cancelled = position("booking.cancelled", "booking_id", &booking_id);
    let released = position("hold.released", "hold_id", &released_hold);
    let expired = position("hold.expired", "hold_id", &expired_hold);
    assert!(expired < released && released < cancelled && cancelled < confirmed && confirmed < created && captured < created, "newest first: expired {expired}, released {released}, cancelled {cancelled}, confirmed {confirmed}, captured {captured}, created {created}");
    assert_eq!(
        entries[created]["actor_user_id"],
        user.id.as_str(),
        "the actor of hold.created: {}",
        entries[created]
    );
    let times: Vec<_> = entries.iter().map(|e| parse_time(&e["at"])).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "`at` never increases down the list: {times:?}"
    );
    assert!(
        entries.iter().all(|e| e["show_id"] == show_id.as_str()),
        "the show_id filter: {entries:#?}"
    );
    for entry in &entries {
        assert!(entry["id"].is_string(), "audit entries have ids: {entry}");
    }
    app.get("/v1/audit", Some(&user.token))
        .await
        .expect_problem(403, "forbidden", "a customer reads the audit trail");
}

/// /healthz, /readyz, /metrics, /openapi.json and /docs.
async fn operational_endpoints(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get("/healthz", None).await.expect(200, "/healthz");
    app.get("/readyz", None).await.expect(200, "/readyz");
    app.get("/v1/events", None)
        .await
        .expect(200, "some traffic");

    let resp = app.get("/metrics", None).await;
    resp.expect(200, "/metrics");
    assert!(
        resp.header("content-type")
            .is_some_and(|ct| ct.starts_with("text/plain")),
        "Prometheus text content type: {resp}"
    );
    assert!(
        resp.text.lines().any(|l| l.starts_with("# TYPE ")),
        "Prometheus text has # TYPE lines: {resp}"
    );
    let sample = resp
        .text
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no samples: {resp}"));
    let value = sample.rsplit(' ').next().unwrap_or("");
    assert!(
        value.parse::<f64>().is_ok()
            || sample
                .split(' ')
                .nth(1)
                .is_some_and(|v| v.parse::<f64>().is_ok()),
        "a sample line `name value`: {sample:?}"
    );

    let resp = app.get("/openapi.json", None).await;
    let spec = resp.expect(200, "/openapi.json");
    assert!(
        spec["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "an OpenAPI 3 document: {resp}"
    );
    for path in ["/v1/holds", "/v1/bookings"] {
        assert!(
            spec["paths"].get(path).is_some(),
            "openapi paths include {path}: {}",
            spec["paths"]
                .as_object()
                .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        );
    }
    let resp = app.get("/docs", None).await;
    resp.expect(200, "/docs");
    assert!(
        resp.header("content-type")
            .is_some_and(|ct| ct.starts_with("text/html")),
        "/docs is HTML: {resp}"
    );
    assert!(
        resp.text.to_lowercase().contains("<html")
            || resp.text.to_lowercase().contains("<!doctype html"),
        "/docs body is HTML"
    );
}
