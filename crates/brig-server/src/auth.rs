//! Who is calling: `Authorization: Bearer <key>` (or `X-Auth-Token`, which Judge0 clients
//! send) resolved to a key, its tenant and its plan. Only a hash of each key is stored; a
//! resolved key is cached for a few seconds so that a busy client does not cost a database
//! round trip per request (a revoked key stops working here at once, on other nodes within the
//! cache's lifetime). Every authenticated request also takes one token of its tenant's rate.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::ApiError;
use crate::plans::Plan;
use crate::state::AppState;

/// How long a resolved key is trusted without asking the database again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id.
    pub key_id: String,
    /// The tenant's id.
    pub tenant_id: String,
    /// The tenant's name.
    pub tenant_name: String,
    /// The plan's name.
    pub plan_name: String,
    /// The plan.
    pub plan: Plan,
    /// Whether the key is an admin key.
    pub admin: bool,
    /// The client's address.
    pub client_addr: Option<String>,
    /// The key itself, to forward a request to the node holding a session (never logged or
    /// stored).
    pub secret: Option<Secret>,
}

/// An API key held in memory; `Debug` does not show it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// An authenticated admin.
pub struct Admin(pub Caller);

fn bearer(parts: &Parts) -> Option<String> {
    let headers = &parts.headers;
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(|s| s.trim().to_string());
    }
    headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The client's address, when the server was started with connection info.
pub fn client_addr(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.to_string())
}

impl AppState {
    /// Resolves `secret` (cached), or 401.
    pub async fn authenticate(&self, secret: &str) -> Result<Caller, ApiError> {
        if let Some((caller, at)) = self.inner.key_cache.lock().expect("cache").get(secret)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(caller.clone());
        }
        let (key, tenant) = self
            .inner
            .store
            .authenticate(secret)
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("the API key is not valid (unknown or revoked)")
            })?;
        let (plan_name, plan) = self.plan(&tenant.plan);
        let caller = Caller {
            key_id: key.id,
            tenant_id: tenant.id,
            tenant_name: tenant.name,
            plan_name,
            plan,
            admin: key.admin,
            client_addr: None,
            secret: None,
        };
        let mut cache = self.inner.key_cache.lock().expect("cache");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(secret.to_string(), (caller.clone(), Instant::now()));
        Ok(caller)
    }

    /// Forgets cached keys (after a revocation).
    pub fn forget_keys(&self) {
        self.inner.key_cache.lock().expect("cache").clear();
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let secret = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>`")
        })?;
        let mut caller = state.authenticate(&secret).await?;
        state.check_rate(&caller.tenant_id, &caller.plan)?;
        caller.client_addr = client_addr(parts);
        caller.secret = Some(Secret(secret));
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.admin {
            return Err(ApiError::forbidden("this route needs an admin key"));
        }
        Ok(Admin(caller))
    }
}
