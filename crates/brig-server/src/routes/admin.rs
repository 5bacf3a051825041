//! Admin routes: tenants, their API keys, and the audit trail. Admin keys only.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use brig_store::{ApiKey, AuditEvent, AuditFilter, Tenant};

use crate::api::{AuditQuery, CreateKeyRequest, CreateTenantRequest, NewKey};
use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A tenant name: 1–64 of `[A-Za-z0-9._-]`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Creates a tenant.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "admin",
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Created: `{id, name, plan, anonymous_compat, created_at_ms}`", body = Object),
        (status = 409, description = "Name taken", body = ErrorBody),
        (status = 422, description = "Invalid name or unknown plan", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    Admin(admin): Admin,
    body: Result<Json<CreateTenantRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    let Json(body) = body?;
    if !valid_name(&body.name) {
        return Err(ApiError::invalid(
            "name: 1 to 64 characters of letters, digits, `.`, `_` and `-`",
        ));
    }
    if !state.inner.config.plans.contains_key(&body.plan) {
        let known: Vec<&str> = state
            .inner
            .config
            .plans
            .keys()
            .map(String::as_str)
            .collect();
        return Err(ApiError::invalid(format!(
            "plan: unknown plan `{}` (one of: {})",
            body.plan,
            known.join(", ")
        )));
    }
    let mut tenant = state
        .inner
        .store
        .create_tenant(&body.name, &body.plan)
        .await?;
    if body.anonymous_compat {
        state
            .inner
            .store
            .set_tenant_anonymous(&tenant.id, true)
            .await?;
        tenant.anonymous_compat = true;
    }
    state
        .audit_action(
            &admin,
            "tenant.create",
            None,
            None,
            serde_json::json!({"tenant": tenant.id, "name": tenant.name, "plan": tenant.plan}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// Every tenant.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "admin",
    responses((status = 200, description = "`[{id, name, plan, ...}]`", body = Object)),
    security(("bearer" = []))
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(state.inner.store.list_tenants().await?))
}

/// Creates an API key for a tenant; the key is shown only in this answer.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{id}/keys",
    tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "The new key", body = NewKey),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(tenant_id): Path<String>,
    body: Option<Json<CreateKeyRequest>>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let request = body.map(|Json(b)| b).unwrap_or_default();
    state
        .inner
        .store
        .get_tenant(&tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant `{tenant_id}`")))?;
    let (key, secret) = state
        .inner
        .store
        .create_key(&tenant_id, request.admin)
        .await?;
    state
        .audit_action(
            &admin,
            "key.create",
            None,
            None,
            serde_json::json!({"tenant": tenant_id, "key": key.id, "admin": key.admin}),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(NewKey {
            id: key.id,
            key: secret,
            tenant_id,
            admin: key.admin,
        }),
    ))
}

/// Query of `GET /api/v1/keys`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    /// Only this tenant's keys.
    pub tenant_id: Option<String>,
}

/// API keys (never their secrets).
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "admin",
    params(KeysQuery),
    responses((status = 200, description = "`[{id, tenant_id, prefix, admin, ...}]`", body = Object)),
    security(("bearer" = []))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<KeysQuery>, QueryRejection>,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    let Query(query) = query?;
    Ok(Json(
        state
            .inner
            .store
            .list_keys(query.tenant_id.as_deref())
            .await?,
    ))
}

/// Revokes an API key.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.inner.store.revoke_key(&id).await? {
        return Err(ApiError::not_found(format!(
            "no key `{id}` (or already revoked)"
        )));
    }
    state.forget_keys();
    state
        .audit_action(
            &admin,
            "key.revoke",
            None,
            None,
            serde_json::json!({"key": id}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit trail, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "admin",
    params(AuditQuery),
    responses((status = 200, description = "`{events: [...]}`", body = Object)),
    security(("bearer" = []))
)]
pub async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query?;
    if query.limit.is_some_and(|l| l == 0 || l > 1000) {
        return Err(ApiError::invalid("limit: must be between 1 and 1000"));
    }
    let events: Vec<AuditEvent> = state
        .inner
        .store
        .list_audit(&AuditFilter {
            tenant_id: query.tenant_id,
            since_ms: query.since_ms,
            until_ms: query.until_ms,
            limit: query.limit,
        })
        .await?;
    Ok(Json(serde_json::json!({"events": events})))
}
