//! The Python SDK (`sdk/python`) against a real `brig serve`: its own `unittest` suite, run
//! with Debian's `/usr/bin/python3` and `BRIG_BINARY` pointing at this build. Skipped loudly
//! when httpx is missing or when not root (sandboxes need root) — except under `CI`, where
//! either is a failure.

use std::path::PathBuf;
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3";

/// Skips with a message, or fails under CI.
fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("SDK tests cannot run in CI: {reason}");
    }
    eprintln!("SKIP: {reason}");
}

/// Whether this process runs as root, from the `Uid:` line of `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

#[test]
fn python_sdk_suite_against_a_live_server() {
    let has_httpx = Command::new(PYTHON)
        .args(["-c", "import httpx"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_httpx {
        return skip("httpx missing (apt-get install python3-httpx)");
    }
    if !is_root() {
        return skip("not root; sandboxes need root");
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sdk = repo.join("sdk/python");
    let out = Command::new(PYTHON)
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(sdk.join("tests"))
        .env("BRIG_BINARY", env!("CARGO_BIN_EXE_brig"))
        .env("PYTHONPATH", sdk.join("src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&sdk)
        .output()
        .expect("run python3 -m unittest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python SDK suite failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // unittest reports on stderr; make sure it ran something.
    assert!(
        stderr.contains("\nOK") && !stderr.contains("Ran 0 tests"),
        "unexpected unittest report:\n{stderr}"
    );
    eprintln!("{stderr}");
}
