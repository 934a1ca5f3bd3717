//! Webhook signatures as Stripe makes them, for the webhook work to come.
//!
//! Stripe sends `Stripe-Signature: t={unix seconds},v1={hex HMAC-SHA256 of
//! "{t}.{body}" under the endpoint's signing secret}`. What is still to do
//! (not part of the gateway adapter): a `FakeStripe::send_webhook(url,
//! event)` that POSTs an event (`payment_intent.succeeded`,
//! `charge.refunded`) with this header, and faults for it (duplicates, out of
//! order, a bad signature, an old timestamp).

use hmac::{Hmac, Mac};
use sha2::Sha256;

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
}
