//! GCRA against an independent reference: the continuous-state leaky bucket
//! of ITU-T I.371, which describes the same limit with other state (the
//! water level and the time of the last conforming request), and against
//! the promises a rate limit makes to its callers.

use boxoffice_domain::{gcra_acquire, gcra_release, GcraParams};
use proptest::prelude::*;

/// The leaky bucket: each passing request pours `interval` into a bucket
/// that drains one unit per microsecond; a request that would lift the
/// level above `tolerance + interval` is refused.
#[derive(Debug, Default)]
struct LeakyBucket {
    level: u64,
    last_conforming: u64,
}

impl LeakyBucket {
    /// `Ok(())` when the request passes, `Err(wait)` with the time until it
    /// would.
    fn request(&mut self, params: GcraParams, now: u64) -> Result<(), u64> {
        let drained = now.saturating_sub(self.last_conforming);
        let level = self.level.saturating_sub(drained);
        let tolerance = params.interval_microseconds() * u64::from(params.burst() - 1);
        if level > tolerance {
            return Err(level - tolerance);
        }
        self.level = level + params.interval_microseconds();
        self.last_conforming = now;
        Ok(())
    }
}

fn params() -> impl Strategy<Value = GcraParams> {
    (1u64..5_000, 1u32..20).prop_map(|(interval, burst)| {
        GcraParams::new(interval, burst).expect("generated params are valid")
    })
}

/// Non-decreasing request times starting near `start`.
fn times(max_gap: u64) -> impl Strategy<Value = Vec<u64>> {
    (
        0u64..1_000_000,
        proptest::collection::vec(0u64..max_gap, 1..200),
    )
        .prop_map(|(start, gaps)| {
            gaps.iter()
                .scan(start, |now, gap| {
                    *now += gap;
                    Some(*now)
                })
                .collect()
        })
}

/// Runs GCRA over `times` and returns, per request, whether it passed and
/// its retry-after.
fn run(params: GcraParams, times: &[u64]) -> Vec<(bool, u64)> {
    let mut tat = None;
    times
        .iter()
        .map(|&now| {
            let decision = gcra_acquire(params, tat, now);
            tat = Some(decision.tat_microseconds);
            (decision.allowed, decision.retry_after_microseconds)
        })
        .collect()
}

proptest! {
    #[test]
    fn agrees_with_the_leaky_bucket(params in params(), times in times(3_000)) {
        let mut bucket = LeakyBucket::default();
        for (index, (&now, (allowed, retry_after))) in times.iter().zip(run(params, &times)).enumerate() {
            match bucket.request(params, now) {
                Ok(()) => prop_assert!(allowed, "request {index} at {now}: the bucket lets it pass"),
                Err(wait) => {
                    prop_assert!(!allowed, "request {index} at {now}: the bucket refuses it");
                    prop_assert_eq!(retry_after, wait, "request {}: retry-after", index);
                }
            }
        }
    }

    #[test]
    fn no_window_passes_more_than_burst_plus_window_over_interval(params in params(), times in times(3_000)) {
        let passed: Vec<u64> = times
            .iter()
            .zip(run(params, &times))
            .filter(|(_, (allowed, _))| *allowed)
            .map(|(&now, _)| now)
            .collect();
        for (first, &start) in passed.iter().enumerate() {
            for (last, &end) in passed.iter().enumerate().skip(first) {
                let count = (last - first + 1) as u64;
                let window = end - start;
                let bound = u64::from(params.burst()) + window / params.interval_microseconds();
                prop_assert!(
                    count <= bound,
                    "{} requests passed within {} µs, at most {} may",
                    count, window, bound
                );
            }
        }
    }

    #[test]
    fn requests_an_interval_apart_always_pass(params in params(), start in 0u64..1_000_000, extra in proptest::collection::vec(0u64..1_000, 1..100)) {
        let mut now = start;
        let mut tat = None;
        for gap in extra {
            let decision = gcra_acquire(params, tat, now);
            prop_assert!(decision.allowed, "a request {} µs after the previous one", params.interval_microseconds() + gap);
            tat = Some(decision.tat_microseconds);
            now += params.interval_microseconds() + gap;
        }
    }

    #[test]
    fn the_first_burst_passes_and_the_next_waits_one_interval(params in params(), now in 0u64..1_000_000) {
        let at_once = vec![now; params.burst() as usize + 1];
        let results = run(params, &at_once);
        let (refused, passed) = results.split_last().expect("burst + 1 requests");
        prop_assert!(passed.iter().all(|(allowed, _)| *allowed));
        prop_assert_eq!(*refused, (false, params.interval_microseconds()));
    }

    #[test]
    fn retry_after_is_exactly_when_the_next_request_passes(params in params(), times in times(3_000)) {
        let mut tat = None;
        for now in times {
            let decision = gcra_acquire(params, tat, now);
            if !decision.allowed {
                let wait = decision.retry_after_microseconds;
                prop_assert!(wait >= 1);
                prop_assert!(!gcra_acquire(params, tat, now + wait - 1).allowed, "one µs early is still refused");
                prop_assert!(gcra_acquire(params, tat, now + wait).allowed, "after retry-after it passes");
            }
            tat = Some(decision.tat_microseconds);
        }
    }

    #[test]
    fn a_released_request_leaves_no_trace(params in params(), times in times(3_000), probe_gap in 0u64..10_000) {
        let mut tat = None;
        for &now in &times {
            tat = Some(gcra_acquire(params, tat, now).tat_microseconds);
        }
        let now = *times.last().expect("at least one time");
        let taken = gcra_acquire(params, tat, now);
        prop_assume!(taken.allowed);
        let released = gcra_release(params, Some(taken.tat_microseconds), now);
        let probe = now + probe_gap;
        prop_assert_eq!(
            gcra_acquire(params, released, probe).allowed,
            gcra_acquire(params, tat, probe).allowed,
            "acquire then release is the same as nothing"
        );
    }
}
