//! The arithmetic of a waiting-room run, with no I/O: percentiles of the
//! waits, admission rates, and whether admission order matched arrival
//! order. Times are microseconds since the run's epoch (one `Instant`).
//!
//! # What the client can know about order
//!
//! The client never sees the moment a ticket is admitted, only polls: a
//! ticket was admitted after the send instant of the last request that
//! answered WAITING (`admitted_after_us`) and no later than the answer
//! instant of the first that answered ADMITTED (`admitted_by_us`). Likewise
//! the server put a ticket in line somewhere between its join's send and
//! answer instants. So:
//!
//! - ticket `i` is certainly ahead of `j` in a first-come-first-served line
//!   when `i`'s join was answered before `j`'s was sent;
//! - `j` was certainly admitted before `i` when `j.admitted_by_us <
//!   i.admitted_after_us`.
//!
//! A **definite overtake** is a `j` for which both hold for some `i`: a
//! violation of first come, first served that no poll granularity or
//! network timing explains. [`precedence_violations`] counts them in
//! O(n log n). The **observed inversions** ([`count_inversions`]) count the
//! pairs whose first-seen admission instants are out of join order; they
//! include the poll granularity and say how precise the observation was,
//! not whether the server erred.

use serde::Serialize;

/// When a join happened relative to the opening (`sales_start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Answered before the opening: the pre-queue, shuffled at opening.
    PreQueue,
    /// Sent at or after the opening: first come, first served.
    PostOpening,
    /// Sent before and answered after the opening: the server may have
    /// taken it either way, so neither order check counts it.
    Straddling,
}

pub fn classify(join_sent_us: u64, join_answered_us: u64, opening_us: u64) -> Class {
    if join_answered_us < opening_us {
        Class::PreQueue
    } else if join_sent_us >= opening_us {
        Class::PostOpening
    } else {
        Class::Straddling
    }
}

/// One item of a precedence check: its join's send and answer instants,
/// the value that must not exceed a later item's `late` (`early`), and
/// whether the item itself is checked against its predecessors.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub sent_us: u64,
    pub answered_us: u64,
    pub early: u64,
    pub late: u64,
    pub checked: bool,
}

/// Items that a certain predecessor beat on the other side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Violations {
    /// Items checked.
    pub checked: u64,
    /// Checked items with a certain predecessor whose `early` exceeds their `late`.
    pub violations: u64,
    /// The largest such excess (microseconds for times).
    pub worst_margin: u64,
}

/// For each checked `j`: is there an `i` with `i.answered_us < j.sent_us`
/// (certainly before `j`) and `i.early > j.late`? Sorting by answer instant
/// makes the certain predecessors of `j` a prefix, so a prefix maximum of
/// `early` answers each `j` with one binary search.
pub fn precedence_violations(items: &[Timed]) -> Violations {
    let mut by_answer: Vec<&Timed> = items.iter().collect();
    by_answer.sort_by_key(|item| item.answered_us);
    let mut prefix_max = Vec::with_capacity(by_answer.len());
    let mut running = 0u64;
    for item in &by_answer {
        running = running.max(item.early);
        prefix_max.push(running);
    }
    let mut result = Violations::default();
    for item in items.iter().filter(|item| item.checked) {
        result.checked += 1;
        let predecessors = by_answer.partition_point(|other| other.answered_us < item.sent_us);
        if predecessors == 0 {
            continue;
        }
        let earliest_blocker = prefix_max[predecessors - 1];
        if earliest_blocker > item.late {
            result.violations += 1;
            result.worst_margin = result.worst_margin.max(earliest_blocker - item.late);
        }
    }
    result
}

/// Pairs `(i, j)` with `i < j` and `values[i] > values[j]` (merge sort).
pub fn count_inversions(values: &[u64]) -> u64 {
    let mut work = values.to_vec();
    let mut buffer = vec![0u64; values.len()];
    sort_counting(&mut work, &mut buffer)
}

fn sort_counting(values: &mut [u64], buffer: &mut [u64]) -> u64 {
    let length = values.len();
    if length < 2 {
        return 0;
    }
    let middle = length / 2;
    let mut inversions = sort_counting(&mut values[..middle], &mut buffer[..middle])
        + sort_counting(&mut values[middle..], &mut buffer[middle..]);
    let (mut left, mut right, mut out) = (0, middle, 0);
    while left < middle && right < length {
        if values[left] <= values[right] {
            buffer[out] = values[left];
            left += 1;
        } else {
            // Every value still waiting on the left is greater.
            inversions += (middle - left) as u64;
            buffer[out] = values[right];
            right += 1;
        }
        out += 1;
    }
    buffer[out..out + middle - left].copy_from_slice(&values[left..middle]);
    out += middle - left;
    buffer[out..length].copy_from_slice(&values[right..length]);
    values.copy_from_slice(&buffer[..length]);
    inversions
}

/// The number of pairs among `count` items.
pub fn pairs(count: u64) -> u64 {
    count.saturating_mul(count.saturating_sub(1)) / 2
}

/// Spearman's rank correlation between the order of `values` (their index)
/// and the values themselves, ties sharing their average rank: 1 when the
/// values rise with the index, −1 when they fall, about 0 when unrelated.
/// `None` below two values or when all values are equal.
pub fn rank_correlation_with_order(values: &[u64]) -> Option<f64> {
    let count = values.len();
    if count < 2 {
        return None;
    }
    let ranks = average_ranks(values);
    let mean = (count as f64 - 1.0) / 2.0;
    let (mut covariance, mut variance_order, mut variance_rank) = (0.0, 0.0, 0.0);
    for (index, rank) in ranks.iter().enumerate() {
        let order = index as f64 - mean;
        let rank = rank - mean;
        covariance += order * rank;
        variance_order += order * order;
        variance_rank += rank * rank;
    }
    if variance_rank == 0.0 {
        return None;
    }
    Some(covariance / (variance_order * variance_rank).sqrt())
}

/// 0-based ranks of `values`, equal values sharing the mean of their ranks.
fn average_ranks(values: &[u64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by_key(|&index| values[index]);
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let shared = (start + end - 1) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = shared;
        }
        start = end;
    }
    ranks
}

/// Nearest-rank percentile of sorted values: the smallest value with at
/// least `quantile` of all values at or below it; 0 when empty.
pub fn percentile(sorted: &[u64], quantile: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (quantile.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Exact percentiles of durations, in seconds (millisecond precision).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_seconds: f64,
    pub p90_seconds: f64,
    pub p99_seconds: f64,
    pub max_seconds: f64,
}

impl Percentiles {
    pub fn of_microseconds(mut values: Vec<u64>) -> Percentiles {
        values.sort_unstable();
        let seconds = |microseconds: u64| (microseconds as f64 / 1_000.0).round() / 1_000.0;
        Percentiles {
            count: values.len() as u64,
            p50_seconds: seconds(percentile(&values, 0.50)),
            p90_seconds: seconds(percentile(&values, 0.90)),
            p99_seconds: seconds(percentile(&values, 0.99)),
            max_seconds: seconds(values.last().copied().unwrap_or(0)),
        }
    }
}

/// Admissions per second, from the sorted instants at which admissions
/// were first seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AdmissionRate {
    /// All admissions over the time from the opening to the last one.
    pub overall_per_second: f64,
    /// Admissions between the 10th and 90th percentile instants over that
    /// span: the steady rate, without the ramp at the opening and the tail
    /// when the line runs empty.
    pub middle_per_second: f64,
}

impl AdmissionRate {
    pub fn of(sorted_admitted_us: &[u64], opening_us: u64) -> AdmissionRate {
        let count = sorted_admitted_us.len();
        let Some(&last) = sorted_admitted_us.last() else {
            return AdmissionRate::default();
        };
        let per_second = |admissions: usize, span_us: u64| {
            if span_us == 0 {
                0.0
            } else {
                (admissions as f64 / (span_us as f64 / 1e6) * 10.0).round() / 10.0
            }
        };
        let low = count / 10;
        let high = (count * 9 / 10).min(count - 1);
        AdmissionRate {
            overall_per_second: per_second(count, last.saturating_sub(opening_us)),
            middle_per_second: per_second(
                high - low,
                sorted_admitted_us[high].saturating_sub(sorted_admitted_us[low]),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn ticket(sent: u64, answered: u64, after: u64, by: u64) -> Timed {
        Timed {
            sent_us: sent,
            answered_us: answered,
            early: after,
            late: by,
            checked: true,
        }
    }

    #[test]
    fn first_come_first_served_has_no_overtakes() {
        // Joins 10 ms apart, admitted 1 s apart, polls 200 ms wide.
        let items: Vec<Timed> = (0..100u64)
            .map(|k| {
                let admitted = 5_000_000 + k * 1_000_000;
                ticket(k * 10_000, k * 10_000 + 500, admitted - 200_000, admitted)
            })
            .collect();
        let result = precedence_violations(&items);
        assert_eq!(result.checked, 100);
        assert_eq!(result.violations, 0);
    }

    #[test]
    fn a_later_arrival_admitted_first_beyond_the_polls_is_an_overtake() {
        let first = ticket(0, 1_000, 9_000_000, 9_500_000);
        // Joined after the first was answered, seen admitted at 8 s, before
        // the first was last seen waiting (9 s).
        let second = ticket(2_000, 3_000, 7_000_000, 8_000_000);
        let result = precedence_violations(&[first, second]);
        assert_eq!(result.violations, 1);
        assert_eq!(result.worst_margin, 1_000_000);
    }

    #[test]
    fn overlapping_polls_or_overlapping_joins_prove_nothing() {
        // Admission windows overlap: within the poll granularity.
        let first = ticket(0, 1_000, 8_000_000, 9_500_000);
        let second = ticket(2_000, 3_000, 7_000_000, 8_500_000);
        assert_eq!(precedence_violations(&[first, second]).violations, 0);
        // Joins overlap in time: the server could have put either first.
        let first = ticket(0, 5_000, 9_000_000, 9_500_000);
        let second = ticket(2_000, 6_000, 7_000_000, 8_000_000);
        assert_eq!(precedence_violations(&[first, second]).violations, 0);
        // An unchecked later item (a pre-queue ticket) is not counted.
        let first = ticket(0, 1_000, 9_000_000, 9_500_000);
        let mut second = ticket(2_000, 3_000, 7_000_000, 8_000_000);
        second.checked = false;
        let result = precedence_violations(&[first, second]);
        assert_eq!((result.checked, result.violations), (1, 0));
    }

    #[test]
    fn precedence_agrees_with_brute_force() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..200 {
            let items: Vec<Timed> = (0..30)
                .map(|_| {
                    let sent = rng.gen_range(0..1_000);
                    let after = rng.gen_range(0..1_000);
                    Timed {
                        sent_us: sent,
                        answered_us: sent + rng.gen_range(0..100),
                        early: after,
                        late: after + rng.gen_range(0..300),
                        checked: rng.gen_bool(0.8),
                    }
                })
                .collect();
            let mut expected = Violations::default();
            for j in items.iter().filter(|j| j.checked) {
                expected.checked += 1;
                let worst = items
                    .iter()
                    .filter(|i| i.answered_us < j.sent_us && i.early > j.late)
                    .map(|i| i.early - j.late)
                    .max();
                if let Some(margin) = worst {
                    expected.violations += 1;
                    expected.worst_margin = expected.worst_margin.max(margin);
                }
            }
            assert_eq!(precedence_violations(&items), expected);
        }
    }

    #[test]
    fn inversions_match_brute_force() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for length in [0, 1, 2, 3, 17, 64, 257] {
            let values: Vec<u64> = (0..length).map(|_| rng.gen_range(0..20)).collect();
            let mut expected = 0;
            for i in 0..values.len() {
                for j in i + 1..values.len() {
                    if values[i] > values[j] {
                        expected += 1;
                    }
                }
            }
            assert_eq!(count_inversions(&values), expected, "{values:?}");
        }
        let reversed: Vec<u64> = (0..1_000).rev().collect();
        assert_eq!(count_inversions(&reversed), pairs(1_000));
        assert_eq!(count_inversions(&[1, 1, 1]), 0, "ties are no inversion");
    }

    #[test]
    fn rank_correlation_of_ordered_reversed_and_shuffled() {
        let rising: Vec<u64> = (0..1_000).collect();
        let falling: Vec<u64> = (0..1_000).rev().collect();
        let close = |value: Option<f64>, expected: f64| {
            value.is_some_and(|value| (value - expected).abs() < 1e-9)
        };
        assert!(close(rank_correlation_with_order(&rising), 1.0));
        assert!(close(rank_correlation_with_order(&falling), -1.0));
        // Monotone with ties still correlates strongly.
        let steps: Vec<u64> = (0..1_000).map(|k| k / 100).collect();
        assert!(rank_correlation_with_order(&steps).is_some_and(|rho| rho > 0.99));
        // A fixed shuffle of 10,000: |rho| is about 1/sqrt(n) = 0.01.
        let mut shuffled: Vec<u64> = (0..10_000).collect();
        shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(3));
        let rho = rank_correlation_with_order(&shuffled).expect("defined");
        assert!(rho.abs() < 0.05, "{rho}");
        assert_eq!(rank_correlation_with_order(&[4, 4, 4]), None);
        assert_eq!(rank_correlation_with_order(&[4]), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), 50);
        assert_eq!(percentile(&values, 0.90), 90);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&values, 1.0), 100);
        assert_eq!(percentile(&values, 0.0), 1);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        // Ten values: p90 is the 9th, p99 the 10th.
        let ten: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 0.90), 9);
        assert_eq!(percentile(&ten, 0.99), 10);
    }

    #[test]
    fn percentiles_in_seconds_from_unsorted_microseconds() {
        let mut values: Vec<u64> = (1..=1_000).map(|k| k * 1_000).collect();
        values.reverse();
        let summary = Percentiles::of_microseconds(values);
        assert_eq!(summary.count, 1_000);
        assert_eq!(summary.p50_seconds, 0.5);
        assert_eq!(summary.p90_seconds, 0.9);
        assert_eq!(summary.p99_seconds, 0.99);
        assert_eq!(summary.max_seconds, 1.0);
        assert_eq!(
            Percentiles::of_microseconds(Vec::new()),
            Percentiles::default()
        );
    }

    #[test]
    fn admission_rates() {
        // 1,000 admissions, one every 10 ms from 1 s after the opening.
        let instants: Vec<u64> = (0..1_000u64).map(|k| 1_000_000 + k * 10_000).collect();
        let rate = AdmissionRate::of(&instants, 0);
        // Overall: 1,000 over 10.99 s (the first second was empty).
        assert!((rate.overall_per_second - 91.0).abs() < 0.1, "{rate:?}");
        // Middle: exactly the steady 100/s.
        assert!((rate.middle_per_second - 100.0).abs() < 0.1, "{rate:?}");
        assert_eq!(AdmissionRate::of(&[], 0), AdmissionRate::default());
        assert_eq!(AdmissionRate::of(&[5], 5).overall_per_second, 0.0);
    }

    #[test]
    fn classes_around_the_opening() {
        assert_eq!(classify(10, 20, 100), Class::PreQueue);
        assert_eq!(classify(100, 120, 100), Class::PostOpening);
        assert_eq!(classify(90, 110, 100), Class::Straddling);
    }
}
