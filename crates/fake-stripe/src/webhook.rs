//! Webhooks as Stripe sends them: signed events (`Stripe-Signature`) POSTed
//! to the endpoint a test configures, after a capture (at once, late,
//! twice, before the API answers, or never) or on demand (also badly signed).
//!
//! Stripe sends `Stripe-Signature: t={unix seconds},v1={hex HMAC-SHA256 of
//! "{t}.{body}" under the endpoint's signing secret}`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{lock, FakeState};

/// Random characters in an `evt_…` ID.
const EVENT_ID_RANDOM_CHARACTERS: usize = 24;
/// How long the fake waits for the endpoint to answer one delivery.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `Stripe-Signature` header value for `payload` sent at `timestamp`.
pub fn signature_header(secret: &str, timestamp: i64, payload: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// When the fake sends `payment_intent.succeeded` after capturing a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookMode {
    /// No webhook (the default; the fake's behaviour before webhooks).
    #[default]
    Never,
    /// Right after the capture, while the API answer goes out.
    Immediately,
    /// This long after the capture.
    After(Duration),
    /// The same event twice, one delivery after the other (Stripe's
    /// at-least-once delivery).
    Twice,
    /// Delivered, and its answer awaited, before the API answers the charge.
    BeforeResponse,
}

/// How an event sent on demand is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// With the endpoint's secret, now.
    Valid,
    /// With another secret.
    WrongSecret,
    /// With the right secret, but this long ago.
    Stale(Duration),
    /// No `Stripe-Signature` header at all.
    Missing,
}

/// One delivery and what the endpoint answered (`status` is `None` when
/// it could not be reached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub event_id: String,
    pub event_type: String,
    pub status: Option<u16>,
    pub body: String,
}

#[derive(Default)]
pub(crate) struct WebhookSettings {
    pub(crate) endpoint: Option<(String, String)>,
    pub(crate) mode: WebhookMode,
    pub(crate) deliveries: Vec<WebhookDelivery>,
}

fn unix_seconds_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A new event of `event_type` about `object`, as Stripe shapes it.
pub fn event(event_type: &str, object: Value) -> Value {
    use rand::distributions::{Alphanumeric, DistString};
    let random = Alphanumeric.sample_string(&mut rand::thread_rng(), EVENT_ID_RANDOM_CHARACTERS);
    json!({
        "id": format!("evt_{random}"),
        "object": "event",
        "type": event_type,
        "created": unix_seconds_now(),
        "livemode": false,
        "data": {"object": object},
    })
}

/// POSTs `event` to the configured endpoint and records the delivery.
pub(crate) async fn deliver(
    state: &Arc<FakeState>,
    event: &Value,
    signing: Signing,
) -> WebhookDelivery {
    let endpoint = lock(&state.webhooks).endpoint.clone();
    let event_id = event["id"].as_str().unwrap_or_default().to_string();
    let event_type = event["type"].as_str().unwrap_or_default().to_string();
    let Some((url, secret)) = endpoint else {
        return WebhookDelivery {
            event_id,
            event_type,
            status: None,
            body: "no webhook endpoint configured".into(),
        };
    };
    let payload = event.to_string();
    let now = unix_seconds_now();
    let header = match signing {
        Signing::Valid => Some(signature_header(&secret, now, &payload)),
        Signing::WrongSecret => Some(signature_header("whsec_not_the_secret", now, &payload)),
        Signing::Stale(age) => Some(signature_header(
            &secret,
            now - i64::try_from(age.as_secs()).unwrap_or(i64::MAX / 2),
            &payload,
        )),
        Signing::Missing => None,
    };
    let mut request = state
        .client
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .timeout(DELIVERY_TIMEOUT)
        .body(payload);
    if let Some(header) = header {
        request = request.header("stripe-signature", header);
    }
    let (status, body) = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (Some(status), response.text().await.unwrap_or_default())
        }
        Err(error) => (None, error.to_string()),
    };
    let delivery = WebhookDelivery {
        event_id,
        event_type,
        status,
        body,
    };
    lock(&state.webhooks).deliveries.push(delivery.clone());
    delivery
}

/// Sends `payment_intent.succeeded` for a freshly captured `intent` as the
/// configured mode says; returns once the API may answer.
pub(crate) async fn after_capture(state: &Arc<FakeState>, intent: Value) {
    let mode = lock(&state.webhooks).mode;
    let event = event("payment_intent.succeeded", intent);
    match mode {
        WebhookMode::Never => {}
        WebhookMode::BeforeResponse => {
            deliver(state, &event, Signing::Valid).await;
        }
        WebhookMode::Immediately => {
            let state = state.clone();
            tokio::spawn(async move { deliver(&state, &event, Signing::Valid).await });
        }
        WebhookMode::After(delay) => {
            let state = state.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                deliver(&state, &event, Signing::Valid).await
            });
        }
        WebhookMode::Twice => {
            let state = state.clone();
            tokio::spawn(async move {
                deliver(&state, &event, Signing::Valid).await;
                deliver(&state, &event, Signing::Valid).await
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_has_stripes_shape_and_depends_on_the_secret() {
        let header = signature_header("whsec_test", 1_700_000_000, "{}");
        assert!(header.starts_with("t=1700000000,v1="), "{header}");
        assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(header, signature_header("whsec_other", 1_700_000_000, "{}"));
    }

    #[test]
    fn events_have_stripes_shape() {
        let event = event("payment_intent.succeeded", json!({"id": "pi_1"}));
        assert!(event["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("evt_")));
        assert_eq!(event["data"]["object"]["id"], "pi_1");
    }
}
