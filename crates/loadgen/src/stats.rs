//! Counting what the workers saw: latency histograms (HdrHistogram, in
//! microseconds), outcome counters and errors by `code`.
//!
//! Every worker owns its own [`Tally`] (no locks on the hot path) and the
//! scenario merges them when the workers are done.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The smallest latency the histograms tell apart: one microsecond.
const LATENCY_MICROSECONDS_MIN: u64 = 1;
/// The largest latency a histogram records; slower answers are clamped to
/// it. Twice the client's request timeout, so nothing real is ever clamped.
const LATENCY_MICROSECONDS_MAX: u64 = 120_000_000;
/// Three significant digits: 0.1% resolution, plenty for p999.
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies of one kind of answer.
#[derive(Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl std::fmt::Debug for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latencies")
            .field("count", &self.count())
            .finish()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        // The bounds are constants that HdrHistogram accepts (low ≥ 1,
        // high ≥ 2 × low, 0–5 digits), so this cannot fail; should it ever,
        // an auto-resizing histogram does the same job.
        let histogram = Histogram::new_with_bounds(
            LATENCY_MICROSECONDS_MIN,
            LATENCY_MICROSECONDS_MAX,
            LATENCY_SIGNIFICANT_DIGITS,
        )
        .or_else(|_| Histogram::new(LATENCY_SIGNIFICANT_DIGITS))
        .unwrap_or_else(|_| unreachable_histogram());
        Latencies { histogram }
    }

    pub fn record(&mut self, latency: Duration) {
        let microseconds = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(LATENCY_MICROSECONDS_MIN, LATENCY_MICROSECONDS_MAX);
        self.histogram.saturating_record(microseconds);
    }

    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so `add` cannot fail; a failure would
        // only lose samples, never invent them.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at `quantile` (0.0–1.0) in milliseconds; 0 when empty.
    pub fn quantile_milliseconds(&self, quantile: f64) -> f64 {
        if self.histogram.is_empty() {
            return 0.0;
        }
        self.histogram.value_at_quantile(quantile) as f64 / 1_000.0
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count(),
            p50_ms: round3(self.quantile_milliseconds(0.50)),
            p99_ms: round3(self.quantile_milliseconds(0.99)),
            p999_ms: round3(self.quantile_milliseconds(0.999)),
            max_ms: round3(if self.histogram.is_empty() {
                0.0
            } else {
                self.histogram.max() as f64 / 1_000.0
            }),
        }
    }
}

#[cold]
fn unreachable_histogram() -> Histogram<u64> {
    panic!("HdrHistogram rejected constant bounds")
}

/// Percentiles of one kind of answer, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Errors by their problem `code` (`transport:timeout`, `http_500`, … when
/// there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts(pub BTreeMap<String, u64>);

impl ErrorCounts {
    pub fn add(&mut self, code: &str) {
        *self.0.entry(code.to_string()).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for (code, count) in &other.0 {
            *self.0.entry(code.clone()).or_insert(0) += count;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// What one worker (or, merged, one scenario) counted.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Every request sent, whatever came back.
    pub attempts: u64,
    /// The answers the scenario wants (201 holds, 200/304 reads, …).
    pub successes: Latencies,
    /// Expected refusals (409 `seats_unavailable` in a sale).
    pub losers: Latencies,
    /// Everything else, by code.
    pub errors: ErrorCounts,
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        self.attempts += other.attempts;
        self.successes.merge(&other.successes);
        self.losers.merge(&other.losers);
        self.errors.merge(&other.errors);
    }
}

/// Events per second over `elapsed`; 0 for an empty interval.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    round1(count as f64 / seconds)
}

/// `numerator / denominator`, or `None` when the denominator is 0.
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    if denominator > 0.0 {
        Some((numerator / denominator * 1_000.0).round() / 1_000.0)
    } else {
        None
    }
}

pub fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn round3(value: f64) -> f64 {
    (value * 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut latencies = Latencies::new();
        // 1..=1000 ms: p50 = 500 ms, p99 = 990 ms, p999 = 999 ms.
        for milliseconds in 1..=1_000u64 {
            latencies.record(Duration::from_millis(milliseconds));
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 1_000);
        // Three significant digits: within 0.1%.
        assert!((summary.p50_ms - 500.0).abs() <= 0.5, "{summary:?}");
        assert!((summary.p99_ms - 990.0).abs() <= 1.0, "{summary:?}");
        assert!((summary.p999_ms - 999.0).abs() <= 1.0, "{summary:?}");
        assert!((summary.max_ms - 1_000.0).abs() <= 1.0, "{summary:?}");
    }

    #[test]
    fn one_slow_answer_shows_in_p999_not_p50() {
        let mut latencies = Latencies::new();
        for _ in 0..999 {
            latencies.record(Duration::from_micros(200));
        }
        latencies.record(Duration::from_secs(2));
        let summary = latencies.summary();
        assert!((summary.p50_ms - 0.2).abs() < 0.01, "{summary:?}");
        assert!((summary.p99_ms - 0.2).abs() < 0.01, "{summary:?}");
        assert!(summary.max_ms >= 1_999.0, "{summary:?}");
    }

    #[test]
    fn empty_histograms_report_zero() {
        let summary = Latencies::new().summary();
        assert_eq!(summary, LatencySummary::default());
    }

    #[test]
    fn extreme_latencies_are_clamped_not_lost() {
        let mut latencies = Latencies::new();
        latencies.record(Duration::ZERO);
        latencies.record(Duration::from_secs(10_000));
        assert_eq!(latencies.count(), 2);
        assert!(latencies.summary().max_ms <= 120_000.0 * 1.001);
    }

    #[test]
    fn merging_adds_counts_and_errors() {
        let mut first = Tally {
            attempts: 3,
            ..Tally::default()
        };
        first.successes.record(Duration::from_millis(1));
        first.errors.add("transport:timeout");
        let mut second = Tally {
            attempts: 2,
            ..Tally::default()
        };
        second.losers.record(Duration::from_millis(2));
        second.errors.add("transport:timeout");
        second.errors.add("http_500");
        first.merge(&second);
        assert_eq!(first.attempts, 5);
        assert_eq!(first.successes.count(), 1);
        assert_eq!(first.losers.count(), 1);
        assert_eq!(first.errors.0["transport:timeout"], 2);
        assert_eq!(first.errors.total(), 3);
    }

    #[test]
    fn rates_and_ratios() {
        assert_eq!(per_second(500, Duration::from_secs(2)), 250.0);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
    }
}
