//! What every remote dependency needs in front of it: a small breaker that
//! leaves a failing dependency (Redis, the payment gateway) alone for a while,
//! and warnings that do not flood the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Skips the dependency for `pause` once `failures_to_open` calls in a row
/// failed; then one call probes (the others keep skipping until it is back or
/// the pause runs out again). A failed probe opens it again at once.
#[derive(Debug)]
pub(crate) struct Breaker {
    pause: Duration,
    failures_to_open: u32,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    consecutive_failures: u32,
    /// `Some` while open (or half-open, once `until` has passed).
    skip_until: Option<Instant>,
}

impl Breaker {
    /// Opens at the first failure (what Redis needs: a dead Redis must cost
    /// one timeout, not several).
    pub(crate) fn new(pause: Duration) -> Breaker {
        Breaker::with_threshold(pause, 1)
    }

    /// Opens after `failures_to_open` failures in a row (at least one).
    pub(crate) fn with_threshold(pause: Duration, failures_to_open: u32) -> Breaker {
        Breaker {
            pause,
            failures_to_open: failures_to_open.max(1),
            state: Mutex::new(BreakerState::default()),
        }
    }

    pub(crate) fn pause(&self) -> Duration {
        self.pause
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn allows(&self) -> bool {
        let mut state = self.state();
        match state.skip_until {
            None => true,
            Some(until) if Instant::now() >= until => {
                // This call is the probe; a probe that never reports back
                // (its request was dropped) only delays the next one.
                state.skip_until = Some(Instant::now() + self.pause);
                true
            }
            Some(_) => false,
        }
    }

    /// Returns whether the dependency had been failing until now (the
    /// breaker was open or half-open).
    pub(crate) fn succeeded(&self) -> bool {
        let mut state = self.state();
        state.consecutive_failures = 0;
        state.skip_until.take().is_some()
    }

    /// Returns whether this failure opened the breaker (it was closed).
    pub(crate) fn failed(&self) -> bool {
        let mut state = self.state();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        let was_open = state.skip_until.is_some();
        if was_open || state.consecutive_failures >= self.failures_to_open {
            state.skip_until = Some(Instant::now() + self.pause);
        }
        !was_open && state.skip_until.is_some()
    }

    #[cfg(test)]
    pub(crate) fn end_pause_now(&self) {
        let mut state = self.state();
        if state.skip_until.is_some() {
            state.skip_until = Some(Instant::now());
        }
    }
}

/// Lets one warning through per period and counts the ones it held back, so
/// that a dead Redis under load writes one line per period, not one per
/// request (the metrics see every failure).
#[derive(Debug)]
pub(crate) struct WarningThrottle {
    period: Duration,
    last_warning: Mutex<Option<Instant>>,
    held_back: AtomicU64,
}

impl WarningThrottle {
    pub(crate) fn new(period: Duration) -> WarningThrottle {
        WarningThrottle {
            period,
            last_warning: Mutex::new(None),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(warnings held back since the last one)` when a warning is due.
    pub(crate) fn due(&self) -> Option<u64> {
        let held_back = self.held_back.fetch_add(1, Ordering::Relaxed);
        let mut last_warning = self
            .last_warning
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last_warning.is_some_and(|at| at.elapsed() < self.period) {
            return None;
        }
        *last_warning = Some(Instant::now());
        self.held_back.store(0, Ordering::Relaxed);
        Some(held_back)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_pauses_after_a_failure_and_lets_one_probe_through() {
        let breaker = Breaker::new(Duration::from_secs(1));
        assert!(breaker.allows());
        breaker.failed();
        assert!(!breaker.allows());
        breaker.end_pause_now();
        assert!(breaker.allows(), "the probe goes through");
        assert!(!breaker.allows(), "only one probe at a time");
        assert!(breaker.succeeded(), "it had been failing");
        assert!(breaker.allows());
        assert!(!breaker.succeeded());
    }

    #[test]
    fn breaker_with_a_threshold_opens_after_that_many_failures_in_a_row() {
        let breaker = Breaker::with_threshold(Duration::from_secs(1), 3);
        assert!(!breaker.failed());
        assert!(!breaker.failed());
        assert!(!breaker.succeeded(), "a success resets the count");
        assert!(!breaker.failed());
        assert!(!breaker.failed());
        assert!(breaker.allows());
        assert!(breaker.failed(), "the third failure in a row opens it");
        assert!(!breaker.allows());
        breaker.end_pause_now();
        assert!(breaker.allows(), "the probe goes through");
        assert!(!breaker.failed(), "a failed probe keeps it open");
        assert!(!breaker.allows());
    }

    #[test]
    fn one_warning_per_period() {
        let warnings = WarningThrottle::new(Duration::from_secs(3600));
        assert_eq!(warnings.due(), Some(0));
        assert_eq!(warnings.due(), None);
        assert_eq!(warnings.due(), None);
        *warnings.last_warning.lock().expect("lock") = None;
        assert_eq!(warnings.due(), Some(2), "two were held back");
    }
}
