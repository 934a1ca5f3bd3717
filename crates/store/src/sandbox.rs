use async_trait::async_trait;
use boxoffice_domain::{Currency, Money};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::db::{from_millis, to_millis};
use crate::{SandboxCharge, SandboxLedgerStore, SqlStore, StoreError, StoreResult};

fn charge_from_row(row: &AnyRow) -> StoreResult<SandboxCharge> {
    let currency: String = row.try_get("currency")?;
    let status: String = row.try_get("status")?;
    Ok(SandboxCharge {
        id: row.try_get("id")?,
        hold_id: row.try_get("hold_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        amount: Money {
            amount: row.try_get("amount")?,
            currency: Currency::parse(&currency).map_err(|e| StoreError::Other(e.to_string()))?,
        },
        refunded: status == "REFUNDED",
        created_at: from_millis(row.try_get("created_at")?),
    })
}

#[async_trait]
impl SandboxLedgerStore for SqlStore {
    async fn sandbox_capture(&self, charge: &SandboxCharge) -> StoreResult<SandboxCharge> {
        {
            let _guard = self.write_guard().await;
            sqlx::query(
                "INSERT INTO sandbox_charges (id, hold_id, idempotency_key, amount, currency, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'CAPTURED', $6) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(charge.id.as_str())
            .bind(charge.hold_id.as_str())
            .bind(charge.idempotency_key.as_str())
            .bind(charge.amount.amount)
            .bind(charge.amount.currency.as_str())
            .bind(to_millis(charge.created_at))
            .execute(&self.pool)
            .await?;
        }
        self.sandbox_charge_by_key(&charge.idempotency_key)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn sandbox_charge_by_key(
        &self,
        idempotency_key: &str,
    ) -> StoreResult<Option<SandboxCharge>> {
        let row = sqlx::query("SELECT * FROM sandbox_charges WHERE idempotency_key = $1")
            .bind(idempotency_key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(charge_from_row).transpose()
    }

    async fn sandbox_refund(&self, idempotency_key: &str) -> StoreResult<Option<SandboxCharge>> {
        {
            let _guard = self.write_guard().await;
            sqlx::query(
                "UPDATE sandbox_charges SET status = 'REFUNDED' WHERE idempotency_key = $1",
            )
            .bind(idempotency_key)
            .execute(&self.pool)
            .await?;
        }
        self.sandbox_charge_by_key(idempotency_key).await
    }

    async fn sandbox_charges_of_hold(&self, hold_id: &str) -> StoreResult<Vec<SandboxCharge>> {
        let rows =
            sqlx::query("SELECT * FROM sandbox_charges WHERE hold_id = $1 ORDER BY created_at, id")
                .bind(hold_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(charge_from_row).collect()
    }
}
