//! The waiting room in the database (embedded mode): one `queue_rooms` row
//! per show carries the admission clock, `queue_tickets` the places. The
//! rules are the domain's (`boxoffice_domain::waiting_room`); this module
//! only makes each step atomic. Reads that change nothing take no lock, so
//! polling costs one indexed read.

use std::convert::Infallible;

use async_trait::async_trait;
use boxoffice_domain::waiting_room::{
    admission_lapsed, admit_if_due, QueuePlace, RoomConfig, RoomState,
};
use boxoffice_domain::{QueueTicketId, ShowId, UserId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::flatten;
use crate::error::TxError;
use crate::{
    QueueJoin, QueueJoinOutcome, QueueSnapshot, QueueStore, QueueTicketRecord, SqlStore,
    StoreResult,
};

const ROOM_COLUMNS: &str = "pre_count, tail, opened, anchor_place, anchor_ms, admit_per_minute, \
     paused, sales_start, config_version";
const TICKET_COLUMNS: &str = "id, show_id, user_id, place, joined_at, admitted_at";

/// Spent challenges are pruned once in this many spends.
const POW_PRUNE_EVERY: u64 = 256;

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn stored(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn room_from_row(row: &AnyRow) -> Result<RoomState, sqlx::Error> {
    Ok(RoomState {
        pre_count: count(row.try_get("pre_count")?),
        tail: count(row.try_get("tail")?),
        opened: row.try_get::<i64, _>("opened")? != 0,
        anchor_place: count(row.try_get("anchor_place")?),
        anchor_ms: row.try_get("anchor_ms")?,
        admit_per_minute: u32::try_from(row.try_get::<i64, _>("admit_per_minute")?)
            .unwrap_or(1)
            .max(1),
        paused: row.try_get::<i64, _>("paused")? != 0,
        sales_start_ms: row.try_get("sales_start")?,
        config_version: row.try_get("config_version")?,
    })
}

fn ticket_from_row(row: &AnyRow) -> Result<QueueTicketRecord, sqlx::Error> {
    Ok(QueueTicketRecord {
        id: QueueTicketId::from_trusted(row.try_get("id")?),
        show_id: ShowId::from_trusted(row.try_get("show_id")?),
        user_id: UserId::from_trusted(row.try_get("user_id")?),
        place: row.try_get::<Option<i64>, _>("place")?.map(count),
        joined_at_ms: row.try_get("joined_at")?,
        admitted_at_ms: row.try_get("admitted_at")?,
    })
}

/// Creates the room from the show's settings if it has none, then locks it
/// for this transaction (`UPDATE … RETURNING` locks the row on PostgreSQL
/// and needs no backend-specific SQL; SQLite has one writer anyway).
async fn lock_room(
    conn: &mut AnyConnection,
    show_id: &ShowId,
    config: &RoomConfig,
) -> StoreResult<RoomState> {
    let fresh = RoomState::new(config);
    sqlx::query(&format!(
        "INSERT INTO queue_rooms (show_id, {ROOM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (show_id) DO NOTHING"
    ))
    .bind(show_id.as_str())
    .bind(stored(fresh.pre_count))
    .bind(stored(fresh.tail))
    .bind(i64::from(fresh.opened))
    .bind(stored(fresh.anchor_place))
    .bind(fresh.anchor_ms)
    .bind(i64::from(fresh.admit_per_minute))
    .bind(i64::from(fresh.paused))
    .bind(fresh.sales_start_ms)
    .bind(fresh.config_version)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(&format!(
        "UPDATE queue_rooms SET tail = tail WHERE show_id = $1 RETURNING {ROOM_COLUMNS}"
    ))
    .bind(show_id.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok(room_from_row(&row)?)
}

async fn save_room(
    conn: &mut AnyConnection,
    show_id: &ShowId,
    room: &RoomState,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE queue_rooms SET pre_count = $1, tail = $2, opened = $3, anchor_place = $4, anchor_ms = $5, \
         admit_per_minute = $6, paused = $7, sales_start = $8, config_version = $9 WHERE show_id = $10",
    )
    .bind(stored(room.pre_count))
    .bind(stored(room.tail))
    .bind(i64::from(room.opened))
    .bind(stored(room.anchor_place))
    .bind(room.anchor_ms)
    .bind(i64::from(room.admit_per_minute))
    .bind(i64::from(room.paused))
    .bind(room.sales_start_ms)
    .bind(room.config_version)
    .bind(show_id.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The opening: the pre-queue's places are its ranks by random key (ties by
/// ticket ID, as `domain::waiting_room::pre_queue_order`).
async fn rank_pre_queue(conn: &mut AnyConnection, show_id: &ShowId) -> StoreResult<()> {
    sqlx::query(
        "UPDATE queue_tickets SET place = ranked.place FROM \
         (SELECT id, ROW_NUMBER() OVER (ORDER BY pre_key, id) AS place FROM queue_tickets \
          WHERE show_id = $1 AND pre_key IS NOT NULL) AS ranked \
         WHERE queue_tickets.id = ranked.id",
    )
    .bind(show_id.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn record_admission(conn: &mut AnyConnection, ticket: &QueueTicketRecord) -> StoreResult<()> {
    sqlx::query("UPDATE queue_tickets SET admitted_at = $1 WHERE id = $2 AND admitted_at IS NULL")
        .bind(ticket.admitted_at_ms)
        .bind(ticket.id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn ticket_by_id(
    conn: &mut AnyConnection,
    show_id: &ShowId,
    ticket_id: &QueueTicketId,
) -> StoreResult<Option<QueueTicketRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {TICKET_COLUMNS} FROM queue_tickets WHERE id = $1 AND show_id = $2"
    ))
    .bind(ticket_id.as_str())
    .bind(show_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(ticket_from_row).transpose()?)
}

/// Brings the room up to date (configuration, opening) inside a transaction
/// that holds its lock. Returns whether the room row must be written back.
async fn settle_room(
    conn: &mut AnyConnection,
    show_id: &ShowId,
    room: &mut RoomState,
    config: &RoomConfig,
    now_ms: i64,
) -> StoreResult<bool> {
    let mut changed = room.apply_config(config, now_ms);
    if room.opening_due(now_ms) {
        room.open();
        rank_pre_queue(conn, show_id).await?;
        changed = true;
    }
    Ok(changed)
}

impl SqlStore {
    async fn join_in_tx(
        conn: &mut AnyConnection,
        join: &QueueJoin<'_>,
    ) -> StoreResult<QueueJoinOutcome> {
        let now = join.now_ms;
        let mut room = lock_room(conn, join.show_id, &join.config).await?;
        let room_changed = settle_room(conn, join.show_id, &mut room, &join.config, now).await?;
        let existing = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM queue_tickets WHERE show_id = $1 AND user_id = $2 \
             ORDER BY joined_at DESC, id DESC LIMIT 1"
        ))
        .bind(join.show_id.as_str())
        .bind(join.user_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let existing = existing.as_ref().map(ticket_from_row).transpose()?;
        if let Some(mut ticket) = existing {
            if !admission_lapsed(ticket.admitted_at_ms, now, join.admission_ttl_ms) {
                if admit_if_due(&room, ticket.place, &mut ticket.admitted_at_ms, now) {
                    record_admission(conn, &ticket).await?;
                }
                if room_changed {
                    save_room(conn, join.show_id, &room).await?;
                }
                return Ok(QueueJoinOutcome::Existing(QueueSnapshot { room, ticket }));
            }
        }
        let (place, pre_key) = match room.assign_place(now, join.pre_queue_key) {
            QueuePlace::At(place) => (Some(place), None),
            QueuePlace::PreQueue { key } => (None, Some(key)),
        };
        let mut ticket = QueueTicketRecord {
            id: join.new_ticket_id.clone(),
            show_id: join.show_id.clone(),
            user_id: join.user_id.clone(),
            place,
            joined_at_ms: now,
            admitted_at_ms: None,
        };
        admit_if_due(&room, ticket.place, &mut ticket.admitted_at_ms, now);
        sqlx::query(&format!(
            "INSERT INTO queue_tickets ({TICKET_COLUMNS}, pre_key) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(ticket.id.as_str())
        .bind(ticket.show_id.as_str())
        .bind(ticket.user_id.as_str())
        .bind(ticket.place.map(stored))
        .bind(ticket.joined_at_ms)
        .bind(ticket.admitted_at_ms)
        .bind(pre_key)
        .execute(&mut *conn)
        .await?;
        save_room(conn, join.show_id, &room).await?;
        Ok(QueueJoinOutcome::Joined(QueueSnapshot { room, ticket }))
    }

    async fn settle_ticket_in_tx(
        conn: &mut AnyConnection,
        show_id: &ShowId,
        ticket_id: &QueueTicketId,
        config: &RoomConfig,
        now_ms: i64,
    ) -> StoreResult<Option<QueueSnapshot>> {
        let mut room = lock_room(conn, show_id, config).await?;
        if settle_room(conn, show_id, &mut room, config, now_ms).await? {
            save_room(conn, show_id, &room).await?;
        }
        let Some(mut ticket) = ticket_by_id(conn, show_id, ticket_id).await? else {
            return Ok(None);
        };
        if admit_if_due(&room, ticket.place, &mut ticket.admitted_at_ms, now_ms) {
            record_admission(conn, &ticket).await?;
        }
        Ok(Some(QueueSnapshot { room, ticket }))
    }
}

#[async_trait]
impl QueueStore for SqlStore {
    async fn join_queue(&self, join: &QueueJoin<'_>) -> StoreResult<QueueJoinOutcome> {
        flatten(crate::write_tx!(self, |conn| async move {
            Ok::<_, TxError<Infallible>>(Self::join_in_tx(conn, join).await?)
        }))
    }

    async fn queue_ticket(
        &self,
        show_id: &ShowId,
        ticket_id: &QueueTicketId,
        config: &RoomConfig,
        now_ms: i64,
    ) -> StoreResult<Option<QueueSnapshot>> {
        // The common poll changes nothing: read without a lock first.
        let mut conn = self.pool.acquire().await?;
        let room = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS} FROM queue_rooms WHERE show_id = $1"
        ))
        .bind(show_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(room) = room.as_ref().map(room_from_row).transpose()? else {
            return Ok(None);
        };
        let Some(ticket) = ticket_by_id(&mut conn, show_id, ticket_id).await? else {
            return Ok(None);
        };
        drop(conn);
        let mut probe_room = room;
        let mut probe_admitted = ticket.admitted_at_ms;
        let needs_write = probe_room.apply_config(config, now_ms)
            || probe_room.opening_due(now_ms)
            || admit_if_due(&probe_room, ticket.place, &mut probe_admitted, now_ms);
        if !needs_write {
            return Ok(Some(QueueSnapshot { room, ticket }));
        }
        flatten(crate::write_tx!(self, |conn| async move {
            Ok::<_, TxError<Infallible>>(
                Self::settle_ticket_in_tx(conn, show_id, ticket_id, config, now_ms).await?,
            )
        }))
    }

    async fn configure_queue(
        &self,
        show_id: &ShowId,
        config: &RoomConfig,
        now_ms: i64,
    ) -> StoreResult<()> {
        flatten(crate::write_tx!(self, |conn| async move {
            let mut room = lock_room(conn, show_id, config).await?;
            if settle_room(conn, show_id, &mut room, config, now_ms).await? {
                save_room(conn, show_id, &room).await?;
            }
            Ok::<_, TxError<Infallible>>(())
        }))
    }

    async fn spend_challenge(
        &self,
        challenge_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let _guard = self.write_guard().await;
        let inserted = sqlx::query(
            "INSERT INTO pow_spent (challenge_id, expires_at) VALUES ($1, $2) ON CONFLICT (challenge_id) DO NOTHING",
        )
        .bind(challenge_id)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        if rand::random::<u64>().is_multiple_of(POW_PRUNE_EVERY) {
            sqlx::query("DELETE FROM pow_spent WHERE expires_at < $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
        }
        Ok(inserted.rows_affected() == 1)
    }
}
