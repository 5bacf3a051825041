//! Judge0 CE 1.13.x: `/about`, `/config_info`, `/languages[/{id}]`, `/statuses` and
//! `/submissions` (single and batch, `?wait=`, `?fields=`, `?base64_encoded=`, delete). A
//! submission's token is its Brig execution id.
//!
//! - Limits: `[judge0]` in the config is Judge0's configuration; for each caller its maxima
//!   (and defaults) are lowered to the caller's plan, so a limit above the plan is Judge0's own
//!   `422 {"memory_limit": ["must be less than or equal to 262144"]}` and `/config_info` shows
//!   what this caller may ask for. `cpu_time_limit + cpu_extra_time` is capped at the plan's
//!   CPU time.
//! - `wait=true` runs in the request and answers `201` with the submission. `wait=false` (the
//!   default) answers `201 {"token"}` at once: the row is persisted `queued` with its validated
//!   request sealed beside it, and a [`super::queue`] worker runs it, on any node, even after a
//!   restart. Batches are always queued.
//! - The validated request is stored normalised (every default applied, text base64) and
//!   validated again when read with a configuration that allows everything, so a later change
//!   of `[judge0]` never makes a stored submission unreadable.
//!
//! Split by concern:
//! - [`info`]: `/about`, `/config_info`, `/languages[/{id}]`, `/statuses`, and the Judge0
//!   configuration lowered to a caller's plan.
//! - [`submissions`]: the `/submissions` routes; [`stored`]: a submission as persisted and read
//!   back; [`mod@callback`]: the `PUT` to a finished submission's `callback_url`.

pub mod callback;
pub mod info;
pub mod stored;
pub mod submissions;

pub use callback::callback;
pub use info::{about, config_info, effective_config, language, languages, statuses};
pub use stored::{load, reload, stored_key};
pub use submissions::{create, create_batch, delete, get_batch, get_one};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brig_compat::judge0::Judge0Error;
use serde::Deserialize;
use serde_json::json;

use super::{CompatCaller, judge0_error, status};
use crate::auth::Caller;
use crate::error::ApiError;

/// The query parameters Judge0's routes take.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    base64_encoded: Option<String>,
    wait: Option<String>,
    fields: Option<String>,
    tokens: Option<String>,
}

/// A query flag as Rails reads one.
fn flag(value: &Option<String>) -> bool {
    matches!(
        value.as_deref().map(str::to_ascii_lowercase).as_deref(),
        Some("true" | "t" | "1" | "yes" | "on")
    )
}

/// Why a Judge0 route refused, answered in Judge0's shapes: its own errors as Judge0 words
/// them, Brig's (auth, rate, admission, store) as `{"error"}` with Brig's status.
#[derive(Debug)]
pub enum Failure {
    /// Judge0's validation or request error.
    Judge0(Judge0Error),
    /// Brig's error.
    Brig(ApiError),
    /// `max_queue_size` reached: Judge0's `503 {"error": "queue is full"}`.
    QueueFull,
}

impl From<Judge0Error> for Failure {
    fn from(e: Judge0Error) -> Failure {
        Failure::Judge0(e)
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::Brig(e)
    }
}

impl From<brig_store::StoreError> for Failure {
    fn from(e: brig_store::StoreError) -> Failure {
        Failure::Brig(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Judge0(e) => (status(e.http_status()), Json(e.body())).into_response(),
            Failure::Brig(e) => judge0_error(e),
            Failure::QueueFull => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "queue is full" })),
            )
                .into_response(),
        }
    }
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure::Judge0(Judge0Error::BadRequest(message.into()))
}

type Authed = Result<CompatCaller, ApiError>;
type Answer = Result<Response, Failure>;

fn authed(caller: Authed) -> Result<Caller, Failure> {
    Ok(caller?.0)
}
