//! What every Redis adapter needs in front of it: a small breaker that leaves
//! a failing Redis alone for a while, and warnings that do not flood the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Skips Redis for `pause` after a failure; then one call probes (the others
/// keep skipping until it is back or the pause runs out again).
#[derive(Debug)]
pub(crate) struct Breaker {
    pause: Duration,
    skip_until: Mutex<Option<Instant>>,
}

impl Breaker {
    pub(crate) fn new(pause: Duration) -> Breaker {
        Breaker {
            pause,
            skip_until: Mutex::new(None),
        }
    }

    pub(crate) fn pause(&self) -> Duration {
        self.pause
    }

    pub(crate) fn allows(&self) -> bool {
        let mut skip_until = self
            .skip_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match *skip_until {
            None => true,
            Some(until) if Instant::now() >= until => {
                // This call is the probe; a probe that never reports back
                // (its request was dropped) only delays the next one.
                *skip_until = Some(Instant::now() + self.pause);
                true
            }
            Some(_) => false,
        }
    }

    /// Returns whether Redis had been failing until now.
    pub(crate) fn succeeded(&self) -> bool {
        self.skip_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .is_some()
    }

    pub(crate) fn failed(&self) {
        *self
            .skip_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now() + self.pause);
    }

    #[cfg(test)]
    fn end_pause_now(&self) {
        *self
            .skip_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
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
    fn one_warning_per_period() {
        let warnings = WarningThrottle::new(Duration::from_secs(3600));
        assert_eq!(warnings.due(), Some(0));
        assert_eq!(warnings.due(), None);
        assert_eq!(warnings.due(), None);
        *warnings.last_warning.lock().expect("lock") = None;
        assert_eq!(warnings.due(), Some(2), "two were held back");
    }
}
