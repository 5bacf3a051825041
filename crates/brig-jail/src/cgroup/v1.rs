//! cgroup v1: one hierarchy per controller, so one sandbox is one directory in each.
//!
//! Brig uses four controllers: `memory` (the cap and the OOM killer), `pids` (the task
//! cap), `cpu` (CFS bandwidth quota) and `cpuacct` (CPU time). Each is mounted at
//! `<root>/<controller>`; distributions that co-mount `cpu` and `cpuacct` have a
//! `<root>/cpu,cpuacct` directory, usually with `cpu` and `cpuacct` symlinks to it. Mounts
//! are told apart by their canonical path, so a co-mounted hierarchy gets one directory.
//!
//! Files touched, per group: `memory.limit_in_bytes` then `memory.memsw.limit_in_bytes`
//! (RAM+swap, present with swap accounting; it may never be below the RAM limit, hence the
//! order), `memory.swappiness`, `pids.max`, `cpu.cfs_period_us` and `cpu.cfs_quota_us`,
//! `cgroup.procs` in each directory; read back: `cpuacct.usage` (ns),
//! `memory.max_usage_in_bytes`, and the `oom_kill` line of `memory.oom_control` (Linux
//! 4.13+). `memory.failcnt` is not an OOM signal: it counts every time usage touched the
//! limit, which page-cache reclaim makes routine.
//!
//! Memory is charged to the group a page was allocated in and does not follow a task that
//! moves (`memory.move_charge_at_immigrate` is deprecated), so attach before the child runs.
//!
//! Read: the kernel's `Documentation/admin-guide/cgroup-v1/{cgroups,memory,pids,cpuacct}.rst`
//! and `Documentation/scheduler/sched-bwc.rst`; `man 7 cgroups`.

use std::fs;
use std::path::{Path, PathBuf};

use super::cgroupfs::write;
use super::{CgroupError, CgroupLimits};

/// The controllers Brig needs, in the order groups are created in them.
const CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];
/// The CFS bandwidth period Brig uses, in µs (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;

/// The mounted hierarchies holding Brig's controllers.
#[derive(Clone, Debug)]
pub(super) struct Hierarchy {
    /// One per distinct mount, in [`CONTROLLERS`] order.
    mounts: Vec<Mount>,
    /// The cgroup2 mount of a hybrid host and what it offers, for `describe`.
    unified: Option<(PathBuf, Vec<String>)>,
}

#[derive(Clone, Debug)]
struct Mount {
    /// Canonical path of the hierarchy's root.
    path: PathBuf,
    /// Which of [`CONTROLLERS`] it carries.
    controllers: Vec<&'static str>,
}

/// Finds a hierarchy for each of [`CONTROLLERS`], or returns the ones missing.
pub(super) fn detect(
    root: &Path,
    unified: Option<(PathBuf, Vec<String>)>,
) -> Result<Hierarchy, Vec<String>> {
    let mut mounts: Vec<Mount> = Vec::new();
    let mut missing = Vec::new();
    for controller in CONTROLLERS {
        let Some(path) = find_mount(root, controller) else {
            missing.push(controller.to_owned());
            continue;
        };
        match mounts.iter_mut().find(|m| m.path == path) {
            Some(mount) => mount.controllers.push(controller),
            None => mounts.push(Mount {
                path,
                controllers: vec![controller],
            }),
        }
    }
    if missing.is_empty() {
        Ok(Hierarchy { mounts, unified })
    } else {
        Err(missing)
    }
}

/// `<root>/<controller>`, else a co-mount such as `<root>/cpu,cpuacct`, only if it looks like a
/// cgroup hierarchy (has `cgroup.procs`). A `cpu -> cpu,cpuacct` symlink is resolved, so that
/// co-mounted controllers name one directory: one `readlink` per controller, where
/// `canonicalize` made one per path component on every run.
fn find_mount(root: &Path, controller: &str) -> Option<PathBuf> {
    let is_hierarchy = |dir: &Path| dir.join("cgroup.procs").is_file();
    let direct = root.join(controller);
    let dir = if is_hierarchy(&direct) {
        direct
    } else {
        fs::read_dir(root)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|dir| {
                let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.split(',').any(|c| c == controller) && is_hierarchy(dir)
            })?
    };
    Some(match fs::read_link(&dir) {
        // Relative to `root`, as `cpu,cpuacct` is; an absolute target replaces it.
        Ok(target) => root.join(target),
        Err(_) => dir,
    })
}

impl Hierarchy {
    /// The root of each distinct hierarchy.
    pub(super) fn mounts(&self) -> impl Iterator<Item = &PathBuf> {
        self.mounts.iter().map(|m| &m.path)
    }

    pub(super) fn describe(&self, parent: &str) -> String {
        let dirs: Vec<String> = self
            .mounts
            .iter()
            .map(|m| m.path.join(parent).display().to_string())
            .collect();
        let mut text = format!(
            "v1 ({}; groups in {}",
            CONTROLLERS.join(", "),
            dirs.join(", ")
        );
        if let Some((path, offered)) = &self.unified {
            let offered = if offered.is_empty() {
                "nothing".to_owned()
            } else {
                offered.join(", ")
            };
            text += &format!("; cgroup2 at {} offers only {offered}", path.display());
        }
        text + ")"
    }

    pub(super) fn group(&self, parent: &str, name: &str) -> Group {
        let dir_of = |controller: &str| {
            let mount = self
                .mounts
                .iter()
                .find(|m| m.controllers.contains(&controller));
            // detect() found a mount for every controller.
            mount
                .map(|m| m.path.join(parent).join(name))
                .unwrap_or_default()
        };
        Group {
            dirs: self
                .mounts
                .iter()
                .map(|m| m.path.join(parent).join(name))
                .collect(),
            memory: dir_of("memory"),
            pids: dir_of("pids"),
            cpu: dir_of("cpu"),
            cpuacct: dir_of("cpuacct"),
        }
    }

    /// [`Hierarchy::group`] without the hierarchy that carries only `cpu` when `limits` set no
    /// quota (see `Cgroups::create_for_limits`).
    pub(super) fn group_for_limits(
        &self,
        parent: &str,
        name: &str,
        limits: &CgroupLimits,
    ) -> Group {
        let mut group = self.group(parent, name);
        if let (None, Some(cpu_only)) = (limits.cpu_quota_percent, self.cpu_only_mount()) {
            group.dirs.retain(|dir| !dir.starts_with(cpu_only));
        }
        group
    }

    /// The root of a hierarchy that carries only `cpu`, if there is one (`cpu` is in one
    /// hierarchy only).
    pub(super) fn cpu_only_mount(&self) -> Option<&Path> {
        self.mounts
            .iter()
            .find(|m| m.controllers == ["cpu"])
            .map(|m| m.path.as_path())
    }
}

/// One sandbox's v1 group: its directory in each hierarchy.
#[derive(Debug)]
pub(super) struct Group {
    /// One per distinct hierarchy the group is in (all of them, or all but `cpu`'s: see
    /// [`Hierarchy::group_for_limits`]).
    pub(super) dirs: Vec<PathBuf>,
    pub(super) memory: PathBuf,
    pub(super) pids: PathBuf,
    pub(super) cpu: PathBuf,
    pub(super) cpuacct: PathBuf,
}

impl Group {
    pub(super) fn write_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        let bytes = limits.memory_bytes.to_string();
        let limit = self.memory.join("memory.limit_in_bytes");
        // RAM+swap equal to RAM: no swap. memsw may never be below the RAM limit, so it goes
        // second when the limit comes down or stays (a new group); a limit raised above it (a
        // group prepared ahead for a run that may use more) is refused with EINVAL, and then
        // memsw goes first. Without swap accounting there is no memsw file.
        let memsw = self.memory.join("memory.memsw.limit_in_bytes");
        match write(&limit, &bytes) {
            Ok(()) => write_if_present(&memsw, &bytes)?,
            Err(CgroupError::Write { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && memsw.exists() =>
            {
                write(&memsw, &bytes)?;
                write(&limit, &bytes)?;
            }
            Err(e) => return Err(e),
        }
        // Without swap accounting, at least keep the group's pages out of swap; some kernels
        // refuse this file below the root, which costs nothing worse than swapping.
        write(&self.memory.join("memory.swappiness"), "0").ok();
        write(&self.pids.join("pids.max"), &limits.pids.to_string())?;
        if let Some(percent) = limits.cpu_quota_percent {
            let quota = u64::from(percent.max(1)) * CPU_PERIOD_US / 100;
            write(
                &self.cpu.join("cpu.cfs_period_us"),
                &CPU_PERIOD_US.to_string(),
            )?;
            write(&self.cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
        Ok(())
    }

    pub(super) fn clear_cpu_quota(&self) -> Result<(), CgroupError> {
        let quota = self.cpu.join("cpu.cfs_quota_us");
        if quota.exists() {
            write(&quota, "-1")
        } else {
            Ok(())
        }
    }

    /// The files of peak memory and of OOM kills (its `oom_kill` line), and what the OOM line
    /// needs: CPU time is `Cgroup::cpu_usage_ns`, from a file kept open.
    pub(super) fn memory_files(&self) -> (PathBuf, PathBuf, &'static str) {
        (
            self.memory.join("memory.max_usage_in_bytes"),
            self.memory.join("memory.oom_control"),
            "`oom_kill` line (Linux 4.13+)",
        )
    }
}

/// `write`, unless `path` does not exist (a controller file this kernel does not have).
fn write_if_present(path: &Path, value: &str) -> Result<(), CgroupError> {
    match write(path, value) {
        Err(CgroupError::Write { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(())
        }
        other => other,
    }
}
