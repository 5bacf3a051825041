//! Test harness: one fresh database per test on each engine, dropped afterwards, and a raw dump
//! of every column of every table.
//!
//! SQLite always runs (a file in a temp dir). MariaDB and PostgreSQL are reached through an
//! admin URL (`BRIG_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306`;
//! `BRIG_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432`) that creates
//! `brig_t_<random>` and drops it at the end, so tests run in parallel and leave nothing. An
//! unreachable server prints `SKIP: ...` straight to the terminal and the test passes — unless
//! `CI` or `BRIG_TEST_STRICT` is set, when it fails.

use brig_store::{Cipher, Store};
use sqlx::{Connection, Row};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    MySql,
    Postgres,
}

/// A fresh, empty, migrated database and a store open on it.
pub struct TestDb {
    pub kind: Kind,
    /// The URL the store was opened with (to reopen it with other keys).
    pub url: String,
    pub store: Store,
    /// The SQLite file, on SQLite.
    pub sqlite_path: Option<PathBuf>,
}

impl TestDb {
    /// Opens another store on the same database.
    pub async fn reopen(&self, cipher: Cipher) -> Store {
        Store::connect(&self.url, cipher)
            .await
            .expect("reopen the store")
    }
}

/// What has to be undone after the test.
enum Cleanup {
    TempDir(#[allow(dead_code)] tempfile::TempDir),
    Server { admin_url: String, db: String },
}

fn strict() -> bool {
    ["CI", "BRIG_TEST_STRICT"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Written to the real stderr, past the test harness's capture, so a skip is always seen.
fn skip(kind: Kind, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP: {kind:?} tests: {reason}");
}

fn admin_url(kind: Kind) -> String {
    let (var, default) = match kind {
        Kind::MySql => ("BRIG_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306"),
        Kind::Postgres => (
            "BRIG_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432",
        ),
        Kind::Sqlite => unreachable!(),
    };
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// `url` with its database (path) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").expect("URL has a scheme");
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    match query {
        Some(q) => format!("{scheme}://{authority}/{db}?{q}"),
        None => format!("{scheme}://{authority}/{db}"),
    }
}

async fn admin_exec(kind: Kind, admin_url: &str, sql: &str) -> Result<(), String> {
    let connect = async {
        match kind {
            Kind::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(admin_url).await?;
                sqlx::query(sql).execute(&mut conn).await?;
                conn.close().await
            }
            Kind::Postgres => {
                let mut conn = sqlx::PgConnection::connect(admin_url).await?;
                sqlx::query(sql).execute(&mut conn).await?;
                conn.close().await
            }
            Kind::Sqlite => unreachable!(),
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{sql} via {admin_url}: {e}")),
        Err(_) => Err(format!("{admin_url} did not answer within 10 s")),
    }
}

async fn setup(kind: Kind, cipher: Cipher) -> Option<(TestDb, Cleanup)> {
    let name = format!("brig_t_{}", &brig_store::new_id()[..16]);
    let (url, cleanup, sqlite_path) = match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("brig.db");
            let url = format!("sqlite:{}", path.display());
            (url, Cleanup::TempDir(dir), Some(path))
        }
        Kind::MySql | Kind::Postgres => {
            let admin = admin_url(kind);
            if let Err(e) = admin_exec(kind, &admin, &format!("CREATE DATABASE {name}")).await {
                if strict() {
                    panic!("{kind:?} server unreachable and CI/BRIG_TEST_STRICT is set: {e}");
                }
                skip(kind, &e);
                return None;
            }
            let url = with_database(&admin, &name);
            let cleanup = Cleanup::Server {
                admin_url: admin,
                db: name,
            };
            (url, cleanup, None)
        }
    };
    let store = Store::connect(&url, cipher)
        .await
        .expect("connect and migrate");
    assert_eq!(
        store.backend(),
        match kind {
            Kind::Sqlite => "sqlite",
            Kind::MySql => "mysql",
            Kind::Postgres => "postgres",
        }
    );
    let db = TestDb {
        kind,
        url,
        store,
        sqlite_path,
    };
    Some((db, cleanup))
}

async fn teardown(kind: Kind, cleanup: Cleanup) {
    if let Cleanup::Server { admin_url, db } = cleanup {
        let sql = match kind {
            Kind::Postgres => format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS {db}"),
        };
        if let Err(e) = admin_exec(kind, &admin_url, &sql).await {
            let _ = writeln!(std::io::stderr(), "warning: could not drop {db}: {e}");
        }
    }
}

/// Runs `body` on a fresh database of `kind` (with a generated key), then drops the database,
/// whether the body passed or panicked.
pub async fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((db, cleanup)) = setup(kind, Cipher::generate()).await else {
        return;
    };
    let store = db.store.clone();
    let outcome = tokio::spawn(body(db)).await;
    store.close().await;
    teardown(kind, cleanup).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Uppercase hex of every value of every column of every table (including sqlx's migration
/// table), one line per value: what someone with a database dump would see, hex-encoded so
/// text and binary columns are searched alike (see [`hex`]).
pub async fn dump_all_columns(db: &TestDb) -> String {
    let mut out = String::new();
    match db.kind {
        Kind::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                for column in columns {
                    let sql = format!("SELECT hex(\"{column}\") FROM \"{table}\"");
                    for row in sqlx::query(&sql).fetch_all(&mut conn).await.unwrap() {
                        let value: Option<String> = row.get(0);
                        out.push_str(&value.unwrap_or_default());
                        out.push('\n');
                    }
                }
            }
            conn.close().await.unwrap();
        }
        Kind::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
            let columns = sqlx::query(
                "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR) \
                 FROM information_schema.columns WHERE table_schema = DATABASE()",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(columns.len() > 20, "information_schema lists our columns");
            for column in columns {
                let (table, column): (String, String) = (column.get(0), column.get(1));
                let sql = format!("SELECT CAST(HEX(`{column}`) AS CHAR) FROM `{table}`");
                for row in sqlx::query(&sql).fetch_all(&mut conn).await.unwrap() {
                    let value: Option<String> = row.get(0);
                    out.push_str(&value.unwrap_or_default());
                    out.push('\n');
                }
            }
            conn.close().await.unwrap();
        }
        Kind::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let columns = sqlx::query(
                "SELECT table_name::text, column_name::text, data_type::text \
                 FROM information_schema.columns WHERE table_schema = 'public'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(columns.len() > 20, "information_schema lists our columns");
            for column in columns {
                let (table, column, ty): (String, String, String) =
                    (column.get(0), column.get(1), column.get(2));
                let value = if ty == "bytea" {
                    format!("\"{column}\"")
                } else {
                    format!("convert_to(\"{column}\"::text, 'UTF8')")
                };
                let sql = format!("SELECT upper(encode({value}, 'hex')) FROM \"{table}\"");
                for row in sqlx::query(&sql).fetch_all(&mut conn).await.unwrap() {
                    let value: Option<String> = row.get(0);
                    out.push_str(&value.unwrap_or_default());
                    out.push('\n');
                }
            }
            conn.close().await.unwrap();
        }
    }
    out
}

/// Uppercase hex of `s`, to search a [`dump_all_columns`] for it.
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

/// Generates one `#[tokio::test]` per engine for each body: `sqlite::name`, `mysql::name`,
/// `postgres::name`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($crate::common::Kind::Sqlite, super::$name).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($crate::common::Kind::MySql, super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($crate::common::Kind::Postgres, super::$name).await
                }
            )*
        }
    };
}
