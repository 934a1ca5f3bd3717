//! Redis first, the in-process limiter when Redis cannot answer: a Redis
//! failure never turns into a 5xx and never switches limits off, it only
//! makes them per node until Redis is back.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use boxoffice_domain::GcraParams;

use super::memory::InMemoryRateLimiter;
use super::{LimitOutcome, RateLimitError, RateLimiter};
use crate::breaker::{Breaker, WarningThrottle};
use crate::seat_locks::REDIS_CALL_TIMEOUT;

/// After a failure Redis is left alone this long, so that a dead Redis costs
/// one timeout per second per node instead of one per request.
const BREAKER_PAUSE: Duration = Duration::from_secs(1);
/// At most one warning about Redis per this period (the counter sees all).
const WARNING_PERIOD: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct FailOpenRateLimiter {
    shared: Arc<dyn RateLimiter>,
    local: InMemoryRateLimiter,
    breaker: Breaker,
    warnings: WarningThrottle,
}

impl FailOpenRateLimiter {
    pub fn new(shared: Arc<dyn RateLimiter>) -> FailOpenRateLimiter {
        FailOpenRateLimiter {
            shared,
            local: InMemoryRateLimiter::new(),
            breaker: Breaker::new(BREAKER_PAUSE),
            warnings: WarningThrottle::new(WARNING_PERIOD),
        }
    }

    fn succeeded(&self) {
        if self.breaker.succeeded() {
            tracing::info!("redis answers again: rate limits are shared by the nodes again");
        }
    }

    fn failed(&self, operation: &'static str, error: &RateLimitError) {
        self.breaker.failed();
        metrics::counter!("boxoffice_redis_errors_total", "operation" => operation).increment(1);
        if let Some(held_back) = self.warnings.due() {
            tracing::warn!(
                operation,
                %error,
                errors_since_last_warning = held_back,
                pause_ms = self.breaker.pause().as_millis() as u64,
                "redis rate limits unavailable; this node limits on its own meanwhile"
            );
        }
    }
}

#[async_trait]
impl RateLimiter for FailOpenRateLimiter {
    async fn acquire(&self, key: &str, params: GcraParams) -> Result<LimitOutcome, RateLimitError> {
        if self.breaker.allows() {
            let call = self.shared.acquire(key, params);
            let error = match tokio::time::timeout(REDIS_CALL_TIMEOUT, call).await {
                Ok(Ok(outcome)) => {
                    self.succeeded();
                    return Ok(outcome);
                }
                Ok(Err(error)) => error,
                Err(_) => RateLimitError::Timeout(REDIS_CALL_TIMEOUT),
            };
            self.failed("rate_limit", &error);
        }
        self.local.acquire(key, params).await
    }

    async fn release(&self, key: &str, params: GcraParams) -> Result<(), RateLimitError> {
        if self.breaker.allows() {
            let call = self.shared.release(key, params);
            let error = match tokio::time::timeout(REDIS_CALL_TIMEOUT, call).await {
                Ok(Ok(())) => {
                    self.succeeded();
                    return Ok(());
                }
                Ok(Err(error)) => error,
                Err(_) => RateLimitError::Timeout(REDIS_CALL_TIMEOUT),
            };
            self.failed("rate_limit_release", &error);
        }
        self.local.release(key, params).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Broken;

    #[async_trait]
    impl RateLimiter for Broken {
        async fn acquire(&self, _: &str, _: GcraParams) -> Result<LimitOutcome, RateLimitError> {
            Err(RateLimitError::Redis("connection refused".into()))
        }

        async fn release(&self, _: &str, _: GcraParams) -> Result<(), RateLimitError> {
            Err(RateLimitError::Redis("connection refused".into()))
        }
    }

    #[tokio::test]
    async fn a_broken_redis_falls_back_to_the_local_limits() {
        let limiter = FailOpenRateLimiter::new(Arc::new(Broken));
        let limit = GcraParams::new(60_000_000, 2).expect("params");
        assert_eq!(
            limiter.acquire("k", limit).await.ok(),
            Some(LimitOutcome::Allowed)
        );
        assert_eq!(
            limiter.acquire("k", limit).await.ok(),
            Some(LimitOutcome::Allowed)
        );
        assert!(matches!(
            limiter.acquire("k", limit).await,
            Ok(LimitOutcome::Limited { .. })
        ));
        assert!(limiter.release("k", limit).await.is_ok());
        assert_eq!(
            limiter.acquire("k", limit).await.ok(),
            Some(LimitOutcome::Allowed)
        );
    }
}
