//! The audit log, and stored responses for idempotency keys.
//!
//! Audit entries carry a code fingerprint (`code_sha256`), never code or output. Idempotency
//! keys are stored as their SHA-256 (fixed length on every engine) under the tenant, with the
//! response body sealed; a second `idempotency_put` for the same key loses the race and the
//! caller replays the winner's response.

use crate::backend::on_pool;
use crate::error::{StoreError, db, is_unique_violation};
use crate::records::{AuditEvent, AuditFilter, StoredResponse};
use crate::text::{Text, opt};
use crate::{Store, now_ms, sha256_hex};

const AUDIT_COLUMNS: &str = "at_ms, tenant_id, key_id, action, session_id, execution_id, \
     language, code_sha256, status, http_status, wall_ms, cpu_ms, memory_peak_bytes, \
     client_addr, detail";
/// `list_audit`'s limit when none is given, and its cap.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at_ms: i64,
    tenant_id: Option<Text>,
    key_id: Option<Text>,
    action: Text,
    session_id: Option<Text>,
    execution_id: Option<Text>,
    language: Option<Text>,
    code_sha256: Option<Text>,
    status: Option<Text>,
    http_status: Option<i64>,
    wall_ms: Option<i64>,
    cpu_ms: Option<i64>,
    memory_peak_bytes: Option<i64>,
    client_addr: Option<Text>,
    detail: Text,
}

impl AuditRow {
    fn into_event(self) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            id: Some(self.id),
            at_ms: self.at_ms,
            tenant_id: opt(self.tenant_id),
            key_id: opt(self.key_id),
            action: self.action.into(),
            session_id: opt(self.session_id),
            execution_id: opt(self.execution_id),
            language: opt(self.language),
            code_sha256: opt(self.code_sha256),
            status: opt(self.status),
            http_status: self.http_status,
            wall_ms: self.wall_ms,
            cpu_ms: self.cpu_ms,
            memory_peak_bytes: self.memory_peak_bytes,
            client_addr: opt(self.client_addr),
            detail: serde_json::from_str(&self.detail.0)
                .map_err(|e| StoreError::corrupt("audit detail", e))?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ResponseRow {
    request_hash: Text,
    status: i64,
    body_enc: Vec<u8>,
}

/// The associated-data context sealing a stored response to its tenant and key.
fn body_context(tenant_id: &str, key_hash: &str) -> String {
    format!("idempotency.body/{tenant_id}/{key_hash}")
}

impl Store {
    /// Appends an audit entry (its `id` is assigned by the database).
    pub async fn record_audit(&self, e: &AuditEvent) -> Result<(), StoreError> {
        let sql = self.sql(&format!(
            "INSERT INTO audit_events ({AUDIT_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        let detail = e.detail.to_string();
        on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(e.at_ms)
                .bind(&e.tenant_id)
                .bind(&e.key_id)
                .bind(&e.action)
                .bind(&e.session_id)
                .bind(&e.execution_id)
                .bind(&e.language)
                .bind(&e.code_sha256)
                .bind(&e.status)
                .bind(e.http_status)
                .bind(e.wall_ms)
                .bind(e.cpu_ms)
                .bind(e.memory_peak_bytes)
                .bind(&e.client_addr)
                .bind(&detail)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("record audit event"))?;
        Ok(())
    }

    /// Audit entries matching `f`, newest first (`since_ms` inclusive, `until_ms` exclusive;
    /// at most `limit`, default 100, capped at 1000).
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let mut conditions = Vec::new();
        if f.tenant_id.is_some() {
            conditions.push("tenant_id = ?");
        }
        if f.since_ms.is_some() {
            conditions.push("at_ms >= ?");
        }
        if f.until_ms.is_some() {
            conditions.push("at_ms < ?");
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = self.sql(&format!(
            "SELECT id, {AUDIT_COLUMNS} FROM audit_events {filter} \
             ORDER BY at_ms DESC, id DESC LIMIT ?"
        ));
        let limit = i64::from(f.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT));
        // Bind in the order the conditions were pushed above.
        let rows: Vec<AuditRow> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(&sql);
            if let Some(tenant_id) = &f.tenant_id {
                query = query.bind(tenant_id);
            }
            if let Some(since) = f.since_ms {
                query = query.bind(since);
            }
            if let Some(until) = f.until_ms {
                query = query.bind(until);
            }
            query.bind(limit).fetch_all(pool).await
        })
        .map_err(db("list audit events"))?;
        rows.into_iter().map(AuditRow::into_event).collect()
    }

    /// The response stored for this tenant's idempotency key, decrypted.
    pub async fn idempotency_get(
        &self,
        tenant_id: &str,
        key: &str,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let key_hash = sha256_hex(key.as_bytes());
        let sql = self.sql(
            "SELECT request_hash, status, body_enc FROM idempotency \
             WHERE tenant_id = ? AND key_hash = ?",
        );
        let row: Option<ResponseRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant_id).bind(&key_hash).fetch_optional(pool).await
        })
        .map_err(db("read idempotent response"))?;
        let Some(row) = row else { return Ok(None) };
        let body = self
            .cipher()
            .decrypt(&row.body_enc, &body_context(tenant_id, &key_hash))?;
        let status = u16::try_from(row.status)
            .map_err(|_| StoreError::corrupt("idempotent response status", row.status))?;
        Ok(Some(StoredResponse {
            request_hash: row.request_hash.into(),
            status,
            body,
        }))
    }

    /// Stores the response for this tenant's idempotency key. False if one is already stored
    /// (another request with the key got there first; replay that one).
    pub async fn idempotency_put(
        &self,
        tenant_id: &str,
        key: &str,
        r: &StoredResponse,
    ) -> Result<bool, StoreError> {
        let key_hash = sha256_hex(key.as_bytes());
        let body_enc = self
            .cipher()
            .encrypt(&r.body, &body_context(tenant_id, &key_hash))?;
        let sql = self.sql(
            "INSERT INTO idempotency \
             (tenant_id, key_hash, request_hash, status, body_enc, created_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        let inserted = on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(tenant_id)
                .bind(&key_hash)
                .bind(&r.request_hash)
                .bind(i64::from(r.status))
                .bind(&body_enc)
                .bind(now_ms())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        match inserted {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db("store idempotent response")(e)),
        }
    }

    /// Deletes stored responses created before `before_ms`; returns how many.
    pub async fn idempotency_purge(&self, before_ms: i64) -> Result<u64, StoreError> {
        let sql = self.sql("DELETE FROM idempotency WHERE created_at_ms < ?");
        on_pool!(self, pool => {
            sqlx::query(&sql).bind(before_ms).execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(db("purge idempotent responses"))
    }
}
