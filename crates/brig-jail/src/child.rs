//! The sandbox's side of a run: what the clone3 child does, top to bottom.
//!
//! The child is PID 1 of a new PID namespace (the sandbox's init). It finishes the setup that
//! must happen inside the new namespaces, then forks the program as PID 2 and reaps: when the
//! program exits, init sends SIGKILL to everything else in the namespace, reports the
//! program's wait status and exits (a daemonised child cannot outlive the run). The program is
//! not PID 1 so that it gets ordinary signal semantics (`abort()` is SIGABRT, not a silently
//! ignored signal) and so that orphans are reaped.
//!
//! Runs in a fork of the single-threaded helper, so ordinary Rust is fine here; everything that
//! can be prepared (argv/env C strings, the seccomp program, rlimits) was prepared before
//! `clone3`. A failure is written to the error pipe as JSON and the process exits; a successful
//! `execve` closes the (close-on-exec) pipe, which the helper sees as EOF.

use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::process::{Pid, Signal, WaitOptions};
use serde::{Deserialize, Serialize};
use std::ffi::CStr;
use std::path::{Path, PathBuf};

use crate::exec::{self, ExecPlan, OnFailure};
use crate::spec::{SANDBOX_GID, SANDBOX_UID};
use crate::sys::{self, Forked, PreparedExec};
use crate::{caps, landlock, mounts, seccomp};

/// A setup step that failed inside the sandbox, sent to the helper as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupFailure {
    /// Which step (`pivot_root`, `landlock`, `exec`...).
    pub stage: String,
    /// The error, as the OS or the library described it.
    pub message: String,
}

impl SetupFailure {
    /// A failure as read from an error pipe: the JSON a sandbox writes, or, if it is not that,
    /// the bytes as text under `stage`.
    pub fn from_bytes(bytes: &[u8], stage: &str) -> SetupFailure {
        serde_json::from_slice(bytes).unwrap_or_else(|_| SetupFailure {
            stage: stage.into(),
            message: String::from_utf8_lossy(bytes).into_owned(),
        })
    }
}

/// Everything the child needs, prepared by the helper before `clone3`.
pub struct ChildPlan<'a> {
    /// The run's own mounts and files (our `/` is already the template's root).
    pub per_run: &'a [mounts::MountOp],
    /// Hostname to set.
    pub hostname: &'a str,
    /// The paths Landlock grants read and execute beneath (`landlock::read_exec_roots`).
    pub read_exec: &'a [PathBuf],
    /// The program.
    pub exec: &'a PreparedExec,
    /// Working directory inside the sandbox.
    pub cwd: &'a CStr,
    /// rlimits for the program.
    pub rlimits: &'a [(rustix::process::Resource, u64)],
    /// cgroup v1 `tasks` files the child writes `0` to, moving itself into its cgroup.
    pub cgroup_tasks: &'a [std::fs::File],
    /// Session mode: the kernel the agent starts.
    pub kernel: Option<&'a crate::agent::KernelSpec>,
    /// The helper's CPU mask, to take back once released (`spread.rs`).
    pub(crate) spread: Option<crate::spread::Spread>,
}

/// The child's ends of the pipes shared with the helper.
pub struct ChildFds {
    /// Closed by the helper once id maps and cgroup are in place.
    pub go: OwnedFd,
    /// Setup failures (close-on-exec).
    pub error: OwnedFd,
    /// The program's wait status, written by init.
    pub status: OwnedFd,
    /// The seccomp filter, `seccomp::encode`d, written by the helper after `go`.
    pub seccomp: OwnedFd,
    /// The program's stdin, stdout and stderr.
    pub stdin: OwnedFd,
    /// See `stdin`.
    pub stdout: OwnedFd,
    /// See `stdin`.
    pub stderr: OwnedFd,
    /// Session mode: the agent's end of the helper's socket.
    pub agent: Option<OwnedFd>,
    /// Zygote mode: the zygote's end of the helper's socket (`zygote`).
    pub zygote: Option<OwnedFd>,
    /// The Landlock ruleset the helper fills with the template's rules; the init adds its
    /// run's and enforces it. None for a zygote, whose forks enforce their own
    /// (`start_zygote`).
    pub landlock: Option<landlock::SharedRuleset>,
}

type Stage = &'static str;

fn fail<E: std::fmt::Display>(stage: Stage) -> impl FnOnce(E) -> (Stage, String) {
    move |e| (stage, e.to_string())
}

/// Sends a setup failure to the helper, as JSON on the error pipe.
pub(crate) fn report(error: impl AsFd, stage: Stage, message: String) {
    let failure = SetupFailure {
        stage: stage.into(),
        message,
    };
    if let Ok(json) = serde_json::to_vec(&failure) {
        let _ = rustix::io::write(&error, &json);
    }
}

/// The sandbox's init. Never returns.
pub fn init(plan: &ChildPlan<'_>, mut fds: ChildFds) -> ! {
    let zygote = fds.zygote.take();
    let ruleset = fds.landlock.take();
    let filter = match setup(plan, &fds, ruleset).and_then(|()| receive_filter(&fds)) {
        Ok(filter) => filter,
        Err((stage, message)) => {
            report(&fds.error, stage, message);
            sys::exit_now(1)
        }
    };
    if let Some(socket) = zygote {
        start_zygote(plan, &fds, socket, &filter)
    }
    if let Some(socket) = fds.agent.take() {
        // Session mode: init becomes the agent, under the same seccomp filter as everything it
        // will start, and not dumpable (its memory is out of reach of the code it runs).
        let locked =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
                .map_err(fail("set not dumpable"))
                .and_then(|()| seccomp::install(&filter).map_err(fail("seccomp")));
        if let Err((stage, message)) = locked {
            report(&fds.error, stage, message);
            sys::exit_now(1)
        }
        let ChildFds {
            error,
            status,
            stdin,
            stdout,
            stderr,
            go,
            ..
        } = fds;
        drop((error, status, stdin, stdout, stderr, go));
        crate::agent::serve::run(socket, plan.kernel.cloned())
    }
    match sys::spawn_sharing_memory(&mut || program(plan, &fds, &filter)) {
        Ok(pid) => {
            // The program has exec'd (or reported its failure and exited): of its pipes, init
            // keeps only the status, so the output and error pipes reach EOF as soon as the
            // program and what it started are gone.
            let ChildFds {
                go,
                error,
                status,
                seccomp,
                stdin,
                stdout,
                stderr,
                agent,
                zygote,
                landlock,
            } = fds;
            drop((
                go, error, seccomp, stdin, stdout, stderr, agent, zygote, landlock,
            ));
            // Init's copies of the helper's own stdio (it got the helper's whole fd table):
            // closed, so that whoever reads the helper's output sees EOF when the helper is
            // done, not when init is gone (init stays until the teardown ends it, below).
            // Tracing keeps stderr until the status is sent.
            let inherited: &[i32] = if crate::run::tracing() {
                &[0, 1]
            } else {
                &[0, 1, 2]
            };
            sys::close_inherited(inherited, status.as_raw_fd());
            reap_until(
                Pid::from_raw(pid).expect("clone returned pid 0"),
                &status,
                AfterStatus::Stay,
            )
        }
        Err(e) => {
            report(&fds.error, "fork the program", e.to_string());
            sys::exit_now(1)
        }
    }
}

/// The setup inside the new namespaces, one step per line.
fn setup(
    plan: &ChildPlan<'_>,
    fds: &ChildFds,
    ruleset: Option<landlock::SharedRuleset>,
) -> Result<(), (Stage, String)> {
    // Into our cgroup first (v1; on v2 we were born there), by moving ourselves: see
    // `Cgroup::open_self_attach` for why not from the helper.
    crate::run::phase("child: started");
    for tasks in plan.cgroup_tasks {
        rustix::io::write(tasks, b"0").map_err(fail("join the cgroup"))?;
    }
    crate::run::phase("child: cgroup joined");
    // What needs only our capabilities in the new namespaces, not our id maps, is done while
    // the helper writes them (on another CPU): the hostname, a fresh /proc, the run's tmpfs.
    rustix::system::sethostname(plan.hostname.as_bytes()).map_err(fail("sethostname"))?;
    mounts::mount_proc().map_err(fail("mount /proc"))?;
    // The run's tmpfs that belong to nobody in particular (mode 1777) need no id map either.
    let (unowned, owned): (Vec<_>, Vec<_>) = plan
        .per_run
        .iter()
        .cloned()
        .partition(|op| matches!(op, mounts::MountOp::Tmpfs { owner: None, .. }));
    mounts::apply(Path::new("/"), &unowned).map_err(fail("mount the run's tmpfs"))?;
    crate::run::phase("child: proc and tmpfs mounted");
    // Wait until the helper has written our id maps and put us in our cgroup.
    let mut byte = [0u8; 1];
    let n = rustix::io::read(&fds.go, &mut byte).map_err(fail("wait for the helper"))?;
    if n != 1 {
        return Err((
            "wait for the helper",
            "the helper exited during setup".into(),
        ));
    }
    if let Some(spread) = &plan.spread {
        spread
            .restore_in_child()
            .map_err(fail("restore the CPU affinity"))?;
    }
    // Become the sandbox user. Our previous id is unmapped (not root in this namespace), so
    // the kernel keeps our capabilities in the new user namespace until `caps::drop_all`.
    rustix::thread::set_thread_res_gid(
        rustix::process::Gid::from_raw(SANDBOX_GID),
        rustix::process::Gid::from_raw(SANDBOX_GID),
        rustix::process::Gid::from_raw(SANDBOX_GID),
    )
    .map_err(fail("setresgid"))?;
    rustix::thread::set_thread_res_uid(
        rustix::process::Uid::from_raw(SANDBOX_UID),
        rustix::process::Uid::from_raw(SANDBOX_UID),
        rustix::process::Uid::from_raw(SANDBOX_UID),
    )
    .map_err(fail("setresuid"))?;
    // Die with the helper. Set only now: a change of credentials clears the parent-death
    // signal. If the helper died before this line, our end of the error pipe (whose reader it
    // holds) reports an error.
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(fail("set parent-death signal"))?;
    let mut lifeline = [rustix::event::PollFd::new(
        &fds.error,
        rustix::event::PollFlags::OUT,
    )];
    let _ = rustix::event::poll(
        &mut lifeline,
        Some(&rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
    );
    if lifeline[0]
        .revents()
        .contains(rustix::event::PollFlags::ERR)
    {
        return Err(("check the helper", "the helper exited during setup".into()));
    }
    crate::run::phase("child: ids set");
    // The work dir, owned by the sandbox user, and the program's files in it.
    mounts::apply(Path::new("/"), &owned).map_err(fail("prepare the work dir"))?;
    crate::run::phase("child: work dir ready");
    // A cgroup namespace rooted at our own cgroup (which, on a v2 host without
    // CLONE_INTO_CGROUP, the helper moved us into before releasing us).
    sys::unshare_cgroup_namespace().map_err(fail("unshare cgroup namespace"))?;
    // No capability, ever again; no_new_privs.
    caps::drop_all().map_err(fail("drop capabilities"))?;
    crate::run::phase("child: capabilities dropped");
    // The zygote's forks mount their own /work and /tmp, which Landlock would forbid: they
    // enforce the same rules themselves once that is done (`start_zygote`).
    if let Some(ruleset) = ruleset {
        ruleset
            .restrict_self(plan.read_exec)
            .map_err(fail("landlock"))?;
        crate::run::phase("child: landlock");
    }
    Ok(())
}

/// The seccomp filter the helper sends once it has released us: everything it wrote, up to
/// its end of the pipe closing.
fn receive_filter(fds: &ChildFds) -> Result<seccompiler::BpfProgram, (Stage, String)> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&fds.seccomp, &mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(("receive the seccomp filter", e.to_string())),
        }
    }
    seccomp::decode(&bytes).ok_or((
        "receive the seccomp filter",
        format!("{} bytes are not a filter", bytes.len()),
    ))
}

/// Zygote mode: PID 2 is the Python zygote, under the nesting seccomp filter (`filter`),
/// holding the helper's socket as fd 3; init reaps until it exits. Landlock is left to each
/// run, which enforces Brig's rules once it has mounted its own `/work` and `/tmp` (see
/// `landlock::plan_for_abi`).
fn start_zygote(
    plan: &ChildPlan<'_>,
    fds: &ChildFds,
    socket: OwnedFd,
    filter: &seccompiler::BpfProgram,
) -> ! {
    match sys::fork() {
        Ok(Forked::Child) => {
            let keep = match exec::keep_fds(&[&socket]) {
                Ok(keep) => keep,
                Err(e) => {
                    report(&fds.error, "keep the zygote's socket", e.to_string());
                    sys::exit_now(127)
                }
            };
            exec::exec_child(&ExecPlan {
                exec: plan.exec,
                stdio: [fds.stdin.as_fd(), fds.stdout.as_fd(), fds.stderr.as_fd()],
                keep: &keep,
                cwd: plan.cwd,
                rlimits: plan.rlimits,
                cgroup_tasks: &[],
                seccomp: Some(filter),
                on_failure: OnFailure::Stage(fds.error.as_fd()),
            })
        }
        Ok(Forked::Parent { pid, .. }) => {
            drop(socket);
            reap_until(
                Pid::from_raw(pid).expect("fork returned pid 0"),
                &fds.status,
                AfterStatus::Exit,
            )
        }
        Err(e) => {
            report(&fds.error, "fork the zygote", e.to_string());
            sys::exit_now(1)
        }
    }
}

/// PID 2: the program. Stdio, session, cwd, rlimits, then seccomp last and `execve`.
fn program(plan: &ChildPlan<'_>, fds: &ChildFds, filter: &seccompiler::BpfProgram) -> ! {
    crate::run::phase("program: forked");
    exec::exec_child(&ExecPlan {
        exec: plan.exec,
        stdio: [fds.stdin.as_fd(), fds.stdout.as_fd(), fds.stderr.as_fd()],
        keep: &[],
        cwd: plan.cwd,
        rlimits: plan.rlimits,
        // Init joined the cgroup already (`setup`).
        cgroup_tasks: &[],
        seccomp: Some(filter),
        on_failure: OnFailure::Stage(fds.error.as_fd()),
    })
}

/// What init does once the program's status is sent.
enum AfterStatus {
    /// Exit (the zygote's init: its helper waits for that).
    Exit,
    /// Wait, doing nothing, until the teardown kills it (`SIGKILL` from the helper, its reaper,
    /// or the parent-death signal when the helper exits). Init's exit is the longest step of
    /// a sandbox's end (unmapping its copy of the helper's memory, the PID and mount
    /// namespaces' teardown): started at once, it held the CPU the helper was woken on, and
    /// the helper read the status ~0.16 ms later (`bench/phases.py`).
    Stay,
}

/// Init's last job: reap every process; when the program exits, SIGKILL every other process
/// of the sandbox, send the program's raw wait status to the helper, with the CPU time and
/// peak memory of what init reaped (the program, its waited-for descendants and the orphans
/// init reaped: a run without a cgroup has nothing better), then exit or wait to be killed
/// (`after`); either ends the PID namespace. The kill comes first so that the status means the
/// run is over: nothing of the sandbox runs user code once the helper has it (`teardown`).
fn reap_until(program: Pid, status_pipe: &OwnedFd, after: AfterStatus) -> ! {
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid == program => {
                crate::run::phase("init: program reaped");
                // Every other process of the namespace descends from init (an orphan goes to
                // init, or to a subreaper that does), so with no child left there is none to
                // kill, and `kill(-1)`, which walks every process of the host (~20 µs here),
                // is skipped. Nothing can start one meanwhile: only a process can fork.
                if sys::has_children() {
                    sys::kill_every_other_process();
                }
                let usage = sys::reaped_children_usage().ok();
                let message = crate::supervise::encode_status_message(status.as_raw(), usage);
                crate::run::phase("init: status sending");
                let _ = rustix::io::write(status_pipe, message.as_bytes());
                match after {
                    AfterStatus::Exit => sys::exit_now(0),
                    AfterStatus::Stay => {
                        if crate::run::tracing() {
                            sys::close_inherited(&[2], status_pipe.as_raw_fd());
                        }
                        loop {
                            let _ = rustix::event::poll(&mut [], None);
                        }
                    }
                }
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(_) => sys::exit_now(1),
        }
    }
}
