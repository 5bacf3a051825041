//! Start-up costs of the wasm tier, side by side in one run (`bench/wasm.sh`, or
//! `cargo bench -p brig-wasm --bench wasm`):
//! - a trivial WAT module, instantiate + run, in a warm process (the `InstancePre` is ready);
//! - the same in a new process with the disk cache warm (engine set-up + cache load + run);
//! - Python `print(1)`: cold (empty cache: compile CPython), cached (new process, warm disk
//!   cache), and warm (in-process, the server's steady state);
//! - native `python3 -c 'print(1)'`, and `$BRIG_BIN run --tier namespace` when `BRIG_BIN` names a
//!   brig binary.
//!
//! Set `BENCH_QUICK=1` for fewer iterations.

use brig_core::Status;
use brig_wasm::{WasmConfig, WasmJob, WasmProgram, WasmTier};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const HELLO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hi\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let n = |full: usize| if quick { full.div_ceil(10) } else { full };
    let scratch = tempfile::tempdir().unwrap();
    let warm_cache = scratch.path().join("warm-cache");
    let python = brig_wasm::python_available(&WasmConfig::default()).ok();

    println!(
        "{:<64} {:>5} {:>9} {:>9} {:>9}",
        "case", "runs", "p50", "p90", "p99"
    );
    let tier = new_tier(&warm_cache);
    let hello = WasmJob::new(WasmProgram::Module {
        bytes: HELLO.into(),
    });
    expect_ok(&tier.run(&hello));
    report(
        "wasm: trivial module, instantiate + run (warm process)",
        sample(n(2000), || expect_ok(&tier.run(&hello))),
    );
    report(
        "wasm: trivial module, new process (engine + cache load + run)",
        sample(n(50), || {
            let t = new_tier(&warm_cache);
            expect_ok(&t.run(&hello));
            assert_eq!(t.cache_stats().hits, 1, "loaded from the disk cache");
        }),
    );

    match &python {
        None => println!("python.wasm not installed: Python cases skipped"),
        Some(_) => {
            let print1 = WasmJob::new(WasmProgram::Python {
                source: "print(1)".into(),
            });
            report(
                "python.wasm print(1): cold (empty cache, compile CPython)",
                sample(n(2).max(1), || {
                    let cold = tempfile::tempdir().unwrap();
                    let t = new_tier(cold.path());
                    expect_ok(&t.run(&print1));
                    assert_eq!(t.cache_stats().misses, 1);
                }),
            );
            expect_ok(&tier.run(&print1)); // fill the warm cache
            report(
                "python.wasm print(1): new process, cached compiled module",
                sample(n(20), || {
                    let t = new_tier(&warm_cache);
                    expect_ok(&t.run(&print1));
                    assert_eq!(t.cache_stats().hits, 1);
                }),
            );
            report(
                "python.wasm print(1): warm process (InstancePre ready)",
                sample(n(50), || expect_ok(&tier.run(&print1))),
            );
        }
    }

    // The system interpreter (as FINDINGS.md measured it), not a version-manager shim on PATH.
    let python3 = std::env::var("BENCH_PYTHON3").unwrap_or_else(|_| {
        let system = "/usr/bin/python3";
        let found = if Path::new(system).exists() {
            system
        } else {
            "python3"
        };
        found.to_string()
    });
    report(
        &format!("native: {python3} -c 'print(1)'"),
        sample(n(50), || {
            run_ok(Command::new(&python3).args(["-c", "print(1)"]))
        }),
    );
    if let Some(brig) = std::env::var_os("BRIG_BIN") {
        let file = scratch.path().join("print1.py");
        std::fs::write(&file, "print(1)\n").unwrap();
        report(
            "namespace tier: brig run --tier namespace print1.py",
            sample(n(50), || {
                run_ok(
                    Command::new(&brig)
                        .args(["run", "--tier", "namespace"])
                        .arg(&file),
                )
            }),
        );
    } else {
        println!("(set BRIG_BIN=path/to/brig to add the namespace tier)");
    }
}

fn new_tier(cache_dir: &Path) -> WasmTier {
    WasmTier::new(WasmConfig {
        cache_dir: cache_dir.to_path_buf(),
        ..WasmConfig::default()
    })
    .expect("the wasm tier starts")
}

fn expect_ok(r: &brig_core::RunResult) {
    assert_eq!(r.status, Status::Ok, "{r:?}");
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{out:?}");
}

fn sample(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "{name:<64} {:>5} {:>9} {:>9} {:>9}",
        times.len(),
        fmt(pct(50)),
        fmt(pct(90)),
        fmt(pct(99))
    );
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}
