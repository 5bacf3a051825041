//! Helpers shared by the fixture tests: fixtures and `RunResult`s.

#![allow(dead_code)]

use brig_core::{RunResult, Status, Tier};

/// A fixture file's JSON.
pub fn fixture(path: &str) -> serde_json::Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A fixture file's bytes.
pub fn fixture_bytes(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A result with this status, exit code and signal, and some output.
pub fn result(status: Status, exit_code: Option<i32>, signal: Option<i32>) -> RunResult {
    let mut r = RunResult::internal_error(Tier::Namespace, "x");
    r.status = status;
    r.exit_code = exit_code;
    r.signal = signal;
    r.message = None;
    r.stdout = "out\n".into();
    r.stderr = "err\n".into();
    r.wall_ms = 154;
    r.cpu_ms = 12;
    r.memory_peak_bytes = 8 << 20;
    r
}
