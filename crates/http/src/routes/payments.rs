//! Incoming payment webhooks. The raw body is read (bounded by the server's
//! body limit) because the signature covers its exact bytes.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::RawBody;
use crate::AppState;

/// The header Stripe signs its webhooks in.
const STRIPE_SIGNATURE_HEADER: &str = "stripe-signature";

/// The answer to a webhook the server accepted (its effect is committed).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceived {
    pub received: bool,
    /// `booked`, `already_confirmed`, `refunded`, `duplicate` or `ignored`.
    pub outcome: &'static str,
}

/// A payment gateway's webhook (`stripe`). Signed with
/// `BOXOFFICE_STRIPE_WEBHOOK_SECRET` (`Stripe-Signature`, a timestamp at
/// most 300 s old). `payment_intent.succeeded` books the hold named in the
/// intent's `metadata[hold_id]` (or refunds the payment when the hold ended
/// and its places were sold); other event types are acknowledged. Each
/// event ID takes effect once; 200 only after the effect is committed.
#[utoipa::path(post, path = "/v1/payments/webhooks/{gateway}", tag = "payments", request_body = Object,
    params(("gateway" = String, Path, description = "`stripe`"),
        ("Stripe-Signature" = String, Header, description = "`t={unix seconds},v1={hex HMAC-SHA256}`")),
    responses((status = 200, body = WebhookReceived),
        (status = 400, description = "invalid_signature (nothing written), invalid_request"),
        (status = 404, description = "not_found: no such gateway, or its webhook secret is not configured"),
        (status = 413, description = "payload_too_large"),
        (status = 503, description = "payment_unavailable: the refund of a late payment failed; deliver again")))]
pub async fn webhook(
    State(state): State<AppState>,
    Path(gateway): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookReceived>, ApiError> {
    let signature = headers
        .get(STRIPE_SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    let outcome = state
        .services
        .booking
        .payment_webhook(&gateway, signature, &body)
        .await?;
    Ok(Json(WebhookReceived {
        received: true,
        outcome: outcome.as_str(),
    }))
}
