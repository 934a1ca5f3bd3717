//! The Redis limiter: limits shared by every node. One Lua script runs the
//! GCRA steps of `boxoffice_domain::rate_limit` atomically on Redis's own
//! clock (`TIME`), so that nodes whose clocks differ still share one limit.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use boxoffice_domain::GcraParams;

use super::{LimitOutcome, RateLimitError, RateLimiter};
use crate::seat_locks::REDIS_CALL_TIMEOUT;

/// `gcra_acquire` and `gcra_release` of the domain, step for step.
///
/// KEYS[1]: the key. ARGV: `acquire` or `release`, the interval (µs), the
/// burst, and optionally "now" (µs) instead of Redis's clock, which only
/// the test comparing this script with the domain passes. Every number stays
/// below 2^53 (the domain bounds interval × burst), so Lua's doubles hold
/// them exactly; the TAT is written with `%.0f` because Lua's default
/// number format would round it. The key expires when its TAT passes, as a
/// TAT in the past means the same as no key.
const GCRA_SCRIPT: &str = r"
local interval = tonumber(ARGV[2])
local tolerance = interval * (tonumber(ARGV[3]) - 1)
local now = tonumber(ARGV[4])
if not now then
  -- Redis older than 5 replicates scripts verbatim, which TIME would break.
  if redis.replicate_commands then redis.replicate_commands() end
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local stored = tonumber(redis.call('GET', KEYS[1]))
local function keep(tat)
  if tat > now then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
  else
    redis.call('DEL', KEYS[1])
  end
end
if ARGV[1] == 'release' then
  if stored then keep(stored - interval) end
  return {1, 0}
end
local tat = now
if stored and stored > now then tat = stored end
local ahead = tat - now
if ahead > tolerance then
  return {0, ahead - tolerance}
end
keep(tat + interval)
return {1, 0}
";

pub struct RedisRateLimiter {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
    shown_url: String,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("url", &self.shown_url)
            .finish()
    }
}

fn redis_error(error: redis::RedisError) -> RateLimitError {
    RateLimitError::Redis(error.to_string())
}

impl RedisRateLimiter {
    /// Prepares a connection to `url` without waiting for Redis (the
    /// manager connects on first use and reconnects by itself). Fails only
    /// for a URL that cannot work; `shown_url` is what `Debug` prints.
    pub fn new(url: &str, shown_url: &str) -> Result<RedisRateLimiter, RateLimitError> {
        // Short retries: the caller bounds every call and falls back to the
        // in-process limiter rather than wait.
        let connection = crate::redis_connection::lazy_connection(url, REDIS_CALL_TIMEOUT)
            .map_err(redis_error)?;
        Ok(RedisRateLimiter {
            connection,
            script: redis::Script::new(GCRA_SCRIPT),
            shown_url: shown_url.to_string(),
        })
    }

    /// Runs the script with an explicit "now" instead of Redis's clock: for
    /// the test that holds the script to the domain's arithmetic.
    pub async fn acquire_at(
        &self,
        key: &str,
        params: GcraParams,
        now_microseconds: u64,
    ) -> Result<LimitOutcome, RateLimitError> {
        self.run("acquire", key, params, Some(now_microseconds))
            .await
            .and_then(outcome)
    }

    /// [`RateLimiter::release`] with an explicit "now" (tests only).
    pub async fn release_at(
        &self,
        key: &str,
        params: GcraParams,
        now_microseconds: u64,
    ) -> Result<(), RateLimitError> {
        self.run("release", key, params, Some(now_microseconds))
            .await
            .map(|_| ())
    }

    async fn run(
        &self,
        operation: &'static str,
        key: &str,
        params: GcraParams,
        now_microseconds: Option<u64>,
    ) -> Result<(i64, i64), RateLimitError> {
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(key)
            .arg(operation)
            .arg(params.interval_microseconds())
            .arg(params.burst());
        if let Some(now) = now_microseconds {
            invocation.arg(now);
        }
        let mut connection = self.connection.clone();
        let call = invocation.invoke_async::<Vec<i64>>(&mut connection);
        let answer = match tokio::time::timeout(REDIS_CALL_TIMEOUT, call).await {
            Ok(answer) => answer.map_err(redis_error)?,
            Err(_) => return Err(RateLimitError::Timeout(REDIS_CALL_TIMEOUT)),
        };
        match answer.as_slice() {
            [allowed, retry_after] => Ok((*allowed, *retry_after)),
            other => Err(RateLimitError::Protocol(format!(
                "the rate-limit script answered {other:?}"
            ))),
        }
    }
}

fn outcome(
    (allowed, retry_after_microseconds): (i64, i64),
) -> Result<LimitOutcome, RateLimitError> {
    match (allowed, u64::try_from(retry_after_microseconds)) {
        (1, _) => Ok(LimitOutcome::Allowed),
        (0, Ok(retry_after)) if retry_after > 0 => Ok(LimitOutcome::Limited {
            retry_after: Duration::from_micros(retry_after),
        }),
        _ => Err(RateLimitError::Protocol(format!(
            "the rate-limit script answered allowed={allowed}, retry_after={retry_after_microseconds}"
        ))),
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, key: &str, params: GcraParams) -> Result<LimitOutcome, RateLimitError> {
        self.run("acquire", key, params, None)
            .await
            .and_then(outcome)
    }

    async fn release(&self, key: &str, params: GcraParams) -> Result<(), RateLimitError> {
        self.run("release", key, params, None).await.map(|_| ())
    }
}
