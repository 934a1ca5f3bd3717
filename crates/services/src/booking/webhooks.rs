//! Payments announced by the gateway's webhook (`POST
//! /v1/payments/webhooks/{gateway}`): a captured payment books its hold
//! whatever became of the confirming request — or is refunded when the hold
//! ended and its places were sold meanwhile. Each event is recorded by ID in
//! the transaction of its effect, so a replay does nothing again; the answer
//! is 2xx only once that transaction committed (so the gateway retries).

use boxoffice_domain::{Currency, HoldId, Money};
use boxoffice_store::{HoldRecord, LateRefundCause, PaidHoldOutcome, WebhookEvent};

use super::BookingService;
use crate::error::{ServiceError, ServiceResult};
use crate::payments::webhook::{
    verify_signature, PaymentIntentObject, StripeEvent, EVENT_ID_LENGTH_MAX,
    EVENT_PAYMENT_INTENT_SUCCEEDED,
};
use crate::payments::{gateway_key_of_hold, GatewayCharge};

/// The only gateway with webhooks.
pub const WEBHOOK_GATEWAY_STRIPE: &str = "stripe";
/// Rounds of "the hold changed while we looked" before giving up with a 5xx
/// (the gateway delivers the event again later).
const RACE_ROUNDS_MAX: u32 = 3;

/// What a webhook delivery came to (the metric's `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The hold was booked by this event.
    Booked,
    /// The API or reconciliation had booked it already.
    AlreadyConfirmed,
    /// The payment came after the hold ended and its places were sold: refunded.
    Refunded,
    /// The event was processed before.
    Duplicate,
    /// An event type we do not act on, or a payment for no hold of ours.
    Ignored,
}

impl WebhookOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Booked => "booked",
            WebhookOutcome::AlreadyConfirmed => "already_confirmed",
            WebhookOutcome::Refunded => "refunded",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Ignored => "ignored",
        }
    }
}

/// The metric label of a refused or failed delivery.
fn error_label(error: &ServiceError) -> &'static str {
    match error {
        ServiceError::InvalidSignature => "invalid_signature",
        ServiceError::NotFound { .. } => "unknown_gateway",
        ServiceError::InvalidRequest { .. } => "invalid_request",
        _ => "failed",
    }
}

impl BookingService {
    /// Handles one webhook delivery: `signature` is the `Stripe-Signature`
    /// header, `payload` the raw body.
    #[tracing::instrument(skip_all, fields(gateway, event_id), err(level = "info"))]
    pub async fn payment_webhook(
        &self,
        gateway: &str,
        signature: Option<&str>,
        payload: &[u8],
    ) -> ServiceResult<WebhookOutcome> {
        let result = self.try_payment_webhook(gateway, signature, payload).await;
        let label = match &result {
            Ok(outcome) => outcome.as_str(),
            Err(error) => error_label(error),
        };
        metrics::counter!("boxoffice_payment_webhooks_total", "outcome" => label).increment(1);
        result
    }

    async fn try_payment_webhook(
        &self,
        gateway: &str,
        signature: Option<&str>,
        payload: &[u8],
    ) -> ServiceResult<WebhookOutcome> {
        // Only the configured Stripe gateway has webhooks (a secret to check
        // them with); any other name is no route of ours.
        let secret = match (&self.webhook_secret, gateway) {
            (Some(secret), WEBHOOK_GATEWAY_STRIPE) => secret,
            _ => return Err(ServiceError::NotFound { what: "webhook" }),
        };
        let now = self.clock.now();
        if let Err(error) = verify_signature(secret, signature, payload, now.timestamp()) {
            tracing::warn!(%error, "payment webhook refused");
            return Err(ServiceError::InvalidSignature);
        }
        let event: StripeEvent = serde_json::from_slice(payload).map_err(|error| {
            ServiceError::invalid("body", format!("not a Stripe event: {error}"))
        })?;
        if event.id.is_empty() || event.id.len() > EVENT_ID_LENGTH_MAX {
            return Err(ServiceError::invalid("id", "not a Stripe event ID"));
        }
        tracing::Span::current()
            .record("gateway", gateway)
            .record("event_id", event.id.as_str());
        let record = WebhookEvent {
            gateway: gateway.to_string(),
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
        };
        if event.event_type != EVENT_PAYMENT_INTENT_SUCCEEDED {
            // `payment_intent.payment_failed` and the rest: the confirming
            // request already knows (a decline is an answer). Acknowledged.
            return self.ignore(&record, None, "ignored").await;
        }
        let intent: PaymentIntentObject =
            serde_json::from_value(event.data.object).map_err(|error| {
                ServiceError::invalid("data.object", format!("not a payment intent: {error}"))
            })?;
        let Some(hold_id) = intent
            .metadata
            .get("hold_id")
            .and_then(|id| HoldId::parse(id).ok())
        else {
            tracing::info!(payment_intent = %intent.id, "payment without a hold of ours: ignored");
            return self.ignore(&record, None, "no_hold").await;
        };
        let Some(hold) = self.store.hold(&hold_id).await? else {
            tracing::warn!(%hold_id, payment_intent = %intent.id, "payment for an unknown hold: ignored");
            return self.ignore(&record, Some(&hold_id), "unknown_hold").await;
        };
        let paid = Currency::parse(&intent.currency.to_ascii_uppercase())
            .ok()
            .and_then(|currency| Money::new(intent.amount, currency).ok());
        if paid.as_ref() != Some(&hold.total) {
            // Not a charge this service made for this hold: never book on it.
            tracing::error!(%hold_id, payment_intent = %intent.id, amount = intent.amount, currency = %intent.currency, "payment amount differs from the hold's total: ignored");
            return self
                .ignore(&record, Some(&hold_id), "amount_mismatch")
                .await;
        }
        let charge = GatewayCharge {
            reference: intent.id,
            amount: hold.total.clone(),
            refunded: false,
        };
        self.book_paid(&record, &hold_id, &charge).await
    }

    async fn ignore(
        &self,
        record: &WebhookEvent,
        hold_id: Option<&HoldId>,
        outcome: &str,
    ) -> ServiceResult<WebhookOutcome> {
        let fresh = self
            .store
            .record_webhook_event(record, hold_id, outcome, self.clock.now())
            .await?;
        Ok(if fresh {
            WebhookOutcome::Ignored
        } else {
            WebhookOutcome::Duplicate
        })
    }

    /// Books the hold of a captured payment, or refunds the payment when
    /// the hold's places are gone. Exactly one of this and the API's
    /// confirmation books (conditional updates in the store).
    async fn book_paid(
        &self,
        record: &WebhookEvent,
        hold_id: &HoldId,
        charge: &GatewayCharge,
    ) -> ServiceResult<WebhookOutcome> {
        for _ in 0..RACE_ROUNDS_MAX {
            let hold = self
                .store
                .hold(hold_id)
                .await?
                .ok_or(ServiceError::NotFound { what: "hold" })?;
            let now = self.clock.now();
            let new = self.new_booking(&hold, charge, now);
            match self.store.book_paid_hold(record, &new, now).await? {
                PaidHoldOutcome::Booked(booking) => {
                    tracing::info!(%hold_id, booking_id = %booking.id, "webhook: payment booked");
                    metrics::counter!("boxoffice_confirmations_total", "outcome" => "confirmed_by_webhook").increment(1);
                    return Ok(WebhookOutcome::Booked);
                }
                PaidHoldOutcome::AlreadyConfirmed => return Ok(WebhookOutcome::AlreadyConfirmed),
                PaidHoldOutcome::Duplicate => return Ok(WebhookOutcome::Duplicate),
                PaidHoldOutcome::UnknownHold => return Ok(WebhookOutcome::Ignored),
                PaidHoldOutcome::Raced => continue,
                outcome @ (PaidHoldOutcome::PlacesGone | PaidHoldOutcome::OverTicketLimit) => {
                    if !self.store.claim_refund(hold_id, now).await? {
                        // Booked meanwhile: the next round sees it.
                        continue;
                    }
                    let cause = match outcome {
                        PaidHoldOutcome::OverTicketLimit => LateRefundCause::TicketLimit,
                        _ => LateRefundCause::PlacesGone,
                    };
                    return self.refund_late_payment(record, &hold, charge, cause).await;
                }
            }
        }
        Err(ServiceError::Unavailable(
            "the hold kept changing; the gateway will deliver the event again".into(),
        ))
    }

    /// The payment came after the hold ended and its places were sold:
    /// give the money back (idempotent), then record it with the event.
    async fn refund_late_payment(
        &self,
        record: &WebhookEvent,
        hold: &HoldRecord,
        charge: &GatewayCharge,
        cause: LateRefundCause,
    ) -> ServiceResult<WebhookOutcome> {
        let key = gateway_key_of_hold(&hold.id);
        // The refund finds the charge by its key: make sure the gateway's
        // search sees it (Stripe's is eventually consistent) so that a
        // refund of "nothing" is never recorded as done.
        let found = tokio::time::timeout(self.config.gateway_deadline(), self.gateway.lookup(&key))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        if found.is_none() {
            tracing::warn!(hold_id = %hold.id, "webhook: the late charge is not visible yet; refund later");
            return Err(ServiceError::PaymentUnavailable);
        }
        match tokio::time::timeout(self.config.gateway_deadline(), self.gateway.refund(&key)).await
        {
            Ok(Ok(())) => {}
            _ => {
                tracing::warn!(hold_id = %hold.id, "webhook: refund failed; the gateway will deliver the event again");
                return Err(ServiceError::PaymentUnavailable);
            }
        }
        tracing::warn!(hold_id = %hold.id, payment_intent = %charge.reference, cause = cause.as_str(), "webhook: payment after the hold ended could not be booked: refunded");
        let fresh = self
            .store
            .record_late_payment_refund(record, hold, &charge.reference, cause, self.clock.now())
            .await?;
        Ok(if fresh {
            WebhookOutcome::Refunded
        } else {
            WebhookOutcome::Duplicate
        })
    }
}
