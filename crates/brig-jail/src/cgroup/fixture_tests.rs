//! Pure tests against temp-dir trees shaped like cgroupfs (after youki's `libcgroups`).
//!
//! A real cgroupfs fills a new directory with interface files and allows `rmdir` on it; a
//! plain filesystem does neither. So limit-writing is tested on leaf directories the test
//! fills in, and `create` on a fixture is expected to stop at the first missing file and
//! roll back; the full create/attach/remove cycle is in `host_tests`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::symlink;
use std::path::Path;

use tempfile::TempDir;

use super::*;

fn put(path: &Path, contents: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

fn get(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// `<root>/<controller>/cgroup.procs` for each v1 controller; `cpu` and `cpuacct` as one
/// `cpu,cpuacct` hierarchy when `comounted`, with symlinks when `links`.
fn v1_tree(root: &Path, comounted: bool, links: bool) {
    for c in ["memory", "pids"] {
        put(&root.join(c).join("cgroup.procs"), "");
    }
    if comounted {
        put(&root.join("cpu,cpuacct/cgroup.procs"), "");
        if links {
            symlink("cpu,cpuacct", root.join("cpu")).unwrap();
            symlink("cpu,cpuacct", root.join("cpuacct")).unwrap();
        }
    } else {
        put(&root.join("cpu/cgroup.procs"), "");
        put(&root.join("cpuacct/cgroup.procs"), "");
    }
}

fn v2_tree(dir: &Path, controllers: &str) {
    put(&dir.join("cgroup.controllers"), controllers);
    put(&dir.join("cgroup.subtree_control"), "");
    put(&dir.join("cgroup.procs"), "");
}

/// A v2 fixture with `controllers` and the group `sb` of it (not created), and its directory.
fn v2_leaf(root: &Path, controllers: &str) -> (Group, std::path::PathBuf) {
    v2_tree(root, controllers);
    let group = detect(root).unwrap().group("sb");
    let Group::V2(g) = &group else {
        panic!("not v2")
    };
    let dir = g.dir.clone();
    (group, dir)
}

fn config(root: &Path, parent: &str) -> CgroupConfig {
    CgroupConfig {
        root: root.to_path_buf(),
        parent: parent.to_owned(),
    }
}

fn detect(root: &Path) -> Result<Cgroups, CgroupError> {
    Cgroups::detect(&config(root, "brig"))
}

const LIMITS: CgroupLimits = CgroupLimits {
    memory_bytes: 32 << 20,
    pids: 64,
    cpu_quota_percent: Some(150),
};

#[test]
fn default_config_is_sys_fs_cgroup_brig() {
    let c = CgroupConfig::default();
    assert_eq!(
        (c.root.as_path(), c.parent.as_str()),
        (Path::new("/sys/fs/cgroup"), "brig")
    );
}

#[test]
fn pure_v2_is_detected() {
    let t = TempDir::new().unwrap();
    v2_tree(t.path(), "cpuset cpu io memory hugetlb pids rdma misc\n");
    let cgroups = detect(t.path()).unwrap();
    assert_eq!(cgroups.version(), Version::V2);
    let expected = format!(
        "v2 (memory, pids, cpu; groups in {}/brig)",
        t.path().display()
    );
    assert_eq!(cgroups.describe(), expected);
}

#[test]
fn hybrid_with_controllers_in_unified_is_v2() {
    let t = TempDir::new().unwrap();
    v1_tree(t.path(), false, false);
    v2_tree(&t.path().join("unified"), "memory pids\n");
    let cgroups = detect(t.path()).unwrap();
    assert_eq!(cgroups.version(), Version::V2);
    assert!(
        cgroups.describe().contains("no cpu"),
        "{}",
        cgroups.describe()
    );
}

#[test]
fn hybrid_without_controllers_in_unified_is_v1() {
    let t = TempDir::new().unwrap();
    v1_tree(t.path(), false, false);
    v2_tree(&t.path().join("unified"), "hugetlb\n");
    let cgroups = detect(t.path()).unwrap();
    assert_eq!(cgroups.version(), Version::V1);
    let root = fs::canonicalize(t.path()).unwrap();
    let d = cgroups.describe();
    assert!(
        d.starts_with("v1 (memory, pids, cpu, cpuacct; groups in "),
        "{d}"
    );
    assert!(
        d.contains(&format!("{}/cpuacct/brig", root.display())),
        "{d}"
    );
    assert!(d.ends_with("/unified offers only hugetlb)"), "{d}");
}

#[test]
fn comounted_cpu_cpuacct_is_one_directory_with_or_without_symlinks() {
    // Relative symlinks (`cpu -> cpu,cpuacct`, as systemd makes them), none, or absolute ones.
    for links in ["relative", "none", "absolute"] {
        let t = TempDir::new().unwrap();
        v1_tree(t.path(), true, links == "relative");
        if links == "absolute" {
            for c in ["cpu", "cpuacct"] {
                symlink(t.path().join("cpu,cpuacct"), t.path().join(c)).unwrap();
            }
        }
        let cgroups = detect(t.path()).unwrap();
        let root = t.path();
        let dirs = cgroups.group("sb").dirs();
        let expected: Vec<_> = ["memory", "pids", "cpu,cpuacct"]
            .iter()
            .map(|c| root.join(c).join("brig/sb"))
            .collect();
        assert_eq!(dirs, expected, "links: {links}");
    }
}

/// A one-run group without a CPU quota skips a hierarchy that carries only `cpu`, never a
/// co-mounted `cpu,cpuacct` (CPU time is read from `cpuacct`), and with a quota skips nothing.
#[test]
fn a_group_for_its_limits_skips_cpu_alone_without_a_quota() {
    let no_quota = CgroupLimits {
        cpu_quota_percent: None,
        ..LIMITS
    };
    let group_dirs = |root: &Path, limits: &CgroupLimits| {
        let cgroups = detect(root).unwrap();
        let Hierarchy::V1(h) = &cgroups.hierarchy else {
            panic!("not v1")
        };
        Group::V1(h.group_for_limits("brig", "sb", limits)).dirs()
    };
    let under = |root: &Path, controllers: &[&str]| -> Vec<_> {
        controllers
            .iter()
            .map(|c| root.join(c).join("brig/sb"))
            .collect()
    };
    let separate = TempDir::new().unwrap();
    v1_tree(separate.path(), false, false);
    assert_eq!(
        group_dirs(separate.path(), &no_quota),
        under(separate.path(), &["memory", "pids", "cpuacct"])
    );
    assert_eq!(
        group_dirs(separate.path(), &LIMITS),
        under(separate.path(), &["memory", "pids", "cpu", "cpuacct"])
    );
    let comounted = TempDir::new().unwrap();
    v1_tree(comounted.path(), true, true);
    assert_eq!(
        group_dirs(comounted.path(), &no_quota),
        under(comounted.path(), &["memory", "pids", "cpu,cpuacct"])
    );
}

#[test]
fn nothing_mounted_names_what_is_missing() {
    let t = TempDir::new().unwrap();
    let err = detect(t.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CgroupError::NoHierarchy { .. }), "{err:?}");
    assert!(msg.contains("no cgroup2 hierarchy mounted"), "{msg}");
    assert!(
        msg.ends_with("cgroup v1 lacks memory, pids, cpu, cpuacct"),
        "{msg}"
    );

    put(&t.path().join("memory/cgroup.procs"), "");
    put(&t.path().join("cpu/not-a-hierarchy"), "");
    v2_tree(&t.path().join("unified"), "hugetlb pids");
    let msg = detect(t.path()).unwrap_err().to_string();
    assert!(msg.contains("/unified lacks memory;"), "{msg}");
    assert!(msg.ends_with("cgroup v1 lacks pids, cpu, cpuacct"), "{msg}");
}

#[test]
fn parent_and_names_must_be_plain_components() {
    let t = TempDir::new().unwrap();
    v1_tree(t.path(), false, false);
    for bad in ["", "/brig", "a//b", "a/", "..", "a/../b", "a b"] {
        let err = Cgroups::detect(&config(t.path(), bad)).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidParent { .. }),
            "{bad:?}: {err:?}"
        );
    }
    let cgroups = Cgroups::detect(&config(t.path(), "a/b.c/d-e_f")).unwrap();
    let long = "x".repeat(256);
    for bad in ["", ".", "..", "a/b", "a b", "é", "a\0", long.as_str()] {
        let err = cgroups.create(bad, &LIMITS).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidName { .. }),
            "{bad:?}: {err:?}"
        );
        let err = cgroups.remove_stale(bad).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidName { .. }),
            "{bad:?}: {err:?}"
        );
    }
    for good in ["sb-1", "run.42_A", "...", &"x".repeat(255)] {
        assert!(valid_name(good), "{good:?}");
    }
}

/// Fills each of the group's directories with the files a real kernel would create.
fn v1_leaf(cgroups: &Cgroups, name: &str, memsw: bool) -> Group {
    let group = cgroups.group(name);
    let Group::V1(g) = &group else {
        panic!("not v1")
    };
    put(
        &g.memory.join("memory.limit_in_bytes"),
        "9223372036854771712\n",
    );
    put(&g.memory.join("memory.swappiness"), "60\n");
    if memsw {
        put(
            &g.memory.join("memory.memsw.limit_in_bytes"),
            "9223372036854771712\n",
        );
    }
    put(&g.pids.join("pids.max"), "max\n");
    put(&g.cpu.join("cpu.cfs_period_us"), "100000\n");
    put(&g.cpu.join("cpu.cfs_quota_us"), "-1\n");
    group
}

#[test]
fn v1_limits_go_to_the_documented_files() {
    let t = TempDir::new().unwrap();
    v1_tree(t.path(), false, false);
    let cgroups = detect(t.path()).unwrap();
    let group = v1_leaf(&cgroups, "sb", true);
    group.write_limits(&LIMITS).unwrap();
    let Group::V1(g) = &group else { unreachable!() };
    assert_eq!(get(&g.memory.join("memory.limit_in_bytes")), "33554432");
    assert_eq!(
        get(&g.memory.join("memory.memsw.limit_in_bytes")),
        "33554432"
    );
    assert_eq!(get(&g.memory.join("memory.swappiness")), "0");
    assert_eq!(get(&g.pids.join("pids.max")), "64");
    assert_eq!(get(&g.cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(get(&g.cpu.join("cpu.cfs_quota_us")), "150000");

    // No quota asked: CPU files untouched. No swap accounting: memsw not created.
    let group = v1_leaf(&cgroups, "plain", false);
    let no_quota = CgroupLimits {
        cpu_quota_percent: None,
        ..LIMITS
    };
    group.write_limits(&no_quota).unwrap();
    let Group::V1(g) = &group else { unreachable!() };
    assert_eq!(get(&g.cpu.join("cpu.cfs_quota_us")), "-1\n");
    assert!(!g.memory.join("memory.memsw.limit_in_bytes").exists());
    assert_eq!(fs::read_dir(&g.memory).unwrap().count(), 2);
}

#[test]
fn v2_limits_go_to_the_documented_files() {
    let t = TempDir::new().unwrap();
    v2_tree(t.path(), "memory pids cpu");
    let cgroups = detect(t.path()).unwrap();
    let group = cgroups.group("sb");
    let Group::V2(g) = &group else {
        panic!("not v2")
    };
    for (file, contents) in [
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("pids.max", "max"),
    ] {
        put(&g.dir.join(file), contents);
    }
    put(&g.dir.join("cpu.max"), "max 100000");
    group
        .write_limits(&CgroupLimits {
            cpu_quota_percent: Some(0),
            ..LIMITS
        })
        .unwrap();
    assert_eq!(get(&g.dir.join("memory.max")), "33554432");
    assert_eq!(get(&g.dir.join("memory.swap.max")), "0");
    assert_eq!(get(&g.dir.join("pids.max")), "64");
    assert_eq!(
        get(&g.dir.join("cpu.max")),
        "1000 100000",
        "0% is raised to the 1 ms minimum"
    );
    group.write_limits(&LIMITS).unwrap();
    assert_eq!(get(&g.dir.join("cpu.max")), "150000 100000");
}

#[test]
fn v2_create_enables_controllers_down_the_parent_and_rolls_back() {
    let t = TempDir::new().unwrap();
    v2_tree(t.path(), "cpuset cpu memory pids");
    v2_tree(&t.path().join("a"), "cpu memory pids");
    v2_tree(&t.path().join("a/b"), "cpu memory pids");
    put(&t.path().join("a/cgroup.subtree_control"), "memory pids\n");
    // The parent lacks `cpu`, so the chain is walked from the root.
    put(
        &t.path().join("a/b/cgroup.subtree_control"),
        "memory pids\n",
    );
    let cgroups = Cgroups::detect(&config(t.path(), "a/b")).unwrap();
    // A fixture's new directory has no `memory.max`, so creation stops there and undoes.
    let err = cgroups.create("sb", &LIMITS).unwrap_err();
    let leaf = t.path().join("a/b/sb");
    assert!(matches!(&err, CgroupError::Write { path, .. } if *path == leaf.join("memory.max")));
    assert!(!leaf.exists());
    assert_eq!(
        get(&t.path().join("cgroup.subtree_control")),
        "+memory +pids +cpu"
    );
    assert_eq!(get(&t.path().join("a/cgroup.subtree_control")), "+cpu");
    assert_eq!(get(&t.path().join("a/b/cgroup.subtree_control")), "+cpu");
}

#[test]
fn v2_a_prepared_parent_is_read_once_and_left_alone() {
    let t = TempDir::new().unwrap();
    v2_tree(t.path(), "cpu memory pids");
    v2_tree(&t.path().join("a"), "cpu memory pids");
    put(
        &t.path().join("a/cgroup.subtree_control"),
        "cpu memory pids\n",
    );
    let cgroups = Cgroups::detect(&config(t.path(), "a")).unwrap();
    // A fixture's new directory has no `memory.max`: creation gets that far, and no further.
    let err = cgroups.create("sb", &LIMITS).unwrap_err();
    let leaf = t.path().join("a/sb");
    assert!(matches!(&err, CgroupError::Write { path, .. } if *path == leaf.join("memory.max")));
    // The root's file still enables nothing: with the parent already enabling every
    // controller, it was neither read nor written (a real kernel cannot show this state; here
    // it shows the shortcut).
    assert_eq!(get(&t.path().join("cgroup.subtree_control")), "");
    assert_eq!(
        get(&t.path().join("a/cgroup.subtree_control")),
        "cpu memory pids\n"
    );
}

#[test]
fn v1_create_makes_the_parent_and_rolls_back_the_leaf() {
    let t = TempDir::new().unwrap();
    v1_tree(t.path(), false, false);
    let cgroups = detect(t.path()).unwrap();
    let err = cgroups.create("sb", &LIMITS).unwrap_err();
    assert!(
        matches!(&err, CgroupError::Write { path, .. } if path.ends_with("memory/brig/sb/memory.limit_in_bytes")),
        "{err:?}"
    );
    for dir in cgroups.parent_dirs() {
        assert!(
            dir.is_dir() && !dir.join("sb").exists(),
            "{}",
            dir.display()
        );
    }
    assert_eq!(cgroups.parent_dirs().len(), 4);
}

#[test]
fn v1_stats_and_cpu_usage_parse_the_kernel_formats() {
    let t = TempDir::new().unwrap();
    v1_tree(t.path(), false, false);
    let cgroups = detect(t.path()).unwrap();
    let group = cgroups.group("sb");
    let Group::V1(g) = &group else {
        panic!("not v1")
    };
    put(&g.cpuacct.join("cpuacct.usage"), "123456789\n");
    let peak = g.memory.join("memory.max_usage_in_bytes");
    put(&peak, "4202496\n");
    let oom = g.memory.join("memory.oom_control");
    put(&oom, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    let cg = Cgroup::open("sb", group).unwrap();
    assert_eq!(cg.name(), "sb");
    assert_eq!(cg.cpu_usage_ns().unwrap(), 123_456_789);
    let stats = CgroupStats {
        cpu_usage_ns: 123_456_789,
        memory_peak_bytes: 4_202_496,
        oom_kills: 2,
    };
    assert_eq!(cg.stats().unwrap(), stats);
    put(&oom, "oom_kill_disable 0\nunder_oom 0\n"); // before Linux 4.13
    assert!(matches!(cg.stats(), Err(CgroupError::Parse { path, .. }) if path == oom));

    // Opened ahead, the files are re-read through the kept fds, with the same errors.
    let mut cg = cg;
    cg.open_counters();
    assert!(cg.memory_counters.is_some());
    put(&peak, "8192\n");
    put(&oom, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
    assert_eq!(
        cg.stats().unwrap(),
        CgroupStats {
            memory_peak_bytes: 8192,
            oom_kills: 3,
            ..stats
        }
    );
    put(&oom, "oom_kill_disable 0\nunder_oom 0\n");
    assert!(matches!(cg.stats(), Err(CgroupError::Parse { path, .. }) if path == oom));
}

#[test]
fn v2_stats_and_cpu_usage_parse_the_kernel_formats() {
    let t = TempDir::new().unwrap();
    let (group, dir) = v2_leaf(t.path(), "memory pids");
    put(
        &dir.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
    );
    put(&dir.join("memory.current"), "4096\n");
    put(
        &dir.join("memory.events"),
        "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\noom_group_kill 0\n",
    );
    let cg = Cgroup::open("sb", group).unwrap();
    assert_eq!(cg.cpu_usage_ns().unwrap(), 1_500_000);
    let stats = CgroupStats {
        cpu_usage_ns: 1_500_000,
        memory_peak_bytes: 4096,
        oom_kills: 1,
    };
    assert_eq!(
        cg.stats().unwrap(),
        stats,
        "memory.current stands in for memory.peak"
    );
    put(&dir.join("memory.peak"), "65536\n");
    put(&dir.join("cpu.stat"), "usage_usec 2000\n");
    assert_eq!(cg.stats().unwrap().memory_peak_bytes, 65536);
    assert_eq!(
        cg.cpu_usage_ns().unwrap(),
        2_000_000,
        "the kept-open file is re-read"
    );
}

#[test]
fn list_unions_controllers_and_skips_files_and_odd_names() {
    let t = TempDir::new().unwrap();
    v1_tree(t.path(), false, false);
    let cgroups = detect(t.path()).unwrap();
    assert_eq!(
        cgroups.list().unwrap(),
        Vec::<String>::new(),
        "no parent yet"
    );
    put(&t.path().join("memory/brig/a/cgroup.procs"), "");
    put(&t.path().join("pids/brig/b/cgroup.procs"), "");
    put(&t.path().join("cpu/brig/a/cgroup.procs"), "");
    put(&t.path().join("cpu/brig/odd name/cgroup.procs"), "");
    put(&t.path().join("cpu/brig/cgroup.procs"), "");
    assert_eq!(cgroups.list().unwrap(), ["a", "b"]);
}

#[test]
fn attach_writes_the_pid_to_every_hierarchy() {
    let t = TempDir::new().unwrap();
    v1_tree(t.path(), true, true);
    let cgroups = detect(t.path()).unwrap();
    let group = cgroups.group("sb");
    for dir in group.dirs() {
        put(&dir.join("cgroup.procs"), "");
    }
    let Group::V1(g) = &group else {
        panic!("not v1")
    };
    put(&g.cpuacct.join("cpuacct.usage"), "0");
    let cg = Cgroup::open("sb", group).unwrap();
    for bad in [0, -1] {
        assert!(
            matches!(cg.attach(bad), Err(CgroupError::InvalidPid { .. })),
            "{bad}"
        );
    }
    cg.attach(4242).unwrap();
    let written: Vec<String> = cg
        .group
        .dirs()
        .iter()
        .map(|d| get(&d.join("cgroup.procs")))
        .collect();
    assert_eq!(written, ["4242", "4242", "4242"]);
}

#[test]
fn kill_uses_cgroup_kill_on_v2_and_empty_groups_need_no_kill() {
    let t = TempDir::new().unwrap();
    v2_tree(t.path(), "memory pids");
    let cgroups = detect(t.path()).unwrap();
    let dir = t.path().join("brig/sb");
    put(&dir.join("cgroup.kill"), "");
    put(&dir.join("cgroup.procs"), "");
    kill_group(&cgroups.group("sb")).unwrap();
    assert_eq!(get(&dir.join("cgroup.kill")), "1");
    fs::remove_file(dir.join("cgroup.kill")).unwrap();
    kill_group(&cgroups.group("sb")).unwrap(); // no cgroup.kill: reads the empty procs
    fs::remove_file(dir.join("cgroup.procs")).unwrap();
    cgroups.remove_stale("sb").unwrap();
    assert!(!dir.exists());
    cgroups.remove_stale("never-made").unwrap();
}

#[test]
fn v2_prepared_group_gets_new_limits_and_a_join_file() {
    let t = TempDir::new().unwrap();
    let (group, dir) = v2_leaf(t.path(), "memory pids cpu");
    for file in [
        "memory.max",
        "memory.swap.max",
        "pids.max",
        "cpu.stat",
        "cgroup.procs",
    ] {
        put(&dir.join(file), "");
    }
    put(&dir.join("cpu.max"), "150000 100000");
    let cgroup = Cgroup::open("sb", group).unwrap();
    cgroup
        .update_limits(&CgroupLimits {
            memory_bytes: 64 << 20,
            pids: 8,
            cpu_quota_percent: None,
        })
        .unwrap();
    assert_eq!(get(&dir.join("memory.max")), "67108864");
    assert_eq!(get(&dir.join("pids.max")), "8");
    assert_eq!(get(&dir.join("cpu.max")), "max 100000", "no quota any more");
    // The file a process writes `0` to, moving itself in: v2's `cgroup.procs`.
    let joins = cgroup.open_join().unwrap();
    assert_eq!(joins.len(), 1);
    (&joins[0]).write_all(b"0").unwrap();
    assert_eq!(get(&dir.join("cgroup.procs")), "0");
}

/// A v2 spare (`spare.rs`) as its taker sees it: `brig/<name>` with the files a new group has,
/// and counters that show `usage_usec` of CPU time and a peak of `peak` bytes.
fn v2_spare(root: &Path, name: &str, usage_usec: u64, peak: u64) -> std::path::PathBuf {
    let dir = root.join("brig").join(name);
    for (file, contents) in [
        ("memory.max", "max".to_owned()),
        ("memory.swap.max", "max".to_owned()),
        ("pids.max", "max".to_owned()),
        ("cpu.max", "max 100000".to_owned()),
        ("cgroup.procs", String::new()),
        ("memory.events", "oom_kill 0\n".to_owned()),
        ("cpu.stat", format!("usage_usec {usage_usec}\n")),
        ("memory.peak", format!("{peak}\n")),
    ] {
        put(&dir.join(file), &contents);
    }
    dir
}

/// A spare is taken only by one run at a time (the lock), only if no task ever ran in it (CPU
/// time and peak both 0), and gets the taker's limits.
#[test]
fn v2_a_spare_is_taken_once_never_used_and_with_the_takers_limits() {
    let t = TempDir::new().unwrap();
    v2_tree(t.path(), "memory pids cpu");
    let cgroups = detect(t.path()).unwrap();
    let limits = CgroupLimits {
        cpu_quota_percent: None,
        ..LIMITS
    };
    assert!(cgroups.take_spare(&limits, 2).is_none(), "none made yet");
    let first = v2_spare(t.path(), "spare-0", 0, 0);
    v2_spare(t.path(), "spare-1", 0, 0);
    let a = cgroups
        .create_for_run(|| "run-a".into(), &limits, 2)
        .unwrap();
    assert_eq!((a.name(), a.is_spare()), ("spare-0", true));
    assert_eq!(get(&first.join("memory.max")), "33554432");
    assert_eq!(get(&first.join("memory.swap.max")), "0");
    assert_eq!(get(&first.join("pids.max")), "64");
    let b = cgroups.take_spare(&limits, 2).unwrap();
    assert_eq!(b.name(), "spare-1", "spare-0 is held by the first taker");
    assert!(cgroups.take_spare(&limits, 2).is_none(), "both are held");
    drop(b);
    let b = cgroups.take_spare(&limits, 2).unwrap();
    assert_eq!(b.name(), "spare-1", "dropped, its lock is released");
    drop(b);
    assert!(
        cgroups.take_spare(&limits, 1).is_none(),
        "only spare-0 counts"
    );

    // Counters of a past run: passed by (a real cgroupfs would also let it be removed).
    for (usage, peak) in [(10, 0), (0, 4096)] {
        v2_spare(t.path(), "spare-1", usage, peak);
        assert!(
            cgroups.take_spare(&limits, 2).is_none(),
            "used: {usage} µs, peak {peak}"
        );
    }
    drop(a);
    assert_eq!(cgroups.take_spare(&limits, 2).unwrap().name(), "spare-0");
}

/// Where a spare is made: the spare taken first, then every index; each directory of the
/// lock's (`memory` on v1) last; and the group's removal goes the other way, lock first. The
/// refill makes the first candidate that does not exist, whole.
#[test]
fn v1_spares_are_made_lock_directory_last_and_removed_lock_directory_first() {
    let t = TempDir::new().unwrap();
    v1_tree(t.path(), false, false);
    let cgroups = detect(t.path()).unwrap();
    let hierarchies = |name: &str| -> Vec<std::path::PathBuf> {
        ["pids", "cpuacct", "memory"]
            .iter()
            .map(|c| t.path().join(c).join("brig").join(name))
            .collect()
    };
    // As the reaper takes them: C strings.
    let c_strings = |name: &str| -> Vec<std::ffi::CString> {
        hierarchies(name)
            .iter()
            .map(|d| std::ffi::CString::new(d.to_str().unwrap()).unwrap())
            .collect()
    };
    let candidates = cgroups.refill_candidates(Some(1), 3);
    assert_eq!(
        candidates,
        [
            c_strings("spare-1"),
            c_strings("spare-0"),
            c_strings("spare-2")
        ],
        "no directory in the cpu-only hierarchy, memory's last"
    );
    assert_eq!(cgroups.refill_candidates(None, 2)[0], c_strings("spare-0"));
    assert!(cgroups.refill_candidates(Some(0), 0).is_empty());

    for c in ["memory", "pids", "cpuacct"] {
        fs::create_dir_all(t.path().join(c).join("brig")).unwrap();
    }
    spare::refill(&candidates);
    assert!(hierarchies("spare-1").iter().all(|d| d.is_dir()));
    spare::refill(&candidates);
    assert!(
        hierarchies("spare-0").iter().all(|d| d.is_dir()),
        "spare-1 exists: the next candidate is made"
    );
    assert!(!t.path().join("memory/brig/spare-2").exists());

    // A group's removal order: memory's directory first.
    put(&t.path().join("cpuacct/brig/spare-1/cpuacct.usage"), "0\n");
    let cg = Cgroup::open("spare-1", cgroups.spare_group("spare-1")).unwrap();
    let order = cg.removal_order();
    assert_eq!(order[0], t.path().join("memory/brig/spare-1"));
    assert_eq!(order.len(), 3);
}
