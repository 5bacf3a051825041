//! The router: every route of the public contract, registered together with its OpenAPI
//! description (utoipa-axum), so the document at `/api/v1/openapi.json` cannot miss one.
//! Layers: a body size limit (413), a timeout on every request that is not an execution or an
//! event stream, and HTTP metrics by matched route.

pub mod admin;
pub mod execute;
pub mod executions;
pub mod files;
pub mod idempotency;
pub mod sessions;
pub mod system;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::{Duration, Instant};
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The document's fixed parts; paths are added by the routers.
#[derive(OpenApi)]
#[openapi(
    info(title = "Brig", description = "Run untrusted code safely and fast."),
    paths(files::put, files::get, files::delete),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Counts and times every request by its matched route.
async fn http_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.inner.metrics;
    metrics
        .http_requests
        .with_label_values(&[&route, response.status().as_str()])
        .inc();
    metrics
        .http_seconds
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// What a timed-out request gets.
fn timeout_layer(limit: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limit)
}

/// The whole API and its OpenAPI document.
pub fn app(state: AppState) -> Router {
    let config = &state.inner.config;
    let control_timeout = Duration::from_millis(config.request_timeout_ms);
    // An execution may take as long as the largest plan allows, plus a compile step.
    let longest = config
        .plans
        .values()
        .map(|p| p.max_timeout_ms)
        .max()
        .unwrap_or(0);
    let run_timeout = Duration::from_millis(longest * 2 + config.request_timeout_ms + 60_000);

    let control = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .routes(routes!(sessions::create, sessions::list))
        .routes(routes!(sessions::batch))
        .routes(routes!(sessions::get, sessions::delete))
        .routes(routes!(files::list))
        .routes(routes!(executions::get))
        .routes(routes!(executions::cancel))
        .routes(routes!(admin::create_tenant, admin::list_tenants))
        .routes(routes!(admin::create_key))
        .routes(routes!(admin::list_keys))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(admin::audit))
        .routes(routes!(system::languages))
        .routes(routes!(system::stats))
        .routes(routes!(system::metrics))
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .layer(timeout_layer(control_timeout));
    let runs = OpenApiRouter::<AppState>::new()
        .routes(routes!(execute::execute))
        .routes(routes!(executions::execute))
        .layer(timeout_layer(run_timeout));
    // Event streams last as long as their execution.
    let streams = OpenApiRouter::<AppState>::new().routes(routes!(executions::events));

    let (router, document) = control.merge(runs).merge(streams).split_for_parts();
    let document = std::sync::Arc::new(document);
    router
        // A file path may have several segments, which one OpenAPI `{path}` cannot express.
        .route(
            "/api/v1/sessions/{id}/files/{*path}",
            axum::routing::put(files::put)
                .get(files::get)
                .delete(files::delete)
                .layer(timeout_layer(control_timeout)),
        )
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move { axum::Json(document.as_ref().clone()).into_response() }
            }),
        )
        // Piston and Judge0 compatibility: plain routes, outside Brig's OpenAPI document.
        .merge(crate::compat::routes().layer(timeout_layer(run_timeout)))
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), http_metrics))
        .with_state(state)
}
