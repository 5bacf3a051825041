//! What this host supports — each namespace, the user-namespace id mapping, cgroups, seccomp,
//! Landlock's ABI, KVM — for `brig doctor` and for `--tier auto`.
//!
//! A namespace is probed by actually creating it: `clone3` into a new user namespace plus the
//! one under test, with a child that only calls `_exit` (async-signal-safe, so probing is sound
//! from any thread).

use serde::Serialize;
use std::collections::BTreeMap;

use crate::JailConfig;
use crate::cgroup::{CgroupLimits, Cgroups};
use crate::seccomp::{self, SeccompPolicy};
use crate::sys::{self, Forked};

/// One feature's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Feature {
    /// Whether it works here.
    pub ok: bool,
    /// What was found, or why not.
    pub detail: String,
}

/// A tier's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct TierStatus {
    /// Whether the tier can run programs here.
    pub usable: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// The doctor's report (the JSON of `brig doctor --json`).
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// `uname -r`.
    pub kernel: String,
    /// Per feature.
    pub features: BTreeMap<String, Feature>,
    /// Per tier.
    pub tiers: BTreeMap<String, TierStatus>,
}

fn feature(ok: bool, detail: impl Into<String>) -> Feature {
    Feature {
        ok,
        detail: detail.into(),
    }
}

/// Creates a throwaway child in new namespaces (`flags`), returns whether that worked.
fn try_namespaces(flags: u64) -> Result<(), String> {
    match sys::clone_into_namespaces(flags, None) {
        Ok(Forked::Child) => sys::exit_now(0),
        Ok(Forked::Parent { pid, .. }) => {
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            );
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

const NAMESPACES: &[(&str, i32)] = &[
    ("user", 0),
    ("pid", libc::CLONE_NEWPID),
    ("mount", libc::CLONE_NEWNS),
    ("network", libc::CLONE_NEWNET),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("cgroup", libc::CLONE_NEWCGROUP),
];

/// Probes everything.
pub fn host_report(config: &JailConfig) -> HostReport {
    let mut features = BTreeMap::new();
    let mut namespace_problems = Vec::new();
    for (name, flag) in NAMESPACES {
        let flags = (libc::CLONE_NEWUSER | flag) as u64;
        let result = try_namespaces(flags);
        if let Err(e) = &result {
            namespace_problems.push(format!("{name} namespace: {e}"));
        }
        features.insert(
            format!("namespace.{name}"),
            match result {
                Ok(()) => feature(true, "created"),
                Err(e) => feature(false, e),
            },
        );
    }
    features.insert(
        "clone3".into(),
        if sys::clone3_available() {
            feature(true, "available")
        } else {
            feature(
                true,
                "refused with ENOSYS (an old kernel, or a seccomp profile such as Docker's): \
                 sandboxes start with clone(2); on cgroup v2 the helper moves each into its cgroup",
            )
        },
    );
    let proc_check = crate::run::check_proc();
    if let Err(e) = &proc_check {
        namespace_problems.push(e.to_string());
    }
    features.insert(
        "proc".into(),
        match proc_check {
            Ok(()) => feature(
                true,
                "this PID namespace's (sandboxes' id maps go through it)",
            ),
            Err(e) => feature(false, e.to_string()),
        },
    );
    let root = rustix::process::geteuid().is_root();
    let range = config.uid_range();
    features.insert(
        "user_namespace.id_mapping".into(),
        feature(
            true,
            if root {
                format!(
                    "root: each sandbox gets its own host id from {}..{}",
                    range.start,
                    range.start as u64 + range.count as u64
                )
            } else {
                "unprivileged: the sandbox runs as the caller's own id".to_string()
            },
        ),
    );
    let cgroups = cgroup_feature(config);
    let cgroups_ok = cgroups.ok;
    features.insert("cgroups".into(), cgroups);
    let seccomp_ok = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.contains("Seccomp:"))
        .unwrap_or(false);
    let filter = seccomp::compile(&SeccompPolicy {
        allow_network: false,
        ..Default::default()
    });
    features.insert(
        "seccomp".into(),
        match (&filter, seccomp_ok) {
            (Ok(program), true) => feature(
                true,
                format!(
                    "seccomp-bpf filter mode; allowlist of {} instructions",
                    program.len()
                ),
            ),
            (Err(e), _) => feature(false, format!("filter does not compile: {e}")),
            (_, false) => feature(false, "kernel without seccomp"),
        },
    );
    let abi = sys::landlock_abi();
    features.insert(
        "landlock".into(),
        if abi > 0 {
            feature(true, format!("ABI {abi}"))
        } else {
            feature(
                false,
                "not enabled in this kernel (boot with lsm=...,landlock)",
            )
        },
    );
    features.insert(
        "kvm".into(),
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
        {
            Ok(_) => feature(
                true,
                "/dev/kvm opens (Brig has no VM tier; reported for operators)",
            ),
            Err(e) => feature(false, format!("/dev/kvm: {e}")),
        },
    );

    let mut tiers = BTreeMap::new();
    let mut reasons = namespace_problems;
    if !cgroups_ok && config.require_cgroups {
        reasons.push("cgroups are required for memory, pids and CPU limits".into());
    }
    if !seccomp_ok {
        reasons.push("seccomp is missing".into());
    }
    tiers.insert(
        "namespace".into(),
        TierStatus {
            usable: reasons.is_empty(),
            reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        },
    );
    tiers.insert(
        "process".into(),
        TierStatus {
            usable: true,
            reason: None,
        },
    );
    HostReport {
        kernel: rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned(),
        features,
        tiers,
    }
}

fn cgroup_feature(config: &JailConfig) -> Feature {
    let cgroups = match Cgroups::detect(&config.cgroup_config()) {
        Ok(c) => c,
        Err(e) => return feature(false, e.to_string()),
    };
    let name = format!("probe-{}", std::process::id());
    match cgroups.create(
        &name,
        &CgroupLimits {
            memory_bytes: 64 << 20,
            pids: 8,
            cpu_quota_percent: None,
        },
    ) {
        Ok(cgroup) => {
            let _ = cgroup.remove();
            feature(true, format!("{}; writable", cgroups.describe()))
        }
        Err(e) => feature(false, format!("{}; not writable: {e}", cgroups.describe())),
    }
}

/// Whether the namespace tier can run here, or why not (the cheap part of the doctor: the
/// namespaces and cgroups, for `--tier auto`).
pub fn namespace_tier_usable(config: &JailConfig) -> Result<(), String> {
    let all = NAMESPACES
        .iter()
        .fold(libc::CLONE_NEWUSER, |acc, (_, f)| acc | f) as u64;
    try_namespaces(all).map_err(|e| format!("cannot create namespaces: {e}"))?;
    crate::run::check_proc().map_err(|e| e.to_string())?;
    if config.require_cgroups {
        Cgroups::detect(&config.cgroup_config()).map_err(|e| format!("cgroups: {e}"))?;
    }
    Ok(())
}
