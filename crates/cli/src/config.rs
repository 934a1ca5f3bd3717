//! The command line and its configuration: every option is a flag and an
//! environment variable, with defaults that need nothing (an SQLite file in
//! the working directory, a server on `127.0.0.1:8080`).
//!
//! Secrets (the JWT secret, the ticket signing key, passwords, credentials
//! inside database or Redis URLs) never print: their `Debug` output is
//! redacted and `--help` does not show their environment values.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use boxoffice_domain::Role;
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Connections per node; PostgreSQL allows 100 by default, so a node keeps
/// well below that (see `boxoffice_store::POOL_SIZE_DEFAULT`).
pub const DATABASE_POOL_SIZE_MAX: u32 = 1_000;
/// How long a request waits for a free database connection before it fails
/// with 503 instead of hanging.
pub const DATABASE_ACQUIRE_TIMEOUT_SECONDS: u64 = 10;
/// An `Idempotency-Key` claim older than this (or than two guarded gateway
/// calls, whichever is longer) belongs to a request that died with its
/// server, and a retry may take it over. A live confirmation spends at most
/// one call budget charging and one looking the charge up (each at most
/// `CALL_BUDGET_IN_ATTEMPT_TIMEOUTS` payment timeouts, retries included); even if a slow live request
/// were taken over, the hold's `ACTIVE → PAYING` step and the gateway key
/// derived from the hold still allow only one charge.
pub const IDEMPOTENCY_STALE_AFTER_SECONDS_MIN: u64 = 10;
/// Upper bound of every interval and latency knob: an hour. Anything longer
/// is a typo (milliseconds given as seconds), not a configuration.
pub const INTERVAL_MILLISECONDS_MAX: u64 = 3_600_000;
pub const INTERVAL_SECONDS_MAX: u64 = 3_600;

/// boxoffice: a ticket-booking service (venues, shows, seat holds, payments,
/// signed e-tickets).
#[derive(Debug, Parser)]
#[command(name = "boxoffice", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start and then taken apart: boxing the big variants would
// buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
    /// Load the demo venues, events and shows into the database (once), then exit.
    Demo(DemoArgs),
    /// Administration tasks on the database.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Load-test a server over its public API (flash sale, browse, buy,
    /// baseline) and check the sale's invariants from the outside.
    Loadtest(crate::loadtest::LoadtestArgs),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user with a role: an organizer (admin), door staff, a customer.
    CreateUser(CreateUserArgs),
}

/// Logging, shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter in `tracing` syntax, e.g. `info` or `boxoffice_store=debug,info`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info", global = true)]
    pub filter: String,
    /// Log lines as human-readable text or as JSON objects (one per line).
    #[arg(long, env = "BOXOFFICE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the data lives.
#[derive(Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://boxoffice.db` (a file in the working directory),
    /// `sqlite:///abs/path.db`, or `postgres://user:password@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://boxoffice.db",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Maximum database connections of this process (SQLite uses at most 8).
    #[arg(
        long,
        env = "BOXOFFICE_DATABASE_POOL_SIZE",
        default_value_t = boxoffice_store::POOL_SIZE_DEFAULT,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(DATABASE_POOL_SIZE_MAX))
    )]
    pub database_pool_size: u32,
}

impl DatabaseArgs {
    pub fn store_config(&self) -> boxoffice_store::StoreConfig {
        boxoffice_store::StoreConfig {
            database_url: self.database_url.clone(),
            pool_size_max: self.database_pool_size,
            acquire_timeout: Duration::from_secs(DATABASE_ACQUIRE_TIMEOUT_SECONDS),
        }
    }
}

impl fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &redact_url(&self.database_url))
            .field("database_pool_size", &self.database_pool_size)
            .finish()
    }
}

/// What every command that runs the use cases needs: the database, the
/// server secrets and the payment gateway's behaviour.
#[derive(Debug, Clone, Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// HS256 secret for access tokens (at least 16 characters). When unset, one
    /// is generated on first start and kept in the database.
    #[arg(long, env = "BOXOFFICE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// Ed25519 seed for ticket codes, 64 hex characters (32 bytes). When unset,
    /// one is generated on first start and kept in the database.
    #[arg(long, env = "BOXOFFICE_TICKET_SIGNING_KEY", hide_env_values = true)]
    pub ticket_signing_key: Option<Secret>,
    /// Delay of every sandbox payment gateway call, to imitate a real provider.
    #[arg(
        long,
        env = "BOXOFFICE_SANDBOX_LATENCY_MS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=INTERVAL_MILLISECONDS_MAX)
    )]
    pub sandbox_latency_ms: u64,
    /// One attempt at a gateway call slower than this counts as a failure;
    /// a call with its retries takes at most two of these, then it is an
    /// outage (503, the hold stays ACTIVE).
    #[arg(
        long,
        env = "BOXOFFICE_PAYMENT_TIMEOUT_MS",
        default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(1..=INTERVAL_MILLISECONDS_MAX)
    )]
    pub payment_timeout_ms: u64,
    #[command(flatten)]
    pub payment: PaymentArgs,
    /// How holds are executed: `batched` (per-show group commit) or `naive`
    /// (one transaction per request, kept to compare the two).
    #[arg(long, env = "BOXOFFICE_HOLD_STRATEGY", default_value = "batched", value_parser = ["batched", "naive"])]
    pub hold_strategy: String,
    /// How long the first hold of a batch waits for others (microseconds).
    #[arg(
        long,
        env = "BOXOFFICE_BATCH_WINDOW_MICROSECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(0..=BATCH_WINDOW_MICROSECONDS_MAX)
    )]
    pub batch_window_microseconds: u64,
    /// Holds decided in one batch transaction at most.
    #[arg(
        long,
        env = "BOXOFFICE_BATCH_SIZE_MAX",
        default_value_t = 256,
        value_parser = clap::value_parser!(u64).range(1..=BATCH_SIZE_MAX)
    )]
    pub batch_size_max: u64,
    /// How long a waiting-room admission (and its token) lasts, in seconds.
    #[arg(
        long,
        env = "BOXOFFICE_ADMISSION_TTL_SECONDS",
        default_value_t = 900,
        value_parser = clap::value_parser!(u64).range(1..=ADMISSION_TTL_SECONDS_MAX)
    )]
    pub admission_ttl_seconds: u64,
}

/// Which payment gateway, and the circuit breaker in front of it.
#[derive(Debug, Clone, Args)]
pub struct PaymentArgs {
    /// Stripe secret key (`sk_test_…`, `sk_live_…`). When set, payments go
    /// to Stripe; when unset, to the built-in sandbox gateway.
    #[arg(long, env = "BOXOFFICE_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<Secret>,
    /// Where Stripe's API is. This build speaks plain HTTP only (ADR 0017):
    /// point it at a TLS-terminating egress proxy, or a fake Stripe in tests.
    #[arg(long, env = "BOXOFFICE_STRIPE_API_BASE", default_value = boxoffice_services::payments::stripe::API_BASE_DEFAULT)]
    pub stripe_api_base: String,
    /// Stripe webhook signing secret (`whsec_…`): enables
    /// `POST /v1/payments/webhooks/stripe`, whose events are checked with it.
    #[arg(long, env = "BOXOFFICE_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<Secret>,
    /// Failed gateway attempts in a row that open the circuit breaker (then
    /// confirmations answer 503 at once, without calling the gateway).
    #[arg(
        long,
        env = "BOXOFFICE_PAYMENT_BREAKER_FAILURES",
        default_value_t = boxoffice_services::payments::guard::BREAKER_FAILURES_TO_OPEN_DEFAULT,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(PAYMENT_BREAKER_FAILURES_MAX))
    )]
    pub payment_breaker_failures: u32,
    /// How long an open breaker waits before one call may probe the gateway.
    #[arg(
        long,
        env = "BOXOFFICE_PAYMENT_BREAKER_COOL_DOWN_MS",
        default_value_t = boxoffice_services::payments::guard::BREAKER_COOL_DOWN_MILLISECONDS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=INTERVAL_MILLISECONDS_MAX)
    )]
    pub payment_breaker_cool_down_ms: u64,
}

/// A breaker that needs more failures than this in a row never opens in time.
const PAYMENT_BREAKER_FAILURES_MAX: u32 = 1_000;

impl PaymentArgs {
    fn stripe_config(&self) -> Option<boxoffice_services::StripeConfig> {
        self.stripe_secret_key
            .as_ref()
            .map(|secret_key| boxoffice_services::StripeConfig {
                api_base: self.stripe_api_base.clone(),
                secret_key: secret_key.expose().to_string(),
            })
    }

    fn breaker_config(&self) -> boxoffice_services::PaymentBreakerConfig {
        boxoffice_services::PaymentBreakerConfig {
            failures_to_open: self.payment_breaker_failures,
            cool_down: Duration::from_millis(self.payment_breaker_cool_down_ms),
        }
    }
}

/// A day: an admission is meant for one purchase.
const ADMISSION_TTL_SECONDS_MAX: u64 = 86_400;
/// A batch window above 100 ms would only add latency.
const BATCH_WINDOW_MICROSECONDS_MAX: u64 = 100_000;
/// Larger batches hold their row locks longer than they save in commits.
const BATCH_SIZE_MAX: u64 = 4_096;

impl ServicesArgs {
    pub fn services_config(&self) -> boxoffice_services::ServicesConfig {
        let payment_timeout = Duration::from_millis(self.payment_timeout_ms);
        let payment_call_budget =
            boxoffice_services::GuardPolicy::new(payment_timeout).call_budget();
        boxoffice_services::ServicesConfig {
            booking: boxoffice_services::BookingConfig {
                payment_timeout,
                idempotency_stale_after: payment_call_budget
                    .saturating_mul(2)
                    .max(Duration::from_secs(IDEMPOTENCY_STALE_AFTER_SECONDS_MIN)),
                hold_strategy: boxoffice_services::HoldStrategy::parse(&self.hold_strategy)
                    .unwrap_or(boxoffice_services::HoldStrategy::Batched),
                batch_limits: boxoffice_services::BatchLimits {
                    window: Duration::from_micros(self.batch_window_microseconds),
                    size_max: usize::try_from(self.batch_size_max).unwrap_or(256),
                },
            },
            sandbox_latency: Duration::from_millis(self.sandbox_latency_ms),
            stripe: self.payment.stripe_config(),
            stripe_webhook_secret: self
                .payment
                .stripe_webhook_secret
                .as_ref()
                .map(|secret| secret.expose().to_string()),
            payment_breaker: self.payment.breaker_config(),
            jwt_secret: self
                .jwt_secret
                .as_ref()
                .map(|secret| secret.expose().to_string()),
            ticket_signing_seed: self
                .ticket_signing_key
                .as_ref()
                .map(|secret| secret.expose().to_string()),
            // Connected by `build_services`, which is async.
            seat_locks: None,
            waiting_room: boxoffice_services::waiting_room::WaitingRoomConfig {
                admission_ttl: Duration::from_secs(self.admission_ttl_seconds),
            },
            queue_store: None,
            // Set by `build_services` from the serve options.
            rate_limits: boxoffice_services::RateLimitConfig::default(),
            rate_limiter: None,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub services: ServicesArgs,
    /// Address to listen on; port 0 picks a free port (the chosen URL is printed).
    #[arg(long, env = "BOXOFFICE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Also serve `/metrics` (only) on this address, for operators who keep
    /// it off the public listener.
    #[arg(long, env = "BOXOFFICE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Load demo venues, events and shows on first start (see `boxoffice demo`).
    #[arg(long, env = "BOXOFFICE_DEMO", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub demo: bool,
    /// Redis, for seat soft-locks and rate limits across nodes (the service
    /// keeps working when Redis is down: locks are only a filter, and rate
    /// limits fall back to each node's own).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<UrlWithCredentials>,
    /// NATS JetStream, for publishing domain events (bookings confirmed and
    /// cancelled, refunds); without it they stay in the outbox only. A server
    /// that is down or a bad URL does not stop bookings: events wait and are
    /// retried.
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<UrlWithCredentials>,
    #[command(flatten)]
    pub admin: AdminAccountArgs,
    #[command(flatten)]
    pub rate_limits: crate::rate_limits::RateLimitArgs,
    #[command(flatten)]
    pub notifications: crate::notifications::NotificationArgs,
    /// Expire this node's holds by a timer at their `expires_at` (a delay
    /// queue). `false` leaves expiry to the sweep below; availability never
    /// waits for either (an expired hold never blocks).
    #[arg(
        long,
        env = "BOXOFFICE_EXPIRY_TIMER",
        action = ArgAction::Set,
        default_value_t = true,
        value_parser = BoolishValueParser::new()
    )]
    pub expiry_timer: bool,
    /// How often the safety-net sweep expires due holds that no timer knows
    /// (holds of a node that died). The timer does the punctual work.
    #[arg(
        long,
        env = "BOXOFFICE_EXPIRY_INTERVAL_MS",
        default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(1..=INTERVAL_MILLISECONDS_MAX)
    )]
    pub expiry_interval_ms: u64,
    /// How often holds stuck in PAYING (a crash mid-payment) are reconciled
    /// with the gateway. Reconciliation also runs once at start.
    #[arg(
        long,
        env = "BOXOFFICE_RECONCILE_INTERVAL_SECONDS",
        default_value_t = 2,
        value_parser = clap::value_parser!(u64).range(1..=INTERVAL_SECONDS_MAX)
    )]
    pub reconcile_interval_seconds: u64,
    /// A request that takes longer than this is answered 503.
    #[arg(
        long,
        env = "BOXOFFICE_REQUEST_TIMEOUT_SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=INTERVAL_SECONDS_MAX)
    )]
    pub request_timeout_seconds: u64,
}

/// The first administrator, created at start when missing.
#[derive(Debug, Clone, Args)]
pub struct AdminAccountArgs {
    /// E-mail of an admin account to create at start if it does not exist.
    #[arg(long, env = "BOXOFFICE_ADMIN_EMAIL", requires = "admin_password")]
    pub admin_email: Option<String>,
    /// Password of that admin (8 to 128 characters).
    #[arg(
        long,
        env = "BOXOFFICE_ADMIN_PASSWORD",
        hide_env_values = true,
        requires = "admin_email"
    )]
    pub admin_password: Option<Secret>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub services: ServicesArgs,
    #[command(flatten)]
    pub admin: AdminAccountArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    pub services: ServicesArgs,
    #[arg(long, env = "BOXOFFICE_USER_EMAIL")]
    pub email: String,
    /// 8 to 128 characters.
    #[arg(long, env = "BOXOFFICE_USER_PASSWORD", hide_env_values = true)]
    pub password: Secret,
    #[arg(long, env = "BOXOFFICE_USER_ROLE", value_enum)]
    pub role: RoleArg,
    /// Display name; defaults to the part of the e-mail before the `@`.
    #[arg(long, env = "BOXOFFICE_USER_NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Customer,
    Staff,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Customer => Role::Customer,
            RoleArg::Staff => Role::Staff,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// A value that must never appear in logs or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

/// A URL that may carry a password (`redis://:password@host`). Its `Debug`
/// output is [`redact_url`]ed.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlWithCredentials(String);

impl UrlWithCredentials {
    /// The URL as given, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced, safe to log.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl From<String> for UrlWithCredentials {
    fn from(value: String) -> UrlWithCredentials {
        UrlWithCredentials(value)
    }
}

impl fmt::Debug for UrlWithCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

/// A URL with its password (if any) replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:[redacted]@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://bob:hunter2@db.internal:5432/boxoffice?sslmode=require"),
            "postgres://bob:[redacted]@db.internal:5432/boxoffice?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:pa%40ss@cache:6379/0"),
            "redis://:[redacted]@cache:6379/0"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/db"),
            "postgres://postgres@127.0.0.1/db"
        );
        assert_eq!(redact_url("sqlite://boxoffice.db"), "sqlite://boxoffice.db");
        assert_eq!(redact_url("sqlite:///tmp/x@y.db"), "sqlite:///tmp/x@y.db");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let cli = Cli::try_parse_from([
            "boxoffice",
            "serve",
            "--database-url",
            "postgres://bob:hunter2@localhost/db",
            "--jwt-secret",
            "jwt-secret-value-1234",
            "--ticket-signing-key",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "--admin-email",
            "root@example.com",
            "--admin-password",
            "admin-password-value",
            "--redis-url",
            "redis://:redispass@localhost",
            "--stripe-secret-key",
            "sk_test_stripesecret",
            "--stripe-webhook-secret",
            "whsec_webhooksecret",
        ])
        .expect("parse");
        let debug = format!("{cli:?}");
        for secret in [
            "hunter2",
            "jwt-secret-value",
            "00112233",
            "admin-password-value",
            "redispass",
            "stripesecret",
            "webhooksecret",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("root@example.com"));
    }

    /// Asserts a default unless the environment running the tests overrides it.
    fn assert_default<T: PartialEq + fmt::Debug>(variable: &str, actual: T, expected: T) {
        if std::env::var_os(variable).is_none() {
            assert_eq!(actual, expected, "default of {variable}");
        }
    }

    #[test]
    fn defaults_need_nothing() {
        let cli = Cli::try_parse_from(["boxoffice", "serve"]).expect("parse");
        let Command::Serve(serve) = cli.command else {
            panic!("not serve")
        };
        assert_default(
            "BOXOFFICE_LISTEN",
            serve.listen.to_string().as_str(),
            "127.0.0.1:8080",
        );
        assert_default("BOXOFFICE_DEMO", serve.demo, false);
        assert_default(
            "DATABASE_URL",
            serve.services.database.database_url.as_str(),
            "sqlite://boxoffice.db",
        );
        assert_default(
            "BOXOFFICE_DATABASE_POOL_SIZE",
            serve.services.database.database_pool_size,
            10,
        );
        assert_default(
            "BOXOFFICE_PAYMENT_TIMEOUT_MS",
            serve.services.payment_timeout_ms,
            5_000,
        );
        assert_default(
            "BOXOFFICE_STRIPE_SECRET_KEY",
            serve.services.payment.stripe_secret_key.is_none(),
            true,
        );
        assert_default(
            "BOXOFFICE_STRIPE_API_BASE",
            serve.services.payment.stripe_api_base.as_str(),
            "https://api.stripe.com",
        );
        assert_default(
            "BOXOFFICE_PAYMENT_BREAKER_FAILURES",
            serve.services.payment.payment_breaker_failures,
            5,
        );
        assert_default(
            "BOXOFFICE_PAYMENT_BREAKER_COOL_DOWN_MS",
            serve.services.payment.payment_breaker_cool_down_ms,
            10_000,
        );
        assert_default(
            "BOXOFFICE_SANDBOX_LATENCY_MS",
            serve.services.sandbox_latency_ms,
            0,
        );
        assert_default(
            "BOXOFFICE_EXPIRY_INTERVAL_MS",
            serve.expiry_interval_ms,
            5_000,
        );
        assert_default(
            "BOXOFFICE_RECONCILE_INTERVAL_SECONDS",
            serve.reconcile_interval_seconds,
            2,
        );
        assert_default(
            "BOXOFFICE_REQUEST_TIMEOUT_SECONDS",
            serve.request_timeout_seconds,
            30,
        );
        assert_default("BOXOFFICE_RATE_LIMITS", serve.rate_limits.rate_limits, true);
        assert_default(
            "BOXOFFICE_OUTBOX_DISPATCH",
            serve.notifications.outbox_dispatch,
            true,
        );
        assert_default(
            "BOXOFFICE_RATE_LIMIT_HOLDS",
            serve.rate_limits.rate_limit_holds,
            crate::rate_limits::HOLDS_DEFAULT.parse().expect("default"),
        );
        assert_default(
            "BOXOFFICE_RATE_LIMIT_LOGIN",
            serve.rate_limits.rate_limit_login,
            crate::rate_limits::LOGIN_DEFAULT.parse().expect("default"),
        );
        assert_default("RUST_LOG", cli.log.filter.as_str(), "info");
        assert_default("BOXOFFICE_LOG_FORMAT", cli.log.log_format, LogFormat::Text);
    }

    #[test]
    fn limits_are_enforced() {
        assert!(Cli::try_parse_from(["boxoffice", "serve", "--database-pool-size", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["boxoffice", "serve", "--database-pool-size", "1000"]).is_ok()
        );
        assert!(
            Cli::try_parse_from(["boxoffice", "serve", "--database-pool-size", "1001"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["boxoffice", "serve", "--request-timeout-seconds", "0"]).is_err()
        );
        assert!(Cli::try_parse_from(["boxoffice", "serve", "--listen", "127.0.0.1:0"]).is_ok());
        assert!(
            Cli::try_parse_from(["boxoffice", "serve", "--rate-limit-holds", "user=1/s:0"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["boxoffice", "serve", "--rate-limits", "off"]).is_ok());
        assert!(
            Cli::try_parse_from(["boxoffice", "serve", "--client-ip-header", "bad header"])
                .is_err()
        );
        // An admin e-mail without its password (or the reverse) is a mistake.
        assert!(Cli::try_parse_from(["boxoffice", "serve", "--admin-email", "a@b.c"]).is_err());
    }

    #[test]
    fn create_user_parses_roles() {
        let cli = Cli::try_parse_from([
            "boxoffice",
            "admin",
            "create-user",
            "--email",
            "door@example.com",
            "--password",
            "door-password",
            "--role",
            "staff",
        ])
        .expect("parse");
        let Command::Admin {
            command: AdminCommand::CreateUser(args),
        } = cli.command
        else {
            panic!("not admin create-user")
        };
        assert_eq!(Role::from(args.role), Role::Staff);
        assert!(Cli::try_parse_from([
            "boxoffice",
            "admin",
            "create-user",
            "--email",
            "x@example.com",
            "--password",
            "password1",
            "--role",
            "root",
        ])
        .is_err());
    }
}
