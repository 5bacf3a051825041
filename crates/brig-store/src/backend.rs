//! The three engines behind one schema: opening a pool from a URL, migrating it, and running a
//! query written once on whichever pool is open.
//!
//! Queries are written with `?` placeholders (SQLite and MySQL syntax) and rewritten to
//! `$1..$n` for PostgreSQL by [`numbered_placeholders`]. `on_pool!` expands a block once per
//! engine with `pool` bound to that engine's pool, so one source line serves all three while
//! the driver code stays fully typed (no `Any` driver, no compile-time `query!` macros).
//!
//! The DDL differs per engine (`BLOB`/`LONGBLOB`/`BYTEA`, `VARCHAR` lengths MySQL needs for
//! indexed text), so each has its own migration directory; the logical schema is the same.

use crate::error::StoreError;
use sqlx::migrate::Migrator;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("migrations/mysql");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a pool waits for a free connection (or a new one) before failing a query.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SQLite waits on a lock held by another connection before `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The open database: one variant per engine.
#[derive(Debug, Clone)]
pub enum Backend {
    /// An embedded SQLite file (WAL mode).
    Sqlite(SqlitePool),
    /// MariaDB or MySQL.
    MySql(MySqlPool),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl Backend {
    /// Opens the database `url` names and brings its schema up to date.
    pub(crate) async fn connect(url: &str) -> Result<Backend, StoreError> {
        let shown = redact(url);
        let connect_err = |source| StoreError::Connect {
            url: shown.clone(),
            source,
        };
        let backend = if let Some(path) = sqlite_path(url) {
            if path.is_empty() {
                return Err(StoreError::BadUrl(format!(
                    "`{shown}` names no file: use sqlite:PATH or sqlite:///absolute/path"
                )));
            }
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(connect_err)?;
            Backend::Sqlite(pool)
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let options = MySqlConnectOptions::from_str(url).map_err(|e| bad_url(&shown, e))?;
            let pool = MySqlPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(connect_err)?;
            Backend::MySql(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|e| bad_url(&shown, e))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(connect_err)?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl(format!(
                "unsupported database URL `{shown}`: expected sqlite:PATH, mysql://USER@HOST/DB \
                 or postgres://USER@HOST/DB"
            )));
        };
        backend.migrate().await?;
        Ok(backend)
    }

    /// Applies the pending migrations of this engine's directory. Concurrent nodes are safe:
    /// sqlx takes an advisory lock on MySQL and PostgreSQL.
    async fn migrate(&self) -> Result<(), StoreError> {
        let result = match self {
            Backend::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Backend::MySql(pool) => MYSQL_MIGRATIONS.run(pool).await,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|source| StoreError::Migrate {
            backend: self.name(),
            source,
        })
    }

    /// `sqlite`, `mysql` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::MySql(_) => "mysql",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The query text for this engine: `?` placeholders as written, or `$n` for PostgreSQL.
    pub(crate) fn sql(&self, query: &str) -> String {
        match self {
            Backend::Postgres(_) => numbered_placeholders(query),
            Backend::Sqlite(_) | Backend::MySql(_) => query.to_owned(),
        }
    }

    /// The engine's name for an 8-byte float in `CAST(.. AS ..)`.
    pub(crate) fn float_type(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "REAL",
            Backend::MySql(_) => "DOUBLE",
            Backend::Postgres(_) => "DOUBLE PRECISION",
        }
    }

    /// Closes every connection (SQLite checkpoints its WAL into the main file on the last).
    pub(crate) async fn close(&self) {
        match self {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::MySql(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever engine it is. The body is
/// expanded once per engine, so it is type-checked against each driver.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.inner.backend {
            $crate::backend::Backend::Sqlite($pool) => $body,
            $crate::backend::Backend::MySql($pool) => $body,
            $crate::backend::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The file path of a `sqlite:PATH` or `sqlite://PATH` URL.
fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

fn bad_url(shown: &str, err: sqlx::Error) -> StoreError {
    StoreError::BadUrl(format!("cannot parse database URL `{shown}`: {err}"))
}

/// Rewrites `?` placeholders to `$1..$n` (PostgreSQL), leaving `?` inside '...' literals alone.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut in_literal = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                // A doubled '' inside a literal toggles twice: still inside.
                in_literal = !in_literal;
                out.push(c);
            }
            '?' if !in_literal => {
                n += 1;
                let _ = write!(out, "${n}");
            }
            _ => out.push(c),
        }
    }
    out
}

/// The URL without its password and query string, for messages and logs.
pub fn redact(url: &str) -> String {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}@{host}")
        }
        None => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert_eq!(
            numbered_placeholders("UPDATE t SET s = 'what?', x = ? WHERE y = 'it''s ?' AND z = ?"),
            "UPDATE t SET s = 'what?', x = $1 WHERE y = 'it''s ?' AND z = $2"
        );
        assert_eq!(numbered_placeholders("SELECT 1"), "SELECT 1");
        let twelve = ["?"; 12].join(",");
        assert!(numbered_placeholders(&twelve).ends_with("$11,$12"));
    }

    #[test]
    fn redact_drops_password_and_query() {
        assert_eq!(
            redact("mysql://root:hunter2@127.0.0.1:3306/test"),
            "mysql://root@127.0.0.1:3306/test"
        );
        assert_eq!(
            redact("postgres://u:p%40ss@db/x?password=hunter2&sslmode=disable"),
            "postgres://u@db/x"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/db"),
            "postgres://postgres@127.0.0.1:5432/db"
        );
        assert_eq!(
            redact("sqlite:/var/lib/brig/brig.db"),
            "sqlite:/var/lib/brig/brig.db"
        );
    }

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite_path("sqlite:data/brig.db"), Some("data/brig.db"));
        assert_eq!(sqlite_path("sqlite:///var/brig.db"), Some("/var/brig.db"));
        assert_eq!(sqlite_path("mysql://x"), None);
    }
}
