//! Session and execution records, their stats, and crash recovery.
//!
//! An execution is written before it runs (`queued`), marked `running`, and given its final
//! state before the response is sent; its code and result are sealed (see [`crate::crypto`]).
//! Every row names the node that runs it, so after a crash a node fails exactly what it left
//! unfinished, even when several nodes share the database.

use crate::Store;
use crate::backend::on_pool;
use crate::error::{StoreError, db};
use crate::records::{ExecutionDone, ExecutionRecord, ExecutionStats, Recovery, SessionRecord};
use crate::text::{Text, opt};

const SESSION_COLUMNS: &str = "id, tenant_id, node_id, template, status, end_reason, metadata, \
     ttl_s, idle_timeout_s, created_at_ms, ended_at_ms";
const EXECUTION_COLUMNS: &str = "id, tenant_id, session_id, node_id, language, code_enc, \
     code_sha256, status, created_at_ms, started_at_ms, finished_at_ms, wall_ms, cpu_ms, \
     memory_peak_bytes, result_enc";
/// Why recovery ends sessions and fails executions.
const RESTARTED: &str = "server restarted";
/// The executions a restart leaves unfinished (bound: `from_queue = false`): running ones, and
/// queued ones that waited in the dead process's memory. Queued rows of the persisted queue are
/// not among them.
const UNFINISHED: &str = "(status = 'running' OR (status = 'queued' AND from_queue = ?))";

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Text,
    tenant_id: Text,
    node_id: Text,
    template: Text,
    status: Text,
    end_reason: Option<Text>,
    metadata: Text,
    ttl_s: i64,
    idle_timeout_s: i64,
    created_at_ms: i64,
    ended_at_ms: Option<i64>,
}

impl SessionRow {
    fn into_record(self) -> Result<SessionRecord, StoreError> {
        Ok(SessionRecord {
            metadata: serde_json::from_str(&self.metadata.0)
                .map_err(|e| StoreError::corrupt("session metadata", e))?,
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            node_id: self.node_id.into(),
            template: self.template.into(),
            status: self.status.into(),
            end_reason: opt(self.end_reason),
            ttl_s: self.ttl_s,
            idle_timeout_s: self.idle_timeout_s,
            created_at_ms: self.created_at_ms,
            ended_at_ms: self.ended_at_ms,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ExecutionRow {
    id: Text,
    tenant_id: Text,
    session_id: Option<Text>,
    node_id: Text,
    language: Text,
    code_enc: Vec<u8>,
    code_sha256: Text,
    status: Text,
    created_at_ms: i64,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
    wall_ms: Option<i64>,
    cpu_ms: Option<i64>,
    memory_peak_bytes: Option<i64>,
    result_enc: Option<Vec<u8>>,
}

/// The associated-data contexts sealing an execution's code and result to its row.
fn code_context(id: &str) -> String {
    format!("execution.code/{id}")
}
fn result_context(id: &str) -> String {
    format!("execution.result/{id}")
}

impl Store {
    /// Records a new session.
    pub async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let sql = self.sql(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        let metadata = s.metadata.to_string();
        on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(&s.id)
                .bind(&s.tenant_id)
                .bind(&s.node_id)
                .bind(&s.template)
                .bind(&s.status)
                .bind(&s.end_reason)
                .bind(&metadata)
                .bind(s.ttl_s)
                .bind(s.idle_timeout_s)
                .bind(s.created_at_ms)
                .bind(s.ended_at_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("insert session"))?;
        Ok(())
    }

    /// Marks an active session ended. Ending an ended (or unknown) session changes nothing.
    pub async fn end_session(&self, id: &str, reason: &str, at_ms: i64) -> Result<(), StoreError> {
        let sql = self.sql(
            "UPDATE sessions SET status = 'ended', end_reason = ?, ended_at_ms = ? \
             WHERE id = ? AND status = 'active'",
        );
        on_pool!(self, pool => {
            sqlx::query(&sql).bind(reason).bind(at_ms).bind(id).execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(db("end session"))?;
        Ok(())
    }

    /// One of the tenant's sessions.
    pub async fn get_session(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = ? AND id = ?"
        ));
        let row: Option<SessionRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant_id).bind(id).fetch_optional(pool).await
        })
        .map_err(db("read session"))?;
        row.map(SessionRow::into_record).transpose()
    }

    /// The tenant's sessions, newest first; only the active ones if `active_only`.
    pub async fn list_sessions(
        &self,
        tenant_id: &str,
        active_only: bool,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let filter = if active_only {
            "AND status = 'active'"
        } else {
            ""
        };
        let sql = self.sql(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = ? {filter} \
             ORDER BY created_at_ms DESC, id DESC"
        ));
        let rows: Vec<SessionRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant_id).fetch_all(pool).await
        })
        .map_err(db("list sessions"))?;
        rows.into_iter().map(SessionRow::into_record).collect()
    }

    /// Records an execution (normally `queued`), sealing its code and any result.
    pub async fn insert_execution(&self, e: &ExecutionRecord) -> Result<(), StoreError> {
        let cipher = self.cipher();
        let code_enc = cipher.encrypt(e.code.as_bytes(), &code_context(&e.id))?;
        let result_enc = match &e.result {
            Some(result) => {
                Some(cipher.encrypt(result.to_string().as_bytes(), &result_context(&e.id))?)
            }
            None => None,
        };
        let sql = self.sql(&format!(
            "INSERT INTO executions ({EXECUTION_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(&e.id)
                .bind(&e.tenant_id)
                .bind(&e.session_id)
                .bind(&e.node_id)
                .bind(&e.language)
                .bind(&code_enc)
                .bind(&e.code_sha256)
                .bind(&e.status)
                .bind(e.created_at_ms)
                .bind(e.started_at_ms)
                .bind(e.finished_at_ms)
                .bind(e.wall_ms)
                .bind(e.cpu_ms)
                .bind(e.memory_peak_bytes)
                .bind(&result_enc)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("insert execution"))?;
        Ok(())
    }

    /// Marks a queued execution running.
    pub async fn mark_running(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        let sql = self.sql(
            "UPDATE executions SET status = 'running', started_at_ms = ? \
             WHERE id = ? AND status = 'queued'",
        );
        on_pool!(self, pool => sqlx::query(&sql).bind(at_ms).bind(id).execute(pool).await.map(|r| r.rows_affected()))
            .map_err(db("mark execution running"))?;
        Ok(())
    }

    /// Gives an execution its final state, sealing the result.
    pub async fn finish_execution(&self, id: &str, done: &ExecutionDone) -> Result<(), StoreError> {
        let result_enc = self
            .cipher()
            .encrypt(done.result.to_string().as_bytes(), &result_context(id))?;
        let sql = self.sql(
            "UPDATE executions SET status = ?, result_enc = ?, wall_ms = ?, cpu_ms = ?, \
             memory_peak_bytes = ?, finished_at_ms = ? WHERE id = ?",
        );
        on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(&done.status)
                .bind(&result_enc)
                .bind(done.wall_ms)
                .bind(done.cpu_ms)
                .bind(done.memory_peak_bytes)
                .bind(done.finished_at_ms)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("finish execution"))?;
        Ok(())
    }

    /// One of the tenant's executions, with its code and result decrypted.
    pub async fn get_execution(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE tenant_id = ? AND id = ?"
        ));
        let row: Option<ExecutionRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant_id).bind(id).fetch_optional(pool).await
        })
        .map_err(db("read execution"))?;
        let Some(row) = row else { return Ok(None) };
        let cipher = self.cipher();
        let id = String::from(row.id);
        let code = cipher.decrypt(&row.code_enc, &code_context(&id))?;
        let code = String::from_utf8(code).map_err(|e| StoreError::corrupt("execution code", e))?;
        let result = match &row.result_enc {
            Some(sealed) => {
                let json = cipher.decrypt(sealed, &result_context(&id))?;
                Some(
                    serde_json::from_slice(&json)
                        .map_err(|e| StoreError::corrupt("execution result", e))?,
                )
            }
            None => None,
        };
        Ok(Some(ExecutionRecord {
            id,
            tenant_id: row.tenant_id.into(),
            session_id: opt(row.session_id),
            node_id: row.node_id.into(),
            language: row.language.into(),
            code,
            code_sha256: row.code_sha256.into(),
            status: row.status.into(),
            created_at_ms: row.created_at_ms,
            started_at_ms: row.started_at_ms,
            finished_at_ms: row.finished_at_ms,
            wall_ms: row.wall_ms,
            cpu_ms: row.cpu_ms,
            memory_peak_bytes: row.memory_peak_bytes,
            result,
        }))
    }

    /// Counts over every execution: total, finished, mean wall time of the finished ones,
    /// and per status.
    pub async fn execution_stats(&self) -> Result<ExecutionStats, StoreError> {
        let by_status: Vec<(Text, i64)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT status, COUNT(*) FROM executions GROUP BY status")
                .fetch_all(pool)
                .await
        })
        .map_err(db("count executions"))?;
        // AVG is NUMERIC on PostgreSQL and DECIMAL on MySQL: cast to the engine's double.
        let sql = format!(
            "SELECT COUNT(*), CAST(AVG(wall_ms) AS {}) FROM executions \
             WHERE finished_at_ms IS NOT NULL",
            self.inner.backend.float_type()
        );
        let (finished, avg): (i64, Option<f64>) = on_pool!(self, pool => {
            sqlx::query_as(&sql).fetch_one(pool).await
        })
        .map_err(db("average execution wall time"))?;
        let by_status: std::collections::BTreeMap<String, u64> = by_status
            .into_iter()
            .map(|(status, n)| (status.0, n.unsigned_abs()))
            .collect();
        Ok(ExecutionStats {
            total: by_status.values().sum(),
            finished: finished.unsigned_abs(),
            avg_wall_ms: avg.unwrap_or(0.0),
            by_status,
        })
    }

    /// After a restart of node `node_id`: its running executions, and its queued ones that
    /// were waiting in memory, become `internal_error` ("server restarted"), and its active
    /// sessions end. Rows of the persisted queue (`from_queue`, see [`crate::QueuedRun`]) stay
    /// queued for a worker to pick up again. Other nodes' rows are untouched.
    pub async fn recover_node(&self, node_id: &str, at_ms: i64) -> Result<Recovery, StoreError> {
        let sql = self.sql(&format!(
            "SELECT id FROM executions WHERE node_id = ? AND {UNFINISHED}"
        ));
        let ids: Vec<(Text,)> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(node_id).bind(false).fetch_all(pool).await
        })
        .map_err(db("find unfinished executions"))?;
        let result = serde_json::json!({
            "status": "internal_error",
            "message": RESTARTED,
            "exit_code": null,
            "signal": null,
            "stdout": "",
            "stderr": "",
            "wall_ms": 0,
            "cpu_ms": 0,
            "memory_peak_bytes": 0,
        })
        .to_string();
        let sql = self.sql(&format!(
            "UPDATE executions SET status = 'internal_error', result_enc = ?, finished_at_ms = ? \
             WHERE id = ? AND {UNFINISHED}"
        ));
        let mut executions_failed = 0;
        // One row at a time: each sealed result has its own nonce and is bound to its row.
        for (Text(id),) in ids {
            let sealed = self
                .cipher()
                .encrypt(result.as_bytes(), &result_context(&id))?;
            executions_failed += on_pool!(self, pool => {
                sqlx::query(&sql).bind(&sealed).bind(at_ms).bind(&id).bind(false).execute(pool).await
                    .map(|r| r.rows_affected())
            })
            .map_err(db("fail unfinished execution"))?;
        }
        let sql = self.sql(
            "UPDATE sessions SET status = 'ended', end_reason = ?, ended_at_ms = ? \
             WHERE node_id = ? AND status = 'active'",
        );
        let sessions_ended = on_pool!(self, pool => {
            sqlx::query(&sql).bind(RESTARTED).bind(at_ms).bind(node_id).execute(pool).await
                .map(|r| r.rows_affected())
        })
        .map_err(db("end active sessions"))?;
        Ok(Recovery {
            executions_failed,
            sessions_ended,
        })
    }
}
