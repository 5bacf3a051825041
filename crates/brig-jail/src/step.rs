//! One sandbox of a run, from the helper's side: create its cgroup, clone its init into new
//! namespaces, write its id maps, release it (`start`), then watch it until its result is known
//! and report (`finish`); the rest of its end is a `teardown::Teardown`. Sessions use `start` and hand the running sandbox to `session_host`.

use brig_core::{Exit, KillReason, Limits, Termination};
use rustix::fd::OwnedFd;
use rustix::pipe::PipeFlags;
use rustix::process::Pid;
use std::ffi::CString;
use std::path::PathBuf;

use crate::cgroup::{CgroupLimits, Cgroups};
use crate::child::{ChildFds, ChildPlan};
use crate::identity::HostId;
use crate::report::{OutputSink, StepReport};
use crate::rlimits;
use crate::run::{JailError, os, os_errno, phase};
use crate::spec::{SandboxSpec, Step};
use crate::supervise::{self, StepFds};
use crate::sys::{self, Forked, PreparedExec};
use crate::teardown::Teardown;

pub(crate) struct StepContext<'a> {
    pub(crate) spec: &'a SandboxSpec,
    pub(crate) step: &'a Step,
    pub(crate) index: usize,
    /// The template mount namespace the sandbox's is copied from.
    pub(crate) template: &'a crate::template::Template,
    /// The run's own mounts and files, made by the sandbox's init.
    pub(crate) per_run: &'a [crate::mounts::MountOp],
    pub(crate) host: &'a HostId,
    pub(crate) cgroups: Option<&'a Cgroups>,
    /// The program's seccomp filter, sent to init once it is released.
    pub(crate) filter: &'a crate::seccomp::Filter,
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) control: Option<&'a OwnedFd>,
    pub(crate) sink: &'a mut dyn OutputSink,
    /// Session mode: the agent's end of the socket, and the kernel it starts.
    pub(crate) agent: Option<(OwnedFd, Option<crate::agent::KernelSpec>)>,
    /// Zygote mode: the zygote's end of the helper's socket.
    pub(crate) zygote: Option<OwnedFd>,
    /// Sweep stale cgroups once the sandbox runs.
    pub(crate) sweep_stale: bool,
    /// How many spare cgroups a one-shot run may take from and refill (0: none).
    pub(crate) spare_cgroups: u32,
}

/// A sandbox whose init is running (released by the helper).
pub(crate) struct Started {
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) cgroup: Option<crate::cgroup::Cgroup>,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
    pub(crate) error: OwnedFd,
    pub(crate) status: OwnedFd,
}

/// Namespaces of every sandbox: the network namespace was already entered by the helper.
const NAMESPACES: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS) as u64;

/// A close-on-exec pipe.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), JailError> {
    rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map_err(os_errno("pipe"))
}

/// `run-<pid>-<start time>-<index>`, and `-ns<inode>` after it when this process is not in the
/// host's PID namespace: the pid names the owner only in its own namespace, and a Brig of
/// another one (a container's, sharing the cgroup tree) must not take it for dead.
pub(crate) fn cgroup_name(index: usize) -> String {
    let name = format!(
        "run-{}-{}-{}",
        std::process::id(),
        process_start_time(),
        index
    );
    match pid_namespace() {
        Some(inode) => format!("{name}-ns{inode}"),
        None => name,
    }
}

/// The inode of the host's (initial) PID namespace, fixed by the kernel (`PROC_PID_INIT_INO`).
const INITIAL_PID_NAMESPACE: u64 = 0xEFFF_FFFC;

/// The inode of our PID namespace; `None` in the host's (read once).
pub(crate) fn pid_namespace() -> Option<u64> {
    static INODE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *INODE.get_or_init(|| match rustix::fs::stat("/proc/self/ns/pid") {
        Ok(st) if st.st_ino == INITIAL_PID_NAMESPACE => None,
        Ok(st) => Some(st.st_ino),
        // No namespace files: nothing to tell apart.
        Err(_) => None,
    })
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces and
/// parentheses, hence the search for the last `)`): index 0 is the state, 13 and 14 cutime and
/// cstime, 19 the start time.
pub(crate) fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = crate::run::read_proc_file(&format!("/proc/{pid}/stat")).ok()?;
    let after_comm = stat.get(stat.rfind(')')? + 2..)?;
    Some(after_comm.split(' ').map(str::to_owned).collect())
}

/// Our start time in clock ticks since boot (field 22 of /proc/self/stat): with the pid it
/// names a process uniquely, so a stale cgroup's owner can be recognised as gone.
pub fn process_start_time() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        stat_fields("self")
            .and_then(|f| f.get(19)?.parse().ok())
            .unwrap_or(0)
    })
}

/// Creates the step's cgroup, clones the sandbox's init, maps its ids, and releases it.
pub(crate) fn start(ctx: &mut StepContext<'_>) -> Result<Started, JailError> {
    let step = ctx.step;
    let limits: &Limits = &step.limits;
    phase("step start");
    let cgroup = match ctx.cgroups {
        // Its limits never change: only the hierarchies they need.
        // Named only when no spare is taken (the name reads `/proc/self/stat`).
        Some(cgroups) => Some(cgroups.create_for_run(
            || cgroup_name(ctx.index),
            &CgroupLimits {
                memory_bytes: limits.memory_bytes,
                pids: limits.pids + 1, // + the sandbox's init
                cpu_quota_percent: limits.cpu_quota_percent,
            },
            ctx.spare_cgroups,
        )?),
        None => None,
    };
    phase("cgroup created");
    let env: Vec<(String, String)> = step
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let exec = PreparedExec::new(&step.argv, &env).map_err(os("prepare exec"))?;
    let cwd = CString::new(step.cwd.as_str()).map_err(|e| os("prepare exec")(e.into()))?;
    let rlimit_plan = match cgroup {
        Some(_) => rlimits::plan(limits),
        None => rlimits::plan_without_cgroup(limits),
    };
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let (error_r, error_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let (seccomp_r, seccomp_w) = pipe()?;
    let stdin = match ctx.stdin.take() {
        Some(fd) => fd,
        None => rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(os_errno("open /dev/null"))?,
    };
    let cgroup_tasks = match &cgroup {
        Some(cgroup) => cgroup.open_self_attach()?,
        None => Vec::new(),
    };
    let plan = ChildPlan {
        per_run: ctx.per_run,
        hostname: &ctx.spec.hostname,
        read_exec: ctx.template.read_exec(),
        exec: &exec,
        cwd: &cwd,
        rlimits: &rlimit_plan,
        cgroup_tasks: &cgroup_tasks,
        kernel: ctx.agent.as_ref().and_then(|(_, kernel)| kernel.as_ref()),
        spread: crate::spread::Spread::before_clone(),
    };
    let agent_fd = ctx
        .agent
        .as_ref()
        .map(|(fd, _)| rustix::io::dup(fd))
        .transpose()
        .map_err(os_errno("dup the agent socket"))?;
    // On cgroup v2 the child is born in its cgroup; on v1 it is attached below.
    let cgroup_dir = match cgroup.as_ref().and_then(|c| c.unified_dir()) {
        Some(dir) => Some(
            rustix::fs::open(
                dir,
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(os_errno("open the cgroup"))?,
        ),
        None => None,
    };
    let mut cgroup_dir = cgroup_dir;
    // Landlock's ruleset, shared with the init (`landlock::SharedRuleset`); a zygote's forks
    // make their own.
    let mut ruleset = match ctx.zygote {
        None => Some(crate::landlock::SharedRuleset::create(ctx.spec.network)?),
        Some(_) => None,
    };
    ctx.template.enter()?;
    // The template's root, beneath which we add its rules while the init starts.
    let template_root = ruleset.as_ref().map(|_| {
        rustix::fs::open(
            "/",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(os_errno("open the template's root"))
    });
    let template_root = match template_root.transpose() {
        Ok(root) => root,
        Err(e) => {
            ctx.template.leave()?;
            return Err(e);
        }
    };
    let forked = match sys::clone_into_namespaces(
        NAMESPACES,
        cgroup_dir.as_ref().map(rustix::fd::AsFd::as_fd),
    ) {
        // A kernel or cgroup that refuses CLONE_INTO_CGROUP: clone, then attach.
        Err(_) if cgroup_dir.is_some() => {
            cgroup_dir = None;
            sys::clone_into_namespaces(NAMESPACES, None)
        }
        other => other,
    }
    .map_err(os("clone into new namespaces"));
    if !matches!(forked, Ok(Forked::Child)) {
        ctx.template.leave()?;
    }
    let forked = forked?;
    if let Forked::Parent { pid, .. } = &forked {
        if let (Some(spread), Some(pid)) = (&plan.spread, Pid::from_raw(*pid)) {
            spread.move_child(pid);
        }
        phase("cloned");
    }
    let (pid, pidfd) = match forked {
        Forked::Child => {
            drop((
                stdout_r,
                stderr_r,
                go_w,
                error_r,
                status_r,
                seccomp_w,
                template_root,
            ));
            crate::child::init(
                &plan,
                ChildFds {
                    go: go_r,
                    error: error_w,
                    status: status_w,
                    seccomp: seccomp_r,
                    stdin,
                    stdout: stdout_w,
                    stderr: stderr_w,
                    agent: agent_fd,
                    zygote: ctx.zygote.take(),
                    landlock: ruleset.take(),
                },
            )
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd.expect("clone3 returns a pidfd")),
    };
    let self_attached = !cgroup_tasks.is_empty();
    drop((
        stdout_w,
        stderr_w,
        go_r,
        error_w,
        status_w,
        seccomp_r,
        stdin,
        cgroup_tasks,
    ));
    // From outside: the id maps (only we, in the parent user namespace, may write them) and
    // the cgroup; then `go` releases the child, and its seccomp filter follows. Any failure
    // kills the child and removes its cgroup.
    let setup = (|| -> Result<(), JailError> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        std::fs::write(proc_dir.join("setgroups"), "deny").map_err(os("write setgroups"))?;
        std::fs::write(proc_dir.join("uid_map"), ctx.host.uid_map())
            .map_err(os("write uid_map"))?;
        std::fs::write(proc_dir.join("gid_map"), ctx.host.gid_map())
            .map_err(os("write gid_map"))?;
        phase("id maps written");
        if let (Some(ruleset), Some(root)) = (ruleset.as_mut(), template_root.as_ref()) {
            ruleset.add_template_rules(rustix::fd::AsFd::as_fd(root), ctx.template.read_exec())?;
            phase("template's landlock rules added");
        }
        // v1: the child moves itself (`cgroup_tasks`), so nothing to do from here. v2 without
        // CLONE_INTO_CGROUP (refused above): attach from outside.
        if let (Some(cgroup), None, true) = (&cgroup, &cgroup_dir, !self_attached) {
            cgroup.attach(pid)?;
        }
        phase("cloned, mapped, attached");
        rustix::io::write(&go_w, b"G").map_err(os_errno("release the sandbox"))?;
        drop(go_w);
        // While init sets itself up: its filter (at most 32 KiB: the pipe holds it, and
        // closing our end tells init it has all of it).
        let program = crate::seccomp::encode(ctx.filter.program()?);
        std::io::Write::write_all(&mut std::fs::File::from(seccomp_w), &program)
            .map_err(os("send the seccomp filter"))?;
        phase("seccomp filter sent");
        Ok(())
    })();
    drop((ruleset, template_root));
    if let Err(e) = setup {
        // Dropped, the teardown is done here and now.
        drop(Teardown::new(pid, pidfd, cgroup));
        return Err(e);
    }
    // The init sets itself up and the program runs meanwhile: open the counters' files now,
    // so that the program's end reads them at once.
    let mut cgroup = cgroup;
    if let Some(cgroup) = cgroup.as_mut() {
        cgroup.open_counters();
    }
    if ctx.sweep_stale
        && let Some(cgroups) = ctx.cgroups
    {
        crate::stale::sweep(cgroups);
    }
    drop(agent_fd);
    // Our copy of the agent's (or zygote's) end must go, or its socket never reports EOF.
    ctx.agent = None;
    ctx.zygote = None;
    Ok(Started {
        pid,
        pidfd,
        cgroup,
        stdout: stdout_r,
        stderr: stderr_r,
        error: error_r,
        status: status_r,
    })
}

impl Started {
    /// Ends a long-lived sandbox (a session's agent, a zygote): killing its init ends the PID
    /// namespace and everything in it; then its cgroup goes.
    pub(crate) fn tear_down(self) -> Result<(), JailError> {
        if let Some(cgroup) = &self.cgroup {
            let _ = cgroup.kill_all();
        }
        Teardown::new(self.pid, self.pidfd, self.cgroup).complete()
    }
}

/// Watches a started one-shot step until its result is known: the program's status is in and
/// its output drained (init has killed the rest of the sandbox by then), or init has gone. The
/// cgroup's counters are read at that point; the rest is the returned `Teardown`.
pub(crate) fn finish(
    started: Started,
    ctx: StepContext<'_>,
) -> Result<(StepReport, Teardown), JailError> {
    let Started {
        pid,
        pidfd,
        cgroup,
        stdout: stdout_r,
        stderr: stderr_r,
        error: error_r,
        status: status_r,
    } = started;
    let step = ctx.step;
    let limits = &step.limits;
    // The watch takes one pidfd; the teardown keeps the other.
    let watch_pidfd = rustix::io::fcntl_dupfd_cloexec(&pidfd, 0).map_err(os_errno("dup a pidfd"));
    let watched = watch_pidfd.and_then(|watch_pidfd| {
        supervise::watch(
            StepFds {
                stdout: stdout_r,
                stderr: stderr_r,
                error: error_r,
                status: status_r,
                pidfd: watch_pidfd,
                status_ends_run: true,
            },
            ctx.index,
            limits,
            cgroup.as_ref(),
            ctx.control,
            ctx.sink,
            &|| {},
        )
        .map_err(os("supervise"))
    });
    let observed = match watched {
        Ok(observed) => observed,
        Err(e) => {
            // Dropped, the teardown is done here and now.
            drop(Teardown::new(pid, pidfd, cgroup));
            return Err(e);
        }
    };
    phase("program exited");
    let stats = cgroup
        .as_ref()
        .map(crate::cgroup::Cgroup::stats)
        .transpose();
    phase("counters read");
    // Init waits to be killed: by whoever finishes the teardown (a reaper after we are gone,
    // for `brig run`), so that its exit is not on the way of the result.
    let teardown = Teardown::new(pid, pidfd, cgroup);
    let report = stats
        .map_err(JailError::from)
        .and_then(|stats| conclude(&step.name, observed, stats, limits.cpu_time_ms))?;
    Ok((report, teardown))
}

/// A step's report from what the watch observed and the cgroup's counters, or the setup
/// failure reported from inside.
pub(crate) fn conclude(
    name: &str,
    observed: supervise::Observed,
    stats: Option<crate::cgroup::CgroupStats>,
    cpu_budget_ms: u64,
) -> Result<StepReport, JailError> {
    let wall_ms = observed.wall.as_millis() as u64;
    if let (Some(failure), None) = (observed.setup_failure, observed.killed_for) {
        return Err(JailError::Setup(failure));
    }
    let exit = match (observed.exit, observed.killed_for) {
        (Some(exit), _) => exit,
        (None, Some(_)) => Exit::Signal(libc::SIGKILL),
        // Init was OOM-killed (or otherwise died) before it could report: the program went
        // with it.
        (None, None) if stats.as_ref().is_some_and(|s| s.oom_kills > 0) => {
            Exit::Signal(libc::SIGKILL)
        }
        (None, None) => return Err(JailError::LostStatus),
    };
    // Without a cgroup (Brig not root), init's `getrusage` counts: what it reaped, so not the
    // processes it killed at the end, and the peak of the largest process, not of the sum.
    let (cpu_ns, memory_peak_bytes) = match (&stats, observed.usage) {
        (Some(s), _) => (s.cpu_usage_ns, s.memory_peak_bytes),
        (None, Some(usage)) => (usage.cpu_ns, usage.max_rss_bytes),
        (None, None) => (0, 0),
    };
    // Without a cgroup no one polls the CPU budget: `RLIMIT_CPU` (set at the budget then,
    // rounded up to a second: `rlimits::plan_without_cgroup`) kills the process that spends
    // it, or it was spent across processes; either way the budget is what ended the run.
    let killed_for = match observed.killed_for {
        None if stats.is_none() && spent_cpu_budget(exit, cpu_ns, cpu_budget_ms) => {
            Some(KillReason::CpuTimeout)
        }
        reason => reason,
    };
    Ok(StepReport {
        name: name.to_owned(),
        termination: Termination {
            exit,
            killed_for,
            oom_killed: stats.as_ref().is_some_and(|s| s.oom_kills > 0),
        },
        stdout: observed.stdout,
        stderr: observed.stderr,
        wall_ms,
        cpu_ms: cpu_ns / 1_000_000,
        memory_peak_bytes,
    })
}

/// Whether a run without a cgroup spent its CPU budget: its usage reached it, or it was killed
/// the way `RLIMIT_CPU` kills (SIGKILL at the hard limit, SIGXCPU at a soft one) within a few
/// ticks of it. The usage `wait4` reports can fall short of the limit that fired (seen: 988 ms
/// at a 1 s limit on a quiet host, 930-948 ms for two busy threads while the test suite ran
/// beside them), since the limit is checked against the thread group's CPU timer at a tick,
/// while the usage is the threads' own tick-scaled times.
fn spent_cpu_budget(exit: Exit, cpu_ns: u64, cpu_budget_ms: u64) -> bool {
    const RLIMIT_SLACK_NS: u64 = 100_000_000;
    let budget_ns = cpu_budget_ms.saturating_mul(1_000_000);
    let killed_by_rlimit = matches!(exit, Exit::Signal(libc::SIGKILL | libc::SIGXCPU));
    cpu_ns >= budget_ns || (killed_by_rlimit && cpu_ns + RLIMIT_SLACK_NS >= budget_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_budget_is_spent_at_it_or_at_an_rlimit_kill_just_short_of_it() {
        assert!(spent_cpu_budget(Exit::Code(0), 1_000_000_000, 1000));
        assert!(!spent_cpu_budget(Exit::Code(0), 988_000_000, 1000));
        assert!(spent_cpu_budget(
            Exit::Signal(libc::SIGKILL),
            988_000_000,
            1000
        ));
        assert!(spent_cpu_budget(
            Exit::Signal(libc::SIGXCPU),
            988_000_000,
            1000
        ));
        assert!(spent_cpu_budget(
            Exit::Signal(libc::SIGKILL),
            930_000_000,
            1000
        ));
        assert!(!spent_cpu_budget(
            Exit::Signal(libc::SIGKILL),
            500_000_000,
            1000
        ));
        assert!(!spent_cpu_budget(
            Exit::Signal(libc::SIGSEGV),
            988_000_000,
            1000
        ));
    }
}
