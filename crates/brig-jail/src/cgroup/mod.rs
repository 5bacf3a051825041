//! Control groups: memory, process-count and CPU limits for one sandbox, and its accounting.
//!
//! A cgroup is a directory in a pseudo-filesystem (cgroupfs). Making a directory creates a
//! group; writing a pid to its `cgroup.procs` moves that process (and its future children)
//! into it; writing to interface files such as `memory.max` sets limits; reading `cpu.stat`
//! or `memory.events` reads the kernel's accounting; `rmdir` deletes an empty group. Brig
//! gives every sandbox one group, `<hierarchy>/<parent>/<name>`, so that its memory (RSS and
//! swap), its number of tasks and its CPU share are capped as a whole and its CPU time, peak
//! memory and OOM kills can be read back when it ends.
//!
//! Two kernel interfaces exist and Brig speaks both (see [`Version`]):
//! - **v2**, the unified hierarchy (`v2.rs`): one tree, controllers enabled per level through
//!   `cgroup.subtree_control`. Chosen whenever it offers `memory` and `pids`.
//! - **v1** (`v1.rs`): one tree per controller (`/sys/fs/cgroup/memory`, `.../pids`, ...), so a
//!   sandbox is one directory in each. Still the only usable choice on "hybrid" hosts whose
//!   cgroup2 mount (`/sys/fs/cgroup/unified`) has no controllers handed to it.
//!
//! Lifecycle, mirroring the layer verbs in STYLE.md: [`Cgroups::detect`] once at start-up;
//! [`Cgroups::create`] in the parent before the child runs; [`Cgroup::attach`] of the child's
//! pid from the parent *before the child allocates* (v1 memory charges stay where they were
//! made; runc attaches its init process before `execve` for the same reason);
//! [`Cgroup::cpu_usage_ns`] polled while it runs; [`Cgroup::stats`], [`Cgroup::kill_all`]
//! and [`Cgroup::remove`] at the end. [`Cgroups::list`] and [`Cgroups::remove_stale`] sweep
//! groups left behind by a crash.
//!
//! Why by hand rather than `cgroups-rs` or youki's `libcgroups`: a sandbox needs about ten
//! files, and a create/limit/attach/delete cycle measured 0.6 ms this way against 2–3.6 ms
//! through those crates, which model every controller and option.
//!
//! Read: `man 7 cgroups`; the kernel's `Documentation/admin-guide/cgroup-v2.rst` and
//! `Documentation/admin-guide/cgroup-v1/{cgroups,memory,pids}.rst`.

mod cgroupfs;
mod spare;
mod v1;
mod v2;

pub(crate) use spare::refill;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod host_tests;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use cgroupfs::{parse_u64, remove_dirs, write};

/// Where to find cgroupfs and under which directory Brig keeps its sandboxes' groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CgroupConfig {
    /// The cgroupfs mount point: `/sys/fs/cgroup` unless testing against a fixture tree.
    pub root: PathBuf,
    /// The directory, relative to each hierarchy, that holds one group per sandbox. It may
    /// be nested (`a/b`); every component must be a plain name (see [`Cgroups::create`]).
    pub parent: String,
}

impl Default for CgroupConfig {
    fn default() -> Self {
        CgroupConfig {
            root: PathBuf::from("/sys/fs/cgroup"),
            parent: "brig".to_owned(),
        }
    }
}

/// Which kernel interface a [`Cgroups`] drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// One hierarchy per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// The limits written into a new group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupLimits {
    /// Memory cap in bytes, swap included (swap is switched off for the group).
    pub memory_bytes: u64,
    /// Most tasks (processes and threads) alive in the group at once.
    pub pids: u32,
    /// CPU bandwidth as a percentage of one core per 100 ms period (200 = two cores);
    /// `None` leaves it unlimited. Values below 1 are raised to 1, the kernel's 1 ms minimum.
    pub cpu_quota_percent: Option<u32>,
}

/// What the kernel accounted for a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// CPU time used by every task that ran in the group, user and system, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// The highest memory use seen, in bytes.
    pub memory_peak_bytes: u64,
    /// How many tasks the OOM killer killed because the group hit its memory limit.
    pub oom_kills: u64,
}

/// Everything that can go wrong, with the operation and the file or process it concerned.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A group name that is not one plain path component.
    #[error("invalid cgroup name {name:?}: use 1-255 of [A-Za-z0-9._-], not \".\" or \"..\"")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A parent that is not a relative path of plain components.
    #[error("invalid cgroup parent {parent:?}: use a relative path of [A-Za-z0-9._-] names")]
    InvalidParent {
        /// The rejected parent.
        parent: String,
    },
    /// A pid that names no single process (0 would move the caller itself).
    #[error("invalid pid {pid} to attach")]
    InvalidPid {
        /// The rejected pid.
        pid: i32,
    },
    /// Neither interface offers the controllers Brig needs.
    #[error("no usable cgroup hierarchy under {}: {}", root.display(), missing_message(v2.as_deref(), v2_missing, v1_missing))]
    NoHierarchy {
        /// The cgroupfs root that was searched.
        root: PathBuf,
        /// The unified hierarchy, if one is mounted.
        v2: Option<PathBuf>,
        /// Controllers the unified hierarchy does not offer.
        v2_missing: Vec<String>,
        /// v1 controllers with no mounted hierarchy.
        v1_missing: Vec<String>,
    },
    /// `mkdir` failed.
    #[error("creating {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `rmdir` failed (`EBUSY` when tasks were still exiting after the retries).
    #[error("removing {}: {source}", path.display())]
    RemoveDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Listing a directory failed.
    #[error("listing {}: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Reading an interface file failed.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Writing an interface file failed.
    #[error("writing {value:?} to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The OS error.
        source: io::Error,
    },
    /// An interface file did not hold what the kernel documents.
    #[error("{}: no {expected} in its contents", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was looked for, e.g. "`oom_kill` line".
        expected: &'static str,
    },
    /// Sending SIGKILL failed for a reason other than the process being gone.
    #[error("killing pid {pid}: {source}")]
    Kill {
        /// The process.
        pid: i32,
        /// The OS error.
        source: io::Error,
    },
    /// Tasks were still listed after the bounded SIGKILL rounds.
    #[error("{remaining} task(s) still in {} after repeated SIGKILL", path.display())]
    KillTimeout {
        /// The `cgroup.procs` file that still lists tasks.
        path: PathBuf,
        /// How many were listed the last time.
        remaining: usize,
    },
}

fn missing_message(v2: Option<&Path>, v2_missing: &[String], v1_missing: &[String]) -> String {
    let v2 = match v2 {
        Some(path) => format!(
            "cgroup2 at {} lacks {}",
            path.display(),
            v2_missing.join(", ")
        ),
        None => "no cgroup2 hierarchy mounted".to_owned(),
    };
    format!("{v2}; cgroup v1 lacks {}", v1_missing.join(", "))
}

/// A detected cgroup hierarchy plus the parent directory for sandboxes' groups.
#[derive(Clone, Debug)]
pub struct Cgroups {
    parent: String,
    hierarchy: Hierarchy,
}

#[derive(Clone, Debug)]
enum Hierarchy {
    V1(v1::Hierarchy),
    V2(v2::Hierarchy),
}

impl Cgroups {
    /// Finds the hierarchy to use under `config.root`: v2 when the unified hierarchy (the
    /// root itself, or `<root>/unified` on hybrid hosts) offers `memory` and `pids`, else v1
    /// when `memory`, `pids`, `cpu` and `cpuacct` are mounted. Creates nothing.
    pub fn detect(config: &CgroupConfig) -> Result<Cgroups, CgroupError> {
        if config.parent.is_empty() || !config.parent.split('/').all(valid_name) {
            return Err(CgroupError::InvalidParent {
                parent: config.parent.clone(),
            });
        }
        let parent = config.parent.clone();
        let (unified, v2_missing) = match v2::detect(&config.root) {
            v2::Detected::Usable(h) => {
                return Ok(Cgroups {
                    parent,
                    hierarchy: Hierarchy::V2(h),
                });
            }
            v2::Detected::Lacking {
                path,
                offered,
                missing,
            } => (Some((path, offered)), missing),
            v2::Detected::Absent => (None, Vec::new()),
        };
        match v1::detect(&config.root, unified.clone()) {
            Ok(h) => Ok(Cgroups {
                parent,
                hierarchy: Hierarchy::V1(h),
            }),
            Err(v1_missing) => Err(CgroupError::NoHierarchy {
                root: config.root.clone(),
                v2: unified.map(|(path, _)| path),
                v2_missing,
                v1_missing,
            }),
        }
    }

    /// Which interface this is.
    pub fn version(&self) -> Version {
        match self.hierarchy {
            Hierarchy::V1(_) => Version::V1,
            Hierarchy::V2(_) => Version::V2,
        }
    }

    /// One line for `brig doctor`: the version, the controllers and where groups go.
    pub fn describe(&self) -> String {
        match &self.hierarchy {
            Hierarchy::V1(h) => h.describe(&self.parent),
            Hierarchy::V2(h) => h.describe(&self.parent),
        }
    }

    /// Creates the group `<parent>/<name>` (creating the parent if needed) and writes
    /// `limits` into it. `name` must be one path component of `[A-Za-z0-9._-]`. A group
    /// that already exists is an error: [`Cgroups::remove_stale`] it first. On failure,
    /// whatever was created for `name` is removed again.
    pub fn create(&self, name: &str, limits: &CgroupLimits) -> Result<Cgroup, CgroupError> {
        check_name(name)?;
        self.create_group(name, self.group(name), limits)
    }

    /// As [`Cgroups::create`], in only the hierarchies `limits` need: on v1, none of its own
    /// for `cpu` without a quota (`cpuacct` still counts the CPU time). One `mkdir`, one join
    /// and one `rmdir` fewer per run, where the `cpu` controller has a hierarchy of its own (as
    /// on the development VM); nothing changes on v2 (one directory) or with `cpu,cpuacct`
    /// co-mounted. For a group whose limits never change: [`Cgroup::update_limits`] cannot add
    /// a quota to it.
    pub fn create_for_limits(
        &self,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<Cgroup, CgroupError> {
        check_name(name)?;
        let group = match &self.hierarchy {
            Hierarchy::V1(h) => Group::V1(h.group_for_limits(&self.parent, name, limits)),
            Hierarchy::V2(h) => Group::V2(h.group(&self.parent, name)),
        };
        self.create_group(name, group, limits)
    }

    fn create_group(
        &self,
        name: &str,
        group: Group,
        limits: &CgroupLimits,
    ) -> Result<Cgroup, CgroupError> {
        let dirs = group.dirs();
        if let Hierarchy::V2(h) = &self.hierarchy {
            h.prepare_parent(&self.parent)?;
        }
        let mkdir = |path: &Path| {
            fs::create_dir(path).map_err(|source| CgroupError::CreateDir {
                path: path.into(),
                source,
            })
        };
        for (made, dir) in dirs.iter().enumerate() {
            let mut created = mkdir(dir);
            // v1: the parent is made the first time only (a missing parent is the rare case,
            // so it costs no syscall on every run).
            if let (Err(CgroupError::CreateDir { source, .. }), Hierarchy::V1(_)) =
                (&created, &self.hierarchy)
                && source.kind() == io::ErrorKind::NotFound
            {
                let parent = dir.parent().unwrap_or(dir);
                created = fs::create_dir_all(parent)
                    .map_err(|source| CgroupError::CreateDir {
                        path: parent.into(),
                        source,
                    })
                    .and_then(|()| mkdir(dir));
            }
            if let Err(e) = created {
                remove_dirs(&dirs[..made]).ok();
                return Err(e);
            }
        }
        let opened = group
            .write_limits(limits)
            .and_then(|()| Cgroup::open(name, group));
        if opened.is_err() {
            // Nothing ran in it yet, so the directories are empty and rmdir succeeds.
            remove_dirs(&dirs).ok();
        }
        opened
    }

    /// The names of the groups under the parent (an absent parent has none). On v1 this is
    /// the union over the controllers, so half-created groups are listed too.
    pub fn list(&self) -> Result<Vec<String>, CgroupError> {
        let mut names = Vec::new();
        for dir in self.parent_dirs() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CgroupError::ReadDir { path: dir, source }),
            };
            for entry in entries {
                let entry = entry.map_err(|source| CgroupError::ReadDir {
                    path: dir.clone(),
                    source,
                })?;
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if let Some(name) = entry
                    .file_name()
                    .to_str()
                    .filter(|n| is_dir && valid_name(n))
                {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Kills every task left in the group `name` and removes it (in every hierarchy where
    /// it exists). For groups found by [`Cgroups::list`] after a crash.
    pub fn remove_stale(&self, name: &str) -> Result<(), CgroupError> {
        check_name(name)?;
        let group = self.group(name);
        kill_group(&group)?;
        remove_dirs(&group.dirs())
    }

    /// `<hierarchy>/<parent>` for every hierarchy in use.
    fn parent_dirs(&self) -> Vec<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V1(h) => h.mounts().map(|m| m.join(&self.parent)).collect(),
            Hierarchy::V2(h) => vec![h.unified.join(&self.parent)],
        }
    }

    fn group(&self, name: &str) -> Group {
        match &self.hierarchy {
            Hierarchy::V1(h) => Group::V1(h.group(&self.parent, name)),
            Hierarchy::V2(h) => Group::V2(h.group(&self.parent, name)),
        }
    }
}

/// The paths of one sandbox's group.
#[derive(Debug)]
enum Group {
    V1(v1::Group),
    V2(v2::Group),
}

impl Group {
    fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Group::V1(g) => g.dirs.clone(),
            Group::V2(g) => vec![g.dir.clone()],
        }
    }

    fn write_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        match self {
            Group::V1(g) => g.write_limits(limits),
            Group::V2(g) => g.write_limits(limits),
        }
    }

    /// The files of peak memory and of OOM kills, and what the OOM line needs.
    fn memory_files(&self) -> (PathBuf, PathBuf, &'static str) {
        match self {
            Group::V1(g) => g.memory_files(),
            Group::V2(g) => g.memory_files(),
        }
    }

    /// The highest memory use seen, in bytes.
    fn memory_peak(&self) -> Result<u64, CgroupError> {
        let (peak, _, _) = self.memory_files();
        parse_u64(&cgroupfs::read(&peak)?, &peak)
    }

    /// Peak memory and OOM kills, read through `open` (the two files, opened ahead) if given.
    fn memory_stats(&self, open: Option<&[File; 2]>) -> Result<(u64, u64), CgroupError> {
        let (peak, oom, expected) = self.memory_files();
        let read = |index: usize, path: &Path| match open {
            Some(files) => {
                cgroupfs::read_whole(&files[index]).map_err(|source| CgroupError::Read {
                    path: path.into(),
                    source,
                })
            }
            None => cgroupfs::read(path),
        };
        Ok((
            parse_u64(&read(0, &peak)?, &peak)?,
            cgroupfs::keyed(&read(1, &oom)?, "oom_kill", &oom, expected)?,
        ))
    }
}

/// One sandbox's cgroup: a directory per v1 controller, or one v2 directory.
///
/// Dropping it leaves the group in place; call [`Cgroup::remove`].
#[derive(Debug)]
pub struct Cgroup {
    name: String,
    group: Group,
    /// `cpuacct.usage` (v1) or `cpu.stat` (v2), kept open: `pread` at offset 0 makes
    /// cgroupfs regenerate the contents, so a poll is one syscall instead of three.
    cpu_file: File,
    cpu_path: PathBuf,
    /// The memory counters' files, once opened ahead (`Cgroup::open_counters`).
    memory_counters: Option<[File; 2]>,
    /// The spare this group is, while taken (see `spare.rs`).
    spare: Option<spare::Taken>,
    /// Where its removal makes a spare for the next run (empty: none).
    refill: Vec<Vec<std::ffi::CString>>,
}

impl Cgroup {
    fn open(name: &str, group: Group) -> Result<Cgroup, CgroupError> {
        let cpu_path = match &group {
            Group::V1(g) => g.cpuacct.join("cpuacct.usage"),
            Group::V2(g) => g.dir.join("cpu.stat"),
        };
        let cpu_file = File::open(&cpu_path).map_err(|source| CgroupError::Read {
            path: cpu_path.clone(),
            source,
        })?;
        Ok(Cgroup {
            name: name.to_owned(),
            group,
            cpu_file,
            cpu_path,
            memory_counters: None,
            spare: None,
            refill: Vec::new(),
        })
    }

    /// Replaces the group's limits (a group prepared ahead of the run it will hold).
    pub fn update_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        self.group.write_limits(limits)?;
        match (&self.group, limits.cpu_quota_percent) {
            (_, Some(_)) => Ok(()),
            (Group::V1(g), None) => g.clear_cpu_quota(),
            (Group::V2(g), None) => g.clear_cpu_quota(),
        }
    }

    /// The group's name under the parent.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Opens the files through which a process moves *itself* into this group: `tasks` of
    /// every v1 controller, to which the process writes `0`. A thread moving itself skips the
    /// kernel's global threadgroup lock — writing another process's pid to `cgroup.procs`
    /// takes it and waits for an RCU grace period, 4-15 ms on this 2-vCPU VM against 0.2 ms.
    /// Empty on v2, where `clone3(CLONE_INTO_CGROUP)` starts the child inside the group.
    pub fn open_self_attach(&self) -> Result<Vec<File>, CgroupError> {
        match &self.group {
            Group::V2(_) => Ok(Vec::new()),
            Group::V1(g) => g
                .dirs
                .iter()
                .map(|dir| open_for_join(dir.join("tasks")))
                .collect(),
        }
    }

    /// Opens the files through which a process outside the group's namespace moves itself in
    /// by writing `0`: `tasks` of every v1 controller, `cgroup.procs` on v2. Opened here, by
    /// root, they keep root's permission (and, on v2, root's cgroup namespace) for the write:
    /// the Python zygote's forks join their run's group through them.
    pub fn open_join(&self) -> Result<Vec<File>, CgroupError> {
        match &self.group {
            Group::V1(_) => self.open_self_attach(),
            Group::V2(g) => Ok(vec![open_for_join(g.dir.join("cgroup.procs"))?]),
        }
    }

    /// Starts a new peak-memory measurement (v1: writing 0 to `memory.max_usage_in_bytes`
    /// resets it to the current usage). On v2 the peak stays the group's lifetime peak.
    pub fn reset_peak(&self) {
        if let Group::V1(g) = &self.group {
            let _ = fs::write(g.memory.join("memory.max_usage_in_bytes"), "0");
        }
    }

    /// The v2 group's directory, for `clone3(CLONE_INTO_CGROUP)`, which starts a child inside
    /// the group without the attach write (and its RCU grace period); `None` on v1.
    pub fn unified_dir(&self) -> Option<&Path> {
        match &self.group {
            Group::V1(_) => None,
            Group::V2(g) => Some(&g.dir),
        }
    }

    /// Moves process `pid` (all its threads) into the group, in every hierarchy.
    pub fn attach(&self, pid: i32) -> Result<(), CgroupError> {
        // The kernel reads 0 as "the writer": that would move the supervisor in.
        if pid <= 0 {
            return Err(CgroupError::InvalidPid { pid });
        }
        let value = pid.to_string();
        self.group
            .dirs()
            .iter()
            .try_for_each(|dir| write(&dir.join("cgroup.procs"), &value))
    }

    /// CPU time used so far, in nanoseconds. Usually one `pread`: cheap enough to poll
    /// every few ms.
    pub fn cpu_usage_ns(&self) -> Result<u64, CgroupError> {
        let text = cgroupfs::read_whole(&self.cpu_file).map_err(|source| CgroupError::Read {
            path: self.cpu_path.clone(),
            source,
        })?;
        match &self.group {
            Group::V1(_) => parse_u64(&text, &self.cpu_path),
            Group::V2(_) => v2::parse_cpu_stat(&text, &self.cpu_path),
        }
    }

    /// Opens the memory counters' files ahead of [`Cgroup::stats`], which then reads them
    /// with one `pread` each: done while the program runs, it takes their `open`s and `close`s
    /// off the path from the program's end to the result. Best effort: if they cannot be
    /// opened now, `stats` opens them itself (and reports why it cannot).
    pub fn open_counters(&mut self) {
        let (peak, oom, _) = self.group.memory_files();
        if let (Ok(peak), Ok(oom)) = (File::open(peak), File::open(oom)) {
            self.memory_counters = Some([peak, oom]);
        }
    }

    /// CPU time, peak memory and OOM kills so far.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let (memory_peak_bytes, oom_kills) =
            self.group.memory_stats(self.memory_counters.as_ref())?;
        Ok(CgroupStats {
            cpu_usage_ns: self.cpu_usage_ns()?,
            memory_peak_bytes,
            oom_kills,
        })
    }

    /// SIGKILLs every task in the group: through `cgroup.kill` on v2 (Linux 5.14+), which
    /// also catches tasks forking meanwhile; else by rounds of reading `cgroup.procs` and
    /// killing what it lists until it is empty. Tasks may still be exiting on return.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        kill_group(&self.group)
    }

    /// SIGKILLs the tasks the group lists now, once, without waiting: enough when they all
    /// live in one PID namespace whose init is among them (a zygote's run), since the init's
    /// death takes the rest, including any forked since the list was read.
    pub fn kill_listed(&self) -> Result<(), CgroupError> {
        if let Group::V2(g) = &self.group {
            let kill = g.dir.join("cgroup.kill");
            if kill.exists() {
                return write(&kill, "1");
            }
        }
        cgroupfs::kill_listed(&self.group.dirs())
    }

    /// One attempt at removing the group, without waiting: `Ok(false)` while its last tasks
    /// are still exiting (try again later, or [`Cgroup::remove`]).
    pub fn try_remove(&self) -> Result<bool, CgroupError> {
        cgroupfs::remove_dirs_once(&self.group.dirs())
    }

    /// Removes the group's directories, retrying for up to ~100 ms while killed tasks
    /// finish exiting. Already-removed directories are not an error. Then, for a group made
    /// by [`Cgroups::create_for_run`], makes a spare for the next run (`spare.rs`), once every
    /// directory is gone; the lock on a taken spare is held until then.
    pub fn remove(self) -> Result<(), CgroupError> {
        let dirs = self.removal_order();
        drop(self.cpu_file);
        let removed = remove_dirs(&dirs);
        if removed.is_ok() {
            spare::refill(&self.refill);
        }
        removed
    }
}

/// Opens a `tasks` or `cgroup.procs` file for a process to write `0` to.
fn open_for_join(path: PathBuf) -> Result<File, CgroupError> {
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|source| CgroupError::Write {
            path,
            value: "0".into(),
            source,
        })
}

fn kill_group(group: &Group) -> Result<(), CgroupError> {
    if let Group::V2(g) = group {
        let kill = g.dir.join("cgroup.kill");
        if kill.exists() {
            return write(&kill, "1");
        }
    }
    cgroupfs::kill_until_empty(&group.dirs())
}

/// A group or parent component: `[A-Za-z0-9._-]{1,255}`, not `.` or `..`.
fn valid_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn check_name(name: &str) -> Result<(), CgroupError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(CgroupError::InvalidName {
            name: name.to_owned(),
        })
    }
}
