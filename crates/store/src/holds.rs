//! Holds: create, release, expire, and the payment state machine
//! `ACTIVE → PAYING → CONFIRMED | RELEASED | ACTIVE`.

use async_trait::async_trait;
use boxoffice_domain::{BookingId, Currency, HoldId, HoldStatus, Money, SeatId, ShowId, UserId};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::write_audit;
use crate::bookings::finish_booking;
use crate::changes::ChangeLog;
use crate::db::{flatten, from_millis, opt_from_millis, to_millis, Placeholders};
use crate::error::TxError;
use crate::idempotency::complete_in_tx;
use crate::outbox::write_outbox;
use crate::records::SeatStatus;
use crate::Backend;
use crate::{
    AuditEntry, BookingRecord, BookingRejection, HoldRecord, HoldRejection, HoldStateRejection,
    IdempotencyCompletion, InventoryStore, NewBooking, NewHold, OutboxEvent, PaymentAbort,
    PaymentStartRejection, SqlStore, StoreError, StoreResult, OUTBOX_CHANNEL_EVENTS,
    OUTBOX_CHANNEL_WEBHOOKS,
};

/// Due holds expired inside one hold-creating transaction. Bounded so that a
/// backlog (the sweeper was down) cannot make one request arbitrarily slow;
/// the sweeper clears the rest.
pub(crate) const LAZY_EXPIRY_BATCH_MAX: u32 = 200;

pub(crate) const HOLD_COLUMNS: &str =
    "id, show_id, user_id, status, items, total_amount, currency, created_at, \
     expires_at, payment_started_at, booking_id, ended_at";

pub(crate) fn hold_from_row(row: &AnyRow) -> StoreResult<HoldRecord> {
    let status: String = row.try_get("status")?;
    let items: String = row.try_get("items")?;
    let currency: String = row.try_get("currency")?;
    let currency = Currency::parse(&currency).map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(HoldRecord {
        id: HoldId::from_trusted(row.try_get("id")?),
        show_id: ShowId::from_trusted(row.try_get("show_id")?),
        user_id: UserId::from_trusted(row.try_get("user_id")?),
        status: HoldStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("hold status {status}")))?,
        items: serde_json::from_str(&items)?,
        total: Money {
            amount: row.try_get("total_amount")?,
            currency,
        },
        created_at: from_millis(row.try_get("created_at")?),
        expires_at: from_millis(row.try_get("expires_at")?),
        payment_started_at: opt_from_millis(row.try_get("payment_started_at")?),
        booking_id: row
            .try_get::<Option<String>, _>("booking_id")?
            .map(BookingId::from_trusted),
        ended_at: opt_from_millis(row.try_get("ended_at")?),
    })
}

pub(crate) async fn load_hold(
    conn: &mut AnyConnection,
    id: &HoldId,
) -> StoreResult<Option<HoldRecord>> {
    let row = sqlx::query(&format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(hold_from_row).transpose()
}

/// Puts a hold's places back on sale and gives the user's quota back.
pub(crate) async fn free_held_places(
    conn: &mut AnyConnection,
    hold: &HoldRecord,
    log: &mut ChangeLog,
) -> StoreResult<()> {
    log.hold_ended(&hold.show_id, &hold.id, &hold.items, SeatStatus::Available);
    let freed = sqlx::query(
        "UPDATE show_seats SET status = 'AVAILABLE', hold_id = NULL, held_until = NULL \
         WHERE hold_id = $1 AND status = 'HELD'",
    )
    .bind(hold.id.as_str())
    .execute(&mut *conn)
    .await?;
    if freed.rows_affected() != hold.items.seats.len() as u64 {
        return Err(StoreError::Other(format!(
            "hold {} owned {} seats, freed {}",
            hold.id,
            hold.items.seats.len(),
            freed.rows_affected()
        )));
    }
    for standing in &hold.items.standing {
        sqlx::query(
            "UPDATE show_standing SET held = held - $1 WHERE show_id = $2 AND section = $3",
        )
        .bind(i64::from(standing.quantity))
        .bind(hold.show_id.as_str())
        .bind(standing.section.as_str())
        .execute(&mut *conn)
        .await?;
    }
    give_back_quota(
        conn,
        &hold.user_id,
        &hold.show_id,
        hold.items.ticket_count(),
    )
    .await
}

pub(crate) async fn give_back_quota(
    conn: &mut AnyConnection,
    user: &UserId,
    show: &ShowId,
    tickets: u32,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE user_show_tickets SET tickets = tickets - $1 WHERE user_id = $2 AND show_id = $3",
    )
    .bind(i64::from(tickets))
    .bind(user.as_str())
    .bind(show.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) fn hold_audit(
    action: &'static str,
    hold: &HoldRecord,
    actor: Option<&UserId>,
    data: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        action,
        actor_user_id: actor.cloned(),
        show_id: Some(hold.show_id.clone()),
        hold_id: Some(hold.id.clone()),
        booking_id: hold.booking_id.clone(),
        data,
    }
}

/// Announces an expiry to other systems (NATS, outgoing webhooks), in the
/// expiring transaction.
async fn announce_expiry(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    hold: &HoldRecord,
) -> StoreResult<()> {
    let mut payload = places_json(hold);
    payload["hold_id"] = hold.id.as_str().into();
    payload["show_id"] = hold.show_id.as_str().into();
    payload["user_id"] = hold.user_id.as_str().into();
    let event = OutboxEvent {
        event_type: "hold.expired",
        channels: &[OUTBOX_CHANNEL_EVENTS, OUTBOX_CHANNEL_WEBHOOKS],
        payload,
    };
    write_outbox(conn, now, &event).await
}

pub(crate) fn places_json(hold: &HoldRecord) -> serde_json::Value {
    serde_json::json!({
        "seats": hold.items.seats.iter().map(|s| s.seat_id.as_str()).collect::<Vec<_>>(),
        "standing": hold.items.standing.iter().map(|s| serde_json::json!({"section": s.section, "quantity": s.quantity})).collect::<Vec<_>>(),
    })
}

/// Expires due `ACTIVE` holds (of one show, or of all shows) and frees their
/// places. The conditional `status = 'ACTIVE'` makes concurrent expirers safe.
pub(crate) async fn expire_due(
    conn: &mut AnyConnection,
    show_id: Option<&ShowId>,
    now: DateTime<Utc>,
    limit: u32,
    log: &mut ChangeLog,
) -> StoreResult<Vec<HoldRecord>> {
    match show_id {
        Some(show_id) => expire_where(conn, DueHolds::OfShow(show_id), now, limit, log).await,
        None => expire_where(conn, DueHolds::All, now, limit, log).await,
    }
}

/// Which due holds an expiry pass looks at.
enum DueHolds<'a> {
    All,
    OfShow(&'a ShowId),
    /// The ones a node's delay queue says are due (no table scan).
    Listed(&'a [HoldId], Backend),
}

async fn expire_where(
    conn: &mut AnyConnection,
    which: DueHolds<'_>,
    now: DateTime<Utc>,
    limit: u32,
    log: &mut ChangeLog,
) -> StoreResult<Vec<HoldRecord>> {
    // Every parameter is numbered in order of appearance and bound in that
    // order (see `Placeholders`): the list of IDs can be long.
    let backend = match &which {
        DueHolds::Listed(_, backend) => *backend,
        // Few parameters: `$n` is fine on both backends.
        DueHolds::All | DueHolds::OfShow(_) => Backend::Postgres,
    };
    let mut numbering = Placeholders::starting_at(backend, 1);
    let ended_at = numbering.next_placeholder();
    let condition = match &which {
        DueHolds::All => String::new(),
        DueHolds::OfShow(_) => format!("show_id = {} AND", numbering.next_placeholder()),
        DueHolds::Listed(ids, _) => {
            let list: Vec<String> = ids.iter().map(|_| numbering.next_placeholder()).collect();
            format!("id IN ({}) AND", list.join(", "))
        }
    };
    let (due, limit_at, due_again) = (
        numbering.next_placeholder(),
        numbering.next_placeholder(),
        numbering.next_placeholder(),
    );
    let sql = format!(
        "UPDATE holds SET status = 'EXPIRED', ended_at = {ended_at} WHERE id IN \
         (SELECT id FROM holds WHERE {condition} status = 'ACTIVE' AND expires_at <= {due} ORDER BY expires_at LIMIT {limit_at}) \
         AND status = 'ACTIVE' AND expires_at <= {due_again} RETURNING {HOLD_COLUMNS}"
    );
    let mut query = sqlx::query(&sql).bind(to_millis(now));
    match which {
        DueHolds::All => {}
        DueHolds::OfShow(show_id) => query = query.bind(show_id.as_str()),
        DueHolds::Listed(ids, _) => {
            for id in ids {
                query = query.bind(id.as_str());
            }
        }
    }
    let query = query
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .bind(to_millis(now));
    let rows = query.fetch_all(&mut *conn).await?;
    let mut expired = Vec::with_capacity(rows.len());
    for row in &rows {
        let hold = hold_from_row(row)?;
        free_held_places(conn, &hold, log).await?;
        write_audit(
            conn,
            now,
            &[hold_audit("hold.expired", &hold, None, places_json(&hold))],
        )
        .await?;
        announce_expiry(conn, now, &hold).await?;
        expired.push(hold);
    }
    Ok(expired)
}

/// Counts `requested` more places against the user's limit for the show
/// if the total stays within `limit` (invariant 6); `false` when it would not
/// (nothing changed then).
pub(crate) async fn add_to_quota(
    conn: &mut AnyConnection,
    user_id: &UserId,
    show_id: &ShowId,
    requested: u32,
    limit: u32,
) -> StoreResult<bool> {
    sqlx::query("INSERT INTO user_show_tickets (user_id, show_id, tickets) VALUES ($1, $2, 0) ON CONFLICT (user_id, show_id) DO NOTHING")
        .bind(user_id.as_str())
        .bind(show_id.as_str())
        .execute(&mut *conn)
        .await?;
    let taken = sqlx::query(
        "UPDATE user_show_tickets SET tickets = tickets + $1 \
         WHERE user_id = $2 AND show_id = $3 AND tickets + $1 <= $4",
    )
    .bind(i64::from(requested))
    .bind(user_id.as_str())
    .bind(show_id.as_str())
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Reserves the user's quota for `requested` more places (invariant 6).
async fn take_quota(
    conn: &mut AnyConnection,
    hold: &NewHold,
    requested: u32,
) -> Result<(), TxError<HoldRejection>> {
    if add_to_quota(
        conn,
        &hold.user_id,
        &hold.show_id,
        requested,
        hold.max_tickets_per_user,
    )
    .await?
    {
        return Ok(());
    }
    let already: i64 =
        sqlx::query("SELECT tickets FROM user_show_tickets WHERE user_id = $1 AND show_id = $2")
            .bind(hold.user_id.as_str())
            .bind(hold.show_id.as_str())
            .fetch_one(&mut *conn)
            .await?
            .try_get("tickets")?;
    Err(TxError::Rejected(HoldRejection::TicketLimitExceeded {
        limit: hold.max_tickets_per_user,
        already: u32::try_from(already).unwrap_or(u32::MAX),
        requested,
    }))
}

async fn take_places(
    conn: &mut AnyConnection,
    hold: &NewHold,
    log: &mut ChangeLog,
) -> Result<(), TxError<HoldRejection>> {
    // Seat-ID order: two transactions never wait on each other's rows in a cycle.
    let mut seat_ids: Vec<&SeatId> = hold.items.seats.iter().map(|seat| &seat.seat_id).collect();
    seat_ids.sort();
    let mut unavailable = Vec::new();
    for seat_id in seat_ids {
        let taken = sqlx::query(
            "UPDATE show_seats SET status = 'HELD', hold_id = $1, held_until = $2 \
             WHERE show_id = $3 AND seat_id = $4 AND status = 'AVAILABLE'",
        )
        .bind(hold.id.as_str())
        .bind(to_millis(hold.expires_at))
        .bind(hold.show_id.as_str())
        .bind(seat_id.as_str())
        .execute(&mut *conn)
        .await?;
        if taken.rows_affected() != 1 {
            unavailable.push(seat_id.clone());
        }
    }
    if !unavailable.is_empty() {
        return Err(TxError::Rejected(HoldRejection::SeatsUnavailable {
            seat_ids: unavailable,
        }));
    }
    for standing in &hold.items.standing {
        let taken = sqlx::query(
            "UPDATE show_standing SET held = held + $1 \
             WHERE show_id = $2 AND section = $3 AND held + booked + $1 <= capacity",
        )
        .bind(i64::from(standing.quantity))
        .bind(hold.show_id.as_str())
        .bind(standing.section.as_str())
        .execute(&mut *conn)
        .await?;
        if taken.rows_affected() != 1 {
            let row = sqlx::query("SELECT capacity - held - booked AS available FROM show_standing WHERE show_id = $1 AND section = $2")
                .bind(hold.show_id.as_str())
                .bind(standing.section.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            let available = match row {
                Some(row) => row.try_get::<i64, _>("available")?,
                None => 0,
            };
            return Err(TxError::Rejected(HoldRejection::StandingUnavailable {
                section: standing.section.clone(),
                available: u32::try_from(available.max(0)).unwrap_or(0),
            }));
        }
    }
    log.held(
        &hold.show_id,
        &hold.id,
        &hold.items,
        Some(hold.expires_at),
        true,
    );
    Ok(())
}

pub(crate) async fn insert_hold(
    conn: &mut AnyConnection,
    hold: &NewHold,
) -> StoreResult<HoldRecord> {
    sqlx::query(
        "INSERT INTO holds (id, show_id, user_id, status, items, ticket_count, total_amount, currency, created_at, expires_at) \
         VALUES ($1, $2, $3, 'ACTIVE', $4, $5, $6, $7, $8, $9)",
    )
    .bind(hold.id.as_str())
    .bind(hold.show_id.as_str())
    .bind(hold.user_id.as_str())
    .bind(serde_json::to_string(&hold.items)?)
    .bind(i64::from(hold.items.ticket_count()))
    .bind(hold.total.amount)
    .bind(hold.total.currency.as_str())
    .bind(to_millis(hold.created_at))
    .bind(to_millis(hold.expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(HoldRecord {
        id: hold.id.clone(),
        show_id: hold.show_id.clone(),
        user_id: hold.user_id.clone(),
        status: HoldStatus::Active,
        items: hold.items.clone(),
        total: hold.total.clone(),
        created_at: hold.created_at,
        expires_at: hold.expires_at,
        payment_started_at: None,
        booking_id: None,
        ended_at: None,
    })
}

#[async_trait]
impl InventoryStore for SqlStore {
    fn subscribe_changes(&self, listener: std::sync::Arc<dyn crate::ChangeListener>) {
        self.add_listener(listener);
    }

    async fn show_version(&self, show_id: &ShowId) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT version FROM shows WHERE id = $1")
            .bind(show_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|row| row.try_get::<i64, _>("version"))
            .transpose()?)
    }

    async fn inventory_snapshot(&self, show_id: &ShowId) -> StoreResult<crate::InventorySnapshot> {
        crate::bookings::inventory_snapshot(&self.pool, self.backend(), show_id).await
    }

    async fn sales_totals(&self, show_id: &ShowId) -> StoreResult<(i64, u64)> {
        crate::bookings::sales_totals(&self.pool, show_id).await
    }

    async fn create_holds_batch(
        &self,
        show_id: &ShowId,
        holds: &[(NewHold, Option<IdempotencyCompletion>)],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Result<HoldRecord, HoldRejection>>> {
        let backend = self.backend();
        let result = crate::write_tx!(self, |conn| async {
            crate::batch::holds_batch_tx(conn, backend, self.feed_node(), show_id, holds, now).await
        });
        flatten(self.published(result))
    }

    async fn create_hold(
        &self,
        hold: &NewHold,
        completion: Option<&IdempotencyCompletion>,
    ) -> StoreResult<Result<HoldRecord, HoldRejection>> {
        let result = crate::write_tx!(self, |conn| async {
            let mut log = ChangeLog::default();
            expire_due(
                conn,
                Some(&hold.show_id),
                hold.created_at,
                LAZY_EXPIRY_BATCH_MAX,
                &mut log,
            )
            .await?;
            take_quota(conn, hold, hold.items.ticket_count()).await?;
            take_places(conn, hold, &mut log).await?;
            let record = insert_hold(conn, hold).await?;
            write_audit(
                conn,
                hold.created_at,
                &[hold_audit(
                    "hold.created",
                    &record,
                    Some(&hold.user_id),
                    places_json(&record),
                )],
            )
            .await?;
            if let Some(completion) = completion {
                complete_in_tx(conn, completion, hold.created_at).await?;
            }
            Ok((record, log.finish(conn, self.feed_node()).await?))
        });
        self.published(result)
    }

    async fn hold(&self, id: &HoldId) -> StoreResult<Option<HoldRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_hold(&mut conn, id).await
    }

    async fn release_hold(
        &self,
        id: &HoldId,
        user: Option<&UserId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<HoldRecord, HoldStateRejection>> {
        let result = crate::write_tx!(self, |conn| async {
            let mut log = ChangeLog::default();
            let Some(current) = load_hold(conn, id).await? else {
                return Err(TxError::Rejected(HoldStateRejection::NotFound));
            };
            if user.is_some_and(|user| *user != current.user_id) {
                return Err(TxError::Rejected(HoldStateRejection::NotFound));
            }
            let row = sqlx::query(&format!(
                "UPDATE holds SET status = 'RELEASED', ended_at = $1 WHERE id = $2 AND status = 'ACTIVE' RETURNING {HOLD_COLUMNS}"
            ))
            .bind(to_millis(now))
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else {
                return Err(TxError::Rejected(HoldStateRejection::NotActive));
            };
            let hold = hold_from_row(&row)?;
            free_held_places(conn, &hold, &mut log).await?;
            write_audit(
                conn,
                now,
                &[hold_audit("hold.released", &hold, user, places_json(&hold))],
            )
            .await?;
            Ok((hold, log.finish(conn, self.feed_node()).await?))
        });
        self.published(result)
    }

    async fn expire_due_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<HoldRecord>> {
        let result = crate::write_tx!(self, |conn| async {
            let mut log = ChangeLog::default();
            let expired = expire_due(conn, None, now, limit, &mut log).await?;
            Ok::<_, TxError<std::convert::Infallible>>((
                expired,
                log.finish(conn, self.feed_node()).await?,
            ))
        });
        flatten(self.published(result))
    }

    async fn expire_holds(
        &self,
        ids: &[HoldId],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<HoldRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let limit = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        let result = crate::write_tx!(self, |conn| async {
            let mut log = ChangeLog::default();
            let expired = expire_where(
                conn,
                DueHolds::Listed(ids, self.backend()),
                now,
                limit,
                &mut log,
            )
            .await?;
            Ok::<_, TxError<std::convert::Infallible>>((
                expired,
                log.finish(conn, self.feed_node()).await?,
            ))
        });
        flatten(self.published(result))
    }

    async fn active_hold_deadlines(&self) -> StoreResult<Vec<(HoldId, DateTime<Utc>)>> {
        let rows = sqlx::query("SELECT id, expires_at FROM holds WHERE status = 'ACTIVE'")
            .fetch_all(&self.pool)
            .await?;
        let mut deadlines = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            let expires_at: i64 = row.try_get("expires_at")?;
            deadlines.push((HoldId::from_trusted(id), from_millis(expires_at)));
        }
        Ok(deadlines)
    }

    async fn begin_payment(
        &self,
        id: &HoldId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<HoldRecord, PaymentStartRejection>> {
        let result = crate::write_tx!(self, |conn| async {
            let mut log = ChangeLog::default();
            let Some(hold) = load_hold(conn, id).await? else {
                return Err(TxError::Rejected(PaymentStartRejection::NotFound));
            };
            if hold.user_id != *user {
                return Err(TxError::Rejected(PaymentStartRejection::NotFound));
            }
            match hold.status {
                HoldStatus::Expired => {
                    return Err(TxError::Rejected(PaymentStartRejection::Expired))
                }
                HoldStatus::Active if hold.expires_at <= now => {
                    // Its time is up even if the sweeper has not run: say so
                    // (the sweeper will free the places within seconds).
                    return Err(TxError::Rejected(PaymentStartRejection::Expired));
                }
                HoldStatus::Active => {}
                _ => return Err(TxError::Rejected(PaymentStartRejection::NotActive)),
            }
            // A hold whose charge is being refunded (a charge that came
            // after its payment was given up) is never paid again: the
            // gateway would replay that refunded charge under the hold's key.
            let row = sqlx::query(&format!(
                "UPDATE holds SET status = 'PAYING', payment_started_at = $1 \
                 WHERE id = $2 AND status = 'ACTIVE' AND expires_at > $1 \
                 AND refund_started_at IS NULL RETURNING {HOLD_COLUMNS}"
            ))
            .bind(to_millis(now))
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else {
                return Err(TxError::Rejected(PaymentStartRejection::NotActive));
            };
            let paying = hold_from_row(&row)?;
            // A paying hold never lapses: its seats stay held until the
            // payment's outcome is known.
            sqlx::query(
                "UPDATE show_seats SET held_until = NULL WHERE hold_id = $1 AND status = 'HELD'",
            )
            .bind(id.as_str())
            .execute(&mut *conn)
            .await?;
            write_audit(
                conn,
                now,
                &[hold_audit(
                    "payment.started",
                    &paying,
                    Some(user),
                    serde_json::json!({"amount": paying.total}),
                )],
            )
            .await?;
            log.held(&paying.show_id, &paying.id, &paying.items, None, false);
            Ok((paying, log.finish(conn, self.feed_node()).await?))
        });
        self.published(result)
    }

    async fn complete_booking(
        &self,
        booking: &NewBooking,
        now: DateTime<Utc>,
        completion: Option<&IdempotencyCompletion>,
    ) -> StoreResult<Result<BookingRecord, BookingRejection>> {
        let result = crate::write_tx!(self, |conn| async {
            let mut log = ChangeLog::default();
            let record = finish_booking(conn, booking, now, &mut log).await?;
            if let Some(completion) = completion {
                complete_in_tx(conn, completion, now).await?;
            }
            Ok((record, log.finish(conn, self.feed_node()).await?))
        });
        self.published(result)
    }

    async fn abort_payment(
        &self,
        id: &HoldId,
        abort: PaymentAbort,
        now: DateTime<Utc>,
        completion: Option<&IdempotencyCompletion>,
    ) -> StoreResult<Option<HoldRecord>> {
        let result = crate::write_tx!(self, |conn| async {
            let log = ChangeLog::default();
            let Some(hold) = load_hold(conn, id).await? else {
                return Ok::<_, TxError<std::convert::Infallible>>((
                    None,
                    log.finish(conn, self.feed_node()).await?,
                ));
            };
            if hold.status != HoldStatus::Paying {
                return Ok((None, log.finish(conn, self.feed_node()).await?));
            }
            let mut log = log;
            let (new_status, frees) = match abort {
                PaymentAbort::Declined => ("RELEASED", true),
                PaymentAbort::Unavailable if hold.expires_at <= now => ("EXPIRED", true),
                PaymentAbort::Unavailable => ("ACTIVE", false),
            };
            let ended_at = frees.then(|| to_millis(now));
            let row = sqlx::query(&format!(
                "UPDATE holds SET status = $1, ended_at = $2 WHERE id = $3 AND status = 'PAYING' RETURNING {HOLD_COLUMNS}"
            ))
            .bind(new_status)
            .bind(ended_at)
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else {
                return Ok((None, log.finish(conn, self.feed_node()).await?));
            };
            let updated = hold_from_row(&row)?;
            let mut audit = Vec::new();
            match abort {
                PaymentAbort::Declined => {
                    audit.push(hold_audit(
                        "payment.declined",
                        &updated,
                        Some(&hold.user_id),
                        serde_json::json!({"amount": hold.total}),
                    ));
                    audit.push(hold_audit(
                        "hold.released",
                        &updated,
                        Some(&hold.user_id),
                        places_json(&updated),
                    ));
                }
                PaymentAbort::Unavailable => {
                    audit.push(hold_audit(
                        "payment.failed",
                        &updated,
                        Some(&hold.user_id),
                        serde_json::json!({"reason": "gateway_unavailable"}),
                    ));
                    if frees {
                        audit.push(hold_audit(
                            "hold.expired",
                            &updated,
                            None,
                            places_json(&updated),
                        ));
                    }
                }
            }
            if frees {
                free_held_places(conn, &updated, &mut log).await?;
                if new_status == "EXPIRED" {
                    announce_expiry(conn, now, &updated).await?;
                }
            } else {
                log.held(
                    &updated.show_id,
                    &updated.id,
                    &updated.items,
                    Some(updated.expires_at),
                    false,
                );
                sqlx::query(
                    "UPDATE show_seats SET held_until = $1 WHERE hold_id = $2 AND status = 'HELD'",
                )
                .bind(to_millis(updated.expires_at))
                .bind(id.as_str())
                .execute(&mut *conn)
                .await?;
            }
            write_audit(conn, now, &audit).await?;
            if let Some(completion) = completion {
                complete_in_tx(conn, completion, now).await?;
            }
            Ok((Some(updated), log.finish(conn, self.feed_node()).await?))
        });
        flatten(self.published(result))
    }

    async fn holds_in_payment(
        &self,
        started_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<HoldRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {HOLD_COLUMNS} FROM holds WHERE status = 'PAYING' AND payment_started_at < $1 ORDER BY payment_started_at LIMIT $2"
        ))
        .bind(to_millis(started_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(hold_from_row).collect()
    }

    async fn booking(
        &self,
        id: &boxoffice_domain::BookingId,
    ) -> StoreResult<Option<BookingRecord>> {
        crate::bookings::load_booking(&self.pool, "id", id.as_str()).await
    }

    async fn booking_of_hold(&self, hold_id: &HoldId) -> StoreResult<Option<BookingRecord>> {
        crate::bookings::load_booking(&self.pool, "hold_id", hold_id.as_str()).await
    }

    async fn booking_of_ticket(
        &self,
        ticket_id: &boxoffice_domain::TicketId,
    ) -> StoreResult<Option<BookingRecord>> {
        let booking_id: Option<String> =
            sqlx::query_scalar("SELECT booking_id FROM tickets WHERE id = $1")
                .bind(ticket_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        match booking_id {
            Some(id) => crate::bookings::load_booking(&self.pool, "id", &id).await,
            None => Ok(None),
        }
    }

    async fn list_bookings(
        &self,
        filter: &crate::BookingFilter,
        page: &crate::PageRequest,
    ) -> StoreResult<crate::Page<BookingRecord>> {
        crate::bookings::list_bookings(&self.pool, filter, page).await
    }

    async fn cancel_booking(
        &self,
        id: &boxoffice_domain::BookingId,
        actor: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<BookingRecord, crate::CancelRejection>> {
        let result = crate::write_tx!(self, |conn| async {
            let mut log = ChangeLog::default();
            let booking = crate::bookings::cancel_in_tx(conn, id, actor, now, &mut log).await?;
            Ok((booking, log.finish(conn, self.feed_node()).await?))
        });
        self.published(result)
    }

    async fn check_in(
        &self,
        ticket_id: &boxoffice_domain::TicketId,
        actor: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<crate::TicketRecord, crate::CheckinRejection>> {
        crate::write_tx!(self, |conn| async {
            crate::bookings::check_in_tx(conn, ticket_id, actor, now).await
        })
    }
}
