//! brig-jail: the Linux sandbox behind Brig's `namespace` tier.
//!
//! A [`SandboxSpec`] (plain data) becomes a running sandbox in one single-threaded process, the
//! *helper*: `brig run` is that process itself, and multi-threaded callers spawn one with
//! [`run_via_helper`]. One module per isolation layer, each with the part prepared before the
//! fork and the part applied in the child:
//!
//! | layer | module |
//! |---|---|
//! | user, PID, mount, network, IPC, UTS, cgroup namespaces | `run`, `child`, `netns`, `sys` |
//! | host ids, distinct per sandbox | `identity` |
//! | new root on tmpfs, read-only binds, `pivot_root` | `mounts` |
//! | capabilities, securebits, `no_new_privs` | `caps` |
//! | Landlock | `landlock` |
//! | seccomp-bpf (installed last) | `seccomp` |
//! | rlimits | `rlimits` |
//! | stdio, session, cwd, fds kept, then `execve` (every program started) | `exec` |
//! | cgroups v1 / v2 | `cgroup` |
//! | deadline, CPU budget, output limit | `supervise` |
//! | the end of a sandbox once its result is out (in place, or by a reaper) | `teardown` |
//! | what the host supports (`brig doctor`) | `probe` |

pub mod agent;
pub mod caps;
pub mod cgroup;
pub mod child;
mod exec;
pub mod frame;
pub mod helper;
pub mod identity;
pub mod landlock;
pub mod mounts;
pub mod netns;
pub mod probe;
pub mod process_tier;
pub mod report;
pub mod rlimits;
pub mod run;
pub mod seccomp;
mod session_host;
pub mod spec;
mod spread;
mod stale;
mod step;
pub mod supervise;
mod sys;
pub mod teardown;
mod template;
pub mod zygote;

pub use helper::{HELPER_ARG, Stdin, helper_main, run_via_helper};
pub use identity::UidRange;
pub use report::{Discard, OutputSink, Report, StepReport, Stream};
pub use run::{JailError, run_here};
pub use spec::{SandboxSpec, SpecFile, Step};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Host-side settings of the sandbox (not per run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JailConfig {
    /// Brig's runtime directory: uid locks, the network namespace pool, the kept template
    /// mount namespaces (`templates/`) and the mount point where templates are built.
    pub runtime_dir: PathBuf,
    /// Root of the cgroup filesystem.
    pub cgroup_root: PathBuf,
    /// Brig's cgroup, relative to the hierarchy root; sandboxes are created under it.
    pub cgroup_parent: String,
    /// Refuse to run without cgroups (memory, pids and CPU limits need them).
    pub require_cgroups: bool,
    /// First host uid of the sandbox id range (root only).
    pub uid_start: u32,
    /// Number of host ids in the range.
    pub uid_count: u32,
    /// The binary to re-exec as the helper (default: the running executable).
    pub helper: PathBuf,
    /// How many empty network namespaces to keep for reuse (root only; 0: a fresh one per run).
    pub netns_pool: u32,
    /// How many empty cgroups to keep made ahead for one-shot runs (`cgroup/spare.rs`): a run
    /// takes one instead of making its own, which saves its `mkdir`s (0: none kept).
    pub spare_cgroups: u32,
    /// Sweep stale cgroups while the first step runs (for `brig run`, where every run is a
    /// start of Brig); off the critical path, since the program is already running.
    pub sweep_while_running: bool,
    /// Return a run's result as soon as it is known, leaving the end of its sandboxes (the
    /// kernel's teardown, the cgroup's removal, the claims' release) to
    /// `teardown::finish_in_background` or `teardown::finish_now`, which the caller must call.
    pub defer_teardown: bool,
    /// With `defer_teardown`, start each sandbox's reaper while it runs instead of at the end
    /// (`teardown::reap_early`), for a caller that ends with `teardown::finish_in_background`
    /// and exits (`brig run`). Not as PID 1, whose exit would kill it.
    pub early_reaper: bool,
}

impl Default for JailConfig {
    fn default() -> Self {
        let range = UidRange::default();
        let root = rustix::process::geteuid().is_root();
        JailConfig {
            runtime_dir: if root {
                "/run/brig".into()
            } else {
                std::env::temp_dir().join(format!("brig-{}", rustix::process::getuid().as_raw()))
            },
            cgroup_root: "/sys/fs/cgroup".into(),
            cgroup_parent: "brig".into(),
            require_cgroups: root,
            uid_start: range.start,
            uid_count: range.count,
            helper: std::env::current_exe().unwrap_or_else(|_| "brig".into()),
            netns_pool: 64,
            spare_cgroups: 4,
            sweep_while_running: false,
            defer_teardown: false,
            early_reaper: false,
        }
    }
}

impl JailConfig {
    /// The cgroup settings.
    pub fn cgroup_config(&self) -> cgroup::CgroupConfig {
        cgroup::CgroupConfig {
            root: self.cgroup_root.clone(),
            parent: self.cgroup_parent.clone(),
        }
    }

    /// The uid range.
    pub fn uid_range(&self) -> UidRange {
        UidRange {
            start: self.uid_start,
            count: self.uid_count,
        }
    }
}
