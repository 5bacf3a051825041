//! The result object every finished run carries, and its `status` (one per run).

use crate::tier::Tier;
use serde::{Deserialize, Serialize};

/// How a run ended, exactly as DESIGN.md names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Exited 0.
    Ok,
    /// Exited non-zero, or raised an exception.
    RuntimeError,
    /// A compile step failed, or the source does not parse.
    CompileError,
    /// The wall-clock or CPU-time limit was hit (see `limit`).
    Timeout,
    /// Killed for exceeding the memory limit.
    MemoryLimit,
    /// Produced more output than allowed; the output is kept up to the limit.
    OutputLimit,
    /// Ended by a signal not explained above (see `signal`).
    Killed,
    /// Brig failed, not the program; retryable.
    InternalError,
    /// Async: accepted, not started.
    Queued,
    /// Async: started, not finished.
    Running,
    /// Async: cancelled before it finished.
    Cancelled,
}

impl Status {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::RuntimeError => "runtime_error",
            Status::CompileError => "compile_error",
            Status::Timeout => "timeout",
            Status::MemoryLimit => "memory_limit",
            Status::OutputLimit => "output_limit",
            Status::Killed => "killed",
            Status::InternalError => "internal_error",
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Cancelled => "cancelled",
        }
    }
}

/// Which limit a `timeout` hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    /// The wall-clock deadline.
    Wall,
    /// The CPU-time budget.
    Cpu,
}

/// The result of one run (or of its compile step, nested as `compile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// How the run ended.
    pub status: Status,
    /// For `timeout`: which limit was hit.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub limit: Option<TimeoutKind>,
    /// The exit code, when the program exited.
    pub exit_code: Option<i32>,
    /// The signal number, when the program was ended by a signal.
    pub signal: Option<i32>,
    /// Captured standard output (lossy UTF-8), up to the output limit.
    pub stdout: String,
    /// Captured standard error (lossy UTF-8), up to the output limit.
    pub stderr: String,
    /// Wall-clock time from start to end, in milliseconds.
    pub wall_ms: u64,
    /// CPU time of every process in the sandbox, in milliseconds.
    pub cpu_ms: u64,
    /// Peak memory of the sandbox, in bytes.
    pub memory_peak_bytes: u64,
    /// The tier that ran the program.
    pub tier: Tier,
    /// For compiled languages: the compile step's own result.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub compile: Option<Box<RunResult>>,
    /// A sentence for a person: why Brig failed (`internal_error`) or which limit ended the run.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
    /// Kernel cells: the last expression's value as a mime bundle (`text/plain`, `text/html`,
    /// `image/png`...), the way Jupyter shows it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result: Option<serde_json::Value>,
    /// Kernel cells: the exception, `{name, value, traceback}`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<serde_json::Value>,
    /// Kernel cells: display data (figures as `image/png` base64), in order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub outputs: Vec<DisplayOutput>,
    /// Kernel cells: the kernel was restarted (it died, or ignored an interrupt), so the
    /// session's Python state is gone.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub kernel_restarted: bool,
}

/// One display output of a cell: its richest representation, and every one it had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayOutput {
    /// The richest mime type (`image/png` over `image/svg+xml` over `text/html` over
    /// `text/markdown` over `application/json` over `text/plain`).
    pub mime: String,
    /// Its data (base64 for images).
    pub data: serde_json::Value,
    /// The whole mime bundle.
    #[serde(default)]
    pub bundle: serde_json::Value,
}

impl DisplayOutput {
    /// The output for a display event's mime bundle.
    pub fn from_bundle(bundle: serde_json::Value) -> DisplayOutput {
        const ORDER: &[&str] = &[
            "image/png",
            "image/jpeg",
            "image/svg+xml",
            "text/html",
            "text/markdown",
            "text/latex",
            "application/json",
            "text/plain",
        ];
        let mime = ORDER
            .iter()
            .find(|m| bundle.get(**m).is_some())
            .map(|m| m.to_string())
            .or_else(|| bundle.as_object().and_then(|o| o.keys().next().cloned()))
            .unwrap_or_else(|| "text/plain".into());
        DisplayOutput {
            data: bundle
                .get(&mime)
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            mime,
            bundle,
        }
    }
}

impl RunResult {
    /// An `internal_error` result: Brig failed before or while running the program.
    pub fn internal_error(tier: Tier, message: impl Into<String>) -> RunResult {
        RunResult {
            status: Status::InternalError,
            limit: None,
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            wall_ms: 0,
            cpu_ms: 0,
            memory_peak_bytes: 0,
            tier,
            compile: None,
            message: Some(message.into()),
            result: None,
            error: None,
            outputs: Vec::new(),
            kernel_restarted: false,
        }
    }

    /// A `cancelled` result: the run was stopped (or never started) at someone's request;
    /// `message` says whose and why.
    pub fn cancelled(tier: Tier, message: impl Into<String>) -> RunResult {
        RunResult {
            status: Status::Cancelled,
            ..RunResult::internal_error(tier, message)
        }
    }

    /// The exit code `brig run` ends with: the program's own, 124 on timeout, 137 on memory
    /// limit, 128+signal when killed, 1 for a compile error or an internal error.
    pub fn cli_exit_code(&self) -> i32 {
        match self.status {
            Status::Timeout => 124,
            Status::MemoryLimit => 137,
            Status::Killed => 128 + self.signal.unwrap_or(9),
            // A kernel cell has no exit code of its own.
            Status::Ok => self.exit_code.unwrap_or(0),
            Status::RuntimeError | Status::OutputLimit => {
                self.exit_code.unwrap_or(match self.signal {
                    Some(sig) => 128 + sig,
                    None => 1,
                })
            }
            _ => self.exit_code.filter(|c| *c != 0).unwrap_or(1),
        }
    }
}
