//! Connecting to SQLite or PostgreSQL, migrations, and the write-transaction
//! runner shared by every use case.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::StoreError;

/// Which database engine is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Connection settings. `pool_size_max` bounds connections per node.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub database_url: String,
    pub pool_size_max: u32,
    pub acquire_timeout: Duration,
}

impl StoreConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        StoreConfig {
            database_url: database_url.into(),
            pool_size_max: POOL_SIZE_DEFAULT,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// PostgreSQL's default `max_connections` is 100; ten per node leaves room
/// for several nodes and for tools.
pub const POOL_SIZE_DEFAULT: u32 = 10;

/// How long SQLite waits on a lock held by another process (the CLI, a
/// backup) before giving up.
const SQLITE_BUSY_TIMEOUT_MILLISECONDS: u64 = 5_000;

/// A deadlock or serialization failure is retried this many times before the
/// request fails with 503.
const TRANSACTION_RETRIES_MAX: u32 = 5;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQL store. One implementation of SQL shared by both backends through
/// sqlx's Any driver; what differs (pragmas, write serialization, migrations)
/// is decided here. See docs/adr/0002-one-sql-dialect-two-backends.md.
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer per file; serializing writers in-process avoids
    /// SQLITE_BUSY on lock upgrades. PostgreSQL uses row locks instead.
    write_lock: Option<Mutex<()>>,
    /// Told about every committed inventory change of this node (and, on
    /// PostgreSQL, of the other nodes).
    listeners: crate::feed::Listeners,
    /// Random, per process: tells this node's notifications from others'.
    node_id: String,
    /// PostgreSQL only: the URL the change feed listens on.
    feed_url: Option<String>,
    /// The change feed's task, started with the first listener.
    feed_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Turns `sqlite://…`, `sqlite:///abs`, a bare path or `postgres://…` into a
/// backend and a URL sqlx understands.
pub fn parse_database_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(StoreError::Other(format!(
            "unsupported DATABASE_URL scheme in {url:?}: use sqlite://PATH or postgres://…"
        )));
    } else {
        url
    };
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    if path.is_empty() {
        return Err(StoreError::Other(
            "DATABASE_URL has an empty SQLite path".into(),
        ));
    }
    let mut sqlx_url = format!("sqlite://{path}");
    match query {
        Some(query) if query.contains("mode=") => sqlx_url.push_str(&format!("?{query}")),
        Some(query) => sqlx_url.push_str(&format!("?{query}&mode=rwc")),
        None => sqlx_url.push_str("?mode=rwc"),
    }
    Ok((Backend::Sqlite, sqlx_url))
}

impl SqlStore {
    /// Connects and runs the migrations.
    pub async fn connect(config: &StoreConfig) -> Result<SqlStore, StoreError> {
        let store = Self::connect_without_migrating(config).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn connect_without_migrating(config: &StoreConfig) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = parse_database_url(&config.database_url)?;
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|error| StoreError::Other(format!("bad DATABASE_URL: {error}")))?;
        let pool_options = AnyPoolOptions::new()
            .acquire_timeout(config.acquire_timeout)
            .max_connections(match backend {
                Backend::Postgres => config.pool_size_max.max(1),
                // Readers run in parallel under WAL; the writer is serialized below.
                Backend::Sqlite => config.pool_size_max.clamp(2, 8),
            });
        let pool_options = match backend {
            Backend::Sqlite => pool_options.after_connect(|connection, _meta| {
                Box::pin(async move {
                    connection
                        .execute(
                            format!(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MILLISECONDS};"
                            )
                            .as_str(),
                        )
                        .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        let pool = pool_options.connect_with(options).await.map_err(|error| {
            StoreError::Unavailable(format!("cannot connect to the database: {error}"))
        })?;
        Ok(SqlStore {
            pool,
            backend,
            write_lock: (backend == Backend::Sqlite).then(|| Mutex::new(())),
            listeners: Default::default(),
            node_id: format!("{:032x}", rand::random::<u128>()),
            feed_url: (backend == Backend::Postgres).then_some(url),
            feed_task: std::sync::Mutex::new(None),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|error| StoreError::Other(format!("migration failed: {error}")))
    }

    pub(crate) async fn write_guard(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    pub(crate) fn retries_max(&self) -> u32 {
        TRANSACTION_RETRIES_MAX
    }

    /// On PostgreSQL, the node whose changes this store sends to the others.
    pub(crate) fn feed_node(&self) -> Option<&str> {
        self.feed_url.as_ref().map(|_| self.node_id.as_str())
    }

    pub(crate) fn add_listener(&self, listener: std::sync::Arc<dyn crate::ChangeListener>) {
        if let Ok(mut listeners) = self.listeners.write() {
            listeners.push(listener);
        }
        self.start_feed();
    }

    /// Starts listening to the other nodes' changes (PostgreSQL, once, and
    /// only inside a Tokio runtime: a store without listeners, like the
    /// CLI's one-shot commands, needs no feed).
    fn start_feed(&self) {
        let Some(url) = &self.feed_url else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no Tokio runtime: changes of other nodes arrive by polling only");
            return;
        };
        let mut task = match self.feed_task.lock() {
            Ok(task) => task,
            Err(poisoned) => poisoned.into_inner(),
        };
        if task.is_none() {
            *task = Some(runtime.spawn(crate::feed::run(
                url.clone(),
                self.node_id.clone(),
                std::sync::Arc::downgrade(&self.listeners),
            )));
        }
    }

    fn stop_feed(&self) {
        let task = match self.feed_task.lock() {
            Ok(mut task) => task.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(task) = task {
            task.abort();
        }
    }

    /// Hands a committed transaction's changes to the listeners and returns
    /// its value.
    pub(crate) fn published<T, R>(
        &self,
        result: Result<Result<(T, Vec<crate::ShowChange>), R>, StoreError>,
    ) -> Result<Result<T, R>, StoreError> {
        match result {
            Ok(Ok((value, changes))) => {
                if let Ok(listeners) = self.listeners.read() {
                    for change in &changes {
                        for listener in listeners.iter() {
                            listener.on_change(change);
                        }
                    }
                }
                Ok(Ok(value))
            }
            Ok(Err(rejection)) => Ok(Err(rejection)),
            Err(error) => Err(error),
        }
    }

    pub async fn close(&self) {
        self.stop_feed();
        self.pool.close().await;
    }
}

impl Drop for SqlStore {
    fn drop(&mut self) {
        self.stop_feed();
    }
}

/// Runs `$body` (an async block using `$conn: &mut AnyConnection`) in a write
/// transaction: commit on `Ok`, roll back on `Err`, run again on a deadlock or
/// serialization failure. Evaluates to `Result<Result<T, R>, StoreError>`.
#[macro_export]
#[doc(hidden)]
macro_rules! write_tx {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let mut attempt: u32 = 0;
        loop {
            let guard = $store.write_guard().await;
            let mut transaction = match $store.pool.begin().await {
                Ok(transaction) => transaction,
                Err(error) => break Err($crate::error::StoreError::from(error)),
            };
            let result = {
                let $conn: &mut sqlx::AnyConnection = &mut *transaction;
                $body.await
            };
            let outcome = match result {
                Ok(value) => match transaction.commit().await {
                    Ok(()) => Ok(Ok(value)),
                    Err(error) => Err($crate::error::StoreError::from(error)),
                },
                Err($crate::error::TxError::Rejected(rejection)) => {
                    let _ = transaction.rollback().await;
                    Ok(Err(rejection))
                }
                Err($crate::error::TxError::Store(error)) => {
                    let _ = transaction.rollback().await;
                    Err(error)
                }
            };
            drop(guard);
            match outcome {
                Err(error) if error.is_retryable() && attempt < $store.retries_max() => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt) * 3))
                        .await;
                    continue;
                }
                other => break other,
            }
        }
    }};
}

/// Numbers the parameters of a statement built at run time, in order of
/// appearance: `$1, $2, …` on PostgreSQL, plain `?` on SQLite. SQLite keeps
/// named parameters (`$n`, and `?n` too) in a list it searches linearly when
/// parsing and when sqlx binds each one, so a statement with a few hundred
/// `$n` parameters cost O(n²): most of a busy server's CPU in the group
/// commit. Anonymous `?` parameters are not in that list. The price: every
/// occurrence is its own parameter, bound in order of appearance.
pub(crate) struct Placeholders {
    backend: Backend,
    next: usize,
}

impl Placeholders {
    pub(crate) fn starting_at(backend: Backend, first: usize) -> Placeholders {
        Placeholders {
            backend,
            next: first,
        }
    }

    pub(crate) fn next_placeholder(&mut self) -> String {
        let number = self.next;
        self.next += 1;
        match self.backend {
            Backend::Postgres => format!("${number}"),
            Backend::Sqlite => "?".to_owned(),
        }
    }
}

pub(crate) fn to_millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub(crate) fn from_millis(milliseconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(milliseconds).unwrap_or_default()
}

pub(crate) fn opt_from_millis(milliseconds: Option<i64>) -> Option<DateTime<Utc>> {
    milliseconds.map(from_millis)
}

/// Collapses `Result<Result<T, R>, StoreError>` for transactions that never reject.
pub(crate) fn flatten<T>(
    result: Result<Result<T, std::convert::Infallible>, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(never)) => match never {},
        Err(error) => Err(error),
    }
}
