//! Which cgroups under Brig's parent were left by a Brig that no longer runs (crashed, killed
//! with SIGKILL, or gone with its container), so the sweep at start can remove them.
//!
//! A run's group is named `run-<pid>-<start time>-<n>` by its owner (`step::cgroup_name`), with
//! `-ns<inode>` after it when the owner is not in the host's PID namespace. The pid and start
//! time name the owner in its own namespace; the group is stale once no such process exists.
//! - A group of our own PID namespace: `/proc/<pid>/stat` answers.
//! - A group of another namespace, seen from the host's: the host's `/proc` lists every process
//!   of every namespace, and `/proc/<host pid>/status`'s `NSpid` gives its pid in its own
//!   namespace, so one pass over `/proc` finds the owners (only when such groups exist). A
//!   namespace whose processes are all gone (a container stopped) has none left there.
//!   An owner in a time namespace of its own is known by its pid alone (see `ForeignOwners`).
//! - Any other case (a container's Brig looking at the host's groups or a sibling container's):
//!   the pid means nothing here, so the group is left alone, since removing a group kills what
//!   it holds.

use std::collections::HashSet;

use crate::cgroup::Cgroups;
use crate::step::{pid_namespace, stat_fields};

/// Removes the stale groups under the parent; returns how many were removed.
pub(crate) fn sweep(cgroups: &Cgroups) -> usize {
    let Ok(names) = cgroups.list() else { return 0 };
    let owners: Vec<(String, Owner)> = names
        .into_iter()
        .filter_map(|name| Owner::parse(&name).map(|owner| (name, owner)))
        .collect();
    let foreign = ForeignOwners::scan_if_needed(owners.iter().map(|(_, o)| o));
    owners
        .iter()
        .filter(|(_, owner)| owner.is_gone(&foreign))
        .filter(|(name, _)| cgroups.remove_stale(name).is_ok())
        .count()
}

/// The process a group's name says created it.
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    /// Its pid in its own PID namespace.
    pid: u32,
    /// Its start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`).
    start: u64,
    /// The inode of its PID namespace; `None` for the host's.
    namespace: Option<u64>,
}

impl Owner {
    /// `run-<pid>-<start>-<n>[-ns<inode>]`; other names are not Brig's runs.
    fn parse(name: &str) -> Option<Owner> {
        let rest = name.strip_prefix("run-")?;
        let (rest, namespace) = match rest.split_once("-ns") {
            Some((rest, inode)) => (rest, Some(inode.parse().ok()?)),
            None => (rest, None),
        };
        let mut parts = rest.split('-');
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        let _index: usize = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Owner {
            pid,
            start,
            namespace,
        })
    }

    /// Whether the owner is known to be gone (never guessed: unknown means alive).
    fn is_gone(&self, foreign: &ForeignOwners) -> bool {
        match (self.namespace, pid_namespace()) {
            (ours, ns) if ours == ns => !alive_here(self.pid, self.start),
            (Some(theirs), None) => !foreign.contains(theirs, self.pid, self.start),
            _ => false,
        }
    }
}

/// Whether a process of our PID namespace has this pid and start time; the pid alone when it
/// is in another time namespace than ours (or either cannot be read), whose start times we do
/// not read as it does (see `ForeignOwners`).
fn alive_here(pid: u32, start: u64) -> bool {
    let pid = pid.to_string();
    let Some(fields) = stat_fields(&pid) else {
        return false;
    };
    let ours = our_time_namespace();
    if ours.is_none() || time_namespace(&pid) != ours {
        return true;
    }
    fields.get(19).and_then(|s| s.parse().ok()) == Some(start)
}

/// Every (namespace inode, pid there, start time) of the processes in the namespaces that
/// foreign groups name, read from the host's `/proc`. The start time is `None` for a process in
/// another time namespace (or one whose time namespace cannot be read): `/proc/<pid>/stat`
/// shows the start time shifted by the *reader's* boot-time offset, so the owner, reading its
/// own, may have named its group with a different number than we read; its pid must do.
#[derive(Debug, Default)]
struct ForeignOwners {
    found: HashSet<(u64, u32, Option<u64>)>,
    /// Some process's namespace could not be read (not ours to inspect: EACCES), so an owner
    /// not found may still be alive.
    incomplete: bool,
}

impl ForeignOwners {
    /// One pass over `/proc` when we are in the host's PID namespace and some group names
    /// another; nothing otherwise.
    fn scan_if_needed<'a>(owners: impl Iterator<Item = &'a Owner>) -> ForeignOwners {
        if pid_namespace().is_some() {
            return ForeignOwners::default();
        }
        let wanted: HashSet<u64> = owners.filter_map(|o| o.namespace).collect();
        if wanted.is_empty() {
            return ForeignOwners::default();
        }
        ForeignOwners::scan(&wanted)
    }

    fn scan(wanted: &HashSet<u64>) -> ForeignOwners {
        let mut owners = ForeignOwners::default();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            owners.incomplete = true;
            return owners;
        };
        let our_time_namespace = our_time_namespace();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            // Processes of the host's namespace (one `NSpid`) are nobody's foreign owner; the
            // others' namespace is read from their `ns/pid` (ptrace read access: refused for
            // some, such as a VM's agent holding capabilities we lack).
            let Some((inner, start)) = namespaced_identity(pid) else {
                continue;
            };
            let ns = match rustix::fs::stat(format!("/proc/{pid}/ns/pid").as_str()) {
                Ok(ns) => ns.st_ino,
                // Exited meanwhile.
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::SRCH) => continue,
                Err(_) => {
                    owners.incomplete = true;
                    continue;
                }
            };
            if wanted.contains(&ns) {
                let same_clock =
                    our_time_namespace.is_some() && time_namespace(pid) == our_time_namespace;
                let start = same_clock.then_some(start);
                owners.found.insert((ns, inner, start));
            }
        }
        owners
    }

    /// Whether that owner may be alive: found, or not all of `/proc` could be read.
    fn contains(&self, namespace: u64, pid: u32, start: u64) -> bool {
        self.incomplete
            || self.found.contains(&(namespace, pid, Some(start)))
            || self.found.contains(&(namespace, pid, None))
    }
}

/// The inode of our time namespace, read once.
fn our_time_namespace() -> Option<u64> {
    static OURS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *OURS.get_or_init(|| time_namespace("self"))
}

/// The inode of a process's time namespace, if it can be read.
fn time_namespace(pid: &str) -> Option<u64> {
    rustix::fs::stat(format!("/proc/{pid}/ns/time").as_str())
        .ok()
        .map(|st| st.st_ino)
}

/// A host process's pid in its innermost PID namespace (the last `NSpid` field of its
/// `status`) and its start time; `None` for a process of the host's namespace (one field) or
/// one that has exited.
fn namespaced_identity(host_pid: &str) -> Option<(u32, u64)> {
    let status = crate::run::read_proc_file(&format!("/proc/{host_pid}/status")).ok()?;
    let pids: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .collect();
    if pids.len() < 2 {
        return None;
    }
    let inner = pids.last()?.parse().ok()?;
    let start = stat_fields(host_pid)?.get(19)?.parse().ok()?;
    Some((inner, start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::{cgroup_name, process_start_time};

    fn gone(name: &str) -> bool {
        let owner = Owner::parse(name).expect(name);
        let foreign = ForeignOwners::scan_if_needed(std::iter::once(&owner));
        owner.is_gone(&foreign)
    }

    #[test]
    fn names_parse_into_their_owner_and_other_names_do_not() {
        assert_eq!(
            Owner::parse("run-12-345-0-ns4026532000"),
            Some(Owner {
                pid: 12,
                start: 345,
                namespace: Some(4026532000)
            })
        );
        assert_eq!(
            Owner::parse("run-12-345-3"),
            Some(Owner {
                pid: 12,
                start: 345,
                namespace: None
            })
        );
        for odd in [
            "something-else",
            "run-",
            "run-12",
            "run-12-345",
            "run-x-345-0",
            "run-12-345-0-7",
            "run-12-345-0-nsx",
            "zygote-12-345-0",
        ] {
            assert_eq!(Owner::parse(odd), None, "{odd}");
        }
    }

    #[test]
    fn our_own_cgroup_name_is_not_stale_and_a_dead_owner_is() {
        // The tests run in the host's PID namespace (CI and this VM).
        assert_eq!(pid_namespace(), None);
        assert!(!gone(&cgroup_name(0)));
        assert!(gone("run-999999999-1-0"));
        assert!(gone(&format!("run-{}-1-0", std::process::id())));
        assert!(!gone(&format!(
            "run-{}-{}-7",
            std::process::id(),
            process_start_time()
        )));
    }

    /// `sleep 60` as pid 1 of a PID namespace of its own (`unshare --pid --fork` and
    /// `extra` options), standing in for a container's Brig.
    struct ContainerOwner {
        unshare: std::process::Child,
        host_pid: u32,
        namespace: u64,
        host_start: u64,
    }

    impl ContainerOwner {
        fn start(extra: &[&str]) -> ContainerOwner {
            let unshare = std::process::Command::new("unshare")
                .args(["--pid", "--fork", "--kill-child"])
                .args(extra)
                .args(["sleep", "60"])
                .spawn()
                .expect("unshare");
            let host_pid = wait_for_child_named(unshare.id(), "sleep");
            let namespace = rustix::fs::stat(format!("/proc/{host_pid}/ns/pid").as_str())
                .expect("its namespace")
                .st_ino;
            let host_start = stat_fields(&host_pid.to_string()).unwrap()[19]
                .parse()
                .unwrap();
            ContainerOwner {
                unshare,
                host_pid,
                namespace,
                host_start,
            }
        }

        /// `--kill-child` takes the namespace's init down with unshare; it is gone once its
        /// host pid no longer names a process (reaped by the namespace's end).
        fn end(mut self) {
            self.unshare.kill().unwrap();
            self.unshare.wait().unwrap();
            for _ in 0..500 {
                if stat_fields(&self.host_pid.to_string()).is_none() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// A process in a PID namespace of its own, as a container's Brig would be: its groups
    /// stay while it lives, and go once it and its namespace are gone.
    #[test]
    fn a_cgroup_of_another_pid_namespace_is_stale_only_once_its_owner_is_gone() {
        let owner = ContainerOwner::start(&[]);
        let (start, ns) = (owner.host_start, owner.namespace);
        let live = format!("run-1-{start}-0-ns{ns}");
        assert!(!gone(&live), "{live}: its owner runs");
        // The same pid with another start time, or another pid, in that namespace: gone.
        assert!(gone(&format!("run-1-{}-0-ns{ns}", start + 1)));
        assert!(gone(&format!("run-2-{start}-0-ns{ns}")));
        owner.end();
        assert!(gone(&live), "{live}: its namespace is gone");
    }

    /// A container Brig in a time namespace of its own reads its start time shifted by its
    /// boot-time offset and names its groups so: the owner is alive all the same.
    #[test]
    fn an_owner_in_another_time_namespace_is_known_by_its_pid() {
        let owner = ContainerOwner::start(&["--time", "--boottime", "1000"]);
        // What the owner reads of itself: 1000 s later, in clock ticks.
        let its_start = owner.host_start + 1000 * rustix::param::clock_ticks_per_second();
        let ns = owner.namespace;
        let live = format!("run-1-{its_start}-0-ns{ns}");
        assert!(!gone(&live), "{live}: its owner runs");
        assert!(gone(&format!("run-2-{its_start}-0-ns{ns}")));
        owner.end();
        assert!(gone(&live), "{live}: its namespace is gone");
    }

    /// The same for a Brig of our own PID namespace in a time namespace of its own.
    #[test]
    fn an_owner_of_our_pid_namespace_in_another_time_namespace_is_known_by_its_pid() {
        let mut owner = std::process::Command::new("unshare")
            .args(["--time", "--boottime", "1000", "sleep", "60"])
            .spawn()
            .expect("unshare");
        // unshare execs sleep in the new time namespace (no fork): wait for the exec.
        for _ in 0..500 {
            let comm = std::fs::read_to_string(format!("/proc/{}/comm", owner.id()));
            if comm.is_ok_and(|c| c == "sleep\n") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let pid = owner.id();
        let host_start: u64 = stat_fields(&pid.to_string()).unwrap()[19].parse().unwrap();
        let its_start = host_start + 1000 * rustix::param::clock_ticks_per_second();
        let live = format!("run-{pid}-{its_start}-0");
        assert!(!gone(&live), "{live}: its owner runs");
        owner.kill().unwrap();
        owner.wait().unwrap();
        assert!(gone(&live), "{live}: its owner is gone");
    }

    /// The host pid of `parent`'s child whose command is `comm`.
    fn wait_for_child_named(parent: u32, comm: &str) -> u32 {
        for _ in 0..500 {
            let children =
                std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
                    .unwrap_or_default();
            for child in children.split_whitespace() {
                let name =
                    std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                if name.trim() == comm {
                    return child.parse().unwrap();
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no child {comm} of {parent}");
    }
}
