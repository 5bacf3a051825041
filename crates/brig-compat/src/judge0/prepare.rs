//! Validation of a Judge0 submission, as `app/models/submission.rb` does it: defaults from the
//! configuration (`set_defaults`), Rails' numericality and presence messages (`must be less
//! than or equal to 15.0`, `can't be blank`, `language with id 999 doesn't exist`...), every
//! problem reported at once as `422 {"field": ["message"]}`, `base64_encoded=true` decoding
//! `source_code`, `stdin` and `expected_output`; then the Brig run it asks for.

use brig_core::LimitOverrides;
use brig_engine::RunRequest;
use brig_jail::Stdin;
use std::collections::BTreeMap;

use super::arguments::split_arguments;
use super::request::{Prepared, SubmissionRequest};
use super::{Judge0Config, Judge0Error, Judge0Language};
use crate::encoding;

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
