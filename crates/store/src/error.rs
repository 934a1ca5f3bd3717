//! The store's small error type. Business rejections (a seat already taken,
//! a ticket limit) are not errors of the store: they come back as the inner
//! `Err` of `Result<Result<T, Rejection>, StoreError>`.

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row that the operation needs does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness or check constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or is overloaded; worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or corrupted data. Logged, never shown to clients.
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// Deadlocks and serialization failures: the transaction can simply run again.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(message) if message.starts_with("retryable"))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(database_error) => {
                let code = database_error
                    .code()
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                // 40001 serialization failure, 40P01 deadlock (PostgreSQL);
                // 5 / 517 / 261 SQLITE_BUSY variants.
                if matches!(code.as_str(), "40001" | "40P01" | "5" | "517" | "261") {
                    return StoreError::Unavailable(format!("retryable: {database_error}"));
                }
                if database_error.is_unique_violation()
                    || database_error.is_check_violation()
                    || database_error.is_foreign_key_violation()
                {
                    return StoreError::Conflict(database_error.to_string());
                }
                StoreError::Other(error.to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(error.to_string())
            }
            _ => StoreError::Other(error.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Other(format!("stored JSON: {error}"))
    }
}

/// Inside a transaction: either the business said no, or the store failed.
/// Either way the transaction is rolled back.
#[derive(Debug)]
pub enum TxError<R> {
    Rejected(R),
    Store(StoreError),
}

impl<R> From<StoreError> for TxError<R> {
    fn from(error: StoreError) -> Self {
        TxError::Store(error)
    }
}

impl<R> From<sqlx::Error> for TxError<R> {
    fn from(error: sqlx::Error) -> Self {
        TxError::Store(error.into())
    }
}

impl<R> From<serde_json::Error> for TxError<R> {
    fn from(error: serde_json::Error) -> Self {
        TxError::Store(error.into())
    }
}
