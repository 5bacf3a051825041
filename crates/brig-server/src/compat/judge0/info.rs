//! Judge0's information routes: `/about`, `/config_info` (the deployment's `[judge0]`
//! configuration lowered to the caller's plan), `/languages`, `/languages/{id}` and
//! `/statuses`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use brig_compat::judge0::{self, Judge0Config, Judge0Error};

use super::{Answer, Authed, authed};
use crate::plans::Plan;
use crate::state::AppState;

/// The deployment's Judge0 configuration with its maxima and defaults lowered to `plan`.
pub fn effective_config(config: &Judge0Config, plan: &Plan) -> Judge0Config {
    let mut c = config.clone();
    let secs = |ms: u64| ms as f64 / 1000.0;
    c.max_wall_time_limit = c.max_wall_time_limit.min(secs(plan.max_timeout_ms));
    c.wall_time_limit = c.wall_time_limit.min(c.max_wall_time_limit);
    c.max_cpu_time_limit = c.max_cpu_time_limit.min(secs(plan.max_cpu_time_ms));
    c.cpu_time_limit = c.cpu_time_limit.min(c.max_cpu_time_limit);
    c.max_memory_limit = c.max_memory_limit.min(plan.max_memory_bytes / 1024);
    c.memory_limit = c.memory_limit.min(c.max_memory_limit);
    c.max_max_processes_and_or_threads = c
        .max_max_processes_and_or_threads
        .min(u64::from(plan.max_pids));
    c.max_processes_and_or_threads = c
        .max_processes_and_or_threads
        .min(c.max_max_processes_and_or_threads);
    c.max_max_file_size = c.max_max_file_size.min(plan.max_output_bytes / 1024);
    c.max_file_size = c.max_file_size.min(c.max_max_file_size);
    c.allow_enable_network &= plan.allow_network;
    c.enable_network &= c.allow_enable_network;
    c
}

/// `GET /about`.
pub async fn about(caller: Authed) -> Answer {
    authed(caller)?;
    Ok(Json(judge0::about()).into_response())
}

/// `GET /config_info`: the deployment's configuration as it applies to this caller.
pub async fn config_info(State(state): State<AppState>, caller: Authed) -> Answer {
    let caller = authed(caller)?;
    let config = effective_config(&state.inner.config.judge0, &caller.plan);
    Ok(Json(judge0::config_info(&config)).into_response())
}

/// `GET /languages`: the Judge0 languages available on this host.
pub async fn languages(State(state): State<AppState>, caller: Authed) -> Answer {
    authed(caller)?;
    let versions = state.inner.compat.versions(&state).await;
    Ok(Json(judge0::languages::list(Some(&versions))).into_response())
}

/// `GET /languages/{id}`.
pub async fn language(
    State(state): State<AppState>,
    caller: Authed,
    Path(id): Path<String>,
) -> Answer {
    authed(caller)?;
    let versions = state.inner.compat.versions(&state).await;
    let found = id.parse::<u32>().ok().and_then(|id| {
        versions
            .get(judge0::Judge0Language::by_id(id)?.brig_id)
            .and_then(|_| {
                judge0::languages::detail(id, &state.inner.engine.languages, Some(&versions))
            })
    });
    match found {
        Some(language) => Ok(Json(language).into_response()),
        None => Err(Judge0Error::NotFound.into()),
    }
}

/// `GET /statuses`.
pub async fn statuses(caller: Authed) -> Answer {
    authed(caller)?;
    Ok(Json(judge0::languages::statuses()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_lowers_judge0s_maxima() {
        let plans = crate::plans::builtin();
        let c = effective_config(&Judge0Config::default(), &plans["free"]);
        assert_eq!(c.max_memory_limit, 256 * 1024);
        assert_eq!(c.max_wall_time_limit, 10.0);
        assert_eq!(c.wall_time_limit, 10.0);
        assert_eq!(c.max_cpu_time_limit, 10.0);
        assert_eq!(c.max_max_processes_and_or_threads, 32);
        assert_eq!(c.max_processes_and_or_threads, 32);
        assert!(!c.allow_enable_network);
        let premium = effective_config(&Judge0Config::default(), &plans["premium"]);
        assert_eq!(premium, Judge0Config::default());
    }
}
