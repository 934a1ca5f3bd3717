//! Bookings, tickets, check-in, and the read side of a show's inventory.

use boxoffice_domain::{
    BookingId, BookingStatus, Currency, HoldId, Money, PaymentId, SeatId, ShowId, TicketId, UserId,
};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::audit::write_audit;
use crate::changes::ChangeLog;
use crate::db::{from_millis, opt_from_millis, to_millis};
use crate::error::TxError;
use crate::holds::give_back_quota;
use crate::outbox::write_outbox;
use crate::{
    AuditEntry, BookingFilter, BookingRecord, BookingRejection, CancelRejection, CheckinRejection,
    HoldItems, NewBooking, OutboxEvent, Page, PageRequest, SeatStatus, StandingState, StoreError,
    StoreResult, TicketRecord, TicketStatus, OUTBOX_CHANNEL_EMAIL, OUTBOX_CHANNEL_EVENTS,
    OUTBOX_CHANNEL_SMS, OUTBOX_CHANNEL_WEBHOOKS,
};

/// The outbox payload of an event about a booking: IDs only; consumers
/// read the rest as it is when they deliver.
fn booking_event(
    event_type: &'static str,
    channels: &'static [&'static str],
    booking: &BookingRecord,
) -> OutboxEvent {
    OutboxEvent {
        event_type,
        channels,
        payload: serde_json::json!({
            "booking_id": booking.id, "hold_id": booking.hold_id, "show_id": booking.show_id,
            "user_id": booking.user_id, "total": booking.total,
            "tickets": booking.tickets.len(),
        }),
    }
}

/// Rows per multi-row ticket INSERT (6 parameters a row).
const TICKET_ROWS_PER_INSERT_MAX: usize = 500;

fn booking_audit(
    action: &'static str,
    booking: &BookingRecord,
    actor: Option<&UserId>,
    data: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        action,
        actor_user_id: actor.cloned(),
        show_id: Some(booking.show_id.clone()),
        hold_id: Some(booking.hold_id.clone()),
        booking_id: Some(booking.id.clone()),
        data,
    }
}

/// Turns a `PAYING` hold into a booking with tickets and its payment.
pub(crate) async fn finish_booking(
    conn: &mut AnyConnection,
    new: &NewBooking,
    now: DateTime<Utc>,
    log: &mut ChangeLog,
) -> Result<BookingRecord, TxError<BookingRejection>> {
    let booking = &new.booking;
    let confirmed = sqlx::query(
        "UPDATE holds SET status = 'CONFIRMED', booking_id = $1, ended_at = $2 WHERE id = $3 AND status = 'PAYING'",
    )
    .bind(booking.id.as_str())
    .bind(to_millis(now))
    .bind(booking.hold_id.as_str())
    .execute(&mut *conn)
    .await?;
    if confirmed.rows_affected() != 1 {
        return Err(TxError::Rejected(BookingRejection::HoldNotPaying));
    }
    let payment = &new.payment;
    sqlx::query(
        "INSERT INTO payments (id, hold_id, gateway, gateway_reference, amount, currency, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'CAPTURED', $7, $7)",
    )
    .bind(payment.id.as_str())
    .bind(payment.hold_id.as_str())
    .bind(payment.gateway.as_str())
    .bind(payment.gateway_reference.as_str())
    .bind(payment.amount.amount)
    .bind(payment.amount.currency.as_str())
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await?;
    let booked = sqlx::query(
        "UPDATE show_seats SET status = 'BOOKED', booking_id = $1, held_until = NULL WHERE hold_id = $2 AND status = 'HELD'",
    )
    .bind(booking.id.as_str())
    .bind(booking.hold_id.as_str())
    .execute(&mut *conn)
    .await?;
    if booked.rows_affected() != booking.items.seats.len() as u64 {
        return Err(TxError::Store(StoreError::Other(format!(
            "hold {} should own {} seats but owns {}",
            booking.hold_id,
            booking.items.seats.len(),
            booked.rows_affected()
        ))));
    }
    for standing in &booking.items.standing {
        sqlx::query("UPDATE show_standing SET held = held - $1, booked = booked + $1 WHERE show_id = $2 AND section = $3")
            .bind(i64::from(standing.quantity))
            .bind(booking.show_id.as_str())
            .bind(standing.section.as_str())
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "INSERT INTO bookings (id, hold_id, show_id, user_id, status, items, total_amount, currency, payment_id, created_at) \
         VALUES ($1, $2, $3, $4, 'CONFIRMED', $5, $6, $7, $8, $9)",
    )
    .bind(booking.id.as_str())
    .bind(booking.hold_id.as_str())
    .bind(booking.show_id.as_str())
    .bind(booking.user_id.as_str())
    .bind(serde_json::to_string(&booking.items)?)
    .bind(booking.total.amount)
    .bind(booking.total.currency.as_str())
    .bind(payment.id.as_str())
    .bind(to_millis(booking.created_at))
    .execute(&mut *conn)
    .await?;
    for chunk in booking.tickets.chunks(TICKET_ROWS_PER_INSERT_MAX) {
        let mut sql = String::from(
            "INSERT INTO tickets (id, booking_id, show_id, seat_id, section, code, status, created_at) VALUES ",
        );
        for index in 0..chunk.len() {
            let base = index * 6;
            if index > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, 'VALID', ${})",
                base + 1,
                base + 2,
                base + 3,
                base + 4,
                base + 5,
                base + 6,
                chunk.len() * 6 + 1
            ));
        }
        let mut query = sqlx::query(&sql);
        for ticket in chunk {
            query = query
                .bind(ticket.id.as_str())
                .bind(booking.id.as_str())
                .bind(booking.show_id.as_str())
                .bind(ticket.seat_id.as_ref().map(|s| s.as_str().to_string()))
                .bind(ticket.section.as_str())
                .bind(ticket.code.as_str());
        }
        query.bind(to_millis(now)).execute(&mut *conn).await?;
    }
    write_audit(
        conn,
        now,
        &[
            booking_audit(
                "payment.captured",
                booking,
                Some(&booking.user_id),
                serde_json::json!({
                    "payment_id": payment.id, "amount": payment.amount, "gateway": payment.gateway,
                    "gateway_reference": payment.gateway_reference,
                }),
            ),
            booking_audit(
                "booking.confirmed",
                booking,
                Some(&booking.user_id),
                serde_json::json!({
                    "tickets": booking.tickets.len(), "total": booking.total,
                }),
            ),
        ],
    )
    .await?;
    write_outbox(
        conn,
        now,
        &booking_event(
            "booking.confirmed",
            &[
                OUTBOX_CHANNEL_EMAIL,
                OUTBOX_CHANNEL_SMS,
                OUTBOX_CHANNEL_EVENTS,
                OUTBOX_CHANNEL_WEBHOOKS,
            ],
            booking,
        ),
    )
    .await?;
    log.hold_ended(
        &booking.show_id,
        &booking.hold_id,
        &booking.items,
        SeatStatus::Booked,
    );
    Ok(booking.clone())
}

pub(crate) async fn cancel_in_tx(
    conn: &mut AnyConnection,
    id: &BookingId,
    actor: &UserId,
    now: DateTime<Utc>,
    log: &mut ChangeLog,
) -> Result<BookingRecord, TxError<CancelRejection>> {
    let cancelled = sqlx::query("UPDATE bookings SET status = 'CANCELLED', cancelled_at = $1 WHERE id = $2 AND status = 'CONFIRMED'")
        .bind(to_millis(now))
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    let booking = load_booking_with(&mut *conn, "id", id.as_str())
        .await?
        .ok_or(TxError::Rejected(CancelRejection::NotFound))?;
    if cancelled.rows_affected() != 1 {
        return Err(TxError::Rejected(CancelRejection::NotActive));
    }
    sqlx::query("UPDATE show_seats SET status = 'AVAILABLE', hold_id = NULL, booking_id = NULL, held_until = NULL WHERE booking_id = $1")
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    for standing in &booking.items.standing {
        sqlx::query(
            "UPDATE show_standing SET booked = booked - $1 WHERE show_id = $2 AND section = $3",
        )
        .bind(i64::from(standing.quantity))
        .bind(booking.show_id.as_str())
        .bind(standing.section.as_str())
        .execute(&mut *conn)
        .await?;
    }
    give_back_quota(
        conn,
        &booking.user_id,
        &booking.show_id,
        booking.items.ticket_count(),
    )
    .await?;
    sqlx::query("UPDATE tickets SET status = 'CANCELLED' WHERE booking_id = $1")
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE payments SET status = 'REFUNDED', updated_at = $1 WHERE id = $2")
        .bind(to_millis(now))
        .bind(booking.payment_id.as_str())
        .execute(&mut *conn)
        .await?;
    write_audit(
        conn,
        now,
        &[
            booking_audit(
                "payment.refunded",
                &booking,
                Some(actor),
                serde_json::json!({"payment_id": booking.payment_id, "amount": booking.total}),
            ),
            booking_audit(
                "booking.cancelled",
                &booking,
                Some(actor),
                serde_json::json!({"tickets": booking.tickets.len()}),
            ),
        ],
    )
    .await?;
    write_outbox(
        conn,
        now,
        &booking_event(
            "booking.cancelled",
            &[
                OUTBOX_CHANNEL_EMAIL,
                OUTBOX_CHANNEL_SMS,
                OUTBOX_CHANNEL_EVENTS,
                OUTBOX_CHANNEL_WEBHOOKS,
            ],
            &booking,
        ),
    )
    .await?;
    write_outbox(
        conn,
        now,
        &booking_event(
            "payment.refunded",
            &[OUTBOX_CHANNEL_EVENTS, OUTBOX_CHANNEL_WEBHOOKS],
            &booking,
        ),
    )
    .await?;
    log.booking_cancelled(&booking.show_id, &booking.items);
    Ok(booking)
}

pub(crate) async fn check_in_tx(
    conn: &mut AnyConnection,
    ticket_id: &TicketId,
    actor: &UserId,
    now: DateTime<Utc>,
) -> Result<TicketRecord, TxError<CheckinRejection>> {
    // The conditional update admits exactly one of two racing scans.
    let admitted = sqlx::query("UPDATE tickets SET checked_in_at = $1 WHERE id = $2 AND status = 'VALID' AND checked_in_at IS NULL")
        .bind(to_millis(now))
        .bind(ticket_id.as_str())
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query("SELECT * FROM tickets WHERE id = $1")
        .bind(ticket_id.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(TxError::Rejected(CheckinRejection::UnknownTicket))?;
    let ticket = ticket_from_row(&row)?;
    if admitted.rows_affected() != 1 {
        return Err(TxError::Rejected(
            match (ticket.status, ticket.checked_in_at) {
                (TicketStatus::Cancelled, _) => CheckinRejection::Cancelled,
                (_, Some(at)) => CheckinRejection::AlreadyCheckedIn { at },
                (_, None) => CheckinRejection::UnknownTicket,
            },
        ));
    }
    write_audit(
        conn,
        now,
        &[AuditEntry {
            action: "ticket.checked_in",
            actor_user_id: Some(actor.clone()),
            show_id: Some(ticket.show_id.clone()),
            hold_id: None,
            booking_id: Some(ticket.booking_id.clone()),
            data: serde_json::json!({"ticket_id": ticket.id, "seat_id": ticket.seat_id, "section": ticket.section}),
        }],
    )
    .await?;
    Ok(ticket)
}

fn ticket_from_row(row: &AnyRow) -> StoreResult<TicketRecord> {
    let status: String = row.try_get("status")?;
    Ok(TicketRecord {
        id: TicketId::from_trusted(row.try_get("id")?),
        booking_id: BookingId::from_trusted(row.try_get("booking_id")?),
        show_id: ShowId::from_trusted(row.try_get("show_id")?),
        seat_id: row
            .try_get::<Option<String>, _>("seat_id")?
            .map(SeatId::from_trusted),
        section: row.try_get("section")?,
        code: row.try_get("code")?,
        status: if status == "CANCELLED" {
            TicketStatus::Cancelled
        } else {
            TicketStatus::Valid
        },
        checked_in_at: opt_from_millis(row.try_get("checked_in_at")?),
    })
}

fn booking_from_row(row: &AnyRow) -> StoreResult<BookingRecord> {
    let status: String = row.try_get("status")?;
    let items: String = row.try_get("items")?;
    let currency: String = row.try_get("currency")?;
    Ok(BookingRecord {
        id: BookingId::from_trusted(row.try_get("id")?),
        hold_id: HoldId::from_trusted(row.try_get("hold_id")?),
        show_id: ShowId::from_trusted(row.try_get("show_id")?),
        user_id: UserId::from_trusted(row.try_get("user_id")?),
        status: BookingStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("booking status {status}")))?,
        items: serde_json::from_str::<HoldItems>(&items)?,
        total: Money {
            amount: row.try_get("total_amount")?,
            currency: Currency::parse(&currency).map_err(|e| StoreError::Other(e.to_string()))?,
        },
        payment_id: PaymentId::from_trusted(row.try_get("payment_id")?),
        created_at: from_millis(row.try_get("created_at")?),
        cancelled_at: opt_from_millis(row.try_get("cancelled_at")?),
        tickets: Vec::new(),
    })
}

async fn load_booking_with(
    conn: &mut AnyConnection,
    column: &str,
    value: &str,
) -> StoreResult<Option<BookingRecord>> {
    let row = sqlx::query(&format!("SELECT * FROM bookings WHERE {column} = $1"))
        .bind(value)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut booking = booking_from_row(&row)?;
    let tickets = sqlx::query(
        "SELECT * FROM tickets WHERE booking_id = $1 ORDER BY section, COALESCE(seat_id, ''), id",
    )
    .bind(booking.id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    booking.tickets = tickets
        .iter()
        .map(ticket_from_row)
        .collect::<StoreResult<_>>()?;
    Ok(Some(booking))
}

pub(crate) async fn load_booking(
    pool: &AnyPool,
    column: &str,
    value: &str,
) -> StoreResult<Option<BookingRecord>> {
    let mut conn = pool.acquire().await?;
    load_booking_with(&mut conn, column, value).await
}

pub(crate) async fn list_bookings(
    pool: &AnyPool,
    filter: &BookingFilter,
    page: &PageRequest,
) -> StoreResult<Page<BookingRecord>> {
    let mut sql = String::from("SELECT id FROM bookings WHERE id < $1");
    let mut binds = Vec::new();
    if let Some(user) = &filter.user_id {
        binds.push(user.as_str().to_string());
        sql.push_str(&format!(" AND user_id = ${}", binds.len() + 2));
    }
    if let Some(show) = &filter.show_id {
        binds.push(show.as_str().to_string());
        sql.push_str(&format!(" AND show_id = ${}", binds.len() + 2));
    }
    sql.push_str(" ORDER BY id DESC LIMIT $2");
    // Newest first: the cursor is the last ID seen; "~" sorts after every ID.
    let mut query = sqlx::query(&sql)
        .bind(page.after.clone().unwrap_or_else(|| "~".to_string()))
        .bind(i64::from(page.limit) + 1);
    for value in &binds {
        query = query.bind(value.as_str());
    }
    let ids: Vec<String> = query
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;
    let mut conn = pool.acquire().await?;
    let mut bookings = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(booking) = load_booking_with(&mut conn, "id", &id).await? {
            bookings.push(booking);
        }
    }
    Ok(crate::catalog::paginate(bookings, page.limit, |booking| {
        booking.id.to_string()
    }))
}

pub(crate) fn standing_from_row(row: &AnyRow) -> StoreResult<StandingState> {
    Ok(StandingState {
        section: row.try_get("section")?,
        category: row.try_get("category")?,
        capacity: u32::try_from(row.try_get::<i64, _>("capacity")?).unwrap_or(0),
        held: u32::try_from(row.try_get::<i64, _>("held")?).unwrap_or(0),
        booked: u32::try_from(row.try_get::<i64, _>("booked")?).unwrap_or(0),
    })
}

/// Every place of a show as stored, with when held places lapse, read in one
/// snapshot (one transaction; repeatable read on PostgreSQL) together with
/// the version it belongs to.
pub(crate) async fn inventory_snapshot(
    pool: &AnyPool,
    backend: crate::Backend,
    show_id: &ShowId,
) -> StoreResult<crate::changes::InventorySnapshot> {
    let mut tx = pool.begin().await?;
    if backend == crate::Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let version: i64 = sqlx::query("SELECT version FROM shows WHERE id = $1")
        .bind(show_id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get("version")?;
    let rows = sqlx::query("SELECT seat_id, status, held_until FROM show_seats WHERE show_id = $1")
        .bind(show_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
    let mut seats = Vec::with_capacity(rows.len());
    for row in &rows {
        let status: String = row.try_get("status")?;
        let status = match status.as_str() {
            "BOOKED" => SeatStatus::Booked,
            "HELD" => SeatStatus::Held,
            _ => SeatStatus::Available,
        };
        let held_until: Option<i64> = row.try_get("held_until")?;
        seats.push(crate::changes::SeatChange {
            seat_id: SeatId::from_trusted(row.try_get("seat_id")?),
            status,
            lapses_at: held_until.map(from_millis),
        });
    }
    let mut standing = Vec::new();
    for row in sqlx::query("SELECT section, category, capacity, held, booked FROM show_standing WHERE show_id = $1 ORDER BY section")
        .bind(show_id.as_str())
        .fetch_all(&mut *tx)
        .await?
    {
        standing.push(standing_from_row(&row)?);
    }
    let mut standing_holds = Vec::new();
    if !standing.is_empty() {
        let rows = sqlx::query("SELECT id, status, items, expires_at FROM holds WHERE show_id = $1 AND status IN ('ACTIVE', 'PAYING')")
            .bind(show_id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let items: HoldItems = serde_json::from_str(&row.try_get::<String, _>("items")?)?;
            let status: String = row.try_get("status")?;
            let lapses_at = (status == "ACTIVE")
                .then(|| row.try_get::<i64, _>("expires_at"))
                .transpose()?
                .map(from_millis);
            for place in items.standing {
                standing_holds.push(crate::changes::StandingHoldChange {
                    hold_id: HoldId::from_trusted(row.try_get("id")?),
                    section: place.section,
                    quantity: place.quantity,
                    lapses_at,
                    removed: false,
                });
            }
        }
    }
    tx.commit().await?;
    Ok(crate::changes::InventorySnapshot {
        version,
        seats,
        standing,
        standing_holds,
    })
}

pub(crate) async fn sales_totals(pool: &AnyPool, show_id: &ShowId) -> StoreResult<(i64, u64)> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(total_amount), 0) AS BIGINT) AS revenue FROM bookings WHERE show_id = $1 AND status = 'CONFIRMED'",
    )
    .bind(show_id.as_str())
    .fetch_one(pool)
    .await?;
    let revenue: i64 = row.try_get("revenue")?;
    let row =
        sqlx::query("SELECT COUNT(*) AS sold FROM tickets WHERE show_id = $1 AND status = 'VALID'")
            .bind(show_id.as_str())
            .fetch_one(pool)
            .await?;
    let sold: i64 = row.try_get("sold")?;
    Ok((revenue, u64::try_from(sold).unwrap_or(0)))
}
