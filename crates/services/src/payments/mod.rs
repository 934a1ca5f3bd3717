//! The payment port and its adapters.
//!
//! # Layout
//! - this module: the [`PaymentGateway`] port and what crosses it.
//! - [`sandbox`]: the built-in `sandbox` gateway (test tokens, a ledger in
//!   the database).
//! - [`stripe`]: the `stripe` gateway, speaking Stripe's HTTP API.
//! - [`guard`]: [`GuardedGateway`], the timeouts, retries and circuit breaker
//!   in front of whichever gateway is configured.

pub mod guard;
pub mod sandbox;
pub mod stripe;
pub mod webhook;

use async_trait::async_trait;
use boxoffice_domain::{HoldId, Money};

pub use guard::{GuardPolicy, GuardedGateway};
pub use sandbox::SandboxGateway;
pub use stripe::{StripeConfig, StripeGateway};

/// What we ask a gateway to charge. The idempotency key is derived from the
/// hold, so that however often a confirmation is retried, one hold is charged
/// at most once (invariant 5).
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub idempotency_key: String,
    pub hold_id: HoldId,
    pub amount: Money,
    pub payment_token: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChargeOutcome {
    Captured { reference: String },
    Declined { reason: String },
}

/// A charge as the gateway knows it, for reconciliation.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayCharge {
    pub reference: String,
    pub amount: Money,
    pub refunded: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway is down, timed out, or answered nonsense: try again later.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    fn name(&self) -> &'static str;
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError>;
    /// What happened to the charge with this idempotency key, if anything.
    async fn lookup(&self, idempotency_key: &str) -> Result<Option<GatewayCharge>, GatewayError>;
    /// Refunds the charge with this idempotency key; refunding twice is harmless.
    async fn refund(&self, idempotency_key: &str) -> Result<(), GatewayError>;
}

pub fn gateway_key_of_hold(hold_id: &HoldId) -> String {
    format!("charge-{hold_id}")
}
