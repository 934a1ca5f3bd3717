//! The two as-fast-as-possible phases: C connections join a paused room
//! (every join a new minted user) for the duration, then poll those tickets
//! for the duration. A paused room admits nobody, so a join's position is
//! its exact place in line: the phase checks that places are 1..n, each
//! handed out once, in the order the joins were answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::Http;
use crate::invariants::Check;
use crate::progress::{tick, Live, Progress};
use crate::report::waiting_room::{PositionReport, QueueThroughputReport};
use crate::scenarios::waiting_room::order::{precedence_violations, Timed};
use crate::scenarios::waiting_room::queue_api::{self, Reply, Status};
use crate::scenarios::{run_workers, Stop, REQUESTS_PER_WORKER_MAX};
use crate::stats::{per_second, Tally};
use crate::users::{Population, UserMinter};
use crate::LoadtestError;

/// The poll phase cycles through at most this many of the joined tickets
/// (their tokens minted once up front): enough that every connection has
/// tickets of its own, few enough to keep the tokens in memory.
const POLLED_TICKETS_MAX: usize = 10_000;

pub const CHECK_POSITIONS: &str = "a paused room hands out places 1..n once each, in join order";
pub const CHECK_POLLS: &str = "every poll answers 200 WAITING for its own ticket";

pub struct Phase<'a> {
    pub http: &'a Http,
    pub show_id: &'a str,
    pub minter: &'a Arc<UserMinter>,
    pub connections: usize,
    pub duration: Duration,
    pub progress: Progress,
}

/// A ticket of the join phase: its user and ID.
#[derive(Debug, Clone)]
pub struct Joined {
    pub user: u64,
    pub ticket_id: String,
}

#[derive(Default)]
struct JoinWorker {
    tally: Tally,
    ok: u64,
    timed: Vec<Timed>,
    joined: Vec<Joined>,
    /// Joins with no readable answer: the server may have placed them.
    unknown: u64,
}

pub async fn joins(
    phase: &Phase<'_>,
) -> Result<(QueueThroughputReport, Vec<Joined>), LoadtestError> {
    let stop = Arc::new(Stop::after(phase.duration));
    let live = Arc::new(Live::default());
    let next_user = Arc::new(AtomicU64::new(0));
    let path = Arc::new(queue_api::queue_path(phase.show_id));
    let bar = phase.progress.bar("queue joins", phase.duration.as_secs());
    let ticker = tick(bar.clone(), live.clone(), stop.started);
    let epoch = stop.started;
    let results = run_workers(phase.connections, |index| {
        let (http, stop, live, next_user, path, minter) = (
            phase.http.clone(),
            stop.clone(),
            live.clone(),
            next_user.clone(),
            path.clone(),
            phase.minter.clone(),
        );
        async move {
            let node = http.node_for(index);
            let mut worker = JoinWorker::default();
            let body = json!({});
            while !stop.is_over() && worker.tally.attempts < REQUESTS_PER_WORKER_MAX {
                let user = next_user.fetch_add(1, Ordering::Relaxed);
                let Ok(token) = minter.token(Population::JoinThroughput, user) else {
                    worker.tally.errors.add("minting");
                    break;
                };
                worker.tally.attempts += 1;
                let sent_us = micros_since(epoch);
                let answer = queue_api::join(&http, node, &path, &token, &body).await;
                let answered_us = micros_since(epoch);
                match Reply::of(&answer) {
                    Reply::Ticket {
                        ticket,
                        created: true,
                    } if ticket.status == Status::Waiting => {
                        if let Ok(answer) = &answer {
                            worker.tally.successes.record(answer.latency);
                        }
                        worker.ok += 1;
                        worker.timed.push(Timed {
                            sent_us,
                            answered_us,
                            early: ticket.position,
                            late: ticket.position.saturating_sub(1),
                            checked: true,
                        });
                        worker.joined.push(Joined {
                            user,
                            ticket_id: ticket.id,
                        });
                        live.request(true);
                    }
                    Reply::Ticket { created, .. } => {
                        // A new user's first join must be a new WAITING ticket.
                        worker.tally.errors.add(if created {
                            "unexpected_status"
                        } else {
                            "unexpected_200"
                        });
                        live.request(false);
                    }
                    Reply::RetryAfter { code, .. } | Reply::Failed { code } => {
                        if code.starts_with("transport") || code.starts_with("http_5") {
                            worker.unknown += 1;
                        }
                        worker.tally.errors.add(&code);
                        live.request(false);
                    }
                }
            }
            worker
        }
    })
    .await
    .map_err(LoadtestError::Scenario)?;
    let elapsed = stop.started.elapsed();
    bar.finish_and_clear();
    let _ = ticker.await;

    let mut total = Tally::default();
    let (mut ok, mut unknown) = (0, 0);
    let mut timed = Vec::new();
    let mut joined = Vec::new();
    for worker in results {
        total.merge(&worker.tally);
        ok += worker.ok;
        unknown += worker.unknown;
        timed.extend(worker.timed);
        joined.extend(worker.joined);
    }
    let positions = position_report(&timed);
    let check = positions_check(&positions, unknown);
    let report = QueueThroughputReport {
        name: "queue joins (paused room)".into(),
        seconds: elapsed.as_secs_f64(),
        connections: phase.connections,
        requests: total.attempts,
        requests_per_second: per_second(total.attempts, elapsed),
        ok,
        latency: total.successes.summary(),
        errors: total.errors,
        positions: Some(positions),
        checks: vec![check],
        peak_rss_kib: None,
    };
    Ok((report, joined))
}

/// Places from the joins' positions (`early` = position).
pub fn position_report(timed: &[Timed]) -> PositionReport {
    let mut positions: Vec<u64> = timed.iter().map(|item| item.early).collect();
    positions.sort_unstable();
    let before = positions.len();
    positions.dedup();
    PositionReport {
        joins: before as u64,
        duplicate_positions: (before - positions.len()) as u64,
        highest_position: positions.last().copied().unwrap_or(0),
        fifo: precedence_violations(timed),
    }
}

/// Places 1..n once each, rising with join order. Joins that got no
/// readable answer may hold places too, so the highest place may exceed
/// the readable joins by at most their number.
pub fn positions_check(positions: &PositionReport, unknown_joins: u64) -> Check {
    let gaps_explained = positions.highest_position >= positions.joins
        && positions.highest_position <= positions.joins + unknown_joins;
    let passed = positions.joins > 0
        && positions.duplicate_positions == 0
        && positions.fifo.violations == 0
        && gaps_explained;
    Check {
        name: CHECK_POSITIONS,
        passed,
        detail: format!(
            "{} joins, highest place {}, {} duplicate places, {} joins placed before an \
             earlier one, {} joins without a readable answer",
            positions.joins,
            positions.highest_position,
            positions.duplicate_positions,
            positions.fifo.violations,
            unknown_joins
        ),
    }
}

pub async fn polls(
    phase: &Phase<'_>,
    joined: &[Joined],
) -> Result<QueueThroughputReport, LoadtestError> {
    if joined.is_empty() {
        return Err(LoadtestError::Scenario(
            "the join phase left no ticket to poll".into(),
        ));
    }
    let mut polled = Vec::with_capacity(joined.len().min(POLLED_TICKETS_MAX));
    for ticket in joined.iter().take(POLLED_TICKETS_MAX) {
        let token = phase
            .minter
            .token(Population::JoinThroughput, ticket.user)
            .map_err(LoadtestError::Scenario)?;
        polled.push((
            queue_api::ticket_path(phase.show_id, &ticket.ticket_id),
            token,
            ticket.ticket_id.clone(),
        ));
    }
    let polled = Arc::new(polled);
    let stop = Arc::new(Stop::after(phase.duration));
    let live = Arc::new(Live::default());
    let bar = phase.progress.bar("queue polls", phase.duration.as_secs());
    let ticker = tick(bar.clone(), live.clone(), stop.started);
    let connections = phase.connections;
    let results = run_workers(connections, |index| {
        let (http, stop, live, polled) = (
            phase.http.clone(),
            stop.clone(),
            live.clone(),
            polled.clone(),
        );
        async move {
            let node = http.node_for(index);
            let mut tally = Tally::default();
            let mut ok = 0u64;
            // Worker k polls tickets k, k + C, k + 2C, … in turn.
            let mut next = index % polled.len();
            while !stop.is_over() && tally.attempts < REQUESTS_PER_WORKER_MAX {
                let (path, token, ticket_id) = &polled[next];
                next = (next + connections) % polled.len();
                tally.attempts += 1;
                let answer = queue_api::poll(&http, node, path, token).await;
                match Reply::of(&answer) {
                    Reply::Ticket { ticket, .. }
                        if ticket.status == Status::Waiting && &ticket.id == ticket_id =>
                    {
                        if let Ok(answer) = &answer {
                            tally.successes.record(answer.latency);
                        }
                        ok += 1;
                        live.request(true);
                    }
                    Reply::Ticket { .. } => {
                        tally.errors.add("unexpected_ticket");
                        live.request(false);
                    }
                    Reply::RetryAfter { code, .. } | Reply::Failed { code } => {
                        tally.errors.add(&code);
                        live.request(false);
                    }
                }
            }
            (tally, ok)
        }
    })
    .await
    .map_err(LoadtestError::Scenario)?;
    let elapsed = stop.started.elapsed();
    bar.finish_and_clear();
    let _ = ticker.await;
    let mut total = Tally::default();
    let mut ok = 0;
    for (tally, worker_ok) in results {
        total.merge(&tally);
        ok += worker_ok;
    }
    let check = Check {
        name: CHECK_POLLS,
        passed: ok > 0 && ok == total.attempts,
        detail: format!(
            "{ok} of {} polls of {} tickets",
            total.attempts,
            polled.len()
        ),
    };
    Ok(QueueThroughputReport {
        name: "queue polls".into(),
        seconds: elapsed.as_secs_f64(),
        connections,
        requests: total.attempts,
        requests_per_second: per_second(total.attempts, elapsed),
        ok,
        latency: total.successes.summary(),
        errors: total.errors,
        positions: None,
        checks: vec![check],
        peak_rss_kib: None,
    })
}

pub fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(sent: u64, answered: u64, position: u64) -> Timed {
        Timed {
            sent_us: sent,
            answered_us: answered,
            early: position,
            late: position.saturating_sub(1),
            checked: true,
        }
    }

    #[test]
    fn places_in_join_order_pass() {
        // Concurrent joins may be placed either way; sequential ones not.
        let timed = [join(0, 10, 2), join(1, 11, 1), join(20, 30, 3)];
        let report = position_report(&timed);
        assert_eq!(report.fifo.violations, 0);
        assert!(positions_check(&report, 0).passed);
    }

    #[test]
    fn a_later_join_placed_ahead_fails() {
        let timed = [join(0, 10, 2), join(20, 30, 1)];
        let report = position_report(&timed);
        assert_eq!(report.fifo.violations, 1);
        assert!(!positions_check(&report, 0).passed);
    }

    #[test]
    fn duplicates_and_unexplained_gaps_fail() {
        let duplicate = position_report(&[join(0, 10, 1), join(1, 11, 1)]);
        assert_eq!(duplicate.duplicate_positions, 1);
        assert!(!positions_check(&duplicate, 0).passed);
        // Place 2 went to a join whose answer was lost: explained by one
        // unknown join, not by none.
        let gap = position_report(&[join(0, 10, 1), join(20, 30, 3)]);
        assert!(!positions_check(&gap, 0).passed);
        assert!(positions_check(&gap, 1).passed);
        assert!(!positions_check(&position_report(&[]), 0).passed);
    }
}
