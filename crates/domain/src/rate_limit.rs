//! The generic cell rate algorithm (GCRA): the arithmetic of every rate
//! limit (ADR 0013).
//!
//! A limit is an emission interval `T` (one request per `T` on average) and
//! a burst `b` (that many requests may come at once). The whole state of a
//! key is one number, its theoretical arrival time (TAT): the moment at
//! which the key would be back to a full burst. A request at `now` passes
//! when `TAT - now <= T * (b - 1)` and then moves the TAT to
//! `max(TAT, now) + T`; a refused request changes nothing.
//!
//! This function is the reference for both limiters: the in-process one
//! calls it, and the Redis one runs the same steps in a Lua script, which a
//! test compares with it step by step. Time is in microseconds, so that
//! rates up to a million per second keep an exact interval.

use std::fmt;

/// A burst above this is a configuration mistake, not a limit.
pub const GCRA_BURST_MAX: u32 = 1_000_000;
/// A day: a longer interval (fewer than one request a day) is a mistake too.
pub const GCRA_INTERVAL_MICROSECONDS_MAX: u64 = 24 * 3_600 * 1_000_000;
/// A week: how far ahead of now a TAT may reach (interval × burst). It keeps
/// every number of the Redis script below 2^53, exact in Lua's doubles.
pub const GCRA_HORIZON_MICROSECONDS_MAX: u64 = 7 * 24 * 3_600 * 1_000_000;

/// One limit: on average one request per `interval_microseconds`, and up to
/// `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GcraParams {
    interval_microseconds: u64,
    burst: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GcraParamsError {
    #[error("the interval must be 1 µs to 24 h, not {0} µs")]
    Interval(u64),
    #[error("the burst must be 1 to {GCRA_BURST_MAX}, not {0}")]
    Burst(u64),
    #[error("interval × burst must be at most a week, not {0} µs")]
    Horizon(u64),
}

impl GcraParams {
    pub fn new(interval_microseconds: u64, burst: u32) -> Result<GcraParams, GcraParamsError> {
        if !(1..=GCRA_INTERVAL_MICROSECONDS_MAX).contains(&interval_microseconds) {
            return Err(GcraParamsError::Interval(interval_microseconds));
        }
        if !(1..=GCRA_BURST_MAX).contains(&burst) {
            return Err(GcraParamsError::Burst(u64::from(burst)));
        }
        let horizon = interval_microseconds * u64::from(burst);
        if horizon > GCRA_HORIZON_MICROSECONDS_MAX {
            return Err(GcraParamsError::Horizon(horizon));
        }
        Ok(GcraParams {
            interval_microseconds,
            burst,
        })
    }

    /// `count` requests per `period_microseconds` (rounded down to whole
    /// microseconds per request), `burst` at once.
    pub fn per_period(
        count: u64,
        period_microseconds: u64,
        burst: u32,
    ) -> Result<GcraParams, GcraParamsError> {
        let interval = period_microseconds.checked_div(count).unwrap_or(0);
        GcraParams::new(interval, burst)
    }

    pub fn interval_microseconds(&self) -> u64 {
        self.interval_microseconds
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// How far ahead of `now` the TAT may be for a request to pass: the
    /// room taken by `burst - 1` requests (below a week, see `new`).
    pub fn tolerance_microseconds(&self) -> u64 {
        self.interval_microseconds * u64::from(self.burst - 1)
    }
}

impl fmt::Display for GcraParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "1 per {} µs, burst {}",
            self.interval_microseconds, self.burst
        )
    }
}

/// The outcome of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraDecision {
    pub allowed: bool,
    /// The TAT to keep for the key; unchanged when refused. A TAT at or
    /// before `now` means the same as no state: the key may be forgotten
    /// once time passes it.
    pub tat_microseconds: u64,
    /// When refused, how long until the same request would pass; 0 when
    /// allowed.
    pub retry_after_microseconds: u64,
}

/// Decides one request at `now` for a key whose TAT is `tat` (none for a
/// key never seen, or forgotten).
pub fn gcra_acquire(params: GcraParams, tat: Option<u64>, now: u64) -> GcraDecision {
    let tat = tat.map_or(now, |tat| tat.max(now));
    let tolerance = params.tolerance_microseconds();
    let ahead = tat - now;
    if ahead > tolerance {
        return GcraDecision {
            allowed: false,
            tat_microseconds: tat,
            retry_after_microseconds: ahead - tolerance,
        };
    }
    GcraDecision {
        allowed: true,
        tat_microseconds: tat.saturating_add(params.interval_microseconds),
        retry_after_microseconds: 0,
    }
}

/// Gives back one request that passed (a login that turned out to be
/// right, see ADR 0013): the TAT moves back one interval, never before
/// `now`. Returns the TAT to keep, or none when the key is back to a full
/// burst and may be forgotten.
pub fn gcra_release(params: GcraParams, tat: Option<u64>, now: u64) -> Option<u64> {
    let tat = tat?.saturating_sub(params.interval_microseconds);
    (tat > now).then_some(tat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(interval: u64, burst: u32) -> GcraParams {
        GcraParams::new(interval, burst).expect("valid params")
    }

    #[test]
    fn a_burst_passes_at_once_then_one_per_interval() {
        let limit = params(100, 3);
        let mut tat = None;
        for _ in 0..3 {
            let decision = gcra_acquire(limit, tat, 1_000);
            assert!(decision.allowed);
            tat = Some(decision.tat_microseconds);
        }
        let refused = gcra_acquire(limit, tat, 1_000);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_microseconds, 100);
        assert_eq!(refused.tat_microseconds, 1_300, "a refusal changes nothing");
        assert!(!gcra_acquire(limit, tat, 1_099).allowed);
        let next = gcra_acquire(limit, tat, 1_100);
        assert!(next.allowed);
        assert_eq!(next.tat_microseconds, 1_400);
    }

    #[test]
    fn a_burst_of_one_allows_one_per_interval() {
        let limit = params(1_000, 1);
        let first = gcra_acquire(limit, None, 5_000);
        assert!(first.allowed);
        let second = gcra_acquire(limit, Some(first.tat_microseconds), 5_001);
        assert!(!second.allowed);
        assert_eq!(second.retry_after_microseconds, 999);
    }

    #[test]
    fn a_tat_in_the_past_is_the_same_as_none() {
        let limit = params(100, 2);
        assert_eq!(
            gcra_acquire(limit, Some(10), 1_000),
            gcra_acquire(limit, None, 1_000)
        );
    }

    #[test]
    fn release_gives_one_request_back() {
        let limit = params(100, 2);
        let first = gcra_acquire(limit, None, 1_000);
        let second = gcra_acquire(limit, Some(first.tat_microseconds), 1_000);
        assert!(second.allowed);
        let tat = gcra_release(limit, Some(second.tat_microseconds), 1_000);
        assert_eq!(tat, Some(1_100));
        assert!(gcra_acquire(limit, tat, 1_000).allowed);
        assert_eq!(gcra_release(limit, Some(1_100), 1_000), None);
        assert_eq!(gcra_release(limit, None, 1_000), None);
    }

    #[test]
    fn params_are_bounded() {
        assert!(GcraParams::new(0, 1).is_err());
        assert!(GcraParams::new(1, 0).is_err());
        assert!(GcraParams::new(1, GCRA_BURST_MAX).is_ok());
        assert!(GcraParams::new(1, GCRA_BURST_MAX + 1).is_err());
        assert!(GcraParams::new(GCRA_INTERVAL_MICROSECONDS_MAX, 1).is_ok());
        assert!(GcraParams::new(GCRA_INTERVAL_MICROSECONDS_MAX + 1, 1).is_err());
        assert!(GcraParams::new(GCRA_INTERVAL_MICROSECONDS_MAX, 7).is_ok());
        assert_eq!(
            GcraParams::new(GCRA_INTERVAL_MICROSECONDS_MAX, 8),
            Err(GcraParamsError::Horizon(8 * GCRA_INTERVAL_MICROSECONDS_MAX))
        );
        assert_eq!(
            GcraParams::per_period(3, 1_000_000, 3).map(|p| p.interval_microseconds()),
            Ok(333_333)
        );
        assert!(GcraParams::per_period(2_000_000, 1_000_000, 1).is_err());
        assert!(GcraParams::per_period(0, 1_000_000, 1).is_err());
    }

    #[test]
    fn the_largest_limit_does_not_overflow() {
        let limit = params(GCRA_INTERVAL_MICROSECONDS_MAX, 7);
        let decision = gcra_acquire(limit, Some(u64::MAX - 1), u64::MAX - 10);
        assert!(decision.allowed);
        assert_eq!(decision.tat_microseconds, u64::MAX);
    }
}
