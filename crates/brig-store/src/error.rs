//! The one error type of the store: what was being done, and what the database or the key
//! ring said. Messages name the operation, the URL (never its password) or the key id, so a
//! person reading a log line knows what to fix.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no engine this build knows, or is malformed.
    #[error("{0}")]
    BadUrl(String),
    /// The database server (or SQLite file) could not be reached or opened.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL with any password removed.
        url: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the {backend} schema: {source}")]
    Migrate {
        /// `sqlite`, `mysql` or `postgres`.
        backend: &'static str,
        /// What the migrator said.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database error while trying to {op}: {source}")]
    Database {
        /// What the store was doing, e.g. `insert execution`.
        op: &'static str,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// A unique value (tenant name, ...) is already taken.
    #[error("{0}")]
    Conflict(String),
    /// A value could not be encrypted or decrypted; the message names the key id.
    #[error("encryption at rest: {0}")]
    Crypto(String),
    /// A stored value does not decode (JSON that does not parse, code that is not UTF-8, an
    /// HTTP status out of range): the database was changed behind the store's back.
    #[error("the stored {what} is corrupt: {reason}")]
    Corrupt {
        /// Which value, e.g. `execution result`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}

/// `map_err` helper: wraps a driver error with the operation that failed.
pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { op, source }
}

/// True when the driver error is a unique-constraint violation (same on every engine).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}
