//! The helper's whole job for one sandbox, in the order it happens. It must run in a
//! single-threaded process — `brig run` itself, or the `brig __sandbox-helper` re-exec that a
//! multi-threaded caller spawns (see `helper.rs`) — because it forks into the sandbox and runs
//! Rust there, and because it changes its own namespaces.
//!
//! 1. validate the spec; compile the seccomp filter; claim a host id;
//! 2. drop supplementary groups (they would follow the sandbox, unmapped but effective);
//! 3. enter an empty network namespace (unless the spec enables networking);
//! 4. enter a private mount namespace and build the new root (`mounts::plan` + `apply`);
//! 5. per step: a cgroup; pipes; `clone3` into user, PID, mount, IPC and UTS namespaces; id maps
//!    and cgroup attach from outside; then release the child and `supervise::watch` it;
//!    read the cgroup's counters, remove it, and stop at the first step that did not exit 0.

use brig_core::{Exit, Limits, Termination};
use rustix::fd::OwnedFd;
use rustix::pipe::PipeFlags;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cgroup::{CgroupError, CgroupLimits, Cgroups};
use crate::child::{ChildFds, ChildPlan, SetupFailure};
use crate::identity::{HostId, IdentityError};
use crate::mounts::{self, MountError};
use crate::report::{OutputSink, Report, StepReport};
use crate::seccomp::{self, SeccompPolicy};
use crate::spec::{Isolation, SandboxSpec, SpecError, Step};
use crate::supervise::{self, StepFds};
use crate::sys::{self, Forked, PreparedExec};
use crate::{JailConfig, rlimits};

/// Why a sandbox could not be run (as opposed to a program that ran and failed).
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// The spec is invalid.
    #[error("invalid sandbox spec: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Spec(Vec<SpecError>),
    /// The caller is multi-threaded; the helper must be used.
    #[error("the sandbox must be started from a single-threaded process (use Jail::run)")]
    NotSingleThreaded,
    /// Claiming a host id failed.
    #[error("sandbox id: {0}")]
    Identity(#[from] IdentityError),
    /// A cgroup operation failed.
    #[error("cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    /// Building the root failed.
    #[error("filesystem: {0}")]
    Mount(#[from] MountError),
    /// The seccomp filter did not compile.
    #[error("seccomp: {0}")]
    Seccomp(#[from] seccomp::SeccompError),
    /// A namespace or process operation of the helper failed.
    #[error("{op}: {source}")]
    Os {
        /// What the helper was doing.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A setup step inside the sandbox failed.
    #[error("sandbox setup failed at {}: {}", .0.stage, .0.message)]
    Setup(SetupFailure),
    /// The sandbox's init died without reporting the program's status.
    #[error("the sandbox's init exited without reporting the program's status")]
    LostStatus,
    /// The helper process failed (re-exec mode).
    #[error("sandbox helper: {0}")]
    Helper(String),
}

/// With `BRIG_TRACE_PHASES` set, the helper prints how long each setup phase took (stderr),
/// which is how the start-up cost was broken down for the benchmark notes.
pub fn phase(name: &str) {
    use std::sync::OnceLock;
    static START: OnceLock<Option<Instant>> = OnceLock::new();
    let start = START.get_or_init(|| std::env::var_os("BRIG_TRACE_PHASES").map(|_| Instant::now()));
    if let Some(start) = start {
        eprintln!(
            "brig-phase {:>8.3} ms  {name}",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
}

fn os(op: &'static str) -> impl FnOnce(io::Error) -> JailError {
    move |source| JailError::Os { op, source }
}

fn os_errno(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> JailError {
    move |e| JailError::Os {
        op,
        source: e.into(),
    }
}

/// Fails unless the calling process has exactly one thread.
pub fn assert_single_threaded() -> Result<(), JailError> {
    let status =
        std::fs::read_to_string("/proc/self/status").map_err(os("read /proc/self/status"))?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u32>().ok());
    if threads == Some(1) {
        Ok(())
    } else {
        Err(JailError::NotSingleThreaded)
    }
}

/// Runs `spec` from this (single-threaded) process. Changes this process's namespaces: call it
/// from a process that exists for this run (`brig run`, the helper).
pub fn run_here(
    config: &JailConfig,
    spec: &SandboxSpec,
    stdin: Option<OwnedFd>,
    control: Option<&OwnedFd>,
    sink: &mut dyn OutputSink,
) -> Result<Report, JailError> {
    phase("start");
    assert_single_threaded()?;
    spec.validate().map_err(JailError::Spec)?;
    let filter = seccomp::compile(&SeccompPolicy {
        allow_network: spec.network,
    })?;
    phase("seccomp compiled");
    let root_user = rustix::process::geteuid().is_root();
    // Without root, cgroups are not ours to create (unless delegated, which Brig does not
    // assume): the run has rlimits only, and `brig doctor` says so.
    phase("before cgroup detect");
    let cgroups = match Cgroups::detect(&config.cgroup_config()) {
        Ok(c) if root_user => Some(c),
        Ok(_) | Err(_) if !config.require_cgroups => None,
        Ok(_) => {
            return Err(JailError::Helper(
                "cgroups are required but Brig is not root".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if spec.isolation == Isolation::Process {
        return crate::process_tier::run(config, spec, stdin, control, sink, cgroups.as_ref());
    }
    let host = if root_user {
        HostId::claim(&config.runtime_dir, config.uid_range(), std::process::id())?
    } else {
        enter_own_user_namespace()?;
        HostId::namespace_root()
    };
    phase("seccomp compiled, id claimed");
    if root_user {
        rustix::thread::set_thread_groups(&[]).map_err(os_errno("setgroups"))?;
    }
    // An empty network namespace, entered before the private mount namespace so that a new
    // pool entry's bind mount lands in the host's mount namespace.
    let _netns = match (spec.network, root_user) {
        (true, _) => None,
        (false, true) => Some(
            crate::netns::enter(&config.runtime_dir, config.netns_pool)
                .map_err(os("enter a network namespace"))?,
        ),
        (false, false) => {
            crate::netns::fresh().map_err(os("unshare network namespace"))?;
            None
        }
    };
    phase("network namespace");
    let plan = mounts::plan(spec, (host.uid, host.gid), root_user)?;
    let root = config.runtime_dir.join("root");
    // Our original mount namespace, to return to once the last sandbox is cloned: the private
    // one (with the new root) is then torn down while the program runs, not when we exit.
    let host_mounts = rustix::fs::open(
        "/proc/thread-self/ns/mnt",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()
    .filter(|_| root_user);
    sys::unshare_mount_namespace().map_err(os("unshare mount namespace"))?;
    mounts::prepare_root(&root)?;
    mounts::apply(&root, &plan)?;
    phase("root built");

    if let Some(session) = &spec.session {
        return run_session(
            spec,
            session,
            &root,
            &host,
            cgroups.as_ref(),
            &filter,
            control,
            sink,
        );
    }
    let mut report = Report { steps: Vec::new() };
    let mut stdin = stdin;
    for (index, step) in spec.steps.iter().enumerate() {
        let step_stdin = if step.stdin { stdin.take() } else { None };
        let step_report = run_step(StepContext {
            spec,
            step,
            index,
            root: &root,
            host: &host,
            cgroups: cgroups.as_ref(),
            filter: &filter,
            stdin: step_stdin,
            control,
            sink,
            agent: None,
            leave_to: if index + 1 == spec.steps.len() {
                host_mounts.as_ref()
            } else {
                None
            },
        })?;
        let succeeded = step_report.termination.exit == Exit::Code(0)
            && step_report.termination.killed_for.is_none();
        report.steps.push(step_report);
        if !succeeded {
            break;
        }
    }
    Ok(report)
}

/// Unprivileged mode: a user namespace of our own in which we are root (mapped to our own ids,
/// the only ones an unprivileged process may map), so that we may create the other namespaces
/// and build the root; each sandbox nests its own user namespace inside it.
fn enter_own_user_namespace() -> Result<(), JailError> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    sys::unshare_user_namespace().map_err(os("unshare user namespace"))?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(os("write setgroups"))?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1\n")).map_err(os("write uid_map"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1\n")).map_err(os("write gid_map"))
}

/// Session mode: the sandbox's init becomes the agent and the helper relays until the end.
#[allow(clippy::too_many_arguments)]
fn run_session(
    spec: &SandboxSpec,
    session: &crate::spec::SessionSpec,
    root: &Path,
    host: &HostId,
    cgroups: Option<&Cgroups>,
    filter: &seccompiler::BpfProgram,
    control: Option<&OwnedFd>,
    sink: &mut dyn OutputSink,
) -> Result<Report, JailError> {
    let Some(control) = control else {
        return Err(JailError::Helper(
            "a session needs the helper's socket".into(),
        ));
    };
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(os("socketpair"))?;
    let step = Step {
        name: "session".into(),
        // Never executed: the agent takes the program's place.
        argv: vec!["/proc/self/exe".into()],
        env: Default::default(),
        cwd: crate::spec::WORK_DIR.into(),
        limits: session.limits,
        stdin: false,
    };
    let mut ctx = StepContext {
        spec,
        step: &step,
        index: 0,
        root,
        host,
        cgroups,
        filter,
        stdin: None,
        control: Some(control),
        sink,
        agent: Some((OwnedFd::from(theirs), session.kernel.clone())),
        leave_to: None,
    };
    let started = start(&mut ctx)?;
    crate::session_host::serve(started, ours, control)?;
    Ok(Report { steps: Vec::new() })
}

struct StepContext<'a> {
    spec: &'a SandboxSpec,
    step: &'a Step,
    index: usize,
    root: &'a Path,
    host: &'a HostId,
    cgroups: Option<&'a Cgroups>,
    filter: &'a seccompiler::BpfProgram,
    stdin: Option<OwnedFd>,
    control: Option<&'a OwnedFd>,
    sink: &'a mut dyn OutputSink,
    /// Session mode: the agent's end of the socket, and the kernel it starts.
    agent: Option<(OwnedFd, Option<crate::agent::KernelSpec>)>,
    /// The helper's original mount namespace, to return to after cloning the last step.
    leave_to: Option<&'a OwnedFd>,
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

fn pipe() -> Result<(OwnedFd, OwnedFd), JailError> {
    rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map_err(os_errno("pipe"))
}

pub(crate) fn cgroup_name(index: usize) -> String {
    format!(
        "run-{}-{}-{}",
        std::process::id(),
        process_start_time(),
        index
    )
}

/// Our start time in clock ticks since boot (field 22 of /proc/self/stat): with the pid it
/// names a process uniquely, so a stale cgroup's owner can be recognised as gone.
pub fn process_start_time() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after_comm = &stat[stat.rfind(')')? + 2..];
            after_comm.split(' ').nth(19)?.parse().ok()
        })
        .unwrap_or(0)
}

fn run_step(mut ctx: StepContext<'_>) -> Result<StepReport, JailError> {
    let started = start(&mut ctx)?;
    finish(started, ctx)
}

/// Creates the step's cgroup, clones the sandbox's init, maps its ids, and releases it.
fn start(ctx: &mut StepContext<'_>) -> Result<Started, JailError> {
    let step = ctx.step;
    let limits: &Limits = &step.limits;
    phase("step start");
    let cgroup = match ctx.cgroups {
        Some(cgroups) => Some(cgroups.create(
            &cgroup_name(ctx.index),
            &CgroupLimits {
                memory_bytes: limits.memory_bytes,
                pids: limits.pids + 1, // + the sandbox's init
                cpu_quota_percent: limits.cpu_quota_percent,
            },
        )?),
        None => None,
    };
    let env: Vec<(String, String)> = step
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let exec = PreparedExec::new(&step.argv, &env).map_err(os("prepare exec"))?;
    let mut rlimit_plan = rlimits::plan(limits);
    if cgroup.is_none() {
        // No memory controller: the address-space limit is the only memory bound.
        rlimit_plan.push((rustix::process::Resource::As, limits.memory_bytes));
    }
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let (error_r, error_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let stdin = match ctx.stdin.take() {
        Some(fd) => fd,
        None => rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(os_errno("open /dev/null"))?,
    };
    let ro_mounts: Vec<PathBuf> = ctx.spec.ro_mounts.clone();
    let cgroup_tasks = match &cgroup {
        Some(cgroup) => cgroup.open_self_attach()?,
        None => Vec::new(),
    };
    let plan = ChildPlan {
        root: ctx.root,
        hostname: &ctx.spec.hostname,
        ro_mounts: &ro_mounts,
        network: ctx.spec.network,
        exec: &exec,
        cwd: &step.cwd,
        rlimits: &rlimit_plan,
        seccomp: ctx.filter,
        cgroup_tasks: &cgroup_tasks,
        kernel: ctx.agent.as_ref().and_then(|(_, kernel)| kernel.as_ref()),
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
    .map_err(os("clone3"))?;
    if let (Forked::Parent { .. }, Some(host)) = (&forked, ctx.leave_to) {
        // Best effort: staying costs only the teardown at exit.
        let _ = rustix::thread::move_into_link_name_space(
            rustix::fd::AsFd::as_fd(host),
            Some(rustix::thread::LinkNameSpaceType::Mount),
        );
    }
    let (pid, pidfd) = match forked {
        Forked::Child => {
            drop((stdout_r, stderr_r, go_w, error_r, status_r));
            crate::child::init(
                &plan,
                ChildFds {
                    go: go_r,
                    error: error_w,
                    status: status_w,
                    stdin,
                    stdout: stdout_w,
                    stderr: stderr_w,
                    agent: agent_fd,
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
        stdin,
        cgroup_tasks,
    ));
    // From outside: the id maps (only we, in the parent user namespace, may write them) and
    // the cgroup. Then closing `go` releases the child.
    let setup = (|| -> Result<(), JailError> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        std::fs::write(proc_dir.join("setgroups"), "deny").map_err(os("write setgroups"))?;
        std::fs::write(proc_dir.join("uid_map"), ctx.host.uid_map())
            .map_err(os("write uid_map"))?;
        std::fs::write(proc_dir.join("gid_map"), ctx.host.gid_map())
            .map_err(os("write gid_map"))?;
        // v1: the child moves itself (`cgroup_tasks`), so nothing to do from here. v2 without
        // CLONE_INTO_CGROUP (refused above): attach from outside.
        if let (Some(cgroup), None, true) = (&cgroup, &cgroup_dir, !self_attached) {
            cgroup.attach(pid)?;
        }
        Ok(())
    })();
    if let Err(e) = setup {
        let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
        let _ = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid),
            rustix::process::WaitOptions::empty(),
        );
        if let Some(cgroup) = cgroup {
            let _ = cgroup.remove();
        }
        return Err(e);
    }
    phase("cloned, mapped, attached");
    rustix::io::write(&go_w, b"G").map_err(os_errno("release the sandbox"))?;
    drop(go_w);
    drop(agent_fd);
    // Our copy of the agent's end must go, or its socket never reports EOF.
    ctx.agent = None;
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

/// Watches a started one-shot step to its end and reports it.
fn finish(started: Started, ctx: StepContext<'_>) -> Result<StepReport, JailError> {
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

    let observed = supervise::watch(
        StepFds {
            stdout: stdout_r,
            stderr: stderr_r,
            error: error_r,
            status: status_r,
            pidfd,
        },
        ctx.index,
        limits,
        cgroup.as_ref(),
        ctx.control,
        ctx.sink,
        &|| {},
    )
    .map_err(os("supervise"))?;
    // Reap init (it has exited, or was killed, when watch returns).
    let _ = rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    );
    phase("program exited");
    let wall_ms = observed.wall.as_millis() as u64;
    let stats = match &cgroup {
        Some(cgroup) => Some(cgroup.stats()?),
        None => None,
    };
    if let Some(cgroup) = cgroup {
        cgroup.remove()?;
    }
    phase("cgroup removed");
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
    Ok(StepReport {
        name: step.name.clone(),
        termination: Termination {
            exit,
            killed_for: observed.killed_for,
            oom_killed: stats.as_ref().is_some_and(|s| s.oom_kills > 0),
        },
        stdout: observed.stdout,
        stderr: observed.stderr,
        wall_ms,
        cpu_ms: stats.as_ref().map_or(0, |s| s.cpu_usage_ns / 1_000_000),
        memory_peak_bytes: stats.as_ref().map_or(0, |s| s.memory_peak_bytes),
    })
}

/// Removes cgroups left under Brig's parent by helpers that no longer run (crashed, killed
/// with SIGKILL): called when Brig starts. Returns how many were removed.
pub fn sweep_stale(config: &JailConfig) -> usize {
    match Cgroups::detect(&config.cgroup_config()) {
        Ok(cgroups) => sweep_stale_cgroups(&cgroups),
        Err(_) => 0,
    }
}

fn sweep_stale_cgroups(cgroups: &Cgroups) -> usize {
    let Ok(names) = cgroups.list() else { return 0 };
    let mut removed = 0;
    for name in names {
        if is_stale(&name) && cgroups.remove_stale(&name).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A cgroup named `run-<pid>-<start>-<n>` is stale when no process with that pid and start
/// time exists any more.
fn is_stale(name: &str) -> bool {
    let mut parts = name.strip_prefix("run-").unwrap_or("").split('-');
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let live_start = stat
        .rfind(')')
        .and_then(|i| stat[i + 2..].split(' ').nth(19).map(str::to_owned));
    live_start.as_deref() != Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_cgroup_name_is_not_stale_and_a_dead_owner_is() {
        let ours = cgroup_name(0);
        assert!(!is_stale(&ours), "{ours}");
        assert!(is_stale("run-999999999-1-0"));
        assert!(!is_stale("something-else"));
        let wrong_start = format!("run-{}-1-0", std::process::id());
        assert!(is_stale(&wrong_start));
    }
}
