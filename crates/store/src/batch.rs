//! Group commit of holds: one transaction decides a whole batch of one show's
//! hold requests in arrival order and writes the winners together (one
//! commit, one fsync, one version bump for many holds).

use std::collections::{BTreeSet, HashMap};

use boxoffice_domain::{
    decide_batch, BatchDecision, BatchRequest, BatchState, SeatId, ShowId, UserId,
};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use crate::audit::write_audit;
use crate::changes::ChangeLog;
use crate::db::{to_millis, Placeholders};
use crate::error::TxError;
use crate::holds::{expire_due, hold_audit, insert_hold, places_json, LAZY_EXPIRY_BATCH_MAX};
use crate::idempotency::complete_in_tx;
use crate::{Backend, HoldRecord, HoldRejection, IdempotencyCompletion, NewHold, StoreResult};

/// Parameters per `IN (…)` list, far below both backends' limits.
const IN_LIST_MAX: usize = 500;

/// `count` placeholders for parameters `from..from + count`, bound in that
/// order (see [`crate::db::Placeholders`]).
fn placeholders(backend: Backend, from: usize, count: usize) -> String {
    let mut numbering = Placeholders::starting_at(backend, from);
    (0..count)
        .map(|_| numbering.next_placeholder())
        .collect::<Vec<_>>()
        .join(", ")
}

fn lock_suffix(backend: Backend) -> &'static str {
    // SQLite has one writer at a time; PostgreSQL needs the row locks.
    match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

/// Reads (and on PostgreSQL locks, in key order) the rows the batch decides on.
async fn lock_state(
    conn: &mut AnyConnection,
    backend: Backend,
    show_id: &ShowId,
    holds: &[(NewHold, Option<IdempotencyCompletion>)],
) -> StoreResult<BatchState> {
    let max_tickets_per_user = holds
        .first()
        .map(|(hold, _)| hold.max_tickets_per_user)
        .unwrap_or(0);
    let mut state = BatchState {
        max_tickets_per_user,
        ..BatchState::default()
    };

    let users: BTreeSet<&UserId> = holds.iter().map(|(hold, _)| &hold.user_id).collect();
    for user in &users {
        sqlx::query("INSERT INTO user_show_tickets (user_id, show_id, tickets) VALUES ($1, $2, 0) ON CONFLICT (user_id, show_id) DO NOTHING")
            .bind(user.as_str())
            .bind(show_id.as_str())
            .execute(&mut *conn)
            .await?;
    }
    let users: Vec<&UserId> = users.into_iter().collect();
    for chunk in users.chunks(IN_LIST_MAX) {
        let sql = format!(
            "SELECT user_id, tickets FROM user_show_tickets WHERE show_id = {} AND user_id IN ({}) ORDER BY user_id{}",
            placeholders(backend, 1, 1),
            placeholders(backend, 2, chunk.len()),
            lock_suffix(backend)
        );
        let mut query = sqlx::query(&sql).bind(show_id.as_str());
        for user in chunk {
            query = query.bind(user.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let tickets: i64 = row.try_get("tickets")?;
            state.user_places.insert(
                UserId::from_trusted(row.try_get("user_id")?),
                u32::try_from(tickets).unwrap_or(u32::MAX),
            );
        }
    }

    let seats: BTreeSet<&SeatId> = holds
        .iter()
        .flat_map(|(hold, _)| hold.items.seats.iter().map(|seat| &seat.seat_id))
        .collect();
    let seats: Vec<&SeatId> = seats.into_iter().collect();
    for chunk in seats.chunks(IN_LIST_MAX) {
        let sql = format!(
            "SELECT seat_id, status FROM show_seats WHERE show_id = {} AND seat_id IN ({}) ORDER BY seat_id{}",
            placeholders(backend, 1, 1),
            placeholders(backend, 2, chunk.len()),
            lock_suffix(backend)
        );
        let mut query = sqlx::query(&sql).bind(show_id.as_str());
        for seat in chunk {
            query = query.bind(seat.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let status: String = row.try_get("status")?;
            state.free_seats.insert(
                SeatId::from_trusted(row.try_get("seat_id")?),
                status == "AVAILABLE",
            );
        }
    }

    let sections: BTreeSet<&str> = holds
        .iter()
        .flat_map(|(hold, _)| {
            hold.items
                .standing
                .iter()
                .map(|place| place.section.as_str())
        })
        .collect();
    for section in sections {
        let sql = format!(
            "SELECT capacity - held - booked AS free FROM show_standing WHERE show_id = $1 AND section = $2{}",
            lock_suffix(backend)
        );
        if let Some(row) = sqlx::query(&sql)
            .bind(show_id.as_str())
            .bind(section)
            .fetch_optional(&mut *conn)
            .await?
        {
            let free: i64 = row.try_get("free")?;
            state
                .standing_free
                .insert(section.to_string(), u32::try_from(free.max(0)).unwrap_or(0));
        }
    }
    Ok(state)
}

/// Seats per multi-row `UPDATE` of the winners (5 parameters a seat).
const SEATS_PER_UPDATE_MAX: usize = 300;

/// Marks every winner's seats `HELD` by its hold, a few hundred seats per
/// statement (`CASE` picks each seat's hold and expiry).
async fn write_winner_seats(
    conn: &mut AnyConnection,
    backend: Backend,
    show_id: &ShowId,
    winners: &[&(NewHold, Option<IdempotencyCompletion>)],
) -> StoreResult<()> {
    let seats: Vec<(&SeatId, &str, i64)> = winners
        .iter()
        .flat_map(|(hold, _)| {
            hold.items
                .seats
                .iter()
                .map(move |seat| (&seat.seat_id, hold.id.as_str(), to_millis(hold.expires_at)))
        })
        .collect();
    for chunk in seats.chunks(SEATS_PER_UPDATE_MAX) {
        // Parameters are numbered in order of appearance and bound in that
        // order, each value as often as it appears (see `Placeholders`).
        let mut numbering = Placeholders::starting_at(backend, 1);
        let mut hold_case = String::from("CASE seat_id");
        for _ in chunk {
            let (seat, hold) = (numbering.next_placeholder(), numbering.next_placeholder());
            hold_case.push_str(&format!(" WHEN {seat} THEN {hold}"));
        }
        let mut until_case = String::from("CASE seat_id");
        for _ in chunk {
            let (seat, until) = (numbering.next_placeholder(), numbering.next_placeholder());
            until_case.push_str(&format!(" WHEN {seat} THEN {until}"));
        }
        let show = numbering.next_placeholder();
        let seat_list: Vec<String> = chunk.iter().map(|_| numbering.next_placeholder()).collect();
        let sql = format!(
            "UPDATE show_seats SET status = 'HELD', hold_id = {hold_case} END, held_until = {until_case} END \
             WHERE show_id = {show} AND status = 'AVAILABLE' AND seat_id IN ({})",
            seat_list.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (seat_id, hold_id, _) in chunk {
            query = query.bind(seat_id.as_str()).bind(*hold_id);
        }
        for (seat_id, _, until) in chunk {
            query = query.bind(seat_id.as_str()).bind(*until);
        }
        query = query.bind(show_id.as_str());
        for (seat_id, _, _) in chunk {
            query = query.bind(seat_id.as_str());
        }
        let taken = query.execute(&mut *conn).await?;
        if taken.rows_affected() != chunk.len() as u64 {
            // The locked state said these seats were free: a bug, or a writer
            // that bypassed the locks. Roll the whole batch back.
            return Err(crate::StoreError::Other(format!(
                "batch: {} of {} seats could be held",
                taken.rows_affected(),
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// Writes the winners: seats in multi-row statements, standing and quotas per key, holds in
/// one multi-row insert, audit and stored answers.
async fn write_winners(
    conn: &mut AnyConnection,
    backend: Backend,
    show_id: &ShowId,
    winners: &[&(NewHold, Option<IdempotencyCompletion>)],
    now: DateTime<Utc>,
    log: &mut ChangeLog,
) -> StoreResult<Vec<HoldRecord>> {
    let mut standing: HashMap<&str, u32> = HashMap::new();
    let mut quotas: HashMap<&UserId, u32> = HashMap::new();
    write_winner_seats(conn, backend, show_id, winners).await?;
    for (hold, _) in winners {
        for place in &hold.items.standing {
            *standing.entry(place.section.as_str()).or_default() += place.quantity;
        }
        *quotas.entry(&hold.user_id).or_default() += hold.items.ticket_count();
    }
    for (section, quantity) in standing {
        sqlx::query(
            "UPDATE show_standing SET held = held + $1 WHERE show_id = $2 AND section = $3",
        )
        .bind(i64::from(quantity))
        .bind(show_id.as_str())
        .bind(section)
        .execute(&mut *conn)
        .await?;
    }
    for (user, tickets) in quotas {
        sqlx::query("UPDATE user_show_tickets SET tickets = tickets + $1 WHERE user_id = $2 AND show_id = $3")
            .bind(i64::from(tickets))
            .bind(user.as_str())
            .bind(show_id.as_str())
            .execute(&mut *conn)
            .await?;
    }
    let mut records = Vec::with_capacity(winners.len());
    let mut audit = Vec::with_capacity(winners.len());
    for (hold, completion) in winners {
        let record = insert_hold(conn, hold).await?;
        audit.push(hold_audit(
            "hold.created",
            &record,
            Some(&hold.user_id),
            places_json(&record),
        ));
        if let Some(completion) = completion {
            complete_in_tx(conn, completion, now).await?;
        }
        log.held(show_id, &hold.id, &hold.items, Some(hold.expires_at), true);
        records.push(record);
    }
    write_audit(conn, now, &audit).await?;
    Ok(records)
}

/// The body of the batch transaction.
pub(crate) async fn holds_batch_tx(
    conn: &mut AnyConnection,
    backend: Backend,
    feed_node: Option<&str>,
    show_id: &ShowId,
    holds: &[(NewHold, Option<IdempotencyCompletion>)],
    now: DateTime<Utc>,
) -> Result<
    (
        Vec<Result<HoldRecord, HoldRejection>>,
        Vec<crate::ShowChange>,
    ),
    TxError<std::convert::Infallible>,
> {
    let mut log = ChangeLog::default();
    expire_due(conn, Some(show_id), now, LAZY_EXPIRY_BATCH_MAX, &mut log).await?;
    let mut state = lock_state(conn, backend, show_id, holds).await?;
    let requests: Vec<BatchRequest> = holds
        .iter()
        .map(|(hold, _)| BatchRequest {
            user: hold.user_id.clone(),
            seats: hold
                .items
                .seats
                .iter()
                .map(|seat| seat.seat_id.clone())
                .collect(),
            standing: hold
                .items
                .standing
                .iter()
                .map(|place| (place.section.clone(), place.quantity))
                .collect(),
        })
        .collect();
    let decisions = decide_batch(&mut state, &requests);
    let winners: Vec<&(NewHold, Option<IdempotencyCompletion>)> = holds
        .iter()
        .zip(&decisions)
        .filter(|(_, decision)| **decision == BatchDecision::Accept)
        .map(|(hold, _)| hold)
        .collect();
    let mut records = write_winners(conn, backend, show_id, &winners, now, &mut log)
        .await?
        .into_iter();
    let results = decisions
        .into_iter()
        .map(|decision| match decision {
            BatchDecision::Accept => {
                records
                    .next()
                    .ok_or_else(|| HoldRejection::SeatsUnavailable {
                        seat_ids: Vec::new(),
                    })
            }
            BatchDecision::TicketLimitExceeded {
                limit,
                already,
                requested,
            } => Err(HoldRejection::TicketLimitExceeded {
                limit,
                already,
                requested,
            }),
            BatchDecision::SeatsUnavailable { seat_ids } => {
                Err(HoldRejection::SeatsUnavailable { seat_ids })
            }
            BatchDecision::StandingUnavailable { section, available } => {
                Err(HoldRejection::StandingUnavailable { section, available })
            }
        })
        .collect();
    Ok((results, log.finish(conn, feed_node).await?))
}
