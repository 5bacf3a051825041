//! Shared helpers for the `brig` integration tests: run the real binary, parse its JSON, and
//! skip loudly (or fail under `CI` / `BRIG_TEST_STRICT`) when the host lacks a feature.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The binary under test.
pub fn brig() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_brig"));
    command.env_remove("BRIG_LANGUAGES");
    command
}

/// True when skips must fail instead.
pub fn strict() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("BRIG_TEST_STRICT").is_some()
}

/// Prints `SKIP: reason` and returns true, or panics in strict mode.
pub fn skip(reason: &str) -> bool {
    if strict() {
        panic!("required feature missing (CI/BRIG_TEST_STRICT is set): {reason}");
    }
    eprintln!("SKIP: {reason}");
    true
}

/// `brig doctor --json`, once per test binary.
pub fn doctor() -> &'static Value {
    static DOCTOR: OnceLock<Value> = OnceLock::new();
    DOCTOR.get_or_init(|| {
        let out = brig().args(["doctor", "--json"]).output().unwrap();
        serde_json::from_slice(&out.stdout).expect("doctor prints JSON")
    })
}

/// Whether the namespace tier runs here (with cgroups, i.e. as root); if not, skips loudly.
pub fn no_sandbox() -> bool {
    let tier = &doctor()["tiers"]["namespace"];
    if tier["usable"].as_bool() != Some(true) {
        return skip(&format!(
            "namespace tier unusable: {}",
            tier["reason"].as_str().unwrap_or("?")
        ));
    }
    if !is_root() {
        return skip("escape tests need root (cgroups and per-sandbox host ids)");
    }
    false
}

/// Whether the tests run as root (uid 0 in /proc/self/status).
pub fn is_root() -> bool {
    // SAFETY-free check: the tests forbid unsafe; /proc tells the effective uid.
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// A source file in a temp dir.
pub struct Program {
    _dir: tempfile::TempDir,
    /// Its path.
    pub path: PathBuf,
}

/// Writes `source` to `main.<ext>` in a fresh temp dir.
pub fn program(ext: &str, source: &str) -> Program {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("main.{ext}"));
    std::fs::write(&path, source).unwrap();
    Program { _dir: dir, path }
}

/// Runs `brig run --json [flags] FILE [-- args]` with `stdin` and returns the result object.
pub fn run_json(file: &Path, flags: &[&str], args: &[&str], stdin: &[u8]) -> Value {
    let out = run_raw(file, &[&["--json"], flags].concat(), args, stdin);
    json_of(&out, "brig run --json")
}

/// The JSON that `command` printed on stdout; panics with both streams if it is not JSON.
pub fn json_of(out: &Output, command: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{command} did not print JSON ({e}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs `brig run [flags] FILE [-- args]` and returns its raw output.
pub fn run_raw(file: &Path, flags: &[&str], args: &[&str], stdin: &[u8]) -> Output {
    let mut command = brig();
    command.arg("run").args(flags).arg(file);
    if !args.is_empty() {
        command.arg("--").args(args);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a Python probe in the sandbox and returns the result object.
pub fn python(source: &str, flags: &[&str]) -> Value {
    let p = program("py", source);
    run_json(&p.path, flags, &[], b"")
}

/// The status string of a result.
pub fn status(result: &Value) -> &str {
    result["status"].as_str().unwrap_or("<none>")
}

/// The stdout of a result.
pub fn stdout(result: &Value) -> &str {
    result["stdout"].as_str().unwrap_or("")
}

/// Asserts a status, showing the whole result when it differs.
#[track_caller]
pub fn assert_status(result: &Value, expected: &str) {
    assert_eq!(
        status(result),
        expected,
        "unexpected status; result: {}",
        serde_json::to_string_pretty(result).unwrap()
    );
}

/// A Python prelude for probes: `attempt(name, fn)` prints `name errno` (0 when it worked).
pub const PROBE_PRELUDE: &str = r#"
import ctypes, errno, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, fn):
    try:
        r = fn()
        if isinstance(r, int) and r == -1:
            print(name, ctypes.get_errno())
        else:
            print(name, 0)
    except OSError as e:
        print(name, e.errno)
"#;

/// A fork bomb that prints how many children it made and the errno that stopped it.
pub const FORK_BOMB: &str = r#"
import os, time
n = 0
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as e:
    print(n, e.errno)
"#;

/// A Python program that leaves a daemon with 1 GiB to unmap (and no copy of its stdio), then
/// runs `then`: once the program exits, the sandbox's teardown takes tens of ms, which shows
/// whether Brig answered before it. Needs a memory limit above 1 GiB.
pub fn python_leaving_a_heavy_daemon(then: &str) -> String {
    format!(
        "import os, sys, time\n\
         r, w = os.pipe()\n\
         if os.fork() == 0:\n    \
             os.setsid()\n    \
             for fd in (0, 1, 2):\n        os.close(fd)\n    \
             b = b'x' * (1 << 30)\n    \
             os.write(w, b'x')\n    \
             time.sleep(60)\n\
         os.read(r, 1)\n\
         {then}\n"
    )
}

/// Brig's cgroup parent `parent` in every place a run's cgroups can be: each v1 controller
/// Brig uses, and the v2 tree.
pub fn cgroup_parents(parent: &str) -> Vec<PathBuf> {
    ["memory", "pids", "cpu", "cpuacct", ""]
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c).join(parent))
        .collect()
}

/// The cgroups under `parents` whose name starts with `prefix`.
pub fn cgroups_named(parents: &[PathBuf], prefix: &str) -> std::collections::BTreeSet<PathBuf> {
    parents
        .iter()
        .filter_map(|parent| std::fs::read_dir(parent).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}

/// The children of the host process `pid` (of its main thread), from `/proc`; none if it is
/// gone.
pub fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|child| child.parse().unwrap())
        .collect()
}

/// The cgroup directories that the sandbox started by the Brig process `brig` (a host pid) is
/// in, with their inode: read from the host's `/proc` for its children (the sandbox's init).
/// A run's group may be one of its own (`run-<pid>-...`) or a spare it took (`spare-<k>`), so
/// a test finds it here rather than by name. Only groups under Brig's parent `brig`.
pub fn sandbox_cgroups(brig: u32) -> Vec<(PathBuf, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut groups = Vec::new();
    for child in children_of(brig) {
        let cgroups = std::fs::read_to_string(format!("/proc/{child}/cgroup")).unwrap_or_default();
        for line in cgroups.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if !path.starts_with("/brig/") {
                continue;
            }
            // v1: the controller's hierarchy; v2: the unified one (hybrid, or the root).
            let mounts: Vec<PathBuf> = if controllers.is_empty() {
                vec!["/sys/fs/cgroup/unified".into(), "/sys/fs/cgroup".into()]
            } else {
                vec![Path::new("/sys/fs/cgroup").join(controllers)]
            };
            for mount in mounts {
                let dir = mount.join(&path[1..]);
                if let Ok(meta) = std::fs::metadata(&dir) {
                    groups.push((dir, meta.ino()));
                    break;
                }
            }
        }
    }
    groups
}

/// Whether every group of `groups` (from [`sandbox_cgroups`]) is gone: removed, or removed
/// and made again as a new spare (another directory, so another inode).
pub fn cgroups_removed(groups: &[(PathBuf, u64)]) -> bool {
    use std::os::unix::fs::MetadataExt;
    groups
        .iter()
        .all(|(dir, ino)| std::fs::metadata(dir).map_or(true, |m| m.ino() != *ino))
}
