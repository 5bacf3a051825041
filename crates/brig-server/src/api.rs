//! The JSON bodies of the public contract (DESIGN.md §Public contract), as plain serde structs
//! that refuse unknown fields, with their OpenAPI schemas.

use base64::Engine as _;
use brig_core::LimitOverrides;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::error::ApiError;

/// Limits a request may ask for; each optional, each capped by the tenant's plan.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsInput {
    /// Wall-clock limit, ms.
    pub timeout_ms: Option<u64>,
    /// CPU-time limit, ms.
    pub cpu_time_ms: Option<u64>,
    /// Memory limit, bytes.
    pub memory_bytes: Option<u64>,
    /// Processes/threads.
    pub pids: Option<u32>,
    /// Captured output, bytes.
    pub output_bytes: Option<u64>,
    /// Writable disk, bytes.
    pub disk_bytes: Option<u64>,
}

impl From<&LimitsInput> for LimitOverrides {
    fn from(l: &LimitsInput) -> LimitOverrides {
        LimitOverrides {
            timeout_ms: l.timeout_ms,
            cpu_time_ms: l.cpu_time_ms,
            memory_bytes: l.memory_bytes,
            pids: l.pids,
            output_bytes: l.output_bytes,
            disk_bytes: l.disk_bytes,
            ..LimitOverrides::default()
        }
    }
}

/// How a file's `content` is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Text.
    #[default]
    Utf8,
    /// Base64 (standard alphabet).
    Base64,
}

/// A file placed in the work dir.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// Path relative to the work dir.
    pub path: String,
    /// Content.
    pub content: String,
    /// Encoding of `content`.
    #[serde(default)]
    pub encoding: Encoding,
}

impl FileInput {
    /// The file's bytes, or 422 naming the file.
    pub fn bytes(&self, index: usize) -> Result<Vec<u8>, ApiError> {
        match self.encoding {
            Encoding::Utf8 => Ok(self.content.as_bytes().to_vec()),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(&self.content)
                .map_err(|e| ApiError::invalid(format!("files[{index}].content: not base64: {e}"))),
        }
    }
}

/// `POST /api/v1/execute`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// Language id or alias (`python`, `js`...).
    pub language: String,
    /// The program.
    pub code: String,
    /// Standard input.
    pub stdin: Option<String>,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Files placed beside the program.
    #[serde(default)]
    pub files: Vec<FileInput>,
    /// Limits.
    pub limits: Option<LimitsInput>,
    /// Allow networking (if the plan does).
    #[serde(default)]
    pub network: bool,
    /// `namespace` (default), `process`, `wasm` or `auto`.
    pub tier: Option<String>,
}

/// `POST /api/v1/sessions`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// Language (`python`, `bash`), when no template is named.
    pub language: Option<String>,
    /// Template (`python`, `python-minimal`, `bash`).
    pub template: Option<String>,
    /// Limits for the session's sandbox.
    pub limits: Option<LimitsInput>,
    /// Time to live, seconds.
    pub ttl_s: Option<u64>,
    /// Idle timeout, seconds.
    pub idle_timeout_s: Option<u64>,
    /// Caller's labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `POST /api/v1/sessions/batch`: `count` and the fields of [`CreateSessionRequest`], repeated
/// here because serde cannot refuse unknown fields through `#[serde(flatten)]`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCreateRequest {
    /// How many (1..=50).
    pub count: usize,
    /// Language.
    pub language: Option<String>,
    /// Template.
    pub template: Option<String>,
    /// Limits.
    pub limits: Option<LimitsInput>,
    /// Time to live, seconds.
    pub ttl_s: Option<u64>,
    /// Idle timeout, seconds.
    pub idle_timeout_s: Option<u64>,
    /// Labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A session as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// Id.
    pub id: String,
    /// `active` or `ended`.
    pub status: String,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Template.
    pub template: String,
    /// Time to live, seconds.
    pub ttl_s: i64,
    /// Idle timeout, seconds.
    pub idle_timeout_s: i64,
    /// Labels.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// End time.
    pub ended_at_ms: Option<i64>,
    /// Whether it came from a warm pool (live sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_pool: Option<bool>,
}

/// `{sessions: [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    /// The sessions.
    pub sessions: Vec<SessionView>,
}

/// `POST /api/v1/sessions/{id}/execute`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionExecuteRequest {
    /// The code (a cell for a Python session).
    pub code: String,
    /// Language (default: the session's).
    pub language: Option<String>,
    /// Standard input (commands).
    pub stdin: Option<String>,
    /// Wall-clock limit, ms.
    pub timeout_ms: Option<u64>,
    /// Answer `202` at once and run in the background.
    #[serde(default, rename = "async")]
    pub run_async: bool,
}

/// `202` for an async execution.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    /// The execution's id.
    pub execution_id: String,
    /// `submitted`.
    pub status: String,
}

/// An execution's record: its state, and its result once finished.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecutionView {
    /// Id.
    pub id: String,
    /// Session, if it ran in one.
    pub session_id: Option<String>,
    /// Language.
    pub language: String,
    /// `queued`, `running`, or a final status.
    pub status: String,
    /// Created, ms since the epoch.
    pub created_at_ms: i64,
    /// Started.
    pub started_at_ms: Option<i64>,
    /// Finished.
    pub finished_at_ms: Option<i64>,
    /// The result object, once finished.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

/// A tenant.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// Unique name.
    pub name: String,
    /// Plan name.
    pub plan: String,
    /// Serve the compatibility routes anonymously for this tenant.
    #[serde(default)]
    pub anonymous_compat: bool,
}

/// `POST /api/v1/tenants/{id}/keys`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// An admin key.
    #[serde(default)]
    pub admin: bool,
}

/// A new key, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewKey {
    /// Key id.
    pub id: String,
    /// The secret (shown only now).
    pub key: String,
    /// Tenant.
    pub tenant_id: String,
    /// Admin.
    pub admin: bool,
}

/// Query of `GET /api/v1/sessions/{id}/files`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Directory relative to the work dir (default: the work dir).
    pub path: Option<String>,
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// From this time, ms since the epoch.
    pub since_ms: Option<i64>,
    /// Until this time.
    pub until_ms: Option<i64>,
    /// At most this many (default 100, max 1000).
    pub limit: Option<u32>,
}

/// Query of `GET /api/v1/sessions`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionsQuery {
    /// Include ended sessions.
    #[serde(default)]
    pub all: bool,
}
