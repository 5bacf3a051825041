//! A Judge0 submission as persisted beside its execution row, and read back: the validated
//! request normalised (every default applied, text base64) with the key that made it, and the
//! submission in its current state (queued, running, or finished with Brig's result).

use brig_compat::encoding::encode_base64;
use brig_compat::judge0::{Judge0Config, Prepared, Submission, SubmissionRequest};
use brig_core::RunResult;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::compat::rfc3339_ms;
use crate::error::ApiError;
use crate::state::AppState;

/// A configuration that accepts every stored (already validated) request.
fn permissive() -> Judge0Config {
    const BIG: u64 = 1 << 40;
    Judge0Config {
        enable_compiler_options: true,
        enable_command_line_arguments: true,
        enable_callbacks: true,
        enable_additional_files: true,
        max_cpu_time_limit: BIG as f64,
        max_cpu_extra_time: BIG as f64,
        max_wall_time_limit: BIG as f64,
        max_memory_limit: BIG,
        max_stack_limit: BIG,
        max_max_processes_and_or_threads: BIG,
        allow_enable_per_process_and_thread_time_limit: true,
        allow_enable_per_process_and_thread_memory_limit: true,
        max_max_file_size: BIG,
        max_number_of_runs: BIG,
        allow_enable_network: true,
        ..Judge0Config::default()
    }
}

/// What is persisted beside the row: the request with every default applied, text base64,
/// and the key that made it (for the audit of a queued run).
pub fn persisted(caller: &Caller, p: &Prepared) -> Value {
    let b64 = |bytes: &[u8]| Some(encode_base64(bytes));
    let normal = SubmissionRequest {
        source_code: b64(&p.source_code),
        language_id: Some(f64::from(p.language.id)),
        compiler_options: None,
        command_line_arguments: p.command_line_arguments.clone(),
        number_of_runs: Some(p.number_of_runs as f64),
        stdin: b64(&p.stdin),
        expected_output: p.expected_output.as_deref().and_then(b64),
        cpu_time_limit: Some(p.cpu_time_limit),
        cpu_extra_time: Some(p.cpu_extra_time),
        wall_time_limit: Some(p.wall_time_limit),
        memory_limit: Some(p.memory_limit as f64),
        stack_limit: Some(p.stack_limit as f64),
        max_processes_and_or_threads: Some(p.max_processes_and_or_threads as f64),
        enable_per_process_and_thread_time_limit: Some(p.enable_per_process_and_thread_time_limit),
        enable_per_process_and_thread_memory_limit: Some(
            p.enable_per_process_and_thread_memory_limit,
        ),
        max_file_size: Some(p.max_file_size as f64),
        redirect_stderr_to_stdout: Some(p.redirect_stderr_to_stdout),
        callback_url: p.callback_url.clone(),
        additional_files: None,
        enable_network: Some(p.enable_network),
    };
    json!({ "judge0": normal, "key_id": caller.key_id })
}

/// The stored request back as a `Prepared` submission.
pub fn reload(stored: &Value) -> Result<Prepared, ApiError> {
    let request: SubmissionRequest = serde_json::from_value(stored["judge0"].clone())
        .map_err(|e| ApiError::internal(format!("stored Judge0 request: {e}")))?;
    request
        .prepare(true, &permissive())
        .map_err(|e| ApiError::internal(format!("stored Judge0 request: {e}")))
}

/// The key id a stored request was made with.
pub fn stored_key(stored: &Value) -> String {
    stored["key_id"]
        .as_str()
        .unwrap_or(crate::compat::ANONYMOUS_KEY)
        .to_string()
}

/// A token as Brig stores ids: the SDK may print it as a dashed UUID.
fn token_id(token: &str) -> String {
    token.trim().replace('-', "").to_ascii_lowercase()
}

/// One of the tenant's submissions, in its current state; `None` when there is none (or it
/// is not a Judge0 submission).
pub async fn load(
    state: &AppState,
    tenant_id: &str,
    token: &str,
) -> Result<Option<Submission>, ApiError> {
    let id = token_id(token);
    let store = &state.inner.store;
    let Some(stored) = store.compat_request(tenant_id, &id).await? else {
        return Ok(None);
    };
    let Some(row) = store.get_execution(tenant_id, &id).await? else {
        return Ok(None);
    };
    let prepared = reload(&stored)?;
    let mut submission = match row.status.as_str() {
        "queued" => Submission::pending(&row.id, prepared, false),
        "running" => Submission::pending(&row.id, prepared, true),
        _ => {
            let stored_result = row.result.unwrap_or(Value::Null);
            let result =
                serde_json::from_value::<RunResult>(stored_result.clone()).unwrap_or_else(|_| {
                    // Results written by recovery carry only a status and a message.
                    let message = stored_result["message"].as_str().unwrap_or("no result");
                    RunResult::internal_error(brig_core::Tier::Namespace, message)
                });
            Submission::finished(&row.id, prepared, &result)
        }
    };
    submission.created_at = Some(rfc3339_ms(row.created_at_ms));
    submission.finished_at = row.finished_at_ms.map(rfc3339_ms);
    submission.execution_host = Some(row.node_id);
    Ok(Some(submission))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_accept_dashed_uuids() {
        assert_eq!(
            token_id("0B5A2C7E-1D3F-4A6B-8C9D-0E1F2A3B4C5D"),
            "0b5a2c7e1d3f4a6b8c9d0e1f2a3b4c5d"
        );
    }
}
