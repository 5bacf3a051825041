//! The agent: what keeps a long-lived sandbox (a session) alive and does its work.
//!
//! In a session the sandbox's init does not run one program: after the same setup as a one-shot
//! run (namespaces, new root, no capabilities, Landlock, and here also seccomp on itself, so that
//! everything it starts inherits the filter) it serves requests on a socket inherited from the
//! helper: run a command or a Python cell, stream its output, kill it, read and write files in
//! the work dir, report usage. It is PID 1 of the sandbox's PID namespace, so the code it runs
//! cannot signal it; it is not dumpable, so that code cannot touch its memory either.
//!
//! The helper, outside, relays between the engine and the agent and adds what only the outside
//! can know: the cgroup's CPU time, memory peak and OOM kills per execution; it also enforces
//! each execution's wall-clock deadline, CPU budget and output limit by asking the agent to kill.
//!
//! Wire format: frames (`crate::frame`), protocol version [`PROTOCOL`]. Tags:
//! - to the agent: `q` a [`Request`] (JSON);
//! - from the agent: `e` an [`Event`] (JSON), `o` output (`[u64 exec id][u8 stream][bytes]`),
//!   `f` a file's bytes (`[u64 request id][bytes]`).

pub mod files;
pub mod serve;

use brig_core::{Exit, Limits};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the agent protocol; the agent announces it in [`Event::Hello`].
pub const PROTOCOL: u32 = 1;

/// The Python kernel a session runs, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// The kernel's argv (`/usr/bin/python3 -I -u /etc/brig/brig_kernel.py ...`).
    pub argv: Vec<String>,
    /// How long the kernel may take to become ready (preloading pandas and matplotlib is slow).
    pub ready_timeout_ms: u64,
    /// After an interrupt, how long a cell may take to stop before the kernel is restarted.
    pub interrupt_grace_ms: u64,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// No deny_unknown_fields here or on `Request`: serde does not support it with `flatten`.
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecKind {
    /// A program, as a new process group in the work dir.
    Command {
        /// Program and arguments (absolute program path).
        argv: Vec<String>,
        /// Environment (nothing else is inherited).
        env: BTreeMap<String, String>,
        /// Working directory.
        cwd: String,
    },
    /// A cell of the session's Python kernel.
    Cell {
        /// The code.
        code: String,
    },
}

/// A request to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run something; events follow, ending with `Done`.
    Exec {
        /// The execution's id (chosen by the caller).
        id: u64,
        /// What to run.
        #[serde(flatten)]
        kind: ExecKind,
        /// Its limits (rlimits are applied by the agent; time and output by the helper).
        limits: Limits,
        /// Bytes for a command's stdin.
        #[serde(default, with = "crate::spec::bytes_as_base64")]
        stdin: Vec<u8>,
    },
    /// Stop an execution: a command's process group is killed, a cell interrupted (and the
    /// kernel restarted if it does not stop within the grace period).
    Kill {
        /// The execution.
        id: u64,
    },
    /// Write a file in the work dir (parents created).
    WriteFile {
        /// Request id, echoed in the reply.
        rid: u64,
        /// Path relative to the work dir.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Content.
        #[serde(with = "crate::spec::bytes_as_base64")]
        content: Vec<u8>,
    },
    /// Read a file of the work dir (reply: an `f` frame, or `FileError`).
    ReadFile {
        /// Request id.
        rid: u64,
        /// Path relative to the work dir.
        path: String,
    },
    /// List a directory of the work dir.
    ListFiles {
        /// Request id.
        rid: u64,
        /// Path relative to the work dir (`""` or `.` for the work dir itself).
        path: String,
    },
    /// Delete a file or directory (recursively) of the work dir.
    DeleteFile {
        /// Request id.
        rid: u64,
        /// Path relative to the work dir.
        path: String,
    },
    /// Report usage.
    Usage {
        /// Request id.
        rid: u64,
    },
    /// End the session.
    Shutdown,
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Name.
    pub name: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
}

/// The outcome of a cell, as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellOutcome {
    /// `ok`, `runtime_error`, `compile_error` or `interrupted`.
    pub status: String,
    /// The last expression's mime bundle.
    pub result: Option<serde_json::Value>,
    /// `{name, value, traceback}`.
    pub error: Option<serde_json::Value>,
}

/// An event from the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The agent is ready (and the kernel, if the session has one).
    Hello {
        /// Protocol version.
        protocol: u32,
        /// The kernel's ready message, if there is a kernel.
        kernel: Option<serde_json::Value>,
    },
    /// Display data of a cell (a figure, `display(obj)`).
    Display {
        /// The execution.
        id: u64,
        /// The mime bundle.
        data: serde_json::Value,
    },
    /// An execution ended.
    Done {
        /// The execution.
        id: u64,
        /// How the command ended (commands; a kernel that died).
        exit: Option<Exit>,
        /// The kernel's account of the cell (cells).
        cell: Option<CellOutcome>,
        /// The kernel was restarted (it died, or ignored an interrupt): globals are gone.
        kernel_restarted: bool,
        /// Why the agent could not run it.
        error: Option<String>,
    },
    /// A file operation succeeded (write, delete).
    FileOk {
        /// Request id.
        rid: u64,
    },
    /// A directory listing.
    FileList {
        /// Request id.
        rid: u64,
        /// Entries, sorted by name.
        entries: Vec<FileEntry>,
    },
    /// A file operation failed.
    FileError {
        /// Request id.
        rid: u64,
        /// `not_found`, `invalid_path`, `too_large`, `is_directory`, `not_directory` or `io`.
        kind: String,
        /// A sentence for a person.
        message: String,
    },
    /// Usage of the sandbox, from inside.
    Usage {
        /// Request id.
        rid: u64,
        /// Processes alive (including the agent and the kernel).
        pids: u32,
    },
}

/// The helper's report of a finished execution (sent to the engine as an `r` frame): the
/// agent's account plus what only the outside knows (the cgroup's counters, which limit the
/// helper enforced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecReport {
    /// The execution.
    pub id: u64,
    /// Its one status.
    pub status: brig_core::Status,
    /// For `timeout`: which limit.
    pub limit: Option<brig_core::TimeoutKind>,
    /// A command's exit code.
    pub exit_code: Option<i32>,
    /// The signal that ended a command (or the kernel).
    pub signal: Option<i32>,
    /// Wall-clock time.
    pub wall_ms: u64,
    /// CPU time of the session's cgroup during the execution.
    pub cpu_ms: u64,
    /// Peak memory during the execution (v1; the session's peak on v2).
    pub memory_peak_bytes: u64,
    /// A cell's outcome.
    pub cell: Option<CellOutcome>,
    /// The kernel was restarted: the session's Python state is gone.
    pub kernel_restarted: bool,
    /// Why the agent could not run it (an internal error).
    pub error: Option<String>,
}

/// The helper's usage report (an `u` frame).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Request id.
    pub rid: u64,
    /// Processes alive in the sandbox.
    pub pids: u32,
    /// CPU time of the session so far.
    pub cpu_ms: u64,
    /// Peak memory of the session (since the last execution started, on v1).
    pub memory_peak_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let requests = [
            Request::Exec {
                id: 7,
                kind: ExecKind::Cell { code: "1+1".into() },
                limits: Limits::default(),
                stdin: vec![1, 2],
            },
            Request::Exec {
                id: 8,
                kind: ExecKind::Command {
                    argv: vec!["/bin/true".into()],
                    env: BTreeMap::new(),
                    cwd: "/work".into(),
                },
                limits: Limits::default(),
                stdin: Vec::new(),
            },
            Request::Kill { id: 7 },
            Request::Shutdown,
        ];
        for request in requests {
            let json = serde_json::to_vec(&request).unwrap();
            assert_eq!(serde_json::from_slice::<Request>(&json).unwrap(), request);
        }
    }
}
