//! The transactional outbox: rows written in the caller's transaction, and
//! the dispatcher's claim / deliver / retry steps.

use async_trait::async_trait;
use boxoffice_domain::{DomainEventId, OutboxMessageId};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{from_millis, opt_from_millis, to_millis, Placeholders};

/// IDs per `UPDATE … WHERE id IN (…)`.
const OUTBOX_IN_LIST_MAX: usize = 500;
use crate::{
    Backend, OutboxBacklog, OutboxEvent, OutboxMessage, OutboxStore, SqlStore, StoreResult,
};

/// Writes one row per channel of `event` inside the caller's transaction,
/// so that the event is announced if and only if the change committed.
pub(crate) async fn write_outbox(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    event: &OutboxEvent,
) -> StoreResult<()> {
    let millis = now.timestamp_millis().max(0) as u64;
    let event_id = DomainEventId::generate(millis, rand::random::<u128>());
    let mut payload = event.payload.clone();
    if let Some(object) = payload.as_object_mut() {
        object.insert("event_id".into(), event_id.as_str().into());
        object.insert("type".into(), event.event_type.into());
        object.insert(
            "occurred_at".into(),
            now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
    }
    let payload = payload.to_string();
    if event.channels.is_empty() {
        return Ok(());
    }
    // One statement for all channels: this runs in every booking's
    // transaction. The event's fields are bound once ($1–$4), then an ID
    // and a channel per row.
    let rows: Vec<String> = (0..event.channels.len())
        .map(|row| {
            let first = 5 + 2 * row;
            format!("(${first}, $1, $2, ${}, $3, $4, $4)", first + 1)
        })
        .collect();
    let sql = format!(
        "INSERT INTO outbox (id, event_id, event_type, channel, payload, created_at, next_attempt_at) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(&sql)
        .bind(event_id.as_str())
        .bind(event.event_type)
        .bind(payload.as_str())
        .bind(to_millis(now));
    for channel in event.channels {
        let id = OutboxMessageId::generate(millis, rand::random::<u128>());
        query = query.bind(id.as_str().to_owned()).bind(*channel);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

fn message_from_row(row: &AnyRow) -> StoreResult<OutboxMessage> {
    let payload: String = row.try_get("payload")?;
    Ok(OutboxMessage {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        channel: row.try_get("channel")?,
        payload: serde_json::from_str(&payload)?,
        created_at: from_millis(row.try_get("created_at")?),
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        delivered_at: opt_from_millis(row.try_get("delivered_at")?),
    })
}

const COLUMNS: &str =
    "id, event_id, event_type, channel, payload, created_at, attempts, delivered_at";

#[async_trait]
impl OutboxStore for SqlStore {
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        // PostgreSQL: concurrent dispatchers (one per node) skip each other's
        // rows instead of waiting. SQLite has one writer: the UPDATE is the claim.
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox \
                 WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
                   AND (claimed_until IS NULL OR claimed_until < $2) \
                 ORDER BY next_attempt_at LIMIT $3{lock}) \
             RETURNING {COLUMNS}"
        );
        // Idle most of the time: look before taking SQLite's single write
        // lock (or a PostgreSQL write), so that an empty poll never queues
        // behind a flash sale's hold batches.
        let due = sqlx::query(
            "SELECT 1 AS due FROM outbox \
             WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
               AND (claimed_until IS NULL OR claimed_until < $1) LIMIT 1",
        )
        .bind(to_millis(now))
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let _guard = self.write_guard().await;
        let rows = sqlx::query(&sql)
            .bind(to_millis(lease_until))
            .bind(to_millis(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut messages = rows
            .iter()
            .map(message_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        messages.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(messages)
    }

    async fn outbox_delivered(&self, ids: &[String], now: DateTime<Utc>) -> StoreResult<()> {
        // A batch is at most a few hundred IDs, far below both backends'
        // parameter limits.
        for chunk in ids.chunks(OUTBOX_IN_LIST_MAX) {
            let mut numbering = Placeholders::starting_at(self.backend(), 1);
            let first = numbering.next_placeholder();
            let list = chunk
                .iter()
                .map(|_| numbering.next_placeholder())
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE outbox SET delivered_at = {first}, claimed_until = NULL, last_error = NULL \
                 WHERE id IN ({list})"
            );
            let mut query = sqlx::query(&sql).bind(to_millis(now));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let _guard = self.write_guard().await;
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    async fn outbox_retry_later(
        &self,
        id: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query("UPDATE outbox SET next_attempt_at = $1, claimed_until = NULL, last_error = $2 WHERE id = $3 AND delivered_at IS NULL")
            .bind(to_millis(next_attempt_at))
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn outbox_give_up(&self, id: &str, now: DateTime<Utc>, error: &str) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query("UPDATE outbox SET failed_at = $1, claimed_until = NULL, last_error = $2 WHERE id = $3 AND delivered_at IS NULL")
            .bind(to_millis(now))
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn outbox_backlog(&self) -> StoreResult<OutboxBacklog> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM outbox \
             WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        let failed =
            sqlx::query("SELECT COUNT(*) AS failed FROM outbox WHERE failed_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(OutboxBacklog {
            pending: u64::try_from(row.try_get::<i64, _>("pending")?).unwrap_or(0),
            oldest_created_at: opt_from_millis(row.try_get("oldest")?),
            failed: u64::try_from(failed.try_get::<i64, _>("failed")?).unwrap_or(0),
        })
    }

    async fn outbox_messages_of_event_type(
        &self,
        event_type: &str,
        channel: &str,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE event_type = $1 AND channel = $2 ORDER BY seq"
        ))
        .bind(event_type)
        .bind(channel)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from_row).collect()
    }
}
