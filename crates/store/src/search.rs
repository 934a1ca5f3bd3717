//! What the search index reads: events with their shows and venues, all of
//! them or those changed since a time, and events by ID for the answers.

use std::collections::HashMap;

use boxoffice_domain::{EventId, ShowId, ShowStatus};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::catalog::event_from_row;
use crate::db::{from_millis, to_millis, Placeholders};
use crate::{
    EventRecord, SearchDocument, SearchScope, SearchShow, SqlStore, StoreError, StoreResult,
};

/// Ids per `events_by_ids` call: a page of search results is at most 100.
pub const EVENTS_BY_IDS_MAX: usize = 1_000;
/// Events per page of `SearchScope::All`: bounds the rows held at once
/// while the index is built (a few MB).
pub const SEARCH_PAGE_EVENTS_MAX: u32 = 10_000;

/// The shows' columns the index needs, with their venue's name and city.
const SEARCH_SHOW_COLUMNS: &str = "s.id, s.event_id, s.starts_at, s.status, s.updated_at, \
     v.name AS venue_name, v.city AS venue_city";

/// Events whose row, or one of whose shows' rows, changed at or after `$1`.
/// Both halves use an `updated_at` index (migration 0003).
const CHANGED_EVENT_IDS: &str = "SELECT id FROM events WHERE updated_at >= $1 \
     UNION SELECT event_id FROM shows WHERE updated_at >= $1";

fn search_show_from_row(row: &AnyRow) -> StoreResult<(EventId, SearchShow)> {
    let status: String = row.try_get("status")?;
    Ok((
        EventId::from_trusted(row.try_get("event_id")?),
        SearchShow {
            id: ShowId::from_trusted(row.try_get("id")?),
            starts_at: from_millis(row.try_get("starts_at")?),
            status: ShowStatus::parse(&status)
                .ok_or_else(|| StoreError::Other(format!("unknown show status {status}")))?,
            venue_name: row.try_get("venue_name")?,
            city: row.try_get("venue_city")?,
            updated_at: from_millis(row.try_get("updated_at")?),
        },
    ))
}

pub(crate) async fn events_by_ids(
    store: &SqlStore,
    ids: &[EventId],
) -> StoreResult<Vec<EventRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if ids.len() > EVENTS_BY_IDS_MAX {
        return Err(StoreError::Other(format!(
            "events_by_ids takes at most {EVENTS_BY_IDS_MAX} ids, got {}",
            ids.len()
        )));
    }
    let mut numbering = Placeholders::starting_at(store.backend(), 1);
    let placeholders: Vec<String> = ids.iter().map(|_| numbering.next_placeholder()).collect();
    let sql = format!(
        "SELECT * FROM events WHERE id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(id.as_str());
    }
    let rows = query.fetch_all(&store.pool).await?;
    rows.iter().map(event_from_row).collect()
}

pub(crate) async fn search_documents(
    store: &SqlStore,
    scope: SearchScope<'_>,
) -> StoreResult<Vec<SearchDocument>> {
    // Two reads, not one transaction: a show created between them is either
    // missing (and found by the next poll, its `updated_at` being recent) or
    // attached to its event; never wrong for long.
    let (event_rows, show_rows) = match scope {
        SearchScope::All { after, limit } => {
            let after = after.map(|id| id.as_str()).unwrap_or("");
            let limit = i64::from(limit.min(SEARCH_PAGE_EVENTS_MAX));
            (
                sqlx::query("SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&store.pool)
                    .await?,
                sqlx::query(&format!(
                    "SELECT {SEARCH_SHOW_COLUMNS} FROM shows s JOIN venues v ON v.id = s.venue_id \
                     WHERE s.event_id IN (SELECT id FROM events WHERE id > $1 ORDER BY id LIMIT $2)"
                ))
                .bind(after)
                .bind(limit)
                .fetch_all(&store.pool)
                .await?,
            )
        }
        SearchScope::ChangedSince(since) => (
            sqlx::query(&format!(
                "SELECT * FROM events WHERE id IN ({CHANGED_EVENT_IDS})"
            ))
            .bind(to_millis(since))
            .fetch_all(&store.pool)
            .await?,
            sqlx::query(&format!(
                "SELECT {SEARCH_SHOW_COLUMNS} FROM shows s JOIN venues v ON v.id = s.venue_id \
                 WHERE s.event_id IN ({CHANGED_EVENT_IDS})"
            ))
            .bind(to_millis(since))
            .fetch_all(&store.pool)
            .await?,
        ),
        SearchScope::Event(id) => (
            sqlx::query("SELECT * FROM events WHERE id = $1")
                .bind(id.as_str())
                .fetch_all(&store.pool)
                .await?,
            sqlx::query(&format!(
                "SELECT {SEARCH_SHOW_COLUMNS} FROM shows s JOIN venues v ON v.id = s.venue_id \
                 WHERE s.event_id = $1"
            ))
            .bind(id.as_str())
            .fetch_all(&store.pool)
            .await?,
        ),
    };
    let mut shows: HashMap<EventId, Vec<SearchShow>> = HashMap::new();
    for row in &show_rows {
        let (event_id, show) = search_show_from_row(row)?;
        shows.entry(event_id).or_default().push(show);
    }
    // In the order of `event_rows` (by ID for `All`, which pages on it).
    event_rows
        .iter()
        .map(|row| {
            let event = event_from_row(row)?;
            let mut shows = shows.remove(&event.id).unwrap_or_default();
            shows.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
            Ok(SearchDocument { event, shows })
        })
        .collect()
}
