//! `POST /api/v1/execute`: a one-shot run. The request is checked (language, files, limits
//! against the plan), admitted (tenant concurrency, bounded queue), persisted, run by the
//! engine through its helper on a blocking thread, and its final state persisted before the
//! answer.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use brig_core::{LimitOverrides, RunResult, TierChoice};
use brig_engine::RunRequest;
use brig_engine::zygote::{ZygoteError, ZygotePool};
use brig_jail::{SpecFile, Stdin};

use super::idempotency::{self, Replay};
use crate::api::ExecuteRequest;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::record::Recorder;
use crate::state::AppState;

fn tier(name: Option<&str>) -> Result<TierChoice, ApiError> {
    Ok(match name {
        None | Some("namespace") => TierChoice::Namespace,
        Some("process") => TierChoice::Process,
        Some("wasm") => TierChoice::Wasm,
        Some("auto") => TierChoice::Auto,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "tier: unknown tier `{other}` (namespace, process, wasm, auto)"
            )));
        }
    })
}

/// Turns the body into an engine request, or a 4xx naming what is wrong.
fn run_request(caller: &Caller, body: &ExecuteRequest) -> Result<RunRequest, ApiError> {
    let asked: LimitOverrides = body.limits.as_ref().map(Into::into).unwrap_or_default();
    let limits = caller
        .plan
        .cap(&caller.plan_name, &asked)
        .map_err(|e| ApiError::invalid(format!("limits.{e}")))?;
    if body.network && !caller.plan.allow_network {
        return Err(ApiError::forbidden(format!(
            "network: plan `{}` does not allow networking",
            caller.plan_name
        )));
    }
    let mut files = Vec::with_capacity(body.files.len());
    for (index, file) in body.files.iter().enumerate() {
        files.push(SpecFile {
            path: file.path.clone(),
            content: file.bytes(index)?,
            mode: 0o644,
        });
    }
    Ok(RunRequest {
        language: body.language.clone(),
        source: body.code.as_bytes().to_vec(),
        files,
        args: body.args.clone(),
        stdin: body
            .stdin
            .as_ref()
            .map_or(Stdin::Null, |s| Stdin::Bytes(s.as_bytes().to_vec())),
        limits,
        compile_limits: brig_core::LimitOverrides::default(),
        network: body.network,
        tier: tier(body.tier.as_deref())?,
    })
}

/// Runs a program once.
#[utoipa::path(
    post,
    path = "/api/v1/execute",
    tag = "executions",
    request_body = ExecuteRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a repeated request")),
    responses(
        (status = 200, description = "The result object, with its `id`", body = Object),
        (status = 422, description = "Invalid request (field named)", body = ErrorBody),
        (status = 429, description = "Over a rate or concurrency limit", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<ExecuteRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let replay = idempotency::begin(&state, &caller, &headers, &body).await?;
    let claim = match replay {
        Replay::Answer(response) => return Ok(response),
        Replay::Proceed(claim) => claim,
    };
    let (status, value) = run_one_shot(&state, &caller, &body).await?;
    if let Some(claim) = claim {
        claim.store(&state, status, &value).await?;
    }
    Ok((status, Json(value)).into_response())
}

/// The one-shot path: returns the HTTP status and the result object (with `id`).
pub async fn run_one_shot(
    state: &AppState,
    caller: &Caller,
    body: &ExecuteRequest,
) -> Result<(axum::http::StatusCode, serde_json::Value), ApiError> {
    let run = Admitted::new(state, caller, run_request(caller, body)?)?;
    let ticket = state.reserve(&caller.tenant_id, &caller.plan)?;
    let recorder = Recorder::begin(
        state,
        caller,
        None,
        &run.language.language.id,
        &body.code,
        run.limits.memory_bytes,
    )
    .await?;
    let (_, value) = run.run(state, ticket, &recorder).await?;
    Ok((axum::http::StatusCode::OK, value))
}

/// A run whose language is known and available and whose limits are resolved and capped by the
/// caller's plan: what the one-shot route and the compatibility routes (Piston, Judge0 and its
/// queue) run, so that every run is admitted, persisted, audited and capped alike.
pub struct Admitted {
    /// The language.
    pub language: brig_engine::languages::Resolved,
    /// The engine request (its limits already the resolved ones).
    pub request: RunRequest,
    /// The limits it runs under: the language's defaults, the request's overrides, the plan's
    /// caps.
    pub limits: brig_core::Limits,
    /// Runs in a row (Judge0's `number_of_runs`); the answer is the last run with the largest
    /// wall time, CPU time and memory of all of them. At least 1.
    pub runs: u64,
}

impl Admitted {
    /// Resolves `request`'s language (422 when unknown or unavailable here) and its limits.
    pub fn new(
        state: &AppState,
        caller: &Caller,
        mut request: RunRequest,
    ) -> Result<Admitted, ApiError> {
        let language = state
            .inner
            .engine
            .languages
            .find(&request.language)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "language: unknown language `{}` (see GET /api/v1/languages)",
                    request.language
                ))
            })?;
        if let Some(reason) = &language.unavailable {
            return Err(ApiError::invalid(format!(
                "language: `{}` is unavailable on this server: {reason}",
                language.language.id
            )));
        }
        let mut limits = language.limits.with(&request.limits);
        caller.plan.clamp(&mut limits);
        request.limits = LimitOverrides::from(&limits);
        Ok(Admitted {
            language,
            request,
            limits,
            runs: 1,
        })
    }

    /// Waits for a running slot with `ticket`, runs (on a blocking thread, `runs` times), and
    /// records the end through `recorder`: returns the result and the result object (with
    /// `id`). A refusal found only when running (a tier not usable) or a shutdown before a slot
    /// was free is recorded `cancelled` and answered as the error.
    pub async fn run(
        self,
        state: &AppState,
        ticket: crate::state::Ticket,
        recorder: &Recorder,
    ) -> Result<(RunResult, serde_json::Value), ApiError> {
        let result = match ticket.start().await {
            Ok(slot) => {
                recorder.running().await?;
                let engine = state.inner.engine.clone();
                let Admitted {
                    language,
                    request,
                    runs,
                    ..
                } = self;
                // A Python run (once) forked from a warm zygote; if the zygote cannot serve it,
                // the same run in a fresh sandbox.
                let zygotes = state
                    .inner
                    .zygotes
                    .as_ref()
                    .filter(|_| runs <= 1 && ZygotePool::accepts(&engine, &request));
                let forked = match zygotes {
                    Some(zygotes) => match zygotes.run(&engine, &request, None).await {
                        Ok(result) => Some(result),
                        Err(ZygoteError::Engine(e)) => return refuse(recorder, e.into()).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "zygote run failed; running in a fresh sandbox");
                            None
                        }
                    },
                    None => None,
                };
                if let Some(result) = forked {
                    drop(slot);
                    let value = recorder.finish(&result).await?;
                    return Ok((result, value));
                }
                let outcome = tokio::task::spawn_blocking(
                    move || -> Result<RunResult, brig_engine::EngineError> {
                        let _slot = slot;
                        let mut merged: Option<RunResult> = None;
                        for _ in 0..runs.max(1) {
                            let result = engine.run_language(
                                &language,
                                &request,
                                &mut brig_jail::Discard,
                            )?;
                            let ok = result.status == brig_core::Status::Ok;
                            merged = Some(match merged {
                                None => result,
                                Some(before) => RunResult {
                                    wall_ms: before.wall_ms.max(result.wall_ms),
                                    cpu_ms: before.cpu_ms.max(result.cpu_ms),
                                    memory_peak_bytes: before
                                        .memory_peak_bytes
                                        .max(result.memory_peak_bytes),
                                    ..result
                                },
                            });
                            // A run that did not succeed is the verdict; the others would repeat it.
                            if !ok {
                                break;
                            }
                        }
                        Ok(merged.expect("at least one run"))
                    },
                )
                .await;
                match outcome {
                    Ok(Ok(result)) => result,
                    // A refusal found only now (e.g. a tier not usable): the caller's mistake.
                    Ok(Err(e)) => return refuse(recorder, e.into()).await,
                    Err(join) => RunResult::internal_error(
                        brig_core::Tier::Namespace,
                        format!("the run's thread failed: {join}"),
                    ),
                }
            }
            Err(refused) => return refuse(recorder, refused).await,
        };
        let value = recorder.finish(&result).await?;
        Ok((result, value))
    }
}

/// A run refused once admitted (no slot before shutdown, a tier not usable here): recorded
/// `cancelled` with the refusal's message, and answered as the error.
async fn refuse(
    recorder: &Recorder,
    error: ApiError,
) -> Result<(RunResult, serde_json::Value), ApiError> {
    let result = RunResult::cancelled(brig_core::Tier::Namespace, &error.message);
    recorder.finish(&result).await?;
    Err(error)
}
