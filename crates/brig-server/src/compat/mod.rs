//! The Piston v2 and Judge0 CE compatible APIs over HTTP (the translation itself is the
//! `brig-compat` crate; its README documents the routes, the mappings and the differences).
//!
//! - [`piston`]: `GET /api/v2/runtimes`, `POST /api/v2/execute`.
//! - [`judge0`]: `/about`, `/config_info`, `/languages`, `/statuses`, `/submissions` (single,
//!   batch, `wait`, `fields`, `base64_encoded`, delete).
//! - [`queue`]: the worker that runs Judge0's `wait=false` submissions from the store's
//!   persisted queue, so they survive a restart.
//!
//! Every run goes through [`crate::routes::execute::Admitted`], the one-shot path of Brig's own
//! API: the same admission control, persistence, audit, metrics and plan caps. These routes are
//! plain axum routes, not in the OpenAPI document, which describes Brig's own API.
//!
//! Auth: the same API keys (`Authorization: Bearer`, or the `X-Auth-Token` header Judge0's
//! clients send); without a key, the tenant named by `compat_anonymous_tenant` serves the
//! request if its `anonymous_compat` is on (drop-in use on a private network). Errors keep each
//! API's shape: Piston's `{"message"}`, Judge0's `{"error"}` (and its 422 field hash).

pub mod judge0;
pub mod piston;
pub mod queue;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use brig_compat::piston::Versions;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::auth::{Caller, client_addr};
use crate::error::ApiError;
use crate::state::AppState;

/// What the compatibility routes share: the host's language versions (detected once per
/// process, off the async threads), the queue worker's wake-up, and what shutdown needs to
/// know of the queue's runs.
#[derive(Default)]
pub struct Compat {
    versions: OnceCell<Arc<Versions>>,
    /// Notified when a submission is queued on this node, so the worker does not wait for its
    /// next poll.
    pub wake: Notify,
    /// Queued submissions this node's worker is claiming or running (see [`queue::InFlight`]):
    /// shutdown waits for them as it does for live executions.
    in_flight: AtomicUsize,
    /// Cancelled when the shutdown grace period is over: queue runs still going are then
    /// recorded `cancelled` (Judge0's Internal Error).
    pub abort: CancellationToken,
}

impl Compat {
    /// Queued submissions being claimed or run on this node now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The host's version of each available language (detected on first use).
    pub async fn versions(&self, state: &AppState) -> Arc<Versions> {
        self.versions
            .get_or_init(|| async {
                let languages = state.inner.engine.languages.clone();
                let detected =
                    tokio::task::spawn_blocking(move || Versions::detect(&languages)).await;
                Arc::new(detected.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "cannot detect language versions");
                    Versions::default()
                }))
            })
            .await
            .clone()
    }
}

/// The compatibility routes, mounted beside Brig's own by `routes::app`.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v2/runtimes", get(piston::runtimes))
        .route("/api/v2/execute", post(piston::execute))
        .route("/about", get(judge0::about))
        .route("/config_info", get(judge0::config_info))
        .route("/languages", get(judge0::languages))
        .route("/languages/{id}", get(judge0::language))
        .route("/statuses", get(judge0::statuses))
        .route("/submissions", post(judge0::create))
        .route(
            "/submissions/batch",
            get(judge0::get_batch).post(judge0::create_batch),
        )
        .route(
            "/submissions/{token}",
            get(judge0::get_one).delete(judge0::delete),
        )
}

/// Starts the background parts: the version detection (so the first request does not wait for
/// it) and the queue worker, which stops when the server shuts down.
pub fn start(state: &AppState) {
    let detect = state.clone();
    tokio::spawn(async move {
        detect.inner.compat.versions(&detect).await;
    });
    tokio::spawn(queue::work(state.clone()));
}

/// The caller of a compatibility route: an API key's, or the anonymous tenant's.
pub struct CompatCaller(pub Caller);

fn has_key(parts: &Parts) -> bool {
    parts.headers.contains_key(header::AUTHORIZATION) || parts.headers.contains_key("x-auth-token")
}

/// The caller the anonymous tenant stands for, if one is configured and allowed.
async fn anonymous(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let refused = || {
        ApiError::unauthorized(
            "missing API key: send `Authorization: Bearer <key>` or `X-Auth-Token: <key>`",
        )
    };
    let Some(name) = &state.inner.config.compat_anonymous_tenant else {
        return Err(refused());
    };
    let tenant = state
        .inner
        .store
        .tenant_by_name(name)
        .await?
        .filter(|t| t.anonymous_compat)
        .ok_or_else(refused)?;
    let (plan_name, plan) = state.plan(&tenant.plan);
    state.check_rate(&tenant.id, &plan)?;
    Ok(Caller {
        key_id: ANONYMOUS_KEY.to_string(),
        tenant_id: tenant.id,
        tenant_name: tenant.name,
        plan_name,
        plan,
        admin: false,
        client_addr: client_addr(parts),
        secret: None,
    })
}

/// The `key_id` recorded (audit) for anonymous compatibility requests.
pub const ANONYMOUS_KEY: &str = "anonymous";

impl FromRequestParts<AppState> for CompatCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<CompatCaller, ApiError> {
        if has_key(parts) {
            return Caller::from_request_parts(parts, state)
                .await
                .map(CompatCaller);
        }
        anonymous(parts, state).await.map(CompatCaller)
    }
}

/// A response with `body`, and `Retry-After` when the error had one.
fn shaped(error: &ApiError, body: Value) -> Response {
    let mut response = (error.status, Json(body)).into_response();
    if let Some(seconds) = error.retry_after {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&seconds.to_string()).expect("digits"),
        );
    }
    response
}

/// Brig's error in Piston's shape: `{"message"}`, Brig's status (Piston answers 400 for its own
/// request errors; 401, 429 and 5xx keep their meaning).
pub fn piston_error(error: ApiError) -> Response {
    let body = serde_json::json!({ "message": error.message });
    shaped(&error, body)
}

/// Brig's error in Judge0's shape: `{"error"}` with Brig's status.
pub fn judge0_error(error: ApiError) -> Response {
    let body = serde_json::json!({ "error": error.message });
    shaped(&error, body)
}

/// A status code from brig-compat's numbers.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

/// RFC 3339 UTC with milliseconds (`2024-05-01T12:00:00.123Z`), the format Judge0's clients
/// parse (`%Y-%m-%dT%H:%M:%S.%fZ`).
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_from_unix_ms() {
        assert_eq!(super::rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339_ms(1_709_251_199_123),
            "2024-02-29T23:59:59.123Z"
        );
        assert_eq!(
            super::rfc3339_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
