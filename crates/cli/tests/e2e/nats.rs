//! Domain events to NATS JetStream through the outbox: bookings and a
//! cancellation arrive as messages with the outbox's event IDs, and a NATS
//! outage loses and duplicates nothing. The NATS server is a real
//! `nats-server -js` process of each test's own, read by a JetStream consumer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::process::Command;

use crate::common::*;

both_backends!(
    bookings_and_a_cancellation_are_published_with_their_event_ids,
    a_nats_outage_loses_and_duplicates_nothing
);

const NATS_SERVER: &str = "/usr/sbin/nats-server";
/// The server's defaults (`BOXOFFICE_NATS_STREAM`, `…_SUBJECT_PREFIX`).
const STREAM: &str = "BOXOFFICE";
/// How long an event may take to arrive once its server is up.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages asked for per pull; a fetch ends earlier when the stream runs dry.
const FETCH_BATCH: usize = 500;
/// How long one pull waits for messages that are not there.
const FETCH_EXPIRES: Duration = Duration::from_millis(500);

/// A real `nats-server -js` process with its own port and store folder;
/// stopping and starting again keeps both. Killed on drop.
struct NatsServer {
    process: ServerProcess,
}

impl NatsServer {
    fn new() -> NatsServer {
        assert!(
            std::path::Path::new(NATS_SERVER).exists(),
            "{NATS_SERVER} is missing: the nats:: tests run their own NATS server \
             (apt-get install nats-server)"
        );
        NatsServer {
            process: ServerProcess::new("nats-server"),
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.process.port)
    }

    async fn start(&mut self) {
        let mut command = Command::new(NATS_SERVER);
        command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.process.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.process.dir);
        self.process
            .start(command, "apt-get install nats-server")
            .await;
    }

    async fn stop(&mut self) {
        self.process.stop().await;
    }

    /// Every message in the stream, read from the start by a fresh
    /// ephemeral consumer (empty while the stream does not exist yet).
    async fn events(&self) -> Vec<Event> {
        let Ok(client) = async_nats::connect(self.url()).await else {
            return Vec::new();
        };
        let jetstream = async_nats::jetstream::new(client);
        let Ok(stream) = jetstream.get_stream(STREAM).await else {
            return Vec::new();
        };
        let consumer = stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("an ephemeral consumer");
        let mut events = Vec::new();
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(FETCH_BATCH)
                .expires(FETCH_EXPIRES)
                .messages()
                .await
                .expect("a fetch");
            let before = events.len();
            while let Some(message) = batch.next().await {
                let message = message.expect("a message");
                let message_id = message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get("Nats-Msg-Id"))
                    .map(|value| value.to_string())
                    .unwrap_or_default();
                events.push(Event {
                    subject: message.subject.to_string(),
                    message_id,
                    payload: serde_json::from_slice(&message.payload).expect("a JSON body"),
                });
            }
            if events.len() == before {
                return events;
            }
        }
    }

    /// Waits until `done` holds for the stream's messages; returns them.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let started = Instant::now();
        loop {
            let events = self.events().await;
            if done(&events) {
                return events;
            }
            assert!(
                started.elapsed() < ARRIVAL_TIMEOUT,
                "{what}: not within {ARRIVAL_TIMEOUT:?}; {} messages: {:?}",
                events.len(),
                events.iter().map(|e| &e.subject).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[derive(Debug)]
struct Event {
    subject: String,
    message_id: String,
    payload: Value,
}

impl Event {
    fn event_type(&self) -> &str {
        self.payload["type"].as_str().unwrap_or("")
    }

    fn booking_id(&self) -> &str {
        self.payload["booking_id"].as_str().unwrap_or("")
    }

    fn event_id(&self) -> &str {
        self.payload["event_id"].as_str().unwrap_or("")
    }
}

async fn spawn_app(backend: Backend, nats: &NatsServer) -> TestApp {
    TestApp::spawn_with(
        backend,
        &[
            ("NATS_URL", &nats.url()),
            ("BOXOFFICE_OUTBOX_POLL_MS", "50"),
            ("BOXOFFICE_OUTBOX_BACKOFF_MAX_MS", "500"),
            ("BOXOFFICE_RATE_LIMITS", "off"),
        ],
    )
    .await
}

/// Books `seats`; returns the booking.
async fn bookings_and_a_cancellation_are_published_with_their_event_ids(backend: Backend) {
    let mut nats = NatsServer::new();
    nats.start().await;
    let app = spawn_app(backend, &nats).await;
    let fixture = app.fixture(1, 5, None, json!({})).await;
    let user = app.register_user().await;
    let kept = app.buy(&user, &fixture.show_id, &["A-1-1", "A-1-2"]).await;
    let cancelled = app.buy(&user, &fixture.show_id, &["A-1-3"]).await;
    let cancelled_id = id_of(&cancelled, &cancelled);
    app.post(
        &format!("/v1/bookings/{cancelled_id}/cancel"),
        Some(&user.token),
        &json!({}),
    )
    .await
    .expect(200, "cancel");

    nats.wait_for("two confirmations, a cancellation and a refund", |events| {
        events.len() >= 4
    })
    .await;
    // Long enough for a duplicate to show up if one were on its way.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = nats.events().await;
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.subject.clone(), e.booking_id().to_string()))
        .collect();
    seen.sort();
    let kept_id = id_of(&kept, &kept);
    let mut expected = vec![
        ("boxoffice.booking.confirmed".to_string(), kept_id.clone()),
        (
            "boxoffice.booking.confirmed".to_string(),
            cancelled_id.clone(),
        ),
        (
            "boxoffice.booking.cancelled".to_string(),
            cancelled_id.clone(),
        ),
        (
            "boxoffice.payment.refunded".to_string(),
            cancelled_id.clone(),
        ),
    ];
    expected.sort();
    assert_eq!(seen, expected, "one message per event: {events:#?}");
    for event in &events {
        assert!(event.event_id().starts_with("dom_"), "{event:?}");
        assert_eq!(
            event.message_id,
            event.event_id(),
            "Nats-Msg-Id is the event ID"
        );
        assert_eq!(
            event.subject,
            format!("boxoffice.{}", event.event_type()),
            "{event:?}"
        );
        assert_eq!(event.payload["show_id"], fixture.show_id.as_str());
        assert_eq!(event.payload["user_id"], user.id.as_str());
        assert!(event.payload["hold_id"].is_string(), "{event:?}");
        assert!(event.payload["occurred_at"].is_string(), "{event:?}");
    }
    let tickets = |booking_id: &str| {
        events
            .iter()
            .find(|e| e.event_type() == "booking.confirmed" && e.booking_id() == booking_id)
            .map(|e| e.payload["tickets"].clone())
    };
    assert_eq!(tickets(&kept_id), Some(json!(2)));
    assert_eq!(tickets(&cancelled_id), Some(json!(1)));
    let distinct: BTreeSet<&str> = events.iter().map(Event::event_id).collect();
    assert_eq!(distinct.len(), events.len(), "distinct event IDs");
    nats.stop().await;
}

/// Bookings made while NATS is down: their events wait in the outbox and
/// all arrive, once each, when it is back (same port, same store).
async fn a_nats_outage_loses_and_duplicates_nothing(backend: Backend) {
    const BOOKINGS: usize = 100;
    const USERS: usize = 25;
    let mut nats = NatsServer::new();
    nats.start().await;
    let app = spawn_app(backend, &nats).await;
    // 10 rows for the outage's bookings, the 11th for the first one.
    let fixture = app.fixture(11, 10, None, json!({})).await;

    // A first booking proves the server connected and made the stream.
    let first_user = app.register_user().await;
    let first = app.buy(&first_user, &fixture.show_id, &["A-11-1"]).await;
    let first_id = id_of(&first, &first);
    nats.wait_for("the first booking", |events| {
        events.iter().any(|e| e.booking_id() == first_id)
    })
    .await;

    nats.stop().await;
    let users = app.register_users(USERS).await;
    let bookings = app
        .buy_concurrently(&users, &fixture.show_id, BOOKINGS / USERS)
        .await;
    let booked: BTreeSet<String> = bookings.into_iter().flatten().collect();
    assert_eq!(booked.len(), BOOKINGS);

    nats.start().await;
    let confirmations = |events: &[Event]| -> BTreeMap<String, usize> {
        let mut by_event_id = BTreeMap::new();
        for event in events {
            if event.event_type() == "booking.confirmed" && booked.contains(event.booking_id()) {
                *by_event_id.entry(event.event_id().to_string()).or_insert(0) += 1;
            }
        }
        by_event_id
    };
    nats.wait_for("every confirmation of the outage", |events| {
        confirmations(events).len() >= BOOKINGS
    })
    .await;
    // Long enough for a duplicate to show up if one were on its way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = nats.events().await;
    let by_event_id = confirmations(&events);
    assert_eq!(by_event_id.len(), BOOKINGS, "distinct event IDs");
    assert_eq!(
        by_event_id.values().sum::<usize>(),
        BOOKINGS,
        "no event twice in the stream"
    );
    let booking_ids: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.event_type() == "booking.confirmed" && booked.contains(e.booking_id()))
        .map(Event::booking_id)
        .collect();
    assert_eq!(booking_ids.len(), BOOKINGS, "one confirmation per booking");
    nats.stop().await;
}
