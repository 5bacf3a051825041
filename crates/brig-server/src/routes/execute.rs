//! `POST /api/v1/execute`: a one-shot run. The request is checked (language, files, limits
//! against the plan), admitted (tenant concurrency, bounded queue), persisted, run by the
//! engine through its helper on a blocking thread, and its final state persisted before the
//! answer.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use brig_core::{LimitOverrides, RunResult, TierChoice};
use brig_engine::RunRequest;
use brig_jail::{SpecFile, Stdin};

use super::idempotency::{self, Replay};
use crate::api::ExecuteRequest;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::record::Recorder;
use crate::state::AppState;

fn tier(name: Option<&str>) -> Result<TierChoice, ApiError> {
    Ok(match name {
        None | Some("namespace") => TierChoice::Namespace,
        Some("process") => TierChoice::Process,
        Some("wasm") => TierChoice::Wasm,
        Some("auto") => TierChoice::Auto,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "tier: unknown tier `{other}` (namespace, process, wasm, auto)"
            )));
        }
    })
}

/// Turns the body into an engine request, or a 4xx naming what is wrong.
fn run_request(caller: &Caller, body: &ExecuteRequest) -> Result<RunRequest, ApiError> {
    let asked: LimitOverrides = body.limits.as_ref().map(Into::into).unwrap_or_default();
    let limits = caller
        .plan
        .cap(&caller.plan_name, &asked)
        .map_err(|e| ApiError::invalid(format!("limits.{e}")))?;
    if body.network && !caller.plan.allow_network {
        return Err(ApiError::forbidden(format!(
            "network: plan `{}` does not allow networking",
            caller.plan_name
        )));
    }
    let mut files = Vec::with_capacity(body.files.len());
    for (index, file) in body.files.iter().enumerate() {
        files.push(SpecFile {
            path: file.path.clone(),
            content: file.bytes(index)?,
            mode: 0o644,
        });
    }
    Ok(RunRequest {
        language: body.language.clone(),
        source: body.code.as_bytes().to_vec(),
        files,
        args: body.args.clone(),
        stdin: body
            .stdin
            .as_ref()
            .map_or(Stdin::Null, |s| Stdin::Bytes(s.as_bytes().to_vec())),
        limits,
        network: body.network,
        tier: tier(body.tier.as_deref())?,
    })
}

/// Runs a program once.
#[utoipa::path(
    post,
    path = "/api/v1/execute",
    tag = "executions",
    request_body = ExecuteRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a repeated request")),
    responses(
        (status = 200, description = "The result object, with its `id`", body = Object),
        (status = 422, description = "Invalid request (field named)", body = ErrorBody),
        (status = 429, description = "Over a rate or concurrency limit", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<ExecuteRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let replay = idempotency::begin(&state, &caller, &headers, &body).await?;
    let claim = match replay {
        Replay::Answer(response) => return Ok(response),
        Replay::Proceed(claim) => claim,
    };
    let (status, value) = run_one_shot(&state, &caller, &body).await?;
    if let Some(claim) = claim {
        claim.store(&state, status, &value).await?;
    }
    Ok((status, Json(value)).into_response())
}

/// The one-shot path, shared with the compatibility routes: returns the HTTP status and the
/// result object (with `id`).
pub async fn run_one_shot(
    state: &AppState,
    caller: &Caller,
    body: &ExecuteRequest,
) -> Result<(axum::http::StatusCode, serde_json::Value), ApiError> {
    let request = run_request(caller, body)?;
    let engine = state.inner.engine.clone();
    let language = engine
        .languages
        .find(&request.language)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "language: unknown language `{}` (see GET /api/v1/languages)",
                request.language
            ))
        })?;
    if let Some(reason) = &language.unavailable {
        return Err(ApiError::invalid(format!(
            "language: `{}` is unavailable on this server: {reason}",
            language.language.id
        )));
    }
    let mut resolved_limits = language.limits.with(&request.limits);
    caller.plan.clamp(&mut resolved_limits);
    let ticket = state.reserve(&caller.tenant_id, &caller.plan)?;
    let recorder = Recorder::begin(
        state,
        caller,
        None,
        &language.language.id,
        &body.code,
        resolved_limits.memory_bytes,
    )
    .await?;
    let slot = ticket.start().await;
    let result = match slot {
        Ok(slot) => {
            recorder.running().await?;
            let mut request = request;
            request.limits = LimitOverrides::from(&resolved_limits);
            let outcome = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                engine.run_language(&language, &request, &mut brig_jail::Discard)
            })
            .await;
            match outcome {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => {
                    // A refusal found only now (e.g. a tier not usable): the caller's mistake.
                    let error = ApiError::from(e);
                    let mut result = RunResult::internal_error(brig_core::Tier::Namespace, &error.message);
                    result.status = brig_core::Status::Cancelled;
                    recorder.finish(&result).await?;
                    return Err(error);
                }
                Err(join) => RunResult::internal_error(
                    brig_core::Tier::Namespace,
                    format!("the run's thread failed: {join}"),
                ),
            }
        }
        Err(refused) => {
            let mut result =
                RunResult::internal_error(brig_core::Tier::Namespace, &refused.message);
            result.status = brig_core::Status::Cancelled;
            recorder.finish(&result).await?;
            return Err(refused);
        }
    };
    let value = recorder.finish(&result).await?;
    Ok((axum::http::StatusCode::OK, value))
}
