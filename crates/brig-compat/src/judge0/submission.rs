//! Judge0 submissions: the request body → Brig's `RunRequest`, Brig's `RunResult` → Judge0's
//! status and response, and `?fields=` selection.
//!
//! Followed from judge0/judge0 1.13.x:
//! - `app/models/submission.rb`: defaults from the configuration (`set_defaults`) and the
//!   validations with Rails' messages (`must be less than or equal to 15.0`, `can't be
//!   blank`, `language with id 999 doesn't exist`...), answered `422 {"field": ["message"]}`.
//! - `app/controllers/submissions_controller.rb`: the permitted fields (others are ignored),
//!   `base64_encoded=true` decoding `source_code`, `stdin` and `expected_output`.
//! - `app/jobs/isolate_job.rb`: `command_line_arguments` with `$&;<>|` and backquotes removed,
//!   then split by the shell that runs it; the status (`determine_status`), comparing
//!   `expected_output` and stdout after `strip` (trailing whitespace of every line, then of the
//!   whole text); `exit_code` 0 when a signal ended the run; a failed compile leaves only
//!   `compile_output` (`Compilation time limit exceeded.` for a compile timeout).
//! - `app/serializers/submission_serializer.rb`, `app/services/fields/*.rb`: every column is a
//!   field, the default set is `token, time, memory, stdout, stderr, compile_output, message,
//!   status`, an unknown field is `400 {"error": "invalid fields: [x]"}`; with `base64_encoded`
//!   the text fields and `message` are base64; decimals (`time`, `cpu_time_limit`...) are
//!   strings.

use brig_core::{LimitOverrides, RunResult, Status, TimeoutKind};
use brig_engine::RunRequest;
use brig_jail::Stdin;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::{Judge0Config, Judge0Error, Judge0Language, Judge0Status};
use crate::encoding;

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

/// Validation errors, collected per field like Rails' `errors`.
#[derive(Default)]
struct Errors(BTreeMap<String, Vec<String>>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }
}

/// Formats a bound as Rails prints it in a message: floats keep `.0` (`15.0`).
fn bound(value: f64, float: bool) -> String {
    if float {
        format!("{value:?}")
    } else {
        format!("{}", value as i64)
    }
}

/// Rails' numericality: the value (or its default), checked against `[min, max]`.
fn numeric(
    errors: &mut Errors,
    field: &str,
    value: Option<f64>,
    default: f64,
    min: (f64, bool),
    max: f64,
    float: bool,
) -> f64 {
    let v = value.unwrap_or(default);
    let (min, inclusive) = min;
    if v.is_nan() {
        errors.add(field, "is not a number");
    } else if inclusive && v < min {
        errors.add(
            field,
            // The lower bounds are integer literals in submission.rb, printed without `.0`.
            format!("must be greater than or equal to {}", bound(min, false)),
        );
    } else if !inclusive && v <= min {
        errors.add(field, format!("must be greater than {}", bound(min, false)));
    } else if v > max {
        errors.add(
            field,
            format!("must be less than or equal to {}", bound(max, float)),
        );
    }
    v
}

fn decode(
    errors: &mut Errors,
    field: &str,
    text: Option<&str>,
    base64_encoded: bool,
) -> Option<Vec<u8>> {
    let text = text?;
    if !base64_encoded {
        return Some(text.as_bytes().to_vec());
    }
    match encoding::decode_base64(text) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            errors.add(field, e.to_string());
            None
        }
    }
}

/// Splits `command_line_arguments` the way Judge0's run script does: `$&;<>|` and backquotes
/// removed, then words split by bash (spaces; single quotes literal; double quotes and
/// backslashes escape).
pub fn split_arguments(text: &str) -> Vec<String> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !"$&;<>|`".contains(*c))
        .collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = cleaned.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                word.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\')) => word.push(n),
                            Some(n) => {
                                word.push('\\');
                                word.push(n);
                            }
                            None => word.push('\\'),
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

impl SubmissionRequest {
    /// Validates with Judge0's rules and messages, applies `config`'s defaults, decodes base64
    /// text when `base64_encoded`, and builds the run. Every problem is reported at once.
    pub fn prepare(
        &self,
        base64_encoded: bool,
        config: &Judge0Config,
    ) -> Result<Prepared, Judge0Error> {
        let c = config;
        let mut e = Errors::default();
        let source_code = decode(
            &mut e,
            "source_code",
            self.source_code.as_deref(),
            base64_encoded,
        );
        if source_code.as_ref().is_none_or(|s| s.is_empty()) && !e.0.contains_key("source_code") {
            e.add("source_code", "can't be blank");
        }
        let stdin = decode(&mut e, "stdin", self.stdin.as_deref(), base64_encoded);
        let expected_output = decode(
            &mut e,
            "expected_output",
            self.expected_output.as_deref(),
            base64_encoded,
        );
        let language = match self.language_id {
            None => {
                e.add("language_id", "can't be blank");
                None
            }
            Some(id) => {
                let found = (id.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&id))
                    .then(|| Judge0Language::by_id(id as u32))
                    .flatten();
                if found.is_none() {
                    e.add(
                        "language_id",
                        format!(
                            "language with id {} doesn't exist",
                            bound(id, id.fract() != 0.0)
                        ),
                    );
                }
                found
            }
        };
        let number_of_runs = numeric(
            &mut e,
            "number_of_runs",
            self.number_of_runs,
            c.number_of_runs as f64,
            (0.0, false),
            c.max_number_of_runs as f64,
            false,
        );
        let cpu_time_limit = numeric(
            &mut e,
            "cpu_time_limit",
            self.cpu_time_limit,
            c.cpu_time_limit,
            (0.0, true),
            c.max_cpu_time_limit,
            true,
        );
        let cpu_extra_time = numeric(
            &mut e,
            "cpu_extra_time",
            self.cpu_extra_time,
            c.cpu_extra_time,
            (0.0, true),
            c.max_cpu_extra_time,
            true,
        );
        let wall_time_limit = numeric(
            &mut e,
            "wall_time_limit",
            self.wall_time_limit,
            c.wall_time_limit,
            (1.0, true),
            c.max_wall_time_limit,
            true,
        );
        let memory_limit = numeric(
            &mut e,
            "memory_limit",
            self.memory_limit,
            c.memory_limit as f64,
            (2048.0, true),
            c.max_memory_limit as f64,
            false,
        );
        let stack_limit = numeric(
            &mut e,
            "stack_limit",
            self.stack_limit,
            c.stack_limit as f64,
            (0.0, true),
            c.max_stack_limit as f64,
            false,
        );
        let max_processes = numeric(
            &mut e,
            "max_processes_and_or_threads",
            self.max_processes_and_or_threads,
            c.max_processes_and_or_threads as f64,
            (0.0, false),
            c.max_max_processes_and_or_threads as f64,
            false,
        );
        let max_file_size = numeric(
            &mut e,
            "max_file_size",
            self.max_file_size,
            c.max_file_size as f64,
            (0.0, true),
            c.max_max_file_size as f64,
            false,
        );
        let per_process_time = self
            .enable_per_process_and_thread_time_limit
            .unwrap_or(c.enable_per_process_and_thread_time_limit);
        if per_process_time && !c.allow_enable_per_process_and_thread_time_limit {
            e.add(
                "enable_per_process_and_thread_time_limit",
                "this option cannot be enabled",
            );
        }
        let per_process_memory = self
            .enable_per_process_and_thread_memory_limit
            .unwrap_or(c.enable_per_process_and_thread_memory_limit);
        if per_process_memory && !c.allow_enable_per_process_and_thread_memory_limit {
            e.add(
                "enable_per_process_and_thread_memory_limit",
                "this option cannot be enabled",
            );
        }
        let present = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        for (field, value) in [
            ("compiler_options", &self.compiler_options),
            ("command_line_arguments", &self.command_line_arguments),
        ] {
            if value.as_deref().is_some_and(|s| s.chars().count() > 512) {
                e.add(field, "is too long (maximum is 512 characters)");
            }
        }
        if present(&self.compiler_options) && !c.enable_compiler_options {
            e.add(
                "compiler_options",
                "setting compiler options is not allowed",
            );
        }
        if present(&self.command_line_arguments) && !c.enable_command_line_arguments {
            e.add(
                "command_line_arguments",
                "setting command line arguments is not allowed",
            );
        }
        if present(&self.callback_url) && !c.enable_callbacks {
            e.add("callback_url", "setting callback is not allowed");
        }
        if present(&self.additional_files) && !c.enable_additional_files {
            e.add(
                "additional_files",
                "setting additional files is not allowed",
            );
        }
        if self.enable_network == Some(true) && !c.allow_enable_network {
            e.add("enable_network", "enabling network is not allowed");
        }
        if !e.0.is_empty() {
            return Err(Judge0Error::Invalid(e.0));
        }
        let (Some(language), Some(source_code)) = (language, source_code) else {
            unreachable!("a missing language or source is a validation error above");
        };
        let enable_network = self.enable_network.unwrap_or(c.enable_network);
        let stdin = stdin.unwrap_or_default();
        let kb = |v: f64| (v as u64).saturating_mul(1024);
        let ms = |s: f64| ((s * 1000.0).ceil() as u64).max(1);
        let limits = LimitOverrides {
            timeout_ms: Some(ms(wall_time_limit)),
            // isolate kills at `-t` + `-x`; a run past `-t` alone is still within its grace.
            cpu_time_ms: Some(ms(cpu_time_limit + cpu_extra_time)),
            memory_bytes: Some(kb(memory_limit)),
            pids: Some(max_processes as u32),
            // Judge0 bounds stdout and stderr by `-f` (RLIMIT_FSIZE on their files); Brig's
            // output limit covers both streams together.
            output_bytes: Some(kb(max_file_size).max(1)),
            file_size_bytes: Some(kb(max_file_size).max(1)),
            // `-k 0` is unlimited in isolate; Brig keeps the language's stack then.
            stack_bytes: (stack_limit > 0.0).then(|| kb(stack_limit)),
            ..LimitOverrides::default()
        };
        let run = RunRequest {
            language: language.brig_id.to_string(),
            source: source_code.clone(),
            files: Vec::new(),
            args: self
                .command_line_arguments
                .as_deref()
                .map(split_arguments)
                .unwrap_or_default(),
            stdin: if stdin.is_empty() {
                Stdin::Null
            } else {
                Stdin::Bytes(stdin.clone())
            },
            limits,
            network: enable_network,
            ..RunRequest::default()
        };
        Ok(Prepared {
            language: *language,
            source_code,
            stdin,
            expected_output,
            command_line_arguments: self.command_line_arguments.clone(),
            number_of_runs: number_of_runs as u64,
            cpu_time_limit,
            cpu_extra_time,
            wall_time_limit,
            memory_limit: memory_limit as u64,
            stack_limit: stack_limit as u64,
            max_processes_and_or_threads: max_processes as u64,
            enable_per_process_and_thread_time_limit: per_process_time,
            enable_per_process_and_thread_memory_limit: per_process_memory,
            max_file_size: max_file_size as u64,
            redirect_stderr_to_stdout: self
                .redirect_stderr_to_stdout
                .unwrap_or(c.redirect_stderr_to_stdout),
            callback_url: self.callback_url.clone().filter(|s| !s.trim().is_empty()),
            enable_network,
            run,
        })
    }
}

/// The run a submission asks for (see [`SubmissionRequest::prepare`] for the rest of it).
pub fn to_run_request(
    request: &SubmissionRequest,
    base64_encoded: bool,
    config: &Judge0Config,
) -> Result<RunRequest, Judge0Error> {
    request.prepare(base64_encoded, config).map(|p| p.run)
}

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

/// The default `?fields=`.
pub const DEFAULT_FIELDS: [&str; 8] = [
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

/// `?fields=`: a comma-separated list of a submission's fields; empty or absent means
/// [`DEFAULT_FIELDS`], `*` means all. An unknown field is Judge0's
/// `400 {"error": "invalid fields: [a, b]"}`. `value` is [`Submission::to_value`]'s.
pub fn select_fields(value: &Value, fields: Option<&str>) -> Result<Value, Judge0Error> {
    let Some(all) = value.as_object() else {
        return Ok(value.clone());
    };
    let fields = fields.map(str::trim).unwrap_or("");
    if fields == "*" {
        return Ok(value.clone());
    }
    let wanted: Vec<&str> = if fields.is_empty() {
        DEFAULT_FIELDS.to_vec()
    } else {
        fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect()
    };
    let invalid: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|f| !all.contains_key(*f))
        .collect();
    if !invalid.is_empty() {
        return Err(Judge0Error::BadRequest(format!(
            "invalid fields: [{}]",
            invalid.join(", ")
        )));
    }
    Ok(Value::Object(
        wanted
            .into_iter()
            .filter_map(|f| Some((f.to_string(), all.get(f)?.clone())))
            .collect::<Map<_, _>>(),
    ))
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

    #[test]
    fn arguments_split_like_bash_after_judge0s_filter() {
        assert_eq!(split_arguments("a b  c"), ["a", "b", "c"]);
        assert_eq!(
            split_arguments(r#"'hello world' "x \"y\"" z\ w"#),
            ["hello world", "x \"y\"", "z w"]
        );
        assert_eq!(
            split_arguments("a; rm -rf / | b `c` $HOME"),
            ["a", "rm", "-rf", "/", "b", "c", "HOME"]
        );
        assert!(split_arguments("   ").is_empty());
        assert_eq!(split_arguments("''"), [""]);
    }
}
