//! A Judge0 deployment's configuration (`app/helpers/config.rb`), `/about` and `/config_info`.
//!
//! The official Judge0 Python SDK reads `/about`'s `version` to pick its language table
//! (1.13.x) and `/config_info`'s limits, so both follow Judge0's shapes key for key.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The Judge0 version Brig reports.
pub const VERSION: &str = "1.13.1";

/// Limits and switches, with Judge0's defaults. Times are seconds, sizes KB (Judge0's units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Judge0Config {
    /// `?wait=true` allowed.
    pub enable_wait_result: bool,
    /// `compiler_options` allowed. Off: Brig's compile commands take no extra options.
    pub enable_compiler_options: bool,
    /// `command_line_arguments` allowed.
    pub enable_command_line_arguments: bool,
    /// `DELETE /submissions/{token}` allowed.
    pub enable_submission_delete: bool,
    /// `callback_url` allowed.
    pub enable_callbacks: bool,
    /// Tries per callback.
    pub callbacks_max_tries: u32,
    /// Seconds per callback try.
    pub callbacks_timeout: f64,
    /// `additional_files` (a zip) allowed. Off: Brig does not unpack archives.
    pub enable_additional_files: bool,
    /// Submissions waiting at most.
    pub max_queue_size: u32,
    /// Default CPU time limit (s).
    pub cpu_time_limit: f64,
    /// Largest CPU time limit (s).
    pub max_cpu_time_limit: f64,
    /// Default extra CPU time before the kill (s).
    pub cpu_extra_time: f64,
    /// Largest extra CPU time (s).
    pub max_cpu_extra_time: f64,
    /// Default wall time limit (s).
    pub wall_time_limit: f64,
    /// Largest wall time limit (s).
    pub max_wall_time_limit: f64,
    /// Default memory limit (KB).
    pub memory_limit: u64,
    /// Largest memory limit (KB).
    pub max_memory_limit: u64,
    /// Default stack limit (KB).
    pub stack_limit: u64,
    /// Largest stack limit (KB).
    pub max_stack_limit: u64,
    /// Default process/thread limit.
    pub max_processes_and_or_threads: u64,
    /// Largest process/thread limit.
    pub max_max_processes_and_or_threads: u64,
    /// Default of the per-process time limit switch.
    pub enable_per_process_and_thread_time_limit: bool,
    /// Whether a request may turn it on.
    pub allow_enable_per_process_and_thread_time_limit: bool,
    /// Default of the per-process memory limit switch.
    pub enable_per_process_and_thread_memory_limit: bool,
    /// Whether a request may turn it on.
    pub allow_enable_per_process_and_thread_memory_limit: bool,
    /// Default largest file (and output) size (KB).
    pub max_file_size: u64,
    /// Largest `max_file_size` (KB).
    pub max_max_file_size: u64,
    /// Default number of runs.
    pub number_of_runs: u64,
    /// Largest number of runs.
    pub max_number_of_runs: u64,
    /// Default of `redirect_stderr_to_stdout`.
    pub redirect_stderr_to_stdout: bool,
    /// Largest unpacked `additional_files` (KB).
    pub max_extract_size: u64,
    /// `/submissions/batch` allowed.
    pub enable_batched_submissions: bool,
    /// Submissions per batch at most.
    pub max_submission_batch_size: u32,
    /// Seconds a finished submission may be served from cache.
    pub submission_cache_duration: f64,
    /// Default of `enable_network`.
    pub enable_network: bool,
    /// Whether a request may turn the network on.
    pub allow_enable_network: bool,
}

impl Default for Judge0Config {
    fn default() -> Self {
        Judge0Config {
            enable_wait_result: true,
            enable_compiler_options: false,
            enable_command_line_arguments: true,
            enable_submission_delete: true,
            enable_callbacks: true,
            callbacks_max_tries: 3,
            callbacks_timeout: 5.0,
            enable_additional_files: false,
            max_queue_size: 100,
            cpu_time_limit: 5.0,
            max_cpu_time_limit: 15.0,
            cpu_extra_time: 1.0,
            max_cpu_extra_time: 5.0,
            wall_time_limit: 10.0,
            max_wall_time_limit: 20.0,
            memory_limit: 128_000,
            max_memory_limit: 512_000,
            stack_limit: 64_000,
            max_stack_limit: 128_000,
            max_processes_and_or_threads: 60,
            max_max_processes_and_or_threads: 120,
            enable_per_process_and_thread_time_limit: false,
            allow_enable_per_process_and_thread_time_limit: true,
            enable_per_process_and_thread_memory_limit: false,
            allow_enable_per_process_and_thread_memory_limit: true,
            max_file_size: 1024,
            max_max_file_size: 4096,
            number_of_runs: 1,
            max_number_of_runs: 20,
            redirect_stderr_to_stdout: false,
            max_extract_size: 10_240,
            enable_batched_submissions: true,
            max_submission_batch_size: 20,
            submission_cache_duration: 1.0,
            enable_network: false,
            allow_enable_network: true,
        }
    }
}

/// `GET /about`.
pub fn about() -> Value {
    json!({
        "version": VERSION,
        // Judge0 reads these from its environment; Brig has no URL of its own to give.
        "homepage": null,
        "source_code": null,
        "maintainer": "Brig (a Judge0 CE compatible API)",
    })
}

/// `GET /config_info`: Judge0's keys, in Judge0's order, from `config`.
pub fn config_info(config: &Judge0Config) -> Value {
    let c = config;
    json!({
        "maintenance_mode": false,
        "enable_wait_result": c.enable_wait_result,
        "enable_compiler_options": c.enable_compiler_options,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": c.enable_command_line_arguments,
        "enable_submission_delete": c.enable_submission_delete,
        "enable_callbacks": c.enable_callbacks,
        "callbacks_max_tries": c.callbacks_max_tries,
        "callbacks_timeout": c.callbacks_timeout,
        "enable_additional_files": c.enable_additional_files,
        "max_queue_size": c.max_queue_size,
        "cpu_time_limit": c.cpu_time_limit,
        "max_cpu_time_limit": c.max_cpu_time_limit,
        "cpu_extra_time": c.cpu_extra_time,
        "max_cpu_extra_time": c.max_cpu_extra_time,
        "wall_time_limit": c.wall_time_limit,
        "max_wall_time_limit": c.max_wall_time_limit,
        "memory_limit": c.memory_limit,
        "max_memory_limit": c.max_memory_limit,
        "stack_limit": c.stack_limit,
        "max_stack_limit": c.max_stack_limit,
        "max_processes_and_or_threads": c.max_processes_and_or_threads,
        "max_max_processes_and_or_threads": c.max_max_processes_and_or_threads,
        "enable_per_process_and_thread_time_limit": c.enable_per_process_and_thread_time_limit,
        "allow_enable_per_process_and_thread_time_limit":
            c.allow_enable_per_process_and_thread_time_limit,
        "enable_per_process_and_thread_memory_limit": c.enable_per_process_and_thread_memory_limit,
        "allow_enable_per_process_and_thread_memory_limit":
            c.allow_enable_per_process_and_thread_memory_limit,
        "max_file_size": c.max_file_size,
        "max_max_file_size": c.max_max_file_size,
        "number_of_runs": c.number_of_runs,
        "max_number_of_runs": c.max_number_of_runs,
        "redirect_stderr_to_stdout": c.redirect_stderr_to_stdout,
        "max_extract_size": c.max_extract_size,
        "enable_batched_submissions": c.enable_batched_submissions,
        "max_submission_batch_size": c.max_submission_batch_size,
        "submission_cache_duration": c.submission_cache_duration,
        "use_docs_as_homepage": false,
        "allow_enable_network": c.allow_enable_network,
        "enable_network": c.enable_network,
        "disable_implicit_base64_encoding": false,
    })
}
