//! Spare groups: an empty group made ahead, off the clock, for the next run to take.
//!
//! Making a group is most of what a run's cgroup costs: `mkdir` took 97 µs in `memory`, 28 µs
//! in `pids` and 32 µs in `cpuacct` on the development VM (a C loop of `mkdir` and `rmdir`,
//! 2026-12-03), against ~15 µs for each limit written. So the end of a run, once its result is
//! out (`brig run`'s reaper, or the in-place teardown), removes its group and then makes one
//! spare, `<parent>/spare-<k>`, and the next run takes it instead of making its own.
//!
//! A spare is as good as a new group because:
//! - **One run at a time:** a run takes spare `k` with an exclusive `flock` on its *lock
//!   directory* (`memory`'s on v1, the group on v2; cgroupfs directories take `flock`), held
//!   until its end has removed the group. A spare held by another run is skipped.
//! - **Never used:** the taker reads its CPU time and peak memory, which any task that ever
//!   ran in it raised above 0. A spare left used by a crash is removed (its tasks killed) and
//!   not taken.
//! - **Whole before it is seen:** the directories in the other v1 hierarchies are made first,
//!   the lock directory last; removal goes the other way, the lock directory first, and
//!   nothing more happens if that fails. A spare that was half removed by a crash is caught by
//!   the check above (or has no CPU file to open) and removed.
//! - **Its limits are the taker's:** written by the taker, as into a new group; nothing of the
//!   maker's is trusted.
//!
//! A spare has the layout of a group without a CPU quota (on v1, none in a hierarchy of `cpu`
//! alone): a run with a quota there makes its own group. At most `count` spares exist
//! (`JailConfig::spare_cgroups`); a run that finds none free makes its own group as before,
//! and its end makes a spare if fewer than `count` exist. The empty groups stay between runs:
//! that is the point, and an empty cgroup holds no process and no memory but its own.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fd::OwnedFd;
use rustix::fs::{FlockOperation, Mode, OFlags};

use super::{Cgroup, CgroupError, CgroupLimits, Cgroups, Group, Hierarchy};

/// The name of spare `index`.
fn spare_name(index: u32) -> String {
    format!("spare-{index}")
}

/// A taken spare: its index and the lock that keeps it ours.
#[derive(Debug)]
pub(super) struct Taken {
    pub(super) index: u32,
    pub(super) lock: OwnedFd,
}

impl Cgroups {
    /// A group for one run with `limits`: a free, never used spare if one of the first `spares`
    /// is, else a new group named `name()` (see [`Cgroups::create_for_limits`]; called only
    /// then, since a run's name costs a read of `/proc/self/stat`). Either way, removing it
    /// ([`Cgroup::remove`], or a reaper given [`Cgroup::refill_candidates`]) then makes a spare
    /// for the next run.
    pub fn create_for_run(
        &self,
        name: impl FnOnce() -> String,
        limits: &CgroupLimits,
        spares: u32,
    ) -> Result<Cgroup, CgroupError> {
        let mut cgroup = match self.take_spare(limits, spares) {
            Some(cgroup) => cgroup,
            None => self.create_for_limits(&name(), limits)?,
        };
        cgroup.refill = self.refill_candidates(cgroup.spare.as_ref().map(|t| t.index), spares);
        Ok(cgroup)
    }

    /// Takes the first free spare whose layout fits `limits`, writes `limits` into it, and
    /// returns it; `None` when there is none (or it could not be made ready: the caller then
    /// makes a new group, whose errors say what is wrong).
    pub(super) fn take_spare(&self, limits: &CgroupLimits, spares: u32) -> Option<Cgroup> {
        if limits.cpu_quota_percent.is_some() && self.spare_layout_lacks_cpu() {
            return None;
        }
        (0..spares).find_map(|index| self.try_take(index, limits))
    }

    fn try_take(&self, index: u32, limits: &CgroupLimits) -> Option<Cgroup> {
        let name = spare_name(index);
        let group = self.spare_group(&name);
        let lock = rustix::fs::open(
            group.lock_dir(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).ok()?;
        let fresh = Cgroup::open(&name, group)
            .ok()
            .filter(|cgroup| cgroup.never_used());
        let Some(mut cgroup) = fresh else {
            // Used (a crashed run's) or half made: remove it, and make our own group.
            let _ = self.remove_stale(&name);
            return None;
        };
        cgroup.group.write_limits(limits).ok()?;
        cgroup.spare = Some(Taken { index, lock });
        Some(cgroup)
    }

    /// The paths of spare `name`: a group without a CPU quota.
    pub(super) fn spare_group(&self, name: &str) -> Group {
        let no_quota = CgroupLimits {
            memory_bytes: 0,
            pids: 0,
            cpu_quota_percent: None,
        };
        match &self.hierarchy {
            Hierarchy::V1(h) => Group::V1(h.group_for_limits(&self.parent, name, &no_quota)),
            Hierarchy::V2(h) => Group::V2(h.group(&self.parent, name)),
        }
    }

    /// Whether a quota needs a directory that a spare does not have (v1 with `cpu` alone in a
    /// hierarchy).
    fn spare_layout_lacks_cpu(&self) -> bool {
        matches!(&self.hierarchy, Hierarchy::V1(h) if h.cpu_only_mount().is_some())
    }

    /// Where the end of a run may make its spare, in the order to try: the spare it took (if
    /// any), then every index below `spares`. Each candidate lists the directories to make,
    /// the lock directory last, as C strings (the reaper that makes them may not allocate);
    /// the first candidate whose lock directory did not exist yet is the one made. Empty when
    /// `spares` is 0.
    pub(super) fn refill_candidates(&self, taken: Option<u32>, spares: u32) -> Vec<Vec<CString>> {
        if spares == 0 {
            return Vec::new();
        }
        taken
            .into_iter()
            .chain((0..spares).filter(|&i| Some(i) != taken))
            .map(|index| {
                let dirs = self.spare_group(&spare_name(index)).dirs_lock_last();
                // Group names are checked plain components: no NUL byte to refuse.
                dirs.iter()
                    .filter_map(|d| CString::new(d.as_os_str().as_bytes()).ok())
                    .collect()
            })
            .collect()
    }
}

impl Group {
    /// The directory a spare's taker locks, made last and removed first.
    pub(super) fn lock_dir(&self) -> &std::path::Path {
        match self {
            Group::V1(g) => &g.memory,
            Group::V2(g) => &g.dir,
        }
    }

    /// Every directory, the lock directory last.
    fn dirs_lock_last(&self) -> Vec<PathBuf> {
        let lock = self.lock_dir().to_path_buf();
        let mut dirs: Vec<PathBuf> = self.dirs().into_iter().filter(|d| *d != lock).collect();
        dirs.push(lock);
        dirs
    }
}

impl Cgroup {
    /// Whether no task ever ran in the group: CPU time and peak memory are both 0.
    fn never_used(&self) -> bool {
        matches!(
            (self.cpu_usage_ns(), self.group.memory_peak()),
            (Ok(0), Ok(0))
        )
    }

    /// Whether this is a spare taken for the run (named `spare-<k>`), not a group of its own.
    pub fn is_spare(&self) -> bool {
        self.spare.is_some()
    }

    /// The lock that keeps a taken spare ours, for a reaper to hold until it has removed the
    /// group (`teardown::finish_in_background`).
    pub(crate) fn spare_lock(&self) -> Option<&OwnedFd> {
        self.spare.as_ref().map(|t| &t.lock)
    }

    /// Where to make a spare once the group is removed (see `Cgroups::refill_candidates`):
    /// for whoever removes it in our place.
    pub(crate) fn refill_candidates(&self) -> &[Vec<CString>] {
        &self.refill
    }

    /// The group's directories in the order to remove them: the lock directory first, so
    /// that a spare disappears before any of its parts do.
    pub(crate) fn removal_order(&self) -> Vec<PathBuf> {
        let mut dirs = self.group.dirs_lock_last();
        dirs.rotate_right(1);
        dirs
    }
}

/// Makes the first spare of `candidates` that does not exist yet (see
/// `Cgroups::refill_candidates`); errors end the attempt quietly: a missing spare only
/// means the next run makes its own group. Allocates nothing and calls only rustix's raw
/// syscalls, so a reaper may call it too.
pub(crate) fn refill(candidates: &[Vec<CString>]) {
    for dirs in candidates {
        let Some((lock_dir, others)) = dirs.split_last() else {
            continue;
        };
        for dir in others {
            match rustix::fs::mkdir(dir.as_c_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(_) => return,
            }
        }
        match rustix::fs::mkdir(lock_dir.as_c_str(), Mode::from_raw_mode(0o755)) {
            Err(rustix::io::Errno::EXIST) => continue,
            _ => return,
        }
    }
}
