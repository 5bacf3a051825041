//! `Idempotency-Key` on execute and session create: the first answer to a key is stored (per
//! tenant, encrypted like any result) and replayed for a repeat with the same body; a repeat
//! with a different body is refused (422), and one that arrives while the first still runs
//! gets 409. The same scheme as Stripe's and the IETF draft's.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use brig_store::StoredResponse;
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{AppState, IdempotencyClaim};

/// What to do with a request.
pub enum Replay {
    /// Answer with the stored response.
    Answer(Response),
    /// Run it; store the answer under the claim (if a key was sent).
    Proceed(Option<Claim>),
}

/// A claimed key: store the answer when done.
pub struct Claim {
    tenant_id: String,
    key: String,
    request_hash: String,
    _claim: IdempotencyClaim,
}

impl Claim {
    /// Stores the answer for repeats.
    pub async fn store(
        self,
        state: &AppState,
        status: StatusCode,
        body: &serde_json::Value,
    ) -> Result<(), ApiError> {
        let stored = StoredResponse {
            request_hash: self.request_hash,
            status: status.as_u16(),
            body: serde_json::to_vec(body).map_err(ApiError::internal)?,
        };
        state
            .inner
            .store
            .idempotency_put(&self.tenant_id, &self.key, &stored)
            .await?;
        Ok(())
    }
}

/// Looks the request's key up.
pub async fn begin<T: Serialize>(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: &T,
) -> Result<Replay, ApiError> {
    let Some(key) = headers.get("idempotency-key") else {
        return Ok(Replay::Proceed(None));
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| ApiError::invalid("Idempotency-Key: 1 to 255 visible ASCII characters"))?;
    let request_hash =
        brig_store::sha256_hex(&serde_json::to_vec(body).map_err(ApiError::internal)?);
    let claim = state.claim_idempotency(&caller.tenant_id, key)?;
    if let Some(stored) = state
        .inner
        .store
        .idempotency_get(&caller.tenant_id, key)
        .await?
    {
        if stored.request_hash != request_hash {
            return Err(ApiError::invalid(
                "Idempotency-Key was already used with a different request body",
            ));
        }
        let status = StatusCode::from_u16(stored.status).map_err(ApiError::internal)?;
        let body: serde_json::Value =
            serde_json::from_slice(&stored.body).map_err(ApiError::internal)?;
        let mut response = (status, Json(body)).into_response();
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(Replay::Answer(response));
    }
    Ok(Replay::Proceed(Some(Claim {
        tenant_id: caller.tenant_id.clone(),
        key: key.to_string(),
        request_hash,
        _claim: claim,
    })))
}
