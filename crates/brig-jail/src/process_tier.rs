//! The `process` tier: the same spec run as a plain child process, for hosts without user
//! namespaces or for trusted code, and only when asked for (`--tier process`, or `auto` on a
//! host where the namespace tier is unusable — never a silent downgrade).
//!
//! The child gets its own session and process group, only the spec's environment, a private
//! temporary work dir (`/work` in argv and cwd is replaced by its path), the same rlimits, and
//! the same wall, CPU and output limits from the supervisor. When Brig runs as root it also gets
//! a cgroup (memory, pids, CPU accounting); without one, memory is bounded by `RLIMIT_AS`,
//! which makes allocations fail instead of producing a `memory_limit` verdict. There is no
//! filesystem, network or syscall isolation: the program sees the host as the caller does.

use brig_core::Exit;
use rustix::fd::{AsFd, OwnedFd};
use rustix::process::{Pid, Signal};
use std::ffi::CString;
use std::path::Path;

use crate::cgroup::{CgroupLimits, Cgroups};
use crate::exec::{self, ExecPlan, OnFailure};
use crate::report::{OutputSink, Report};
use crate::run::{JailError, cgroup_name, os};
use crate::spec::{SandboxSpec, WORK_DIR};
use crate::step::pipe;
use crate::supervise::{self, StepFds};
use crate::sys::{self, Forked, PreparedExec};
use crate::{JailConfig, rlimits};

/// Replaces the `/work` prefix of a path-like argument with the real work dir.
fn rebase(arg: &str, work: &Path) -> String {
    match arg.strip_prefix(WORK_DIR) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", work.display())
        }
        _ => arg.to_string(),
    }
}

/// Runs every step of `spec` as plain child processes.
pub fn run(
    config: &JailConfig,
    spec: &SandboxSpec,
    stdin: Option<OwnedFd>,
    control: Option<&OwnedFd>,
    sink: &mut dyn OutputSink,
    cgroups: Option<&Cgroups>,
) -> Result<Report, JailError> {
    let work = config.runtime_dir.join(format!(
        "work-{}-{}",
        std::process::id(),
        crate::run::process_start_time()
    ));
    std::fs::create_dir_all(&work).map_err(os("create the work dir"))?;
    if let (true, Some(cgroups)) = (config.sweep_while_running, cgroups) {
        crate::stale::sweep(cgroups);
    }
    let result = run_in(&work, spec, stdin, control, sink, cgroups);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_in(
    work: &Path,
    spec: &SandboxSpec,
    mut stdin: Option<OwnedFd>,
    control: Option<&OwnedFd>,
    sink: &mut dyn OutputSink,
    cgroups: Option<&Cgroups>,
) -> Result<Report, JailError> {
    for file in &spec.files {
        let path = work.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(os("create a work dir folder"))?;
        }
        std::fs::write(&path, &file.content).map_err(os("write a file"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))
            .map_err(os("chmod a file"))?;
    }
    let mut report = Report { steps: Vec::new() };
    for (index, step) in spec.steps.iter().enumerate() {
        let argv: Vec<String> = step.argv.iter().map(|a| rebase(a, work)).collect();
        let cwd =
            CString::new(rebase(&step.cwd, work)).map_err(|e| os("prepare exec")(e.into()))?;
        let mut env: Vec<(String, String)> = step
            .env
            .iter()
            .map(|(k, v)| (k.clone(), rebase(v, work)))
            .collect();
        env.retain(|(k, _)| k != "TMPDIR");
        env.push(("TMPDIR".into(), work.display().to_string()));
        let exec = PreparedExec::new(&argv, &env).map_err(os("prepare exec"))?;
        let rlimit_plan = match cgroups {
            Some(_) => rlimits::plan(&step.limits),
            None => rlimits::plan_without_cgroup(&step.limits),
        };
        let cgroup = match cgroups {
            Some(c) => Some(c.create_for_limits(
                &cgroup_name(index),
                &CgroupLimits {
                    memory_bytes: step.limits.memory_bytes,
                    pids: step.limits.pids,
                    cpu_quota_percent: step.limits.cpu_quota_percent,
                },
            )?),
            None => None,
        };
        let step_stdin = if step.stdin { stdin.take() } else { None };
        let (stdout_r, stdout_w) = pipe()?;
        let (stderr_r, stderr_w) = pipe()?;
        let (error_r, error_w) = pipe()?;
        let (status_r, status_w) = pipe()?;
        drop(status_w);
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| os("open /dev/null")(e.into()))?;
        let program_stdin = step_stdin.unwrap_or(null);
        let cgroup_tasks = match &cgroup {
            Some(c) => c.open_self_attach()?,
            None => Vec::new(),
        };
        let plan = ExecPlan {
            exec: &exec,
            stdio: [program_stdin.as_fd(), stdout_w.as_fd(), stderr_w.as_fd()],
            keep: &[],
            cwd: &cwd,
            rlimits: &rlimit_plan,
            cgroup_tasks: &cgroup_tasks,
            seccomp: None,
            on_failure: OnFailure::Under {
                pipe: error_w.as_fd(),
                stage: "process tier",
            },
        };
        let pid = match sys::fork().map_err(os("fork"))? {
            Forked::Child => exec::exec_child(&plan),
            Forked::Parent { pid, .. } => pid,
        };
        drop(cgroup_tasks);
        drop((stdout_w, stderr_w, error_w, program_stdin));
        let rpid = Pid::from_raw(pid).expect("fork returned a pid");
        if let Some(cgroup) = &cgroup
            && cgroup.unified_dir().is_some()
        {
            // v2: attach from here (v1 children move themselves, see `open_self_attach`).
            // The child's first instructions are ours, not the program's, so attaching after
            // fork loses no accounting that matters.
            cgroup.attach(pid)?;
        }
        let pidfd = rustix::process::pidfd_open(rpid, rustix::process::PidfdFlags::empty())
            .map_err(|e| os("pidfd_open")(e.into()))?;
        let kill_group = || {
            let _ = rustix::process::kill_process_group(rpid, Signal::KILL);
        };
        let observed = supervise::watch(
            StepFds {
                stdout: stdout_r,
                stderr: stderr_r,
                error: error_r,
                status: status_r,
                pidfd,
                status_ends_run: false,
            },
            index,
            &step.limits,
            cgroup.as_ref(),
            control,
            sink,
            &kill_group,
        )
        .map_err(os("supervise"))?;
        // The program's own usage and its waited-for descendants': without a cgroup, its CPU
        // time and peak memory (`step::conclude`).
        let (raw_status, usage) = sys::wait_with_usage(pid).map_err(os("wait4"))?;
        kill_group();
        let stats = match &cgroup {
            Some(c) => {
                let _ = c.kill_all();
                Some(c.stats()?)
            }
            None => None,
        };
        if let Some(c) = cgroup {
            c.remove()?;
        }
        let observed = supervise::Observed {
            exit: Some(supervise::decode_status(raw_status)),
            usage: Some(usage),
            ..observed
        };
        let step_report =
            crate::step::conclude(&step.name, observed, stats, step.limits.cpu_time_ms)?;
        let succeeded = step_report.termination.exit == Exit::Code(0)
            && step_report.termination.killed_for.is_none();
        report.steps.push(step_report);
        if !succeeded {
            break;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_paths_are_rebased_and_others_kept() {
        let work = Path::new("/run/brig/work-1-2");
        assert_eq!(rebase("/work/main", work), "/run/brig/work-1-2/main");
        assert_eq!(rebase("/work", work), "/run/brig/work-1-2");
        assert_eq!(rebase("/workshop", work), "/workshop");
        assert_eq!(rebase("-O2", work), "-O2");
    }
}
