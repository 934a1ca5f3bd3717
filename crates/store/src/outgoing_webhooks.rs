//! Outgoing webhooks: subscriptions, the fan-out of a `webhooks` outbox row
//! into one delivery per matching subscription, the sender's claim / settle
//! steps, and the delivery log an admin reads.

use std::convert::Infallible;

use async_trait::async_trait;
use boxoffice_domain::{WebhookDeliveryId, WebhookSubscriptionId};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::catalog::paginate;
use crate::db::{flatten, from_millis, opt_from_millis, to_millis};
use crate::error::TxError;
use crate::{Backend, OutboxMessage, Page, PageRequest, SqlStore, StoreResult};

/// A URL that hears about domain events, signed with its secret.
#[derive(Debug, Clone)]
pub struct WebhookSubscriptionRecord {
    pub id: WebhookSubscriptionId,
    pub url: String,
    /// `whsec_…`: the HMAC-SHA256 key of the signatures.
    pub secret: String,
    /// The event types sent; empty means all.
    pub event_types: Vec<String>,
    pub description: String,
    /// A paused subscription gets no new deliveries and its pending ones wait.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields of a subscription to change (`None` keeps the value).
#[derive(Debug, Clone, Default)]
pub struct WebhookSubscriptionPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl WebhookDeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Pending => "PENDING",
            WebhookDeliveryStatus::Delivered => "DELIVERED",
            WebhookDeliveryStatus::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<WebhookDeliveryStatus> {
        match text {
            "PENDING" => Some(WebhookDeliveryStatus::Pending),
            "DELIVERED" => Some(WebhookDeliveryStatus::Delivered),
            "FAILED" => Some(WebhookDeliveryStatus::Failed),
            _ => None,
        }
    }

    fn condition(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Pending => "delivered_at IS NULL AND failed_at IS NULL",
            WebhookDeliveryStatus::Delivered => "delivered_at IS NOT NULL",
            WebhookDeliveryStatus::Failed => "delivered_at IS NULL AND failed_at IS NOT NULL",
        }
    }
}

/// One domain event to deliver to one subscription.
#[derive(Debug, Clone)]
pub struct WebhookDeliveryRecord {
    pub id: WebhookDeliveryId,
    pub subscription_id: WebhookSubscriptionId,
    pub event_id: String,
    pub event_type: String,
    /// The outbox payload (with `event_id`, `type`, `occurred_at`).
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Including the one in progress.
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
}

impl WebhookDeliveryRecord {
    pub fn status(&self) -> WebhookDeliveryStatus {
        if self.delivered_at.is_some() {
            WebhookDeliveryStatus::Delivered
        } else if self.failed_at.is_some() {
            WebhookDeliveryStatus::Failed
        } else {
            WebhookDeliveryStatus::Pending
        }
    }
}

/// A claimed delivery with where it goes.
#[derive(Debug, Clone)]
pub struct DueWebhookDelivery {
    pub delivery: WebhookDeliveryRecord,
    pub url: String,
    pub secret: String,
}

/// One POST of a delivery and what came back.
#[derive(Debug, Clone)]
pub struct WebhookAttemptRecord {
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Its first KiB.
    pub response_body: Option<String>,
}

/// What a finished attempt means for its delivery.
#[derive(Debug, Clone, Copy)]
pub enum WebhookAttemptOutcome {
    Delivered,
    RetryAt(DateTime<Utc>),
    Failed,
}

#[async_trait]
pub trait OutgoingWebhookStore: Send + Sync {
    async fn insert_webhook_subscription(
        &self,
        subscription: &WebhookSubscriptionRecord,
    ) -> StoreResult<()>;
    /// `None` when there is none or it was deleted.
    async fn webhook_subscription(
        &self,
        id: &WebhookSubscriptionId,
    ) -> StoreResult<Option<WebhookSubscriptionRecord>>;
    async fn list_webhook_subscriptions(
        &self,
        page: &PageRequest,
    ) -> StoreResult<Page<WebhookSubscriptionRecord>>;
    async fn update_webhook_subscription(
        &self,
        id: &WebhookSubscriptionId,
        patch: &WebhookSubscriptionPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<WebhookSubscriptionRecord>>;
    /// Deletes it and gives up its pending deliveries; `false` when there
    /// was none.
    async fn delete_webhook_subscription(
        &self,
        id: &WebhookSubscriptionId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// One delivery of the outbox message's event per active subscription
    /// that wants its type, in one transaction; a second call for the same
    /// event adds nothing. Returns how many were added.
    async fn fan_out_webhook_event(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Takes up to `limit` due deliveries of live subscriptions until
    /// `lease_until` (counting the attempt).
    async fn claim_webhook_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueWebhookDelivery>>;
    /// Logs the attempt and settles the delivery, in one transaction.
    async fn finish_webhook_attempt(
        &self,
        delivery_id: &WebhookDeliveryId,
        attempt: &WebhookAttemptRecord,
        outcome: WebhookAttemptOutcome,
    ) -> StoreResult<()>;
    /// A subscription's deliveries, newest first.
    async fn list_webhook_deliveries(
        &self,
        subscription_id: &WebhookSubscriptionId,
        status: Option<WebhookDeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<WebhookDeliveryRecord>>;
    /// A delivery of the subscription with its attempts in order.
    async fn webhook_delivery(
        &self,
        subscription_id: &WebhookSubscriptionId,
        delivery_id: &WebhookDeliveryId,
    ) -> StoreResult<Option<(WebhookDeliveryRecord, Vec<WebhookAttemptRecord>)>>;
    /// Makes an undelivered delivery due now again (also a failed one).
    async fn retry_webhook_delivery(
        &self,
        subscription_id: &WebhookSubscriptionId,
        delivery_id: &WebhookDeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<WebhookDeliveryRecord>>;
    /// Deliveries neither delivered nor failed, for `/metrics`.
    async fn webhook_pending_count(&self) -> StoreResult<u64>;
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, url, secret, event_types, description, active, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, event_type, payload, created_at, \
     attempts, next_attempt_at, delivered_at, failed_at, last_status_code, last_error";

fn subscription_from_row(row: &AnyRow) -> StoreResult<WebhookSubscriptionRecord> {
    let event_types: String = row.try_get("event_types")?;
    Ok(WebhookSubscriptionRecord {
        id: WebhookSubscriptionId::from_trusted(row.try_get("id")?),
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        event_types: serde_json::from_str(&event_types)?,
        description: row.try_get("description")?,
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

fn delivery_from_row(row: &AnyRow) -> StoreResult<WebhookDeliveryRecord> {
    let payload: String = row.try_get("payload")?;
    Ok(WebhookDeliveryRecord {
        id: WebhookDeliveryId::from_trusted(row.try_get("id")?),
        subscription_id: WebhookSubscriptionId::from_trusted(row.try_get("subscription_id")?),
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        payload: serde_json::from_str(&payload)?,
        created_at: from_millis(row.try_get("created_at")?),
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: from_millis(row.try_get("next_attempt_at")?),
        delivered_at: opt_from_millis(row.try_get("delivered_at")?),
        failed_at: opt_from_millis(row.try_get("failed_at")?),
        last_status_code: row
            .try_get::<Option<i64>, _>("last_status_code")?
            .and_then(|code| u16::try_from(code).ok()),
        last_error: row.try_get("last_error")?,
    })
}

fn attempt_from_row(row: &AnyRow) -> StoreResult<WebhookAttemptRecord> {
    Ok(WebhookAttemptRecord {
        attempt: u32::try_from(row.try_get::<i64, _>("attempt")?).unwrap_or(u32::MAX),
        at: from_millis(row.try_get("at")?),
        status_code: row
            .try_get::<Option<i64>, _>("status_code")?
            .and_then(|code| u16::try_from(code).ok()),
        duration_ms: u64::try_from(row.try_get::<i64, _>("duration_ms")?).unwrap_or(0),
        error: row.try_get("error")?,
        response_body: row.try_get("response_body")?,
    })
}

fn wants(event_types: &str, event_type: &str) -> bool {
    match serde_json::from_str::<Vec<String>>(event_types) {
        Ok(types) => types.is_empty() || types.iter().any(|t| t == event_type),
        // Written by us as a JSON array; anything else sends nothing.
        Err(_) => false,
    }
}

#[async_trait]
impl OutgoingWebhookStore for SqlStore {
    async fn insert_webhook_subscription(
        &self,
        subscription: &WebhookSubscriptionRecord,
    ) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO webhook_subscriptions (id, url, secret, event_types, description, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(subscription.id.as_str())
        .bind(subscription.url.as_str())
        .bind(subscription.secret.as_str())
        .bind(serde_json::to_string(&subscription.event_types)?)
        .bind(subscription.description.as_str())
        .bind(i64::from(subscription.active))
        .bind(to_millis(subscription.created_at))
        .bind(to_millis(subscription.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn webhook_subscription(
        &self,
        id: &WebhookSubscriptionId,
    ) -> StoreResult<Option<WebhookSubscriptionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1 AND deleted_at IS NULL"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(subscription_from_row).transpose()
    }

    async fn list_webhook_subscriptions(
        &self,
        page: &PageRequest,
    ) -> StoreResult<Page<WebhookSubscriptionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions \
             WHERE id > $1 AND deleted_at IS NULL ORDER BY id LIMIT $2"
        ))
        .bind(page.after.clone().unwrap_or_default())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(subscription_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |s| s.id.to_string()))
    }

    async fn update_webhook_subscription(
        &self,
        id: &WebhookSubscriptionId,
        patch: &WebhookSubscriptionPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<WebhookSubscriptionRecord>> {
        let event_types = patch
            .event_types
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        {
            let _guard = self.write_guard().await;
            sqlx::query(
                "UPDATE webhook_subscriptions SET url = COALESCE($1, url), \
                 event_types = COALESCE($2, event_types), description = COALESCE($3, description), \
                 active = COALESCE($4, active), updated_at = $5 \
                 WHERE id = $6 AND deleted_at IS NULL",
            )
            .bind(patch.url.clone())
            .bind(event_types)
            .bind(patch.description.clone())
            .bind(patch.active.map(i64::from))
            .bind(to_millis(now))
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        }
        self.webhook_subscription(id).await
    }

    async fn delete_webhook_subscription(
        &self,
        id: &WebhookSubscriptionId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = crate::write_tx!(self, |conn| async {
            let deleted = sqlx::query(
                "UPDATE webhook_subscriptions SET deleted_at = $1, active = 0, updated_at = $1 \
                 WHERE id = $2 AND deleted_at IS NULL",
            )
            .bind(to_millis(now))
            .bind(id.as_str())
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET failed_at = $1, claimed_until = NULL, \
                 last_error = 'subscription deleted' \
                 WHERE subscription_id = $2 AND delivered_at IS NULL AND failed_at IS NULL",
            )
            .bind(to_millis(now))
            .bind(id.as_str())
            .execute(&mut *conn)
            .await?;
            Ok::<_, TxError<Infallible>>(deleted.rows_affected() == 1)
        });
        flatten(result)
    }

    async fn fan_out_webhook_event(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        // Read outside the transaction: with no subscription (the usual
        // case) nothing is written at all.
        let rows = sqlx::query(
            "SELECT id, event_types FROM webhook_subscriptions WHERE active = 1 AND deleted_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut targets = Vec::new();
        for row in &rows {
            let event_types: String = row.try_get("event_types")?;
            if wants(&event_types, &message.event_type) {
                targets.push(row.try_get::<String, _>("id")?);
            }
        }
        if targets.is_empty() {
            return Ok(0);
        }
        let payload = message.payload.to_string();
        let millis = now.timestamp_millis().max(0) as u64;
        let result = crate::write_tx!(self, |conn| async {
            let mut added = 0;
            for subscription_id in &targets {
                let id = WebhookDeliveryId::generate(millis, rand::random::<u128>());
                // The subscription may have been deleted or paused since it
                // was read: the INSERT checks again.
                added += sqlx::query(
                    "INSERT INTO webhook_deliveries \
                     (id, subscription_id, event_id, event_type, payload, created_at, next_attempt_at) \
                     SELECT $1, id, $2, $3, $4, $5, $5 FROM webhook_subscriptions \
                     WHERE id = $6 AND active = 1 AND deleted_at IS NULL \
                     ON CONFLICT (subscription_id, event_id) DO NOTHING",
                )
                .bind(id.as_str())
                .bind(message.event_id.as_str())
                .bind(message.event_type.as_str())
                .bind(payload.as_str())
                .bind(to_millis(now))
                .bind(subscription_id.as_str())
                .execute(&mut *conn)
                .await?
                .rows_affected();
            }
            Ok::<_, TxError<Infallible>>(added)
        });
        flatten(result)
    }

    async fn claim_webhook_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueWebhookDelivery>> {
        // As `claim_outbox`: PostgreSQL senders skip each other's rows; on
        // SQLite (one writer) the UPDATE is the claim.
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT d.id FROM webhook_deliveries d \
                 JOIN webhook_subscriptions s ON s.id = d.subscription_id \
                 WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= $2 \
                   AND (d.claimed_until IS NULL OR d.claimed_until < $2) \
                   AND s.active = 1 AND s.deleted_at IS NULL \
                 ORDER BY d.next_attempt_at LIMIT $3{lock}) \
             RETURNING {DELIVERY_COLUMNS}"
        );
        // Idle most of the time: look before taking the write lock, so that
        // an empty poll never queues behind a flash sale's writes.
        let due = sqlx::query(
            "SELECT 1 AS due FROM webhook_deliveries d \
             JOIN webhook_subscriptions s ON s.id = d.subscription_id \
             WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= $1 \
               AND (d.claimed_until IS NULL OR d.claimed_until < $1) \
               AND s.active = 1 AND s.deleted_at IS NULL LIMIT 1",
        )
        .bind(to_millis(now))
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let rows = {
            let _guard = self.write_guard().await;
            sqlx::query(&sql)
                .bind(to_millis(lease_until))
                .bind(to_millis(now))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
        };
        let deliveries = rows
            .iter()
            .map(delivery_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut due = Vec::with_capacity(deliveries.len());
        let mut targets: std::collections::HashMap<String, (String, String)> = Default::default();
        for delivery in deliveries {
            let key = delivery.subscription_id.to_string();
            if !targets.contains_key(&key) {
                let row =
                    sqlx::query("SELECT url, secret FROM webhook_subscriptions WHERE id = $1")
                        .bind(key.as_str())
                        .fetch_one(&self.pool)
                        .await?;
                targets.insert(key.clone(), (row.try_get("url")?, row.try_get("secret")?));
            }
            if let Some((url, secret)) = targets.get(&key) {
                due.push(DueWebhookDelivery {
                    delivery,
                    url: url.clone(),
                    secret: secret.clone(),
                });
            }
        }
        due.sort_by(|a, b| {
            (a.delivery.created_at, &a.delivery.id).cmp(&(b.delivery.created_at, &b.delivery.id))
        });
        Ok(due)
    }

    async fn finish_webhook_attempt(
        &self,
        delivery_id: &WebhookDeliveryId,
        attempt: &WebhookAttemptRecord,
        outcome: WebhookAttemptOutcome,
    ) -> StoreResult<()> {
        let at = to_millis(attempt.at);
        let (delivered_at, failed_at, next_attempt_at) = match outcome {
            WebhookAttemptOutcome::Delivered => (Some(at), None, None),
            WebhookAttemptOutcome::Failed => (None, Some(at), None),
            WebhookAttemptOutcome::RetryAt(next) => (None, None, Some(to_millis(next))),
        };
        let status_code = attempt.status_code.map(i64::from);
        let result = crate::write_tx!(self, |conn| async {
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, duration_ms, error, response_body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, attempt) DO NOTHING",
            )
            .bind(delivery_id.as_str())
            .bind(i64::from(attempt.attempt))
            .bind(at)
            .bind(status_code)
            .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
            .bind(attempt.error.clone())
            .bind(attempt.response_body.clone())
            .execute(&mut *conn)
            .await?;
            // A delivery given up meanwhile (its subscription deleted)
            // stays given up.
            sqlx::query(
                "UPDATE webhook_deliveries SET claimed_until = NULL, last_status_code = $1, last_error = $2, \
                 delivered_at = COALESCE($3, delivered_at), failed_at = COALESCE($4, failed_at), \
                 next_attempt_at = COALESCE($5, next_attempt_at) \
                 WHERE id = $6 AND delivered_at IS NULL AND failed_at IS NULL",
            )
            .bind(status_code)
            .bind(attempt.error.clone())
            .bind(delivered_at)
            .bind(failed_at)
            .bind(next_attempt_at)
            .bind(delivery_id.as_str())
            .execute(&mut *conn)
            .await?;
            Ok::<_, TxError<Infallible>>(())
        });
        flatten(result)
    }

    async fn list_webhook_deliveries(
        &self,
        subscription_id: &WebhookSubscriptionId,
        status: Option<WebhookDeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<WebhookDeliveryRecord>> {
        let mut condition = status
            .map(|status| format!(" AND {}", status.condition()))
            .unwrap_or_default();
        // Placeholders are numbered in order; the cursor's is last.
        if page.after.is_some() {
            condition.push_str(" AND id < $3");
        }
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE subscription_id = $1{condition} ORDER BY id DESC LIMIT $2"
        );
        let mut query = sqlx::query(&sql)
            .bind(subscription_id.as_str())
            .bind(i64::from(page.limit) + 1);
        if let Some(after) = &page.after {
            query = query.bind(after.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(delivery_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |d| d.id.to_string()))
    }

    async fn webhook_delivery(
        &self,
        subscription_id: &WebhookSubscriptionId,
        delivery_id: &WebhookDeliveryId,
    ) -> StoreResult<Option<(WebhookDeliveryRecord, Vec<WebhookAttemptRecord>)>> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1 AND subscription_id = $2"
        ))
        .bind(delivery_id.as_str())
        .bind(subscription_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let delivery = delivery_from_row(&row)?;
        let attempts = sqlx::query(
            "SELECT attempt, at, status_code, duration_ms, error, response_body \
             FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(delivery_id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(attempt_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some((delivery, attempts)))
    }

    async fn retry_webhook_delivery(
        &self,
        subscription_id: &WebhookSubscriptionId,
        delivery_id: &WebhookDeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<WebhookDeliveryRecord>> {
        {
            let _guard = self.write_guard().await;
            // The retry window still counts from `created_at`: past it, a
            // manual retry is one more attempt, FAILED again if it fails.
            sqlx::query(
                "UPDATE webhook_deliveries SET failed_at = NULL, next_attempt_at = $1 \
                 WHERE id = $2 AND subscription_id = $3 AND delivered_at IS NULL \
                   AND (claimed_until IS NULL OR claimed_until < $1)",
            )
            .bind(to_millis(now))
            .bind(delivery_id.as_str())
            .bind(subscription_id.as_str())
            .execute(&self.pool)
            .await?;
        }
        Ok(self
            .webhook_delivery(subscription_id, delivery_id)
            .await?
            .map(|(delivery, _)| delivery))
    }

    async fn webhook_pending_count(&self) -> StoreResult<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending FROM webhook_deliveries \
             WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("pending")?).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::wants;

    #[test]
    fn an_empty_list_wants_every_type() {
        assert!(wants("[]", "hold.expired"));
        assert!(wants(r#"["hold.expired"]"#, "hold.expired"));
        assert!(!wants(r#"["booking.confirmed"]"#, "hold.expired"));
        assert!(!wants("not json", "hold.expired"));
    }
}
