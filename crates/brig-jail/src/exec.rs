//! The last steps before `execve`, the same for every program Brig starts: the sandboxed
//! program (PID 2 of the sandbox, `child`), the process tier's child (`process_tier`), and the
//! commands and Python kernel of a session (`agent::serve`). One routine, [`exec_child`], runs
//! them top to bottom; what differs between those callers (a cgroup v1 self-attach, fds kept
//! past stderr, seccomp, how a failure is reported) is plain data in an [`ExecPlan`].
//!
//! The plan is built in the parent before `fork`: the `execve` strings and pointer arrays
//! (`PreparedExec`), the working directory as a C string, the rlimits, the compiled seccomp
//! filter and every fd. On the way to `execve` the child only makes syscalls; only a step that
//! failed formats a message, just before `_exit`. Every caller forks from a single-threaded
//! process (the helper, the sandbox's init, the agent), which is what makes even that sound.
//!
//! A failure goes to the parent as a typed message; a successful `execve` closes the
//! close-on-exec error pipe, which the parent sees as EOF.
//!
//! Man pages: execve(2), dup2(2), setsid(2), chdir(2), setrlimit(2), close_range(2), seccomp(2).

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::process::Resource;
use std::ffi::CStr;
use std::fmt::Display;

use crate::sys::{self, PreparedExec};
use crate::{child, rlimits, seccomp};

/// Everything the child does between `fork` and `execve`, prepared before the fork.
pub(crate) struct ExecPlan<'a> {
    /// The program, its argv and its whole environment.
    pub(crate) exec: &'a PreparedExec,
    /// The program's stdin, stdout and stderr.
    pub(crate) stdio: [BorrowedFd<'a>; 3],
    /// fds the program keeps as 3, 4, ... in this order, made by [`keep_fds`].
    pub(crate) keep: &'a [OwnedFd],
    /// Working directory.
    pub(crate) cwd: &'a CStr,
    /// rlimits (soft = hard).
    pub(crate) rlimits: &'a [(Resource, u64)],
    /// cgroup v1 `tasks` files the child writes `0` to, moving itself into its cgroup.
    pub(crate) cgroup_tasks: &'a [std::fs::File],
    /// The compiled seccomp filter, installed last before `execve`.
    pub(crate) seccomp: Option<&'a seccompiler::BpfProgram>,
    /// Where a step that failed is reported.
    pub(crate) on_failure: OnFailure<'a>,
}

/// How the child reports a step that failed, before it exits with 127.
#[derive(Clone, Copy)]
pub(crate) enum OnFailure<'a> {
    /// A `SetupFailure` as JSON on this (close-on-exec) pipe, the step as its stage; the
    /// sandboxed program.
    Stage(BorrowedFd<'a>),
    /// A `SetupFailure` as JSON on this pipe, under one fixed `stage`, the step leading the
    /// message; the process tier.
    Under {
        /// The error pipe.
        pipe: BorrowedFd<'a>,
        /// The stage of every failure.
        stage: &'static str,
    },
    /// Only a failed `execve`, as one line on the program's stderr after `prefix`; a failure
    /// of an earlier step is silent (exit status 127); the agent.
    ExecOnStderr {
        /// What the line starts with.
        prefix: &'static str,
    },
}

/// Copies of `fds`, close-on-exec and numbered 64 and up, for [`ExecPlan::keep`]: the child
/// places them at 3, 4, ..., and from up there placing one cannot clobber another that happens
/// to be fd 3 or 4.
pub(crate) fn keep_fds(fds: &[&OwnedFd]) -> rustix::io::Result<Vec<OwnedFd>> {
    fds.iter()
        .map(|fd| rustix::io::fcntl_dupfd_cloexec(fd, 64))
        .collect()
}

/// A step that failed.
struct Failure {
    step: &'static str,
    /// What the step acted on (the cwd, the program), when the message names it.
    subject: Option<String>,
    error: String,
}

fn failed<E: Display>(step: &'static str) -> impl FnOnce(E) -> Failure {
    move |e| Failure {
        step,
        subject: None,
        error: e.to_string(),
    }
}

/// The child's side, after `fork`: runs `plan` and replaces the process with the program, or
/// reports the step that failed and exits with 127. Never returns.
pub(crate) fn exec_child(plan: &ExecPlan<'_>) -> ! {
    let failure = match prepare(plan) {
        Ok(()) => {
            let error = plan.exec.exec();
            Failure {
                step: "exec",
                subject: Some(plan.exec.program()),
                error: error.to_string(),
            }
        }
        Err(failure) => failure,
    };
    report(plan.on_failure, failure);
    sys::exit_now(127)
}

/// Every step up to `execve`, one per line, in the order they must run.
fn prepare(plan: &ExecPlan<'_>) -> Result<(), Failure> {
    // Into our cgroup first (v1; on v2 the parent attaches us), by moving ourselves: see
    // `Cgroup::open_self_attach` for why not from the parent.
    for tasks in plan.cgroup_tasks {
        rustix::io::write(tasks, b"0").map_err(failed("join the cgroup"))?;
    }
    let [stdin, stdout, stderr] = plan.stdio;
    rustix::stdio::dup2_stdin(stdin).map_err(failed("dup stdin"))?;
    rustix::stdio::dup2_stdout(stdout).map_err(failed("dup stdout"))?;
    rustix::stdio::dup2_stderr(stderr).map_err(failed("dup stderr"))?;
    // The kept fds at 3, 4, ...; `keep_fds` moved them out of the way first.
    for (i, fd) in plan.keep.iter().enumerate() {
        let mut target = sys::fd_number(3 + i as i32);
        let placed = rustix::io::dup2(fd, &mut target);
        std::mem::forget(target);
        placed.map_err(failed("place kept fds"))?;
    }
    // Own session and process group, which the supervisor kills as a whole.
    rustix::process::setsid().map_err(failed("setsid"))?;
    rustix::process::chdir(plan.cwd).map_err(|e| Failure {
        step: "chdir",
        subject: Some(plan.cwd.to_string_lossy().into_owned()),
        error: e.to_string(),
    })?;
    rlimits::apply(plan.rlimits).map_err(failed("setrlimit"))?;
    // The program inherits only stdio and the kept fds.
    sys::cloexec_from(3 + plan.keep.len() as u32).map_err(failed("close inherited fds"))?;
    // Seccomp last, so that the filter need not allow any of the steps above; `execve` is
    // the first syscall it judges. (Only the sandboxed program has a filter; the `phase`
    // lines are its part of the `BRIG_TRACE_PHASES` start-up trace.)
    if let Some(filter) = plan.seccomp {
        crate::run::phase("program: before seccomp");
        seccomp::install(filter).map_err(failed("seccomp"))?;
        crate::run::phase("program: seccomp installed");
    }
    Ok(())
}

/// Sends `failure` where the plan says, in the form that caller's parent expects.
fn report(on_failure: OnFailure<'_>, failure: Failure) {
    let Failure {
        step,
        subject,
        error,
    } = failure;
    match on_failure {
        OnFailure::Stage(pipe) => {
            let message = match subject {
                Some(subject) => format!("{subject}: {error}"),
                None => error,
            };
            child::report(pipe, step, message);
        }
        OnFailure::Under { pipe, stage } => {
            let message = match subject {
                Some(subject) => format!("{step} {subject}: {error}"),
                None => format!("{step}: {error}"),
            };
            child::report(pipe, stage, message);
        }
        OnFailure::ExecOnStderr { prefix } => {
            if step == "exec" {
                let subject = subject.unwrap_or_default();
                let line = format!("{prefix}{step} {subject}: {error}\n");
                let _ = rustix::io::write(rustix::stdio::stderr(), line.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;

    /// What `report` sends on a pipe for `failure`, as (stage, message): as `Stage`, or as
    /// `Under` the given stage.
    fn sent(under: Option<&'static str>, failure: Failure) -> (String, String) {
        let (read, write) = rustix::pipe::pipe().unwrap();
        let on_failure = match under {
            Some(stage) => OnFailure::Under {
                pipe: write.as_fd(),
                stage,
            },
            None => OnFailure::Stage(write.as_fd()),
        };
        report(on_failure, failure);
        drop(write);
        let mut json = vec![0u8; 4096];
        let n = rustix::io::read(&read, &mut json).unwrap();
        let sent: child::SetupFailure = serde_json::from_slice(&json[..n]).unwrap();
        (sent.stage, sent.message)
    }

    fn chdir_failed() -> Failure {
        Failure {
            step: "chdir",
            subject: Some("/work/x".into()),
            error: "No such file or directory (os error 2)".into(),
        }
    }

    fn setsid_failed() -> Failure {
        Failure {
            step: "setsid",
            subject: None,
            error: "Operation not permitted (os error 1)".into(),
        }
    }

    #[test]
    fn the_sandboxed_program_reports_the_step_as_its_stage() {
        assert_eq!(
            sent(None, chdir_failed()),
            (
                "chdir".into(),
                "/work/x: No such file or directory (os error 2)".into()
            )
        );
        assert_eq!(
            sent(None, setsid_failed()),
            (
                "setsid".into(),
                "Operation not permitted (os error 1)".into()
            )
        );
    }

    #[test]
    fn the_process_tier_reports_the_step_in_the_message() {
        let under = Some("process tier");
        assert_eq!(
            sent(under, chdir_failed()),
            (
                "process tier".into(),
                "chdir /work/x: No such file or directory (os error 2)".into()
            )
        );
        assert_eq!(
            sent(under, setsid_failed()),
            (
                "process tier".into(),
                "setsid: Operation not permitted (os error 1)".into()
            )
        );
    }
}
