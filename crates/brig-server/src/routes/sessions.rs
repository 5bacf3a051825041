//! Session routes: create (one or a batch), get, list, delete. The engine keeps the live
//! sandbox; the store keeps the record, so a session's end (deleted, expired, died, server
//! restarted) stays visible after its sandbox is gone.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use brig_core::LimitOverrides;
use brig_engine::session::{CreateSession, SessionInfo, templates};
use brig_store::SessionRecord;
use std::time::Duration;

use super::idempotency::{self, Replay};
use crate::api::{
    BatchCreateRequest, CreateSessionRequest, SessionList, SessionView, SessionsQuery,
};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use brig_store::now_ms;

/// Most sessions one batch may create.
const MAX_BATCH: usize = 50;

fn view(record: &SessionRecord, live: Option<&SessionInfo>) -> SessionView {
    SessionView {
        id: record.id.clone(),
        status: record.status.clone(),
        end_reason: record.end_reason.clone(),
        template: record.template.clone(),
        ttl_s: record.ttl_s,
        idle_timeout_s: record.idle_timeout_s,
        metadata: record.metadata.clone(),
        created_at_ms: record.created_at_ms,
        ended_at_ms: record.ended_at_ms,
        from_pool: live.map(|l| l.from_pool),
    }
}

impl AppState {
    /// Creates one session for `caller`, within its plan, and records it.
    pub async fn create_session(
        &self,
        caller: &Caller,
        body: &CreateSessionRequest,
    ) -> Result<SessionView, ApiError> {
        let inner = &self.inner;
        if inner.shutdown.is_cancelled() {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        let asked: LimitOverrides = body.limits.as_ref().map(Into::into).unwrap_or_default();
        let limits = caller
            .plan
            .cap(&caller.plan_name, &asked)
            .map_err(|e| ApiError::invalid(format!("limits.{e}")))?;
        for (field, value) in [
            ("ttl_s", body.ttl_s),
            ("idle_timeout_s", body.idle_timeout_s),
        ] {
            if value == Some(0) || value.is_some_and(|v| v > 7 * 24 * 3600) {
                return Err(ApiError::invalid(format!(
                    "{field}: must be between 1 and 604800 seconds"
                )));
            }
        }
        let live = inner.sessions.list(&caller.tenant_id).len();
        if live >= caller.plan.max_sessions {
            inner
                .metrics
                .throttled
                .with_label_values(&["sessions"])
                .inc();
            return Err(ApiError::too_many(
                format!(
                    "tenant already has {live} live sessions (plan `{}` allows {})",
                    caller.plan_name, caller.plan.max_sessions
                ),
                5,
            ));
        }
        let info = inner
            .sessions
            .create(CreateSession {
                owner: caller.tenant_id.clone(),
                template: body.template.clone(),
                language: body.language.clone(),
                limits,
                ttl: body.ttl_s.map(Duration::from_secs),
                idle_timeout: body.idle_timeout_s.map(Duration::from_secs),
                metadata: body.metadata.clone(),
            })
            .await?;
        let memory_limit = templates::find(&info.template)
            .map(|t| t.limits.with(&limits).memory_bytes)
            .unwrap_or(0);
        let record = SessionRecord {
            id: info.id.clone(),
            tenant_id: caller.tenant_id.clone(),
            node_id: inner.node_id.clone(),
            template: info.template.clone(),
            status: "active".into(),
            end_reason: None,
            metadata: serde_json::to_value(&info.metadata).map_err(ApiError::internal)?,
            ttl_s: info.ttl_s as i64,
            idle_timeout_s: info.idle_timeout_s as i64,
            created_at_ms: now_ms(),
            ended_at_ms: None,
        };
        if let Err(e) = inner.store.insert_session(&record).await {
            let _ = inner.sessions.delete(&caller.tenant_id, &info.id).await;
            return Err(e.into());
        }
        inner
            .sessions_here
            .lock()
            .expect("sessions")
            .insert(info.id.clone(), (caller.tenant_id.clone(), memory_limit));
        let active = inner.sessions.active();
        inner.metrics.active_sessions.set(active as i64);
        if active > inner.config.alerts.active_sessions {
            inner.metrics.alert(
                "active_sessions",
                &format!("{active} live sessions on this node"),
            );
        }
        self.audit_action(
            caller,
            "session.create",
            Some(&info.id),
            None,
            serde_json::json!({"template": info.template}),
        )
        .await;
        Ok(view(&record, Some(&info)))
    }

    /// Records the end of a session this node had.
    pub async fn session_ended(&self, id: &str, reason: &str) {
        self.inner
            .sessions_here
            .lock()
            .expect("sessions")
            .remove(id);
        if let Err(e) = self.inner.store.end_session(id, reason, now_ms()).await {
            tracing::error!(session = id, error = %e, "cannot record the end of a session");
        }
        self.inner
            .metrics
            .active_sessions
            .set(self.inner.sessions.active() as i64);
    }
}

/// Creates a session.
#[utoipa::path(
    post,
    path = "/api/v1/sessions",
    tag = "sessions",
    request_body = CreateSessionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a repeated request")),
    responses(
        (status = 201, description = "Created", body = SessionView),
        (status = 422, description = "Invalid request", body = ErrorBody),
        (status = 429, description = "Too many sessions", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<CreateSessionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let claim = match idempotency::begin(&state, &caller, &headers, &body).await? {
        Replay::Answer(response) => return Ok(response),
        Replay::Proceed(claim) => claim,
    };
    let session = state.create_session(&caller, &body).await?;
    let value = serde_json::to_value(&session).map_err(ApiError::internal)?;
    if let Some(claim) = claim {
        claim.store(&state, StatusCode::CREATED, &value).await?;
    }
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// Creates several sessions at once.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/batch",
    tag = "sessions",
    request_body = BatchCreateRequest,
    responses(
        (status = 201, description = "Created", body = SessionList),
        (status = 422, description = "Invalid request", body = ErrorBody),
        (status = 429, description = "Too many sessions", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<BatchCreateRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<SessionList>), ApiError> {
    let Json(body) = body?;
    if body.count == 0 || body.count > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "count: must be between 1 and {MAX_BATCH}"
        )));
    }
    let live = state.inner.sessions.list(&caller.tenant_id).len();
    if live + body.count > caller.plan.max_sessions {
        return Err(ApiError::too_many(
            format!(
                "{} more sessions would exceed plan `{}`'s {} (the tenant has {live})",
                body.count, caller.plan_name, caller.plan.max_sessions
            ),
            5,
        ));
    }
    let one = CreateSessionRequest {
        language: body.language,
        template: body.template,
        limits: body.limits,
        ttl_s: body.ttl_s,
        idle_timeout_s: body.idle_timeout_s,
        metadata: body.metadata,
    };
    let created = futures_util::future::join_all(
        (0..body.count).map(|_| state.create_session(&caller, &one)),
    )
    .await;
    let mut sessions = Vec::new();
    let mut first_error = None;
    for outcome in created {
        match outcome {
            Ok(session) => sessions.push(session),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if let Some(error) = first_error {
        // All or nothing: the ones made are removed again.
        for session in &sessions {
            let _ = state
                .inner
                .sessions
                .delete(&caller.tenant_id, &session.id)
                .await;
            state.session_ended(&session.id, "batch failed").await;
        }
        return Err(error);
    }
    Ok((StatusCode::CREATED, Json(SessionList { sessions })))
}

/// The caller's sessions (live ones; `?all=true` includes ended ones).
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "sessions",
    params(SessionsQuery),
    responses((status = 200, description = "The sessions", body = SessionList)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<SessionsQuery>, QueryRejection>,
) -> Result<Json<SessionList>, ApiError> {
    let Query(query) = query?;
    let records = state
        .inner
        .store
        .list_sessions(&caller.tenant_id, !query.all)
        .await?;
    let live = state.inner.sessions.list(&caller.tenant_id);
    let sessions = records
        .iter()
        .map(|r| view(r, live.iter().find(|l| l.id == r.id)))
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// The record of a session, or 404.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<SessionRecord, ApiError> {
    state
        .inner
        .store
        .get_session(&caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session `{id}`")))
}

/// Why session `id` is not live on this node: 404 if the caller has no such session, 409 if it
/// has ended (with the reason) or lives on another node sharing the database.
pub async fn not_here(state: &AppState, caller: &Caller, id: &str) -> ApiError {
    let record = match record(state, caller, id).await {
        Ok(record) => record,
        Err(e) => return e,
    };
    if record.status == "active" && record.node_id != state.inner.node_id {
        return ApiError::conflict(format!(
            "session `{id}` lives on node `{}`; send its requests to that node",
            record.node_id
        ));
    }
    ApiError::conflict(format!(
        "session `{id}` has ended ({})",
        record.end_reason.as_deref().unwrap_or("expired")
    ))
}

/// The outcome of an engine call on session `id`, its error mapped by [`engine_error`].
pub async fn in_session<T>(
    state: &AppState,
    caller: &Caller,
    id: &str,
    outcome: Result<T, brig_engine::session::SessionError>,
) -> Result<T, ApiError> {
    match outcome {
        Ok(value) => Ok(value),
        Err(e) => Err(engine_error(state, caller, id, e).await),
    }
}

/// Maps an engine error for session `id`: "not found" is explained by [`not_here`].
pub async fn engine_error(
    state: &AppState,
    caller: &Caller,
    id: &str,
    error: brig_engine::session::SessionError,
) -> ApiError {
    match error {
        brig_engine::session::SessionError::NotFound(_) => not_here(state, caller, id).await,
        other => other.into(),
    }
}

/// One session.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}",
    tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 404, description = "No such session", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let record = record(&state, &caller, &id).await?;
    let live = state.inner.sessions.info(&caller.tenant_id, &id).ok();
    Ok(Json(view(&record, live.as_ref())))
}

/// Deletes a session and everything in it.
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/{id}",
    tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such session", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    hop: crate::forward::Hop,
) -> Result<Response, ApiError> {
    if let Some(answer) = hop.session(&state, &caller, &id, || None).await? {
        return Ok(answer);
    }
    let record = record(&state, &caller, &id).await?;
    if record.status != "active" {
        return Err(ApiError::not_found(format!(
            "session `{id}` has already ended"
        )));
    }
    match state.inner.sessions.delete(&caller.tenant_id, &id).await {
        Ok(()) | Err(brig_engine::session::SessionError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    state.session_ended(&id, "deleted").await;
    state
        .audit_action(
            &caller,
            "session.delete",
            Some(&id),
            None,
            serde_json::Value::Null,
        )
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
