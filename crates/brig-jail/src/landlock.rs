//! Landlock: an unprivileged, stackable allowlist of what the sandbox may do with files, on top
//! of the mount layout. Even if a mount were writable by mistake, the program may write only to
//! `/work`, `/tmp` and `/dev/shm`, and read or execute only the system paths.
//!
//! Enforced by the sandbox's init after its mounts (rules name paths of the new root) and after
//! `no_new_privs`, so it covers the program and everything it starts; the rules on the
//! template's paths are added by the helper meanwhile ([`SharedRuleset`]). Best-effort across kernel
//! ABIs: the crate negotiates with the running kernel, and `brig doctor` reports the ABI. From
//! ABI 6 the domain is also scoped: no signals to, and no abstract-socket connections with,
//! processes outside it. With networking off, ABI 4's TCP bind/connect rights are handled with
//! no rule granting them (seccomp already refuses AF_INET sockets; this is the second layer).
//!
//! Docs: landlock(7), <https://docs.kernel.org/userspace-api/landlock.html>.

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetError, RulesetStatus, Scope,
};
use rustix::fd::BorrowedFd;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::path::{Path, PathBuf};

use crate::mounts::MountOp;

/// The newest ABI Brig knows how to use; older kernels get the subset they support.
const TARGET_ABI: ABI = ABI::V6;

/// Read-write (and executable) paths inside the sandbox.
const WRITABLE: &[&str] = &["/work", "/tmp", "/dev/shm"];
/// Read and execute only, besides the root's read-only binds (`read_exec_roots`): `/etc`, which
/// holds copies and generated files.
const READ_EXEC: &[&str] = &["/etc"];
/// Read only (no execute): `/proc` for the runtimes that inspect themselves.
const READ_ONLY: &[&str] = &["/proc"];
/// Device nodes: read and write, no execute.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Errors from building or enforcing the ruleset.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// The landlock crate refused the ruleset.
    #[error("landlock: {0}")]
    Ruleset(#[from] RulesetError),
    /// A path of the template could not be opened for its rule.
    #[error("landlock: open {path:?} in the template: {source}")]
    Open {
        /// The path, inside the sandbox.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What was enforced, for the run's diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Every requested right is enforced.
    Full,
    /// The kernel supports only part of the requested rights.
    Partial,
    /// The kernel has no Landlock.
    None,
}

/// The paths granted read and execute in a root built by `template` (`mounts::plan`): its
/// read-only binds (the system directories, `/etc`'s, the spec's extra mounts) and `/etc`, with
/// none beneath another. Each rule costs an `open`, an `fstat`, a `landlock_add_rule` and a
/// `close` (~5 µs here; the helper adds these, see [`SharedRuleset`]), and these add nothing:
/// - a path the layout makes a symlink (`/bin` → `usr/bin` on a merged-/usr host) or does not
///   have (`/libx32`): Landlock judges the path a symlink resolves to, which `/usr` covers;
/// - a path beneath another of these (`/etc/python3.11`, `/usr/lib/jvm`): Landlock grants what
///   a rule on any directory above a path grants, and walks up through bind mounts (it skips
///   only the directory a mount hides, not the ones above it).
pub fn read_exec_roots(template: &[MountOp]) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = template
        .iter()
        .filter_map(|op| match op {
            MountOp::BindReadOnly { path, .. } => Some(Path::new("/").join(path)),
            _ => None,
        })
        .chain(READ_EXEC.iter().map(PathBuf::from))
        .collect();
    // Shallower first, so that a path's ancestors are kept before it is looked at.
    paths.sort_by_key(|p| p.components().count());
    let mut roots: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !roots.iter().any(|root| path.starts_with(root)) {
            roots.push(path);
        }
    }
    roots
}

/// The sandbox's ruleset, built by two processes. The helper creates it before `clone3`, so the
/// init is born with a copy of its fd (one ruleset in the kernel, two fds). While the init makes
/// its own mounts, the helper adds the rules on the template's paths (`/usr`, `/etc`, the
/// devices, `/`): a rule holds an inode, and every copy of the template mount namespace shares
/// the template's inodes. The init then adds the rules on the mounts it made for its run (the
/// fresh tmpfs `/work`, `/tmp`, `/dev/shm` and its `/proc`, which exist in no other process)
/// and enforces the ruleset. Each rule costs an `open`, an `fstat`, a `landlock_add_rule` and a
/// `close`; the helper's (eight of Python's twelve) are off the init's path, the sandbox's
/// critical path.
///
/// The helper finishes before it releases the init (`go`), and the init enforces the ruleset
/// only after that, so the kernel's ruleset is whole when it is enforced. The crate's record of
/// what the kernel supported is per copy: the init's `Enforcement` reflects its own rules.
pub struct SharedRuleset {
    created: RulesetCreated,
}

/// Whether a rule's path is a mount the init makes for its run (see [`SharedRuleset`]).
fn is_the_runs_own(path: &Path) -> bool {
    WRITABLE
        .iter()
        .chain(READ_ONLY)
        .any(|own| path == Path::new(own))
}

impl SharedRuleset {
    /// In the helper, before `clone3`: the ruleset, with no rule yet. `network` leaves TCP
    /// unhandled.
    pub fn create(network: bool) -> Result<SharedRuleset, LandlockError> {
        let abi = TARGET_ABI;
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(abi))?
            .scope(Scope::from_all(abi))?;
        if !network {
            ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
        }
        Ok(SharedRuleset {
            created: ruleset.create()?,
        })
    }

    /// In the helper, after `clone3`: the rules on the template's paths, looked up beneath
    /// `root` (the template's root) as if it were `/`. A path the template does not have gets
    /// no rule.
    pub fn add_template_rules(
        &mut self,
        root: BorrowedFd<'_>,
        read_exec: &[PathBuf],
    ) -> Result<(), LandlockError> {
        for (path, access) in rules(read_exec, TARGET_ABI) {
            if is_the_runs_own(&path) {
                continue;
            }
            let beneath = path.strip_prefix("/").unwrap_or(&path);
            let beneath = if beneath.as_os_str().is_empty() {
                Path::new(".")
            } else {
                beneath
            };
            let fd = match rustix::fs::openat2(
                root,
                beneath,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT,
            ) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => {
                    return Err(LandlockError::Open {
                        path,
                        source: e.into(),
                    });
                }
            };
            (&mut self.created).add_rule(PathBeneath::new(fd, access))?;
        }
        Ok(())
    }

    /// In the sandbox's init, once its own mounts are made and the helper has released it:
    /// the rules on those mounts, then the whole ruleset enforced on the calling process (and
    /// its future children).
    pub fn restrict_self(mut self, read_exec: &[PathBuf]) -> Result<Enforcement, LandlockError> {
        for (path, access) in rules(read_exec, TARGET_ABI) {
            if !is_the_runs_own(&path) {
                continue;
            }
            // A path this host does not have simply gets no rule.
            let Ok(fd) = PathFd::new(&path) else { continue };
            (&mut self.created).add_rule(PathBeneath::new(fd, access))?;
        }
        let status = self.created.restrict_self()?;
        Ok(match status.ruleset {
            RulesetStatus::FullyEnforced => Enforcement::Full,
            RulesetStatus::PartiallyEnforced => Enforcement::Partial,
            RulesetStatus::NotEnforced => Enforcement::None,
        })
    }
}

/// Every rule: a sandbox path and the access granted beneath it.
fn rules(read_exec_roots: &[PathBuf], abi: ABI) -> Vec<(PathBuf, BitFlags<AccessFs>)> {
    let read_exec = AccessFs::from_read(abi);
    let read_only = AccessFs::from_read(abi) & !AccessFs::Execute;
    let device = AccessFs::from_file(abi) & !AccessFs::Execute;
    let mut rules: Vec<(PathBuf, BitFlags<AccessFs>)> = Vec::new();
    rules.extend(WRITABLE.iter().map(|p| (p.into(), AccessFs::from_all(abi))));
    rules.extend(read_exec_roots.iter().map(|p| (p.clone(), read_exec)));
    rules.extend(READ_ONLY.iter().map(|p| (p.into(), read_only)));
    rules.extend(DEVICES.iter().map(|p| (p.into(), device)));
    // Listing `/` and `/dev` is harmless and some tools do it.
    rules.push(("/".into(), AccessFs::ReadDir.into()));
    rules
}

/// The same ruleset as numbers, for a process that enforces it with the raw syscalls: the
/// Python zygote's runs, which must build their own mounts first (an enforced ruleset forbids
/// mounting) and whose fresh tmpfs `/work` and `/tmp` need rules of their own (a rule on the
/// directory a mount hides does not reach the mount). Only what the running kernel's ABI
/// (`abi`, as `landlock_create_ruleset` reports it) supports; `None` without Landlock.
pub fn plan_for_abi(read_exec: &[PathBuf], network: bool, abi: i32) -> Option<Plan> {
    if abi < 1 {
        return None;
    }
    let abi = ABI::from(abi.min(TARGET_ABI as i32));
    Some(Plan {
        handled_fs: AccessFs::from_all(abi).bits(),
        handled_net: if network {
            0
        } else {
            AccessNet::from_all(abi).bits()
        },
        scoped: Scope::from_all(abi).bits(),
        file_access: AccessFs::from_file(abi).bits(),
        rules: rules(read_exec, abi)
            .into_iter()
            .map(|(path, access)| (path, access.bits()))
            .collect(),
    })
}

/// A Landlock ruleset as plain numbers (see [`plan_for_abi`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// `handled_access_fs` of `struct landlock_ruleset_attr`.
    pub handled_fs: u64,
    /// `handled_access_net`.
    pub handled_net: u64,
    /// `scoped`.
    pub scoped: u64,
    /// The rights that apply to a file (not a directory): a rule on a file (a read-only mount
    /// of one file) keeps only these, or the kernel refuses it.
    pub file_access: u64,
    /// `(path, allowed_access)` of each `LANDLOCK_RULE_PATH_BENEATH` rule.
    pub rules: Vec<(PathBuf, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(path: &str) -> MountOp {
        MountOp::BindReadOnly {
            host: Path::new("/").join(path),
            path: path.into(),
        }
    }

    #[test]
    fn read_exec_roots_skip_symlinks_and_paths_beneath_another() {
        let template = vec![
            bind("usr"),
            MountOp::Symlink {
                path: "bin".into(),
                target: "usr/bin".into(),
            },
            MountOp::Dir {
                path: "etc".into(),
                mode: 0o755,
                owner: None,
            },
            bind("etc/ssl"),
            bind("etc/python3.11"),
            bind("usr/lib/jvm"),
            bind("opt/toolchain"),
            bind("opt/toolchain/lib"),
            MountOp::Dir {
                path: "tmp".into(),
                mode: 0o1777,
                owner: None,
            },
        ];
        assert_eq!(
            read_exec_roots(&template),
            ["/usr", "/etc", "/opt/toolchain"].map(PathBuf::from)
        );
    }

    #[test]
    fn a_sibling_with_a_common_prefix_is_not_beneath() {
        // `/usr2` starts with the characters of `/usr` but is not in it.
        let roots = read_exec_roots(&[bind("usr"), bind("usr2")]);
        assert_eq!(roots, ["/usr", "/usr2", "/etc"].map(PathBuf::from));
    }

    #[test]
    fn every_rule_of_a_plain_layout() {
        let roots = read_exec_roots(&[bind("usr"), bind("etc/ssl")]);
        let paths: Vec<PathBuf> = rules(&roots, TARGET_ABI)
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(
            paths,
            [
                "/work",
                "/tmp",
                "/dev/shm",
                "/usr",
                "/etc",
                "/proc",
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/"
            ]
            .map(PathBuf::from)
        );
    }
}
