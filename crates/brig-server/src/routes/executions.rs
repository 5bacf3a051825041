//! Executions in sessions: run (sync, or async with an id), get, cancel, and their events as
//! Server-Sent Events (`stdout`, `stderr`, `display`, then `result` last). Every execution is
//! persisted before it runs and its final state before the answer; its events are kept in
//! memory while it runs (see `live`), and rebuilt from the stored result afterwards.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use brig_core::{LimitOverrides, RunResult, Tier};
use brig_engine::session::{Execute, StreamEvent};
use futures_util::stream::{self, Stream};
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::sessions::not_here;
use crate::api::{ExecutionView, SessionExecuteRequest, Submitted};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::forward::Hop;
use crate::live::LiveExecution;
use crate::record::Recorder;
use crate::state::{AppState, Ticket};

/// How long a finished execution's events stay in memory for late subscribers.
const LINGER: Duration = Duration::from_secs(60);

/// Runs code in a session.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{id}/execute",
    tag = "executions",
    params(("id" = String, Path, description = "Session id")),
    request_body = SessionExecuteRequest,
    responses(
        (status = 200, description = "The result object, with its `id`", body = Object),
        (status = 202, description = "Submitted (async)", body = Submitted),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "The session has ended", body = ErrorBody),
        (status = 429, description = "Over a concurrency limit or the queue is full", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    hop: Hop,
    body: Result<Json<SessionExecuteRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    // Serialized again only when the session lives on another node (a plain struct: it cannot
    // fail to serialize).
    let forwarded = || {
        serde_json::to_vec(&body)
            .ok()
            .map(|json| ("application/json", json.into()))
    };
    if let Some(answer) = hop.session(&state, &caller, &id, forwarded).await? {
        return Ok(answer);
    }
    if let Some(timeout) = body.timeout_ms
        && (timeout == 0 || timeout > caller.plan.max_timeout_ms)
    {
        return Err(ApiError::invalid(format!(
            "timeout_ms: must be between 1 and plan `{}`'s maximum of {}",
            caller.plan_name, caller.plan.max_timeout_ms
        )));
    }
    let info = match state.inner.sessions.info(&caller.tenant_id, &id) {
        Ok(info) => info,
        Err(_) => return Err(not_here(&state, &caller, &id).await),
    };
    let language = body.language.clone().unwrap_or_else(|| {
        brig_engine::session::templates::find(&info.template)
            .map_or("python".to_string(), |t| t.language.to_string())
    });
    let memory_limit = state
        .inner
        .sessions_here
        .lock()
        .expect("sessions")
        .get(&id)
        .map_or(0, |(_, m)| *m);
    let ticket = state.reserve(&caller.tenant_id, &caller.plan)?;
    let recorder = Recorder::begin(
        &state,
        &caller,
        Some(&id),
        &language,
        &body.code,
        memory_limit,
    )
    .await?;
    let cancel = CancellationToken::new();
    let live = state
        .inner
        .live
        .start(&recorder.id, &caller.tenant_id, Some(&id), cancel.clone());
    let request = Execute {
        code: body.code,
        language: body.language,
        stdin: body.stdin.map(String::into_bytes).unwrap_or_default(),
        timeout_ms: body.timeout_ms,
        limits: LimitOverrides {
            output_bytes: Some(caller.plan.max_output_bytes),
            ..LimitOverrides::default()
        },
        cancel: Some(cancel),
    };
    let execution_id = recorder.id.clone();
    let run = run(state.clone(), caller, id, ticket, recorder, live, request);
    if body.run_async {
        tokio::spawn(run);
        return Ok((
            StatusCode::ACCEPTED,
            Json(Submitted {
                execution_id,
                status: "submitted".into(),
            }),
        )
            .into_response());
    }
    let value = run.await?;
    Ok(Json(value).into_response())
}

/// Runs one execution to its end, recording every step; the caller's answer is the result.
async fn run(
    state: AppState,
    caller: Caller,
    session_id: String,
    ticket: Ticket,
    recorder: Recorder,
    live: std::sync::Arc<LiveExecution>,
    request: Execute,
) -> Result<serde_json::Value, ApiError> {
    let cancel = request.cancel.clone().unwrap_or_default();
    let result = async {
        let slot = tokio::select! {
            slot = ticket.start() => slot?,
            () = cancel.cancelled() => return Ok(RunResult::cancelled(Tier::Namespace, "cancelled while queued")),
        };
        recorder.running().await?;
        let mut events = match state
            .inner
            .sessions
            .execute_stream(&caller.tenant_id, &session_id, request)
            .await
        {
            Ok(events) => events,
            Err(e) => {
                return Ok(RunResult::internal_error(Tier::Namespace, e.to_string()));
            }
        };
        let mut result = None;
        while let Some(event) = events.recv().await {
            if let StreamEvent::Result { result: r } = &event {
                result = Some((**r).clone());
            } else {
                live.push(event);
            }
        }
        drop(slot);
        Ok::<_, ApiError>(result.unwrap_or_else(|| {
            RunResult::internal_error(Tier::Namespace, "the execution ended without a result")
        }))
    }
    .await;
    let result = match result {
        Ok(result) => result,
        Err(refused) => RunResult::cancelled(Tier::Namespace, &refused.message),
    };
    let finished = recorder.finish(&result).await;
    live.push(StreamEvent::Result {
        result: Box::new(result),
    });
    state.inner.live.retire(&recorder.id, LINGER);
    finished
}

async fn execution_view(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<ExecutionView, ApiError> {
    let record = state
        .inner
        .store
        .get_execution(&caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no execution `{id}`")))?;
    Ok(ExecutionView {
        id: record.id,
        session_id: record.session_id,
        language: record.language,
        status: record.status,
        created_at_ms: record.created_at_ms,
        started_at_ms: record.started_at_ms,
        finished_at_ms: record.finished_at_ms,
        result: record.result,
    })
}

/// An execution's state and, once finished, its result.
#[utoipa::path(
    get,
    path = "/api/v1/executions/{id}",
    tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The execution", body = ExecutionView),
        (status = 404, description = "No such execution", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ExecutionView>, ApiError> {
    Ok(Json(execution_view(&state, &caller, &id).await?))
}

/// Cancels an execution (queued: it never runs; running: it is killed).
#[utoipa::path(
    post,
    path = "/api/v1/executions/{id}/cancel",
    tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 202, description = "Cancelling", body = Submitted),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    hop: Hop,
) -> Result<Response, ApiError> {
    if let Some(answer) = hop.execution(&state, &caller, &id).await? {
        return Ok(answer);
    }
    // The live entry learns of the end just after the store does: an execution whose end is
    // stored is finished, whatever the entry says yet.
    let view = execution_view(&state, &caller, &id).await?;
    let live = state
        .inner
        .live
        .get(&caller.tenant_id, &id)
        .filter(|live| !live.finished() && view.finished_at_ms.is_none());
    let Some(live) = live else {
        return Err(ApiError::conflict(format!(
            "execution `{id}` has already finished ({})",
            view.status
        )));
    };
    live.cancel.cancel();
    state
        .audit_action(
            &caller,
            "execution.cancel",
            None,
            Some(&id),
            serde_json::Value::Null,
        )
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(Submitted {
            execution_id: id,
            status: "cancelling".into(),
        }),
    )
        .into_response())
}

fn sse_event(
    event: &StreamEvent,
    result_fields: &serde_json::Map<String, serde_json::Value>,
) -> Event {
    let (name, data) = match event {
        StreamEvent::Stdout { text } => ("stdout", serde_json::json!({"text": text})),
        StreamEvent::Stderr { text } => ("stderr", serde_json::json!({"text": text})),
        StreamEvent::Display { output } => (
            "display",
            serde_json::to_value(output).unwrap_or(serde_json::Value::Null),
        ),
        StreamEvent::Result { result } => {
            let mut value = serde_json::to_value(result).unwrap_or(serde_json::Value::Null);
            if let Some(object) = value.as_object_mut() {
                object.extend(result_fields.clone());
            }
            ("result", value)
        }
    };
    Event::default().event(name).data(data.to_string())
}

/// The events a finished execution had, rebuilt from its stored result.
fn replay(view: &ExecutionView) -> Vec<Event> {
    let mut events = Vec::new();
    let result = view.result.clone().unwrap_or_else(|| {
        serde_json::json!({"status": view.status, "message": "the execution has not finished on this node"})
    });
    for (name, field) in [("stdout", "stdout"), ("stderr", "stderr")] {
        if let Some(text) = result[field].as_str().filter(|t| !t.is_empty()) {
            events.push(
                Event::default()
                    .event(name)
                    .data(serde_json::json!({"text": text}).to_string()),
            );
        }
    }
    if let Some(outputs) = result["outputs"].as_array() {
        for output in outputs {
            events.push(Event::default().event("display").data(output.to_string()));
        }
    }
    events.push(Event::default().event("result").data(result.to_string()));
    events
}

/// An execution's events, as Server-Sent Events: `stdout`, `stderr`, `display` in the order
/// they happened, then `result`.
#[utoipa::path(
    get,
    path = "/api/v1/executions/{id}/events",
    tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "text/event-stream of stdout, stderr, display and result events", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such execution", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    hop: Hop,
) -> Result<Response, ApiError> {
    if let Some(answer) = hop.execution(&state, &caller, &id).await? {
        return Ok(answer);
    }
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        match state.inner.live.get(&caller.tenant_id, &id) {
            Some(live) => Box::pin(follow(live)),
            None => {
                let view = execution_view(&state, &caller, &id).await?;
                Box::pin(stream::iter(replay(&view).into_iter().map(Ok)))
            }
        };
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Follows a live execution from its first event to its result.
fn follow(live: std::sync::Arc<LiveExecution>) -> impl Stream<Item = Result<Event, Infallible>> {
    let changes = live.subscribe();
    stream::unfold(
        (live, changes, 0usize, false),
        |(live, mut changes, next, done)| async move {
            if done {
                return None;
            }
            loop {
                let batch = live.since(next);
                if !batch.is_empty() {
                    let finished = matches!(batch.last(), Some(StreamEvent::Result { .. }));
                    let count = batch.len();
                    let events: Vec<Result<Event, Infallible>> = batch
                        .iter()
                        .map(|e| Ok(sse_event(e, &live.result_fields)))
                        .collect();
                    return Some((
                        stream::iter(events),
                        (live, changes, next + count, finished),
                    ));
                }
                if changes.changed().await.is_err() {
                    return None;
                }
            }
        },
    )
    .flat_map(|events| events)
}

use futures_util::StreamExt as _;
