//! A session's files: raw bytes in and out (binary-safe), a listing, and delete. Paths are
//! relative to the session's work dir; the agent inside resolves them with
//! `openat2(RESOLVE_IN_ROOT)`, so `..` and symlinks cannot leave it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::sessions::in_session;
use crate::api::ListQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::forward::Hop;
use crate::state::AppState;

/// Writes a file (creating its directories).
#[utoipa::path(
    put,
    path = "/api/v1/sessions/{id}/files/{path}",
    tag = "files",
    params(("id" = String, Path, description = "Session id"), ("path" = String, Path, description = "File path in the work dir")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 204, description = "Written"),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 422, description = "Invalid path", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, path)): Path<(String, String)>,
    hop: Hop,
    body: Bytes,
) -> Result<Response, ApiError> {
    let forwarded = || Some(("application/octet-stream", body.clone()));
    if let Some(answer) = hop.session(&state, &caller, &id, forwarded).await? {
        return Ok(answer);
    }
    let size = body.len();
    let outcome = state
        .inner
        .sessions
        .write_file(&caller.tenant_id, &id, &path, body.to_vec())
        .await;
    in_session(&state, &caller, &id, outcome).await?;
    state
        .audit_action(
            &caller,
            "file.write",
            Some(&id),
            None,
            serde_json::json!({"path": path, "bytes": size}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Reads a file.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}/files/{path}",
    tag = "files",
    params(("id" = String, Path, description = "Session id"), ("path" = String, Path, description = "File path in the work dir")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such session or file", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, path)): Path<(String, String)>,
    hop: Hop,
) -> Result<Response, ApiError> {
    if let Some(answer) = hop.session(&state, &caller, &id, || None).await? {
        return Ok(answer);
    }
    let outcome = state
        .inner
        .sessions
        .read_file(&caller.tenant_id, &id, &path)
        .await;
    let bytes = in_session(&state, &caller, &id, outcome).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Deletes a file or a directory tree.
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/{id}/files/{path}",
    tag = "files",
    params(("id" = String, Path, description = "Session id"), ("path" = String, Path, description = "File path in the work dir")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such session or file", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, path)): Path<(String, String)>,
    hop: Hop,
) -> Result<Response, ApiError> {
    if let Some(answer) = hop.session(&state, &caller, &id, || None).await? {
        return Ok(answer);
    }
    let outcome = state
        .inner
        .sessions
        .delete_file(&caller.tenant_id, &id, &path)
        .await;
    in_session(&state, &caller, &id, outcome).await?;
    state
        .audit_action(
            &caller,
            "file.delete",
            Some(&id),
            None,
            serde_json::json!({"path": path}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Lists a directory of the work dir.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}/files",
    tag = "files",
    params(("id" = String, Path, description = "Session id"), ListQuery),
    responses(
        (status = 200, description = "`{path, entries: [{name, kind, size}]}`", body = Object),
        (status = 404, description = "No such session or directory", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    hop: Hop,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    if let Some(answer) = hop.session(&state, &caller, &id, || None).await? {
        return Ok(answer);
    }
    let path = query.path.unwrap_or_default();
    let outcome = state
        .inner
        .sessions
        .list_files(&caller.tenant_id, &id, &path)
        .await;
    let entries = in_session(&state, &caller, &id, outcome).await?;
    Ok(Json(serde_json::json!({"path": path, "entries": entries})).into_response())
}
