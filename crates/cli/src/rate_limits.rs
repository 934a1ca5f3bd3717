//! The rate-limit options of `boxoffice serve` and their syntax (ADR 0013).
//!
//! One variable per class, each a comma-separated list of
//! `SCOPE=COUNT/[N]UNIT[:BURST]` or `SCOPE=off`, or `off` for the whole
//! class: `BOXOFFICE_RATE_LIMIT_HOLDS="user=10/s:100,ip=500/m:50"` is ten
//! holds a second per user with bursts of 100, and 500 a minute per client
//! address with bursts of 50. UNIT is `s`, `m` or `h`, optionally
//! with a count (`1/30s` is one every 30 seconds); BURST defaults to COUNT.
//! A scope the value does not name is not limited.

use std::str::FromStr;

use axum::http::HeaderName;
use boxoffice_domain::GcraParams;
use boxoffice_services::rate_limit::{ClassLimits, RateLimitConfig};
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};

/// Register and log in, per address: above what one node can hash (Argon2
/// runs two at a time, some 80 a second on two cores), so a script that
/// registers thousands of users from one machine is never refused; the
/// per-account login limit is what slows down guessing.
pub const AUTH_DEFAULT: &str = "ip=200/s:2000";
/// Per user, holds, bookings and queue requests share one shape: no person
/// sends ten a second, and a burst of 100 lets scripts and test suites with
/// one account through (the e2e suite's heaviest user sends 80 holds within
/// a few seconds, its bad-input table some 30 booking requests at once).
/// Per address they are flood guards only, above what one node serves (some
/// 6,500 holds a second on two cores): one address may be a whole office, a
/// carrier's NAT, a load balancer without `BOXOFFICE_CLIENT_IP_HEADER`, or a
/// load test. The per-user limits, the waiting room and
/// `max_tickets_per_user` are what stop scalpers.
pub const HOLDS_DEFAULT: &str = "user=10/s:100,ip=10000/s:20000";
pub const BOOKINGS_DEFAULT: &str = "user=10/s:100,ip=10000/s:20000";
/// A queue page polls every few seconds; 10/s is a client in a tight loop.
pub const QUEUE_DEFAULT: &str = "user=10/s:100,ip=10000/s:20000";
/// Five wrong passwords at once, then one guess every 30 seconds.
pub const LOGIN_DEFAULT: &str = "account=1/30s:5";

#[derive(Debug, Clone, Args)]
pub struct RateLimitArgs {
    /// Rate limits on, or all `off` (the load generator's spawned server
    /// turns them off: it sends thousands of requests a second from one
    /// address).
    #[arg(
        long,
        env = "BOXOFFICE_RATE_LIMITS",
        action = ArgAction::Set,
        default_value_t = true,
        value_parser = BoolishValueParser::new()
    )]
    pub rate_limits: bool,
    /// Limits of POST /v1/auth/register and /v1/auth/login:
    /// `SCOPE=COUNT/[N]UNIT[:BURST],…` with SCOPE `ip` or `user`, UNIT `s`,
    /// `m` or `h`; `off` for none.
    #[arg(long, env = "BOXOFFICE_RATE_LIMIT_AUTH", default_value = AUTH_DEFAULT)]
    pub rate_limit_auth: ScopeLimits,
    /// Limits of POST /v1/holds (same syntax).
    #[arg(long, env = "BOXOFFICE_RATE_LIMIT_HOLDS", default_value = HOLDS_DEFAULT)]
    pub rate_limit_holds: ScopeLimits,
    /// Limits of POST /v1/bookings and POST /v1/bookings/{id}/cancel.
    #[arg(long, env = "BOXOFFICE_RATE_LIMIT_BOOKINGS", default_value = BOOKINGS_DEFAULT)]
    pub rate_limit_bookings: ScopeLimits,
    /// Limits of joining and polling the waiting room (POST
    /// /v1/shows/{id}/queue, GET …/queue/{ticket_id} and its stream).
    #[arg(long, env = "BOXOFFICE_RATE_LIMIT_QUEUE", default_value = QUEUE_DEFAULT)]
    pub rate_limit_queue: ScopeLimits,
    /// Failed logins per account (e-mail): `account=COUNT/[N]UNIT[:BURST]`
    /// or `off`. Once used up, the account's logins get 429 before the
    /// password is checked, even the right one.
    #[arg(long, env = "BOXOFFICE_RATE_LIMIT_LOGIN", default_value = LOGIN_DEFAULT)]
    pub rate_limit_login: LoginLimit,
    /// Behind a proxy: the header with the client's address, e.g.
    /// `X-Forwarded-For` (its rightmost address counts, the one the proxy
    /// appended) or `X-Real-IP`. Unset: the socket peer. Set it only when a
    /// proxy you run always writes it, or clients can pick their address.
    #[arg(long, env = "BOXOFFICE_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<HeaderName>,
}

impl RateLimitArgs {
    pub fn config(&self) -> RateLimitConfig {
        if !self.rate_limits {
            return RateLimitConfig::default();
        }
        RateLimitConfig {
            auth: self.rate_limit_auth.0,
            holds: self.rate_limit_holds.0,
            bookings: self.rate_limit_bookings.0,
            queue: self.rate_limit_queue.0,
            login_failures: self.rate_limit_login.0,
        }
    }
}

/// The `user` and `ip` limits of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeLimits(pub ClassLimits);

impl FromStr for ScopeLimits {
    type Err = String;

    fn from_str(text: &str) -> Result<ScopeLimits, String> {
        let mut limits = ClassLimits::default();
        for (scope, limit) in parse_scopes(text, &["user", "ip"])? {
            match scope {
                "user" => limits.user = limit,
                _ => limits.ip = limit,
            }
        }
        Ok(ScopeLimits(limits))
    }
}

/// The limit of failed logins per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimit(pub Option<GcraParams>);

impl FromStr for LoginLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<LoginLimit, String> {
        let limit = parse_scopes(text, &["account"])?
            .into_iter()
            .next()
            .and_then(|(_, limit)| limit);
        Ok(LoginLimit(limit))
    }
}

/// `off`, or `SCOPE=LIMIT` pairs with each scope at most once.
fn parse_scopes<'a>(
    text: &'a str,
    scopes: &[&'static str],
) -> Result<Vec<(&'a str, Option<GcraParams>)>, String> {
    let text = text.trim();
    let example = format!("e.g. {}=10/s:30 or off", scopes[0]);
    if text.eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    let mut parsed: Vec<(&str, Option<GcraParams>)> = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let Some((scope, limit)) = part.split_once('=') else {
            return Err(format!("{part:?} is not SCOPE=LIMIT ({example})"));
        };
        let scope = scope.trim();
        if !scopes.contains(&scope) {
            return Err(format!(
                "unknown scope {scope:?}: use {} ({example})",
                scopes.join(" or ")
            ));
        }
        if parsed.iter().any(|(seen, _)| *seen == scope) {
            return Err(format!("the scope {scope:?} is given twice"));
        }
        let limit = parse_limit(limit.trim()).map_err(|error| format!("{scope}: {error}"))?;
        parsed.push((scope, limit));
    }
    Ok(parsed)
}

/// `off` or `COUNT/[N]UNIT[:BURST]`.
fn parse_limit(text: &str) -> Result<Option<GcraParams>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let syntax = || format!("{text:?} is not COUNT/[N]UNIT[:BURST], e.g. 10/s:30 or 1/30s:5");
    let (rate, burst) = match text.split_once(':') {
        Some((rate, burst)) => (rate, Some(burst)),
        None => (text, None),
    };
    let (count, period) = rate.split_once('/').ok_or_else(syntax)?;
    let count: u64 = count.trim().parse().map_err(|_| syntax())?;
    let period = period.trim();
    let unit_at = period
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(syntax)?;
    let (periods, unit) = period.split_at(unit_at);
    let periods: u64 = if periods.is_empty() {
        1
    } else {
        periods.parse().map_err(|_| syntax())?
    };
    let unit_microseconds: u64 = match unit {
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    let burst = match burst {
        Some(burst) => burst.trim().parse::<u32>().map_err(|_| syntax())?,
        None => u32::try_from(count).map_err(|_| format!("{text:?}: give a burst"))?,
    };
    if count == 0 || periods == 0 {
        return Err(format!(
            "{text:?}: a limit lets at least one request through (use off for none)"
        ));
    }
    let period_microseconds = periods
        .checked_mul(unit_microseconds)
        .ok_or_else(|| format!("{text:?}: the period is too long"))?;
    GcraParams::per_period(count, period_microseconds, burst)
        .map(Some)
        .map_err(|error| format!("{text:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(interval_microseconds: u64, burst: u32) -> Option<GcraParams> {
        Some(GcraParams::new(interval_microseconds, burst).expect("valid"))
    }

    #[test]
    fn the_syntax() {
        assert_eq!(
            "user=10/s:30,ip=500/m".parse::<ScopeLimits>(),
            Ok(ScopeLimits(ClassLimits {
                user: params(100_000, 30),
                ip: params(120_000, 500),
            }))
        );
        assert_eq!(
            " ip = 2/h ".parse::<ScopeLimits>(),
            Ok(ScopeLimits(ClassLimits {
                user: None,
                ip: params(1_800_000_000, 2),
            }))
        );
        assert_eq!(
            "user=off,ip=1/s".parse::<ScopeLimits>(),
            Ok(ScopeLimits(ClassLimits {
                user: None,
                ip: params(1_000_000, 1),
            }))
        );
        assert_eq!(
            "OFF".parse::<ScopeLimits>(),
            Ok(ScopeLimits(ClassLimits::default()))
        );
        assert_eq!(
            "account=1/30s:5".parse::<LoginLimit>(),
            Ok(LoginLimit(params(30_000_000, 5)))
        );
        assert_eq!("off".parse::<LoginLimit>(), Ok(LoginLimit(None)));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, mentions) in [
            ("", "SCOPE=LIMIT"),
            ("user", "SCOPE=LIMIT"),
            ("users=1/s", "unknown scope"),
            ("account=1/s", "unknown scope"),
            ("user=1/s,user=2/s", "twice"),
            ("user=1/x", "unit"),
            ("user=1/", "COUNT/[N]UNIT"),
            ("user=ten/s", "COUNT/[N]UNIT"),
            ("user=0/s", "at least one"),
            ("user=1/0s", "at least one"),
            ("user=1/s:0", "burst"),
            ("user=1/s:-3", "COUNT/[N]UNIT"),
            ("user=2000000/s", "interval"),
            ("user=1/999999999999h", "too long"),
            ("user=1/h:1000", "a week"),
        ] {
            let error = text
                .parse::<ScopeLimits>()
                .expect_err(&format!("{text:?} must be refused"));
            assert!(error.contains(mentions), "{text:?}: {error}");
        }
        assert!("user=1/s".parse::<LoginLimit>().is_err());
    }

    #[test]
    fn the_defaults_parse() {
        for text in [AUTH_DEFAULT, HOLDS_DEFAULT, BOOKINGS_DEFAULT, QUEUE_DEFAULT] {
            assert!(text.parse::<ScopeLimits>().is_ok(), "{text}");
        }
        assert!(LOGIN_DEFAULT.parse::<LoginLimit>().is_ok());
    }
}
