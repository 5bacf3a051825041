//! Who the sandbox is on the host: the sandbox user (uid/gid 1000 inside) maps to a host id that
//! no other live sandbox uses, so two sandboxes can never signal, trace or share files with each
//! other through their ids, and `RLIMIT_NPROC` counts one sandbox alone.
//!
//! As root, ids come from a configurable range; each slot is claimed with an exclusive `flock`
//! on `<runtime_dir>/uids/<slot>`, held for the life of the run and released by the kernel when
//! the holder exits, so a crash frees its slot. Without root, the only id a process may map is
//! its own, and the sandbox runs as the caller's id.
//!
//! Man pages: user_namespaces(7) (uid_map, setgroups), flock(2).

use rustix::fd::OwnedFd;
use rustix::fs::{FlockOperation, Mode, OFlags};
use std::io;
use std::path::{Path, PathBuf};

use crate::spec::{SANDBOX_GID, SANDBOX_UID};

/// The host ids handed to sandboxes when Brig runs as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    /// First host uid (and gid) of the range.
    pub start: u32,
    /// How many ids, i.e. how many sandboxes may run at once.
    pub count: u32,
}

impl Default for UidRange {
    /// 65536 ids from 2,000,000,000: far above any distribution's users and subuid ranges.
    fn default() -> Self {
        UidRange {
            start: 2_000_000_000,
            count: 65_536,
        }
    }
}

/// How many slots a claim may start at (see `HostId::claim`).
const CLAIM_SPREAD: u32 = 64;

/// A claimed host id; the claim lasts as long as this value (and the process) lives.
#[derive(Debug)]
pub struct HostId {
    /// The host uid the sandbox user maps to.
    pub uid: u32,
    /// The host gid the sandbox group maps to.
    pub gid: u32,
    _lock: Option<OwnedFd>,
}

/// Errors while claiming an id.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The lock directory or a lock file could not be created.
    #[error("{path}: {source}")]
    Lock {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Every id of the range is in use.
    #[error("all {0} sandbox ids are in use; raise the uid range")]
    Exhausted(u32),
}

impl HostId {
    /// Root of the helper's own user namespace, which maps to the caller's ids (the
    /// unprivileged mode: see `run::enter_own_user_namespace`).
    pub fn namespace_root() -> HostId {
        HostId {
            uid: 0,
            gid: 0,
            _lock: None,
        }
    }

    /// The caller's own ids (the process tier).
    pub fn caller() -> HostId {
        HostId {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            _lock: None,
        }
    }

    /// Claims a free id of `range`, starting the search at a slot derived from `hint` (our pid)
    /// so concurrent helpers rarely contend for the same lock. The start is one of the first
    /// `CLAIM_SPREAD` slots, so that runs reuse a few lock files instead of creating one per
    /// pid: creating a file costs 0.05-0.1 ms and, where `/run` is not a tmpfs, can wait for
    /// the filesystem's journal (milliseconds, measured on this VM's ext4).
    pub fn claim(runtime_dir: &Path, range: UidRange, hint: u32) -> Result<HostId, IdentityError> {
        let dir = runtime_dir.join("uids");
        let start = hint.checked_rem(range.count.min(CLAIM_SPREAD)).unwrap_or(0);
        for i in 0..range.count {
            let slot = ((u64::from(start) + u64::from(i)) % u64::from(range.count)) as u32;
            let path = dir.join(slot.to_string());
            let fd = open_lock_file(&path).map_err(|source| IdentityError::Lock {
                path: path.clone(),
                source,
            })?;
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    return Ok(HostId {
                        uid: range.start + slot,
                        gid: range.start + slot,
                        _lock: Some(fd),
                    });
                }
                Err(rustix::io::Errno::WOULDBLOCK) => continue,
                Err(e) => {
                    return Err(IdentityError::Lock {
                        path,
                        source: e.into(),
                    });
                }
            }
        }
        Err(IdentityError::Exhausted(range.count))
    }

    /// A copy of the claim's lock fd, which keeps the id claimed while it is open (after this
    /// value is gone: see `teardown`). None when nothing is locked.
    pub(crate) fn hold(&self) -> io::Result<Option<OwnedFd>> {
        hold_lock(self._lock.as_ref())
    }

    /// The line for `/proc/<pid>/uid_map`.
    pub fn uid_map(&self) -> String {
        format!("{SANDBOX_UID} {} 1\n", self.uid)
    }

    /// The line for `/proc/<pid>/gid_map`.
    pub fn gid_map(&self) -> String {
        format!("{SANDBOX_GID} {} 1\n", self.gid)
    }
}

/// A copy of a claim's lock fd (if it has one): the `flock` lasts while either is open.
pub(crate) fn hold_lock(lock: Option<&OwnedFd>) -> io::Result<Option<OwnedFd>> {
    lock.map(|fd| rustix::io::fcntl_dupfd_cloexec(fd, 0))
        .transpose()
        .map_err(io::Error::from)
}

/// Opens (creating) the lock file `path` under Brig's runtime dir, making its directory the
/// first time: one syscall on every later run.
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<OwnedFd> {
    let open = || {
        rustix::fs::open(
            path,
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
    };
    match open() {
        Err(rustix::io::Errno::NOENT) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            Ok(open()?)
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the pid, sequential runs start at one of the first slots and so reuse their
    /// lock files.
    #[test]
    fn claims_start_among_the_first_slots_and_reuse_lock_files() {
        let dir = tempfile::tempdir().unwrap();
        let range = UidRange::default();
        for pid in [1, 63, 64, 4_000_000] {
            let id = HostId::claim(dir.path(), range, pid).unwrap();
            assert!(id.uid - range.start < CLAIM_SPREAD, "{pid}: {}", id.uid);
        }
        let files = std::fs::read_dir(dir.path().join("uids")).unwrap().count();
        assert_eq!(files, 3, "slots 1, 63 and 0, the last one reused");
    }

    #[test]
    fn concurrent_claims_get_distinct_ids_and_a_drop_frees_one() {
        let dir = tempfile::tempdir().unwrap();
        let range = UidRange {
            start: 5000,
            count: 2,
        };
        let a = HostId::claim(dir.path(), range, 7).unwrap();
        let b = HostId::claim(dir.path(), range, 7).unwrap();
        assert_ne!(a.uid, b.uid);
        assert!(matches!(
            HostId::claim(dir.path(), range, 7),
            Err(IdentityError::Exhausted(2))
        ));
        let freed = a.uid;
        drop(a);
        assert_eq!(HostId::claim(dir.path(), range, 7).unwrap().uid, freed);
        // An empty range has nothing to claim.
        let empty = UidRange {
            start: 5000,
            count: 0,
        };
        assert!(matches!(
            HostId::claim(dir.path(), empty, 7),
            Err(IdentityError::Exhausted(0))
        ));
        assert_eq!(b.uid_map(), format!("1000 {} 1\n", b.uid));
    }
}
