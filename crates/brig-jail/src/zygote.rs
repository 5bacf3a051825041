//! One-shot runs forked from a warm Python interpreter: the helper's side of a zygote.
//!
//! Starting a fresh `python3` costs more CPU than everything else of a run together (~20 ms
//! of a 2-vCPU VM's time against ~1 ms for the namespaces, root and cgroup), which caps fresh
//! sandboxes at a few dozen runs a second. A zygote keeps one interpreter warm and forks it
//! for each run, so a run pays for a fork instead.
//!
//! The zygote lives in a sandbox built like a session's (`run_here` with `session.zygote`):
//! its own user, PID, mount, network, IPC, UTS and cgroup namespaces, the new root, uid 1000
//! with no capability and no_new_privs, its own cgroup. Two things differ, both because its
//! forks must build sandboxes of their own: it runs under the seccomp filter with
//! [`SeccompPolicy::nest_sandboxes`](crate::seccomp::SeccompPolicy) (`unshare`, `mount`,
//! `umount2`, `sethostname` allowed), and without Landlock, since an enforced ruleset forbids
//! mounting: each run enforces Brig's rules itself once its mounts are made, from the numbers
//! of [`crate::landlock::plan_for_abi`] (a rule made before would hold the directory its fresh
//! tmpfs hides, which Landlock does not look through).
//!
//! Each run then gets, inside the zygote's sandbox, the isolation of any other sandbox (see
//! `brig_zygote.py` in the engine for the steps): its own cgroup (created here, joined through
//! files opened here), user namespace with only uid/gid 1000, mount namespace with fresh
//! tmpfs `/work`, `/tmp`, `/dev/shm` and `/proc`, PID namespace whose init reports the
//! program's status, network namespace with only `lo`, IPC and UTS namespaces; every
//! capability dropped, Brig's Landlock rules enforced, the ordinary seccomp filter
//! stacked on the zygote's, rlimits. This side enforces the limits exactly as for a fresh
//! sandbox (`supervise::watch` over the run's pipes and cgroup) and reads the cgroup's
//! counters.
//!
//! A run's sandbox is built before the run comes: as soon as run n is handed over, the helper
//! creates run n+1's cgroup and the zygote forks its sandbox, which waits. When run n+1 comes,
//! its limits are written into that cgroup and only its last steps remain. The run's cgroup
//! is removed after the answer (one rmdir, a run later, when its last task is surely gone).
//!
//! Protocol with the caller (frames on the helper's socket, after the usual `S` request):
//! - from the helper: `H` (the zygote is ready: JSON), then per run `O` output frames and `R`
//!   (the run's [`StepReport`], JSON) or `F` (the run could not be set up: text); `E` when the
//!   zygote itself is gone (the helper then exits);
//! - from the caller: `Z` a [`ZygoteRun`] (JSON); during a run, `K` cancels it (a `K` that
//!   arrives after the run ended is ignored). One run at a time.

use base64::Engine as _;
use brig_core::Limits;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{IoSlice, Write};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, CgroupLimits, Cgroups};
use crate::frame::{read_frame, write_frame};
use crate::helper::Stdin;
use crate::identity::HostId;
use crate::report::{OutputSink, Report, StepReport};
use crate::run::{JailError, os, os_errno};
use crate::seccomp::{self, SeccompPolicy};
use crate::spec::{SandboxSpec, SpecFile, Step, WORK_DIR};
use crate::step::{Started, StepContext, cgroup_name, conclude, pipe, start};
use crate::supervise::{self, StepFds};

/// What the zygote runs: its command and environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZygoteSpec {
    /// The zygote's argv (`/usr/bin/python3 -I -u /etc/brig/brig_zygote.py ...`).
    pub argv: Vec<String>,
    /// Its environment (nothing else is inherited).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How long it may take to import its preloads and say it is ready.
    pub ready_timeout_ms: u64,
    /// The limits most runs have: each run's sandbox is built ahead with these (its cgroup,
    /// its tmpfs sizes), and a run with others has them written in when it comes.
    #[serde(default)]
    pub run_limits: Limits,
}

/// One run, as the caller asks for it (frame `Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZygoteRun {
    /// The run's limits (each enforced as for a fresh sandbox).
    pub limits: Limits,
    /// The Python program.
    pub code: String,
    /// Its arguments (`sys.argv[1:]`).
    #[serde(default)]
    pub args: Vec<String>,
    /// Its whole environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Files written into its work dir first.
    #[serde(default)]
    pub files: Vec<SpecFile>,
    /// Its stdin.
    #[serde(default, with = "crate::spec::bytes_as_base64")]
    pub stdin: Vec<u8>,
}

/// Frame tags of the zygote protocol (see the module docs).
pub mod tag {
    /// Helper → caller: the zygote is ready.
    pub const READY: u8 = b'H';
    /// Caller → helper: a run.
    pub const RUN: u8 = b'Z';
    /// Caller → helper: cancel the current run.
    pub const CANCEL: u8 = b'K';
    /// Helper → caller: a run's report.
    pub const REPORT: u8 = b'R';
    /// Helper → caller: a run that could not be set up.
    pub const FAILED: u8 = b'F';
}

/// Everything the helper holds for the zygote's life.
pub(crate) struct Host<'a> {
    pub(crate) spec: &'a SandboxSpec,
    pub(crate) zygote: &'a ZygoteSpec,
    /// The zygote sandbox's own limits (its cgroup, tmpfs sizes, rlimits: a run can lower
    /// an rlimit, never raise it).
    pub(crate) limits: Limits,
    pub(crate) template: &'a crate::template::Template,
    pub(crate) per_run: &'a [crate::mounts::MountOp],
    pub(crate) host: &'a HostId,
    pub(crate) cgroups: Option<&'a Cgroups>,
    /// The filter every run's program gets.
    pub(crate) run_filter: &'a seccomp::Filter,
    pub(crate) control: Option<&'a OwnedFd>,
}

/// Starts the zygote and serves runs until the caller closes the socket.
pub(crate) fn run(host: Host<'_>, sink: &mut dyn OutputSink) -> Result<Report, JailError> {
    let Some(control) = host.control else {
        return Err(JailError::Helper(
            "a zygote needs the helper's socket".into(),
        ));
    };
    let nest_filter = seccomp::Filter::new(SeccompPolicy {
        allow_network: false,
        nest_sandboxes: true,
    });
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(os_errno("socketpair"))?;
    let step = Step {
        name: "zygote".into(),
        argv: host.zygote.argv.clone(),
        env: host.zygote.env.clone(),
        cwd: WORK_DIR.into(),
        limits: host.limits,
        stdin: false,
    };
    let started = start(&mut StepContext {
        spec: host.spec,
        step: &step,
        index: 0,
        template: host.template,
        per_run: host.per_run,
        host: host.host,
        cgroups: host.cgroups,
        filter: &nest_filter,
        stdin: None,
        control: Some(control),
        sink,
        agent: None,
        zygote: Some(theirs),
        sweep_stale: false,
        spare_cgroups: 0,
    })?;
    let served = serve(&host, &started, &ours, control, sink);
    started.tear_down()?;
    served.map(|()| Report { steps: Vec::new() })
}

fn serve(
    host: &Host<'_>,
    zygote: &Started,
    socket: &OwnedFd,
    control: &OwnedFd,
    sink: &mut dyn OutputSink,
) -> Result<(), JailError> {
    let program = seccomp::encode(host.run_filter.program()?);
    let landlock = crate::landlock::plan_for_abi(
        host.template.read_exec(),
        host.spec.network,
        crate::sys::landlock_abi(),
    );
    let config = serde_json::json!({ "config": {
        "seccomp": base64::engine::general_purpose::STANDARD.encode(&program),
        "hostname": host.spec.hostname,
        "landlock": landlock,
    }});
    send(socket, &config, &[])?;
    let ready = wait_ready(zygote, socket, host.zygote.ready_timeout_ms)?;
    // The caller's socket as a file, for frames both ways.
    let mut caller = std::fs::File::from(rustix::io::dup(control).map_err(os_errno("dup"))?);
    write_frame(&mut caller, tag::READY, &[&ready]).map_err(os("write to the caller"))?;
    let mut prepared = prepare(host, socket, 1)?;
    let mut finished: Vec<Cgroup> = Vec::new();
    for index in 2.. {
        // Idle: the next request, or the zygote's end.
        let next = wait_for_caller(zygote, &mut caller)?;
        let Some((frame_tag, body)) = next else {
            for cgroup in finished.into_iter().chain(prepared.cgroup) {
                let _ = cgroup.kill_all();
                cgroup.remove()?;
            }
            return Ok(());
        };
        match frame_tag {
            tag::CANCEL => continue,
            tag::RUN => {}
            other => {
                return Err(JailError::Helper(format!(
                    "unexpected frame {other} from the caller"
                )));
            }
        }
        let request: ZygoteRun = serde_json::from_slice(&body)
            .map_err(|e| JailError::Helper(format!("bad run request: {e}")))?;
        let current = prepared;
        let dispatched = dispatch(&current, &request, socket);
        // The next run's sandbox is built while this one runs.
        prepared = prepare(host, socket, index)?;
        let outcome = dispatched.and_then(|fds| {
            watch_run(fds, &request.limits, current.cgroup.as_ref(), control, sink)
        });
        match outcome {
            Ok(report) => {
                let json = serde_json::to_vec(&report).map_err(|e| os("encode")(e.into()))?;
                write_frame(&mut caller, tag::REPORT, &[&json])
                    .map_err(os("write to the caller"))?;
            }
            Err(e) => {
                write_frame(&mut caller, tag::FAILED, &[e.to_string().as_bytes()])
                    .map_err(os("write to the caller"))?;
            }
        }
        caller.flush().map_err(os("write to the caller"))?;
        // Not now: the run's last tasks may still be exiting, and the caller may already be
        // sending the next run. Each group is removed after the next run (one rmdir, as it is
        // empty by then), and what is left is waited for when the zygote ends.
        finished.retain(|cgroup| !matches!(cgroup.try_remove(), Ok(true)));
        finished.extend(current.cgroup);
        if rustix::event::poll(
            &mut [PollFd::new(&zygote.pidfd, PollFlags::IN)],
            Some(&supervise::to_timespec(Duration::ZERO)),
        )
        .unwrap_or(0)
            > 0
        {
            return Err(JailError::Helper("the zygote exited".into()));
        }
    }
    Ok(())
}

/// Waits for the zygote's ready message (its preloads imported).
fn wait_ready(zygote: &Started, socket: &OwnedFd, timeout_ms: u64) -> Result<Vec<u8>, JailError> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(JailError::Helper(format!(
                "the zygote was not ready within {timeout_ms} ms"
            )));
        }
        let mut fds = [
            PollFd::new(socket, PollFlags::IN),
            PollFd::new(&zygote.error, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, Some(&supervise::to_timespec(left))) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(os_errno("poll")(e)),
        }
        if !fds[1].revents().is_empty() {
            let mut buf = vec![0u8; 4096];
            let n = rustix::io::read(&zygote.error, &mut buf).unwrap_or(0);
            if n > 0 {
                let failure = crate::child::SetupFailure::from_bytes(&buf[..n], "zygote");
                return Err(JailError::Setup(failure));
            }
        }
        if !fds[0].revents().is_empty() {
            let mut buf = vec![0u8; 64 * 1024];
            let n = rustix::net::recv(socket, &mut buf, rustix::net::RecvFlags::empty())
                .map_err(os_errno("read from the zygote"))?
                .0;
            let message: serde_json::Value = serde_json::from_slice(&buf[..n])
                .map_err(|_| JailError::Helper("the zygote exited before it was ready".into()))?;
            if message["ready"] != true {
                return Err(JailError::Helper(format!(
                    "the zygote failed: {}",
                    message["error"].as_str().unwrap_or("no reason given")
                )));
            }
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// Waits for the caller's next frame (`None`: the caller closed the socket); fails when the
/// zygote's sandbox ends first. What the zygote writes on its stdout and stderr (nothing,
/// unless it fails) goes to our stderr, the server's log.
fn wait_for_caller(
    zygote: &Started,
    caller: &mut std::fs::File,
) -> Result<Option<(u8, Vec<u8>)>, JailError> {
    loop {
        let mut fds = [
            PollFd::new(&*caller, PollFlags::IN),
            PollFd::new(&zygote.pidfd, PollFlags::IN),
            PollFd::new(&zygote.stdout, PollFlags::IN),
            PollFd::new(&zygote.stderr, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(os_errno("poll")(e)),
        }
        let revents: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        for (ready, fd) in revents[2..].iter().zip([&zygote.stdout, &zygote.stderr]) {
            if *ready {
                let mut buf = [0u8; 4096];
                let n = rustix::io::read(fd, &mut buf).unwrap_or(0);
                eprint!("brig zygote: {}", String::from_utf8_lossy(&buf[..n]));
            }
        }
        if revents[0] {
            return read_frame(caller).map_err(os("read from the caller"));
        }
        if revents[1] {
            return Err(JailError::Helper("the zygote exited".into()));
        }
    }
}

/// A run's sandbox being built ahead by the zygote: its index and cgroup.
struct Prepared {
    index: usize,
    cgroup: Option<Cgroup>,
    limits: CgroupLimits,
}

/// The pids of a run's cgroup: the program's, plus the run's init, and for a moment the fork
/// that made it.
fn run_cgroup_limits(limits: &Limits) -> CgroupLimits {
    CgroupLimits {
        memory_bytes: limits.memory_bytes,
        pids: limits.pids + 2,
        cpu_quota_percent: limits.cpu_quota_percent,
    }
}

/// Creates run `index`'s cgroup (with the zygote's default limits; the run's own are written
/// when it comes) and asks the zygote to build its sandbox in it.
fn prepare(host: &Host<'_>, socket: &OwnedFd, index: usize) -> Result<Prepared, JailError> {
    let limits = run_cgroup_limits(&host.zygote.run_limits);
    let cgroup = match host.cgroups {
        Some(cgroups) => Some(cgroups.create(&cgroup_name(index), &limits)?),
        None => None,
    };
    let joins = match &cgroup {
        Some(cgroup) => cgroup.open_join()?,
        None => Vec::new(),
    };
    let disk_bytes = host.zygote.run_limits.disk_bytes;
    let message = serde_json::json!({
        "prepare": index,
        "disk_bytes": disk_bytes,
        "shm_bytes": crate::mounts::shm_bytes(disk_bytes),
    });
    let fds: Vec<BorrowedFd<'_>> = joins.iter().map(|f| f.as_fd()).collect();
    send(socket, &message, &fds)?;
    Ok(Prepared {
        index,
        cgroup,
        limits,
    })
}

/// The helper's ends of a dispatched run's pipes.
struct RunFds {
    stdout: OwnedFd,
    stderr: OwnedFd,
    status: OwnedFd,
    error: OwnedFd,
    life: OwnedFd,
}

/// Writes the run's limits into its prepared cgroup and hands the run to the zygote.
fn dispatch(
    prepared: &Prepared,
    request: &ZygoteRun,
    socket: &OwnedFd,
) -> Result<RunFds, JailError> {
    let limits = request.limits;
    let errors = crate::spec::limit_errors("run", &limits);
    if !errors.is_empty() {
        return Err(JailError::Spec(errors));
    }
    let cgroup_limits = run_cgroup_limits(&limits);
    if let Some(cgroup) = &prepared.cgroup
        && cgroup_limits != prepared.limits
    {
        cgroup.update_limits(&cgroup_limits)?;
    }
    let payload = serde_json::json!({
        "code": request.code,
        "args": request.args,
        "env": request.env,
        "files": request.files,
    });
    let payload = Stdin::Bytes(serde_json::to_vec(&payload).map_err(|e| os("encode")(e.into()))?)
        .open()
        .map_err(os("payload memfd"))?
        .expect("bytes give an fd");
    let stdin = match Stdin::Bytes(request.stdin.clone()).open() {
        Ok(Some(fd)) => fd,
        _ => return Err(JailError::Helper("stdin memfd".into())),
    };
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let (error_r, error_w) = pipe()?;
    let (life_r, life_w) = pipe()?;
    let rlimits: Vec<(i32, u64)> = crate::rlimits::plan(&limits)
        .into_iter()
        .map(|(resource, value)| (resource as i32, value))
        .collect();
    let message = serde_json::json!({
        "run": prepared.index,
        "rlimits": rlimits,
        "disk_bytes": limits.disk_bytes,
        "shm_bytes": crate::mounts::shm_bytes(limits.disk_bytes),
    });
    send(
        socket,
        &message,
        &[
            payload.as_fd(),
            stdin.as_fd(),
            stdout_w.as_fd(),
            stderr_w.as_fd(),
            status_w.as_fd(),
            error_w.as_fd(),
            life_w.as_fd(),
        ],
    )?;
    Ok(RunFds {
        stdout: stdout_r,
        stderr: stderr_r,
        status: status_r,
        error: error_r,
        life: life_r,
    })
}

/// The same watch as any step, over the run's pipes and cgroup; then its report.
fn watch_run(
    fds: RunFds,
    limits: &Limits,
    cgroup: Option<&Cgroup>,
    control: &OwnedFd,
    sink: &mut dyn OutputSink,
) -> Result<StepReport, JailError> {
    // Killing the run's init ends its PID namespace, which holds every process of the run: one
    // round over the cgroup's list does it. (Its end is also what `life` reports; the cgroup
    // is emptied for good before it is removed, after the answer.)
    let kill_rest = || {
        if let Some(cgroup) = cgroup {
            let _ = cgroup.kill_listed();
        }
    };
    let observed = supervise::watch(
        StepFds {
            stdout: fds.stdout,
            stderr: fds.stderr,
            error: fds.error,
            status: fds.status,
            // EOF once the run's init has exited.
            pidfd: fds.life,
            status_ends_run: false,
        },
        0,
        limits,
        cgroup,
        Some(control),
        sink,
        &kill_rest,
    )
    .map_err(os("supervise"))?;
    let stats = cgroup.map(Cgroup::stats).transpose()?;
    conclude("main", observed, stats, limits.cpu_time_ms)
}

/// One message to the zygote, with fds.
fn send(
    socket: &OwnedFd,
    message: &serde_json::Value,
    fds: &[BorrowedFd<'_>],
) -> Result<(), JailError> {
    let body = serde_json::to_vec(message).map_err(|e| os("encode")(e.into()))?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(16))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(JailError::Helper("too many fds for one message".into()));
    }
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(&body)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(os_errno("send to the zygote"))?;
    Ok(())
}
