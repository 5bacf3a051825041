//! Privileged tests against this host's real cgroup hierarchy (v1 or v2).
//!
//! Each test works under its own parent, `brig-test-<pid>/<test>`, removed again at the
//! end. When the hierarchy is missing or not writable they print `SKIP: <reason>` and
//! return, unless `CI` or `BRIG_TEST_STRICT` is set, in which case they fail.

use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::cgroupfs::read_procs;
use super::*;

/// The test's parent on the real hierarchy; on drop, removes whatever is left in it.
struct HostParent {
    cgroups: Cgroups,
}

impl Drop for HostParent {
    fn drop(&mut self) {
        for name in self.cgroups.list().unwrap_or_default() {
            self.cgroups.remove_stale(&name).ok();
        }
        for dir in self.cgroups.parent_dirs() {
            fs::remove_dir(&dir).ok();
            // `brig-test-<pid>`: only the last test to finish manages to remove it.
            dir.parent().map(fs::remove_dir);
        }
    }
}

fn skip<T>(reason: &str) -> Option<T> {
    let strict = ["CI", "BRIG_TEST_STRICT"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    assert!(
        !strict,
        "cannot skip with CI or BRIG_TEST_STRICT set: {reason}"
    );
    eprintln!("SKIP: {reason}");
    None
}

/// Detects the real hierarchy and checks that a group can be made in it.
fn host(test: &str) -> Option<HostParent> {
    let config = CgroupConfig {
        parent: format!("brig-test-{}/{test}", std::process::id()),
        ..CgroupConfig::default()
    };
    let cgroups = match Cgroups::detect(&config) {
        Ok(cgroups) => cgroups,
        Err(e) => return skip(&format!("no usable cgroups: {e}")),
    };
    let parent = HostParent { cgroups };
    let limits = CgroupLimits {
        memory_bytes: 1 << 30,
        pids: 8,
        cpu_quota_percent: None,
    };
    let denied = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
        )
    };
    match parent.cgroups.create("probe", &limits) {
        Ok(probe) => probe.remove().unwrap(),
        Err(
            ref e @ (CgroupError::CreateDir { ref source, .. }
            | CgroupError::Write { ref source, .. }),
        ) if denied(source) => return skip(&format!("cgroup hierarchy not writable: {e}")),
        Err(e) => panic!("creating a probe group: {e}"),
    }
    Some(parent)
}

fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("pid {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `sh -c 'read x; <script>'` with `env` added: the script starts once a line is written
/// to its stdin, so it can be attached before it allocates or forks.
fn gated(script: &str, env: &[(&str, &str)]) -> Child {
    Command::new("sh")
        .args(["-c", &format!("read x; {script}")])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// The interpreter behind `python3`, resolved outside the group: version-manager shims
/// (pyenv here) fork helpers that would count against the limits under test.
fn python() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        other => skip(&format!("python3 not runnable: {other:?}")),
    }
}

fn release(child: &mut Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
}

fn procs(cg: &Cgroup) -> Vec<i32> {
    read_procs(
        &cg.group
            .dirs()
            .iter()
            .map(|d| d.join("cgroup.procs"))
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

/// A one-run group without a quota has no directory of its own in a `cpu`-only hierarchy,
/// still counts CPU time (in `cpuacct`), takes a process and goes away; with a quota it is
/// in every hierarchy.
#[test]
fn host_a_group_for_its_limits_counts_cpu_without_the_cpu_hierarchy() {
    let Some(host) = host("lean") else { return };
    let lean = CgroupLimits {
        memory_bytes: 64 << 20,
        pids: 16,
        cpu_quota_percent: None,
    };
    let cg = host.cgroups.create_for_limits("lean", &lean).unwrap();
    let all = host.cgroups.group("lean").dirs();
    let made: Vec<_> = all.iter().filter(|d| d.is_dir()).cloned().collect();
    assert_eq!(made, cg.group.dirs());
    if let Hierarchy::V1(h) = &host.cgroups.hierarchy
        && let Some(cpu_only) = h.cpu_only_mount()
    {
        assert_eq!(made.len(), all.len() - 1, "{made:?}");
        assert!(made.iter().all(|d| !d.starts_with(cpu_only)), "{made:?}");
    } else {
        assert_eq!(made, all);
    }
    let mut child = gated("i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done", &[]);
    cg.attach(child.id() as i32).unwrap();
    release(&mut child);
    assert!(wait(&mut child, Duration::from_secs(20)).success());
    assert!(cg.cpu_usage_ns().unwrap() > 0);
    cg.remove().unwrap();
    assert!(all.iter().all(|d| !d.exists()));

    let with_quota = CgroupLimits {
        cpu_quota_percent: Some(50),
        ..lean
    };
    let cg = host
        .cgroups
        .create_for_limits("quota", &with_quota)
        .unwrap();
    assert!(
        host.cgroups
            .group("quota")
            .dirs()
            .iter()
            .all(|d| d.is_dir())
    );
    cg.remove().unwrap();
}

#[test]
fn host_create_attach_stats_kill_remove() {
    let Some(host) = host("cycle") else { return };
    let limits = CgroupLimits {
        memory_bytes: 64 << 20,
        pids: 16,
        cpu_quota_percent: Some(50),
    };
    let cg = host.cgroups.create("sb", &limits).unwrap();
    assert_eq!(cg.name(), "sb");
    assert_eq!(host.cgroups.list().unwrap(), ["sb"]);
    let expected: &[(&str, &str)] = match cg.group {
        Group::V1(_) => &[
            ("memory.limit_in_bytes", "67108864"),
            ("pids.max", "16"),
            ("cpu.cfs_quota_us", "50000"),
        ],
        Group::V2(_) => &[
            ("memory.max", "67108864"),
            ("pids.max", "16"),
            ("cpu.max", "50000 100000"),
        ],
    };
    for (file, value) in expected {
        let found = cg
            .group
            .dirs()
            .iter()
            .find_map(|d| fs::read_to_string(d.join(file)).ok());
        assert_eq!(found.as_deref().map(str::trim), Some(*value), "{file}");
    }

    // A fresh exec: its pages are charged here, not to the cgroup `sh` was forked in.
    let mut child = gated("exec sh -c 'while :; do :; done'", &[]);
    cg.attach(child.id() as i32).unwrap();
    assert_eq!(procs(&cg), [child.id() as i32]);
    release(&mut child);
    let start = Instant::now();
    while cg.cpu_usage_ns().unwrap() < 20_000_000 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no CPU time accounted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = cg.stats().unwrap();
    assert!(stats.cpu_usage_ns >= 20_000_000, "{stats:?}");
    assert!(stats.memory_peak_bytes > 0, "{stats:?}");
    assert_eq!(stats.oom_kills, 0, "{stats:?}");

    cg.kill_all().unwrap();
    assert_eq!(
        wait(&mut child, Duration::from_secs(10)).signal(),
        Some(libc::SIGKILL)
    );
    let dirs = cg.group.dirs();
    cg.remove().unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    assert_eq!(host.cgroups.list().unwrap(), Vec::<String>::new());
}

#[test]
fn host_oom_kill_is_counted() {
    let Some(host) = host("oom") else { return };
    let Some(py) = python() else { return };
    let limits = CgroupLimits {
        memory_bytes: 32 << 20,
        pids: 16,
        cpu_quota_percent: None,
    };
    let cg = host.cgroups.create("sb", &limits).unwrap();
    let code = "a = bytearray(200 * 1024 * 1024)\nfor i in range(0, len(a), 4096): a[i] = 1";
    let mut child = gated("exec \"$PY\" -c \"$CODE\"", &[("PY", &py), ("CODE", code)]);
    cg.attach(child.id() as i32).unwrap();
    release(&mut child);
    let status = wait(&mut child, Duration::from_secs(60));
    let stats = cg.stats().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{status:?}, {stats:?}"
    );
    assert!(stats.oom_kills >= 1, "{stats:?}");
    assert!(stats.memory_peak_bytes > 16 << 20, "{stats:?}");
    assert!(stats.memory_peak_bytes <= 32 << 20, "{stats:?}");
    cg.remove().unwrap();
}

#[test]
fn host_remove_stale_kills_a_forking_group() {
    let Some(host) = host("stale") else { return };
    let limits = CgroupLimits {
        memory_bytes: 64 << 20,
        pids: 16,
        cpu_quota_percent: None,
    };
    let cg = host.cgroups.create("left-behind", &limits).unwrap();
    let mut child = gated("sleep 60 & sleep 60 & wait", &[]);
    cg.attach(child.id() as i32).unwrap();
    release(&mut child);
    let start = Instant::now();
    while procs(&cg).len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "children never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let dirs = cg.group.dirs();
    drop(cg); // as after a crash: only the name is known
    assert_eq!(host.cgroups.list().unwrap(), ["left-behind"]);
    host.cgroups.remove_stale("left-behind").unwrap();
    assert_eq!(
        wait(&mut child, Duration::from_secs(10)).signal(),
        Some(libc::SIGKILL)
    );
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    assert_eq!(host.cgroups.list().unwrap(), Vec::<String>::new());
}

#[test]
fn host_pids_limit_stops_forks() {
    let Some(host) = host("pids") else { return };
    let Some(py) = python() else { return };
    let limits = CgroupLimits {
        memory_bytes: 64 << 20,
        pids: 4,
        cpu_quota_percent: None,
    };
    let cg = host.cgroups.create("sb", &limits).unwrap();
    // The interpreter and 3 sleeps fit; the other forks fail with EAGAIN. It exits with
    // the number of forks that succeeded.
    let code = "import os\nn = 0\nfor _ in range(10):\n    try:\n        pid = os.fork()\n    except BlockingIOError:\n        continue\n    if pid == 0:\n        os.execvp('sleep', ['sleep', '60'])\n    n += 1\nos._exit(n)";
    let mut child = gated("exec \"$PY\" -c \"$CODE\"", &[("PY", &py), ("CODE", code)]);
    cg.attach(child.id() as i32).unwrap();
    release(&mut child);
    let status = wait(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(3), "{status:?}");
    assert_eq!(procs(&cg).len(), 3, "{:?}", procs(&cg));
    cg.kill_all().unwrap();
    cg.remove().unwrap();
}

#[test]
fn host_limits_of_a_prepared_group_go_up_and_down() {
    let Some(host) = host("update") else { return };
    let limits = CgroupLimits {
        memory_bytes: 64 << 20,
        pids: 16,
        cpu_quota_percent: Some(50),
    };
    let cg = host.cgroups.create("sb", &limits).unwrap();
    let read_limit = |file: &str| {
        cg.group
            .dirs()
            .iter()
            .find_map(|d| fs::read_to_string(d.join(file)).ok())
            .map(|v| v.trim().to_string())
    };
    let (memory, quota, no_quota) = match cg.group {
        Group::V1(_) => ("memory.limit_in_bytes", "cpu.cfs_quota_us", "-1"),
        Group::V2(_) => ("memory.max", "cpu.max", "max 100000"),
    };
    // Up: on v1 with swap accounting the RAM+swap limit must go first, or the write fails.
    cg.update_limits(&CgroupLimits {
        memory_bytes: 256 << 20,
        pids: 32,
        cpu_quota_percent: None,
    })
    .unwrap();
    assert_eq!(read_limit(memory).as_deref(), Some("268435456"));
    assert_eq!(read_limit("pids.max").as_deref(), Some("32"));
    assert_eq!(read_limit(quota).as_deref(), Some(no_quota));
    if let Some(memsw) = read_limit("memory.memsw.limit_in_bytes") {
        assert_eq!(memsw, "268435456");
    }
    // And down again.
    cg.update_limits(&limits).unwrap();
    assert_eq!(read_limit(memory).as_deref(), Some("67108864"));
    assert!(read_limit(quota).unwrap().starts_with("50000"));
    cg.remove().unwrap();
}

/// The cgroup2 mount: `/sys/fs/cgroup` on a v2-only host, `/sys/fs/cgroup/unified` on a
/// hybrid one like this VM's (where it has no controllers).
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let mount_point = before.split_whitespace().nth(4)?;
        (after.split_whitespace().next() == Some("cgroup2")).then(|| PathBuf::from(mount_point))
    })
}

/// A child forked into `cgroup` (with `CLONE_INTO_CGROUP` when `into` is set) that sleeps
/// until killed. It runs no Rust that could take a lock: the test harness has threads.
fn sleeper(into: Option<&File>) -> (i32, rustix::fd::OwnedFd) {
    use rustix::fd::AsFd as _;
    match crate::sys::clone_into_namespaces(0, into.map(|f| f.as_fd())).unwrap() {
        crate::sys::Forked::Child => {
            let _ = rustix::thread::nanosleep(&rustix::thread::Timespec {
                tv_sec: 60,
                tv_nsec: 0,
            });
            crate::sys::exit_now(0)
        }
        crate::sys::Forked::Parent { pid, pidfd } => (pid, pidfd.unwrap()),
    }
}

/// Which cgroup2 group `pid` is in, as `/proc/PID/cgroup` says (the `0::` line).
fn v2_group_of(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .unwrap()
}

/// The v2 mechanics on the real kernel, whatever the host's version: the cgroup2 mount takes
/// a child straight into a new group with `CLONE_INTO_CGROUP`, or a child moved in from
/// outside (what a host without `clone3` does); `cpu.stat` reads; `cgroup.kill` ends them;
/// the group is removed. On this hybrid VM the cgroup2 mount has no controllers, so the
/// limits themselves are left to the fixture tests.
#[test]
fn host_v2_clone_into_cgroup_attach_kill_remove() {
    let Some(mount) = cgroup2_mount() else {
        skip::<()>("no cgroup2 mount in /proc/self/mountinfo");
        return;
    };
    if !crate::sys::clone3_available() {
        skip::<()>("clone3 is refused here (ENOSYS): no CLONE_INTO_CGROUP to test");
        return;
    }
    let name = format!("brig-test-{}-v2", std::process::id());
    let dir = mount.join(&name);
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            skip::<()>(&format!("{}: {e}", dir.display()));
            return;
        }
        Err(e) => panic!("mkdir {}: {e}", dir.display()),
    }
    let cgroup = Cgroup::open(&name, Group::V2(v2::Group { dir: dir.clone() })).unwrap();
    let dir_fd = File::open(&dir).unwrap();

    let (born_inside, born_pidfd) = sleeper(Some(&dir_fd));
    assert_eq!(v2_group_of(born_inside), format!("/{name}"));
    let (moved_in, moved_pidfd) = sleeper(None);
    assert_ne!(v2_group_of(moved_in), format!("/{name}"));
    cgroup.attach(moved_in).unwrap();
    assert_eq!(v2_group_of(moved_in), format!("/{name}"));
    let mut listed = procs(&cgroup);
    listed.sort();
    let mut expected = vec![born_inside, moved_in];
    expected.sort();
    assert_eq!(listed, expected);
    cgroup.cpu_usage_ns().unwrap();

    cgroup.kill_all().unwrap();
    for (pid, pidfd) in [(born_inside, born_pidfd), (moved_in, moved_pidfd)] {
        drop(pidfd);
        let status = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid),
            rustix::process::WaitOptions::empty(),
        )
        .unwrap()
        .unwrap()
        .1;
        assert_eq!(
            status.terminating_signal(),
            Some(libc::SIGKILL),
            "pid {pid}"
        );
    }
    cgroup.remove().unwrap();
    assert!(!dir.exists());
}

/// Spares (`spare.rs`) on the real hierarchy: the end of a run's group makes one; the next run
/// takes it, with its own limits, and its end makes a new one in its place; one held by a run
/// is not taken by another; one left used by a crash is removed, not taken.
#[test]
fn host_spares_are_made_taken_once_and_never_reused() {
    use std::os::unix::fs::MetadataExt as _;
    let Some(host) = host("spares") else { return };
    let cgroups = &host.cgroups;
    let limits = CgroupLimits {
        memory_bytes: 64 << 20,
        pids: 16,
        cpu_quota_percent: None,
    };
    let lock_dir = |name: &str| cgroups.spare_group(name).lock_dir().to_path_buf();
    let inode = |name: &str| fs::metadata(lock_dir(name)).unwrap().ino();
    let run_in = |cg: &Cgroup| {
        let mut child = gated("i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done", &[]);
        cg.attach(child.id() as i32).unwrap();
        release(&mut child);
        assert!(wait(&mut child, Duration::from_secs(20)).success());
        assert!(cg.cpu_usage_ns().unwrap() > 0);
    };

    // None yet: a group of its own, whose removal makes spare-0.
    let first = cgroups
        .create_for_run(|| "run-a".into(), &limits, 2)
        .unwrap();
    assert_eq!((first.name(), first.is_spare()), ("run-a", false));
    first.remove().unwrap();
    assert_eq!(cgroups.list().unwrap(), ["spare-0"]);
    let made = inode("spare-0");

    // Taken, with the run's limits; held, so the next run makes its own.
    let taken = cgroups
        .create_for_run(|| "run-b".into(), &limits, 2)
        .unwrap();
    assert_eq!((taken.name(), taken.is_spare()), ("spare-0", true));
    let (file, expected) = match &taken.group {
        Group::V1(g) => (g.memory.join("memory.limit_in_bytes"), "67108864"),
        Group::V2(g) => (g.dir.join("memory.max"), "67108864"),
    };
    assert_eq!(fs::read_to_string(file).unwrap().trim(), expected);
    let other = cgroups
        .create_for_run(|| "run-c".into(), &limits, 2)
        .unwrap();
    assert_eq!(other.name(), "run-c", "spare-0 is held");
    run_in(&taken);
    taken.remove().unwrap();
    assert_ne!(inode("spare-0"), made, "spare-0 is a new directory");
    assert_eq!(cgroups.list().unwrap(), ["run-c", "spare-0"]);
    other.remove().unwrap();
    assert_eq!(cgroups.list().unwrap(), ["spare-0", "spare-1"]);

    // A crash: taken, used, never removed (its lock goes with it).
    let crashed = cgroups
        .create_for_run(|| "run-d".into(), &limits, 2)
        .unwrap();
    assert_eq!(crashed.name(), "spare-0");
    run_in(&crashed);
    drop(crashed);
    let next = cgroups
        .create_for_run(|| "run-e".into(), &limits, 2)
        .unwrap();
    assert_eq!(next.name(), "spare-1", "the used spare-0 is passed by");
    assert!(
        !lock_dir("spare-0").exists(),
        "and removed: {:?}",
        cgroups.list()
    );
    let stats = {
        run_in(&next);
        next.stats().unwrap()
    };
    assert!(stats.memory_peak_bytes > 0, "{stats:?}");
    next.remove().unwrap();
    assert_eq!(cgroups.list().unwrap(), ["spare-1"], "remade where it was");

    // Without spares: none taken, none made.
    let plain = cgroups
        .create_for_run(|| "run-f".into(), &limits, 0)
        .unwrap();
    assert_eq!(plain.name(), "run-f");
    plain.remove().unwrap();
    assert_eq!(cgroups.list().unwrap(), ["spare-1"]);
}
