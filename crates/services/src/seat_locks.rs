//! Seat soft-locks across nodes (DESIGN.md, "The hot path", step 3; ADR 0009).
//!
//! A lock only filters: a request whose seats another hold has locked is
//! refused without touching the database, so that nodes reject each other's
//! winners cheaply. The database transaction still decides every hold, so a
//! missing, stale or unreachable lock can cost a free seat a 409 for a while,
//! never sell a seat twice.
//!
//! - [`SeatLocks`]: the port.
//! - [`RedisSeatLocks`]: one Lua script per call, keys `bx:{<show>}:seat:<seat>`.
//! - [`GuardedSeatLocks`]: what the booking service uses: a timeout on every
//!   call, a small breaker, rate-limited warnings and the metrics.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use boxoffice_domain::{HoldId, SeatId, ShowId};

use crate::breaker::{Breaker, WarningThrottle};

/// How long one Redis call may take before the hold goes on without it.
pub const REDIS_CALL_TIMEOUT: Duration = Duration::from_millis(200);
/// After a failure Redis is left alone this long, so that a dead Redis costs
/// one timeout per second per node instead of one per request.
const BREAKER_PAUSE: Duration = Duration::from_secs(1);
/// At most one warning about Redis per this period (the counter sees all).
const WARNING_PERIOD: Duration = Duration::from_secs(10);
/// Unlocks kept for a retry while Redis is away. Past this the oldest are
/// dropped: their locks lapse with their TTL anyway.
const DEFERRED_UNLOCKS_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// Every requested seat is now locked by the owner.
    Locked,
    /// Nothing was locked: these seats are locked by another owner.
    Taken { seat_ids: Vec<SeatId> },
}

#[derive(Debug, thiserror::Error)]
pub enum SeatLockError {
    #[error("redis: {0}")]
    Redis(String),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis answered something unexpected: {0}")]
    Protocol(String),
}

/// Soft-locks of seats, keyed by show and seat, owned by a hold.
#[async_trait]
pub trait SeatLocks: fmt::Debug + Send + Sync {
    /// Locks all `seat_ids` for `owner` for `ttl`, or none of them.
    async fn lock(
        &self,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        owner: &HoldId,
        ttl: Duration,
    ) -> Result<LockOutcome, SeatLockError>;

    /// Removes the locks of `seat_ids` that `owner` holds; others stay.
    async fn unlock(
        &self,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        owner: &HoldId,
    ) -> Result<(), SeatLockError>;
}

/// The Redis key of one seat's lock. The hash tag (`{show}`) keeps all keys
/// of a show in one Redis Cluster slot, which a multi-key script requires.
pub fn seat_lock_key(show_id: &ShowId, seat_id: &SeatId) -> String {
    format!("bx:{{{show_id}}}:seat:{seat_id}")
}

/// All or nothing: returns the (1-based) indexes of the keys another owner
/// holds, and sets every key only when that list is empty.
const LOCK_SCRIPT: &str = r"
local taken = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder and holder ~= ARGV[1] then
    taken[#taken + 1] = i
  end
end
if #taken == 0 then
  for _, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  end
end
return taken
";

/// Compare-and-delete, so that a hold never removes a lock it lost to another.
const UNLOCK_SCRIPT: &str = r"
local removed = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    removed = removed + 1
  end
end
return removed
";

pub struct RedisSeatLocks {
    connection: redis::aio::ConnectionManager,
    lock_script: redis::Script,
    unlock_script: redis::Script,
    timeout: Duration,
    shown_url: String,
}

impl fmt::Debug for RedisSeatLocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSeatLocks")
            .field("url", &self.shown_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn redis_error(error: redis::RedisError) -> SeatLockError {
    SeatLockError::Redis(error.to_string())
}

impl RedisSeatLocks {
    /// Prepares a connection to `url` without waiting for Redis: the
    /// connection manager connects on first use and reconnects by itself.
    /// Fails only for a URL that cannot work. `shown_url` (the URL without
    /// its password) is what `Debug` prints.
    pub fn new(url: &str, shown_url: &str) -> Result<RedisSeatLocks, SeatLockError> {
        // Short retries: every call is bounded by `timeout` anyway, and the
        // breaker decides when to try again.
        let connection = crate::redis_connection::lazy_connection(url, REDIS_CALL_TIMEOUT)
            .map_err(redis_error)?;
        Ok(RedisSeatLocks {
            connection,
            lock_script: redis::Script::new(LOCK_SCRIPT),
            unlock_script: redis::Script::new(UNLOCK_SCRIPT),
            timeout: REDIS_CALL_TIMEOUT,
            shown_url: shown_url.to_string(),
        })
    }

    /// Round trip to Redis (for start-up).
    pub async fn ping(&self) -> Result<(), SeatLockError> {
        let mut connection = self.connection.clone();
        let answer: String = self
            .bounded(redis::cmd("PING").query_async(&mut connection))
            .await?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(SeatLockError::Protocol(format!("PING answered {answer:?}")))
        }
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, SeatLockError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(redis_error),
            Err(_) => Err(SeatLockError::Timeout(self.timeout)),
        }
    }
}

#[async_trait]
impl SeatLocks for RedisSeatLocks {
    async fn lock(
        &self,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        owner: &HoldId,
        ttl: Duration,
    ) -> Result<LockOutcome, SeatLockError> {
        if seat_ids.is_empty() {
            return Ok(LockOutcome::Locked);
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut invocation = self.lock_script.prepare_invoke();
        for seat_id in seat_ids {
            invocation.key(seat_lock_key(show_id, seat_id));
        }
        invocation.arg(owner.as_str()).arg(ttl_ms);
        let mut connection = self.connection.clone();
        let taken: Vec<i64> = self
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        if taken.is_empty() {
            return Ok(LockOutcome::Locked);
        }
        let seat_ids = taken
            .iter()
            .map(|index| {
                usize::try_from(*index - 1)
                    .ok()
                    .and_then(|index| seat_ids.get(index))
                    .cloned()
                    .ok_or_else(|| {
                        SeatLockError::Protocol(format!("the lock script named key {index}"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LockOutcome::Taken { seat_ids })
    }

    async fn unlock(
        &self,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        owner: &HoldId,
    ) -> Result<(), SeatLockError> {
        if seat_ids.is_empty() {
            return Ok(());
        }
        let mut invocation = self.unlock_script.prepare_invoke();
        for seat_id in seat_ids {
            invocation.key(seat_lock_key(show_id, seat_id));
        }
        invocation.arg(owner.as_str());
        let mut connection = self.connection.clone();
        let _removed: i64 = self
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        Ok(())
    }
}

/// What [`GuardedSeatLocks::lock`] found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAttempt {
    Done(LockOutcome),
    /// The call failed or timed out: the script may still have run, so the
    /// caller unlocks as if it had locked.
    Failed,
    /// Redis was not asked (the breaker's pause, or no seats).
    Skipped,
}

/// [`SeatLocks`] as the hot path uses them: never an error. A call that
/// fails, times out or is skipped by the breaker means "no lock known", and
/// the database decides as if Redis were not there.
#[derive(Debug)]
pub struct GuardedSeatLocks {
    locks: Arc<dyn SeatLocks>,
    breaker: Breaker,
    warnings: WarningThrottle,
    /// Unlocks that failed or were skipped by the breaker. Left alone, such
    /// a lock would refuse a free seat until the end of its hold's TTL.
    deferred_unlocks: Mutex<VecDeque<DeferredUnlock>>,
}

#[derive(Debug)]
struct DeferredUnlock {
    show_id: ShowId,
    seat_ids: Vec<SeatId>,
    owner: HoldId,
}

impl GuardedSeatLocks {
    pub fn new(locks: Arc<dyn SeatLocks>) -> GuardedSeatLocks {
        GuardedSeatLocks {
            locks,
            breaker: Breaker::new(BREAKER_PAUSE),
            warnings: WarningThrottle::new(WARNING_PERIOD),
            deferred_unlocks: Mutex::new(VecDeque::new()),
        }
    }

    pub async fn lock(
        &self,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        owner: &HoldId,
        ttl: Duration,
    ) -> LockAttempt {
        if seat_ids.is_empty() || !self.breaker.allows() {
            return LockAttempt::Skipped;
        }
        let call = self.locks.lock(show_id, seat_ids, owner, ttl);
        match tokio::time::timeout(REDIS_CALL_TIMEOUT, call).await {
            Ok(Ok(outcome)) => {
                self.succeeded();
                LockAttempt::Done(outcome)
            }
            Ok(Err(error)) => {
                self.failed("lock", &error);
                LockAttempt::Failed
            }
            Err(_) => {
                self.failed("lock", &SeatLockError::Timeout(REDIS_CALL_TIMEOUT));
                LockAttempt::Failed
            }
        }
    }

    /// Best-effort: an unlock that fails is kept for
    /// [`retry_deferred_unlocks`](Self::retry_deferred_unlocks).
    pub async fn unlock(&self, show_id: &ShowId, seat_ids: &[SeatId], owner: &HoldId) {
        if seat_ids.is_empty() || self.try_unlock(show_id, seat_ids, owner).await {
            return;
        }
        let mut deferred = self.deferred();
        if deferred.len() == DEFERRED_UNLOCKS_MAX {
            deferred.pop_front();
        }
        deferred.push_back(DeferredUnlock {
            show_id: show_id.clone(),
            seat_ids: seat_ids.to_vec(),
            owner: owner.clone(),
        });
    }

    /// Runs the unlocks that failed while Redis was away, oldest first,
    /// until one fails again. Called by the expiry sweeper's tick.
    pub async fn retry_deferred_unlocks(&self) {
        loop {
            let Some(next) = self.deferred().pop_front() else {
                return;
            };
            if !self
                .try_unlock(&next.show_id, &next.seat_ids, &next.owner)
                .await
            {
                self.deferred().push_front(next);
                return;
            }
        }
    }

    /// How many unlocks wait for Redis.
    pub fn deferred_unlocks(&self) -> usize {
        self.deferred().len()
    }

    fn deferred(&self) -> std::sync::MutexGuard<'_, VecDeque<DeferredUnlock>> {
        self.deferred_unlocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn try_unlock(&self, show_id: &ShowId, seat_ids: &[SeatId], owner: &HoldId) -> bool {
        if !self.breaker.allows() {
            return false;
        }
        let call = self.locks.unlock(show_id, seat_ids, owner);
        match tokio::time::timeout(REDIS_CALL_TIMEOUT, call).await {
            Ok(Ok(())) => {
                self.succeeded();
                true
            }
            Ok(Err(error)) => {
                self.failed("unlock", &error);
                false
            }
            Err(_) => {
                self.failed("unlock", &SeatLockError::Timeout(REDIS_CALL_TIMEOUT));
                false
            }
        }
    }

    fn succeeded(&self) {
        if self.breaker.succeeded() {
            tracing::info!("redis answers again: seat soft-locks are back on");
        }
    }

    fn failed(&self, operation: &'static str, error: &SeatLockError) {
        self.breaker.failed();
        metrics::counter!("boxoffice_redis_errors_total", "operation" => operation).increment(1);
        if let Some(suppressed) = self.warnings.due() {
            tracing::warn!(
                operation,
                %error,
                errors_since_last_warning = suppressed,
                pause_ms = BREAKER_PAUSE.as_millis() as u64,
                "redis seat soft-locks unavailable; holds go to the database without them"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hash_tagged_by_show() {
        let show_id = ShowId::generate(1, 1);
        let seat_id = SeatId::parse("A-1-3").expect("seat id");
        assert_eq!(
            seat_lock_key(&show_id, &seat_id),
            format!("bx:{{{}}}:seat:A-1-3", show_id.as_str())
        );
    }
}
