use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use crate::db::to_millis;
use crate::{
    IdempotencyClaim, IdempotencyCompletion, IdempotencyScope, IdempotencyStore, SqlStore,
    StoreResult, StoredResponse,
};

/// Stores the response of a claimed key inside the caller's transaction.
pub(crate) async fn complete_in_tx(
    conn: &mut AnyConnection,
    completion: &IdempotencyCompletion,
    _now: DateTime<Utc>,
) -> StoreResult<()> {
    let scope = &completion.scope;
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'DONE', response_status = $1, response_body = $2 \
         WHERE user_id = $3 AND route = $4 AND key = $5",
    )
    .bind(i64::from(completion.response.status))
    .bind(completion.response.body.as_str())
    .bind(scope.user_id.as_str())
    .bind(scope.route.as_str())
    .bind(scope.key.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn claim_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        request_hash: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<IdempotencyClaim> {
        let _guard = self.write_guard().await;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, route, key, request_hash, state, locked_at, created_at) \
             VALUES ($1, $2, $3, $4, 'IN_PROGRESS', $5, $5) ON CONFLICT (user_id, route, key) DO NOTHING",
        )
        .bind(scope.user_id.as_str())
        .bind(scope.route.as_str())
        .bind(scope.key.as_str())
        .bind(request_hash)
        .bind(to_millis(now))
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(IdempotencyClaim::Claimed);
        }
        let row = sqlx::query(
            "SELECT request_hash, state, response_status, response_body, locked_at FROM idempotency_keys \
             WHERE user_id = $1 AND route = $2 AND key = $3",
        )
        .bind(scope.user_id.as_str())
        .bind(scope.route.as_str())
        .bind(scope.key.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            // Abandoned between our insert and select: the caller may retry.
            return Ok(IdempotencyClaim::InProgress);
        };
        let stored_hash: String = row.try_get("request_hash")?;
        if stored_hash != request_hash {
            return Ok(IdempotencyClaim::Mismatch);
        }
        let state: String = row.try_get("state")?;
        if state == "DONE" {
            let status: Option<i64> = row.try_get("response_status")?;
            let body: Option<String> = row.try_get("response_body")?;
            return Ok(IdempotencyClaim::Replay(StoredResponse {
                status: u16::try_from(status.unwrap_or(500)).unwrap_or(500),
                body: body.unwrap_or_default(),
            }));
        }
        let locked_at: i64 = row.try_get("locked_at")?;
        if locked_at >= to_millis(stale_before) {
            return Ok(IdempotencyClaim::InProgress);
        }
        // The request that claimed the key died with its server: take over,
        // unless another request takes over first.
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET locked_at = $1 \
             WHERE user_id = $2 AND route = $3 AND key = $4 AND state = 'IN_PROGRESS' AND locked_at = $5",
        )
        .bind(to_millis(now))
        .bind(scope.user_id.as_str())
        .bind(scope.route.as_str())
        .bind(scope.key.as_str())
        .bind(locked_at)
        .execute(&self.pool)
        .await?;
        Ok(if taken.rows_affected() == 1 {
            IdempotencyClaim::TakenOver
        } else {
            IdempotencyClaim::InProgress
        })
    }

    async fn complete_idempotency_key(
        &self,
        completion: &IdempotencyCompletion,
    ) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        let mut conn = self.pool.acquire().await?;
        complete_in_tx(&mut conn, completion, chrono::Utc::now()).await
    }

    async fn abandon_idempotency_key(&self, scope: &IdempotencyScope) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND route = $2 AND key = $3 AND state = 'IN_PROGRESS'")
            .bind(scope.user_id.as_str())
            .bind(scope.route.as_str())
            .bind(scope.key.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
