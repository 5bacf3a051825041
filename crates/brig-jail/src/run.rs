//! The helper's whole job for one sandbox, in the order it happens. It must run in a
//! single-threaded process — `brig run` itself, or the `brig __sandbox-helper` re-exec that a
//! multi-threaded caller spawns (see `helper.rs`) — because it forks into the sandbox and runs
//! Rust there, and because it changes its own namespaces.
//!
//! 1. validate the spec; claim a host id (the seccomp filter is compiled once the first
//!    sandbox is released: `seccomp::Filter`);
//! 2. drop supplementary groups (they would follow the sandbox, unmapped but effective);
//! 3. enter an empty network namespace (unless the spec enables networking);
//! 4. plan the root (`mounts::plan`) and find or build its template mount namespace
//!    (`template.rs`);
//! 5. per step: a cgroup; pipes; `clone3` into user, PID, mount (a copy of the template), IPC
//!    and UTS namespaces; id maps and cgroup attach from outside; then release the child and
//!    `supervise::watch` it; read the cgroup's counters, and stop at the first step that did
//!    not exit 0. What is left of each sandbox once its result is known is done
//!    before the next step, or deferred (`teardown`).

use brig_core::Exit;
use rustix::fd::OwnedFd;
use std::io;
use std::time::Instant;

use crate::JailConfig;
use crate::cgroup::{CgroupError, Cgroups};
use crate::child::SetupFailure;
use crate::identity::{HostId, IdentityError};
use crate::mounts::{self, MountError, MountOp};
use crate::report::{OutputSink, Report};
use crate::seccomp::{self, SeccompPolicy};
use crate::spec::{Isolation, SandboxSpec, SpecError, Step};
pub use crate::step::process_start_time;
pub(crate) use crate::step::{Started, cgroup_name};
use crate::step::{StepContext, finish, start};
use crate::sys::{self};
use crate::template::Template;

/// Why a sandbox could not be run (as opposed to a program that ran and failed).
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// The spec is invalid.
    #[error("invalid sandbox spec: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Spec(Vec<SpecError>),
    /// The caller is multi-threaded; the helper must be used.
    #[error("the sandbox must be started from a single-threaded process (use Jail::run)")]
    NotSingleThreaded,
    /// `/proc` is another PID namespace's (a container's entry point without a `/proc` of its
    /// own): a child's `/proc/<pid>` would be some other process.
    #[error(
        "/proc belongs to another PID namespace (it shows this process as pid {}, not {ours}): \
         mount a /proc for this one (`unshare --pid --fork --mount-proc`, or the container's own)",
        .seen.map_or("?".to_string(), |p| p.to_string())
    )]
    ForeignProc {
        /// Our pid, from `getpid`.
        ours: u32,
        /// Our pid as that `/proc` shows it.
        seen: Option<u32>,
    },
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
    /// The Landlock ruleset could not be made or filled (the message says `landlock: ...`).
    #[error("{0}")]
    Landlock(#[from] crate::landlock::LandlockError),
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
/// which is how the start-up cost was broken down for the benchmark notes: each line has the
/// milliseconds since the first phase and the `CLOCK_MONOTONIC` time (`@seconds.nanoseconds`),
/// which `bench/phases.py` lines up with its own clock to see what comes before `main` and
/// after it returns.
pub fn phase(name: &str) {
    if let Some(start) = trace_start() {
        let abs = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        // One write per line: the sandbox's init traces to the same stderr at the same time.
        let line = format!(
            "brig-phase {:>8.3} ms  {name} @{}.{:09}\n",
            start.elapsed().as_secs_f64() * 1000.0,
            abs.tv_sec,
            abs.tv_nsec
        );
        let _ = rustix::io::write(rustix::stdio::stderr(), line.as_bytes());
    }
}

/// When the first phase was traced, if `BRIG_TRACE_PHASES` is set.
fn trace_start() -> &'static Option<Instant> {
    static START: std::sync::OnceLock<Option<Instant>> = std::sync::OnceLock::new();
    START.get_or_init(|| std::env::var_os("BRIG_TRACE_PHASES").map(|_| Instant::now()))
}

/// Whether `BRIG_TRACE_PHASES` is set (phase lines go to stderr).
pub(crate) fn tracing() -> bool {
    trace_start().is_some()
}

pub(crate) fn os(op: &'static str) -> impl FnOnce(io::Error) -> JailError {
    move |source| JailError::Os { op, source }
}

pub(crate) fn os_errno(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> JailError {
    move |e| JailError::Os {
        op,
        source: e.into(),
    }
}

/// A small `/proc` file in one `read` (it has no size to stat, so `read_to_string` probes and
/// grows its buffer: eight syscalls for `/proc/self/status`).
pub(crate) fn read_proc_file(path: &str) -> io::Result<String> {
    use std::io::Read as _;
    let mut bytes = Vec::with_capacity(4096);
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Fails unless the calling process has exactly one thread and sees its own PID namespace.
///
/// Two cheap syscalls instead of a read of `/proc/self/status` (~20 µs here: the kernel
/// formats some fifty fields): `/proc/self/task` has a link per thread besides `.` and `..`
/// (its `st_nlink` is 2 + the thread count: `proc_task_getattr`), and [`check_proc`].
pub fn check_this_process() -> Result<(), JailError> {
    let task = rustix::fs::stat("/proc/self/task").map_err(os_errno("stat /proc/self/task"))?;
    if task.st_nlink != 3 {
        return Err(JailError::NotSingleThreaded);
    }
    check_proc()
}

/// Fails unless `/proc` is our PID namespace's: a sandbox's id maps are written through
/// `/proc/<its pid>`, which in another namespace's `/proc` names some other process. `/proc/self`
/// links to our pid as that `/proc` numbers it (and resolves to nothing if it does not see
/// us). `brig doctor` reports it.
pub fn check_proc() -> Result<(), JailError> {
    let ours = std::process::id();
    let seen = rustix::fs::readlink("/proc/self", Vec::with_capacity(16))
        .ok()
        .and_then(|link| link.to_str().ok()?.parse::<u32>().ok());
    match seen {
        Some(pid) if pid == ours => Ok(()),
        seen => Err(JailError::ForeignProc { ours, seen }),
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
    check_this_process()?;
    spec.validate().map_err(JailError::Spec)?;
    // Compiled once the first sandbox is released (see `seccomp::Filter`).
    let filter = seccomp::Filter::new(SeccompPolicy {
        allow_network: spec.network,
        ..Default::default()
    });
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
    phase("cgroups detected");
    if spec.isolation == Isolation::Process {
        return crate::process_tier::run(config, spec, stdin, control, sink, cgroups.as_ref());
    }
    let host = if root_user {
        HostId::claim(&config.runtime_dir, config.uid_range(), std::process::id())?
    } else {
        enter_own_user_namespace()?;
        HostId::namespace_root()
    };
    phase("id claimed");
    if root_user {
        rustix::thread::set_thread_groups(&[]).map_err(os_errno("setgroups"))?;
    }
    // An empty network namespace, entered before the private mount namespace so that a new
    // pool entry's bind mount lands in the host's mount namespace.
    let netns_claim = match (spec.network, root_user) {
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
    let plan = mounts::plan(spec, root_user)?;
    let template = Template::prepare(
        &config.runtime_dir,
        &plan.template,
        plan.host_files,
        root_user,
    )?;
    // Steps of one run (compile, then run) share `/work`: made once, by us, in a copy of the
    // template that each step's namespace is copied from. One step makes its own.
    let (template, per_run) = if spec.steps.len() > 1 && spec.session.is_none() {
        let work = mounts::work_ops(spec, (host.uid, host.gid));
        (template.with_work(&work)?, plan.step)
    } else {
        (template, [plan.step, plan.work].concat())
    };
    phase("root built");

    if let Some(zygote) = spec.session.as_ref().and_then(|s| s.zygote.as_ref()) {
        let limits = spec.session.as_ref().map(|s| s.limits).unwrap_or_default();
        return crate::zygote::run(
            crate::zygote::Host {
                spec,
                zygote,
                limits,
                template: &template,
                per_run: &per_run,
                host: &host,
                cgroups: cgroups.as_ref(),
                run_filter: &filter,
                control,
            },
            sink,
        );
    }
    if let Some(session) = &spec.session {
        return run_session(
            spec,
            session,
            &template,
            &per_run,
            &host,
            cgroups.as_ref(),
            &filter,
            control,
            sink,
        );
    }
    let mut report = Report { steps: Vec::new() };
    let mut teardowns = Vec::new();
    let mut stdin = stdin;
    for (index, step) in spec.steps.iter().enumerate() {
        let step_stdin = if step.stdin { stdin.take() } else { None };
        let mut ctx = StepContext {
            spec,
            step,
            index,
            template: &template,
            per_run: &per_run,
            host: &host,
            cgroups: cgroups.as_ref(),
            filter: &filter,
            stdin: step_stdin,
            control,
            sink,
            agent: None,
            zygote: None,
            sweep_stale: index == 0 && config.sweep_while_running,
            spare_cgroups: config.spare_cgroups,
        };
        let started = start(&mut ctx)?;
        // While the program runs: the reaper that will end this sandbox after we exit.
        let early = config.defer_teardown
            && config.early_reaper
            && std::process::id() != 1
            && claim_holds(&host, netns_claim.as_ref()).is_ok_and(|holds| {
                crate::teardown::reap_early(&started.pidfd, started.cgroup.as_ref(), holds)
            });
        let (step_report, teardown) = finish(started, ctx)?;
        let succeeded = step_report.termination.exit == Exit::Code(0)
            && step_report.termination.killed_for.is_none();
        if succeeded && index + 1 < spec.steps.len() {
            // A step follows (the run after the compile): this one's init, which waits to be
            // killed, need not linger through it (it would count against the uid's NPROC).
            teardown.kill_init();
        }
        if early {
            teardown.hand_over();
        } else if config.defer_teardown {
            teardowns.push(teardown);
        } else {
            teardown.complete()?;
        }
        report.steps.push(step_report);
        if !succeeded {
            break;
        }
    }
    if !teardowns.is_empty() {
        // The claims stay held until the sandboxes are gone (or, if they cannot be, the
        // sandboxes' end is waited for here).
        match claim_holds(&host, netns_claim.as_ref()) {
            Ok(holds) => crate::teardown::defer(teardowns, holds),
            Err(_) => {
                for teardown in teardowns {
                    teardown.complete()?;
                }
            }
        }
    }
    phase("sandboxes handed to the teardown");
    Ok(report)
}

/// Copies of the run's claims' lock fds (host id, network namespace), for whoever ends its
/// sandboxes after us to hold until they are gone.
fn claim_holds(host: &HostId, netns: Option<&crate::netns::Claim>) -> io::Result<Vec<OwnedFd>> {
    let netns = netns.map(crate::netns::Claim::hold).transpose()?.flatten();
    Ok(host.hold()?.into_iter().chain(netns).collect())
}

/// Unprivileged mode: a user namespace of our own in which we are root (mapped to our own ids,
/// the only ones an unprivileged process may map), so that we may create the other namespaces
/// and build the root; each sandbox nests its own user namespace inside it.
fn enter_own_user_namespace() -> Result<(), JailError> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    // With a mount namespace of our own, owned by the new user namespace, so that we may
    // return to it from the template's (`Template::leave`).
    sys::unshare_user_and_mount_namespaces().map_err(os("unshare user namespace"))?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(os("write setgroups"))?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1\n")).map_err(os("write uid_map"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1\n")).map_err(os("write gid_map"))
}

/// Session mode: the sandbox's init becomes the agent and the helper relays until the end.
#[allow(clippy::too_many_arguments)]
fn run_session(
    spec: &SandboxSpec,
    session: &crate::spec::SessionSpec,
    template: &Template,
    per_run: &[MountOp],
    host: &HostId,
    cgroups: Option<&Cgroups>,
    filter: &seccomp::Filter,
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
        template,
        per_run,
        host,
        cgroups,
        filter,
        stdin: None,
        control: Some(control),
        sink,
        agent: Some((OwnedFd::from(theirs), session.kernel.clone())),
        zygote: None,
        sweep_stale: false,
        spare_cgroups: 0,
    };
    let started = start(&mut ctx)?;
    crate::session_host::serve(started, ours, control)?;
    Ok(Report { steps: Vec::new() })
}

/// Removes cgroups left under Brig's parent by helpers that no longer run (crashed, killed
/// with SIGKILL): called when Brig starts. Returns how many were removed.
pub fn sweep_stale(config: &JailConfig) -> usize {
    match Cgroups::detect(&config.cgroup_config()) {
        Ok(cgroups) => crate::stale::sweep(&cgroups),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test harness runs each test on a thread of its own, beside the main thread: a
    /// sandbox must not be started from here. (Every sandbox test passes the other way: `brig
    /// run` and the helper are single-threaded.)
    #[test]
    fn a_process_with_a_second_thread_is_refused() {
        let extra =
            std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(200)));
        assert!(matches!(
            check_this_process(),
            Err(JailError::NotSingleThreaded)
        ));
        extra.join().unwrap();
    }

    #[test]
    fn our_proc_shows_our_pid_and_a_link_per_thread() {
        assert!(check_proc().is_ok(), "{:?}", check_proc());
        // The link count the single-thread check relies on: `.`, `..` and one per thread.
        // Other tests start and end threads meanwhile: compare when the count held still.
        let threads = || std::fs::read_dir("/proc/self/task").unwrap().count() as u64;
        for _ in 0..1000 {
            let before = threads();
            let links = rustix::fs::stat("/proc/self/task").unwrap().st_nlink;
            if threads() == before {
                assert!(before >= 2);
                assert_eq!(links, 2 + before);
                return;
            }
        }
        panic!("the thread count never held still");
    }
}
