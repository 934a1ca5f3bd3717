//! Outgoing webhooks: the sender that POSTs due deliveries to their
//! subscriptions' URLs, signed, and retries failures with backoff until the
//! retry window is over (ADR 0021).
//!
//! The `webhooks` outbox channel only fans an event out into delivery rows
//! (one per matching subscription, see the dispatcher); this loop works on
//! those rows, so a slow or dead receiver never holds up e-mails or other
//! subscriptions. At least once: receivers deduplicate by `Boxoffice-Event-Id`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice_store::{
    DueWebhookDelivery, Store, StoreError, WebhookAttemptOutcome, WebhookAttemptRecord,
};
use chrono::Utc;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;

use super::backoff;

/// Kept of a receiver's answer for the delivery log.
const RESPONSE_BODY_LOGGED_BYTES_MAX: usize = 1024;
/// Deliveries sent at once: each is one connection to some receiver.
const SEND_CONCURRENCY: usize = 8;
/// How often the pending gauge is refreshed.
const PENDING_REPORT_EVERY: Duration = Duration::from_secs(5);
/// The lease on a claimed delivery beyond the request timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(60);
/// Fields of the outbox payload that become the envelope's own.
const ENVELOPE_FIELDS: [&str; 3] = ["event_id", "type", "occurred_at"];

pub const USER_AGENT: &str = "boxoffice-webhooks/1";

#[derive(Debug, Clone)]
pub struct WebhookSenderConfig {
    /// A receiver that has not answered by then failed this attempt.
    pub timeout: Duration,
    /// The first retry waits this long; each next one twice as long…
    pub backoff_initial: Duration,
    /// … up to this.
    pub backoff_max: Duration,
    /// Then the delivery is FAILED (counted from the event).
    pub retry_window: Duration,
    /// How often to look for due deliveries when idle.
    pub poll_interval: Duration,
    /// Deliveries claimed per batch.
    pub batch_size: u32,
}

impl Default for WebhookSenderConfig {
    fn default() -> Self {
        WebhookSenderConfig {
            timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(3600),
            retry_window: Duration::from_secs(3 * 24 * 3600),
            poll_interval: Duration::from_millis(250),
            batch_size: 50,
        }
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: Stripe's
/// scheme, so receivers can reuse a Stripe verifier.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return format!("t={timestamp}"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The JSON body of a delivery: `{id, type, created_at, data}`.
pub fn envelope(delivery: &boxoffice_store::WebhookDeliveryRecord) -> Vec<u8> {
    let mut data = delivery.payload.clone();
    let created_at = data
        .get("occurred_at")
        .cloned()
        .unwrap_or_else(|| crate::views::rfc3339(delivery.created_at).into());
    if let Some(object) = data.as_object_mut() {
        for field in ENVELOPE_FIELDS {
            object.remove(field);
        }
    }
    serde_json::json!({
        "id": delivery.event_id,
        "type": delivery.event_type,
        "created_at": created_at,
        "data": data,
    })
    .to_string()
    .into_bytes()
}

/// What one POST came to.
struct Attempt {
    status_code: Option<u16>,
    error: Option<String>,
    response_body: Option<String>,
}

pub struct WebhookSender {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    config: WebhookSenderConfig,
}

impl WebhookSender {
    pub fn new(store: Arc<dyn Store>, config: WebhookSenderConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            // A redirect would send the signed event somewhere the admin
            // did not subscribe: it counts as a failed attempt instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|error| format!("webhook client: {error}"))?;
        Ok(WebhookSender {
            store,
            client,
            config,
        })
    }

    /// Sends until `shutdown` flips.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let pacing = super::worker::Pacing {
            name: "webhooks",
            batch_size: self.config.batch_size,
            poll_interval: self.config.poll_interval,
            report_every: PENDING_REPORT_EVERY,
        };
        super::worker::run_until_shutdown(
            pacing,
            shutdown,
            || self.send_batch(),
            || self.report_pending(),
        )
        .await;
    }

    async fn report_pending(&self) {
        match self.store.webhook_pending_count().await {
            Ok(pending) => metrics::gauge!("boxoffice_webhook_pending").set(pending as f64),
            Err(error) => tracing::debug!(%error, "webhooks: pending count not read"),
        }
    }

    /// Claims one batch and sends it; returns how many were claimed.
    pub async fn send_batch(&self) -> Result<usize, StoreError> {
        let now = Utc::now();
        let lease =
            chrono::Duration::from_std(self.config.timeout + LEASE_MARGIN).unwrap_or_default();
        let batch = self
            .store
            .claim_webhook_deliveries(now, now + lease, self.config.batch_size)
            .await?;
        let claimed = batch.len();
        futures::stream::iter(batch)
            .map(|due| async move { self.send(&due).await })
            .buffer_unordered(SEND_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
        Ok(claimed)
    }

    async fn send(&self, due: &DueWebhookDelivery) {
        let delivery = &due.delivery;
        let at = Utc::now();
        let started = Instant::now();
        let attempt = self.post(due).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let delivered = attempt
            .status_code
            .is_some_and(|code| (200..300).contains(&code));
        let now = Utc::now();
        let outcome = if delivered {
            WebhookAttemptOutcome::Delivered
        } else {
            let age = (now - delivery.created_at).to_std().unwrap_or_default();
            if age >= self.config.retry_window {
                WebhookAttemptOutcome::Failed
            } else {
                let wait = backoff(
                    delivery.attempts,
                    self.config.backoff_initial,
                    self.config.backoff_max,
                );
                WebhookAttemptOutcome::RetryAt(
                    now + chrono::Duration::from_std(wait).unwrap_or_default(),
                )
            }
        };
        let label = match outcome {
            WebhookAttemptOutcome::Delivered => "delivered",
            WebhookAttemptOutcome::RetryAt(_) => "retry",
            WebhookAttemptOutcome::Failed => "failed",
        };
        metrics::counter!("boxoffice_webhook_deliveries_total", "outcome" => label).increment(1);
        if !delivered {
            tracing::warn!(delivery_id = %delivery.id, attempts = delivery.attempts, status = ?attempt.status_code, error = ?attempt.error, outcome = label, "webhooks: delivery failed");
        }
        let record = WebhookAttemptRecord {
            attempt: delivery.attempts,
            at,
            status_code: attempt.status_code,
            duration_ms,
            error: attempt.error,
            response_body: attempt.response_body,
        };
        if let Err(error) = self
            .store
            .finish_webhook_attempt(&delivery.id, &record, outcome)
            .await
        {
            // The lease runs out and it is sent again: at least once.
            tracing::warn!(delivery_id = %delivery.id, %error, "webhooks: could not record the attempt");
        }
    }

    async fn post(&self, due: &DueWebhookDelivery) -> Attempt {
        let delivery = &due.delivery;
        let body = envelope(delivery);
        let signature = signature_header(&due.secret, Utc::now().timestamp(), &body);
        let sent = self
            .client
            .post(&due.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Boxoffice-Event-Id", delivery.event_id.as_str())
            .header("Boxoffice-Event-Type", delivery.event_type.as_str())
            .header("Boxoffice-Delivery-Id", delivery.id.as_str())
            .header("Boxoffice-Signature", signature)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                return Attempt {
                    status_code: None,
                    error: Some(describe(&error)),
                    response_body: None,
                }
            }
        };
        let status = response.status();
        let mut kept = Vec::new();
        let mut read_error = None;
        while kept.len() < RESPONSE_BODY_LOGGED_BYTES_MAX {
            match response.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => {
                    read_error = Some(describe(&error));
                    break;
                }
            }
        }
        kept.truncate(RESPONSE_BODY_LOGGED_BYTES_MAX);
        let error = if status.is_success() {
            None
        } else {
            Some(read_error.unwrap_or_else(|| format!("HTTP {}", status.as_u16())))
        };
        Attempt {
            status_code: Some(status.as_u16()),
            error,
            response_body: (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned()),
        }
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        format!("connection failed: {error}")
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::webhook::{verify_signature, SignatureError};
    use proptest::prelude::*;

    const SECRET: &str = "whsec_0123456789abcdef";

    #[test]
    fn a_signature_verifies_with_its_secret_body_and_time_only() {
        let body = br#"{"id":"dom_1","type":"booking.confirmed"}"#;
        let header = signature_header(SECRET, 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="), "{header}");
        assert_eq!(
            verify_signature(SECRET, Some(&header), body, 1_700_000_000),
            Ok(())
        );
        assert_eq!(
            verify_signature("whsec_other", Some(&header), body, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, Some(&header), b"{\"id\":\"dom_2\"}", 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            verify_signature(SECRET, Some(&moved), body, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
    }

    proptest! {
        #[test]
        fn any_body_round_trips_and_any_change_breaks_it(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            flip in any::<prop::sample::Index>(),
            t in 1_000_000_000i64..4_000_000_000,
        ) {
            let header = signature_header(SECRET, t, &body);
            prop_assert_eq!(verify_signature(SECRET, Some(&header), &body, t), Ok(()));
            let mut changed = body.clone();
            if changed.is_empty() {
                changed.push(0);
            } else {
                let at = flip.index(changed.len());
                changed[at] ^= 0x01;
            }
            prop_assert_eq!(
                verify_signature(SECRET, Some(&header), &changed, t),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn the_envelope_lifts_the_event_fields_out_of_the_data() {
        let delivery = boxoffice_store::WebhookDeliveryRecord {
            id: boxoffice_domain::WebhookDeliveryId::generate(1, 2),
            subscription_id: boxoffice_domain::WebhookSubscriptionId::generate(1, 3),
            event_id: "dom_x".into(),
            event_type: "booking.confirmed".into(),
            payload: serde_json::json!({"event_id": "dom_x", "type": "booking.confirmed",
                "occurred_at": "2026-01-01T00:00:00.000Z", "booking_id": "bkg_1"}),
            created_at: Utc::now(),
            attempts: 1,
            next_attempt_at: Utc::now(),
            delivered_at: None,
            failed_at: None,
            last_status_code: None,
            last_error: None,
        };
        let body: serde_json::Value = serde_json::from_slice(&envelope(&delivery)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"id": "dom_x", "type": "booking.confirmed",
                "created_at": "2026-01-01T00:00:00.000Z", "data": {"booking_id": "bkg_1"}})
        );
    }
}
