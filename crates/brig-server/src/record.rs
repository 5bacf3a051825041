//! An execution's life in the database: persisted before it runs, marked running, and its
//! final state written before the response; with the metrics, alerts and audit event that go
//! with its end.

use brig_core::{RunResult, Status};
use brig_store::{AuditEvent, ExecutionDone, ExecutionRecord};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use brig_store::{new_id, now_ms, sha256_hex};

/// One execution being recorded.
pub struct Recorder {
    state: AppState,
    caller: Caller,
    /// Its id.
    pub id: String,
    session_id: Option<String>,
    language: String,
    code_sha256: String,
    /// The memory limit it runs under (for the memory alert).
    pub memory_limit: u64,
}

impl Recorder {
    /// Persists a new execution as `queued`.
    pub async fn begin(
        state: &AppState,
        caller: &Caller,
        session_id: Option<&str>,
        language: &str,
        code: &str,
        memory_limit: u64,
    ) -> Result<Recorder, ApiError> {
        let id = new_id();
        let code_sha256 = sha256_hex(code.as_bytes());
        let record = ExecutionRecord {
            id: id.clone(),
            tenant_id: caller.tenant_id.clone(),
            session_id: session_id.map(str::to_string),
            node_id: state.inner.node_id.clone(),
            language: language.to_string(),
            code: code.to_string(),
            code_sha256: code_sha256.clone(),
            status: Status::Queued.as_str().to_string(),
            created_at_ms: now_ms(),
            started_at_ms: None,
            finished_at_ms: None,
            wall_ms: None,
            cpu_ms: None,
            memory_peak_bytes: None,
            result: None,
        };
        state.inner.store.insert_execution(&record).await?;
        Ok(Recorder {
            state: state.clone(),
            caller: caller.clone(),
            id,
            session_id: session_id.map(str::to_string),
            language: language.to_string(),
            code_sha256,
            memory_limit,
        })
    }

    /// An execution persisted earlier: a row of the compatibility queue that a worker claimed
    /// (already `running`, so [`Recorder::running`] changes nothing).
    pub fn resume(
        state: &AppState,
        caller: &Caller,
        id: &str,
        language: &str,
        code: &str,
        memory_limit: u64,
    ) -> Recorder {
        Recorder {
            state: state.clone(),
            caller: caller.clone(),
            id: id.to_string(),
            session_id: None,
            language: language.to_string(),
            code_sha256: sha256_hex(code.as_bytes()),
            memory_limit,
        }
    }

    /// Marks it running.
    pub async fn running(&self) -> Result<(), ApiError> {
        Ok(self
            .state
            .inner
            .store
            .mark_running(&self.id, now_ms())
            .await?)
    }

    /// Writes its final state, counts it, checks the alerts and audits it; returns the result
    /// as the API shows it (the result object with its `id`).
    pub async fn finish(&self, result: &RunResult) -> Result<serde_json::Value, ApiError> {
        let mut body = serde_json::to_value(result).map_err(ApiError::internal)?;
        body["id"] = serde_json::Value::String(self.id.clone());
        if let Some(session) = &self.session_id {
            body["session_id"] = serde_json::Value::String(session.clone());
        }
        let done = ExecutionDone {
            status: result.status.as_str().to_string(),
            result: body.clone(),
            wall_ms: result.wall_ms as i64,
            cpu_ms: result.cpu_ms as i64,
            memory_peak_bytes: result.memory_peak_bytes as i64,
            finished_at_ms: now_ms(),
        };
        self.state
            .inner
            .store
            .finish_execution(&self.id, &done)
            .await?;
        self.observe(result);
        self.state
            .audit(AuditEvent {
                id: None,
                at_ms: done.finished_at_ms,
                tenant_id: Some(self.caller.tenant_id.clone()),
                key_id: Some(self.caller.key_id.clone()),
                action: "execute".into(),
                session_id: self.session_id.clone(),
                execution_id: Some(self.id.clone()),
                language: Some(self.language.clone()),
                code_sha256: Some(self.code_sha256.clone()),
                status: Some(result.status.as_str().to_string()),
                http_status: None,
                wall_ms: Some(done.wall_ms),
                cpu_ms: Some(done.cpu_ms),
                memory_peak_bytes: Some(done.memory_peak_bytes),
                client_addr: self.caller.client_addr.clone(),
                detail: serde_json::Value::Null,
            })
            .await;
        Ok(body)
    }

    fn observe(&self, result: &RunResult) {
        let metrics = &self.state.inner.metrics;
        let status = result.status.as_str();
        metrics
            .executions
            .with_label_values(&[status, &self.language])
            .inc();
        metrics
            .execution_seconds
            .with_label_values(&[&self.language])
            .observe(result.wall_ms as f64 / 1000.0);
        metrics
            .sandbox_memory_bytes
            .with_label_values(&[&self.language])
            .observe(result.memory_peak_bytes as f64);
        let alerts = &self.state.inner.config.alerts;
        if self.memory_limit > 0 {
            let percent = result.memory_peak_bytes as f64 * 100.0 / self.memory_limit as f64;
            if percent > alerts.sandbox_memory_percent {
                metrics.alert(
                    "sandbox_memory",
                    &format!(
                        "execution {} peaked at {percent:.0}% of its memory limit",
                        self.id
                    ),
                );
            }
        }
        if result.wall_ms >= 100 {
            let percent = result.cpu_ms as f64 * 100.0 / result.wall_ms as f64;
            if percent > alerts.cpu_percent {
                metrics.alert(
                    "sandbox_cpu",
                    &format!("execution {} used {percent:.0}% CPU", self.id),
                );
            }
        }
    }
}
