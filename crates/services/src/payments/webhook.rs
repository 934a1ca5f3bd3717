//! Incoming webhooks of the `stripe` gateway: the `Stripe-Signature` check
//! (exactly Stripe's scheme) and the fields of an event we read.
//!
//! Stripe signs `"{t}.{raw body}"` with HMAC-SHA256 under the endpoint's
//! signing secret and sends `Stripe-Signature: t={unix seconds},v1={hex}`
//! (several `v1` entries while a secret is rolled). An event is accepted when
//! any `v1` entry matches (compared in constant time) and `t` is within
//! [`SIGNATURE_TOLERANCE`] of now (against replays of a captured request).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Stripe's own default tolerance for the signature's timestamp.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);
/// `v1` entries looked at in one header (Stripe sends one, two while a
/// secret is rolled); more is not a Stripe header.
const SIGNATURES_PER_HEADER_MAX: usize = 8;
/// Longest event ID kept (Stripe's are about 30 characters).
pub const EVENT_ID_LENGTH_MAX: usize = 255;

/// Why a webhook's signature was refused (all answered alike: 400
/// `invalid_signature`; the reason goes to the log only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    OutsideTolerance,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` (the `Stripe-Signature` value) for `payload` (the raw
/// body) at `now_unix_seconds`.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now_unix_seconds: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for entry in header.split(',') {
        let Some((name, value)) = entry.trim().split_once('=') else {
            continue;
        };
        match name {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "v1" if signatures.len() < SIGNATURES_PER_HEADER_MAX => {
                // A `v1` that is not hex can never match: skip it.
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let tolerance_seconds = i64::try_from(SIGNATURE_TOLERANCE.as_secs()).unwrap_or(i64::MAX);
    if now_unix_seconds.saturating_sub(timestamp).abs() > tolerance_seconds {
        return Err(SignatureError::OutsideTolerance);
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return Err(SignatureError::Mismatch);
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    // `verify_slice` compares in constant time.
    if signatures
        .iter()
        .any(|signature| mac.clone().verify_slice(signature).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The fields of a Stripe event we read.
#[derive(Debug, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: StripeEventData,
}

#[derive(Debug, Deserialize)]
pub struct StripeEventData {
    pub object: serde_json::Value,
}

/// The fields of a `payment_intent` object we read.
#[derive(Debug, Deserialize)]
pub struct PaymentIntentObject {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
}

pub const EVENT_PAYMENT_INTENT_SUCCEEDED: &str = "payment_intent.succeeded";

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, timestamp: i64, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(format!("{timestamp}.{payload}").as_bytes());
        format!(
            "t={timestamp},v1={}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_correct_signature_is_accepted() {
        let header = sign("whsec_a", NOW, "{}");
        assert_eq!(
            verify_signature("whsec_a", Some(&header), b"{}", NOW),
            Ok(())
        );
        // Any v1 entry may match (a rolled secret).
        let rolled = format!("{header},v1={}", "00".repeat(32));
        assert_eq!(
            verify_signature("whsec_a", Some(&rolled), b"{}", NOW),
            Ok(())
        );
    }

    #[test]
    fn wrong_secret_body_or_shape_is_refused() {
        let header = sign("whsec_a", NOW, "{}");
        let verify = |secret: &str, header: Option<&str>, body: &[u8]| {
            verify_signature(secret, header, body, NOW)
        };
        assert_eq!(
            verify("whsec_b", Some(&header), b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_a", Some(&header), b"{ }"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify("whsec_a", None, b"{}"), Err(SignatureError::Missing));
        assert_eq!(
            verify("whsec_a", Some("v1=00"), b"{}"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("whsec_a", Some("t=1"), b"{}"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("whsec_a", Some("t=x,v1=00"), b"{}"),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn the_timestamp_must_be_within_the_tolerance() {
        let limit = SIGNATURE_TOLERANCE.as_secs() as i64;
        let at_limit = sign("s", NOW - limit, "{}");
        assert_eq!(verify_signature("s", Some(&at_limit), b"{}", NOW), Ok(()));
        let past_limit = sign("s", NOW - limit - 1, "{}");
        assert_eq!(
            verify_signature("s", Some(&past_limit), b"{}", NOW),
            Err(SignatureError::OutsideTolerance)
        );
    }
}
