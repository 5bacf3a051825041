//! From the facts of how a run ended to exactly one status.
//!
//! Every tier reports the same facts — how the program exited, whether the supervisor killed it
//! and why, whether the memory controller OOM-killed anything — and this one function decides.
//! The order matters: a limit the supervisor enforced explains a SIGKILL better than the signal
//! itself, and an OOM kill counted by the cgroup explains it better than "exit 137".

use crate::result::{Status, TimeoutKind};
use serde::{Deserialize, Serialize};

/// How the program's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Ended by this signal.
    Signal(i32),
}

/// Why the supervisor killed the sandbox, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillReason {
    /// The wall-clock deadline passed.
    WallTimeout,
    /// The CPU-time budget was spent.
    CpuTimeout,
    /// More output than allowed.
    OutputLimit,
    /// The caller cancelled the run.
    Cancelled,
}

/// The facts a tier reports about the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Termination {
    /// How the main process ended.
    pub exit: Exit,
    /// Set when the supervisor ended the run.
    pub killed_for: Option<KillReason>,
    /// The memory controller killed at least one process of the run (from its own counters).
    pub oom_killed: bool,
}

const SIGXCPU: i32 = 24;

impl KillReason {
    /// The status of a run the supervisor ended for this reason: it explains the end better
    /// than the signal that carried it out.
    pub fn status(self) -> (Status, Option<TimeoutKind>) {
        match self {
            KillReason::OutputLimit => (Status::OutputLimit, None),
            KillReason::WallTimeout => (Status::Timeout, Some(TimeoutKind::Wall)),
            KillReason::CpuTimeout => (Status::Timeout, Some(TimeoutKind::Cpu)),
            KillReason::Cancelled => (Status::Cancelled, None),
        }
    }
}

impl Termination {
    /// The one status this run gets, and for timeouts which limit was hit.
    pub fn status(&self) -> (Status, Option<TimeoutKind>) {
        if let Some(reason) = self.killed_for {
            return reason.status();
        }
        match self.exit {
            Exit::Code(0) => (Status::Ok, None),
            _ if self.oom_killed => (Status::MemoryLimit, None),
            Exit::Code(_) => (Status::RuntimeError, None),
            // RLIMIT_CPU is the kernel's backstop for the CPU budget.
            Exit::Signal(SIGXCPU) => (Status::Timeout, Some(TimeoutKind::Cpu)),
            Exit::Signal(_) => (Status::Killed, None),
        }
    }

    /// The exit code, when the program exited.
    pub fn exit_code(&self) -> Option<i32> {
        match self.exit {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        }
    }

    /// The signal, when the program was ended by one.
    pub fn signal(&self) -> Option<i32> {
        match self.exit {
            Exit::Signal(s) => Some(s),
            Exit::Code(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(exit: Exit, killed_for: Option<KillReason>, oom_killed: bool) -> Status {
        Termination {
            exit,
            killed_for,
            oom_killed,
        }
        .status()
        .0
    }

    #[test]
    fn exits() {
        assert_eq!(t(Exit::Code(0), None, false), Status::Ok);
        assert_eq!(t(Exit::Code(3), None, false), Status::RuntimeError);
        assert_eq!(t(Exit::Signal(11), None, false), Status::Killed);
    }

    #[test]
    fn supervisor_reasons_win_over_the_signal() {
        let sig = Exit::Signal(9);
        assert_eq!(
            t(sig, Some(KillReason::OutputLimit), false),
            Status::OutputLimit
        );
        assert_eq!(t(sig, Some(KillReason::WallTimeout), true), Status::Timeout);
        assert_eq!(
            Termination {
                exit: sig,
                killed_for: Some(KillReason::CpuTimeout),
                oom_killed: false
            }
            .status(),
            (Status::Timeout, Some(TimeoutKind::Cpu))
        );
    }

    #[test]
    fn oom_comes_from_the_counter_not_from_137() {
        assert_eq!(t(Exit::Signal(9), None, true), Status::MemoryLimit);
        assert_eq!(t(Exit::Signal(9), None, false), Status::Killed);
        assert_eq!(t(Exit::Code(137), None, false), Status::RuntimeError);
        // A shell whose child was OOM-killed exits non-zero: still the memory limit.
        assert_eq!(t(Exit::Code(1), None, true), Status::MemoryLimit);
    }

    #[test]
    fn sigxcpu_is_a_cpu_timeout() {
        assert_eq!(
            Termination {
                exit: Exit::Signal(SIGXCPU),
                killed_for: None,
                oom_killed: false
            }
            .status(),
            (Status::Timeout, Some(TimeoutKind::Cpu))
        );
    }
}
