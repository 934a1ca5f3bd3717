//! The in-process limiter: the default, and what a node falls back to while
//! Redis is away. Each key's TAT lives in one of a few mutex-guarded shards,
//! so that concurrent requests for different keys rarely wait for each other.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use boxoffice_domain::{gcra_acquire, gcra_release, GcraParams};

use super::{LimitOutcome, RateLimitError, RateLimiter};
use crate::breaker::WarningThrottle;

/// Shards of the key table: enough that two cores rarely meet on one lock.
const SHARDS: usize = 16;
/// Keys one shard keeps at most (about 260,000 in all, some 30 MiB). A key
/// whose TAT has passed carries no information and is pruned first; past
/// this bound new keys go unlimited (and are counted) rather than grow the
/// process without limit under a flood of addresses.
pub const KEYS_PER_SHARD_MAX: usize = 16_384;
/// A shard is pruned when it grows to twice its size after the last prune,
/// but never below this, so that pruning costs O(1) per insert on average.
const PRUNE_SIZE_MIN: usize = 1_024;
/// A shard still full of live keys after pruning is not pruned again for
/// this long (or before its earliest TAT passes, if that is later), so that
/// a flood of new keys cannot make every request scan the shard.
const FULL_PRUNE_PAUSE_MICROSECONDS: u64 = 100_000;
/// At most one warning about a full table per this period.
const WARNING_PERIOD: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct InMemoryRateLimiter {
    started: Instant,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
    full_warnings: WarningThrottle,
}

#[derive(Debug)]
struct Shard {
    tats: HashMap<String, u64>,
    prune_at_size: usize,
    /// No prune before this time (µs): set when a prune left the shard full.
    no_prune_before: u64,
}

impl Default for InMemoryRateLimiter {
    fn default() -> Self {
        InMemoryRateLimiter::new()
    }
}

impl InMemoryRateLimiter {
    pub fn new() -> InMemoryRateLimiter {
        InMemoryRateLimiter {
            started: Instant::now(),
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        tats: HashMap::new(),
                        prune_at_size: PRUNE_SIZE_MIN,
                        no_prune_before: 0,
                    })
                })
                .collect(),
            full_warnings: WarningThrottle::new(WARNING_PERIOD),
        }
    }

    /// Microseconds on a monotonic clock, so that a wall-clock step can
    /// neither lift nor tighten a limit.
    pub fn now_microseconds(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// [`RateLimiter::acquire`] at a given time (tests drive the clock).
    pub fn acquire_at(&self, key: &str, params: GcraParams, now: u64) -> LimitOutcome {
        let mut shard = self.shard(key);
        let known = shard.tats.get(key).copied();
        let decision = gcra_acquire(params, known, now);
        if !decision.allowed {
            return LimitOutcome::Limited {
                retry_after: Duration::from_micros(decision.retry_after_microseconds),
            };
        }
        match shard.tats.get_mut(key) {
            Some(tat) => *tat = decision.tat_microseconds,
            None => {
                if !shard.make_room(now) {
                    drop(shard);
                    self.table_full();
                    return LimitOutcome::Allowed;
                }
                shard
                    .tats
                    .insert(key.to_string(), decision.tat_microseconds);
            }
        }
        LimitOutcome::Allowed
    }

    /// [`RateLimiter::release`] at a given time.
    pub fn release_at(&self, key: &str, params: GcraParams, now: u64) {
        let mut shard = self.shard(key);
        let known = shard.tats.get(key).copied();
        match gcra_release(params, known, now) {
            Some(tat) => {
                if let Some(stored) = shard.tats.get_mut(key) {
                    *stored = tat;
                }
            }
            None => {
                shard.tats.remove(key);
            }
        }
    }

    /// Keys kept now, in all shards.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).tats.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        lock(&self.shards[index])
    }

    fn table_full(&self) {
        metrics::counter!("boxoffice_rate_limit_untracked_total").increment(1);
        if let Some(held_back) = self.full_warnings.due() {
            tracing::warn!(
                keys_per_shard_max = KEYS_PER_SHARD_MAX,
                warnings_held_back = held_back,
                "the in-process rate limiter is full of live keys; new keys pass unlimited"
            );
        }
    }
}

fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    // The table holds plain numbers: a panic elsewhere cannot leave it torn.
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shard {
    /// Whether one more key fits, after dropping the keys whose TAT has
    /// passed when the shard has grown enough to be worth a pass.
    fn make_room(&mut self, now: u64) -> bool {
        if self.tats.len() >= self.prune_at_size && now >= self.no_prune_before {
            let mut earliest = u64::MAX;
            self.tats.retain(|_, tat| {
                let live = *tat > now;
                if live {
                    earliest = earliest.min(*tat);
                }
                live
            });
            self.prune_at_size = (self.tats.len() * 2).clamp(PRUNE_SIZE_MIN, KEYS_PER_SHARD_MAX);
            if self.tats.len() >= KEYS_PER_SHARD_MAX {
                self.no_prune_before = earliest.max(now + FULL_PRUNE_PAUSE_MICROSECONDS);
            }
        }
        self.tats.len() < KEYS_PER_SHARD_MAX
    }
}

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn acquire(&self, key: &str, params: GcraParams) -> Result<LimitOutcome, RateLimitError> {
        Ok(self.acquire_at(key, params, self.now_microseconds()))
    }

    async fn release(&self, key: &str, params: GcraParams) -> Result<(), RateLimitError> {
        self.release_at(key, params, self.now_microseconds());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    fn params(interval_microseconds: u64, burst: u32) -> GcraParams {
        GcraParams::new(interval_microseconds, burst).expect("valid params")
    }

    #[test]
    fn keys_are_limited_separately() {
        let limiter = InMemoryRateLimiter::new();
        let limit = params(1_000_000, 2);
        assert_eq!(limiter.acquire_at("a", limit, 0), LimitOutcome::Allowed);
        assert_eq!(limiter.acquire_at("a", limit, 0), LimitOutcome::Allowed);
        assert_eq!(
            limiter.acquire_at("a", limit, 250_000),
            LimitOutcome::Limited {
                retry_after: Duration::from_millis(750)
            }
        );
        assert_eq!(
            limiter.acquire_at("b", limit, 250_000),
            LimitOutcome::Allowed
        );
        assert_eq!(
            limiter.acquire_at("a", limit, 1_000_000),
            LimitOutcome::Allowed
        );
    }

    #[test]
    fn release_gives_a_request_back_and_forgets_a_full_key() {
        let limiter = InMemoryRateLimiter::new();
        let limit = params(1_000, 1);
        assert_eq!(limiter.acquire_at("k", limit, 0), LimitOutcome::Allowed);
        assert!(matches!(
            limiter.acquire_at("k", limit, 0),
            LimitOutcome::Limited { .. }
        ));
        limiter.release_at("k", limit, 0);
        assert!(
            limiter.is_empty(),
            "a key back to its full burst is dropped"
        );
        assert_eq!(limiter.acquire_at("k", limit, 0), LimitOutcome::Allowed);
    }

    #[test]
    fn keys_whose_time_has_passed_are_pruned() {
        let limiter = InMemoryRateLimiter::new();
        let limit = params(10, 1);
        for key in 0..SHARDS * PRUNE_SIZE_MIN * 4 {
            limiter.acquire_at(&format!("old-{key}"), limit, 0);
        }
        // Long after those TATs, inserting twice as many new keys makes
        // every shard pass its prune size at least once.
        for key in 0..SHARDS * PRUNE_SIZE_MIN * 8 {
            limiter.acquire_at(&format!("new-{key}"), limit, 1_000);
        }
        let old_kept: usize = limiter
            .shards
            .iter()
            .map(|shard| {
                lock(shard)
                    .tats
                    .keys()
                    .filter(|key| key.starts_with("old-"))
                    .count()
            })
            .sum();
        assert_eq!(old_kept, 0, "keys whose TAT has passed are pruned");
        assert_eq!(limiter.len(), SHARDS * PRUNE_SIZE_MIN * 8);
    }

    #[test]
    fn a_full_table_lets_new_keys_pass_and_keeps_limiting_known_ones() {
        let limiter = InMemoryRateLimiter::new();
        let limit = params(1_000_000, 1);
        for key in 0..SHARDS * KEYS_PER_SHARD_MAX * 2 {
            limiter.acquire_at(&format!("live-{key}"), limit, 0);
        }
        assert!(limiter.len() <= SHARDS * KEYS_PER_SHARD_MAX);
        let known = (0..SHARDS * KEYS_PER_SHARD_MAX * 2)
            .map(|key| format!("live-{key}"))
            .find(|key| {
                matches!(
                    limiter.acquire_at(key, limit, 1),
                    LimitOutcome::Limited { .. }
                )
            })
            .expect("tracked keys stay limited");
        assert!(matches!(
            limiter.acquire_at(&known, limit, 2),
            LimitOutcome::Limited { .. }
        ));
        // Once those keys' time has passed, new keys are tracked again.
        let later = 1_000_000;
        assert_eq!(
            limiter.acquire_at("newcomer", limit, later),
            LimitOutcome::Allowed
        );
        assert!(matches!(
            limiter.acquire_at("newcomer", limit, later),
            LimitOutcome::Limited { .. }
        ));
    }

    /// Many tasks at one instant on one key: exactly `burst` pass.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn exactly_the_burst_passes_under_concurrency() {
        const TASKS: usize = 200;
        const BURST: u32 = 37;
        let limiter = Arc::new(InMemoryRateLimiter::new());
        let passed = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let limit = params(60_000_000, BURST);
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (limiter, passed, barrier) = (limiter.clone(), passed.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    // One instant for every task: the clock is not the subject.
                    if limiter.acquire_at("shared", limit, 1_000) == LimitOutcome::Allowed {
                        passed.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(passed.load(Ordering::Relaxed), BURST as usize);
    }
}
