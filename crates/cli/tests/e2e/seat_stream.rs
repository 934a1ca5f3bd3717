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

/// Clients that connect and then never read.
const STUCK_CLIENTS: usize = 24;
/// Buyers changing the map at once, and the hold/release rounds each does.
const STORM_BUYERS: usize = 8;
const STORM_ROUNDS: usize = 250;
/// Seats per hold: the largest hold, so each change event is big.
const STORM_SEATS_PER_HOLD: u32 = 20;
/// What the server may grow by while the stuck clients miss the storm. If
/// it kept every missed change for every stuck client it would need about
/// STUCK_CLIENTS × 2 × STORM_BUYERS × STORM_ROUNDS × ~800 bytes ≈ 77 MB.
const RSS_GROWTH_MAX_BYTES: u64 = 24 * 1024 * 1024;

fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("/proc/{pid}/status: {error}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kilobytes| kilobytes * 1024)
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// A connection that asks for the stream and then never reads: a tiny
/// receive window, so the server's writes stall almost at once.
async fn stuck_client(app: &Api, show_id: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address: std::net::SocketAddr = app
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("the test server's address");
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket.connect(address).await.expect("connect");
    let request = format!(
        "GET /v1/shows/{show_id}/seats/stream HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    stream
}

/// Clients that never read do not make the server buffer what they miss:
/// while they sit on their connections, a storm of big changes passes and
/// the server's memory stays put; a client that does read sees it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_never_reads_does_not_grow_server_memory() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("BOXOFFICE_RATE_LIMITS", "off")]).await;
    let pid = app.server_pid().expect("the server's pid");
    let fixture = app
        .fixture(50, 100, None, json!({"max_tickets_per_user": 40}))
        .await;
    let show_id = fixture.show_id.clone();
    let buyers = app.register_users(STORM_BUYERS).await;

    let mut reader = open_stream(&app, &show_id, None).await;
    let snapshot = reader.next(Duration::from_secs(30)).await;
    assert_eq!(snapshot.name, "snapshot", "{snapshot:?}");
    let mut stuck = Vec::new();
    for _ in 0..STUCK_CLIENTS {
        stuck.push(stuck_client(&app, &show_id).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = resident_bytes(pid);

    let storm = buyers.iter().enumerate().map(|(index, buyer)| {
        let api = app.api.clone();
        let token = buyer.token.clone();
        let show_id = show_id.clone();
        let row = index + 1;
        tokio::spawn(async move {
            let seats: Vec<String> = (1..=STORM_SEATS_PER_HOLD)
                .map(|n| format!("{SEATED_SECTION}-{row}-{n}"))
                .collect();
            let seats: Vec<&str> = seats.iter().map(String::as_str).collect();
            for _ in 0..STORM_ROUNDS {
                let held = api.hold_seats(&token, &show_id, &seats).await;
                let hold_id = id_of(held.expect(201, "hold"), &held);
                let released = api
                    .delete(&format!("/v1/holds/{hold_id}"), Some(&token))
                    .await;
                assert_eq!(released.status(), 204, "release {hold_id}");
            }
        })
    });
    // Read along while the storm runs, as a live client does.
    let (version_tx, mut version_rx) = tokio::sync::watch::channel(0i64);
    let reading = tokio::spawn(async move {
        loop {
            let event = reader.next(Duration::from_secs(30)).await;
            // `changes`, or a fresh `snapshot` if this client fell behind.
            assert!(
                event.name == "changes" || event.name == "snapshot",
                "unexpected event {event:?}"
            );
            if let Some(version) = event.data["version"].as_i64() {
                let _ = version_tx.send(version);
            }
        }
    });
    for task in futures::future::join_all(storm).await {
        task.expect("a storm task");
    }
    let after = resident_bytes(pid);
    let final_version = app.seat_map(&show_id).await["version"]
        .as_i64()
        .expect("the map's version");
    let caught_up = tokio::time::timeout(
        Duration::from_secs(10),
        version_rx.wait_for(|seen| *seen >= final_version),
    )
    .await
    .map(|result| result.is_ok());
    assert_eq!(
        caught_up,
        Ok(true),
        "the reading client did not reach version {final_version} (it is at {})",
        *version_rx.borrow()
    );
    reading.abort();

    let growth = after.saturating_sub(before);
    println!(
        "server RSS {} MiB before, {} MiB after the storm ({} KiB growth) with {STUCK_CLIENTS} stuck clients",
        before / 1024 / 1024,
        after / 1024 / 1024,
        growth / 1024
    );
    assert!(
        growth < RSS_GROWTH_MAX_BYTES,
        "the server grew by {growth} bytes while {STUCK_CLIENTS} clients did not read"
    );
    // The server still answers new streams.
    let mut fresh = open_stream(&app, &show_id, None).await;
    assert_eq!(fresh.next(Duration::from_secs(30)).await.name, "snapshot");
    drop(stuck);
}
