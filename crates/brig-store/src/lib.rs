//! brig-store: what `brig serve` remembers — tenants, API keys, session and execution records,
//! idempotent responses and the audit log — in SQLite (the default, a file in the data dir),
//! MariaDB/MySQL or PostgreSQL, with one logical schema.
//!
//! - [`backend`]: the engine enum, URLs, migrations, and running one query on any engine.
//! - [`crypto`]: user code, results and stored response bodies are sealed with
//!   XChaCha20-Poly1305 before they reach the database; keys rotate by id.
//! - [`records`]: the plain-data records the server reads and writes.
//! - The `impl Store` blocks are split by table: `tenants` (tenants and API keys), `runs`
//!   (sessions, executions, crash recovery), `audit` (audit log and idempotency), `queue`
//!   (the compatibility APIs' persisted queue).
//!
//! Queries are sqlx runtime queries with bound parameters; nothing needs a database at compile
//! time.

pub mod backend;
pub mod crypto;
mod error;
pub mod records;

mod audit;
mod nodes;
mod queue;
mod runs;
mod tenants;
mod text;

pub use backend::Backend;
pub use crypto::Cipher;
pub use error::StoreError;
pub use queue::QueuedRun;
pub use records::{
    ApiKey, AuditEvent, AuditFilter, ExecutionDone, ExecutionRecord, ExecutionStats, NodeRecord,
    Recovery, SessionRecord, StoredResponse, Tenant,
};

use error::db;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The store: an open database and the key ring. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    cipher: Cipher,
}

impl Store {
    /// Opens the database and brings its schema up to date.
    ///
    /// `url` is `sqlite:PATH` or `sqlite://PATH` (the file is created if missing; its directory
    /// must exist; WAL mode, 10 s busy timeout), `mysql://USER:PASS@HOST:PORT/DB` (or
    /// `mariadb://`), or `postgres://...` / `postgresql://...`.
    pub async fn connect(url: &str, cipher: Cipher) -> Result<Store, StoreError> {
        let backend = Backend::connect(url).await?;
        Ok(Store {
            inner: Arc::new(Inner { backend, cipher }),
        })
    }

    /// `sqlite`, `mysql` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.inner.backend.name()
    }

    /// The key ring values are sealed with.
    pub fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    /// One round trip to the database (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        backend::on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))
            .map_err(db("ping the database"))?;
        Ok(())
    }

    /// Closes every connection and waits for them to finish. Every clone of this store is
    /// closed too: later queries fail.
    pub async fn close(&self) {
        self.inner.backend.close().await;
    }

    /// The query text for this engine (see [`backend::numbered_placeholders`]).
    fn sql(&self, query: &str) -> String {
        self.inner.backend.sql(query)
    }
}

/// SHA-256 of `data`, lowercase hex: how code, API key secrets and idempotency keys are
/// fingerprinted.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh id: a v4 UUID as 32 lowercase hex chars.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_hex_is_lowercase_hex() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let id = super::new_id();
        assert_eq!(id.len(), 32);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
