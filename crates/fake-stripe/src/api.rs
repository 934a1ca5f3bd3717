//! The routes of the fake and the ledger behind them. Each request is
//! decided under one lock, so concurrent requests with the same
//! `Idempotency-Key` are served one after the other (Stripe answers the
//! second one 409 while the first runs; the replay we give is also correct).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::{lock, FakeState};

/// Where charges are made (`POST`).
pub(crate) const PAYMENT_INTENTS_PATH: &str = "/v1/payment_intents";
/// Tokens that Stripe's test mode declines.
const DECLINED_TOKENS: [&str; 2] = ["tok_chargeDeclined", "tok_declined"];
/// Random characters in a `pi_…`/`ch_…`/`re_…` ID.
const ID_RANDOM_CHARACTERS: usize = 24;

/// A captured payment: one per succeeded payment intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// `ch_…`
    pub id: String,
    /// `pi_…`
    pub payment_intent: String,
    pub amount: i64,
    pub currency: String,
    /// `metadata[hold_id]` and `metadata[idempotency_key]` of the intent.
    pub hold_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub refunded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// `re_…`
    pub id: String,
    pub payment_intent: String,
    pub charge: String,
    pub amount: i64,
}

impl Ledger {
    /// The succeeded payment intent whose `metadata[hold_id]` is `hold_id`.
    pub(crate) fn intent_of_hold(&self, hold_id: &str) -> Option<Value> {
        self.intents
            .iter()
            .find(|intent| {
                intent["metadata"]["hold_id"] == hold_id && intent["status"] == "succeeded"
            })
            .cloned()
    }
}

#[derive(Default)]
pub(crate) struct Ledger {
    /// Payment intents as JSON, in creation order.
    intents: Vec<Value>,
    pub(crate) charges: Vec<Charge>,
    pub(crate) refunds: Vec<Refund>,
    /// (route, Idempotency-Key) → the parameters and the answer of the
    /// first request, replayed to every later one with the same parameters.
    idempotent: HashMap<(&'static str, String), StoredAnswer>,
}

struct StoredAnswer {
    parameters: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
}

/// Form or query parameters in the order sent.
type Parameters = Vec<(String, String)>;

pub(crate) fn router(state: Arc<FakeState>) -> Router {
    Router::new()
        .route(PAYMENT_INTENTS_PATH, post(create_payment_intent))
        .route("/v1/payment_intents/search", get(search_payment_intents))
        .route("/v1/refunds", post(create_refund))
        .with_state(state)
}

/// Stripe's error shape: `{"error": {"type", "code", "message", …}}`.
pub(crate) fn stripe_error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    message: &str,
) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({"error": {"type": kind, "code": code, "message": message}})),
    )
}

fn new_id(prefix: &str) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    let random = Alphanumeric.sample_string(&mut rand::thread_rng(), ID_RANDOM_CHARACTERS);
    format!("{prefix}_{random}")
}

fn authorized(state: &FakeState, headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {}", state.secret_key);
    headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|given| given == expected)
}

fn unauthorized() -> Response {
    stripe_error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        None,
        "Invalid API Key provided",
    )
    .into_response()
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

fn parameter<'a>(form: &'a Parameters, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn missing(name: &str) -> (StatusCode, Json<Value>) {
    stripe_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some("parameter_missing"),
        &format!("Missing required param: {name}."),
    )
}

/// Runs `decide` once per (route, key): a later request with the same key
/// and parameters gets the stored answer, with other parameters a 400.
fn idempotent(
    ledger: &mut Ledger,
    route: &'static str,
    key: Option<String>,
    form: Parameters,
    decide: impl FnOnce(&mut Ledger, &Parameters) -> (StatusCode, Value),
) -> Response {
    let mut parameters = form;
    parameters.sort();
    let Some(key) = key else {
        let (status, body) = decide(ledger, &parameters);
        return (status, Json(body)).into_response();
    };
    if let Some(stored) = ledger.idempotent.get(&(route, key.clone())) {
        if stored.parameters != parameters {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                None,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            )
            .into_response();
        }
        let mut response = (stored.status, Json(stored.body.clone())).into_response();
        response
            .headers_mut()
            .insert("idempotent-replayed", "true".parse().expect("header value"));
        return response;
    }
    let (status, body) = decide(ledger, &parameters);
    ledger.idempotent.insert(
        (route, key),
        StoredAnswer {
            parameters,
            status,
            body: body.clone(),
        },
    );
    (status, Json(body)).into_response()
}

async fn create_payment_intent(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Form(form): Form<Parameters>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let key = idempotency_key(&headers);
    let (response, captured) = {
        let mut ledger = lock(&state.ledger);
        let charges_before = ledger.charges.len();
        let response = idempotent(
            &mut ledger,
            "payment_intents",
            key,
            form,
            decide_payment_intent,
        );
        let captured = (ledger.charges.len() > charges_before)
            .then(|| ledger.intents.last().cloned())
            .flatten();
        (response, captured)
    };
    if let Some(intent) = captured {
        crate::webhook::after_capture(&state, intent).await;
    }
    response
}

fn decide_payment_intent(ledger: &mut Ledger, form: &Parameters) -> (StatusCode, Value) {
    let amount = parameter(form, "amount").and_then(|amount| amount.parse::<i64>().ok());
    let Some(amount) = amount.filter(|amount| *amount > 0) else {
        let (status, Json(body)) = missing("amount");
        return (status, body);
    };
    let Some(currency) = parameter(form, "currency") else {
        let (status, Json(body)) = missing("currency");
        return (status, body);
    };
    let Some(token) = parameter(form, "payment_method_data[card][token]") else {
        let (status, Json(body)) = missing("payment_method_data[card][token]");
        return (status, body);
    };
    if parameter(form, "confirm") != Some("true") {
        let (status, Json(body)) = missing("confirm");
        return (status, body);
    }
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_string(), Value::from(value.as_str())))
        })
        .collect();
    let declined = DECLINED_TOKENS.contains(&token);
    let id = new_id("pi");
    let charge_id = new_id("ch");
    let mut intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": if declined { 0 } else { amount },
        "currency": currency,
        "status": if declined { "requires_payment_method" } else { "succeeded" },
        "latest_charge": charge_id,
        "metadata": metadata,
    });
    if declined {
        intent["last_payment_error"] = json!({"type": "card_error", "code": "card_declined", "decline_code": "generic_decline"});
        ledger.intents.push(intent.clone());
        let body = json!({"error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
            "charge": charge_id,
            "payment_intent": intent,
        }});
        return (StatusCode::PAYMENT_REQUIRED, body);
    }
    ledger.charges.push(Charge {
        id: charge_id,
        payment_intent: id,
        amount,
        currency: currency.to_string(),
        hold_id: metadata
            .get("hold_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        idempotency_key: metadata
            .get("idempotency_key")
            .and_then(Value::as_str)
            .map(str::to_string),
        refunded: false,
    });
    ledger.intents.push(intent.clone());
    (StatusCode::OK, intent)
}

/// Only the query shape the gateway sends: `metadata['NAME']:'VALUE'`.
fn parse_metadata_query(query: &str) -> Option<(String, String)> {
    let rest = query.trim().strip_prefix("metadata['")?;
    let (name, rest) = rest.split_once("']:'")?;
    let value = rest.strip_suffix('\'')?;
    Some((
        name.to_string(),
        value.replace("\\'", "'").replace("\\\\", "\\"),
    ))
}

async fn search_payment_intents(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<Parameters>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let Some((name, value)) = parameter(&query, "query").and_then(parse_metadata_query) else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("parameter_invalid"),
            "the fake Stripe only searches metadata['name']:'value'",
        )
        .into_response();
    };
    let expand_charge = query
        .iter()
        .any(|(key, value)| key == "expand[]" && value == "data.latest_charge");
    let ledger = lock(&state.ledger);
    let data: Vec<Value> = ledger
        .intents
        .iter()
        .filter(|intent| intent["metadata"][&name] == value.as_str())
        .map(|intent| {
            let mut intent = intent.clone();
            if expand_charge {
                if let Some(charge) = ledger
                    .charges
                    .iter()
                    .find(|charge| intent["latest_charge"] == charge.id.as_str())
                {
                    intent["latest_charge"] = json!({
                        "id": charge.id,
                        "object": "charge",
                        "amount": charge.amount,
                        "amount_refunded": if charge.refunded { charge.amount } else { 0 },
                        "refunded": charge.refunded,
                    });
                }
            }
            intent
        })
        .collect();
    Json(json!({
        "object": "search_result",
        "url": "/v1/payment_intents/search",
        "has_more": false,
        "data": data,
    }))
    .into_response()
}

async fn create_refund(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Form(form): Form<Parameters>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let key = idempotency_key(&headers);
    let mut ledger = lock(&state.ledger);
    idempotent(&mut ledger, "refunds", key, form, decide_refund)
}

fn decide_refund(ledger: &mut Ledger, form: &Parameters) -> (StatusCode, Value) {
    let Some(payment_intent) = parameter(form, "payment_intent") else {
        let (status, Json(body)) = missing("payment_intent");
        return (status, body);
    };
    let Some(charge) = ledger
        .charges
        .iter_mut()
        .find(|charge| charge.payment_intent == payment_intent)
    else {
        let (status, Json(body)) = stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("resource_missing"),
            "No such payment_intent with a captured charge",
        );
        return (status, body);
    };
    if charge.refunded {
        let (status, Json(body)) = stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("charge_already_refunded"),
            "Charge has already been refunded.",
        );
        return (status, body);
    }
    charge.refunded = true;
    let refund = Refund {
        id: new_id("re"),
        payment_intent: charge.payment_intent.clone(),
        charge: charge.id.clone(),
        amount: charge.amount,
    };
    let body = json!({
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "charge": refund.charge,
        "payment_intent": refund.payment_intent,
        "status": "succeeded",
    });
    ledger.refunds.push(refund);
    (StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_queries_are_parsed() {
        assert_eq!(
            parse_metadata_query("metadata['idempotency_key']:'charge-hld_1'"),
            Some(("idempotency_key".into(), "charge-hld_1".into()))
        );
        assert_eq!(
            parse_metadata_query(r"metadata['k']:'a\'b'"),
            Some(("k".into(), "a'b".into()))
        );
        assert_eq!(parse_metadata_query("status:'succeeded'"), None);
    }
}
