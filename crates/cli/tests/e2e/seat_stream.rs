//! The seat-map stream (`GET /v1/shows/{id}/seats/stream`, Server-Sent
//! Events): a snapshot, then ordered changes; resume with `Last-Event-ID`;
//! changes made on another node arrive too.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

both_backends!(seat_map_stream, changes_on_another_node_reach_the_stream);

async fn open_stream(api: &Api, show_id: &str, last_event_id: Option<&str>) -> SseStream {
    let mut request = api
        .client
        .get(api.url(&format!("/v1/shows/{show_id}/seats/stream")));
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    SseStream::of(request.send().await.expect("open the seat-map stream"))
}

/// Reads `changes` events until one satisfies `wanted`.
async fn until_change(
    stream: &mut SseStream,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> SseEvent {
    for _ in 0..50 {
        let event = stream.next(Duration::from_secs(10)).await;
        assert!(
            event.name == "changes" || event.name == "snapshot",
            "unexpected event {event:?}"
        );
        if event.name == "changes" && wanted(&event.data) {
            return event;
        }
    }
    panic!("no `changes` event with {what}");
}

fn has_seat(data: &Value, seat: &str, status: &str) -> bool {
    data["seats"].as_array().is_some_and(|seats| {
        seats
            .iter()
            .any(|s| s["id"] == seat && s["status"] == status)
    })
}

/// A snapshot first, then `changes` in version order with `id:` = version;
/// a reconnect with Last-Event-ID resumes (or sends a fresh snapshot).
async fn seat_map_stream(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fixture = app.fixture(1, 10, Some(10), json!({})).await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;

    let mut stream = open_stream(&app, show_id, None).await;
    let snapshot = stream.next(Duration::from_secs(10)).await;
    assert_eq!(
        snapshot.name, "snapshot",
        "the first event is the snapshot: {snapshot:?}"
    );
    assert_eq!(snapshot.data["show_id"], show_id, "snapshot: {snapshot:?}");
    assert_eq!(
        snapshot.data["seats"].as_array().map(Vec::len),
        Some(10),
        "snapshot seats: {snapshot:?}"
    );
    let version = snapshot.data["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("snapshot version: {snapshot:?}"));

    let resp = app.hold_seats(&user.token, show_id, &["A-1-3"]).await;
    let hold_id = id_of(resp.expect(201, "hold"), &resp);
    let held = until_change(&mut stream, "A-1-3 HELD", |d| has_seat(d, "A-1-3", "HELD")).await;
    let held_version = held.data["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("changes version: {held:?}"));
    assert!(
        held_version > version,
        "versions grow: {version} → {held_version}"
    );
    assert_eq!(
        held.id.as_deref(),
        Some(held_version.to_string().as_str()),
        "`id:` is the version: {held:?}"
    );

    app.hold(
        &user.token,
        &json!({"show_id": show_id, "section": STANDING_SECTION, "quantity": 2}),
    )
    .await
    .expect(201, "standing hold");
    let standing = until_change(&mut stream, "FLOOR available 8", |d| {
        d["standing"].as_array().is_some_and(|s| {
            s.iter()
                .any(|x| x["section"] == STANDING_SECTION && x["available"] == 8)
        })
    })
    .await;
    assert!(
        standing.data["version"].as_i64().unwrap_or(0) > held_version,
        "versions grow: {standing:?}"
    );

    assert_eq!(
        app.delete(&format!("/v1/holds/{hold_id}"), Some(&user.token))
            .await
            .status(),
        204
    );
    until_change(&mut stream, "A-1-3 AVAILABLE", |d| {
        has_seat(d, "A-1-3", "AVAILABLE")
    })
    .await;
    drop(stream);

    // Reconnect after the snapshot's version: the first event either resumes
    // with the next change (A-1-3 HELD) or is a fresh snapshot.
    let mut resumed = open_stream(&app, show_id, Some(&version.to_string())).await;
    let first = resumed.next(Duration::from_secs(10)).await;
    match first.name.as_str() {
        "changes" => {
            assert!(
                first.data["version"].as_i64().unwrap_or(0) > version,
                "resumed after {version}: {first:?}"
            );
            assert!(
                has_seat(&first.data, "A-1-3", "HELD"),
                "the first change after {version} is the hold of A-1-3: {first:?}"
            );
        }
        "snapshot" => {
            assert_eq!(
                seat_statuses(&first.data)["A-1-3"],
                "AVAILABLE",
                "a fresh snapshot is current: {first:?}"
            );
        }
        _ => panic!("unexpected first event after reconnecting: {first:?}"),
    }
}

/// Two nodes on one database: a hold made through one node reaches a
/// stream opened on the other within a second (PostgreSQL: the change feed;
/// SQLite: two processes on one file, the version check).
async fn changes_on_another_node_reach_the_stream(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let peer = app.spawn_peer().await;
    let fixture = app.fixture(1, 10, None, json!({})).await;
    let show_id = fixture.show_id.as_str();
    let user = app.register_user().await;
    let mut stream = open_stream(&peer, show_id, None).await;
    let snapshot = stream.next(Duration::from_secs(10)).await;
    assert_eq!(snapshot.name, "snapshot", "{snapshot:?}");
    let started = std::time::Instant::now();
    app.hold_seats(&user.token, show_id, &["A-1-5"])
        .await
        .expect(201, "hold on the first node");
    until_change(&mut stream, "A-1-5 HELD", |d| has_seat(d, "A-1-5", "HELD")).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "the change took {elapsed:?} to reach the other node's stream"
    );
}
