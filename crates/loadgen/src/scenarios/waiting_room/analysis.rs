//! From the crowd's tickets to its report and checks (pure).

use crate::invariants::Check;
use crate::report::waiting_room::{CrowdReport, OrderReport};
use crate::scenarios::waiting_room::crowd::{Counts, Outcome, Ticket};
use crate::scenarios::waiting_room::order::{
    classify, count_inversions, pairs, precedence_violations, rank_correlation_with_order,
    AdmissionRate, Class, Percentiles, Timed,
};
use crate::scenarios::waiting_room::schedule::ArrivalPlan;
use crate::stats::round1;

pub const CHECK_ALL_ADMITTED: &str = "every arrival joined and was admitted";
pub const CHECK_RATE: &str = "admission never outran admit_per_minute";
pub const CHECK_ORDER: &str =
    "after the opening, nobody admitted before an earlier arrival (beyond poll granularity)";
pub const CHECK_SHUFFLE: &str = "the pre-queue was admitted in random order";

/// Fewer pre-queue tickets than this say nothing about a shuffle.
const SHUFFLE_SAMPLE_MIN: usize = 30;
/// |rho| of a fair shuffle is about 1/sqrt(n); four times that (and at
/// least 0.1) is a false alarm about once in 15,000 runs.
const SHUFFLE_SIGMAS: f64 = 4.0;
const SHUFFLE_LIMIT_MIN: f64 = 0.1;
/// Client and server clocks, and the server's millisecond clock, may put
/// the opening this far apart (same machine).
const CLOCK_SLACK_MICROSECONDS: u64 = 50_000;

/// What the scenario was asked to do, for the report.
pub struct Asked {
    pub arrival_window_seconds: f64,
    pub pre_queue_fraction: f64,
    pub admit_per_minute: u32,
    pub pow_difficulty: u32,
    pub poll_interval_min_seconds: f64,
    pub connections: usize,
}

pub fn crowd_report(
    tickets: &[Ticket],
    counts: &Counts,
    plan: &ArrivalPlan,
    asked: &Asked,
    seconds: f64,
) -> CrowdReport {
    let opening = plan.opening_us;
    let joined: Vec<&Ticket> = tickets.iter().filter(|t| t.id.is_some()).collect();
    let class_of = |ticket: &Ticket| {
        classify(
            ticket.join_sent_us.unwrap_or(0),
            ticket.join_answered_us,
            opening,
        )
    };
    let count_class = |class: Class| joined.iter().filter(|t| class_of(t) == class).count() as u64;
    let outcome = |wanted: Outcome| tickets.iter().filter(|t| t.outcome == wanted).count() as u64;
    let admitted: Vec<&Ticket> = joined
        .iter()
        .copied()
        .filter(|t| t.admitted_by_us.is_some())
        .collect();

    let wait = |filter: &dyn Fn(&Ticket) -> bool| {
        Percentiles::of_microseconds(
            admitted
                .iter()
                .filter(|t| filter(t))
                .map(|t| by(t).saturating_sub(t.join_answered_us))
                .collect(),
        )
    };
    let mut admitted_instants: Vec<u64> = admitted.iter().map(|t| by(t)).collect();
    admitted_instants.sort_unstable();

    let first_join_sent = joined.iter().filter_map(|t| t.join_sent_us).min();
    let last_join_answered = joined.iter().map(|t| t.join_answered_us).max();
    let join_span_us = match (first_join_sent, last_join_answered) {
        (Some(first), Some(last)) => last.saturating_sub(first),
        _ => 0,
    };
    let order = order_report(&admitted, &class_of);
    let configured_per_second = f64::from(asked.admit_per_minute) / 60.0;
    let mut report = CrowdReport {
        arrivals: plan.arrivals,
        arrival_window_seconds: asked.arrival_window_seconds,
        pre_queue_fraction: asked.pre_queue_fraction,
        admit_per_minute: asked.admit_per_minute,
        pow_difficulty: asked.pow_difficulty,
        poll_interval_min_seconds: asked.poll_interval_min_seconds,
        connections: asked.connections,
        seconds,
        opening_seconds: opening as f64 / 1e6,
        // Over the schedule's own span (the window plus the quiet interval
        // around the opening), as the achieved rate is over the joins' span.
        scheduled_joins_per_second: rate(
            u64::from(plan.arrivals),
            plan.last_arrival_us()
                .saturating_sub(plan.first_arrival_us()),
        ),
        joins: joined.len() as u64,
        joins_per_second: rate(joined.len() as u64, join_span_us),
        join_latency: counts.join_latency.summary(),
        join_lag: counts.join_lag.summary(),
        poll_lag: counts.poll_lag.summary(),
        pre_queue_joins: count_class(Class::PreQueue),
        post_opening_joins: count_class(Class::PostOpening),
        straddling_joins: count_class(Class::Straddling),
        polls: counts.polls,
        polls_per_second: rate(counts.polls, (seconds * 1e6) as u64),
        polls_per_ticket: if joined.is_empty() {
            0.0
        } else {
            (counts.polls as f64 / joined.len() as f64 * 100.0).round() / 100.0
        },
        poll_latency: counts.poll_latency.summary(),
        challenges: counts.challenges,
        pow_solve: counts.pow_solve.summary(),
        admitted: admitted.len() as u64,
        expired: outcome(Outcome::Expired),
        still_waiting: outcome(Outcome::Waiting),
        join_failed: outcome(Outcome::JoinFailed),
        poll_failed: outcome(Outcome::PollFailed),
        not_arrived: outcome(Outcome::Arriving),
        admitted_per_second: AdmissionRate::of(&admitted_instants, opening),
        configured_admitted_per_second: (configured_per_second * 10.0).round() / 10.0,
        wait: wait(&|_| true),
        wait_pre_queue: wait(&|t| class_of(t) == Class::PreQueue),
        wait_post_opening: wait(&|t| class_of(t) == Class::PostOpening),
        admission_uncertainty: Percentiles::of_microseconds(
            admitted
                .iter()
                .map(|t| by(t).saturating_sub(t.admitted_after_us))
                .collect(),
        ),
        order,
        errors: counts.errors.clone(),
        checks: Vec::new(),
        peak_rss_kib: None,
    };
    report.checks = checks(&report, &admitted_instants, opening);
    report
}

fn by(ticket: &Ticket) -> u64 {
    ticket.admitted_by_us.unwrap_or(u64::MAX)
}

fn rate(count: u64, span_us: u64) -> f64 {
    if span_us == 0 {
        return 0.0;
    }
    round1(count as f64 / (span_us as f64 / 1e6))
}

fn order_report(admitted: &[&Ticket], class_of: &dyn Fn(&Ticket) -> Class) -> OrderReport {
    // Every admitted ticket can be the earlier one; only post-opening ones
    // are checked against their predecessors (the pre-queue is shuffled).
    let timed: Vec<Timed> = admitted
        .iter()
        .map(|t| Timed {
            sent_us: t.join_sent_us.unwrap_or(0),
            answered_us: t.join_answered_us,
            early: t.admitted_after_us,
            late: by(t),
            checked: class_of(t) == Class::PostOpening,
        })
        .collect();
    let definite = precedence_violations(&timed);

    let in_join_order = |class: Class| {
        let mut chosen: Vec<&&Ticket> = admitted.iter().filter(|t| class_of(t) == class).collect();
        chosen.sort_by_key(|t| (t.join_answered_us, t.index));
        chosen.into_iter().map(|t| by(t)).collect::<Vec<u64>>()
    };
    let post = in_join_order(Class::PostOpening);
    let observed_inversions = count_inversions(&post);
    let observed_pairs = pairs(post.len() as u64);
    let pre = in_join_order(Class::PreQueue);
    OrderReport {
        definite_overtakes: definite,
        worst_overtake_seconds: definite.worst_margin as f64 / 1e6,
        observed_inversions,
        observed_pairs,
        observed_inversion_fraction: (observed_pairs > 0)
            .then(|| observed_inversions as f64 / observed_pairs as f64),
        pre_queue_rank_correlation: rank_correlation_with_order(&pre),
        pre_queue_correlation_limit: shuffle_limit(pre.len()),
    }
}

pub fn shuffle_limit(count: usize) -> f64 {
    if count < 2 {
        return 1.0;
    }
    (SHUFFLE_SIGMAS / ((count - 1) as f64).sqrt()).max(SHUFFLE_LIMIT_MIN)
}

fn checks(report: &CrowdReport, admitted_instants: &[u64], opening_us: u64) -> Vec<Check> {
    let all_admitted = Check {
        name: CHECK_ALL_ADMITTED,
        passed: report.arrivals > 0 && report.admitted == u64::from(report.arrivals),
        detail: format!(
            "{} of {} admitted; expired {}, still waiting {}, join failed {}, polls failed {}, \
             not arrived {}",
            report.admitted,
            report.arrivals,
            report.expired,
            report.still_waiting,
            report.join_failed,
            report.poll_failed,
            report.not_arrived
        ),
    };
    // The server's frontier moves at admit_per_minute from the opening (and
    // is only ever pulled back), so by the instant the last admission was
    // seen it cannot have passed rate × elapsed places, plus one for rounding.
    let last = admitted_instants.last().copied().unwrap_or(opening_us);
    let elapsed_us = (last + CLOCK_SLACK_MICROSECONDS).saturating_sub(opening_us);
    let allowed =
        (f64::from(report.admit_per_minute) * elapsed_us as f64 / 60e6).floor() as u64 + 1;
    let rate = Check {
        name: CHECK_RATE,
        passed: report.admitted <= allowed,
        detail: format!(
            "{} admitted by {:.3} s after the opening; at most {} allowed at {}/min",
            report.admitted,
            last.saturating_sub(opening_us) as f64 / 1e6,
            allowed,
            report.admit_per_minute
        ),
    };
    let order = &report.order;
    let in_order = Check {
        name: CHECK_ORDER,
        passed: order.definite_overtakes.violations == 0,
        detail: format!(
            "{} of {} post-opening tickets definitely overtook an earlier arrival \
             (worst by {:.3} s); observed inversions {} of {} pairs",
            order.definite_overtakes.violations,
            order.definite_overtakes.checked,
            order.worst_overtake_seconds,
            order.observed_inversions,
            order.observed_pairs
        ),
    };
    let shuffle = match order.pre_queue_rank_correlation {
        Some(rho) if report.pre_queue_joins as usize >= SHUFFLE_SAMPLE_MIN => Check {
            name: CHECK_SHUFFLE,
            passed: rho.abs() <= order.pre_queue_correlation_limit,
            detail: format!(
                "Spearman rho {rho:.4} between join order and admission order of {} pre-queue \
                 tickets; a shuffle stays within ±{:.3}",
                report.pre_queue_joins, order.pre_queue_correlation_limit
            ),
        },
        _ => Check {
            name: CHECK_SHUFFLE,
            passed: true,
            detail: format!(
                "not judged: {} pre-queue tickets (at least {SHUFFLE_SAMPLE_MIN} needed)",
                report.pre_queue_joins
            ),
        },
    };
    vec![all_admitted, rate, in_order, shuffle]
}

#[cfg(test)]
mod tests {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

    use super::*;

    const ASKED: Asked = Asked {
        arrival_window_seconds: 10.0,
        pre_queue_fraction: 0.5,
        admit_per_minute: 6_000,
        pow_difficulty: 0,
        poll_interval_min_seconds: 0.25,
        connections: 8,
    };

    /// 200 pre-queue and 200 post-opening tickets of a plan with the
    /// opening at 7 s, admitted at 100/s from the opening: the pre-queue in
    /// a shuffled order, then everyone else in join order; each admission
    /// seen within 200 ms.
    fn fixture(shuffle_pre_queue: bool) -> (ArrivalPlan, Vec<Ticket>) {
        let plan = ArrivalPlan::new(400, 10_000_000, 0.5, 1);
        assert_eq!(plan.opening_us, 7_000_000);
        let mut pre_places: Vec<u64> = (1..=200).collect();
        if shuffle_pre_queue {
            pre_places.shuffle(&mut rand::rngs::StdRng::seed_from_u64(8));
        }
        let tickets = (0..400u32)
            .map(|index| {
                let sent = plan.arrival_us(index);
                let place = if index < 200 {
                    pre_places[index as usize]
                } else {
                    u64::from(index) + 1
                };
                let admitted = plan.opening_us + place * 10_000;
                let seen = admitted.max(sent + 1_000) + 150_000;
                Ticket {
                    index,
                    scheduled_us: sent,
                    id: Some(format!("qtk_{index}")),
                    join_sent_us: Some(sent),
                    join_answered_us: sent + 1_000,
                    admitted_after_us: admitted.saturating_sub(50_000).max(sent),
                    admitted_by_us: Some(seen),
                    polls: 2,
                    outcome: Outcome::Admitted,
                    ..Ticket::default()
                }
            })
            .collect();
        (plan, tickets)
    }

    fn verdicts(report: &CrowdReport) -> Vec<(&'static str, bool)> {
        report.checks.iter().map(|c| (c.name, c.passed)).collect()
    }

    #[test]
    fn a_fair_run_passes_every_check() {
        let (plan, tickets) = fixture(true);
        let report = crowd_report(&tickets, &Counts::default(), &plan, &ASKED, 12.0);
        assert!(
            report.checks.iter().all(|c| c.passed),
            "{:?}",
            report.checks
        );
        assert_eq!(report.admitted, 400);
        assert_eq!(
            (report.pre_queue_joins, report.post_opening_joins),
            (200, 200)
        );
        assert_eq!(report.order.definite_overtakes.checked, 200);
        let rho = report.order.pre_queue_rank_correlation.expect("defined");
        assert!(rho.abs() < 0.2, "{rho}");
        // Waits are ordered and the uncertainty is the 200 ms window.
        let wait = report.wait;
        assert!(wait.p50_seconds <= wait.p90_seconds && wait.p99_seconds <= wait.max_seconds);
        assert_eq!(report.admission_uncertainty.p50_seconds, 0.2);
        // The pre-queue goes at the full 100/s; later the line runs empty
        // and admissions follow the arrivals (40/s): in between, in the middle.
        let steady = report.admitted_per_second.middle_per_second;
        assert!((40.0..=100.0).contains(&steady), "{steady}");
    }

    #[test]
    fn a_first_come_first_served_pre_queue_fails_the_shuffle_check() {
        let (plan, tickets) = fixture(false);
        let report = crowd_report(&tickets, &Counts::default(), &plan, &ASKED, 12.0);
        assert!(verdicts(&report).contains(&(CHECK_SHUFFLE, false)));
        assert!(verdicts(&report).contains(&(CHECK_ORDER, true)));
    }

    #[test]
    fn an_overtake_fails_the_order_check() {
        let (plan, mut tickets) = fixture(true);
        // Ticket 210 (joined at about 8.25 s, place 211, due at 9.11 s) is
        // seen admitted at 8.4 s, while the whole pre-queue and tickets
        // 200–209 were still seen waiting after that.
        tickets[210].admitted_by_us = Some(8_400_000);
        tickets[210].admitted_after_us = 8_300_000;
        let report = crowd_report(&tickets, &Counts::default(), &plan, &ASKED, 12.0);
        assert!(verdicts(&report).contains(&(CHECK_ORDER, false)));
        assert_eq!(report.order.definite_overtakes.violations, 1);
        assert!(report.order.observed_inversions > 0);
    }

    #[test]
    fn a_missing_admission_or_a_burst_fails() {
        let (plan, mut tickets) = fixture(true);
        tickets[10].admitted_by_us = None;
        tickets[10].outcome = Outcome::Waiting;
        let report = crowd_report(&tickets, &Counts::default(), &plan, &ASKED, 12.0);
        assert!(verdicts(&report).contains(&(CHECK_ALL_ADMITTED, false)));
        assert_eq!(report.still_waiting, 1);

        // Everyone seen admitted within 1 s of the opening: 400 where
        // 100/s allows about 100.
        let (plan, mut tickets) = fixture(true);
        for ticket in &mut tickets {
            let seen = ticket.join_answered_us.max(plan.opening_us) + 500_000;
            ticket.admitted_by_us = Some(seen);
            ticket.admitted_after_us = seen - 100_000;
        }
        tickets.iter_mut().skip(200).for_each(|t| {
            t.admitted_by_us = Some(plan.opening_us + 3_000_000);
            t.admitted_after_us = plan.opening_us + 2_900_000;
        });
        let report = crowd_report(&tickets, &Counts::default(), &plan, &ASKED, 12.0);
        assert!(verdicts(&report).contains(&(CHECK_RATE, false)));
    }

    #[test]
    fn shuffle_limits_shrink_with_the_sample() {
        assert_eq!(shuffle_limit(1), 1.0);
        assert!((shuffle_limit(101) - 0.4).abs() < 1e-9);
        assert_eq!(shuffle_limit(1_000_000), SHUFFLE_LIMIT_MIN);
    }
}
