//! The built-in `sandbox` gateway.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use boxoffice_store::{SandboxCharge, SandboxLedgerStore};

use super::{ChargeOutcome, ChargeRequest, GatewayCharge, GatewayError, PaymentGateway};
use crate::clock::Clock;

/// The sandbox gateway: test tokens per API.md, an optional delay per call,
/// and a ledger kept in the database like a third party's own books (its
/// writes never join our transactions, so a crash between its capture and our
/// commit looks exactly like it would with a real provider).
pub struct SandboxGateway {
    ledger: Arc<dyn SandboxLedgerStore>,
    clock: Arc<dyn Clock>,
    latency: Duration,
}

impl SandboxGateway {
    pub fn new(
        ledger: Arc<dyn SandboxLedgerStore>,
        clock: Arc<dyn Clock>,
        latency: Duration,
    ) -> Self {
        SandboxGateway {
            ledger,
            clock,
            latency,
        }
    }

    async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

fn unavailable(error: impl std::fmt::Display) -> GatewayError {
    GatewayError::Unavailable(error.to_string())
}

#[async_trait]
impl PaymentGateway for SandboxGateway {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        self.delay().await;
        match request.payment_token.as_str() {
            "tok_declined" => {
                return Ok(ChargeOutcome::Declined {
                    reason: "card_declined".into(),
                });
            }
            "tok_unavailable" => {
                return Err(GatewayError::Unavailable(
                    "sandbox outage (tok_unavailable)".into(),
                ))
            }
            _ => {}
        }
        let now = self.clock.now();
        let charge = SandboxCharge {
            id: format!("ch_{}", hex::encode(rand::random::<[u8; 12]>())),
            hold_id: request.hold_id.to_string(),
            idempotency_key: request.idempotency_key.clone(),
            amount: request.amount.clone(),
            refunded: false,
            created_at: now,
        };
        let stored = self
            .ledger
            .sandbox_capture(&charge)
            .await
            .map_err(unavailable)?;
        Ok(ChargeOutcome::Captured {
            reference: stored.id,
        })
    }

    async fn lookup(&self, idempotency_key: &str) -> Result<Option<GatewayCharge>, GatewayError> {
        let charge = self
            .ledger
            .sandbox_charge_by_key(idempotency_key)
            .await
            .map_err(unavailable)?;
        Ok(charge.map(|charge| GatewayCharge {
            reference: charge.id,
            amount: charge.amount,
            refunded: charge.refunded,
        }))
    }

    async fn refund(&self, idempotency_key: &str) -> Result<(), GatewayError> {
        self.delay().await;
        self.ledger
            .sandbox_refund(idempotency_key)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
