//! Rate limits (issue 4, ADR 0013): per client IP and per user, one limit
//! per class of requests and scope, and a brake on failed logins per account.
//!
//! - [`RateLimiter`]: the port, one GCRA step per call on one key.
//! - [`InMemoryRateLimiter`]: per node, the default.
//! - [`RedisRateLimiter`]: shared by the nodes (with `REDIS_URL`), always
//!   behind a [`FailOpenRateLimiter`], which falls back to per-node limits
//!   while Redis cannot answer.
//! - [`RateLimits`]: the policy the http layer and the login use: which
//!   limit applies to which request, the keys, the metrics.

mod fail_open;
mod memory;
mod redis_limiter;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use boxoffice_domain::{GcraParams, UserId};
use sha2::{Digest, Sha256};

pub use fail_open::FailOpenRateLimiter;
pub use memory::{InMemoryRateLimiter, KEYS_PER_SHARD_MAX};
pub use redis_limiter::RedisRateLimiter;

/// Every key starts with this, so that operators can find (and drop) them.
pub const KEY_PREFIX: &str = "bo:rl:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitOutcome {
    Allowed,
    Limited { retry_after: Duration },
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("redis: {0}")]
    Redis(String),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis answered something unexpected: {0}")]
    Protocol(String),
}

/// GCRA state per key (see `boxoffice_domain::rate_limit`).
#[async_trait]
pub trait RateLimiter: fmt::Debug + Send + Sync {
    /// Counts one request for `key`, unless it is over `params`.
    async fn acquire(&self, key: &str, params: GcraParams) -> Result<LimitOutcome, RateLimitError>;

    /// Gives back one request that `acquire` let through.
    async fn release(&self, key: &str, params: GcraParams) -> Result<(), RateLimitError>;
}

/// The groups of routes that have limits of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitClass {
    /// Register and log in.
    Auth,
    /// Create a hold.
    Holds,
    /// Confirm (pay for) a hold, cancel a booking.
    Bookings,
    /// Join the waiting room, poll or stream a queue ticket.
    Queue,
}

impl RateLimitClass {
    pub const ALL: [RateLimitClass; 4] = [
        RateLimitClass::Auth,
        RateLimitClass::Holds,
        RateLimitClass::Bookings,
        RateLimitClass::Queue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitClass::Auth => "auth",
            RateLimitClass::Holds => "holds",
            RateLimitClass::Bookings => "bookings",
            RateLimitClass::Queue => "queue",
        }
    }
}

/// Whom a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitScope {
    /// The client's address (an IPv6 client by its /64).
    Ip,
    /// The user of the bearer token.
    User,
    /// The account a login names (its failed attempts).
    Account,
}

impl RateLimitScope {
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitScope::Ip => "ip",
            RateLimitScope::User => "user",
            RateLimitScope::Account => "account",
        }
    }
}

/// The limits of one class; `None` is no limit in that scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassLimits {
    pub user: Option<GcraParams>,
    pub ip: Option<GcraParams>,
}

/// Every limit of a node. `Default` is no limit at all (what `migrate`,
/// `demo` and unit tests use); the shipped defaults are the command line's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub auth: ClassLimits,
    pub holds: ClassLimits,
    pub bookings: ClassLimits,
    pub queue: ClassLimits,
    /// Failed logins per account (normalised e-mail).
    pub login_failures: Option<GcraParams>,
}

impl RateLimitConfig {
    pub fn class(&self, class: RateLimitClass) -> ClassLimits {
        match class {
            RateLimitClass::Auth => self.auth,
            RateLimitClass::Holds => self.holds,
            RateLimitClass::Bookings => self.bookings,
            RateLimitClass::Queue => self.queue,
        }
    }
}

/// A request over a limit: answered 429 `rate_limited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// `auth`, `holds`, `bookings`, `queue` or `login`.
    pub class: &'static str,
    pub scope: RateLimitScope,
    pub retry_after: Duration,
}

impl RateLimited {
    /// Whole seconds for `Retry-After`, rounded up so that a client that
    /// waits them is let through, and at least 1 (0 would invite a retry
    /// loop).
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_micros().div_ceil(1_000_000).max(1) as u64
    }
}

/// The limits of a node and the limiter that keeps their state.
#[derive(Debug)]
pub struct RateLimits {
    config: RateLimitConfig,
    limiter: Arc<dyn RateLimiter>,
}

impl RateLimits {
    pub fn new(config: RateLimitConfig, limiter: Arc<dyn RateLimiter>) -> RateLimits {
        RateLimits { config, limiter }
    }

    /// Limits kept in this process.
    pub fn in_process(config: RateLimitConfig) -> RateLimits {
        RateLimits::new(config, Arc::new(InMemoryRateLimiter::new()))
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Whether `class` has a per-user limit, i.e. whether the caller's token
    /// must be read before the route runs.
    pub fn limits_users(&self, class: RateLimitClass) -> bool {
        self.config.class(class).user.is_some()
    }

    /// Counts one request of `class` against the caller's limits: the user's
    /// first, so that a user over their own limit does not use up the
    /// address's budget that others behind it share; then the address's.
    /// Without an address (no socket peer known) or a user (no valid
    /// token), that scope is not limited.
    pub async fn check(
        &self,
        class: RateLimitClass,
        ip: Option<IpAddr>,
        user: Option<&UserId>,
    ) -> Result<(), RateLimited> {
        let limits = self.config.class(class);
        if let (Some(params), Some(user)) = (limits.user, user) {
            let key = format!("{KEY_PREFIX}{}:user:{user}", class.as_str());
            self.acquire(class.as_str(), RateLimitScope::User, &key, params)
                .await?;
        }
        if let (Some(params), Some(ip)) = (limits.ip, ip) {
            let key = format!("{KEY_PREFIX}{}:ip:{}", class.as_str(), ip_key(ip));
            self.acquire(class.as_str(), RateLimitScope::Ip, &key, params)
                .await?;
        }
        Ok(())
    }

    /// Takes one login attempt for `email` (normalised) before its password
    /// is checked. The caller gives it back with [`Self::login_succeeded`]
    /// when the password was right, so that only failures count; taking
    /// first means that concurrent guesses cannot all slip through before
    /// the first failure is counted.
    pub async fn login_attempt(&self, email: &str) -> Result<(), RateLimited> {
        match self.config.login_failures {
            Some(params) => {
                self.acquire(
                    "login",
                    RateLimitScope::Account,
                    &account_key(email),
                    params,
                )
                .await
            }
            None => Ok(()),
        }
    }

    /// Gives back the attempt of a login that was not a wrong password.
    pub async fn login_succeeded(&self, email: &str) {
        if let Some(params) = self.config.login_failures {
            // Never an error worth a failed login: the fail-open limiter has
            // already logged and counted it.
            let _ = self.limiter.release(&account_key(email), params).await;
        }
    }

    async fn acquire(
        &self,
        class: &'static str,
        scope: RateLimitScope,
        key: &str,
        params: GcraParams,
    ) -> Result<(), RateLimited> {
        match self.limiter.acquire(key, params).await {
            Ok(LimitOutcome::Allowed) => Ok(()),
            Ok(LimitOutcome::Limited { retry_after }) => {
                metrics::counter!("boxoffice_rate_limited_total", "class" => class, "scope" => scope.as_str())
                    .increment(1);
                tracing::debug!(class, scope = scope.as_str(), ?retry_after, "rate limited");
                Err(RateLimited {
                    class,
                    scope,
                    retry_after,
                })
            }
            Err(error) => {
                // Only a limiter without a fallback gets here (a Redis one
                // is always wrapped): a broken limiter must not refuse work.
                tracing::warn!(%error, class, "rate limiter failed; the request goes on unlimited");
                Ok(())
            }
        }
    }
}

/// An IPv4 address as is; an IPv6 address by its /64, since one subscriber
/// gets at least that many addresses and could rotate through them; an
/// IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
        },
    }
}

/// An e-mail address never appears in a key (Redis is no place for personal
/// data, and the hash bounds the key's length); the first 16 bytes of its
/// SHA-256 are plenty to keep accounts apart.
fn account_key(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    format!("{KEY_PREFIX}login:account:{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(interval_microseconds: u64, burst: u32) -> GcraParams {
        GcraParams::new(interval_microseconds, burst).expect("valid params")
    }

    fn user(n: u64) -> UserId {
        UserId::generate(n, u128::from(n))
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_at_least_one() {
        let limited = |micros| RateLimited {
            class: "holds",
            scope: RateLimitScope::User,
            retry_after: Duration::from_micros(micros),
        };
        assert_eq!(limited(1).retry_after_seconds(), 1);
        assert_eq!(limited(0).retry_after_seconds(), 1);
        assert_eq!(limited(1_000_000).retry_after_seconds(), 1);
        assert_eq!(limited(1_000_001).retry_after_seconds(), 2);
        assert_eq!(limited(29_500_000).retry_after_seconds(), 30);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_key(mapped), "192.0.2.7");
    }

    #[tokio::test]
    async fn users_and_addresses_have_budgets_of_their_own() {
        let config = RateLimitConfig {
            holds: ClassLimits {
                user: Some(params(60_000_000, 2)),
                ip: Some(params(60_000_000, 3)),
            },
            ..RateLimitConfig::default()
        };
        let limits = RateLimits::in_process(config);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let (alice, bob) = (user(1), user(2));
        let holds = RateLimitClass::Holds;
        assert!(limits.check(holds, Some(ip), Some(&alice)).await.is_ok());
        assert!(limits.check(holds, Some(ip), Some(&alice)).await.is_ok());
        let refused = limits
            .check(holds, Some(ip), Some(&alice))
            .await
            .expect_err("alice is over her limit");
        assert_eq!(refused.scope, RateLimitScope::User);
        // Alice's refusal did not use up the address: Bob gets its last one.
        assert!(limits.check(holds, Some(ip), Some(&bob)).await.is_ok());
        let refused = limits
            .check(holds, Some(ip), Some(&bob))
            .await
            .expect_err("the address is over its limit");
        assert_eq!(refused.scope, RateLimitScope::Ip);
        // Other classes, and requests without an address, are not limited.
        assert!(limits
            .check(RateLimitClass::Bookings, Some(ip), Some(&bob))
            .await
            .is_ok());
        assert!(limits.check(holds, None, None).await.is_ok());
    }

    #[tokio::test]
    async fn only_failed_logins_count() {
        let config = RateLimitConfig {
            login_failures: Some(params(60_000_000, 2)),
            ..RateLimitConfig::default()
        };
        let limits = RateLimits::in_process(config);
        for _ in 0..5 {
            limits
                .login_attempt("ada@example.com")
                .await
                .expect("a right login");
            limits.login_succeeded("ada@example.com").await;
        }
        limits
            .login_attempt("ada@example.com")
            .await
            .expect("failure 1");
        limits
            .login_attempt("ada@example.com")
            .await
            .expect("failure 2");
        let refused = limits
            .login_attempt("ada@example.com")
            .await
            .expect_err("two failures use up the burst");
        assert_eq!(
            (refused.class, refused.scope),
            ("login", RateLimitScope::Account)
        );
        assert!(limits.login_attempt("bob@example.com").await.is_ok());
    }

    #[test]
    fn account_keys_hide_the_address() {
        let key = account_key("ada@example.com");
        assert!(key.starts_with("bo:rl:login:account:"));
        assert!(!key.contains("ada"));
        assert_ne!(key, account_key("bob@example.com"));
    }
}
