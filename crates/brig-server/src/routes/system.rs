//! Languages, stats, Prometheus metrics, and the health probes.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Languages with their versions (version commands run once per process).
fn languages_json(state: &AppState) -> serde_json::Value {
    static CACHE: OnceLock<serde_json::Value> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let rows: Vec<serde_json::Value> = state
                .inner
                .engine
                .languages
                .all()
                .iter()
                .map(|r| {
                    let version = match r.unavailable {
                        None => brig_engine::Languages::version(r),
                        Some(_) => None,
                    };
                    serde_json::json!({
                        "id": r.language.id,
                        "name": r.language.name,
                        "aliases": r.language.aliases,
                        "extensions": r.language.extensions,
                        "compiled": r.language.compile.is_some(),
                        "available": r.unavailable.is_none(),
                        "version": version,
                        "reason": r.unavailable,
                    })
                })
                .collect();
            serde_json::json!({"languages": rows})
        })
        .clone()
}

/// The languages this server runs.
#[utoipa::path(
    get,
    path = "/api/v1/languages",
    tag = "system",
    responses((status = 200, description = "`{languages: [{id, name, aliases, version, available...}]}`", body = Object)),
    security(("bearer" = []))
)]
pub async fn languages(State(state): State<AppState>, _caller: Caller) -> Json<serde_json::Value> {
    let state2 = state.clone();
    let value = tokio::task::spawn_blocking(move || languages_json(&state2))
        .await
        .unwrap_or(serde_json::Value::Null);
    Json(value)
}

/// Counters of this node and of every node's executions.
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    tag = "system",
    responses((status = 200, description = "`{active_sandboxes, active_sessions, total_executions, avg_execution_ms, pools, zygotes...}`", body = Object)),
    security(("bearer" = []))
)]
pub async fn stats(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let inner = &state.inner;
    let executions = inner.store.execution_stats().await?;
    let sessions = inner.sessions.active();
    let running = inner.metrics.running_executions.get();
    Ok(Json(serde_json::json!({
        "node_id": inner.node_id,
        "database": inner.store.backend(),
        "uptime_s": inner.started.elapsed().as_secs(),
        "active_sandboxes": sessions as i64 + running,
        "active_sessions": sessions,
        "running_executions": running,
        "queue_depth": state.queue_depth(),
        "total_executions": executions.total,
        "finished_executions": executions.finished,
        "avg_execution_ms": executions.avg_wall_ms,
        "executions_by_status": executions.by_status,
        "pools": inner.sessions.pool_stats(),
        "zygotes": inner.zygotes.as_ref().map(|z| z.stats()),
    })))
}

/// Prometheus metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let inner = &state.inner;
    inner
        .metrics
        .active_sessions
        .set(inner.sessions.active() as i64);
    for pool in inner.sessions.pool_stats() {
        let labels = [pool.template.as_str()];
        inner
            .metrics
            .pool_size
            .with_label_values(&labels)
            .set(pool.size as i64);
        inner
            .metrics
            .pool_hits
            .with_label_values(&labels)
            .set(pool.hits as i64);
        inner
            .metrics
            .pool_misses
            .with_label_values(&labels)
            .set(pool.misses as i64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        inner.metrics.render(),
    )
        .into_response()
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "system",
    responses((status = 200, description = "`{status: ok}`", body = Object))
)]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers and the server is not shutting down.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "system",
    responses(
        (status = 200, description = "`{status: ready}`", body = Object),
        (status = 503, description = "Not ready", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if state.inner.shutdown.is_cancelled() {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    state
        .inner
        .store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(format!("the database does not answer: {e}")))?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

/// 404 for any other path, in the API's error shape.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route (see /api/v1/openapi.json)")
}

/// 405 in the API's error shape.
pub async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(
            serde_json::json!({"error": {"code": "method_not_allowed", "message": "this route does not take that method"}}),
        ),
    )
}
