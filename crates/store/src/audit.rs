use async_trait::async_trait;
use boxoffice_domain::AuditId;
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use crate::db::{from_millis, to_millis};
use crate::{
    AuditEntry, AuditFilter, AuditRecord, AuditStore, Page, PageRequest, SqlStore, StoreResult,
};

/// Writes audit records inside the caller's transaction (invariant 7).
pub(crate) async fn write_audit(
    conn: &mut AnyConnection,
    at: DateTime<Utc>,
    entries: &[AuditEntry],
) -> StoreResult<()> {
    for entry in entries {
        let id = AuditId::generate(at.timestamp_millis().max(0) as u64, rand::random::<u128>());
        sqlx::query(
            "INSERT INTO audit_log (id, at, action, actor_user_id, show_id, hold_id, booking_id, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.as_str())
        .bind(to_millis(at))
        .bind(entry.action)
        .bind(entry.actor_user_id.as_ref().map(|id| id.as_str().to_string()))
        .bind(entry.show_id.as_ref().map(|id| id.as_str().to_string()))
        .bind(entry.hold_id.as_ref().map(|id| id.as_str().to_string()))
        .bind(entry.booking_id.as_ref().map(|id| id.as_str().to_string()))
        .bind(entry.data.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<AuditRecord>> {
        let after: i64 = page
            .after
            .as_deref()
            .and_then(|cursor| cursor.parse().ok())
            .unwrap_or(i64::MAX);
        let mut sql = String::from(
            "SELECT seq, id, at, action, actor_user_id, show_id, hold_id, booking_id, data \
             FROM audit_log WHERE seq < $1",
        );
        let mut binds: Vec<&str> = Vec::new();
        for (column, value) in [
            ("show_id", filter.show_id.as_deref()),
            ("booking_id", filter.booking_id.as_deref()),
            ("actor_user_id", filter.user_id.as_deref()),
        ] {
            if let Some(value) = value {
                binds.push(value);
                sql.push_str(&format!(" AND {column} = ${}", binds.len() + 2));
            }
        }
        sql.push_str(" ORDER BY seq DESC LIMIT $2");
        let mut query = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(page.limit) + 1);
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let data: String = row.try_get("data")?;
            records.push((
                row.try_get::<i64, _>("seq")?,
                AuditRecord {
                    id: row.try_get("id")?,
                    at: from_millis(row.try_get("at")?),
                    action: row.try_get("action")?,
                    actor_user_id: row.try_get("actor_user_id")?,
                    show_id: row.try_get("show_id")?,
                    hold_id: row.try_get("hold_id")?,
                    booking_id: row.try_get("booking_id")?,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                },
            ));
        }
        let page = crate::catalog::paginate(records, page.limit, |(seq, _)| seq.to_string());
        Ok(Page {
            items: page.items.into_iter().map(|(_, record)| record).collect(),
            next_cursor: page.next_cursor,
        })
    }
}
