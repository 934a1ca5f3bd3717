use std::collections::BTreeMap;

use async_trait::async_trait;
use boxoffice_domain::{
    EventId, Money, SectionKind, ShowId, ShowStatus, UserId, Venue, VenueId, VenueLayout,
};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::write_audit;
use crate::db::{flatten, from_millis, to_millis, Placeholders};
use crate::error::TxError;
use crate::Backend;
use crate::{
    AuditEntry, CatalogStore, EventFilter, EventRecord, Page, PageRequest, SearchDocument,
    SearchScope, ShowPatch, ShowRecord, SqlStore, StoreError, StoreResult, VenueRecord,
    VenueSummary, WaitingRoomSettings,
};

/// Rows per multi-row INSERT when creating a show's seats: 5 parameters a row
/// stays far below SQLite's 32,766 and PostgreSQL's 65,535 parameter limits.
const SEAT_ROWS_PER_INSERT_MAX: usize = 1_000;

/// Cuts a fetched `limit + 1` rows down to `limit` and derives the cursor.
pub(crate) fn paginate<T>(
    mut items: Vec<T>,
    limit: u32,
    cursor_of: impl Fn(&T) -> String,
) -> Page<T> {
    let limit = limit as usize;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next_cursor }
}

fn venue_from_row(row: &AnyRow) -> StoreResult<VenueRecord> {
    let layout: String = row.try_get("layout")?;
    let layout: VenueLayout = serde_json::from_str(&layout)?;
    Ok(VenueRecord {
        id: VenueId::from_trusted(row.try_get("id")?),
        venue: Venue {
            name: row.try_get("name")?,
            city: row.try_get("city")?,
            address: row.try_get("address")?,
            timezone: row.try_get("timezone")?,
            layout,
        },
        created_at: from_millis(row.try_get("created_at")?),
    })
}

pub(crate) fn event_from_row(row: &AnyRow) -> StoreResult<EventRecord> {
    let tags: String = row.try_get("tags")?;
    Ok(EventRecord {
        id: EventId::from_trusted(row.try_get("id")?),
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        performer: row.try_get("performer")?,
        genre: row.try_get("genre")?,
        tags: serde_json::from_str(&tags)?,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

const SHOW_COLUMNS: &str =
    "id, event_id, venue_id, starts_at, sales_start, prices, hold_ttl_seconds, \
     max_tickets_per_user, waiting_room, status, version, created_at, updated_at";

pub(crate) fn show_from_row(row: &AnyRow) -> StoreResult<ShowRecord> {
    let prices: String = row.try_get("prices")?;
    let waiting_room: String = row.try_get("waiting_room")?;
    let status: String = row.try_get("status")?;
    Ok(ShowRecord {
        id: ShowId::from_trusted(row.try_get("id")?),
        event_id: EventId::from_trusted(row.try_get("event_id")?),
        venue_id: VenueId::from_trusted(row.try_get("venue_id")?),
        starts_at: from_millis(row.try_get("starts_at")?),
        sales_start: from_millis(row.try_get("sales_start")?),
        prices: serde_json::from_str::<BTreeMap<String, Money>>(&prices)?,
        hold_ttl_seconds: u32::try_from(row.try_get::<i64, _>("hold_ttl_seconds")?).unwrap_or(600),
        max_tickets_per_user: u32::try_from(row.try_get::<i64, _>("max_tickets_per_user")?)
            .unwrap_or(1),
        waiting_room: serde_json::from_str::<WaitingRoomSettings>(&waiting_room)?,
        status: ShowStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown show status {status}")))?,
        version: row.try_get("version")?,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

pub(crate) async fn load_show(
    conn: &mut AnyConnection,
    id: &ShowId,
) -> StoreResult<Option<ShowRecord>> {
    let row = sqlx::query(&format!("SELECT {SHOW_COLUMNS} FROM shows WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(show_from_row).transpose()
}

async fn insert_inventory(
    conn: &mut AnyConnection,
    backend: Backend,
    show_id: &ShowId,
    layout: &VenueLayout,
) -> StoreResult<()> {
    let seats: Vec<_> = layout.seats().collect();
    for chunk in seats.chunks(SEAT_ROWS_PER_INSERT_MAX) {
        let mut sql = String::from(
            "INSERT INTO show_seats (show_id, seat_id, section, category, status) VALUES ",
        );
        // Anonymous `?` on SQLite: see `Placeholders` (thousands of `$n`
        // made creating a 50,000-seat show quadratic).
        let mut numbering = Placeholders::starting_at(backend, 1);
        for index in 0..chunk.len() {
            if index > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "({}, {}, {}, {}, 'AVAILABLE')",
                numbering.next_placeholder(),
                numbering.next_placeholder(),
                numbering.next_placeholder(),
                numbering.next_placeholder()
            ));
        }
        let mut query = sqlx::query(&sql);
        for (section, _row, seat) in chunk {
            query = query
                .bind(show_id.as_str())
                .bind(seat.id.as_str())
                .bind(section.id.as_str())
                .bind(seat.category.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    for section in &layout.sections {
        if let SectionKind::Standing { capacity } = section.kind {
            sqlx::query(
                "INSERT INTO show_standing (show_id, section, category, capacity, held, booked) \
                 VALUES ($1, $2, $3, $4, 0, 0)",
            )
            .bind(show_id.as_str())
            .bind(section.id.as_str())
            .bind(section.category.as_str())
            .bind(i64::from(capacity))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

fn show_audit(
    action: &'static str,
    show: &ShowRecord,
    actor: &UserId,
    data: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        action,
        actor_user_id: Some(actor.clone()),
        show_id: Some(show.id.clone()),
        hold_id: None,
        booking_id: None,
        data,
    }
}

#[async_trait]
impl CatalogStore for SqlStore {
    async fn insert_venue(&self, record: &VenueRecord) -> StoreResult<()> {
        let layout = serde_json::to_string(&record.venue.layout)?;
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO venues (id, name, city, address, timezone, layout, seat_count, standing_capacity, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(record.id.as_str())
        .bind(&record.venue.name)
        .bind(&record.venue.city)
        .bind(&record.venue.address)
        .bind(&record.venue.timezone)
        .bind(layout)
        .bind(record.venue.layout.seat_count() as i64)
        .bind(record.venue.layout.standing_capacity() as i64)
        .bind(to_millis(record.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn venue(&self, id: &VenueId) -> StoreResult<Option<VenueRecord>> {
        let row = sqlx::query("SELECT id, name, city, address, timezone, layout, created_at FROM venues WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(venue_from_row).transpose()
    }

    async fn list_venues(&self, page: &PageRequest) -> StoreResult<Page<VenueSummary>> {
        let rows = sqlx::query(
            "SELECT id, name, city, address, timezone, seat_count, standing_capacity, created_at \
             FROM venues WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(page.after.clone().unwrap_or_default())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let venues = rows
            .iter()
            .map(|row| {
                Ok(VenueSummary {
                    id: VenueId::from_trusted(row.try_get("id")?),
                    name: row.try_get("name")?,
                    city: row.try_get("city")?,
                    address: row.try_get("address")?,
                    timezone: row.try_get("timezone")?,
                    seat_count: row.try_get::<i64, _>("seat_count")? as u64,
                    standing_capacity: row.try_get::<i64, _>("standing_capacity")? as u64,
                    created_at: from_millis(row.try_get("created_at")?),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paginate(venues, page.limit, |venue| venue.id.to_string()))
    }

    async fn insert_event(&self, event: &EventRecord) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO events (id, title, description, performer, genre, tags, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.id.as_str())
        .bind(&event.title)
        .bind(&event.description)
        .bind(&event.performer)
        .bind(&event.genre)
        .bind(serde_json::to_string(&event.tags)?)
        .bind(to_millis(event.created_at))
        .bind(to_millis(event.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn update_event(&self, event: &EventRecord) -> StoreResult<bool> {
        let _guard = self.write_guard().await;
        let result = sqlx::query(
            "UPDATE events SET title = $1, description = $2, performer = $3, genre = $4, tags = $5, updated_at = $6 \
             WHERE id = $7",
        )
        .bind(&event.title)
        .bind(&event.description)
        .bind(&event.performer)
        .bind(&event.genre)
        .bind(serde_json::to_string(&event.tags)?)
        .bind(to_millis(event.updated_at))
        .bind(event.id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn event(&self, id: &EventId) -> StoreResult<Option<EventRecord>> {
        let row = sqlx::query("SELECT * FROM events WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<EventRecord>> {
        // Conditions are appended only when present, so that no untyped NULL
        // parameter reaches PostgreSQL.
        let mut conditions = vec!["e.id > $1".to_string()];
        let mut text_binds: Vec<String> = vec![page.after.clone().unwrap_or_default()];
        let mut time_binds: Vec<i64> = Vec::new();
        if let Some(query) = filter.query.as_deref().filter(|q| !q.trim().is_empty()) {
            let escaped = query
                .trim()
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            text_binds.push(format!("%{escaped}%"));
            let n = text_binds.len();
            conditions.push(format!(
                "(lower(e.title) LIKE ${n} ESCAPE '\\' OR lower(e.performer) LIKE ${n} ESCAPE '\\' \
                 OR lower(e.description) LIKE ${n} ESCAPE '\\' OR lower(e.genre) LIKE ${n} ESCAPE '\\' \
                 OR lower(e.tags) LIKE ${n} ESCAPE '\\')"
            ));
        }
        if let Some(genre) = filter.genre.as_deref() {
            text_binds.push(genre.to_lowercase());
            conditions.push(format!("lower(e.genre) = ${}", text_binds.len()));
        }
        let mut show_conditions = Vec::new();
        if let Some(city) = filter.city.as_deref() {
            text_binds.push(city.to_lowercase());
            show_conditions.push(format!("lower(v.city) = ${}", text_binds.len()));
        }
        let time_offset = text_binds.len() + 1; // $n after the text binds and the limit
        if let Some(from) = filter.from {
            time_binds.push(to_millis(from));
            show_conditions.push(format!(
                "s.starts_at >= ${}",
                time_offset + time_binds.len()
            ));
        }
        if let Some(to) = filter.to {
            time_binds.push(to_millis(to));
            show_conditions.push(format!(
                "s.starts_at <= ${}",
                time_offset + time_binds.len()
            ));
        }
        if !show_conditions.is_empty() {
            // A cancelled show takes no one to that city on that date.
            show_conditions.push("s.status <> 'CANCELLED'".to_string());
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM shows s JOIN venues v ON v.id = s.venue_id \
                 WHERE s.event_id = e.id AND {})",
                show_conditions.join(" AND ")
            ));
        }
        let sql = format!(
            "SELECT e.* FROM events e WHERE {} ORDER BY e.id LIMIT ${}",
            conditions.join(" AND "),
            text_binds.len() + 1
        );
        let mut query = sqlx::query(&sql);
        for value in &text_binds {
            query = query.bind(value.as_str());
        }
        query = query.bind(i64::from(page.limit) + 1);
        for value in &time_binds {
            query = query.bind(*value);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let events = rows
            .iter()
            .map(event_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paginate(events, page.limit, |event| event.id.to_string()))
    }

    async fn events_by_ids(&self, ids: &[EventId]) -> StoreResult<Vec<EventRecord>> {
        crate::search::events_by_ids(self, ids).await
    }

    async fn search_documents(&self, scope: SearchScope<'_>) -> StoreResult<Vec<SearchDocument>> {
        crate::search::search_documents(self, scope).await
    }

    async fn insert_show(
        &self,
        show: &ShowRecord,
        layout: &VenueLayout,
        actor: &UserId,
    ) -> StoreResult<()> {
        let prices = serde_json::to_string(&show.prices)?;
        let waiting_room = serde_json::to_string(&show.waiting_room)?;
        let backend = self.backend();
        flatten(crate::write_tx!(self, |conn| async {
            sqlx::query(&format!(
                "INSERT INTO shows ({SHOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .bind(show.id.as_str())
            .bind(show.event_id.as_str())
            .bind(show.venue_id.as_str())
            .bind(to_millis(show.starts_at))
            .bind(to_millis(show.sales_start))
            .bind(prices.as_str())
            .bind(i64::from(show.hold_ttl_seconds))
            .bind(i64::from(show.max_tickets_per_user))
            .bind(waiting_room.as_str())
            .bind(show.status.as_str())
            .bind(show.version)
            .bind(to_millis(show.created_at))
            .bind(to_millis(show.updated_at))
            .execute(&mut *conn)
            .await?;
            insert_inventory(conn, backend, &show.id, layout).await?;
            write_audit(
                conn,
                show.created_at,
                &[show_audit(
                    "show.created",
                    show,
                    actor,
                    serde_json::json!({"venue_id": show.venue_id}),
                )],
            )
            .await?;
            Ok::<(), TxError<std::convert::Infallible>>(())
        }))
    }

    async fn show(&self, id: &ShowId) -> StoreResult<Option<ShowRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_show(&mut conn, id).await
    }

    async fn shows_of_event(&self, event_id: &EventId) -> StoreResult<Vec<ShowRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SHOW_COLUMNS} FROM shows WHERE event_id = $1 ORDER BY starts_at, id"
        ))
        .bind(event_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(show_from_row).collect()
    }

    async fn update_show(
        &self,
        id: &ShowId,
        patch: &ShowPatch,
        actor: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ShowRecord>> {
        let result = crate::write_tx!(self, |conn| async {
            let Some(mut show) = load_show(conn, id).await? else {
                return Err(TxError::Rejected(()));
            };
            if let Some(status) = patch.status {
                show.status = status;
            }
            if let Some(prices) = &patch.prices {
                show.prices = prices.clone();
            }
            if let Some(sales_start) = patch.sales_start {
                show.sales_start = sales_start;
            }
            if let Some(ttl) = patch.hold_ttl_seconds {
                show.hold_ttl_seconds = ttl;
            }
            if let Some(max) = patch.max_tickets_per_user {
                show.max_tickets_per_user = max;
            }
            if let Some(waiting_room) = &patch.waiting_room {
                show.waiting_room = waiting_room.clone();
            }
            show.updated_at = now;
            sqlx::query(
                "UPDATE shows SET status = $1, prices = $2, sales_start = $3, hold_ttl_seconds = $4, \
                 max_tickets_per_user = $5, waiting_room = $6, updated_at = $7 WHERE id = $8",
            )
            .bind(show.status.as_str())
            .bind(serde_json::to_string(&show.prices)?)
            .bind(to_millis(show.sales_start))
            .bind(i64::from(show.hold_ttl_seconds))
            .bind(i64::from(show.max_tickets_per_user))
            .bind(serde_json::to_string(&show.waiting_room)?)
            .bind(to_millis(now))
            .bind(show.id.as_str())
            .execute(&mut *conn)
            .await?;
            write_audit(
                conn,
                now,
                &[show_audit(
                    "show.updated",
                    &show,
                    actor,
                    serde_json::json!({"status": show.status.as_str()}),
                )],
            )
            .await?;
            Ok(show)
        });
        match result {
            Ok(Ok(show)) => Ok(Some(show)),
            Ok(Err(())) => Ok(None),
            Err(error) => Err(error),
        }
    }
}
