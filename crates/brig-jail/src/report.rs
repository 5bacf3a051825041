//! What the helper sends back: one `StepReport` per step run, with the raw facts (how the
//! program ended, why the supervisor killed it, the cgroup's counters) and the captured output.
//! Turning facts into a status is `brig_core::Termination::status`.

use brig_core::Termination;
use serde::{Deserialize, Serialize};

/// The outcome of one sandbox run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// One entry per step that ran (a failed compile step is the last).
    pub steps: Vec<StepReport>,
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// How it ended.
    pub termination: Termination,
    /// Captured stdout (the prefix, when the output limit was hit).
    #[serde(with = "crate::spec::bytes_as_base64")]
    pub stdout: Vec<u8>,
    /// Captured stderr.
    #[serde(with = "crate::spec::bytes_as_base64")]
    pub stderr: Vec<u8>,
    /// Wall-clock time, in milliseconds.
    pub wall_ms: u64,
    /// CPU time of every process of the step (from the cgroup), in milliseconds.
    pub cpu_ms: u64,
    /// Peak memory of the step's cgroup, in bytes.
    pub memory_peak_bytes: u64,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives output as it is produced (live passthrough, streaming to a client).
pub trait OutputSink {
    /// A chunk of step `step`'s output.
    fn output(&mut self, step: usize, stream: Stream, data: &[u8]);
}

/// A sink that drops everything (the report still carries the captured output).
pub struct Discard;

impl OutputSink for Discard {
    fn output(&mut self, _step: usize, _stream: Stream, _data: &[u8]) {}
}
