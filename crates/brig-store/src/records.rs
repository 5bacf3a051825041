//! The records the store keeps, as plain data: what the server reads and writes.
//!
//! Times are unix milliseconds (`*_ms`), ids are short lowercase hex strings. Sensitive fields
//! (`ExecutionRecord::code`, `ExecutionRecord::result`, `StoredResponse::body`) are plaintext
//! here and encrypted only in the database.

use serde::Serialize;
use std::collections::BTreeMap;

/// A customer: every key, session and execution belongs to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    /// Id (32 hex chars).
    pub id: String,
    /// Unique, human-chosen name (at most 255 characters).
    pub name: String,
    /// Plan name; its limits are the server's business.
    pub plan: String,
    /// Serve the compatibility routes without a key, as this tenant.
    pub anonymous_compat: bool,
    /// When it was created.
    pub created_at_ms: i64,
}

/// An API key. Only a SHA-256 hash of its secret is stored; `prefix` is for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Id (32 hex chars).
    pub id: String,
    /// The tenant it acts as.
    pub tenant_id: String,
    /// The first characters of the secret (`brig_abcdefg`), to tell keys apart in listings.
    pub prefix: String,
    /// May manage tenants and keys.
    pub admin: bool,
    /// When it was created.
    pub created_at_ms: i64,
    /// When it was revoked; a revoked key no longer authenticates.
    pub revoked_at_ms: Option<i64>,
    /// When it last authenticated, to within a minute.
    pub last_used_at_ms: Option<i64>,
}

/// The record of a session (the engine keeps the live sandbox).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRecord {
    /// Id.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// The node that holds the live sandbox.
    pub node_id: String,
    /// The template it was created from.
    pub template: String,
    /// `active` or `ended`.
    pub status: String,
    /// Why it ended (`deleted`, `ttl`, `idle`, `server restarted`, ...).
    pub end_reason: Option<String>,
    /// Caller-supplied metadata.
    pub metadata: serde_json::Value,
    /// Time to live, in seconds.
    pub ttl_s: i64,
    /// Idle timeout, in seconds.
    pub idle_timeout_s: i64,
    /// When it was created.
    pub created_at_ms: i64,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
}

/// One execution: persisted before it runs, finished before the response is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionRecord {
    /// Id.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// The session it ran in, if any.
    pub session_id: Option<String>,
    /// The node that runs it.
    pub node_id: String,
    /// Language id.
    pub language: String,
    /// The source code (encrypted in the database).
    pub code: String,
    /// SHA-256 of `code`, lowercase hex (stored in clear, for audit).
    pub code_sha256: String,
    /// `queued`, `running`, or a final status of the result object (`ok`, `runtime_error`, ...).
    pub status: String,
    /// When it was accepted.
    pub created_at_ms: i64,
    /// When it started running.
    pub started_at_ms: Option<i64>,
    /// When it finished.
    pub finished_at_ms: Option<i64>,
    /// Wall-clock time, in milliseconds.
    pub wall_ms: Option<i64>,
    /// CPU time, in milliseconds.
    pub cpu_ms: Option<i64>,
    /// Peak memory, in bytes.
    pub memory_peak_bytes: Option<i64>,
    /// The whole result object, with stdout and stderr (encrypted in the database).
    pub result: Option<serde_json::Value>,
}

/// The final state of an execution, for [`crate::Store::finish_execution`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionDone {
    /// The result's status.
    pub status: String,
    /// The whole result object.
    pub result: serde_json::Value,
    /// Wall-clock time, in milliseconds.
    pub wall_ms: i64,
    /// CPU time, in milliseconds.
    pub cpu_ms: i64,
    /// Peak memory, in bytes.
    pub memory_peak_bytes: i64,
    /// When it finished.
    pub finished_at_ms: i64,
}

/// Counts over every execution in the database (all tenants, all nodes).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ExecutionStats {
    /// Executions recorded.
    pub total: u64,
    /// Executions with a final state.
    pub finished: u64,
    /// Mean wall-clock time of the finished ones (0 when none).
    pub avg_wall_ms: f64,
    /// Executions per status.
    pub by_status: BTreeMap<String, u64>,
}

/// What [`crate::Store::recover_node`] cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Recovery {
    /// Queued or running executions now `internal_error`.
    pub executions_failed: u64,
    /// Active sessions now ended.
    pub sessions_ended: u64,
}

/// A response kept for an idempotency key, replayed for a repeated request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredResponse {
    /// Hash of the request it answered; a repeat with another hash is a misuse of the key.
    pub request_hash: String,
    /// HTTP status.
    pub status: u16,
    /// Body (encrypted in the database).
    pub body: Vec<u8>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AuditEvent {
    /// Assigned by the database (ignored by [`crate::Store::record_audit`]).
    pub id: Option<i64>,
    /// When it happened.
    pub at_ms: i64,
    /// The tenant acting.
    pub tenant_id: Option<String>,
    /// The key used.
    pub key_id: Option<String>,
    /// What was done: `execute`, `session.create`, `session.delete`, `file.write`,
    /// `tenant.create`, `key.create`, `key.revoke`, `execution.cancel`, ...
    pub action: String,
    /// The session concerned.
    pub session_id: Option<String>,
    /// The execution concerned.
    pub execution_id: Option<String>,
    /// Language of the code run.
    pub language: Option<String>,
    /// SHA-256 of the code run (the code itself is never in the audit log).
    pub code_sha256: Option<String>,
    /// Result status.
    pub status: Option<String>,
    /// HTTP status answered.
    pub http_status: Option<i64>,
    /// Wall-clock time, in milliseconds.
    pub wall_ms: Option<i64>,
    /// CPU time, in milliseconds.
    pub cpu_ms: Option<i64>,
    /// Peak memory, in bytes.
    pub memory_peak_bytes: Option<i64>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// Anything else, as JSON (`null` when nothing).
    pub detail: serde_json::Value,
}

/// Which audit entries [`crate::Store::list_audit`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AuditFilter {
    /// Only this tenant's.
    pub tenant_id: Option<String>,
    /// At or after this time.
    pub since_ms: Option<i64>,
    /// Before this time (exclusive).
    pub until_ms: Option<i64>,
    /// At most this many (default 100, capped at 1000).
    pub limit: Option<u32>,
}

/// A `brig serve` node sharing the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRecord {
    /// Its id (`BRIG_NODE_ID`, or generated once into its data dir).
    pub id: String,
    /// The URL it answers on, as other nodes reach it.
    pub url: String,
    /// Its last heartbeat.
    pub last_seen_ms: i64,
}
