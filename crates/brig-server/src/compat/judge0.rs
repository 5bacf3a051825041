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

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brig_compat::encoding::encode_base64;
use brig_compat::judge0::{
    self, Judge0Config, Judge0Error, Prepared, Submission, SubmissionRequest, select_fields,
};
use brig_core::RunResult;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

use super::{CompatCaller, judge0_error, rfc3339_ms, status};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::plans::Plan;
use crate::record::Recorder;
use crate::routes::execute::Admitted;
use crate::state::AppState;

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

/// The deployment's Judge0 configuration with its maxima and defaults lowered to `plan`.
pub fn effective_config(config: &Judge0Config, plan: &Plan) -> Judge0Config {
    let mut c = config.clone();
    let secs = |ms: u64| ms as f64 / 1000.0;
    c.max_wall_time_limit = c.max_wall_time_limit.min(secs(plan.max_timeout_ms));
    c.wall_time_limit = c.wall_time_limit.min(c.max_wall_time_limit);
    c.max_cpu_time_limit = c.max_cpu_time_limit.min(secs(plan.max_cpu_time_ms));
    c.cpu_time_limit = c.cpu_time_limit.min(c.max_cpu_time_limit);
    c.max_memory_limit = c.max_memory_limit.min(plan.max_memory_bytes / 1024);
    c.memory_limit = c.memory_limit.min(c.max_memory_limit);
    c.max_max_processes_and_or_threads = c
        .max_max_processes_and_or_threads
        .min(u64::from(plan.max_pids));
    c.max_processes_and_or_threads = c
        .max_processes_and_or_threads
        .min(c.max_max_processes_and_or_threads);
    c.max_max_file_size = c.max_max_file_size.min(plan.max_output_bytes / 1024);
    c.max_file_size = c.max_file_size.min(c.max_max_file_size);
    c.allow_enable_network &= plan.allow_network;
    c.enable_network &= c.allow_enable_network;
    c
}

/// A configuration that accepts every stored (already validated) request.
fn permissive() -> Judge0Config {
    const BIG: u64 = 1 << 40;
    Judge0Config {
        enable_compiler_options: true,
        enable_command_line_arguments: true,
        enable_callbacks: true,
        enable_additional_files: true,
        max_cpu_time_limit: BIG as f64,
        max_cpu_extra_time: BIG as f64,
        max_wall_time_limit: BIG as f64,
        max_memory_limit: BIG,
        max_stack_limit: BIG,
        max_max_processes_and_or_threads: BIG,
        allow_enable_per_process_and_thread_time_limit: true,
        allow_enable_per_process_and_thread_memory_limit: true,
        max_max_file_size: BIG,
        max_number_of_runs: BIG,
        allow_enable_network: true,
        ..Judge0Config::default()
    }
}

/// What is persisted beside the row: the request with every default applied, text base64,
/// and the key that made it (for the audit of a queued run).
fn persisted(caller: &Caller, p: &Prepared) -> Value {
    let b64 = |bytes: &[u8]| Some(encode_base64(bytes));
    let normal = SubmissionRequest {
        source_code: b64(&p.source_code),
        language_id: Some(f64::from(p.language.id)),
        compiler_options: None,
        command_line_arguments: p.command_line_arguments.clone(),
        number_of_runs: Some(p.number_of_runs as f64),
        stdin: b64(&p.stdin),
        expected_output: p.expected_output.as_deref().and_then(b64),
        cpu_time_limit: Some(p.cpu_time_limit),
        cpu_extra_time: Some(p.cpu_extra_time),
        wall_time_limit: Some(p.wall_time_limit),
        memory_limit: Some(p.memory_limit as f64),
        stack_limit: Some(p.stack_limit as f64),
        max_processes_and_or_threads: Some(p.max_processes_and_or_threads as f64),
        enable_per_process_and_thread_time_limit: Some(p.enable_per_process_and_thread_time_limit),
        enable_per_process_and_thread_memory_limit: Some(
            p.enable_per_process_and_thread_memory_limit,
        ),
        max_file_size: Some(p.max_file_size as f64),
        redirect_stderr_to_stdout: Some(p.redirect_stderr_to_stdout),
        callback_url: p.callback_url.clone(),
        additional_files: None,
        enable_network: Some(p.enable_network),
    };
    json!({ "judge0": normal, "key_id": caller.key_id })
}

/// The stored request back as a `Prepared` submission.
pub fn reload(stored: &Value) -> Result<Prepared, ApiError> {
    let request: SubmissionRequest = serde_json::from_value(stored["judge0"].clone())
        .map_err(|e| ApiError::internal(format!("stored Judge0 request: {e}")))?;
    request
        .prepare(true, &permissive())
        .map_err(|e| ApiError::internal(format!("stored Judge0 request: {e}")))
}

/// The key id a stored request was made with.
pub fn stored_key(stored: &Value) -> String {
    stored["key_id"]
        .as_str()
        .unwrap_or(super::ANONYMOUS_KEY)
        .to_string()
}

/// A token as Brig stores ids: the SDK may print it as a dashed UUID.
fn token_id(token: &str) -> String {
    token.trim().replace('-', "").to_ascii_lowercase()
}

/// One of the tenant's submissions, in its current state; `None` when there is none (or it
/// is not a Judge0 submission).
pub async fn load(
    state: &AppState,
    tenant_id: &str,
    token: &str,
) -> Result<Option<Submission>, ApiError> {
    let id = token_id(token);
    let store = &state.inner.store;
    let Some(stored) = store.compat_request(tenant_id, &id).await? else {
        return Ok(None);
    };
    let Some(row) = store.get_execution(tenant_id, &id).await? else {
        return Ok(None);
    };
    let prepared = reload(&stored)?;
    let mut submission = match row.status.as_str() {
        "queued" => Submission::pending(&row.id, prepared, false),
        "running" => Submission::pending(&row.id, prepared, true),
        _ => {
            let stored_result = row.result.unwrap_or(Value::Null);
            let result =
                serde_json::from_value::<RunResult>(stored_result.clone()).unwrap_or_else(|_| {
                    // Results written by recovery carry only a status and a message.
                    let message = stored_result["message"].as_str().unwrap_or("no result");
                    RunResult::internal_error(brig_core::Tier::Namespace, message)
                });
            Submission::finished(&row.id, prepared, &result)
        }
    };
    submission.created_at = Some(rfc3339_ms(row.created_at_ms));
    submission.finished_at = row.finished_at_ms.map(rfc3339_ms);
    submission.execution_host = Some(row.node_id);
    Ok(Some(submission))
}

/// Whether the submission's language runs here (Judge0's "doesn't exist" otherwise).
fn check_available(state: &AppState, p: &Prepared) -> Result<(), Judge0Error> {
    let available = state
        .inner
        .engine
        .languages
        .find(p.language.brig_id)
        .is_some_and(|l| l.unavailable.is_none());
    if available {
        Ok(())
    } else {
        Err(Judge0Error::invalid(
            "language_id",
            format!("language with id {} doesn't exist", p.language.id),
        ))
    }
}

/// Parses and validates one submission body for `caller`.
fn prepare(
    state: &AppState,
    caller: &Caller,
    body: &Value,
    base64_encoded: bool,
) -> Result<Prepared, Judge0Error> {
    let request: SubmissionRequest = serde_json::from_value(body.clone())
        .map_err(|e| Judge0Error::BadRequest(format!("invalid submission: {e}")))?;
    let config = effective_config(&state.inner.config.judge0, &caller.plan);
    let prepared = request.prepare(base64_encoded, &config)?;
    check_available(state, &prepared)?;
    Ok(prepared)
}

fn admitted(state: &AppState, caller: &Caller, p: &Prepared) -> Result<Admitted, ApiError> {
    let mut admitted = Admitted::new(state, caller, p.run.clone())?;
    admitted.runs = p.number_of_runs.max(1);
    Ok(admitted)
}

/// Persists a submission in the queue; its token.
async fn enqueue(state: &AppState, caller: &Caller, p: &Prepared) -> Result<String, ApiError> {
    let run = admitted(state, caller, p)?;
    let recorder = Recorder::begin(
        state,
        caller,
        None,
        p.language.brig_id,
        &String::from_utf8_lossy(&p.source_code),
        run.limits.memory_bytes,
    )
    .await?;
    state
        .inner
        .store
        .set_compat_request(&recorder.id, &persisted(caller, p), true)
        .await?;
    state.inner.compat.wake.notify_one();
    Ok(recorder.id)
}

/// Runs a submission now (`wait=true`); its token.
async fn run_now(state: &AppState, caller: &Caller, p: &Prepared) -> Result<String, ApiError> {
    let run = admitted(state, caller, p)?;
    let ticket = state.reserve(&caller.tenant_id, &caller.plan)?;
    let recorder = Recorder::begin(
        state,
        caller,
        None,
        p.language.brig_id,
        &String::from_utf8_lossy(&p.source_code),
        run.limits.memory_bytes,
    )
    .await?;
    state
        .inner
        .store
        .set_compat_request(&recorder.id, &persisted(caller, p), false)
        .await?;
    run.run(state, ticket, &recorder).await?;
    Ok(recorder.id)
}

/// `PUT`s a finished submission to its `callback_url` (Judge0's default fields, base64), in
/// the background, with a few tries. Plain `http://` only: https needs a TLS feature of
/// reqwest, which brig-server leaves out.
pub fn callback(state: &AppState, submission: &Submission) {
    let Some(url) = submission.prepared.callback_url.clone() else {
        return;
    };
    let config = &state.inner.config.judge0;
    let tries = config.callbacks_max_tries.max(1);
    let timeout = Duration::from_secs_f64(config.callbacks_timeout.clamp(0.1, 60.0));
    let body = select_fields(&submission.to_value(true), None)
        .unwrap_or_default()
        .to_string();
    let token = submission.token.clone();
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(timeout).build() {
            Ok(client) => client,
            Err(e) => return tracing::warn!(error = %e, "callback client"),
        };
        for attempt in 1..=tries {
            let sent = client
                .put(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    tracing::warn!(%token, status = %response.status(), attempt, "callback refused")
                }
                Err(e) => tracing::warn!(%token, error = %e, attempt, "callback failed"),
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    });
}

/// Renders one submission for the response.
fn shown(submission: &Submission, params: &Params) -> Result<Value, Failure> {
    Ok(select_fields(
        &submission.to_value(flag(&params.base64_encoded)),
        params.fields.as_deref(),
    )?)
}

fn json_body(body: &[u8]) -> Result<Value, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

type Authed = Result<CompatCaller, ApiError>;
type Answer = Result<Response, Failure>;

fn authed(caller: Authed) -> Result<Caller, Failure> {
    Ok(caller?.0)
}

/// `GET /about`.
pub async fn about(caller: Authed) -> Answer {
    authed(caller)?;
    Ok(Json(judge0::about()).into_response())
}

/// `GET /config_info`: the deployment's configuration as it applies to this caller.
pub async fn config_info(State(state): State<AppState>, caller: Authed) -> Answer {
    let caller = authed(caller)?;
    let config = effective_config(&state.inner.config.judge0, &caller.plan);
    Ok(Json(judge0::config_info(&config)).into_response())
}

/// `GET /languages`: the Judge0 languages available on this host.
pub async fn languages(State(state): State<AppState>, caller: Authed) -> Answer {
    authed(caller)?;
    let versions = state.inner.compat.versions(&state).await;
    Ok(Json(judge0::languages::list(Some(&versions))).into_response())
}

/// `GET /languages/{id}`.
pub async fn language(
    State(state): State<AppState>,
    caller: Authed,
    Path(id): Path<String>,
) -> Answer {
    authed(caller)?;
    let versions = state.inner.compat.versions(&state).await;
    let found = id.parse::<u32>().ok().and_then(|id| {
        versions
            .get(judge0::Judge0Language::by_id(id)?.brig_id)
            .and_then(|_| {
                judge0::languages::detail(id, &state.inner.engine.languages, Some(&versions))
            })
    });
    match found {
        Some(language) => Ok(Json(language).into_response()),
        None => Err(Judge0Error::NotFound.into()),
    }
}

/// `GET /statuses`.
pub async fn statuses(caller: Authed) -> Answer {
    authed(caller)?;
    Ok(Json(judge0::languages::statuses()).into_response())
}

/// `POST /submissions`.
pub async fn create(
    State(state): State<AppState>,
    caller: Authed,
    Query(params): Query<Params>,
    body: Bytes,
) -> Answer {
    let caller = authed(caller)?;
    let config = &state.inner.config.judge0;
    let wait = flag(&params.wait);
    if wait && !config.enable_wait_result {
        return Err(bad_request("wait not allowed"));
    }
    let body = json_body(&body)?;
    let prepared = prepare(&state, &caller, &body, flag(&params.base64_encoded))?;
    if !wait {
        check_queue_room(&state, 1).await?;
        let token = enqueue(&state, &caller, &prepared).await?;
        return Ok((StatusCode::CREATED, Json(json!({ "token": token }))).into_response());
    }
    let token = run_now(&state, &caller, &prepared).await?;
    let submission = load(&state, &caller.tenant_id, &token)
        .await?
        .ok_or_else(|| Failure::Brig(ApiError::internal("a finished run vanished")))?;
    callback(&state, &submission);
    Ok((StatusCode::CREATED, Json(shown(&submission, &params)?)).into_response())
}

/// 503 `queue is full` when `adding` more would pass `max_queue_size`.
async fn check_queue_room(state: &AppState, adding: u64) -> Result<(), Failure> {
    let queued = state.inner.store.count_queued().await?;
    if queued + adding > u64::from(state.inner.config.judge0.max_queue_size) {
        return Err(Failure::QueueFull);
    }
    Ok(())
}

fn check_batch(state: &AppState, n: usize) -> Result<(), Failure> {
    let config = &state.inner.config.judge0;
    if !config.enable_batched_submissions {
        return Err(bad_request("batched submissions are not allowed"));
    }
    if n > config.max_submission_batch_size as usize {
        return Err(bad_request(format!(
            "number of submissions in a batch should be less than or equal to {}",
            config.max_submission_batch_size
        )));
    }
    Ok(())
}

/// `POST /submissions/batch`: `{"submissions": [..]}` → `[{"token"} | {field: [errors]}]`,
/// every valid one queued.
pub async fn create_batch(
    State(state): State<AppState>,
    caller: Authed,
    Query(params): Query<Params>,
    body: Bytes,
) -> Answer {
    let caller = authed(caller)?;
    let body = json_body(&body)?;
    let Some(items) = body["submissions"].as_array().filter(|a| !a.is_empty()) else {
        return Err(bad_request(
            "param is missing or the value is empty: submissions",
        ));
    };
    check_batch(&state, items.len())?;
    let base64 = flag(&params.base64_encoded);
    let prepared: Vec<Result<Prepared, Judge0Error>> = items
        .iter()
        .map(|item| prepare(&state, &caller, item, base64))
        .collect();
    let valid = prepared.iter().filter(|p| p.is_ok()).count() as u64;
    check_queue_room(&state, valid).await?;
    let mut answers = Vec::with_capacity(prepared.len());
    for item in prepared {
        answers.push(match item {
            Ok(p) => match enqueue(&state, &caller, &p).await {
                Ok(token) => json!({ "token": token }),
                Err(e) => json!({ "error": e.message }),
            },
            Err(e) => e.body(),
        });
    }
    Ok((StatusCode::CREATED, Json(Value::Array(answers))).into_response())
}

/// `GET /submissions/{token}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Authed,
    Path(token): Path<String>,
    Query(params): Query<Params>,
) -> Answer {
    let caller = authed(caller)?;
    let submission = load(&state, &caller.tenant_id, &token)
        .await?
        .ok_or(Failure::Judge0(Judge0Error::NotFound))?;
    Ok(Json(shown(&submission, &params)?).into_response())
}

/// `GET /submissions/batch?tokens=a,b`: `{"submissions": [..]}`, `null` for an unknown token.
pub async fn get_batch(
    State(state): State<AppState>,
    caller: Authed,
    Query(params): Query<Params>,
) -> Answer {
    let caller = authed(caller)?;
    let tokens: Vec<&str> = params
        .tokens
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return Err(bad_request(
            "param is missing or the value is empty: tokens",
        ));
    }
    check_batch(&state, tokens.len())?;
    let mut submissions = Vec::with_capacity(tokens.len());
    for token in tokens {
        let found = load(&state, &caller.tenant_id, token).await?;
        submissions.push(match found {
            Some(s) => shown(&s, &params)?,
            None => Value::Null,
        });
    }
    Ok(Json(json!({ "submissions": submissions })).into_response())
}

/// `DELETE /submissions/{token}`: a finished submission, answered with its fields and then
/// gone.
pub async fn delete(
    State(state): State<AppState>,
    caller: Authed,
    Path(token): Path<String>,
    Query(params): Query<Params>,
) -> Answer {
    let caller = authed(caller)?;
    if !state.inner.config.judge0.enable_submission_delete {
        return Err(bad_request("delete not allowed"));
    }
    let submission = load(&state, &caller.tenant_id, &token)
        .await?
        .ok_or(Failure::Judge0(Judge0Error::NotFound))?;
    if matches!(submission.status.id, 1 | 2) {
        return Err(bad_request(format!(
            "submission cannot be deleted because its status is {}",
            submission.status.description
        )));
    }
    let answer = shown(&submission, &params)?;
    let deleted = state
        .inner
        .store
        .delete_execution(&caller.tenant_id, &submission.token)
        .await?;
    if !deleted {
        return Err(Judge0Error::NotFound.into());
    }
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_lowers_judge0s_maxima() {
        let plans = crate::plans::builtin();
        let c = effective_config(&Judge0Config::default(), &plans["free"]);
        assert_eq!(c.max_memory_limit, 256 * 1024);
        assert_eq!(c.max_wall_time_limit, 10.0);
        assert_eq!(c.wall_time_limit, 10.0);
        assert_eq!(c.max_cpu_time_limit, 10.0);
        assert_eq!(c.max_max_processes_and_or_threads, 32);
        assert_eq!(c.max_processes_and_or_threads, 32);
        assert!(!c.allow_enable_network);
        let premium = effective_config(&Judge0Config::default(), &plans["premium"]);
        assert_eq!(premium, Judge0Config::default());
    }

    #[test]
    fn tokens_accept_dashed_uuids() {
        assert_eq!(
            token_id("0B5A2C7E-1D3F-4A6B-8C9D-0E1F2A3B4C5D"),
            "0b5a2c7e1d3f4a6b8c9d0e1f2a3b4c5d"
        );
    }
}
