//! The end of a sandbox after its result is known.
//!
//! A one-shot step's result is final when the program's status arrives and its output pipes
//! are at EOF: by then the sandbox's init has sent SIGKILL to every other process of the
//! sandbox (`child::reap_until`), so nothing of it runs user code again, and the cgroup's
//! counters hold everything the program did. The init, its status sent, waits to be killed: what
//! is left is to send it SIGKILL and the kernel's work — the init's exit, the PID, mount and IPC
//! namespaces' teardown, about a millisecond here — and ours after it: reap the init, remove the cgroup, release the host id and the network namespace. Until
//! then the claims (id, network namespace) stay held: the next sandbox to get them finds
//! nothing of this one.
//!
//! A [`Teardown`] is that remainder for one step. By default it is done in place, before the
//! next step or the return of `run_here`. With [`crate::JailConfig::defer_teardown`] the run
//! queues it instead, with its claims, and the caller finishes it once the result is out:
//! `brig run` prints the result, hands the queue to a reaper process
//! ([`finish_in_background`]) and exits, as bubblewrap's monitor exits without waiting for its
//! sandbox's teardown; the re-exec'd helper (`helper.rs`) sends its report, then finishes the
//! queue itself ([`finish_now`]) and exits.

use rustix::fd::{AsRawFd, OwnedFd, RawFd};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use crate::cgroup::Cgroup;
use crate::run::JailError;

/// What is left of one step's sandbox once its result is known. Dropped, it is done in place
/// (errors ignored): a run that fails half-way leaves nothing behind either.
#[derive(Debug)]
pub(crate) struct Teardown {
    pid: i32,
    pidfd: Option<OwnedFd>,
    cgroup: Option<Cgroup>,
}

impl Teardown {
    /// The remainder of the sandbox whose init is `pid`, which has sent the program's status
    /// and waits to be killed (`child::reap_until`): whoever finishes the teardown (here, or a
    /// reaper) sends it SIGKILL first, which ends its PID namespace.
    pub(crate) fn new(pid: i32, pidfd: OwnedFd, cgroup: Option<Cgroup>) -> Teardown {
        Teardown {
            pid,
            pidfd: Some(pidfd),
            cgroup,
        }
    }

    /// Sends the init SIGKILL, waits for it to be gone, reaps it, removes the cgroup.
    pub(crate) fn complete(mut self) -> Result<(), JailError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), JailError> {
        if let Some(pidfd) = self.pidfd.take() {
            let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(self.pid),
                rustix::process::WaitOptions::empty(),
            );
            drop(pidfd);
        }
        match self.cgroup.take() {
            Some(cgroup) => Ok(cgroup.remove()?),
            None => Ok(()),
        }
    }

    /// Sends the init SIGKILL now, without waiting for it (the rest of the teardown stays to
    /// be done).
    pub(crate) fn kill_init(&self) {
        if let Some(pidfd) = &self.pidfd {
            let _ = rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
        }
    }

    /// Leaves the work to a reaper that has its own copies of the fds (one started ahead,
    /// [`reap_early`], or on the way out): ours close, and the cgroup's directories stay
    /// (dropping a `Cgroup` leaves them alone).
    pub(crate) fn hand_over(mut self) {
        self.pidfd = None;
        self.cgroup = None;
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// A run's teardowns and the claims they keep held.
struct Deferred {
    sandboxes: Vec<Teardown>,
    /// Copies of the claims' lock fds (host id, network namespace): a lock lasts as long as
    /// one fd of its open file lasts.
    holds: Vec<OwnedFd>,
}

/// The runs of this process whose teardown was deferred.
static DEFERRED: Mutex<Vec<Deferred>> = Mutex::new(Vec::new());

/// Queues a run's teardowns (with its claims) for `finish_now` or `finish_in_background`.
pub(crate) fn defer(sandboxes: Vec<Teardown>, holds: Vec<OwnedFd>) {
    if sandboxes.is_empty() {
        return;
    }
    DEFERRED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(Deferred { sandboxes, holds });
}

fn take_deferred() -> Vec<Deferred> {
    std::mem::take(&mut *DEFERRED.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Finishes every deferred teardown here and now (waits for each sandbox to be gone). The
/// first error is returned; the rest are still attempted.
pub fn finish_now() -> Result<(), JailError> {
    let mut first_error = None;
    for deferred in take_deferred() {
        for sandbox in deferred.sandboxes {
            if let Err(e) = sandbox.complete() {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Hands every deferred teardown to a reaper process that finishes it after this process has
/// exited (see `sys::spawn_reaper`), so that the caller may exit as soon as the result is out.
/// Nothing deferred: nothing started. If the reaper cannot be started, the teardowns are
/// finished here instead, and so they are when this process is PID 1 of its PID namespace (a
/// container's entry point): its exit kills every process there, the reaper too.
pub fn finish_in_background() -> Result<(), JailError> {
    if std::process::id() == 1 {
        return finish_now();
    }
    let deferred = take_deferred();
    if deferred.is_empty() {
        return Ok(());
    }
    let mut parts = PlanParts::default();
    for run in &deferred {
        run.holds.iter().for_each(|fd| parts.hold(fd));
        for sandbox in &run.sandboxes {
            parts.sandbox(sandbox.pidfd.as_ref(), sandbox.cgroup.as_ref());
        }
    }
    let plan = parts.leak(None);
    match crate::sys::spawn_reaper(plan) {
        Ok(_) => {
            for run in deferred {
                run.sandboxes.into_iter().for_each(Teardown::hand_over);
            }
            Ok(())
        }
        Err(_) => {
            DEFERRED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(deferred);
            finish_now()
        }
    }
}

/// Starts, while the sandbox still runs, the reaper that will end it once this process has
/// exited (`brig run`, `JailConfig::early_reaper`): starting a process costs ~0.07 ms, which
/// would otherwise be spent after the program's end, on the caller's clock. It keeps only
/// copies of what its plan names (a pidfd of ours, the init's pidfd, `holds`, a taken spare's
/// lock), so it holds none of our pipes, and waits until we are gone before it does anything.
/// Should we end the sandbox ourselves instead (an error, a drop), it finds that done: the init
/// gone, the directories too, and a spare made at most once more. Returns whether it started.
pub(crate) fn reap_early(
    init_pidfd: &OwnedFd,
    cgroup: Option<&Cgroup>,
    holds: Vec<OwnedFd>,
) -> bool {
    let Ok(ours) = rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    ) else {
        return false;
    };
    let mut parts = PlanParts::default();
    parts.hold(&ours);
    holds.iter().for_each(|fd| parts.hold(fd));
    parts.sandbox(Some(init_pidfd), cgroup);
    let plan = parts.leak(Some(&ours));
    // Our copies of `ours` and `holds` close when they drop; the reaper's stay open.
    crate::sys::spawn_reaper(plan).is_ok()
}

/// A reaper's plan (`sys::ReaperPlan`) as it is put together.
#[derive(Default)]
struct PlanParts {
    keep: Vec<RawFd>,
    pidfds: Vec<RawFd>,
    dirs: Vec<CString>,
    refill: Vec<Vec<CString>>,
}

impl PlanParts {
    /// An fd for the reaper to keep open until it exits (a claim's lock, a pidfd).
    fn hold(&mut self, fd: &OwnedFd) {
        self.keep.push(fd.as_raw_fd());
    }

    /// One sandbox: its init's pidfd to wait for, its cgroup's directories to remove, where
    /// to make a spare after them, and a taken spare's lock, held until it is removed.
    fn sandbox(&mut self, init_pidfd: Option<&OwnedFd>, cgroup: Option<&Cgroup>) {
        if let Some(pidfd) = init_pidfd {
            self.hold(pidfd);
            self.pidfds.push(pidfd.as_raw_fd());
        }
        if let Some(cgroup) = cgroup {
            self.dirs
                .extend(cgroup.removal_order().iter().filter_map(|d| c_path(d)));
            self.refill.extend_from_slice(cgroup.refill_candidates());
            if let Some(lock) = cgroup.spare_lock() {
                self.hold(lock);
            }
        }
    }

    /// The plan, leaked: the reaper reads it after we are gone; nothing frees or changes it.
    /// `wait_for` (kept too): a pidfd of ours, for a reaper started ahead.
    fn leak(mut self, wait_for: Option<&OwnedFd>) -> &'static crate::sys::ReaperPlan {
        self.keep.sort_unstable();
        Box::leak(Box::new(crate::sys::ReaperPlan {
            keep: self.keep,
            pidfds: self.pidfds,
            dirs: self.dirs,
            refill: self.refill,
            wait_for: wait_for.map(|fd| fd.as_raw_fd()),
        }))
    }
}

/// A path as the reaper's raw syscalls take it (`None` for one with a NUL byte, which no
/// cgroup path has).
fn c_path(path: &std::path::Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}
