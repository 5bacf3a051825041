//! Judge0's `/submissions` routes: create (`wait=true` runs in the request, `wait=false`
//! queues), batch create and read, read one, delete.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use brig_compat::judge0::{Judge0Error, Prepared, Submission, SubmissionRequest, select_fields};
use serde_json::{Value, json};

use super::stored::{load, persisted};
use super::{
    Answer, Authed, Failure, Params, authed, bad_request, callback, effective_config, flag,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::record::Recorder;
use crate::routes::execute::Admitted;
use crate::state::AppState;

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
