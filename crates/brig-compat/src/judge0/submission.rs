//! A submission's outcome in Judge0's terms: Brig's `RunResult` → Judge0's status and the
//! submission's record as Judge0 serializes it.
//!
//! Followed from judge0/judge0 1.13.x:
//! - `app/jobs/isolate_job.rb`: the status (`determine_status`), comparing `expected_output`
//!   and stdout after `strip` (trailing whitespace of every line, then of the whole text);
//!   `exit_code` 0 when a signal ended the run; a failed compile leaves only `compile_output`
//!   (`Compilation time limit exceeded.` for a compile timeout).
//! - `app/serializers/submission_serializer.rb`: every column is a field (narrowed by
//!   [`super::fields`]); with `base64_encoded` the text fields and `message` are base64;
//!   decimals (`time`, `cpu_time_limit`...) are strings.
//!
//! The request side lives beside it ([`super::request`], [`super::prepare`],
//! [`super::arguments`]); its items are re-exported here so `judge0::submission::*` paths keep
//! working.

use brig_core::{RunResult, Status, TimeoutKind};
use serde_json::{Value, json};

use super::Judge0Status;
pub use super::arguments::split_arguments;
pub use super::fields::{DEFAULT_FIELDS, select_fields};
pub use super::prepare::to_run_request;
pub use super::request::{Prepared, SubmissionRequest};
use crate::encoding;

/// Judge0's `strip`: trailing whitespace off every line, then off the whole text.
fn strip_lines(text: &str) -> String {
    text.split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
}

/// The status Judge0 gives a run (`determine_status` in `isolate_job.rb`):
/// compile step failed → 6 Compilation Error; `timeout` → 5; a signal → 7 (SIGSEGV),
/// 8 (SIGXFSZ), 9 (SIGFPE), 10 (SIGABRT) or 12 (Other); `output_limit` → 8 (Judge0 bounds
/// output with RLIMIT_FSIZE, which ends a program with SIGXFSZ); `memory_limit` → 12, which is
/// what Judge0 reports for a cgroup OOM kill (isolate sees SIGKILL); a non-zero exit, and a
/// parse failure of an interpreted language (Judge0 has no compile step for those) → 11 NZEC;
/// `internal_error` and `cancelled` → 13; exit 0 → 3 Accepted when `expected_output` is absent
/// or equal after stripping trailing whitespace of every line and of the whole, else 4.
pub fn status_for(result: &RunResult, expected_output: Option<&str>) -> Judge0Status {
    let status = |id: u8| Judge0Status::by_id(id).unwrap_or(super::STATUSES[12]);
    let compiled_and_failed = result
        .compile
        .as_deref()
        .is_some_and(|c| c.status != Status::Ok);
    match result.status {
        Status::Queued => status(1),
        Status::Running => status(2),
        _ if compiled_and_failed => status(6),
        Status::Timeout => status(5),
        Status::OutputLimit => status(8),
        Status::MemoryLimit => status(12),
        Status::InternalError | Status::Cancelled => status(13),
        _ if result.signal.is_some() => Judge0Status::for_signal(result.signal.unwrap_or(0)),
        Status::Killed => status(12),
        Status::RuntimeError | Status::CompileError => status(11),
        Status::Ok => match expected_output {
            Some(expected) if strip_lines(expected) != strip_lines(&result.stdout) => status(4),
            _ => status(3),
        },
    }
}

/// A submission's record, as Judge0 serializes it (see [`Submission::to_value`]).
#[derive(Debug, Clone)]
pub struct Submission {
    /// Its token.
    pub token: String,
    /// The validated request.
    pub prepared: Prepared,
    /// The status.
    pub status: Judge0Status,
    /// Standard output (stdout then stderr with `redirect_stderr_to_stdout`).
    pub stdout: Option<String>,
    /// Standard error.
    pub stderr: Option<String>,
    /// The compiler's output.
    pub compile_output: Option<String>,
    /// isolate-style message (`Exited with error status 1`, `Time limit exceeded`...).
    pub message: Option<String>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Signal number.
    pub exit_signal: Option<i32>,
    /// CPU time, ms.
    pub cpu_ms: Option<u64>,
    /// Wall time, ms.
    pub wall_ms: Option<u64>,
    /// Peak memory, KB.
    pub memory_kb: Option<u64>,
    /// RFC 3339 time the submission was created, from the server.
    pub created_at: Option<String>,
    /// RFC 3339 time it finished.
    pub finished_at: Option<String>,
    /// Host name of the node that ran it.
    pub execution_host: Option<String>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn message_for(r: &RunResult) -> Option<String> {
    match r.status {
        Status::Ok => None,
        Status::Timeout => Some(
            match r.limit {
                Some(TimeoutKind::Wall) => "Time limit exceeded (wall clock)",
                _ => "Time limit exceeded",
            }
            .into(),
        ),
        Status::MemoryLimit => Some("Memory limit exceeded (killed with SIGKILL)".into()),
        Status::OutputLimit => Some("Output limit exceeded".into()),
        Status::InternalError | Status::Cancelled => r
            .message
            .clone()
            .or_else(|| Some(format!("run ended `{}`", r.status.as_str()))),
        _ => match (r.exit_code, r.signal) {
            (_, Some(sig)) => Some(format!("Caught fatal signal {sig}")),
            (Some(code), None) => Some(format!("Exited with error status {code}")),
            (None, None) => r.message.clone(),
        },
    }
}

impl Submission {
    /// A submission not finished yet: `status` 1 (In Queue) or 2 (Processing).
    pub fn pending(token: &str, prepared: Prepared, processing: bool) -> Submission {
        Submission {
            token: token.to_string(),
            prepared,
            status: Judge0Status::by_id(if processing { 2 } else { 1 })
                .unwrap_or(super::STATUSES[0]),
            stdout: None,
            stderr: None,
            compile_output: None,
            message: None,
            exit_code: None,
            exit_signal: None,
            cpu_ms: None,
            wall_ms: None,
            memory_kb: None,
            created_at: None,
            finished_at: None,
            execution_host: None,
        }
    }

    /// A finished submission from Brig's result.
    pub fn finished(token: &str, prepared: Prepared, result: &RunResult) -> Submission {
        let expected = prepared
            .expected_output
            .as_deref()
            .map(String::from_utf8_lossy);
        let (stdout, stderr) = if prepared.redirect_stderr_to_stdout {
            (format!("{}{}", result.stdout, result.stderr), String::new())
        } else {
            (result.stdout.clone(), result.stderr.clone())
        };
        let mut seen = result.clone();
        seen.stdout = stdout.clone();
        let status = status_for(&seen, expected.as_deref());
        let compile = result.compile.as_deref();
        let compile_output = compile.and_then(|c| match c.status {
            Status::Timeout => Some("Compilation time limit exceeded.".to_string()),
            _ => non_empty(&format!("{}{}", c.stdout, c.stderr)),
        });
        let mut submission = Submission::pending(token, prepared, false);
        submission.status = status;
        submission.compile_output = compile_output;
        if status.id == 6 {
            // A failed compile leaves every run field empty (`compile` in isolate_job.rb).
            return submission;
        }
        let ran = !matches!(result.status, Status::InternalError | Status::Cancelled);
        submission.stdout = non_empty(&stdout);
        submission.stderr = non_empty(&stderr);
        submission.message = message_for(result);
        // isolate writes no `exitcode` for a signal, and Judge0 reads that as 0.
        submission.exit_code = ran.then(|| result.exit_code.unwrap_or(0));
        submission.exit_signal = match result.status {
            Status::MemoryLimit | Status::Timeout => {
                result.signal.or(Some(crate::signals::SIGKILL))
            }
            Status::OutputLimit => Some(25),
            _ => result.signal,
        };
        if ran {
            submission.cpu_ms = Some(result.cpu_ms);
            submission.wall_ms = Some(result.wall_ms);
            submission.memory_kb = Some(result.memory_peak_bytes / 1024);
        }
        submission
    }

    /// Every field Judge0's serializer has (`*`); text fields and `message` in base64 when
    /// `base64_encoded`. Narrow it with [`select_fields`].
    pub fn to_value(&self, base64_encoded: bool) -> Value {
        let p = &self.prepared;
        let text = |bytes: Option<&[u8]>| -> Value {
            match bytes {
                None => Value::Null,
                Some(b) if base64_encoded => Value::String(encoding::encode_base64(b)),
                Some(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
            }
        };
        let s = |v: &Option<String>| text(v.as_deref().map(str::as_bytes));
        let secs = |ms: Option<u64>| ms.map(|ms| decimal(ms as f64 / 1000.0));
        let fields: Vec<(&str, Value)> = vec![
            ("source_code", json!(text(Some(&p.source_code)))),
            ("language_id", json!(p.language.id)),
            ("stdin", json!(text(Some(&p.stdin)))),
            ("expected_output", json!(text(p.expected_output.as_deref()))),
            ("stdout", json!(s(&self.stdout))),
            ("status_id", json!(self.status.id)),
            ("created_at", json!(self.created_at)),
            ("finished_at", json!(self.finished_at)),
            ("time", json!(secs(self.cpu_ms))),
            ("memory", json!(self.memory_kb)),
            ("stderr", json!(s(&self.stderr))),
            ("token", json!(self.token)),
            ("number_of_runs", json!(p.number_of_runs)),
            ("cpu_time_limit", json!(decimal(p.cpu_time_limit))),
            ("cpu_extra_time", json!(decimal(p.cpu_extra_time))),
            ("wall_time_limit", json!(decimal(p.wall_time_limit))),
            ("memory_limit", json!(p.memory_limit)),
            ("stack_limit", json!(p.stack_limit)),
            (
                "max_processes_and_or_threads",
                json!(p.max_processes_and_or_threads),
            ),
            (
                "enable_per_process_and_thread_time_limit",
                json!(p.enable_per_process_and_thread_time_limit),
            ),
            (
                "enable_per_process_and_thread_memory_limit",
                json!(p.enable_per_process_and_thread_memory_limit),
            ),
            ("max_file_size", json!(p.max_file_size)),
            ("compile_output", json!(s(&self.compile_output))),
            ("exit_code", json!(self.exit_code)),
            ("exit_signal", json!(self.exit_signal)),
            ("message", json!(s(&self.message))),
            ("wall_time", json!(secs(self.wall_ms))),
            ("compiler_options", json!(null)),
            ("command_line_arguments", json!(p.command_line_arguments)),
            (
                "redirect_stderr_to_stdout",
                json!(p.redirect_stderr_to_stdout),
            ),
            ("callback_url", json!(p.callback_url)),
            ("additional_files", json!(null)),
            ("enable_network", json!(p.enable_network)),
            // Not `started_at`, `queued_at`, `updated_at`, `queue_host` or `execution_host`:
            // Judge0's documented attributes stop at the ones above, and its official SDK
            // refuses a field it does not know when it asks for `*`.
            ("status", json!(self.status)),
            (
                "language",
                json!({ "id": p.language.id, "name": p.language.name }),
            ),
        ];
        Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
}

/// A decimal the way Rails serializes a `decimal` column: a string, at most 3 places, at
/// least one (`0.012`, `5.0`).
pub fn decimal(value: f64) -> String {
    let fixed = format!("{value:.3}");
    let trimmed = fixed.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_is_judge0s() {
        assert_eq!(strip_lines("1 \n2\t\n\n"), "1\n2");
        assert_eq!(strip_lines("a  b \r\n c"), "a  b\n c");
    }

    #[test]
    fn decimals_print_like_rails() {
        assert_eq!(decimal(0.012), "0.012");
        assert_eq!(decimal(5.0), "5.0");
        assert_eq!(decimal(1.5), "1.5");
        assert_eq!(decimal(0.0), "0.0");
    }
}
