//! The command line: exit codes, passthrough, clear one-line errors, the process tier, doctor
//! and languages output shapes.

mod common;
use common::*;
use serde_json::Value;

#[test]
fn run_passes_output_through_and_exits_with_the_programs_code() {
    if no_sandbox() {
        return;
    }
    let p = program(
        "py",
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(7)",
    );
    let out = run_raw(&p.path, &[], &[], b"");
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
}

#[test]
fn timeout_exits_124_and_memory_limit_137() {
    if no_sandbox() {
        return;
    }
    let sleep = program("sh", "sleep 30");
    let out = run_raw(&sleep.path, &["--timeout", "300ms"], &[], b"");
    assert_eq!(out.status.code(), Some(124));
    assert!(String::from_utf8_lossy(&out.stderr).contains("brig: timeout (wall-clock limit)"));
    let bomb = program(
        "py",
        "x = bytearray(512 << 20)\nx[::4096] = b'1' * len(x[::4096])",
    );
    let out = run_raw(&bomb.path, &["--memory", "32MiB"], &[], b"");
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn stdin_comes_from_a_file_or_from_brigs_stdin() {
    if no_sandbox() {
        return;
    }
    let p = program("py", "import sys\nprint(sys.stdin.read().strip()[::-1])");
    let out = run_raw(&p.path, &[], &[], b"abc");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "cba\n");
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), "xyz").unwrap();
    let out = run_raw(
        &p.path,
        &["--stdin", input.path().to_str().unwrap()],
        &[],
        b"ignored",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "zyx\n");
}

#[test]
fn a_program_can_come_from_stdin_with_lang() {
    if no_sandbox() {
        return;
    }
    let out = brig()
        .args(["run", "--lang", "python", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"print(6*7)")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
}

#[test]
fn bad_input_is_one_clear_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "/no/such/file.py"],
            "/no/such/file.py: No such file",
        ),
        (&["run", "--memory", "lots", "x.py"], "not a size"),
        (&["run", "--timeout", "soon", "x.py"], "not a duration"),
        (&["run", "--tier", "vm", "x.py"], "unknown tier `vm`"),
        (
            &["run", "--lang", "cobol", "/etc/hostname"],
            "unknown language `cobol`",
        ),
        (&["run", "/etc/hostname"], "cannot tell the language"),
        (
            &["run", "--pids", "0", "--lang", "python", "/etc/hostname"],
            "limit `pids`: must be at least 1",
        ),
    ];
    for (args, expected) in cases {
        let out = brig().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.trim().lines().count() <= 3, "{args:?}: {stderr}");
    }
}

#[test]
fn the_process_tier_runs_only_when_asked_and_says_so() {
    let p = program(
        "py",
        "import os\nprint(sorted(os.environ)); print(os.getcwd().startswith('/work'))",
    );
    let r = run_json(&p.path, &["--tier", "process"], &[], b"");
    assert_status(&r, "ok");
    assert_eq!(r["tier"], "process");
    let out = stdout(&r);
    assert!(out.starts_with("['HOME', 'LANG', 'MPLBACKEND'"), "{out}");
    // A private temporary work dir on the host, not /work.
    assert!(out.ends_with("False\n"), "{out}");
    if no_sandbox() {
        return;
    }
    let r = run_json(&p.path, &[], &[], b"");
    assert_eq!(r["tier"], "namespace");
}

#[test]
fn the_process_tier_enforces_time_and_output_limits() {
    let sleep = program("sh", "sleep 30 & sleep 30");
    let r = run_json(
        &sleep.path,
        &["--tier", "process", "--timeout", "300ms"],
        &[],
        b"",
    );
    assert_status(&r, "timeout");
    assert_eq!(r["limit"], "wall");
    let flood = program("sh", "yes brig");
    let r = run_json(
        &flood.path,
        &["--tier", "process", "--output-limit", "1000"],
        &[],
        b"",
    );
    assert_status(&r, "output_limit");
    assert_eq!(stdout(&r).len(), 1000);
}

#[test]
fn doctor_json_has_the_contract_shape() {
    let d = doctor();
    assert!(d["kernel"].is_string());
    for feature in [
        "namespace.user",
        "namespace.pid",
        "namespace.network",
        "cgroups",
        "seccomp",
        "landlock",
        "kvm",
        "proc",
    ] {
        let f = &d["features"][feature];
        assert!(
            f["ok"].is_boolean() && f["detail"].is_string(),
            "{feature}: {d}"
        );
    }
    for tier in ["namespace", "process", "wasm"] {
        let t = &d["tiers"][tier];
        assert!(t["usable"].is_boolean(), "{tier}: {d}");
        assert!(t["reason"].is_null() || t["reason"].is_string(), "{tier}");
        assert_eq!(
            t["usable"].as_bool() == Some(true),
            t["reason"].is_null(),
            "{tier}"
        );
    }
    assert!(
        d["features"]["landlock"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("ABI ")
    );
}

#[test]
fn languages_lists_each_with_availability() {
    let out = brig().args(["languages", "--json"]).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "python",
            "bash",
            "javascript",
            "c",
            "cpp",
            "java",
            "rust",
            "perl"
        ]
    );
    let extra = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        extra.path(),
        "[[language]]\nid = \"cobol\"\nname = \"COBOL\"\nsource_file = \"main.cob\"\nrun = [\"/usr/bin/cobc\"]\nrequires = [\"/usr/bin/cobc-not-here\"]\n",
    )
    .unwrap();
    let out = brig()
        .args(["languages"])
        .env("BRIG_LANGUAGES", extra.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cobol")
            && text.contains("unavailable: /usr/bin/cobc-not-here is not installed"),
        "{text}"
    );
    // Running an unavailable language is a clear error, not a failed run.
    let p = program("cob", "x");
    let out = brig()
        .args(["run", "--lang", "cobol"])
        .arg(&p.path)
        .env("BRIG_LANGUAGES", extra.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("language `cobol` is unavailable on this host")
    );
}

const HELLO_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 8) "hi wasm\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 8))
    (i32.store (i32.const 4) (i32.const 8))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 100)))))"#;

#[test]
fn a_wat_module_runs_on_the_wasm_tier_and_says_so() {
    let p = program("wat", HELLO_WAT);
    let r = run_json(&p.path, &[], &[], b"");
    assert_status(&r, "ok");
    assert_eq!(r["tier"], "wasm");
    assert_eq!(stdout(&r), "hi wasm\n");
    let out = run_raw(&p.path, &[], &[], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi wasm\n");
    // A module on another tier is a clear error, not a silent switch.
    let out = brig()
        .args(["run", "--tier", "namespace"])
        .arg(&p.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runs on the wasm tier"));
}

#[test]
fn python_runs_on_the_wasm_tier_when_installed() {
    if doctor()["features"]["wasm.python"]["ok"].as_bool() != Some(true) {
        skip("python.wasm not installed (run scripts/install-python-wasm.sh)");
        return;
    }
    let p = program(
        "py",
        "import sys\nprint(sys.platform, sys.stdin.read())\nraise SystemExit(3)",
    );
    let r = run_json(
        &p.path,
        &["--tier", "wasm", "--timeout", "60s", "--cpu-time", "60s"],
        &[],
        b"in",
    );
    assert_status(&r, "runtime_error");
    assert_eq!(r["tier"], "wasm");
    assert_eq!(r["exit_code"], 3);
    assert_eq!(stdout(&r), "wasi in\n");
}

#[test]
fn the_process_tier_reports_the_memory_limit_from_its_cgroup_as_root() {
    if no_sandbox() {
        return;
    }
    let bomb = program(
        "py",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))",
    );
    let r = run_json(
        &bomb.path,
        &["--tier", "process", "--memory", "64MiB"],
        &[],
        b"",
    );
    assert_status(&r, "memory_limit");
    assert_eq!(r["tier"], "process");
    assert!(r["memory_peak_bytes"].as_u64().unwrap() > 32 << 20, "{r}");
}

#[test]
fn network_is_off_unless_asked_for() {
    if no_sandbox() {
        return;
    }
    let p = program(
        "py",
        "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint('listening')",
    );
    let r = run_json(&p.path, &[], &[], b"");
    assert_status(&r, "runtime_error");
    assert!(
        r["stderr"]
            .as_str()
            .unwrap()
            .contains("[Errno 1] Operation not permitted"),
        "{r}"
    );
    let r = run_json(&p.path, &["--network"], &[], b"");
    assert_status(&r, "ok");
    assert_eq!(stdout(&r), "listening\n");
}

#[test]
fn brig_run_sweeps_cgroups_left_by_a_dead_brig() {
    if no_sandbox() {
        return;
    }
    // A cgroup named for a process that no longer exists, in every v1 controller Brig uses.
    let stale = "run-999999999-1-0";
    let dirs: Vec<std::path::PathBuf> = v1_brig_parents()
        .iter()
        .map(|parent| parent.join(stale))
        .collect();
    if dirs.is_empty() {
        skip("no cgroup v1 hierarchy under /sys/fs/cgroup");
        return;
    }
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
    }
    let p = program("sh", "sleep 0.3");
    let r = run_json(&p.path, &[], &[], b"");
    assert_status(&r, "ok");
    for dir in &dirs {
        assert!(!dir.exists(), "{} was not swept", dir.display());
    }
}

/// Brig's parent group in each v1 controller it uses that this host mounts.
fn v1_brig_parents() -> Vec<std::path::PathBuf> {
    ["memory", "pids", "cpu", "cpuacct"]
        .iter()
        .map(|c| std::path::Path::new("/sys/fs/cgroup").join(c))
        .filter(|mount| mount.is_dir())
        .map(|mount| mount.join("brig"))
        .collect()
}

/// The helper moves the sandbox's init off its own CPU while both set up (`spread.rs`); the
/// program still gets the caller's whole CPU mask, and a caller pinned to one CPU stays so.
#[test]
fn the_program_runs_with_the_callers_cpu_mask() {
    if no_sandbox() {
        return;
    }
    let allowed = |status: &str| {
        status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
            .unwrap()
    };
    let ours = allowed(&std::fs::read_to_string("/proc/self/status").unwrap());
    let p = program("sh", "cat /proc/self/status");
    let r = run_json(&p.path, &[], &[], b"");
    assert_status(&r, "ok");
    assert_eq!(allowed(stdout(&r)), ours);

    let pinned = std::process::Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_brig"), "run", "--json"])
        .arg(&p.path)
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&pinned.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&pinned.stderr)));
    assert_status(&r, "ok");
    assert_eq!(allowed(stdout(&r)), "0");
}

/// The cgroups of a Brig in a container (another PID namespace, the same cgroup tree): a
/// Brig in the host's namespace finds their owner through the host's `/proc` and sweeps only
/// those whose owner is gone.
#[test]
fn brig_run_sweeps_the_cgroups_of_a_dead_brig_of_another_pid_namespace_only() {
    if no_sandbox() {
        return;
    }
    let controllers = v1_brig_parents();
    if controllers.is_empty() {
        skip("no cgroup v1 hierarchy under /sys/fs/cgroup");
        return;
    }
    // Two "container Brigs" in PID namespaces of their own. One lives on; the other's
    // namespace is gone once its init has exited.
    let (mut living, living_name) = foreign_owner();
    let (mut dead, dead_name) = foreign_owner();
    dead.kill().unwrap();
    dead.wait().unwrap();
    let groups = |name: &str| -> Vec<std::path::PathBuf> {
        controllers.iter().map(|c| c.join(name)).collect()
    };
    for dir in groups(&living_name).iter().chain(&groups(&dead_name)) {
        std::fs::create_dir_all(dir).unwrap();
    }
    // The dead namespace's processes are reaped by the host's init: wait for their end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let dead_ns = dead_name.rsplit_once("-ns").unwrap().1.parse::<u64>().ok();
    while std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| pid_namespace_of(&e.path()) == dead_ns)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the dead namespace lingers"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let p = program("sh", "sleep 0.3");
    let r = run_json(&p.path, &[], &[], b"");
    assert_status(&r, "ok");
    for dir in groups(&dead_name) {
        assert!(!dir.exists(), "{} was not swept", dir.display());
    }
    for dir in groups(&living_name) {
        assert!(
            dir.exists(),
            "{} was swept while its owner runs",
            dir.display()
        );
        std::fs::remove_dir(&dir).unwrap();
    }
    living.kill().unwrap();
    living.wait().unwrap();
}

/// A process in a PID namespace of its own, and the cgroup name it would give a run:
/// `run-<its pid there>-<start time>-0-ns<inode of the namespace>`. It is the `sleep` of
/// `unshare --pid --fork --kill-child sh -c 'sleep 60 & wait'`, so its pid there is 2, not 1:
/// `brig_run_as_pid_1_removes_its_cgroups_before_exiting`, running alongside, looks for
/// `run-1-` groups.
fn foreign_owner() -> (std::process::Child, String) {
    let mut child = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            "sleep 60 & wait",
        ])
        .spawn()
        .unwrap();
    for _ in 0..500 {
        let grandchildren: Vec<u32> = children_of(child.id())
            .into_iter()
            .flat_map(children_of)
            .collect();
        for pid in grandchildren {
            let proc = std::path::Path::new("/proc").join(pid.to_string());
            if std::fs::read_to_string(proc.join("comm")).is_ok_and(|c| c == "sleep\n") {
                let stat = std::fs::read_to_string(proc.join("stat")).unwrap();
                let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
                let start = after_comm.split(' ').nth(19).unwrap().to_owned();
                let status = std::fs::read_to_string(proc.join("status")).unwrap();
                let inner = status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|pids| pids.split_whitespace().last())
                    .unwrap()
                    .to_owned();
                assert_eq!(inner, "2", "{status}");
                let ns = pid_namespace_of(&proc).unwrap();
                return (child, format!("run-{inner}-{start}-0-ns{ns}"));
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    panic!("unshare's grandchild never ran sleep");
}

fn pid_namespace_of(proc: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(proc.join("ns/pid")).ok().map(|m| m.ino())
}

/// `brig run` exits once the result is out; a reaper it leaves behind finishes the sandbox's
/// teardown and removes the run's cgroups. A daemon with 1 GiB to unmap (and no copy of the
/// output pipes) keeps that teardown going for tens of ms after `brig run` has exited.
#[test]
fn brig_run_leaves_no_cgroup_once_its_reaper_is_done() {
    use std::io::Write;
    if no_sandbox() {
        return;
    }
    let p = program(
        "py",
        &python_leaving_a_heavy_daemon("print('ready', flush=True)\nsys.stdin.readline()"),
    );
    let mut run = brig();
    run.args(["run", "--memory", "2GiB"]).arg(&p.path);
    let mut child = spawn_until_ready(run);
    // Wherever they live (v1 controllers or the v2 tree), by whatever name (its own or a
    // spare's): this run's groups.
    let groups = sandbox_cgroups(child.id());
    assert!(
        !groups.is_empty(),
        "no cgroup of the run found while it runs"
    );
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !cgroups_removed(&groups),
        "brig run waited for the sandbox's teardown"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cgroups_removed(&groups) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(cgroups_removed(&groups), "cgroups left: {groups:?}");
}

/// The sandbox's init (and the reaper `brig run` starts while the program runs) hold no copy of
/// `brig run`'s own stdout or stderr: whoever reads `brig run`'s output sees EOF when it exits,
/// not when the sandbox's teardown is done (the init stays until it is killed).
#[test]
fn no_process_of_the_sandbox_holds_brig_runs_stdio() {
    use std::io::Write;
    if no_sandbox() {
        return;
    }
    let p = program(
        "py",
        "import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n",
    );
    let mut run = brig();
    run.args(["run"]).arg(&p.path);
    let mut child = spawn_until_ready(run);
    let brig = child.id();
    let pipe_of = |pid: u32, fd: u32| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
    let (stdout, stderr) = (pipe_of(brig, 1), pipe_of(brig, 2));
    assert!(stdout.to_string_lossy().starts_with("pipe:"), "{stdout:?}");
    let children = children_of(brig);
    assert!(!children.is_empty(), "no sandbox init under brig run");
    for pid in children {
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
            let target = std::fs::read_link(fd.unwrap().path()).unwrap_or_default();
            assert!(
                target != stdout && target != stderr,
                "process {pid} holds brig run's {target:?}"
            );
        }
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Starts `command` with its stdio piped and returns once it has printed `ready`.
fn spawn_until_ready(mut command: std::process::Command) -> std::process::Child {
    use std::io::BufRead;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    child
}

/// `brig <brig_args>` as PID 1 of a new PID namespace (`unshare --pid --fork`, with
/// `unshare_args` too).
fn brig_as_pid_1<S: AsRef<std::ffi::OsStr>>(
    unshare_args: &[&str],
    brig_args: &[S],
) -> std::process::Output {
    std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child"])
        .args(unshare_args)
        .arg(env!("CARGO_BIN_EXE_brig"))
        .args(brig_args)
        .output()
        .unwrap()
}

/// As the init of its own PID namespace (a container's entry point), `brig run` cannot leave
/// the teardown to a reaper, which its exit would kill: the cgroups are gone when it exits.
#[test]
fn brig_run_as_pid_1_removes_its_cgroups_before_exiting() {
    use std::io::Write;
    if no_sandbox() {
        return;
    }
    let p = program(
        "py",
        &python_leaving_a_heavy_daemon("print('ready', flush=True)\nsys.stdin.readline()"),
    );
    let mut command = std::process::Command::new("unshare");
    command
        .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_brig"))
        .args(["run", "--memory", "2GiB"])
        .arg(&p.path);
    let mut unshare = spawn_until_ready(command);
    // unshare's child is Brig, PID 1 of the new namespace; its child, the sandbox's init.
    let id = unshare.id();
    let [brig] = children_of(id)[..] else {
        panic!("unshare's children: {:?}", children_of(id));
    };
    let groups = sandbox_cgroups(brig);
    assert!(
        !groups.is_empty(),
        "no cgroup of the run found while it runs"
    );
    unshare.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = unshare.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        cgroups_removed(&groups),
        "cgroups left by brig run as PID 1: {groups:?}"
    );
}

/// `brig doctor` in a PID namespace whose `/proc` is still the host's: the `proc` feature
/// fails and the namespace tier is unusable, saying why (outside, it is fine).
#[test]
fn doctor_names_a_proc_of_another_pid_namespace() {
    if no_sandbox() {
        return;
    }
    assert_eq!(doctor()["features"]["proc"]["ok"], true, "{}", doctor());
    let out = brig_as_pid_1(&[], &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["features"]["proc"]["ok"], false, "{d}");
    let reason = d["tiers"]["namespace"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("/proc belongs to another PID namespace"),
        "{d}"
    );
}

/// In a PID namespace whose `/proc` is still the host's, `/proc/<pid>` of the sandbox's init
/// is some other process: `brig run` refuses to start, saying why, instead of writing id maps
/// through it.
#[test]
fn brig_run_refuses_a_proc_of_another_pid_namespace() {
    if no_sandbox() {
        return;
    }
    let p = program("py", "print('never')");
    let out = brig_as_pid_1(&[], &["run".as_ref(), p.path.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        stderr.contains("/proc belongs to another PID namespace")
            && stderr.contains("as pid ")
            && stderr.contains("not 1)"),
        "{stderr}"
    );
}

/// `brig run` enters and leaves mount namespaces (the kept template) and comes back to its
/// working directory each time: a working directory that no longer exists is not an error.
#[test]
fn run_works_from_a_deleted_working_directory() {
    if no_sandbox() {
        return;
    }
    let p = program("py", "print('still here')");
    let gone = tempfile::tempdir().unwrap().keep();
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"cd "$1" && rmdir "$1" && exec "$2" run "$3""#)
        .arg("sh")
        .arg(&gone)
        .arg(env!("CARGO_BIN_EXE_brig"))
        .arg(&p.path)
        .output()
        .unwrap();
    assert!(!gone.exists());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "still here\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
}

/// A seccomp wrapper like Docker's default profile: `clone3` answers ENOSYS (so that callers
/// fall back to `clone`), everything else is allowed. It checks that the filter took before it
/// execs its arguments, and exits 99 if `clone3` still works.
const NO_CLONE3_WRAPPER: &str = r#"
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { sizeof f / sizeof f[0], f };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    perror("seccomp");
    return 98;
  }
  if (syscall(__NR_clone3, NULL, 0) != -1 || errno != ENOSYS) {
    fprintf(stderr, "clone3 still available\n");
    return 99;
  }
  execv(argv[1], argv + 1);
  perror("execv");
  return 127;
}
"#;

/// Where `clone3` is filtered out (Docker's default seccomp profile, kernels before 5.3), the
/// namespace tier still runs, through `clone(2)`: one-step and compile-then-run programs, with
/// every namespace, a template built under the filter, and `doctor` says which call is used.
/// Before the fallback, `brig run` failed here with "clone3: Function not implemented".
#[test]
fn sandboxes_start_where_clone3_is_filtered() {
    if no_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("noclone3.c");
    let wrapper = dir.path().join("noclone3");
    std::fs::write(&source, NO_CLONE3_WRAPPER).unwrap();
    let gcc = std::process::Command::new("gcc")
        .arg("-o")
        .arg(&wrapper)
        .arg(&source)
        .output();
    match gcc {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("gcc failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            skip(&format!("gcc is needed to build the seccomp wrapper: {e}"));
            return;
        }
    }
    let under_wrapper = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(&wrapper)
            .arg(env!("CARGO_BIN_EXE_brig"))
            .args(args)
            .env_remove("BRIG_LANGUAGES")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_ne!(
            out.status.code(),
            Some(99),
            "the wrapper did not filter clone3"
        );
        assert_ne!(
            out.status.code(),
            Some(98),
            "the wrapper could not install its filter"
        );
        out
    };
    // `brig run --json ARGS` under the wrapper.
    let run_json = |args: &[&std::ffi::OsStr]| -> Value {
        let out = under_wrapper(&[&["run".as_ref(), "--json".as_ref()], args].concat());
        json_of(&out, "brig run --json (under the wrapper)")
    };

    let py = program(
        "py",
        "import os, socket\nprint(os.getpid(), os.getuid(), socket.gethostname())",
    );
    let result = run_json(&[py.path.as_os_str()]);
    assert_status(&result, "ok");
    assert_eq!(result["tier"], "namespace");
    // PID 2 of its own PID namespace, the sandbox user, the sandbox's hostname.
    assert_eq!(stdout(&result), "2 1000 brig\n");

    // gcc built the wrapper, so the c language is available: a compile step, then a run step.
    {
        let c = program(
            "c",
            "#include <stdio.h>\nint main(void) { puts(\"compiled\"); return 0; }",
        );
        let result = run_json(&[c.path.as_os_str()]);
        assert_status(&result, "ok");
        assert_eq!(stdout(&result), "compiled\n");
    }

    // A language with a read-only mount no earlier run had: its template is built here, under
    // the filter (building one clones into a PID namespace too).
    // (Outside /tmp, which the sandbox's own /tmp hides.)
    let fresh = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::write(fresh.path().join("marker"), "fresh template").unwrap();
    // Readable by the sandbox user, whatever the umask and tempfile's defaults.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fresh.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        fresh.path().join("marker"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let languages = fresh.path().join("languages.toml");
    std::fs::write(
        &languages,
        format!(
            "[[language]]\nid = \"pyfresh\"\nname = \"Python, fresh template\"\n\
             source_file = \"main.py\"\nrun = [\"/usr/bin/python3\", \"{{source}}\"]\n\
             requires = [\"/usr/bin/python3\"]\nro_mounts = [\"{}\"]\n",
            fresh.path().display()
        ),
    )
    .unwrap();
    let reader = program(
        "py",
        &format!("print(open('{}/marker').read())", fresh.path().display()),
    );
    let result = run_json(&[
        "--languages".as_ref(),
        languages.as_os_str(),
        "--lang".as_ref(),
        "pyfresh".as_ref(),
        reader.path.as_os_str(),
    ]);
    assert_status(&result, "ok");
    assert_eq!(stdout(&result), "fresh template\n");

    let report = json_of(
        &under_wrapper(&["doctor".as_ref(), "--json".as_ref()]),
        "brig doctor --json (under the wrapper)",
    );
    let clone3 = &report["features"]["clone3"];
    assert_eq!(clone3["ok"], true);
    assert!(
        clone3["detail"].as_str().unwrap().contains("ENOSYS"),
        "{clone3}"
    );
    assert_eq!(report["tiers"]["namespace"]["usable"], true);
    // Without the wrapper, a host with clone3 says so.
    if doctor()["features"]["clone3"]["detail"] != "available" {
        skip("this host refuses clone3 itself: the fallback is its normal path");
    }
}

/// On x86_64 glibc builds `brig` enters at `brig_start` (brig-jail's `sys.rs`), which
/// pre-faults the pages its start-up relocations write before glibc's `_start` runs: the ELF
/// header's entry is that symbol's address (every other test runs the binary through it).
#[test]
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
fn brig_enters_at_brig_start() {
    use std::io::Read;
    let path = env!("CARGO_BIN_EXE_brig");
    let mut header = [0u8; 32];
    std::fs::File::open(path)
        .unwrap()
        .read_exact(&mut header)
        .unwrap();
    let entry = u64::from_le_bytes(header[24..32].try_into().unwrap());
    let nm = match std::process::Command::new("nm")
        .args(["--defined-only", path])
        .output()
    {
        Ok(out) if out.status.success() => out,
        other => {
            skip(&format!("nm (binutils) not runnable: {other:?}"));
            return;
        }
    };
    let symbols = String::from_utf8_lossy(&nm.stdout);
    let brig_start = symbols
        .lines()
        .find_map(|line| line.strip_suffix(" T brig_start"))
        .map(|address| u64::from_str_radix(address, 16).unwrap());
    assert_eq!(brig_start, Some(entry), "entry {entry:#x}");
}
