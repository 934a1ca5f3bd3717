//! The `stripe` gateway: Stripe's HTTP API (payment intents, search, refunds)
//! spoken with `reqwest`. It makes one HTTP request per call and never
//! retries or times out by itself: [`super::GuardedGateway`] does that for
//! every gateway alike.
//!
//! Every charge carries the hold's idempotency key twice: as the
//! `Idempotency-Key` header (Stripe replays the stored answer of a repeated
//! request, so a retry never charges twice) and as `metadata[idempotency_key]`
//! (so that [`StripeGateway::lookup`] can find the payment intent when the
//! answer to the charge was lost).

use std::fmt;

use async_trait::async_trait;
use boxoffice_domain::{Currency, Money};
use reqwest::StatusCode;
use serde::Deserialize;

use super::{ChargeOutcome, ChargeRequest, GatewayCharge, GatewayError, PaymentGateway};

pub const API_BASE_DEFAULT: &str = "https://api.stripe.com";
/// Stripe's search answers at most 100 results a page; one hold has one
/// payment intent, so a handful is plenty (more would be a bug of ours).
const SEARCH_LIMIT: &str = "10";
/// Bytes of an unexpected answer kept in the error message (for the log).
const ERROR_BODY_SHOWN_BYTES_MAX: usize = 300;

/// Where Stripe is and the key to talk to it. `Debug` never shows the key.
#[derive(Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a fake Stripe in tests.
    pub api_base: String,
    pub secret_key: String,
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("secret_key", &"[redacted]")
            .finish()
    }
}

pub struct StripeGateway {
    client: reqwest::Client,
    api_base: String,
    secret_key: String,
}

/// An adapter's API base must be an absolute `http://` or `https://` URL
/// (plain `http://` is for fakes in tests and egress proxies).
pub fn check_api_base(setting: &str, base: &str) -> Result<(), String> {
    match url::Url::parse(base) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(()),
        _ => Err(format!(
            "{setting} {base:?} is not an http:// or https:// URL"
        )),
    }
}

impl StripeGateway {
    /// Fails when the API base is not an `http(s)://` URL or the key is
    /// empty. `https://` is checked against the system's CA store (rustls).
    pub fn new(config: StripeConfig) -> Result<StripeGateway, String> {
        let api_base = config.api_base.trim_end_matches('/').to_string();
        check_api_base("BOXOFFICE_STRIPE_API_BASE", &api_base)?;
        if config.secret_key.trim().is_empty() {
            return Err("the Stripe secret key is empty".into());
        }
        let client = reqwest::Client::builder()
            .build()
            .map_err(|error| format!("cannot build the Stripe HTTP client: {error}"))?;
        Ok(StripeGateway {
            client,
            api_base,
            secret_key: config.secret_key,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_base)
    }

    async fn find_intent(&self, idempotency_key: &str) -> Result<Option<Intent>, GatewayError> {
        let query = format!(
            "metadata['idempotency_key']:'{}'",
            search_quoted(idempotency_key)
        );
        let response = self
            .client
            .get(self.url("/v1/payment_intents/search"))
            .bearer_auth(&self.secret_key)
            .query(&[
                ("query", query.as_str()),
                ("limit", SEARCH_LIMIT),
                ("expand[]", "data.latest_charge"),
            ])
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if status != StatusCode::OK {
            return Err(unexpected_answer("payment intent search", status, &body));
        }
        let found: SearchResult = parse(&body)?;
        // A hold has one payment intent; should Stripe know several (a key
        // reused after Stripe forgot it), the captured one is the truth.
        Ok(found
            .data
            .into_iter()
            .find(|intent| intent.status == "succeeded"))
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        let form = [
            ("amount", request.amount.amount.to_string()),
            (
                "currency",
                request.amount.currency.as_str().to_ascii_lowercase(),
            ),
            ("confirm", "true".to_string()),
            ("payment_method_data[type]", "card".to_string()),
            (
                "payment_method_data[card][token]",
                request.payment_token.clone(),
            ),
            ("metadata[hold_id]", request.hold_id.to_string()),
            ("metadata[idempotency_key]", request.idempotency_key.clone()),
        ];
        let response = self
            .client
            .post(self.url("/v1/payment_intents"))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", &request.idempotency_key)
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        match status {
            StatusCode::OK => {
                let intent: Intent = parse(&body)?;
                Ok(outcome_of_intent(intent))
            }
            StatusCode::PAYMENT_REQUIRED => {
                let error: ErrorBody = parse(&body)?;
                match error.error.kind.as_str() {
                    "card_error" => Ok(ChargeOutcome::Declined {
                        reason: error
                            .error
                            .decline_code
                            .or(error.error.code)
                            .unwrap_or_else(|| "card_error".into()),
                    }),
                    _ => Err(unexpected_answer("payment intent", status, &body)),
                }
            }
            // Everything else (5xx, 429, 401 for a wrong key, 400 for a
            // reused key with another card) leaves the outcome open or the
            // gateway unusable: the caller looks the charge up, and the hold
            // stays payable.
            _ => Err(unexpected_answer("payment intent", status, &body)),
        }
    }

    async fn lookup(&self, idempotency_key: &str) -> Result<Option<GatewayCharge>, GatewayError> {
        let Some(intent) = self.find_intent(idempotency_key).await? else {
            return Ok(None);
        };
        let refunded = intent.is_refunded();
        let currency = Currency::parse(&intent.currency.to_ascii_uppercase())
            .map_err(|error| unavailable(format!("Stripe sent a bad currency: {error}")))?;
        let amount = Money::new(intent.amount, currency)
            .map_err(|error| unavailable(format!("Stripe sent a bad amount: {error}")))?;
        Ok(Some(GatewayCharge {
            reference: intent.id,
            amount,
            refunded,
        }))
    }

    async fn refund(&self, idempotency_key: &str) -> Result<(), GatewayError> {
        let Some(intent) = self.find_intent(idempotency_key).await? else {
            // Nothing was captured: nothing to give back.
            return Ok(());
        };
        if intent.is_refunded() {
            return Ok(());
        }
        let response = self
            .client
            .post(self.url("/v1/refunds"))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", format!("refund-{idempotency_key}"))
            .form(&[("payment_intent", intent.id.as_str())])
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if status == StatusCode::OK {
            return Ok(());
        }
        // Refunded meanwhile (by another node, or by hand in the dashboard).
        if status == StatusCode::BAD_REQUEST {
            if let Ok(error) = serde_json::from_slice::<ErrorBody>(&body) {
                if error.error.code.as_deref() == Some("charge_already_refunded") {
                    return Ok(());
                }
            }
        }
        Err(unexpected_answer("refund", status, &body))
    }
}

fn outcome_of_intent(intent: Intent) -> ChargeOutcome {
    match intent.status.as_str() {
        "succeeded" => ChargeOutcome::Captured {
            reference: intent.id,
        },
        // Not captured, and not going to be without the buyer (3-D Secure,
        // another card): for this API that is a declined payment.
        other => ChargeOutcome::Declined {
            reason: format!("payment intent {other}"),
        },
    }
}

/// A value inside single quotes of Stripe's search query language.
fn search_quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

fn unavailable(message: impl Into<String>) -> GatewayError {
    GatewayError::Unavailable(message.into())
}

/// Connection refused or reset, or the answer cut off: Stripe may or may not
/// have acted.
fn transport_error(error: reqwest::Error) -> GatewayError {
    // Without the URL: it is ours, and the error is about the connection.
    unavailable(format!("Stripe unreachable: {}", error.without_url()))
}

fn unexpected_answer(what: &str, status: StatusCode, body: &[u8]) -> GatewayError {
    let shown = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_SHOWN_BYTES_MAX)]);
    unavailable(format!(
        "Stripe answered {status} to a {what} request: {shown}"
    ))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(body)
        .map_err(|error| unavailable(format!("Stripe sent an answer we cannot read: {error}")))
}

/// The fields of a payment intent we use.
#[derive(Debug, Deserialize)]
struct Intent {
    id: String,
    amount: i64,
    currency: String,
    status: String,
    #[serde(default)]
    latest_charge: Option<LatestCharge>,
}

impl Intent {
    /// Any refund counts: this service only ever refunds in full, so money
    /// given back means the payment is not one to book.
    fn is_refunded(&self) -> bool {
        match &self.latest_charge {
            Some(LatestCharge::Expanded {
                refunded,
                amount_refunded,
            }) => *refunded || *amount_refunded > 0,
            _ => false,
        }
    }
}

/// `latest_charge` is an ID unless the request expanded it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LatestCharge {
    Expanded {
        #[serde(default)]
        refunded: bool,
        #[serde(default)]
        amount_refunded: i64,
    },
    #[allow(dead_code)] // Read only to accept the shape.
    Id(String),
}

#[derive(Debug, Deserialize)]
struct SearchResult {
    data: Vec<Intent>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct StripeError {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_values_are_quoted() {
        assert_eq!(search_quoted("charge-hld_1"), "charge-hld_1");
        assert_eq!(search_quoted(r"a'b\c"), r"a\'b\\c");
    }

    #[test]
    fn refunds_are_read_from_the_expanded_charge() {
        let intent: Intent = serde_json::from_str(
            r#"{"id":"pi_1","amount":2500,"currency":"eur","status":"succeeded",
                "latest_charge":{"id":"ch_1","refunded":false,"amount_refunded":2500}}"#,
        )
        .expect("parse");
        assert!(intent.is_refunded());
        let intent: Intent = serde_json::from_str(
            r#"{"id":"pi_1","amount":2500,"currency":"eur","status":"succeeded","latest_charge":"ch_1"}"#,
        )
        .expect("parse");
        assert!(!intent.is_refunded());
    }

    #[test]
    fn http_and_https_bases_and_a_key_are_accepted() {
        let config = |api_base: &str, secret_key: &str| StripeConfig {
            api_base: api_base.into(),
            secret_key: secret_key.into(),
        };
        assert!(StripeGateway::new(config("http://127.0.0.1:1/", "sk_test_1")).is_ok());
        assert!(StripeGateway::new(config(API_BASE_DEFAULT, "sk_test_1")).is_ok());
        assert!(StripeGateway::new(config("ftp://example.com", "sk_test_1")).is_err());
        assert!(StripeGateway::new(config("api.stripe.com", "sk_test_1")).is_err());
        assert!(StripeGateway::new(config("http://127.0.0.1:1", " ")).is_err());
        let debug = format!("{:?}", config("http://x", "sk_live_secret"));
        assert!(!debug.contains("sk_live_secret"), "{debug}");
    }
}
