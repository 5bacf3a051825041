//! The compiled-module cache on disk: a second process loads instead of compiling, and a changed
//! module is compiled afresh. Each "process" is this test binary re-run on the ignored
//! `cache_probe` test, which reports the cache's hit and miss counters.

mod common;

use brig_core::Status;
use brig_wasm::{WasmConfig, WasmJob, WasmProgram, WasmTier};
use common::{hello_wat, python_installed, shared_cache_dir};
use std::path::Path;
use std::process::Command;

const PROBE_CACHE: &str = "BRIG_WASM_PROBE_CACHE";
const PROBE_PROGRAM: &str = "BRIG_WASM_PROBE_PROGRAM";

/// Run by the tests below in a child process: one run with the cache in `$BRIG_WASM_PROBE_CACHE`
/// of `$BRIG_WASM_PROBE_PROGRAM` (`python:` or `wat:` and the source), then the counters.
#[test]
#[ignore = "a helper the cache tests run in a child process"]
fn cache_probe() {
    let cache_dir = std::env::var_os(PROBE_CACHE).expect("run by the cache tests");
    let program = std::env::var(PROBE_PROGRAM).unwrap();
    let program = match program.split_once(':') {
        Some(("python", source)) => WasmProgram::Python {
            source: source.into(),
        },
        Some(("wat", text)) => WasmProgram::Module {
            bytes: text.as_bytes().to_vec(),
        },
        _ => panic!("bad {PROBE_PROGRAM}"),
    };
    let tier = WasmTier::new(WasmConfig {
        cache_dir: cache_dir.into(),
        ..WasmConfig::default()
    })
    .unwrap();
    let r = tier.run(&WasmJob::new(program));
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let stats = tier.cache_stats();
    println!(
        "PROBE hits={} misses={} stdout={:?}",
        stats.hits, stats.misses, r.stdout
    );
}

/// Runs the probe in a new process; returns (hits, misses, stdout).
fn probe(cache_dir: &Path, program: &str) -> (usize, usize, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "cache_probe",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_CACHE, cache_dir)
        .env(PROBE_PROGRAM, program)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("PROBE ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no PROBE line in:\n{stdout}"));
    let field = |name: &str| {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(name))
            .unwrap()
            .to_string()
    };
    let printed = line.split_once("stdout=").unwrap().1.to_string();
    (
        field("hits=").parse().unwrap(),
        field("misses=").parse().unwrap(),
        printed,
    )
}

fn cached_artifacts(cache_dir: &Path) -> usize {
    fn walk(dir: &Path, count: &mut usize) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, count);
            } else if path.extension().is_none_or(|e| e != "stats") {
                *count += 1;
            }
        }
    }
    let mut count = 0;
    walk(&cache_dir.join("wasmtime/modules"), &mut count);
    count
}

#[test]
fn a_second_process_loads_the_compiled_module_and_a_change_recompiles() {
    let cache = tempfile::tempdir().unwrap();
    let one = format!("wat:{}", hello_wat("one\n"));
    let two = format!("wat:{}", hello_wat("two\n"));

    assert_eq!(
        probe(cache.path(), &one),
        (0, 1, "\"one\\n\"".into()),
        "first: compiled"
    );
    assert_eq!(cached_artifacts(cache.path()), 1);
    assert_eq!(
        probe(cache.path(), &one),
        (1, 0, "\"one\\n\"".into()),
        "second: loaded"
    );
    assert_eq!(cached_artifacts(cache.path()), 1, "nothing new written");

    assert_eq!(
        probe(cache.path(), &two),
        (0, 1, "\"two\\n\"".into()),
        "changed: compiled"
    );
    assert_eq!(cached_artifacts(cache.path()), 2);
    assert_eq!(
        probe(cache.path(), &one),
        (1, 0, "\"one\\n\"".into()),
        "the old one stays"
    );
}

#[test]
fn python_is_compiled_once_per_cache() {
    if !python_installed() {
        return;
    }
    let program = "python:print('cached')";
    // The first process may compile (a fresh checkout) or load; the second must load.
    let (_, _, first) = probe(&shared_cache_dir(), program);
    assert_eq!(first, "\"cached\\n\"");
    assert_eq!(
        probe(&shared_cache_dir(), program),
        (1, 0, "\"cached\\n\"".into())
    );
}
