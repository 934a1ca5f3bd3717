//! When the crowd arrives and when each client polls, as pure functions of
//! the settings (times in microseconds since the run's epoch).
//!
//! The timeline: a short lead-in, the pre-queue window (a share of the
//! arrivals join before `sales_start`), the opening, then the rest of the
//! arrivals. No arrival is scheduled within a guard interval on either side
//! of the opening, so that which side of it a join falls on is not a matter
//! of microseconds between client and server (see `order::classify`).

/// Time for the dispatcher to get going before the first arrival.
pub const LEAD_IN_MICROSECONDS: u64 = 1_000_000;
/// No arrival this close to the opening, on either side.
pub const OPENING_GUARD_MICROSECONDS: u64 = 1_000_000;
/// Clients poll again at this share of the server's estimated wait: a bit
/// early, so that the poll that sees ADMITTED comes soon after admission.
const POLL_AT_ESTIMATE_PERCENT: u64 = 75;
/// ±10% random spread on every poll delay, so that clients who joined
/// together do not poll together for ever.
const POLL_JITTER_PERCENT: f64 = 10.0;
/// Pre-queue clients learn their place by one poll after the opening,
/// spread over at least a second and at most this long …
const OPENING_POLL_SPREAD_MAX_MICROSECONDS: u64 = 30_000_000;
/// … at about this many polls per second.
const OPENING_POLLS_PER_SECOND: u64 = 5_000;

/// The arrival instant of every member of the crowd.
#[derive(Debug, Clone)]
pub struct ArrivalPlan {
    pub arrivals: u32,
    /// The first `pre_queue` arrivals join before the opening.
    pub pre_queue: u32,
    /// The opening (`sales_start`).
    pub opening_us: u64,
    pre_span_us: (u64, u64),
    post_span_us: (u64, u64),
    seed: u64,
}

impl ArrivalPlan {
    /// `arrivals` over `window_us`, `pre_queue_fraction` of them (and of the
    /// window) before the opening.
    pub fn new(arrivals: u32, window_us: u64, pre_queue_fraction: f64, seed: u64) -> ArrivalPlan {
        let fraction = pre_queue_fraction.clamp(0.0, 1.0);
        let pre_queue = ((f64::from(arrivals) * fraction).round() as u32).min(arrivals);
        let pre_window_us = (window_us as f64 * fraction) as u64;
        let opening_us = LEAD_IN_MICROSECONDS + pre_window_us + OPENING_GUARD_MICROSECONDS;
        let pre_end = (opening_us - OPENING_GUARD_MICROSECONDS).max(LEAD_IN_MICROSECONDS);
        let post_start = opening_us + OPENING_GUARD_MICROSECONDS;
        let post_end = post_start + window_us.saturating_sub(pre_window_us);
        ArrivalPlan {
            arrivals,
            pre_queue,
            opening_us,
            pre_span_us: (LEAD_IN_MICROSECONDS, pre_end),
            post_span_us: (post_start, post_end),
            seed,
        }
    }

    /// Arrival `index`'s instant. Each arrival gets its own slot of equal
    /// width within its span and a random point in that slot: evenly spread
    /// overall, irregular up close, and always in index order.
    pub fn arrival_us(&self, index: u32) -> u64 {
        let (span, slot, slots) = if index < self.pre_queue {
            (self.pre_span_us, index, self.pre_queue)
        } else {
            (
                self.post_span_us,
                index - self.pre_queue,
                self.arrivals - self.pre_queue,
            )
        };
        let width = (span.1 - span.0) as f64 / f64::from(slots.max(1));
        let within = unit(self.seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        span.0 + ((f64::from(slot) + within) * width) as u64
    }

    /// The first arrival's instant (the schedule's earliest).
    pub fn first_arrival_us(&self) -> u64 {
        if self.pre_queue > 0 {
            self.pre_span_us.0
        } else {
            self.post_span_us.0
        }
    }

    /// The last arrival's instant.
    pub fn last_arrival_us(&self) -> u64 {
        self.post_span_us.1.max(self.pre_span_us.1)
    }

    /// How widely the pre-queue's first polls after the opening spread.
    pub fn opening_poll_spread_us(&self) -> u64 {
        (u64::from(self.pre_queue) * 1_000_000 / OPENING_POLLS_PER_SECOND)
            .clamp(1_000_000, OPENING_POLL_SPREAD_MAX_MICROSECONDS)
    }
}

/// When a client that just saw WAITING polls next: before the opening, at
/// a random point of the spread after it; after, at 3/4 of the estimated
/// wait, within `[minimum, maximum]`, ±10%. `random` is uniform in [0, 1).
pub fn next_poll_at_us(
    now_us: u64,
    estimated_wait_seconds: u64,
    plan: &ArrivalPlan,
    bounds_us: (u64, u64),
    random: f64,
) -> u64 {
    let (minimum, maximum) = bounds_us;
    if now_us < plan.opening_us {
        return plan.opening_us + (random * plan.opening_poll_spread_us() as f64) as u64;
    }
    let base = estimated_wait_seconds
        .saturating_mul(10_000 * POLL_AT_ESTIMATE_PERCENT)
        .clamp(minimum, maximum);
    let factor = 1.0 + (random * 2.0 - 1.0) * POLL_JITTER_PERCENT / 100.0;
    now_us + ((base as f64 * factor) as u64).clamp(minimum, maximum)
}

/// A number in [0, 1) from a seed (SplitMix64), the same on every run.
pub fn unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_in_order_inside_their_spans_and_away_from_the_opening() {
        let plan = ArrivalPlan::new(10_000, 60_000_000, 0.2, 9);
        assert_eq!(plan.pre_queue, 2_000);
        // Lead-in 1 s + 12 s of pre-queue window + 1 s guard.
        assert_eq!(plan.opening_us, 14_000_000);
        let mut previous = 0;
        for index in 0..plan.arrivals {
            let at = plan.arrival_us(index);
            assert!(at >= previous, "arrival {index} before {}", index - 1);
            previous = at;
            if index < plan.pre_queue {
                assert!(at >= LEAD_IN_MICROSECONDS);
                assert!(at < plan.opening_us - OPENING_GUARD_MICROSECONDS);
            } else {
                assert!(at >= plan.opening_us + OPENING_GUARD_MICROSECONDS);
            }
        }
        // The post-opening 80% take 48 s.
        let last = plan.arrival_us(plan.arrivals - 1);
        assert!(last <= plan.last_arrival_us());
        assert!(last > plan.last_arrival_us() - 10_000, "{last}");
        assert_eq!(plan.last_arrival_us(), 15_000_000 + 48_000_000);
        assert_eq!(plan.first_arrival_us(), LEAD_IN_MICROSECONDS);
        assert!(plan.arrival_us(0) >= plan.first_arrival_us());
    }

    #[test]
    fn the_rate_is_even_over_the_window() {
        let plan = ArrivalPlan::new(60_000, 60_000_000, 0.0, 1);
        // No pre-queue; 1,000 arrivals a second: count per second.
        let mut per_second = vec![0u32; 70];
        for index in 0..plan.arrivals {
            per_second[(plan.arrival_us(index) / 1_000_000) as usize] += 1;
        }
        let busy: Vec<u32> = per_second.into_iter().filter(|&n| n > 0).collect();
        assert_eq!(busy.len(), 60);
        assert!(busy.iter().all(|&n| (999..=1_001).contains(&n)), "{busy:?}");
    }

    #[test]
    fn everyone_before_the_opening_or_everyone_after() {
        let all_pre = ArrivalPlan::new(100, 10_000_000, 1.0, 1);
        assert_eq!(all_pre.pre_queue, 100);
        assert!((0..100).all(|k| all_pre.arrival_us(k) < all_pre.opening_us));
        let none_pre = ArrivalPlan::new(100, 10_000_000, 0.0, 1);
        assert_eq!(none_pre.pre_queue, 0);
        assert!((0..100).all(|k| none_pre.arrival_us(k) > none_pre.opening_us));
        assert_eq!(
            none_pre.first_arrival_us(),
            none_pre.opening_us + OPENING_GUARD_MICROSECONDS
        );
        // A single arrival, and the tiniest window.
        let one = ArrivalPlan::new(1, 1, 0.5, 1);
        assert!(one.arrival_us(0) >= LEAD_IN_MICROSECONDS);
    }

    #[test]
    fn polls_follow_the_estimate_within_bounds() {
        let plan = ArrivalPlan::new(1_000, 10_000_000, 0.5, 1);
        let bounds = (1_000_000, 30_000_000);
        let after = plan.opening_us + 5_000_000;
        // 20 s estimated: poll in 15 s ± 10%.
        let at = next_poll_at_us(after, 20, &plan, bounds, 0.5);
        assert_eq!(at - after, 15_000_000);
        let early = next_poll_at_us(after, 20, &plan, bounds, 0.0);
        let late = next_poll_at_us(after, 20, &plan, bounds, 0.999_999);
        assert!(early - after >= 13_500_000 && late - after <= 16_500_000);
        // No estimate: the minimum, never less; a huge one: the maximum.
        assert_eq!(
            next_poll_at_us(after, 0, &plan, bounds, 0.0) - after,
            1_000_000
        );
        assert_eq!(
            next_poll_at_us(after, u64::MAX, &plan, bounds, 0.999) - after,
            30_000_000
        );
        // Before the opening: after it, within the spread.
        let before = next_poll_at_us(1_000, 0, &plan, bounds, 0.5);
        assert!(before >= plan.opening_us);
        assert!(before <= plan.opening_us + plan.opening_poll_spread_us());
    }

    #[test]
    fn unit_numbers_are_in_range_and_spread() {
        let values: Vec<f64> = (0..10_000).map(unit).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}
