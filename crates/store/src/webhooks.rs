//! Payments announced by a gateway's webhook: each event recorded once, in
//! the transaction of its effect (booking a paid hold, or recording the
//! refund of a payment that came too late).

use async_trait::async_trait;
use boxoffice_domain::{HoldId, HoldStatus};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use crate::audit::write_audit;
use crate::bookings::finish_booking;
use crate::changes::ChangeLog;
use crate::db::to_millis;
use crate::error::TxError;
use crate::holds::{add_to_quota, hold_audit, load_hold, places_json};
use crate::outbox::write_outbox;
use crate::{
    BookingRejection, HoldRecord, LateRefundCause, NewBooking, OutboxEvent, PaidHoldOutcome,
    PaymentWebhookStore, SqlStore, StoreResult, WebhookEvent, OUTBOX_CHANNEL_EMAIL,
    OUTBOX_CHANNEL_EVENTS, OUTBOX_CHANNEL_SMS, OUTBOX_CHANNEL_WEBHOOKS,
};

/// Why a paid hold could not be booked inside the transaction.
enum PaidHoldRejection {
    /// The event was recorded before: nothing to do again.
    Duplicate,
    /// Another writer moved the hold between our read and our update.
    Raced,
    /// Some of its places were sold meanwhile.
    PlacesGone,
    /// With its places the buyer would be over the show's ticket limit.
    OverTicketLimit,
}

/// `finish_booking` found the hold no longer `PAYING`: someone else moved it.
fn raced(error: TxError<BookingRejection>) -> TxError<PaidHoldRejection> {
    match error {
        TxError::Rejected(BookingRejection::HoldNotPaying) => {
            TxError::Rejected(PaidHoldRejection::Raced)
        }
        TxError::Store(error) => TxError::Store(error),
    }
}

/// Records the event; `Duplicate` when it was recorded before. On
/// PostgreSQL a concurrent delivery of the same event waits here for the
/// first one's transaction and then sees its row.
async fn record_event<R: From<PaidHoldRejectionMarker>>(
    conn: &mut AnyConnection,
    event: &WebhookEvent,
    hold_id: Option<&HoldId>,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<(), TxError<R>> {
    let inserted = sqlx::query(
        "INSERT INTO payment_webhook_events (gateway, event_id, event_type, hold_id, outcome, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (gateway, event_id) DO NOTHING",
    )
    .bind(event.gateway.as_str())
    .bind(event.event_id.as_str())
    .bind(event.event_type.as_str())
    .bind(hold_id.map(|id| id.as_str().to_string()))
    .bind(outcome)
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() != 1 {
        return Err(TxError::Rejected(R::from(PaidHoldRejectionMarker)));
    }
    Ok(())
}

/// "The event was recorded before", convertible into each rejection type.
struct PaidHoldRejectionMarker;

impl From<PaidHoldRejectionMarker> for PaidHoldRejection {
    fn from(_: PaidHoldRejectionMarker) -> Self {
        PaidHoldRejection::Duplicate
    }
}

impl From<PaidHoldRejectionMarker> for () {
    fn from(_: PaidHoldRejectionMarker) -> Self {}
}

async fn set_outcome(
    conn: &mut AnyConnection,
    event: &WebhookEvent,
    outcome: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE payment_webhook_events SET outcome = $1 WHERE gateway = $2 AND event_id = $3",
    )
    .bind(outcome)
    .bind(event.gateway.as_str())
    .bind(event.event_id.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes an ended hold's places again for its late payment, all or nothing
/// (seats still `AVAILABLE`, standing places within capacity), and moves it
/// to `PAYING` so that `finish_booking` can book it.
async fn reinstate(
    conn: &mut AnyConnection,
    hold: &HoldRecord,
    now: DateTime<Utc>,
    log: &mut ChangeLog,
) -> Result<(), TxError<PaidHoldRejection>> {
    let moved = sqlx::query(
        "UPDATE holds SET status = 'PAYING', payment_started_at = $1, ended_at = NULL \
         WHERE id = $2 AND status IN ('EXPIRED', 'RELEASED') AND refund_started_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(hold.id.as_str())
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(TxError::Rejected(PaidHoldRejection::Raced));
    }
    // Seat-ID order, like every writer of seats: no lock cycles.
    let mut seat_ids: Vec<&str> = hold
        .items
        .seats
        .iter()
        .map(|seat| seat.seat_id.as_str())
        .collect();
    seat_ids.sort_unstable();
    for seat_id in seat_ids {
        let taken = sqlx::query(
            "UPDATE show_seats SET status = 'HELD', hold_id = $1, held_until = NULL \
             WHERE show_id = $2 AND seat_id = $3 AND status = 'AVAILABLE'",
        )
        .bind(hold.id.as_str())
        .bind(hold.show_id.as_str())
        .bind(seat_id)
        .execute(&mut *conn)
        .await?;
        if taken.rows_affected() != 1 {
            return Err(TxError::Rejected(PaidHoldRejection::PlacesGone));
        }
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
            return Err(TxError::Rejected(PaidHoldRejection::PlacesGone));
        }
    }
    // The places count towards the buyer's limit again, and must fit in it:
    // since the hold ended the buyer may have held or booked others of the
    // show (the counter holds their ACTIVE/PAYING holds and CONFIRMED
    // bookings). Over the limit, the payment is refunded like places gone.
    let limit: i64 = sqlx::query("SELECT max_tickets_per_user FROM shows WHERE id = $1")
        .bind(hold.show_id.as_str())
        .fetch_one(&mut *conn)
        .await?
        .try_get("max_tickets_per_user")?;
    let within_limit = add_to_quota(
        conn,
        &hold.user_id,
        &hold.show_id,
        hold.items.ticket_count(),
        u32::try_from(limit).unwrap_or(0),
    )
    .await?;
    if !within_limit {
        tracing::info!(hold_id = %hold.id, "late payment would exceed the buyer's ticket limit: refund");
        return Err(TxError::Rejected(PaidHoldRejection::OverTicketLimit));
    }
    write_audit(
        conn,
        now,
        &[hold_audit(
            "hold.reinstated",
            hold,
            None,
            serde_json::json!({"reason": "late_payment", "places": places_json(hold)}),
        )],
    )
    .await?;
    log.held(&hold.show_id, &hold.id, &hold.items, None, true);
    Ok(())
}

/// An `ACTIVE` hold whose payment arrived (its confirmation gave up on the
/// gateway, which captured after all): `PAYING`, its places kept.
async fn start_paying(
    conn: &mut AnyConnection,
    hold: &HoldRecord,
    now: DateTime<Utc>,
) -> Result<(), TxError<PaidHoldRejection>> {
    let moved = sqlx::query(
        "UPDATE holds SET status = 'PAYING', payment_started_at = $1 \
         WHERE id = $2 AND status = 'ACTIVE' AND refund_started_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(hold.id.as_str())
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(TxError::Rejected(PaidHoldRejection::Raced));
    }
    sqlx::query("UPDATE show_seats SET held_until = NULL WHERE hold_id = $1 AND status = 'HELD'")
        .bind(hold.id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn book_paid_hold_tx(
    conn: &mut AnyConnection,
    event: &WebhookEvent,
    booking: &NewBooking,
    now: DateTime<Utc>,
    log: &mut ChangeLog,
) -> Result<PaidHoldOutcome, TxError<PaidHoldRejection>> {
    let hold_id = &booking.booking.hold_id;
    record_event(conn, event, Some(hold_id), "booked", now).await?;
    let Some(hold) = load_hold(conn, hold_id).await? else {
        set_outcome(conn, event, "unknown_hold").await?;
        return Ok(PaidHoldOutcome::UnknownHold);
    };
    let refund_started: Option<i64> =
        sqlx::query("SELECT refund_started_at FROM holds WHERE id = $1")
            .bind(hold_id.as_str())
            .fetch_one(&mut *conn)
            .await?
            .try_get("refund_started_at")?;
    if refund_started.is_some() && hold.status != HoldStatus::Confirmed {
        // Its charge is being given back: never book it (invariant 3).
        return Err(TxError::Rejected(PaidHoldRejection::PlacesGone));
    }
    match hold.status {
        HoldStatus::Confirmed => {
            set_outcome(conn, event, "already_confirmed").await?;
            return Ok(PaidHoldOutcome::AlreadyConfirmed);
        }
        HoldStatus::Paying => {}
        HoldStatus::Active => start_paying(conn, &hold, now).await?,
        HoldStatus::Expired | HoldStatus::Released => reinstate(conn, &hold, now, log).await?,
    }
    let record = finish_booking(conn, booking, now, log)
        .await
        .map_err(raced)?;
    Ok(PaidHoldOutcome::Booked(Box::new(record)))
}

#[async_trait]
impl PaymentWebhookStore for SqlStore {
    async fn record_webhook_event(
        &self,
        event: &WebhookEvent,
        hold_id: Option<&HoldId>,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = crate::write_tx!(self, |conn| async {
            record_event::<()>(conn, event, hold_id, outcome, now).await
        });
        Ok(result?.is_ok())
    }

    async fn book_paid_hold(
        &self,
        event: &WebhookEvent,
        booking: &NewBooking,
        now: DateTime<Utc>,
    ) -> StoreResult<PaidHoldOutcome> {
        let result = crate::write_tx!(self, |conn| async {
            let mut log = ChangeLog::default();
            let outcome = book_paid_hold_tx(conn, event, booking, now, &mut log).await?;
            Ok((outcome, log.finish(conn, self.feed_node()).await?))
        });
        Ok(match self.published(result)? {
            Ok(outcome) => outcome,
            Err(PaidHoldRejection::Duplicate) => PaidHoldOutcome::Duplicate,
            Err(PaidHoldRejection::Raced) => PaidHoldOutcome::Raced,
            Err(PaidHoldRejection::PlacesGone) => PaidHoldOutcome::PlacesGone,
            Err(PaidHoldRejection::OverTicketLimit) => PaidHoldOutcome::OverTicketLimit,
        })
    }

    async fn claim_refund(&self, hold_id: &HoldId, now: DateTime<Utc>) -> StoreResult<bool> {
        let claimed = sqlx::query(
            "UPDATE holds SET refund_started_at = COALESCE(refund_started_at, $1) \
             WHERE id = $2 AND status <> 'CONFIRMED'",
        )
        .bind(to_millis(now))
        .bind(hold_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn record_late_payment_refund(
        &self,
        event: &WebhookEvent,
        hold: &HoldRecord,
        gateway_reference: &str,
        cause: LateRefundCause,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = crate::write_tx!(self, |conn| async {
            record_event::<()>(conn, event, Some(&hold.id), "refunded", now).await?;
            write_audit(
                conn,
                now,
                &[hold_audit(
                    "payment.refunded",
                    hold,
                    None,
                    serde_json::json!({
                        "reason": "late_payment", "cause": cause.as_str(), "amount": hold.total,
                        "gateway": event.gateway, "gateway_reference": gateway_reference,
                    }),
                )],
            )
            .await?;
            write_outbox(
                conn,
                now,
                // This payment has no booking: the e-mail and the text
                // message are composed from the payload (ADR 0018).
                &OutboxEvent {
                    event_type: "payment.refunded",
                    channels: &[
                        OUTBOX_CHANNEL_EVENTS,
                        OUTBOX_CHANNEL_EMAIL,
                        OUTBOX_CHANNEL_SMS,
                        OUTBOX_CHANNEL_WEBHOOKS,
                    ],
                    payload: serde_json::json!({
                        "reason": "late_payment", "cause": cause.as_str(),
                        "hold_id": hold.id, "show_id": hold.show_id,
                        "user_id": hold.user_id, "total": hold.total,
                        "places": places_json(hold),
                    }),
                },
            )
            .await?;
            Ok(())
        });
        Ok(result?.is_ok())
    }
}
