//! [`GuardedGateway`]: what stands between the booking service and any
//! payment gateway — a timeout per attempt, a few retries with exponential
//! backoff and jitter, a time budget per call, and a circuit breaker.
//!
//! Retrying is safe because every charge and refund carries an idempotency
//! key derived from the hold: the gateway answers a repeated request with the
//! first one's result instead of acting twice. Only `Unavailable` is retried;
//! a declined card is an answer, not a failure.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;

use super::{ChargeOutcome, ChargeRequest, GatewayCharge, GatewayError, PaymentGateway};
use crate::breaker::Breaker;

/// Attempts of one call at most (the first and two retries): enough to ride
/// out a dropped connection or a brief 5xx, few enough not to pile onto a
/// gateway that is really down.
pub const ATTEMPTS_MAX: u32 = 3;
/// The wait before the first retry; it doubles for each further one.
pub const BACKOFF_FIRST_MILLISECONDS: u64 = 100;
/// No wait between attempts is longer than this.
pub const BACKOFF_MAX_MILLISECONDS: u64 = 1_000;
/// One call (all its attempts and waits) takes at most this many attempt
/// timeouts: a hanging gateway gets two attempts, a fast-failing one all
/// [`ATTEMPTS_MAX`]. A confirmation makes at most two calls (charge, then
/// look-up), so it answers within four attempt timeouts.
pub const CALL_BUDGET_IN_ATTEMPT_TIMEOUTS: u32 = 2;
/// Failed attempts in a row that open the breaker: more than one call's
/// worth, so that one unlucky call alone does not shut payments off.
pub const BREAKER_FAILURES_TO_OPEN_DEFAULT: u32 = 5;
/// How long an open breaker fails calls at once before one probe may pass.
pub const BREAKER_COOL_DOWN_MILLISECONDS_DEFAULT: u64 = 10_000;

/// The bounds of [`GuardedGateway`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardPolicy {
    /// One attempt slower than this counts as a failure.
    pub attempt_timeout: Duration,
    pub attempts_max: u32,
    pub backoff_first: Duration,
    pub backoff_max: Duration,
    pub breaker_failures_to_open: u32,
    pub breaker_cool_down: Duration,
}

impl GuardPolicy {
    /// The defaults above around an attempt timeout.
    pub fn new(attempt_timeout: Duration) -> GuardPolicy {
        GuardPolicy {
            attempt_timeout,
            attempts_max: ATTEMPTS_MAX,
            backoff_first: Duration::from_millis(BACKOFF_FIRST_MILLISECONDS),
            backoff_max: Duration::from_millis(BACKOFF_MAX_MILLISECONDS),
            breaker_failures_to_open: BREAKER_FAILURES_TO_OPEN_DEFAULT,
            breaker_cool_down: Duration::from_millis(BREAKER_COOL_DOWN_MILLISECONDS_DEFAULT),
        }
    }

    /// The longest one guarded call takes, retries and waits included.
    pub fn call_budget(&self) -> Duration {
        self.attempt_timeout * CALL_BUDGET_IN_ATTEMPT_TIMEOUTS
    }

    /// The wait before retry number `retry` (1 for the first), "equal
    /// jitter": half of the exponential step for sure, the other half at
    /// random (`jitter` in `[0, 1)`), so that nodes retrying together spread
    /// out but every retry still waits.
    pub fn backoff_before_retry(&self, retry: u32, jitter: f64) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        let step = self
            .backoff_first
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max);
        step / 2 + step.div_f64(2.0).mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Any gateway behind timeouts, retries and a circuit breaker (one breaker
/// for all operations: they all go to the same provider).
pub struct GuardedGateway {
    inner: Arc<dyn PaymentGateway>,
    policy: GuardPolicy,
    breaker: Breaker,
}

impl GuardedGateway {
    pub fn new(inner: Arc<dyn PaymentGateway>, policy: GuardPolicy) -> GuardedGateway {
        let breaker =
            Breaker::with_threshold(policy.breaker_cool_down, policy.breaker_failures_to_open);
        metrics::gauge!("boxoffice_gateway_breaker_open").set(0.0);
        GuardedGateway {
            inner,
            policy,
            breaker,
        }
    }

    pub fn policy(&self) -> &GuardPolicy {
        &self.policy
    }

    /// Runs `attempt` until it succeeds, the attempts or the budget run out,
    /// or the breaker is open.
    async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<T, GatewayError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        let deadline = Instant::now() + self.policy.call_budget();
        let mut attempts = 0;
        loop {
            if !self.breaker.allows() {
                metrics::counter!("boxoffice_gateway_breaker_rejections_total", "operation" => operation)
                    .increment(1);
                return Err(GatewayError::Unavailable(format!(
                    "{} gateway circuit breaker open",
                    self.inner.name()
                )));
            }
            attempts += 1;
            let timeout = self
                .policy
                .attempt_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let error = match tokio::time::timeout(timeout, attempt()).await {
                Ok(Ok(value)) => {
                    self.record_success();
                    return Ok(value);
                }
                Ok(Err(error)) => error,
                Err(_elapsed) => GatewayError::Unavailable(format!("no answer within {timeout:?}")),
            };
            self.record_failure(operation, &error);
            let backoff = self
                .policy
                .backoff_before_retry(attempts, rand::thread_rng().gen::<f64>());
            if attempts >= self.policy.attempts_max || Instant::now() + backoff >= deadline {
                return Err(error);
            }
            metrics::counter!("boxoffice_gateway_retries_total", "operation" => operation)
                .increment(1);
            tracing::info!(operation, attempts, backoff_ms = backoff.as_millis() as u64, %error, "payment gateway call failed; retrying");
            tokio::time::sleep(backoff).await;
        }
    }

    fn record_success(&self) {
        if self.breaker.succeeded() {
            metrics::counter!("boxoffice_gateway_breaker_transitions_total", "to" => "closed")
                .increment(1);
            metrics::gauge!("boxoffice_gateway_breaker_open").set(0.0);
            tracing::info!(
                gateway = self.inner.name(),
                "payment gateway answers again; circuit breaker closed"
            );
        }
    }

    fn record_failure(&self, operation: &'static str, error: &GatewayError) {
        metrics::counter!("boxoffice_gateway_failures_total", "operation" => operation)
            .increment(1);
        if self.breaker.failed() {
            metrics::counter!("boxoffice_gateway_breaker_transitions_total", "to" => "open")
                .increment(1);
            metrics::gauge!("boxoffice_gateway_breaker_open").set(1.0);
            tracing::warn!(
                gateway = self.inner.name(),
                %error,
                cool_down_ms = self.policy.breaker_cool_down.as_millis() as u64,
                "payment gateway keeps failing; circuit breaker open, payments answer 503 at once"
            );
        }
    }
}

#[async_trait]
impl PaymentGateway for GuardedGateway {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        self.call("charge", || self.inner.charge(request)).await
    }

    async fn lookup(&self, idempotency_key: &str) -> Result<Option<GatewayCharge>, GatewayError> {
        self.call("lookup", || self.inner.lookup(idempotency_key))
            .await
    }

    async fn refund(&self, idempotency_key: &str) -> Result<(), GatewayError> {
        self.call("refund", || self.inner.refund(idempotency_key))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use boxoffice_domain::{Currency, HoldId, Money};

    use super::*;

    /// What the scripted gateway does on one call.
    #[derive(Clone, Copy)]
    enum Step {
        Fail,
        Hang,
        Capture,
        Decline,
    }

    /// Plays its script, then captures; counts calls.
    struct ScriptedGateway {
        script: Mutex<VecDeque<Step>>,
        calls: AtomicU32,
    }

    impl ScriptedGateway {
        fn new(script: &[Step]) -> Arc<ScriptedGateway> {
            Arc::new(ScriptedGateway {
                script: Mutex::new(script.iter().copied().collect()),
                calls: AtomicU32::new(0),
            })
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }

        async fn next(&self) -> Result<(), GatewayError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let step = self.script.lock().expect("lock").pop_front();
            match step.unwrap_or(Step::Capture) {
                Step::Fail => Err(GatewayError::Unavailable("scripted 500".into())),
                Step::Hang => std::future::pending().await,
                Step::Capture | Step::Decline => Ok(()),
            }
        }

        fn peek_decline(&self) -> bool {
            matches!(
                self.script.lock().expect("lock").front(),
                Some(Step::Decline)
            )
        }
    }

    #[async_trait]
    impl PaymentGateway for ScriptedGateway {
        fn name(&self) -> &'static str {
            "scripted"
        }

        async fn charge(&self, _request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
            let decline = self.peek_decline();
            self.next().await?;
            Ok(if decline {
                ChargeOutcome::Declined {
                    reason: "card_declined".into(),
                }
            } else {
                ChargeOutcome::Captured {
                    reference: "ch_1".into(),
                }
            })
        }

        async fn lookup(&self, _key: &str) -> Result<Option<GatewayCharge>, GatewayError> {
            self.next().await?;
            Ok(None)
        }

        async fn refund(&self, _key: &str) -> Result<(), GatewayError> {
            self.next().await
        }
    }

    fn fast_policy() -> GuardPolicy {
        GuardPolicy {
            attempt_timeout: Duration::from_millis(50),
            attempts_max: 3,
            backoff_first: Duration::from_millis(1),
            backoff_max: Duration::from_millis(4),
            breaker_failures_to_open: 5,
            breaker_cool_down: Duration::from_secs(3600),
        }
    }

    fn request() -> ChargeRequest {
        let hold_id = HoldId::generate(1, 1);
        ChargeRequest {
            idempotency_key: format!("charge-{hold_id}"),
            hold_id,
            amount: Money::new(2500, Currency::parse("EUR").expect("currency")).expect("money"),
            payment_token: "tok_visa".into(),
        }
    }

    #[tokio::test]
    async fn a_failure_is_retried_until_it_succeeds() {
        let inner = ScriptedGateway::new(&[Step::Fail, Step::Fail]);
        let guard = GuardedGateway::new(inner.clone(), fast_policy());
        let outcome = guard.charge(&request()).await.expect("third attempt");
        assert!(matches!(outcome, ChargeOutcome::Captured { .. }));
        assert_eq!(inner.calls(), 3);
    }

    #[tokio::test]
    async fn retries_stop_at_the_attempt_limit() {
        let inner = ScriptedGateway::new(&[Step::Fail; 4]);
        let guard = GuardedGateway::new(inner.clone(), fast_policy());
        assert!(guard.refund("charge-x").await.is_err());
        assert_eq!(inner.calls(), 3, "attempts_max");
    }

    #[tokio::test]
    async fn a_decline_is_an_answer_not_retried() {
        let inner = ScriptedGateway::new(&[Step::Decline]);
        let guard = GuardedGateway::new(inner.clone(), fast_policy());
        let outcome = guard.charge(&request()).await.expect("answer");
        assert!(matches!(outcome, ChargeOutcome::Declined { .. }));
        assert_eq!(inner.calls(), 1);
    }

    #[tokio::test]
    async fn a_hanging_gateway_costs_at_most_the_call_budget() {
        let inner = ScriptedGateway::new(&[Step::Hang; 3]);
        let policy = fast_policy();
        let guard = GuardedGateway::new(inner.clone(), policy.clone());
        let started = Instant::now();
        assert!(guard.lookup("charge-x").await.is_err());
        let elapsed = started.elapsed();
        assert!(elapsed >= policy.attempt_timeout, "{elapsed:?}");
        assert!(
            elapsed < policy.call_budget() + Duration::from_millis(40),
            "{elapsed:?} past the budget"
        );
        assert!((1..=3).contains(&inner.calls()), "{} calls", inner.calls());
    }

    #[tokio::test]
    async fn the_breaker_opens_fails_fast_half_opens_and_closes() {
        let policy = GuardPolicy {
            attempts_max: 1,
            breaker_failures_to_open: 3,
            ..fast_policy()
        };
        let inner = ScriptedGateway::new(&[Step::Fail; 3]);
        let guard = GuardedGateway::new(inner.clone(), policy);
        for _ in 0..3 {
            assert!(guard.lookup("charge-x").await.is_err());
        }
        assert_eq!(inner.calls(), 3);
        // Open: fails without calling the gateway.
        let error = guard.lookup("charge-x").await.expect_err("open");
        assert!(
            error.to_string().contains("circuit breaker open"),
            "{error}"
        );
        assert_eq!(inner.calls(), 3);
        // Cool-down over: one probe passes, succeeds, and closes it.
        guard.breaker.end_pause_now();
        assert!(guard.lookup("charge-x").await.is_ok());
        assert_eq!(inner.calls(), 4);
        assert!(guard.lookup("charge-x").await.is_ok());
        assert_eq!(inner.calls(), 5, "closed again");
    }

    #[tokio::test]
    async fn a_failed_probe_opens_the_breaker_again_and_stops_the_retries() {
        let policy = GuardPolicy {
            breaker_failures_to_open: 2,
            ..fast_policy()
        };
        let inner = ScriptedGateway::new(&[Step::Fail; 10]);
        let guard = GuardedGateway::new(inner.clone(), policy);
        assert!(guard.refund("charge-x").await.is_err());
        assert_eq!(
            inner.calls(),
            2,
            "the breaker opened after two, ending the retries"
        );
        guard.breaker.end_pause_now();
        assert!(guard.refund("charge-x").await.is_err());
        assert_eq!(inner.calls(), 3, "one probe, then open again");
    }

    #[test]
    fn backoff_doubles_within_its_bounds() {
        let policy = GuardPolicy {
            backoff_first: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1_000),
            ..fast_policy()
        };
        let ceilings = [100, 200, 400, 800, 1_000, 1_000, 1_000];
        for (retry, ceiling) in (1..).zip(ceilings) {
            let ceiling = Duration::from_millis(ceiling);
            let low = policy.backoff_before_retry(retry, 0.0);
            let high = policy.backoff_before_retry(retry, 0.999_999);
            assert_eq!(low, ceiling / 2, "retry {retry}");
            assert!(high > low && high <= ceiling, "retry {retry}: {high:?}");
        }
        assert_eq!(
            policy.backoff_before_retry(u32::MAX, 1.0),
            Duration::from_millis(1_000)
        );
    }
}
