//! A Judge0 submission as sent and as validated: [`SubmissionRequest`], the body of
//! `POST /submissions` with every field Judge0 permits (`app/controllers/submissions_controller.rb`;
//! others are ignored), read the way Rails casts numbers and booleans; and [`Prepared`], the
//! submission with every default applied and the Brig run built (see [`super::prepare`]).

use brig_engine::RunRequest;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Judge0Language;

/// A number as Rails reads one: JSON numbers and numeric strings; any other string is kept as
/// NaN so that validation answers Judge0's `is not a number`.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().parse().unwrap_or(f64::NAN)),
        Some(_) => Some(f64::NAN),
    })
}

/// A boolean as Rails casts one (`true`, `"true"`, `1`, `"1"`...).
fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Number(n)) => Some(n.as_f64() != Some(0.0)),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "" => None,
            "false" | "f" | "0" | "off" | "no" => Some(false),
            _ => Some(true),
        },
        _ => None,
    })
}

/// `POST /submissions`' body: every field Judge0 permits; others are ignored, as Rails'
/// `permit` does. Text fields are base64 when the request says `base64_encoded=true`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubmissionRequest {
    /// The program.
    pub source_code: Option<String>,
    /// Judge0 CE language id.
    #[serde(deserialize_with = "number")]
    pub language_id: Option<f64>,
    /// Compiler options (refused unless enabled; Brig's compile commands take none).
    pub compiler_options: Option<String>,
    /// Arguments, one string split the way a shell does.
    pub command_line_arguments: Option<String>,
    /// Runs to average over.
    #[serde(deserialize_with = "number")]
    pub number_of_runs: Option<f64>,
    /// Standard input.
    pub stdin: Option<String>,
    /// Expected standard output: Accepted or Wrong Answer.
    pub expected_output: Option<String>,
    /// CPU time limit, seconds.
    #[serde(deserialize_with = "number")]
    pub cpu_time_limit: Option<f64>,
    /// Extra CPU time before the kill, seconds.
    #[serde(deserialize_with = "number")]
    pub cpu_extra_time: Option<f64>,
    /// Wall time limit, seconds.
    #[serde(deserialize_with = "number")]
    pub wall_time_limit: Option<f64>,
    /// Memory limit, KB.
    #[serde(deserialize_with = "number")]
    pub memory_limit: Option<f64>,
    /// Stack limit, KB.
    #[serde(deserialize_with = "number")]
    pub stack_limit: Option<f64>,
    /// Processes and threads at once.
    #[serde(deserialize_with = "number")]
    pub max_processes_and_or_threads: Option<f64>,
    /// Time limit per process rather than in total (Brig always counts the total).
    #[serde(deserialize_with = "boolean")]
    pub enable_per_process_and_thread_time_limit: Option<bool>,
    /// Memory limit per process rather than in total (Brig always counts the total).
    #[serde(deserialize_with = "boolean")]
    pub enable_per_process_and_thread_memory_limit: Option<bool>,
    /// Largest file the program may write, and output it may produce, KB.
    #[serde(deserialize_with = "number")]
    pub max_file_size: Option<f64>,
    /// Report stderr inside stdout.
    #[serde(deserialize_with = "boolean")]
    pub redirect_stderr_to_stdout: Option<bool>,
    /// URL the finished submission is `PUT` to.
    pub callback_url: Option<String>,
    /// A base64 zip of extra files (refused unless enabled).
    pub additional_files: Option<String>,
    /// Allow network access.
    #[serde(deserialize_with = "boolean")]
    pub enable_network: Option<bool>,
}

/// A validated submission with every default applied: what runs, and what the response
/// reports.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The Judge0 language.
    pub language: Judge0Language,
    /// The program (decoded).
    pub source_code: Vec<u8>,
    /// Standard input (decoded).
    pub stdin: Vec<u8>,
    /// Expected output (decoded).
    pub expected_output: Option<Vec<u8>>,
    /// Arguments as given.
    pub command_line_arguments: Option<String>,
    /// Effective limits and switches, in Judge0's units.
    pub number_of_runs: u64,
    /// CPU time limit, s.
    pub cpu_time_limit: f64,
    /// Extra CPU time, s.
    pub cpu_extra_time: f64,
    /// Wall time limit, s.
    pub wall_time_limit: f64,
    /// Memory limit, KB.
    pub memory_limit: u64,
    /// Stack limit, KB.
    pub stack_limit: u64,
    /// Process/thread limit.
    pub max_processes_and_or_threads: u64,
    /// As requested (Brig always limits the whole sandbox).
    pub enable_per_process_and_thread_time_limit: bool,
    /// As requested (Brig always limits the whole sandbox).
    pub enable_per_process_and_thread_memory_limit: bool,
    /// File and output size limit, KB.
    pub max_file_size: u64,
    /// Report stderr inside stdout.
    pub redirect_stderr_to_stdout: bool,
    /// Where to `PUT` the result, for the server to call.
    pub callback_url: Option<String>,
    /// Network allowed.
    pub enable_network: bool,
    /// The run for Brig's engine.
    pub run: RunRequest,
}
