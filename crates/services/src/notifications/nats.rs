//! Domain events to NATS JetStream (ADR 0019): each `events`-channel outbox
//! row becomes one message on `{prefix}.{event type}` in a durable stream.
//!
//! Delivery stays at least once (the outbox may send a row again after a
//! crash or a lost ack); JetStream drops the repeat because every message
//! carries `Nats-Msg-Id: {event_id}` and the stream keeps a duplicate window
//! longer than the dispatcher's first retries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::Context;
use boxoffice_store::OutboxMessage;
use tokio::sync::OnceCell;

/// How long a publish waits for JetStream's ack (and a stream request for
/// its answer) before the dispatcher counts it as failed and retries later.
const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// JetStream remembers message IDs this long: a repeat within it is dropped.
/// Ten minutes cover the dispatcher's first nine retries (1 + 2 + … + 256 s)
/// after a publish whose ack was lost; DESIGN asks for at least two minutes.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// The longest pause between two reconnect attempts: events wait in the
/// outbox meanwhile, so a NATS server that is back should be used soon.
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(2);
/// Shown to the NATS server as the client's name (in its monitoring pages).
const CLIENT_NAME: &str = "boxoffice";

/// Where domain events go. Its `Debug` output hides the URL's password.
#[derive(Clone)]
pub struct NatsConfig {
    /// `nats://[user:password@]host[:port]`.
    pub url: String,
    /// The JetStream stream that holds the events.
    pub stream: String,
    /// Subjects are `{subject_prefix}.{event type}`.
    pub subject_prefix: String,
}

impl NatsConfig {
    /// The URL with its password hidden, for logs.
    pub fn describe(&self) -> String {
        let url = match self.url.split_once('@') {
            Some((credentials, host)) => match credentials.split_once("://") {
                Some((scheme, _)) => format!("{scheme}://[credentials]@{host}"),
                None => format!("[credentials]@{host}"),
            },
            None => self.url.clone(),
        };
        format!(
            "NATS {url}, stream {}, subjects {}.>",
            self.stream, self.subject_prefix
        )
    }
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Why a publish failed; every kind is worth retrying (the server may come
/// back, the stream may be created), so the dispatcher treats all as transient.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("NATS_URL cannot be used: {0}")]
    Connect(String),
    #[error("not connected to NATS")]
    NotConnected,
    #[error("JetStream stream {stream}: {error}")]
    Stream { stream: String, error: String },
    #[error("publish to {subject}: {error}")]
    Publish { subject: String, error: String },
    #[error("the event has no JSON body: {0}")]
    Payload(String),
}

/// What JetStream did with a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Stored as a new message.
    Stored,
    /// Dropped: a message with this ID is already in the stream.
    Duplicate,
}

/// Publishes domain events; connects on first use, and async-nats
/// reconnects by itself after that.
pub struct EventPublisher {
    config: NatsConfig,
    jetstream: OnceCell<Context>,
    /// Set once the stream was created or updated; cleared after a failed
    /// publish so that a server that lost its stream gets it back.
    stream_ready: AtomicBool,
}

impl EventPublisher {
    pub fn new(config: NatsConfig) -> EventPublisher {
        EventPublisher {
            config,
            jetstream: OnceCell::new(),
            stream_ready: AtomicBool::new(false),
        }
    }

    pub fn describe(&self) -> String {
        self.config.describe()
    }

    /// Checks the URL (or comma-separated URLs) without connecting, so that a
    /// bad `NATS_URL` is reported at start rather than at the first event.
    pub fn check_url(&self) -> Result<(), PublishError> {
        for address in self.config.url.split(',') {
            address
                .trim()
                .parse::<async_nats::ServerAddr>()
                .map_err(|error| PublishError::Connect(format!("{}: {error}", self.describe())))?;
        }
        Ok(())
    }

    /// The subject of an event type: `boxoffice.booking.confirmed`.
    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.{event_type}", self.config.subject_prefix)
    }

    /// Publishes one `events`-channel outbox row and waits for JetStream's ack.
    pub async fn publish(&self, message: &OutboxMessage) -> Result<Published, PublishError> {
        let outcome = self.publish_once(message).await;
        let label = match &outcome {
            Ok(Published::Stored) => "stored",
            Ok(Published::Duplicate) => "duplicate",
            Err(PublishError::NotConnected) => "not_connected",
            Err(_) => "failed",
        };
        metrics::counter!("boxoffice_nats_publish_total", "outcome" => label).increment(1);
        if outcome.is_err() {
            self.stream_ready.store(false, Ordering::Release);
        }
        outcome
    }

    async fn publish_once(&self, message: &OutboxMessage) -> Result<Published, PublishError> {
        let jetstream = self.jetstream().await?;
        // While disconnected, async-nats would buffer the publish and we would
        // wait out the ack timeout: fail fast and let the outbox keep it.
        if jetstream.client().connection_state() != State::Connected {
            return Err(PublishError::NotConnected);
        }
        self.ensure_stream(jetstream).await?;
        let body = serde_json::to_vec(&message.payload)
            .map_err(|error| PublishError::Payload(error.to_string()))?;
        let subject = self.subject(&message.event_type);
        let publish_error = |error: String| PublishError::Publish {
            subject: subject.clone(),
            error,
        };
        let ack = jetstream
            .send_publish(
                subject.clone(),
                PublishMessage::build()
                    .payload(body.into())
                    .message_id(message.event_id.as_str()),
            )
            .await
            .map_err(|error| publish_error(error.to_string()))?
            .await
            .map_err(|error| publish_error(error.to_string()))?;
        Ok(if ack.duplicate {
            Published::Duplicate
        } else {
            Published::Stored
        })
    }

    async fn jetstream(&self) -> Result<&Context, PublishError> {
        self.jetstream
            .get_or_try_init(|| async {
                // Connects in the background: a server that is down now is
                // used as soon as it answers; only a malformed URL fails here.
                let client = async_nats::ConnectOptions::new()
                    .name(CLIENT_NAME)
                    .retry_on_initial_connect()
                    .reconnect_delay_callback(reconnect_delay)
                    .connect(self.config.url.as_str())
                    .await
                    .map_err(|error| {
                        tracing::error!(nats = %self.describe(), %error, "NATS_URL cannot be used; domain events wait in the outbox");
                        PublishError::Connect(error.to_string())
                    })?;
                let mut jetstream = async_nats::jetstream::new(client);
                jetstream.set_timeout(PUBLISH_ACK_TIMEOUT);
                Ok(jetstream)
            })
            .await
    }

    /// Creates the stream, or brings its settings to ours; idempotent.
    async fn ensure_stream(&self, jetstream: &Context) -> Result<(), PublishError> {
        if self.stream_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        jetstream
            .create_or_update_stream(self.stream_config())
            .await
            .map_err(|error| {
                tracing::warn!(stream = %self.config.stream, %error, "cannot create or update the JetStream stream");
                PublishError::Stream {
                    stream: self.config.stream.clone(),
                    error: error.to_string(),
                }
            })?;
        self.stream_ready.store(true, Ordering::Release);
        Ok(())
    }

    fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            name: self.config.stream.clone(),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            storage: StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        }
    }
}

/// Reconnect quickly at first, then every [`RECONNECT_DELAY_MAX`].
fn reconnect_delay(attempts: usize) -> Duration {
    let exponent = u32::try_from(attempts.min(8)).unwrap_or(8);
    Duration::from_millis(50u64 << exponent).min(RECONNECT_DELAY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reconnect_delay_grows_and_stops_at_its_maximum() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(50));
        assert_eq!(reconnect_delay(1), Duration::from_millis(100));
        assert_eq!(reconnect_delay(1_000), RECONNECT_DELAY_MAX);
    }

    /// A `nats-server -js` process of the test's own on a free port, killed
    /// (and its store removed) on drop.
    struct TestNatsServer {
        child: std::process::Child,
        port: u16,
        store_dir: std::path::PathBuf,
    }

    const NATS_SERVER: &str = "/usr/sbin/nats-server";
    /// How long a fresh server gets to accept connections.
    const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);

    impl TestNatsServer {
        async fn start() -> TestNatsServer {
            assert!(
                std::path::Path::new(NATS_SERVER).exists(),
                "{NATS_SERVER} is missing: the NATS tests need it (apt-get install nats-server)"
            );
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let store_dir = std::env::temp_dir().join(format!(
                "bx_nats_unit_{}_{}",
                std::process::id(),
                rand::random::<u64>()
            ));
            let child = std::process::Command::new(NATS_SERVER)
                .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                .arg(&store_dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start nats-server");
            let started = std::time::Instant::now();
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                assert!(
                    started.elapsed() < SERVER_START_TIMEOUT,
                    "nats-server does not answer on port {port}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            TestNatsServer {
                child,
                port,
                store_dir,
            }
        }
    }

    impl Drop for TestNatsServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.store_dir);
        }
    }

    fn event(event_id: &str) -> OutboxMessage {
        OutboxMessage {
            id: "obx_test".into(),
            event_id: event_id.into(),
            event_type: "booking.confirmed".into(),
            channel: "events".into(),
            payload: serde_json::json!({"event_id": event_id, "type": "booking.confirmed"}),
            created_at: chrono::Utc::now(),
            attempts: 1,
            delivered_at: None,
        }
    }

    #[tokio::test]
    async fn the_same_event_published_twice_is_stored_once() {
        let server = TestNatsServer::start().await;
        let publisher = EventPublisher::new(NatsConfig {
            url: format!("nats://127.0.0.1:{}", server.port),
            stream: "BOXOFFICE_UNIT".into(),
            subject_prefix: "unit".into(),
        });
        // The background connection may need a moment.
        let started = std::time::Instant::now();
        let first = loop {
            match publisher.publish(&event("dom_first")).await {
                Ok(outcome) => break outcome,
                Err(PublishError::NotConnected) if started.elapsed() < SERVER_START_TIMEOUT => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("publish: {error}"),
            }
        };
        assert_eq!(first, Published::Stored);
        let again = publisher
            .publish(&event("dom_first"))
            .await
            .expect("publish again");
        assert_eq!(again, Published::Duplicate);
        let other = publisher
            .publish(&event("dom_other"))
            .await
            .expect("publish another");
        assert_eq!(other, Published::Stored);

        let jetstream = publisher.jetstream().await.expect("connected");
        let mut stream = jetstream
            .get_stream("BOXOFFICE_UNIT")
            .await
            .expect("the stream");
        let info = stream.info().await.expect("stream info");
        assert_eq!(info.state.messages, 2, "one message per event ID");
        assert_eq!(info.config.subjects, vec!["unit.>".to_string()]);
        assert_eq!(info.config.storage, StorageType::File);
        assert!(info.config.duplicate_window >= Duration::from_secs(120));
    }

    #[test]
    fn a_bad_url_is_found_without_connecting() {
        let publisher = |url: &str| {
            EventPublisher::new(NatsConfig {
                url: url.into(),
                stream: "BOXOFFICE".into(),
                subject_prefix: "boxoffice".into(),
            })
        };
        assert!(publisher("nats://127.0.0.1:4222").check_url().is_ok());
        assert!(publisher("nats://a:4222,nats://b:4223").check_url().is_ok());
        assert!(publisher("nats://127.0.0.1:notaport").check_url().is_err());
        assert!(publisher("http://127.0.0.1:4222").check_url().is_err());
    }

    #[test]
    fn the_description_hides_credentials() {
        let config = NatsConfig {
            url: "nats://user:secret@127.0.0.1:4222".into(),
            stream: "BOXOFFICE".into(),
            subject_prefix: "boxoffice".into(),
        };
        let described = config.describe();
        assert!(!described.contains("secret"), "{described}");
        assert!(described.contains("127.0.0.1:4222"), "{described}");
    }
}
