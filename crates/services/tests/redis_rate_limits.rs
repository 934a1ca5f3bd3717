//! `RedisRateLimiter` against a real Redis (a `redis-server` of its own per
//! test): the Lua script does exactly what the domain's GCRA does, limits
//! are shared by every limiter on the same Redis, and a dead Redis falls
//! back to per-node limits instead of failing requests.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use boxoffice_domain::{gcra_acquire, gcra_release, GcraParams, UserId};
use boxoffice_services::rate_limit::{
    ClassLimits, FailOpenRateLimiter, LimitOutcome, RateLimitClass, RateLimitConfig,
    RateLimitScope, RateLimiter, RateLimits, RedisRateLimiter,
};
use common::{free_port, RedisServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::AsyncCommands;

fn params(interval_microseconds: u64, burst: u32) -> GcraParams {
    GcraParams::new(interval_microseconds, burst).expect("valid params")
}

/// Random requests and releases at chosen times through the script and
/// through the domain's functions: every answer and every stored TAT agree.
/// Intervals are seconds long so that no key expires in real time while the
/// test runs (the script sets its expiry from the simulated clock).
#[tokio::test]
async fn the_script_is_the_domain_arithmetic() {
    let server = RedisServer::start();
    let limiter = RedisRateLimiter::new(&server.url(), &server.url()).expect("redis url");
    let mut redis = server.connection().await;
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for case in 0..20 {
        let limit = params(rng.gen_range(1_000_000..5_000_000), rng.gen_range(1..20));
        let key = format!("bo:rl:test:{case}");
        let mut now: u64 = 1_700_000_000_000_000 + rng.gen_range(0..1_000_000);
        let mut tat: Option<u64> = None;
        for step in 0..60 {
            now += rng.gen_range(0..limit.interval_microseconds() * 3 / 2);
            let context = format!("seed {seed}, case {case}, step {step}, {limit}, now {now}");
            if rng.gen_bool(0.15) {
                limiter.release_at(&key, limit, now).await.expect("release");
                tat = gcra_release(limit, tat, now);
            } else {
                let decision = gcra_acquire(limit, tat, now);
                let expected = if decision.allowed {
                    LimitOutcome::Allowed
                } else {
                    LimitOutcome::Limited {
                        retry_after: Duration::from_micros(decision.retry_after_microseconds),
                    }
                };
                let outcome = limiter.acquire_at(&key, limit, now).await.expect("acquire");
                assert_eq!(outcome, expected, "{context}");
                tat = Some(decision.tat_microseconds);
            }
            let stored: Option<String> = redis.get(&key).await.expect("GET");
            let live_tat = tat.filter(|tat| *tat > now);
            assert_eq!(
                stored.map(|text| text.parse::<u64>().expect("a TAT in whole µs")),
                live_tat,
                "{context}: the stored TAT"
            );
        }
    }
}

/// On Redis's own clock: a burst passes, the next request is refused with a
/// retry-after of at most one interval, the key expires with its TAT, and
/// after waiting the retry-after the next request passes.
#[tokio::test]
async fn redis_time_limits_and_expires_keys() {
    let server = RedisServer::start();
    let limiter = RedisRateLimiter::new(&server.url(), &server.url()).expect("redis url");
    let mut redis = server.connection().await;
    let limit = params(500_000, 2);
    let key = "bo:rl:holds:user:usr_test";
    for _ in 0..2 {
        assert_eq!(
            limiter.acquire(key, limit).await.ok(),
            Some(LimitOutcome::Allowed)
        );
    }
    let retry_after = match limiter.acquire(key, limit).await.expect("acquire") {
        LimitOutcome::Limited { retry_after } => retry_after,
        LimitOutcome::Allowed => panic!("the third request within the burst of 2 passed"),
    };
    assert!(
        retry_after > Duration::ZERO && retry_after <= Duration::from_millis(500),
        "{retry_after:?}"
    );
    let pttl: i64 = redis.pttl(key).await.expect("PTTL");
    assert!(
        pttl > 0 && pttl <= 1_000,
        "the key lives until its TAT: PTTL {pttl}"
    );
    tokio::time::sleep(retry_after).await;
    assert_eq!(
        limiter.acquire(key, limit).await.ok(),
        Some(LimitOutcome::Allowed)
    );
}

fn holds_per_user(burst: u32) -> RateLimitConfig {
    RateLimitConfig {
        holds: ClassLimits {
            user: Some(params(60_000_000, burst)),
            ip: None,
        },
        ..RateLimitConfig::default()
    }
}

/// Two nodes, each with its own connection: one budget between them.
#[tokio::test]
async fn nodes_on_one_redis_share_a_limit() {
    let server = RedisServer::start();
    let node = || {
        let redis = RedisRateLimiter::new(&server.url(), &server.url()).expect("redis url");
        RateLimits::new(
            holds_per_user(3),
            Arc::new(FailOpenRateLimiter::new(Arc::new(redis))),
        )
    };
    let (first, second) = (node(), node());
    let user = UserId::generate(1, 1);
    let ip: IpAddr = "192.0.2.1".parse().expect("ip");
    let holds = RateLimitClass::Holds;
    assert!(first.check(holds, Some(ip), Some(&user)).await.is_ok());
    assert!(second.check(holds, Some(ip), Some(&user)).await.is_ok());
    assert!(first.check(holds, Some(ip), Some(&user)).await.is_ok());
    let refused = second
        .check(holds, Some(ip), Some(&user))
        .await
        .expect_err("the fourth request of the user, on the other node");
    assert_eq!(refused.scope, RateLimitScope::User);

    let mut redis = server.connection().await;
    let keys: Vec<String> = redis.keys("*").await.expect("KEYS");
    assert_eq!(keys, vec![format!("bo:rl:holds:user:{user}")]);

    // Failed logins are shared too.
    let login = RateLimitConfig {
        login_failures: Some(params(60_000_000, 1)),
        ..RateLimitConfig::default()
    };
    let redis_limits = || {
        let redis = RedisRateLimiter::new(&server.url(), &server.url()).expect("redis url");
        RateLimits::new(
            login.clone(),
            Arc::new(FailOpenRateLimiter::new(Arc::new(redis))),
        )
    };
    let (first, second) = (redis_limits(), redis_limits());
    first
        .login_attempt("ada@example.com")
        .await
        .expect("the first failure");
    assert!(second.login_attempt("ada@example.com").await.is_err());
}

/// A Redis nobody answers for: requests are limited per node and never fail.
#[tokio::test]
async fn a_dead_redis_falls_back_to_per_node_limits() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let redis = RedisRateLimiter::new(&url, &url).expect("redis url");
    let limits = RateLimits::new(
        holds_per_user(2),
        Arc::new(FailOpenRateLimiter::new(Arc::new(redis))),
    );
    let user = UserId::generate(1, 1);
    assert!(limits
        .check(RateLimitClass::Holds, None, Some(&user))
        .await
        .is_ok());
    assert!(limits
        .check(RateLimitClass::Holds, None, Some(&user))
        .await
        .is_ok());
    assert!(limits
        .check(RateLimitClass::Holds, None, Some(&user))
        .await
        .is_err());
    let other = UserId::generate(2, 2);
    assert!(limits
        .check(RateLimitClass::Holds, None, Some(&other))
        .await
        .is_ok());
}
