//! Full-text search (`GET /v1/events?q=…`) and type-ahead
//! (`GET /v1/events/suggest`): typos, prefixes, filters with words,
//! ranking, paging, bad input, and a change on one node searchable on
//! another within a second (docs/adr/0015-search-index.md).

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    typos_and_prefixes,
    filters_combine_with_words,
    ranking_and_paging,
    bad_queries,
    changes_reach_every_node_within_a_second
);

/// The bound for another node's change to be searchable, and the
/// margin for a 2-core box running two servers, a database and this test
/// (as `nodes::CONVERGENCE_BOUND`; the poll itself runs every 500 ms).
const VISIBLE_BOUND: Duration = Duration::from_secs(1);
const SCHEDULING_MARGIN: Duration = Duration::from_millis(500);
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How long to keep looking before failing, to report how late it was.
const POLL_DEADLINE: Duration = Duration::from_secs(10);

/// The IDs of `GET path`'s items, in order (asserting 200).
async fn ranked(api: &Api, path: &str) -> Vec<String> {
    let resp = api.get(path, None).await;
    resp.expect(200, path)["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {resp}"))
        .iter()
        .map(|item| {
            item["id"]
                .as_str()
                .or_else(|| item["event_id"].as_str())
                .unwrap_or_else(|| panic!("an id: {resp}"))
                .to_string()
        })
        .collect()
}

fn event(title: &str, performer: &str, description: &str, genre: &str) -> Value {
    json!({"title": title, "performer": performer, "description": description,
           "genre": genre, "tags": []})
}

/// The events most tests search among.
struct Catalog {
    coldplay: String,
    moonlight: String,
    decoy: String,
}

async fn catalog(app: &Api) -> Catalog {
    Catalog {
        coldplay: app
            .create_event_with(&event(
                "Coldplay: Music of the Spheres",
                "Coldplay",
                "Stadium pop with lasers.",
                "pop",
            ))
            .await,
        moonlight: app
            .create_event_with(&event(
                "Moonlight Quartet",
                "The Moonlighters",
                "Strings by candlelight.",
                "classical",
            ))
            .await,
        decoy: app
            .create_event_with(&event(
                "Gold Rush Revue",
                "Old Timers",
                "A cold night of bluegrass.",
                "folk",
            ))
            .await,
    }
}

async fn typos_and_prefixes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = catalog(&app).await;
    // Indexed before the 201 went out: no waiting on this node.
    for (q, first) in [
        ("coldplay", &c.coldplay),
        ("coldpay", &c.coldplay),
        ("COLDPLAY", &c.coldplay),
        ("cold", &c.coldplay),
        ("coldp", &c.coldplay),
        ("moonlihgt", &c.moonlight),
        ("moonlihgt quartet", &c.moonlight),
        ("moonli", &c.moonlight),
        ("quartte", &c.moonlight),
        ("bluegras", &c.decoy),
    ] {
        let found = ranked(&app, &format!("/v1/events?q={}", encode_query(q))).await;
        assert_eq!(found.first(), Some(first), "q={q:?}: {found:?}");
    }
    let found = ranked(&app, "/v1/events?q=coldpay").await;
    assert_eq!(
        found,
        vec![c.coldplay.clone()],
        "a typo finds only Coldplay"
    );
    assert!(
        ranked(&app, "/v1/events?q=zzzyyyxxxqqq").await.is_empty(),
        "nothing matches"
    );
    assert!(
        ranked(&app, "/v1/events?q=moonlight%20coldplay")
            .await
            .is_empty(),
        "every word must match"
    );

    // Type-ahead over titles and performers.
    let resp = app.get("/v1/events/suggest?q=col", None).await;
    let body = resp.expect(200, "suggest");
    let first = &body["items"][0];
    assert_eq!(first["event_id"], json!(c.coldplay), "{resp}");
    assert_eq!(first["title"], "Coldplay: Music of the Spheres", "{resp}");
    assert_eq!(first["performer"], "Coldplay", "{resp}");
    assert!(first["next_show_at"].is_null(), "no show yet: {resp}");
    assert_eq!(
        ranked(&app, "/v1/events/suggest?q=the%20moonlihgt").await,
        vec![c.moonlight.clone()]
    );
    assert!(
        ranked(&app, "/v1/events/suggest?q=bluegrass")
            .await
            .is_empty(),
        "suggestions do not look at descriptions"
    );
    let many = ranked(&app, "/v1/events/suggest?q=o&limit=1").await;
    assert!(many.len() <= 1, "limit: {many:?}");
}

async fn filters_combine_with_words(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let berlin = app
        .create_venue(&venue_layout("Berlin Hall", 1, 5, None))
        .await;
    let mut munich_layout = venue_layout("Munich Hall", 1, 5, None);
    munich_layout["city"] = json!("Munich");
    let munich = app.create_venue(&munich_layout).await;
    let spring = app
        .create_event_with(&event("Jazz Night Spring", "Trio", "", "jazz"))
        .await;
    let autumn = app
        .create_event_with(&event("Jazz Night Autumn", "Quintet", "", "jazz"))
        .await;
    let rock = app
        .create_event_with(&event("Rock Night", "Jazzless", "Not jazz at all.", "rock"))
        .await;
    let soon = rfc3339(Utc::now() + chrono::Duration::days(10));
    let later = rfc3339(Utc::now() + chrono::Duration::days(40));
    let prices = prices_for(true, false);
    app.create_show(
        &spring,
        &berlin,
        json!({"starts_at": soon, "prices": prices}),
    )
    .await;
    app.create_show(
        &autumn,
        &munich,
        json!({"starts_at": later, "prices": prices}),
    )
    .await;
    let rock_show = app
        .create_show(&rock, &munich, json!({"starts_at": soon, "prices": prices}))
        .await;
    let middle = encode_query(&rfc3339(Utc::now() + chrono::Duration::days(20)));

    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let set = |ids: &[&String]| sorted(ids.iter().map(|id| id.to_string()).collect());
    for (query, expected) in [
        ("q=jazz".to_string(), set(&[&spring, &autumn, &rock])),
        ("q=jazz&genre=JAZZ".to_string(), set(&[&spring, &autumn])),
        ("q=jazz&city=munich".to_string(), set(&[&autumn, &rock])),
        ("q=jazz&city=Munich&genre=jazz".to_string(), set(&[&autumn])),
        (format!("q=night&from={middle}"), set(&[&autumn])),
        (format!("q=night&to={middle}"), set(&[&spring, &rock])),
        (format!("q=night&city=Munich&to={middle}"), set(&[&rock])),
        (format!("q=night&city=Berlin&from={middle}"), Vec::new()),
        ("q=nihgt&genre=rock".to_string(), set(&[&rock])),
    ] {
        let found = sorted(ranked(&app, &format!("/v1/events?{query}")).await);
        assert_eq!(found, expected, "GET /v1/events?{query}");
    }

    // A cancelled show takes the event out of its city (and its dates).
    let rock_show_id = id_of(&rock_show, &rock_show);
    app.patch(
        &format!("/v1/shows/{rock_show_id}"),
        app.admin(),
        &json!({"status": "CANCELLED"}),
    )
    .await
    .expect(200, "cancel the rock show");
    assert_eq!(
        sorted(ranked(&app, "/v1/events?q=night&city=Munich").await),
        set(&[&autumn]),
        "with q"
    );
    assert_eq!(
        sorted(ranked(&app, "/v1/events?city=Munich").await),
        set(&[&autumn]),
        "without q, the same"
    );
    assert_eq!(
        sorted(ranked(&app, "/v1/events?q=rock").await),
        set(&[&rock]),
        "the event itself is still found"
    );
}

async fn ranking_and_paging(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Created first, so that creation order would put it first.
    let in_description = app
        .create_event_with(&event(
            "Sea Shanty Night",
            "The Riggers",
            "Songs from the old harbour, sung by the riggers of the port.",
            "folk",
        ))
        .await;
    let in_title = app
        .create_event_with(&event("Harbour Lights", "Dock Band", "Shanties.", "folk"))
        .await;
    assert_eq!(
        ranked(&app, "/v1/events?q=harbour").await,
        [in_title.clone(), in_description.clone()],
        "a title match ranks before a description match"
    );

    // Equal relevance: the next show first.
    let venue = app.create_venue(&venue_layout("Dock", 1, 5, None)).await;
    let mut by_date = Vec::new();
    for days in [30, 10, 20] {
        let id = app
            .create_event_with(&event("Paging Party", "DJ", "", "dance"))
            .await;
        let starts_at = rfc3339(Utc::now() + chrono::Duration::days(days));
        app.create_show(
            &id,
            &venue,
            json!({"starts_at": starts_at, "prices": prices_for(true, false)}),
        )
        .await;
        by_date.push((days, id));
    }
    by_date.sort();
    let expected: Vec<String> = by_date.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        ranked(&app, "/v1/events?q=paging%20party").await,
        expected,
        "identical events rank by their next show"
    );

    // Pages of one, through the opaque cursor, in rank order.
    let mut seen = Vec::new();
    let mut path = "/v1/events?q=paging%20party&limit=1".to_string();
    loop {
        let resp = app.get(&path, None).await;
        let page = resp.expect(200, &path);
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 1, "{resp}");
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        assert!(seen.len() <= 3, "paging does not end: {seen:?}");
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/v1/events?q=paging%20party&limit=1&cursor={}",
                    encode_query(cursor)
                )
            }
            None => break,
        }
    }
    assert_eq!(seen, expected, "every result once, in rank order");

    // A listing's cursor is no search cursor, and the reverse.
    let resp = app.get("/v1/events?limit=1", None).await;
    let listing_cursor = resp.expect(200, "listing")["next_cursor"]
        .as_str()
        .expect("more events")
        .to_string();
    let resp = app
        .get(
            &format!(
                "/v1/events?q=party&limit=1&cursor={}",
                encode_query(&listing_cursor)
            ),
            None,
        )
        .await;
    let violations = problem_violations(&resp, &[400], Some("invalid_request"), Some("cursor"));
    assert!(violations.is_empty(), "{violations:?} {resp}");
}

async fn bad_queries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = catalog(&app).await;
    let long = "a".repeat(201);
    let many_words = vec!["word"; 17].join(" ");
    for (path, field) in [
        (format!("/v1/events?q={long}"), "q"),
        (
            format!("/v1/events?q={}", encode_query("cold\u{0}play")),
            "q",
        ),
        (format!("/v1/events?q={}", encode_query("cold\nplay")), "q"),
        (format!("/v1/events?q={}", encode_query(&many_words)), "q"),
        (
            "/v1/events?q=cold&cursor=cmFuazo5OTk5OQ".to_string(),
            "cursor",
        ),
        ("/v1/events?q=cold&limit=0".to_string(), "limit"),
        ("/v1/events?q=cold&from=yesterday".to_string(), "from"),
        ("/v1/events/suggest".to_string(), "q"),
        ("/v1/events/suggest?q=".to_string(), "q"),
        ("/v1/events/suggest?q=%20%20".to_string(), "q"),
        (format!("/v1/events/suggest?q={long}"), "q"),
        ("/v1/events/suggest?q=cold&limit=0".to_string(), "limit"),
        ("/v1/events/suggest?q=cold&limit=21".to_string(), "limit"),
        ("/v1/events/suggest?q=cold&limit=x".to_string(), "limit"),
    ] {
        let resp = app.get(&path, None).await;
        let violations = problem_violations(&resp, &[400], Some("invalid_request"), Some(field));
        assert!(violations.is_empty(), "GET {path}: {violations:?} {resp}");
    }
    // Syntax of query languages, emoji, other scripts: words or nothing,
    // never an error.
    for q in [
        "title:coldplay OR *",
        "\"coldplay",
        "coldplay)",
        "+coldplay -x",
        "🎸🎸🎸",
        "!!!",
        "שלום עולם",
        "مرحبا",
        "中文演唱会",
        "\u{202e}yalpdloc",
        "a b c d e f g h i j k l m n o p",
        &"x".repeat(200),
    ] {
        for route in ["/v1/events", "/v1/events/suggest"] {
            let path = format!("{route}?q={}", encode_query(q));
            let resp = app.get(&path, None).await;
            resp.expect(200, &path);
        }
    }
    assert_eq!(
        ranked(
            &app,
            &format!("/v1/events?q={}", encode_query("\"coldplay)"))
        )
        .await,
        vec![c.coldplay.clone()]
    );
    // Blank q is no q: every event.
    assert_eq!(ranked(&app, "/v1/events?q=%20").await.len(), 3);

    let resp = app.get("/openapi.json", None).await;
    let spec = resp.expect(200, "openapi");
    assert!(
        spec["paths"]["/v1/events/suggest"]["get"].is_object(),
        "the OpenAPI document describes suggest"
    );
}

/// Polls `path` on `api` until its ranked IDs satisfy `done`; returns how
/// long that took.
async fn time_until(
    api: &Api,
    path: &str,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Duration {
    let started = Instant::now();
    poll_until(what, POLL_DEADLINE, POLL_EVERY, || async {
        let found = ranked(api, path).await;
        if done(&found) {
            Ok(())
        } else {
            Err(format!("{found:?}"))
        }
    })
    .await;
    started.elapsed()
}

async fn changes_reach_every_node_within_a_second(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let peer = app.spawn_peer().await;
    let venue = app
        .create_venue(&venue_layout("Riverside", 1, 5, None))
        .await;
    let mut lags = Vec::new();

    // Created on the first node: searchable there at once, on the peer soon.
    let id = app
        .create_event_with(&event("Coldplay Live", "Coldplay", "", "pop"))
        .await;
    assert_eq!(ranked(&app, "/v1/events?q=coldpay").await, vec![id.clone()]);
    let has = |id: &String| {
        let id = id.clone();
        move |found: &[String]| found.contains(&id)
    };
    lags.push((
        "create",
        time_until(&peer, "/v1/events?q=coldpay", "the peer", has(&id)).await,
    ));

    // Renamed on the peer.
    peer.patch(
        &format!("/v1/events/{id}"),
        peer.admin(),
        &json!({"title": "Lightning Horns"}),
    )
    .await
    .expect(200, "rename");
    assert_eq!(
        ranked(&peer, "/v1/events?q=lightning").await,
        vec![id.clone()]
    );
    lags.push((
        "update",
        time_until(&app, "/v1/events?q=lightnin", "the first node", has(&id)).await,
    ));

    // A show on the peer puts it in a city for the first node.
    let show = peer
        .create_show(&id, &venue, json!({"prices": prices_for(true, false)}))
        .await;
    lags.push((
        "show",
        time_until(
            &app,
            "/v1/events?q=lightning&city=berlin",
            "the first node",
            has(&id),
        )
        .await,
    ));

    // Cancelled on the first node: gone from the city on the peer.
    let show_id = id_of(&show, &show);
    app.patch(
        &format!("/v1/shows/{show_id}"),
        app.admin(),
        &json!({"status": "CANCELLED"}),
    )
    .await
    .expect(200, "cancel");
    lags.push((
        "cancel",
        time_until(
            &peer,
            "/v1/events?q=lightning&city=berlin",
            "the peer",
            |found| found.is_empty(),
        )
        .await,
    ));

    eprintln!("searchable on the other node after: {lags:?}");
    let late: Vec<_> = lags
        .iter()
        .filter(|(_, lag)| *lag > VISIBLE_BOUND + SCHEDULING_MARGIN)
        .collect();
    assert!(
        late.is_empty(),
        "searchable on the other node after (bound {VISIBLE_BOUND:?} + margin): {lags:?}"
    );
}
