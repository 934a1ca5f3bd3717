//! Browsing: event search filters and the live seat-map stream (SSE).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(search_filters, seat_map_stream);

/// The ids of `GET path`'s items.
async fn ids(app: &TestApp, path: &str) -> Result<BTreeSet<String>, String> {
    let resp = app.get(path, None).await;
    if resp.status() != 200 {
        return Err(resp.to_string());
    }
    Ok(resp.body["items"].as_array().map(|items| items.iter().filter_map(|e| e["id"].as_str().map(str::to_string)).collect()).unwrap_or_default())
}

/// `q` (typo tolerant), `genre`, `city`, `from` and `to`.
async fn search_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let berlin = app.create_venue(&venue_layout("Berlin Hall", 1, 5, None)).await;
    let mut munich_layout = venue_layout("Munich Hall", 1, 5, None);
    munich_layout["city"] = json!("Munich");
    munich_layout["timezone"] = json!("Europe/Berlin");
    let munich = app.create_venue(&munich_layout).await;
    let moonlight = app
        .create_event_with(&json!({"title": "Moonlight Quartet", "description": "Strings", "performer": "The Moonlighters", "genre": "classical", "tags": []}))
        .await;
    let thunder = app
        .create_event_with(&json!({"title": "Thunder Brass Parade", "description": "Loud", "performer": "Brass Band", "genre": "jazz", "tags": []}))
        .await;
    let soon = rfc3339(Utc::now() + chrono::Duration::days(10));
    let later = rfc3339(Utc::now() + chrono::Duration::days(40));
    app.create_show(&moonlight, &berlin, json!({"starts_at": soon, "prices": prices_for(true, false)})).await;
    app.create_show(&thunder, &munich, json!({"starts_at": later, "prices": prices_for(true, false)})).await;
    let middle = encode_query(&rfc3339(Utc::now() + chrono::Duration::days(20)));

    let both = BTreeSet::from([moonlight.clone(), thunder.clone()]);
    let mut failures = Vec::new();
    let only = |id: &String| BTreeSet::from([id.clone()]);
    for (path, expected) in [
        ("/v1/events?q=moonlight".to_string(), only(&moonlight)),
        ("/v1/events?q=moonlihgt".to_string(), only(&moonlight)),
        ("/v1/events?q=thunder%20brass".to_string(), only(&thunder)),
        ("/v1/events?genre=jazz".to_string(), only(&thunder)),
        ("/v1/events?city=Munich".to_string(), only(&thunder)),
        ("/v1/events?city=Berlin".to_string(), only(&moonlight)),
        (format!("/v1/events?from={middle}"), only(&thunder)),
        (format!("/v1/events?to={middle}"), only(&moonlight)),
        ("/v1/events".to_string(), both.clone()),
    ] {
        // The search index may be fed asynchronously: give each query a few
        // seconds, and report every filter that is wrong, not just the first.
        let started = std::time::Instant::now();
        loop {
            let found = ids(&app, &path).await;
            if found.as_ref() == Ok(&expected) {
                break;
            }
            if started.elapsed() > Duration::from_secs(5) {
                failures.push(format!("GET {path}: expected {expected:?}, got {found:?}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    assert!(failures.is_empty(), "moonlight = {moonlight}, thunder = {thunder}; wrong searches:\n{}", failures.join("\n"));
    let none = ids(&app, "/v1/events?q=zzzyyyxxxqqq").await.expect("search without hits");
    assert!(none.is_empty(), "a query matching nothing: {none:?}");

    // An edit is searchable.
    app.patch(&format!("/v1/events/{thunder}"), app.admin(), &json!({"title": "Lightning Horns"})).await.expect(200, "rename");
    poll_until("the renamed event to be found by its new title", Duration::from_secs(10), Duration::from_millis(250), || async {
        let found = ids(&app, "/v1/events?q=lightning").await?;
        if found == only(&thunder) { Ok(()) } else { Err(format!("{found:?}")) }
    })
    .await;
}

/// One server-sent event.
#[derive(Debug)]
struct Event {
    name: String,
    id: Option<String>,
    data: Value,
}

/// Reads a text/event-stream response event by event.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(app: &TestApp, show_id: &str, last_event_id: Option<&str>) -> EventStream {
        let mut request = app.client.get(app.url(&format!("/v1/shows/{show_id}/seats/stream")));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("open the seat-map stream");
        assert_eq!(response.status().as_u16(), 200, "seat-map stream status");
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(content_type.starts_with("text/event-stream"), "stream content type: {content_type:?}");
        EventStream { response, buffer: String::new() }
    }

    /// The next event (skipping comments/heartbeats), within `deadline`.
    async fn next(&mut self, deadline: Duration) -> Event {
        let started = std::time::Instant::now();
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut id, mut data) = ("message".to_string(), None, Vec::new());
                for line in block.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (field, value) = line.split_once(':').map(|(f, v)| (f, v.strip_prefix(' ').unwrap_or(v))).unwrap_or((line, ""));
                    match field {
                        "event" => name = value.to_string(),
                        "id" => id = Some(value.to_string()),
                        "data" => data.push(value.to_string()),
                        _ => {}
                    }
                }
                if data.is_empty() {
                    continue; // a heartbeat or a retry: line
                }
                let text = data.join("\n");
                let data = serde_json::from_str(&text).unwrap_or_else(|e| panic!("event {name} data is not JSON ({e}): {text}"));
                return Event { name, id, data };
            }
            let remaining = deadline.checked_sub(started.elapsed()).unwrap_or_else(|| panic!("no complete event within {deadline:?}; buffered: {:?}", self.buffer));
            match tokio::time::timeout(remaining, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                Ok(Ok(None)) => panic!("the stream ended; buffered: {:?}", self.buffer),
                Ok(Err(error)) => panic!("reading the stream: {error}"),
                Err(_) => panic!("no event within {deadline:?}; buffered: {:?}", self.buffer),
            }
        }
    }

    /// Reads `changes` events until one satisfies `wanted`.
    async fn until_change(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Event {
        for _ in 0..50 {
            let event = self.next(Duration::from_secs(10)).await;
            assert!(event.name == "changes" || event.name == "snapshot", "unexpected event {event:?}");
            if event.name == "changes" && wanted(&event.data) {
                return event;
            }
        }
        panic!("no `changes` event with {what}");
    }
}

fn has_seat(data: &Value, seat: &str, status: &str) -> bool {
    data["seats"].as_array().is_some_and(|seats| seats.iter().any(|s| s["id"] == seat && s["status"] == status))
}

/// A snapshot first, then `changes` in version order with `id:` = version;
/// a reconnect with Last-Event-ID resumes (or sends a fresh snapshot).
async fn seat_map_stream(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, Some(10), json!({})).await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;

    let mut stream = EventStream::open(&app, show_id, None).await;
    let snapshot = stream.next(Duration::from_secs(10)).await;
    assert_eq!(snapshot.name, "snapshot", "the first event is the snapshot: {snapshot:?}");
    assert_eq!(snapshot.data["show_id"], show_id, "snapshot: {snapshot:?}");
    assert_eq!(snapshot.data["seats"].as_array().map(Vec::len), Some(10), "snapshot seats: {snapshot:?}");
    let version = snapshot.data["version"].as_i64().unwrap_or_else(|| panic!("snapshot version: {snapshot:?}"));

    let resp = app.hold_seats(&user.token, show_id, &["A-1-3"]).await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let held = stream.until_change("A-1-3 HELD", |d| has_seat(d, "A-1-3", "HELD")).await;
    let held_version = held.data["version"].as_i64().unwrap_or_else(|| panic!("changes version: {held:?}"));
    assert!(held_version > version, "versions grow: {version} → {held_version}");
    assert_eq!(held.id.as_deref(), Some(held_version.to_string().as_str()), "`id:` is the version: {held:?}");

    app.hold(&user.token, &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 2})).await.expect(201, "standing hold");
    let standing = stream
        .until_change("FLOOR available 8", |d| d["standing"].as_array().is_some_and(|s| s.iter().any(|x| x["section"] == STANDING_SECTION && x["available"] == 8)))
        .await;
    assert!(standing.data["version"].as_i64().unwrap_or(0) > held_version, "versions grow: {standing:?}");

    assert_eq!(app.delete(&format!("/v1/holds/{hold_id}"), Some(&user.token)).await.status(), 204);
    stream.until_change("A-1-3 AVAILABLE", |d| has_seat(d, "A-1-3", "AVAILABLE")).await;
    drop(stream);

    // Reconnect after the snapshot's version: the first event either resumes
    // with the next change (A-1-3 HELD) or is a fresh snapshot.
    let mut resumed = EventStream::open(&app, show_id, Some(&version.to_string())).await;
    let first = resumed.next(Duration::from_secs(10)).await;
    match first.name.as_str() {
        "changes" => {
            assert!(first.data["version"].as_i64().unwrap_or(0) > version, "resumed after {version}: {first:?}");
            assert!(has_seat(&first.data, "A-1-3", "HELD"), "the first change after {version} is the hold of A-1-3: {first:?}");
        }
        "snapshot" => {
            assert_eq!(seat_statuses(&first.data)["A-1-3"], "AVAILABLE", "a fresh snapshot is current: {first:?}");
        }
        _ => panic!("unexpected first event after reconnecting: {first:?}"),
    }
}
