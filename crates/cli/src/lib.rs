//! The `boxoffice` command: configuration, start-up and the operator tasks.
//!
//! # Layout
//! - [`config`]: the command line; every option is also an environment variable.
//! - [`serve`]: `boxoffice serve`, the start-up sequence and graceful shutdown.
//! - [`rate_limits`]: the rate-limit options and their syntax.
//! - [`demo`]: the demo venues, events and shows of `serve --demo` and `demo`.
//! - [`admin`]: `boxoffice migrate` and `boxoffice admin create-user`.
//! - [`loadtest`]: `boxoffice loadtest`, the options of `boxoffice-loadgen`.
//!
//! This is the only crate that uses `anyhow`: errors of the layers below are
//! typed, and here at the edge they only need a readable message.

pub mod admin;
pub mod config;
pub mod demo;
pub mod loadtest;
pub mod notifications;
pub mod rate_limits;
pub mod serve;

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use boxoffice_domain::{Role, UserId};
use boxoffice_services::{
    AuthUser, RateLimitConfig, RateLimiter, RedisRateLimiter, RedisSeatLocks, SeatLocks,
    ServiceError, Services,
};
use boxoffice_store::{SqlStore, Store};

pub use config::{Cli, Command};

/// Runs one command of the command line to its end.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging(&cli.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::serve(args).await,
            Command::Migrate(args) => admin::migrate(&args).await,
            Command::Demo(args) => demo::run(&args).await,
            Command::Admin {
                command: config::AdminCommand::CreateUser(args),
            } => admin::create_user(&args).await,
            Command::Loadtest(args) => loadtest::run(args).await,
        }
    })
}

/// Logs go to stderr; stdout carries only what scripts and tests read (the
/// `boxoffice listening on …` line, command results).
fn init_logging(log: &config::LogArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter).with_context(|| {
        format!(
            "RUST_LOG / --log {:?} is not a valid log filter",
            log.filter
        )
    })?;
    // Colours only for a person at a terminal, never into files or pipes.
    let colours = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours);
    let result = match log.log_format {
        config::LogFormat::Text => builder.try_init(),
        config::LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}

/// Connects to the database of `DATABASE_URL` and brings its schema up to date.
pub async fn connect_store(database: &config::DatabaseArgs) -> anyhow::Result<Arc<SqlStore>> {
    let shown_url = config::redact_url(&database.database_url);
    tracing::info!(database_url = %shown_url, "connecting to the database and running migrations");
    let store = SqlStore::connect(&database.store_config())
        .await
        .with_context(|| format!("cannot open the database {shown_url}"))?;
    tracing::info!(backend = ?store.backend(), "database ready");
    Ok(Arc::new(store))
}

/// Builds the use cases on top of a store (loads or creates the server
/// secrets); with a Redis URL, holds soft-lock their seats there and the
/// rate limits keep their state there.
pub async fn build_services(
    store: Arc<SqlStore>,
    args: &config::ServicesArgs,
    redis_url: Option<&config::UrlWithCredentials>,
    rate_limits: RateLimitConfig,
) -> anyhow::Result<Arc<Services>> {
    let store: Arc<dyn Store> = store;
    let mut services_config = args.services_config();
    services_config.rate_limits = rate_limits;
    if let Some(url) = redis_url {
        let (seat_locks, rate_limiter) = connect_redis(url).await?;
        services_config.seat_locks = Some(seat_locks);
        services_config.rate_limiter = Some(rate_limiter);
        services_config.queue_store = Some(connect_queue_store(url)?);
    }
    Services::build(store, services_config, boxoffice_http::render_error)
        .await
        .context("cannot start the services")
}

/// A Redis that is down at start is no reason not to start: locks are only a
/// filter, rate limits fall back to this node's own, and both use Redis
/// again once it answers.
async fn connect_redis(
    url: &config::UrlWithCredentials,
) -> anyhow::Result<(Arc<dyn SeatLocks>, Arc<dyn RateLimiter>)> {
    let shown_url = url.redacted();
    let unusable = || format!("REDIS_URL {shown_url} is not a usable Redis URL");
    let locks = RedisSeatLocks::new(url.expose(), &shown_url).with_context(unusable)?;
    let limiter = RedisRateLimiter::new(url.expose(), &shown_url).with_context(unusable)?;
    match locks.ping().await {
        Ok(()) => tracing::info!(
            redis_url = %shown_url,
            "redis ready: seat soft-locks, rate limits and the waiting rooms shared by the nodes (caches stay in-process)"
        ),
        Err(error) => tracing::warn!(
            redis_url = %shown_url,
            %error,
            "redis unreachable at start; holds go to the database alone and rate limits \
             are per node until it answers"
        ),
    }
    Ok((Arc::new(locks), Arc::new(limiter)))
}

/// With Redis the waiting room lives there (shared by every node, and fast
/// enough for a crowd); while Redis is down, joins and polls answer 503.
fn connect_queue_store(
    url: &config::UrlWithCredentials,
) -> anyhow::Result<boxoffice_services::SharedQueueStore> {
    let shown_url = url.redacted();
    let queue = boxoffice_services::waiting_room::RedisQueueStore::new(url.expose(), &shown_url)
        .with_context(|| format!("REDIS_URL {shown_url} is not a usable Redis URL"))?;
    Ok(boxoffice_services::SharedQueueStore(Arc::new(queue)))
}

/// Creates the admin account of `BOXOFFICE_ADMIN_EMAIL` unless it exists, and
/// returns it as an acting user. An existing account keeps its password.
pub async fn ensure_admin(
    services: &Services,
    email: &str,
    password: &str,
) -> anyhow::Result<AuthUser> {
    let created = services
        .auth
        .create_user_with_role(email, password, "Administrator", Role::Admin)
        .await
        .map_err(|error| explain(&format!("cannot create the admin account {email}"), &error))?;
    let user = services
        .store
        .user_by_email(&email.trim().to_lowercase())
        .await
        .context("cannot read the admin account")?
        .with_context(|| format!("the admin account {email} vanished right after its creation"))?;
    if created {
        tracing::info!(email, "created the admin account");
    } else if user.role != Role::Admin {
        tracing::warn!(
            email,
            role = user.role.as_str(),
            "the admin e-mail belongs to an account without the admin role"
        );
        anyhow::bail!(
            "{email} exists with the role {}, not admin: make it admin with \
             `PATCH /v1/users/{{id}}` or use another BOXOFFICE_ADMIN_EMAIL",
            user.role.as_str()
        );
    }
    Ok(acting_admin(user.id))
}

/// A service error as an operator-readable message: `InvalidRequest` lists
/// its fields, which its `Display` leaves out.
pub(crate) fn explain(what: &str, error: &ServiceError) -> anyhow::Error {
    match error {
        ServiceError::InvalidRequest { errors } => {
            let fields: Vec<String> = errors
                .iter()
                .map(|error| format!("{}: {}", error.field, error.message))
                .collect();
            anyhow::anyhow!("{what}: {}", fields.join("; "))
        }
        other => anyhow::anyhow!("{what}: {other}"),
    }
}

fn acting_admin(id: UserId) -> AuthUser {
    AuthUser {
        id,
        role: Role::Admin,
    }
}
