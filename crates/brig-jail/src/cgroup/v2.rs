//! cgroup v2, the unified hierarchy: one tree where every group can have every controller.
//!
//! A controller is usable in a group only when its parent lists it in
//! `cgroup.subtree_control`, and only controllers in the parent's `cgroup.controllers` can
//! be listed there; so Brig writes `+memory +pids [+cpu]` into the subtree control of the
//! hierarchy root and of each directory down the parent path, then makes the sandbox's
//! group as a leaf. The "no internal processes" rule means those parent directories must
//! hold no processes themselves, which is why sandboxes go under a dedicated parent.
//!
//! Files touched, per group: `memory.max`, `memory.swap.max` (when swap accounting exists),
//! `pids.max`, `cpu.max` (`"<quota> <period>"` in µs), `cgroup.procs` to attach,
//! `cgroup.kill` (5.14+) to kill; read back: `cpu.stat` (`usage_usec`), `memory.peak`
//! (5.19+; `memory.current` before), `memory.events` (`oom_kill`).
//!
//! Read: the kernel's `Documentation/admin-guide/cgroup-v2.rst` ("Controlling Controllers",
//! "Memory", "PID", "CPU"); `man 7 cgroups`.

use std::fs;
use std::path::{Path, PathBuf};

use super::cgroupfs::{keyed, read, write};
use super::{CgroupError, CgroupLimits};

/// The CPU bandwidth period Brig uses, in µs (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;

/// A unified hierarchy that offers what Brig needs.
#[derive(Clone, Debug)]
pub(super) struct Hierarchy {
    /// Where cgroup2 is mounted: the cgroupfs root, or `<root>/unified` on hybrid hosts.
    pub(super) unified: PathBuf,
    /// Whether the `cpu` controller is offered (quotas need it; `cpu.stat` does not).
    cpu: bool,
}

/// What [`detect`] found.
pub(super) enum Detected {
    /// `memory` and `pids` are offered.
    Usable(Hierarchy),
    /// A unified hierarchy without them (typical of hybrid hosts, where v1 holds them).
    Lacking {
        path: PathBuf,
        offered: Vec<String>,
        missing: Vec<String>,
    },
    /// No `cgroup.controllers` at the root nor at `<root>/unified`.
    Absent,
}

/// Looks for the unified hierarchy at `root` (pure v2) then `root/unified` (hybrid).
pub(super) fn detect(root: &Path) -> Detected {
    let found = [root.to_path_buf(), root.join("unified")]
        .into_iter()
        .find_map(|dir| {
            let text = fs::read_to_string(dir.join("cgroup.controllers")).ok()?;
            Some((
                dir,
                text.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ))
        });
    let Some((unified, offered)) = found else {
        return Detected::Absent;
    };
    let missing: Vec<String> = ["memory", "pids"]
        .into_iter()
        .filter(|c| !offered.iter().any(|o| o == c))
        .map(str::to_owned)
        .collect();
    if missing.is_empty() {
        let cpu = offered.iter().any(|o| o == "cpu");
        Detected::Usable(Hierarchy { unified, cpu })
    } else {
        Detected::Lacking {
            path: unified,
            offered,
            missing,
        }
    }
}

impl Hierarchy {
    pub(super) fn describe(&self, parent: &str) -> String {
        let controllers = if self.cpu {
            "memory, pids, cpu"
        } else {
            "memory, pids; no cpu"
        };
        format!(
            "v2 ({controllers}; groups in {})",
            self.unified.join(parent).display()
        )
    }

    pub(super) fn group(&self, parent: &str, name: &str) -> Group {
        Group {
            dir: self.unified.join(parent).join(name),
        }
    }

    /// Makes each directory of `parent` and enables the controllers for its children, from
    /// the hierarchy root down (a child can only enable what its parent enabled). Once done
    /// (every run after the first), reading `parent`'s own `cgroup.subtree_control` shows it,
    /// and nothing else is read or written.
    pub(super) fn prepare_parent(&self, parent: &str) -> Result<(), CgroupError> {
        if self
            .missing_controllers(&self.unified.join(parent))
            .is_ok_and(|missing| missing.is_empty())
        {
            return Ok(());
        }
        let mut dir = self.unified.clone();
        self.enable_controllers(&dir)?;
        for component in parent.split('/') {
            dir.push(component);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(CgroupError::CreateDir { path: dir, source }),
            }
            self.enable_controllers(&dir)?;
        }
        Ok(())
    }

    /// Writes the controllers missing from `dir/cgroup.subtree_control` in one write.
    /// Ones already enabled are skipped rather than rewritten; `cpu` is best effort (it is
    /// only needed for quotas, and `create` reports a missing `cpu.max` if one is asked).
    fn enable_controllers(&self, dir: &Path) -> Result<(), CgroupError> {
        let path = dir.join("cgroup.subtree_control");
        let missing = self.missing_controllers(dir)?;
        if missing.is_empty() {
            return Ok(());
        }
        let value = |cs: &[&str]| {
            cs.iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match write(&path, &value(&missing)) {
            Err(_) if missing.contains(&"cpu") => {
                let without_cpu: Vec<&str> = missing.into_iter().filter(|c| *c != "cpu").collect();
                if without_cpu.is_empty() {
                    Ok(())
                } else {
                    write(&path, &value(&without_cpu))
                }
            }
            result => result,
        }
    }

    /// The controllers Brig wants that `dir/cgroup.subtree_control` does not enable.
    fn missing_controllers(&self, dir: &Path) -> Result<Vec<&'static str>, CgroupError> {
        let text = read(&dir.join("cgroup.subtree_control"))?;
        let enabled: Vec<&str> = text
            .split_whitespace()
            .map(|c| c.trim_start_matches('+'))
            .collect();
        Ok(["memory", "pids"]
            .into_iter()
            .chain(self.cpu.then_some("cpu"))
            .filter(|c| !enabled.contains(c))
            .collect())
    }
}

/// One sandbox's v2 group: a single directory.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) dir: PathBuf,
}

impl Group {
    /// Memory (swap off, so the cap is RSS plus nothing), tasks, then CPU bandwidth.
    pub(super) fn write_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        write(
            &self.dir.join("memory.max"),
            &limits.memory_bytes.to_string(),
        )?;
        let swap = self.dir.join("memory.swap.max");
        if swap.exists() {
            write(&swap, "0")?;
        }
        write(&self.dir.join("pids.max"), &limits.pids.to_string())?;
        if let Some(percent) = limits.cpu_quota_percent {
            let quota = u64::from(percent.max(1)) * CPU_PERIOD_US / 100;
            write(
                &self.dir.join("cpu.max"),
                &format!("{quota} {CPU_PERIOD_US}"),
            )?;
        }
        Ok(())
    }

    pub(super) fn clear_cpu_quota(&self) -> Result<(), CgroupError> {
        let max = self.dir.join("cpu.max");
        if max.exists() {
            write(&max, &format!("max {CPU_PERIOD_US}"))
        } else {
            Ok(())
        }
    }

    /// The files of peak memory (`memory.peak`, Linux 5.19+, else the current use) and of
    /// OOM kills (`memory.events`), and what the OOM line needs.
    pub(super) fn memory_files(&self) -> (PathBuf, PathBuf, &'static str) {
        let peak = [
            self.dir.join("memory.peak"),
            self.dir.join("memory.current"),
        ]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| self.dir.join("memory.peak"));
        (peak, self.dir.join("memory.events"), "`oom_kill` line")
    }
}

/// `usage_usec` from `cpu.stat`, in nanoseconds.
pub(super) fn parse_cpu_stat(text: &str, path: &Path) -> Result<u64, CgroupError> {
    Ok(keyed(text, "usage_usec", path, "`usage_usec` line")?.saturating_mul(1000))
}
