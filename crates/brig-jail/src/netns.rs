//! The sandbox's empty network namespace (only `lo`, up), from a pool.
//!
//! Creating a network namespace costs 0.5-1 ms here, a third of Brig's whole start-up; joining
//! an existing one with `setns` costs microseconds. So when Brig runs as root it keeps a pool of
//! empty namespaces, each persisted as a bind mount of its nsfs file under
//! `<runtime_dir>/netns/<n>` (the way `ip netns add` does it) and used by one sandbox at a time:
//! a run claims one with an exclusive `flock` on `<n>.lock`, held until the helper exits.
//!
//! Reusing one is safe because nothing of a run survives in it: every process of the sandbox is
//! dead when the lock is released (the PID namespace is gone), so its sockets are closed; and the
//! namespace belongs to the host's user namespace, where the sandbox has no capability, so it can
//! change no address, route, rule or sysctl in it. Without root (or with the pool disabled) each
//! run unshares a fresh one.
//!
//! Man pages: network_namespaces(7), setns(2), ip-netns(8).

use rustix::fd::OwnedFd;
use rustix::fs::{FlockOperation, Mode, OFlags};
use std::io;
use std::path::Path;

use crate::sys;

/// A claimed namespace; the claim lasts as long as this value (and the process) lives.
pub struct Claim {
    _lock: Option<OwnedFd>,
}

impl Claim {
    /// A copy of the claim's lock fd, which keeps the namespace claimed while it is open
    /// (after this value is gone: see `teardown`). None for an unkept namespace.
    pub(crate) fn hold(&self) -> io::Result<Option<OwnedFd>> {
        crate::identity::hold_lock(self._lock.as_ref())
    }
}

fn open(path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        flags | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?)
}

/// Moves the calling (root, single-threaded) process into an empty network namespace with `lo`
/// up: a free one of the pool, a new one added to the pool, or — past `pool_size` — a fresh
/// one that is not kept.
pub fn enter(runtime_dir: &Path, pool_size: u32) -> io::Result<Claim> {
    let dir = runtime_dir.join("netns");
    for n in 0..pool_size {
        let lock = crate::identity::open_lock_file(&dir.join(format!("{n}.lock")))?;
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => continue,
            Err(e) => return Err(e.into()),
        }
        let ns_path = dir.join(n.to_string());
        // A kept namespace: join it.
        if let Ok(ns) = open(&ns_path, OFlags::RDONLY)
            && rustix::thread::move_into_link_name_space(
                rustix::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .is_ok()
        {
            return Ok(Claim { _lock: Some(lock) });
        }
        // None yet (or a stale file that is not a namespace): make one and keep it.
        fresh()?;
        drop(open(&ns_path, OFlags::CREATE | OFlags::RDONLY)?);
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &ns_path)?;
        return Ok(Claim { _lock: Some(lock) });
    }
    fresh()?;
    Ok(Claim { _lock: None })
}

/// A new, unkept network namespace with `lo` up.
pub fn fresh() -> io::Result<()> {
    sys::unshare_network_namespace()?;
    sys::loopback_up()
}
