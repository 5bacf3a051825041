//! Several nodes, one database: a session lives in the memory of the node that created it, and
//! any node routes a request for it there. Each node writes its URL and a heartbeat to the
//! `nodes` table; a node asked about a session (or an execution) that another live node holds
//! forwards the request to it with the caller's own key, and streams the answer back (Server-
//! Sent Events included). A forwarded request carries `X-Brig-Forwarded` and is never forwarded
//! again, so two nodes that disagree cannot bounce a request between them.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use std::time::Duration;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use brig_store::now_ms;

/// Header marking a request one node forwarded to another.
pub const FORWARDED: &str = "x-brig-forwarded";
/// How often a node writes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A node silent for this long is taken as down.
const NODE_DEAD_AFTER_MS: i64 = 30_000;

/// Writes this node's heartbeat now and every [`HEARTBEAT`].
pub async fn heartbeat(state: AppState, url: String) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        if state.inner.shutdown.is_cancelled() {
            return;
        }
        if let Err(e) = state
            .inner
            .store
            .heartbeat_node(&state.inner.node_id, &url, now_ms())
            .await
        {
            tracing::warn!(error = %e, "cannot write this node's heartbeat");
        }
    }
}

/// What a handler needs to forward its request: method, original path and query, and whether
/// it was forwarded already.
pub struct Hop {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for Hop {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Hop, Self::Rejection> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |OriginalUri(uri)| uri);
        Ok(Hop {
            method: parts.method.clone(),
            path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            headers: parts.headers.clone(),
        })
    }
}

impl Hop {
    /// The answer of the node holding session `id`, if that is another node; `body` (its
    /// content type and bytes) is made only then.
    pub async fn session(
        &self,
        state: &AppState,
        caller: &Caller,
        id: &str,
        body: impl FnOnce() -> Option<(&'static str, Bytes)>,
    ) -> Result<Option<Response>, ApiError> {
        match route_session(state, caller, &self.headers, id).await? {
            Route::Local => Ok(None),
            Route::Node(url) => Ok(Some(self.send(state, caller, &url, body()).await?)),
        }
    }

    /// The answer of the node running execution `id`, if that is another node.
    pub async fn execution(
        &self,
        state: &AppState,
        caller: &Caller,
        id: &str,
    ) -> Result<Option<Response>, ApiError> {
        match route_execution(state, caller, &self.headers, id).await? {
            Route::Local => Ok(None),
            Route::Node(url) => Ok(Some(self.send(state, caller, &url, None).await?)),
        }
    }

    async fn send(
        &self,
        state: &AppState,
        caller: &Caller,
        node: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Response, ApiError> {
        forward(
            state,
            caller,
            node,
            self.method.clone(),
            &self.path_and_query,
            body,
        )
        .await
    }
}

/// Where a request should go.
pub enum Route {
    /// Here.
    Local,
    /// To this node's URL.
    Node(String),
}

/// Where requests about session `id` go: here if this node holds it (or nobody else does: the
/// local path then answers 404 or 409), else to the live node that holds it.
pub async fn route_session(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: &str,
) -> Result<Route, ApiError> {
    if state
        .inner
        .sessions_here
        .lock()
        .expect("sessions")
        .contains_key(id)
    {
        return Ok(Route::Local);
    }
    let Some(record) = state.inner.store.get_session(&caller.tenant_id, id).await? else {
        return Ok(Route::Local);
    };
    if record.status != "active" {
        return Ok(Route::Local);
    }
    route_to(state, headers, &record.node_id).await
}

/// Where requests about execution `id` go: to the node running it, if that is another live
/// node and the execution has not finished (a finished one is answered from the database).
pub async fn route_execution(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: &str,
) -> Result<Route, ApiError> {
    if state.inner.live.get(&caller.tenant_id, id).is_some() {
        return Ok(Route::Local);
    }
    let Some(record) = state
        .inner
        .store
        .get_execution(&caller.tenant_id, id)
        .await?
    else {
        return Ok(Route::Local);
    };
    if record.finished_at_ms.is_some() {
        return Ok(Route::Local);
    }
    route_to(state, headers, &record.node_id).await
}

async fn route_to(state: &AppState, headers: &HeaderMap, node_id: &str) -> Result<Route, ApiError> {
    if node_id == state.inner.node_id || headers.contains_key(FORWARDED) {
        return Ok(Route::Local);
    }
    let node = state.inner.store.get_node(node_id).await?;
    match node {
        Some(node) if now_ms() - node.last_seen_ms <= NODE_DEAD_AFTER_MS => {
            Ok(Route::Node(node.url))
        }
        _ => Err(ApiError::conflict(format!(
            "it lives on node `{node_id}`, which is not answering"
        ))),
    }
}

/// Sends the request to `node` as `caller` and streams its answer back unchanged.
pub async fn forward(
    state: &AppState,
    caller: &Caller,
    node: &str,
    method: Method,
    path_and_query: &str,
    body: Option<(&'static str, Bytes)>,
) -> Result<Response, ApiError> {
    let secret = caller
        .secret
        .as_ref()
        .ok_or_else(|| ApiError::internal("a request to forward has no API key"))?;
    let mut request = state
        .inner
        .forwarder
        .request(
            method,
            format!("{}{path_and_query}", node.trim_end_matches('/')),
        )
        .bearer_auth(&secret.0)
        .header(FORWARDED, &state.inner.node_id);
    if let Some((content_type, bytes)) = body {
        request = request
            .header(header::CONTENT_TYPE, content_type)
            .body(bytes);
    }
    let answer = request.send().await.map_err(|e| {
        ApiError::unavailable(format!("cannot reach the node holding it ({node}): {e}"))
    })?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in [
        header::CONTENT_TYPE,
        header::RETRY_AFTER,
        header::CACHE_CONTROL,
    ] {
        if let Some(value) = answer.headers().get(name.as_str())
            && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
        {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(ApiError::internal)
}
