//! The waiting-room scenario's results (`--json` as-is) and its human table.

use std::fmt::Write;

use serde::Serialize;

use super::{errors, latency_header, latency_row, line, percent, rss};
use crate::invariants::Check;
use crate::scenarios::waiting_room::order::{AdmissionRate, Percentiles, Violations};
use crate::stats::{ErrorCounts, LatencySummary};

/// Joins or polls later than this (p99) mean the crowd ran behind schedule.
const BEHIND_SCHEDULE_MILLISECONDS: f64 = 1_000.0;

/// Said in every report: the crowd is not registered users.
pub const USERS_NOTE: &str = "minted: access tokens signed by the load generator with the \
     server's JWT secret for synthetic customers that were never registered";

#[derive(Debug, Clone, Serialize)]
pub struct WaitingRoomReport {
    /// Where the users came from (always [`USERS_NOTE`]).
    pub users: &'static str,
    /// Joins as fast as possible into a paused room.
    pub joins: QueueThroughputReport,
    /// Polls of those tickets as fast as possible.
    pub polls: QueueThroughputReport,
    pub crowd: CrowdReport,
    /// A registered buyer's admission token opens `POST /v1/holds`.
    pub admission_token_checks: Vec<Check>,
    pub ratios: WaitingRoomRatios,
}

impl WaitingRoomReport {
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.joins
            .checks
            .iter()
            .chain(&self.polls.checks)
            .chain(&self.crowd.checks)
            .chain(&self.admission_token_checks)
    }

    pub fn checks_passed(&self) -> bool {
        self.checks().all(|check| check.passed)
    }
}

/// One of the two as-fast-as-possible phases.
#[derive(Debug, Clone, Serialize)]
pub struct QueueThroughputReport {
    pub name: String,
    pub seconds: f64,
    pub connections: usize,
    pub requests: u64,
    pub requests_per_second: f64,
    /// Answers of the wanted kind (201 joins, 200 WAITING polls).
    pub ok: u64,
    pub latency: LatencySummary,
    pub errors: ErrorCounts,
    /// Joins only: the places the paused room handed out.
    pub positions: Option<PositionReport>,
    pub checks: Vec<Check>,
    pub peak_rss_kib: Option<u64>,
}

/// In a paused room nobody is admitted, so a join's `position` is its place
/// in line: the places must be 1..n, each once, rising with join order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PositionReport {
    pub joins: u64,
    pub duplicate_positions: u64,
    pub highest_position: u64,
    /// Joins whose position was not above that of a join answered before
    /// they were sent.
    pub fifo: Violations,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrowdReport {
    pub arrivals: u32,
    pub arrival_window_seconds: f64,
    pub pre_queue_fraction: f64,
    pub admit_per_minute: u32,
    pub pow_difficulty: u32,
    pub poll_interval_min_seconds: f64,
    pub connections: usize,
    /// From the first scheduled arrival's epoch to the last answer.
    pub seconds: f64,
    /// `sales_start`, seconds after the epoch.
    pub opening_seconds: f64,
    pub scheduled_joins_per_second: f64,
    pub joins: u64,
    /// Joins over the time from the first join sent to the last answered.
    pub joins_per_second: f64,
    pub join_latency: LatencySummary,
    /// How late joins were sent against their schedule (the client or the
    /// server falling behind).
    pub join_lag: LatencySummary,
    /// How late polls were sent against their due instant: late polls make
    /// admissions seen late, and waits look longer than they were.
    pub poll_lag: LatencySummary,
    pub pre_queue_joins: u64,
    pub post_opening_joins: u64,
    /// Sent before, answered after the opening: in no order check.
    pub straddling_joins: u64,
    pub polls: u64,
    pub polls_per_second: f64,
    pub polls_per_ticket: f64,
    pub poll_latency: LatencySummary,
    pub challenges: u64,
    pub pow_solve: LatencySummary,
    pub admitted: u64,
    pub expired: u64,
    /// Still WAITING at the deadline.
    pub still_waiting: u64,
    pub join_failed: u64,
    pub poll_failed: u64,
    /// Arrivals whose time had not come by the deadline.
    pub not_arrived: u64,
    pub admitted_per_second: AdmissionRate,
    pub configured_admitted_per_second: f64,
    /// From the join's answer to the first answer showing ADMITTED.
    pub wait: Percentiles,
    pub wait_pre_queue: Percentiles,
    pub wait_post_opening: Percentiles,
    /// How precisely admission instants are known: first ADMITTED answer
    /// minus the send of the last WAITING one.
    pub admission_uncertainty: Percentiles,
    pub order: OrderReport,
    pub errors: ErrorCounts,
    pub checks: Vec<Check>,
    pub peak_rss_kib: Option<u64>,
}

/// See `scenarios::waiting_room::order` for the measures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrderReport {
    /// Post-opening tickets that a certain predecessor was last seen waiting
    /// after they were seen admitted.
    pub definite_overtakes: Violations,
    pub worst_overtake_seconds: f64,
    /// Post-opening pairs whose first-seen admissions are out of join order.
    pub observed_inversions: u64,
    pub observed_pairs: u64,
    pub observed_inversion_fraction: Option<f64>,
    /// Spearman's rho between pre-queue join order and admission order:
    /// about 0 for a fair shuffle, near 1 for first come first served.
    pub pre_queue_rank_correlation: Option<f64>,
    /// |rho| above this fails the shuffle check.
    pub pre_queue_correlation_limit: f64,
}

/// The waiting room's rates as a share of the same run's `baseline`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct WaitingRoomRatios {
    pub joins_to_baseline: Option<f64>,
    pub polls_to_baseline: Option<f64>,
    /// The crowd's joins and polls per second together.
    pub crowd_requests_to_baseline: Option<f64>,
}

fn seconds_row(out: &mut String, what: &str, spread: &Percentiles) {
    let _ = writeln!(
        out,
        "  {what:<28} {:>10} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
        spread.count,
        spread.p50_seconds,
        spread.p90_seconds,
        spread.p99_seconds,
        spread.max_seconds
    );
}

fn throughput(out: &mut String, phase: &QueueThroughputReport, ratio: Option<f64>) {
    let _ = writeln!(out, "\n[{}] {:.1} s", phase.name, phase.seconds);
    line(out, "requests", phase.requests);
    line(out, "requests/s", phase.requests_per_second);
    line(out, "÷ baseline", percent(ratio));
    line(out, "ok", phase.ok);
    if let Some(positions) = &phase.positions {
        line(
            out,
            "positions",
            format!(
                "{} joins, highest {}, {} duplicates, {} out of order (of {})",
                positions.joins,
                positions.highest_position,
                positions.duplicate_positions,
                positions.fifo.violations,
                positions.fifo.checked
            ),
        );
    }
    latency_header(out);
    latency_row(out, "ok", &phase.latency);
    errors(out, &phase.errors);
    rss(out, phase.peak_rss_kib);
    checks(out, &phase.checks);
}

fn checks(out: &mut String, checks: &[Check]) {
    for check in checks {
        let _ = writeln!(
            out,
            "    [{}] {} — {}",
            if check.passed { "pass" } else { "FAIL" },
            check.name,
            check.detail
        );
    }
}

fn optional(value: Option<f64>, digits: usize) -> String {
    value.map_or("n/a".into(), |value| format!("{value:.digits$}"))
}

pub fn human(out: &mut String, report: &WaitingRoomReport) {
    let _ = writeln!(out, "\n[waiting-room] users: {}", report.users);
    throughput(out, &report.joins, report.ratios.joins_to_baseline);
    throughput(out, &report.polls, report.ratios.polls_to_baseline);
    let crowd = &report.crowd;
    let _ = writeln!(
        out,
        "\n[waiting-room crowd] {} arrivals over {:.0} s ({:.0}% before the opening at {:.1} s), \
         admit {}/min, proof of work {} bits, {:.1} s",
        crowd.arrivals,
        crowd.arrival_window_seconds,
        crowd.pre_queue_fraction * 100.0,
        crowd.opening_seconds,
        crowd.admit_per_minute,
        crowd.pow_difficulty,
        crowd.seconds
    );
    line(
        out,
        "joins",
        format!(
            "{} ({} pre-queue, {} after opening, {} straddling)",
            crowd.joins, crowd.pre_queue_joins, crowd.post_opening_joins, crowd.straddling_joins
        ),
    );
    line(
        out,
        "joins/s",
        format!(
            "{} (scheduled {})",
            crowd.joins_per_second, crowd.scheduled_joins_per_second
        ),
    );
    line(
        out,
        "polls",
        format!("{} ({:.2} per ticket)", crowd.polls, crowd.polls_per_ticket),
    );
    line(out, "polls/s", crowd.polls_per_second);
    line(
        out,
        "joins+polls ÷ baseline",
        percent(report.ratios.crowd_requests_to_baseline),
    );
    line(
        out,
        "admitted",
        format!(
            "{} of {} (expired {}, still waiting {}, join failed {}, polls failed {}, not arrived {})",
            crowd.admitted,
            crowd.arrivals,
            crowd.expired,
            crowd.still_waiting,
            crowd.join_failed,
            crowd.poll_failed,
            crowd.not_arrived
        ),
    );
    line(
        out,
        "admitted/s",
        format!(
            "{} overall, {} steady (p10–p90), configured {:.1}",
            crowd.admitted_per_second.overall_per_second,
            crowd.admitted_per_second.middle_per_second,
            crowd.configured_admitted_per_second
        ),
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "queue wait (s)", "count", "p50", "p90", "p99", "max"
    );
    seconds_row(out, "all", &crowd.wait);
    seconds_row(out, "pre-queue", &crowd.wait_pre_queue);
    seconds_row(out, "after opening", &crowd.wait_post_opening);
    seconds_row(out, "admission uncertainty", &crowd.admission_uncertainty);
    let order = &crowd.order;
    line(
        out,
        "definite overtakes",
        format!(
            "{} of {} post-opening tickets (worst {:.3} s)",
            order.definite_overtakes.violations,
            order.definite_overtakes.checked,
            order.worst_overtake_seconds
        ),
    );
    line(
        out,
        "observed inversions",
        format!(
            "{} of {} pairs ({}; poll granularity)",
            order.observed_inversions,
            order.observed_pairs,
            order
                .observed_inversion_fraction
                .map_or("n/a".into(), |fraction| format!("{:.4}%", fraction * 100.0))
        ),
    );
    line(
        out,
        "pre-queue order vs joins",
        format!(
            "Spearman rho {} (|rho| ≤ {:.3} for a shuffle)",
            optional(order.pre_queue_rank_correlation, 4),
            order.pre_queue_correlation_limit
        ),
    );
    latency_header(out);
    latency_row(out, "join (201)", &crowd.join_latency);
    latency_row(out, "join sent behind schedule", &crowd.join_lag);
    latency_row(out, "poll sent behind schedule", &crowd.poll_lag);
    latency_row(out, "poll (200)", &crowd.poll_latency);
    if crowd.challenges > 0 {
        line(out, "challenges", crowd.challenges);
        latency_row(out, "proof of work solving", &crowd.pow_solve);
    }
    errors(out, &crowd.errors);
    rss(out, crowd.peak_rss_kib);
    if crowd.join_lag.p99_ms > BEHIND_SCHEDULE_MILLISECONDS
        || crowd.poll_lag.p99_ms > BEHIND_SCHEDULE_MILLISECONDS
    {
        let _ = writeln!(
            out,
            "  note: the crowd ran behind its schedule (p99 joins {:.1} s, polls {:.1} s late): \
             server and client could not keep up, so arrivals came later than planned and \
             admissions were seen late (see the admission uncertainty)",
            crowd.join_lag.p99_ms / 1_000.0,
            crowd.poll_lag.p99_ms / 1_000.0
        );
    }
    checks(out, &crowd.checks);
    if !report.admission_token_checks.is_empty() {
        let _ = writeln!(out, "\n[waiting-room admission token]");
        checks(out, &report.admission_token_checks);
    }
    let _ = writeln!(
        out,
        "  waiting room: {}",
        if report.checks_passed() {
            "PASS"
        } else {
            "FAIL"
        }
    );
}
