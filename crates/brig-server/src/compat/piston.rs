//! Piston v2: `GET /api/v2/runtimes` and `POST /api/v2/execute` (engineer-man/piston
//! `docs/api-v2.md`). The body is JSON whatever its content type (Piston's client libraries
//! send `text/plain`); errors are Piston's `400 {"message"}`.
//!
//! Limits: the caller's plan is Piston's "configured limit" of each field: `run_timeout` and
//! `compile_timeout` up to the plan's wall time, `run_cpu_time` and `compile_cpu_time` up to
//! its CPU time, `run_memory_limit` and `compile_memory_limit` up to its memory (a negative
//! memory limit, Piston's "unlimited" that its clients send by default, means the language's
//! default, capped by the plan).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use brig_compat::piston::{self, PistonError, PistonLimits};

use super::{CompatCaller, piston_error, status};
use crate::error::ApiError;
use crate::record::Recorder;
use crate::routes::execute::Admitted;
use crate::state::AppState;

fn refused(error: PistonError) -> Response {
    let code = status(error.http_status());
    (code, Json(error)).into_response()
}

/// `GET /api/v2/runtimes`.
pub async fn runtimes(
    State(state): State<AppState>,
    caller: Result<CompatCaller, ApiError>,
) -> Response {
    if let Err(e) = caller {
        return piston_error(e);
    }
    let versions = state.inner.compat.versions(&state).await;
    Json(piston::runtimes(&state.inner.engine.languages, &versions)).into_response()
}

/// `POST /api/v2/execute`.
pub async fn execute(
    State(state): State<AppState>,
    caller: Result<CompatCaller, ApiError>,
    body: Bytes,
) -> Response {
    match run(&state, caller, &body).await {
        Ok(response) => response,
        Err(response) => response,
    }
}

async fn run(
    state: &AppState,
    caller: Result<CompatCaller, ApiError>,
    body: &[u8],
) -> Result<Response, Response> {
    let CompatCaller(caller) = caller.map_err(piston_error)?;
    let request = piston::parse_execute(body).map_err(refused)?;
    let plan = &caller.plan;
    let caps = PistonLimits {
        compile_timeout: Some(plan.max_timeout_ms),
        run_timeout: Some(plan.max_timeout_ms),
        compile_cpu_time: Some(plan.max_cpu_time_ms),
        run_cpu_time: Some(plan.max_cpu_time_ms),
        // Negative is the clients' default ("unlimited"): checked below, not refused.
        compile_memory_limit: None,
        run_memory_limit: None,
    };
    for (name, value) in [
        ("compile_memory_limit", request.compile_memory_limit),
        ("run_memory_limit", request.run_memory_limit),
    ] {
        if value.is_some_and(|v| v > plan.max_memory_bytes as f64) {
            return Err(refused(PistonError {
                message: format!(
                    "{name} cannot exceed the configured limit of {}",
                    plan.max_memory_bytes
                ),
            }));
        }
    }
    let languages = &state.inner.engine.languages;
    let versions = state.inner.compat.versions(state).await;
    let (id, version) = piston::resolve_runtime(&request, languages, &versions).map_err(refused)?;
    let run = piston::to_run_request(&request, languages, &versions, &caps).map_err(refused)?;
    let code = String::from_utf8_lossy(&run.source).into_owned();
    let admitted = Admitted::new(state, &caller, run).map_err(piston_error)?;
    let ticket = state
        .reserve(&caller.tenant_id, &caller.plan)
        .map_err(piston_error)?;
    let recorder = Recorder::begin(
        state,
        &caller,
        None,
        &id,
        &code,
        admitted.limits.memory_bytes,
    )
    .await
    .map_err(piston_error)?;
    let (result, _) = admitted
        .run(state, ticket, &recorder)
        .await
        .map_err(piston_error)?;
    let answer = piston::to_response(piston::language_name(&id), &version.to_string(), &result);
    Ok(Json(answer).into_response())
}
