//! Every limit ends the run with its own verdict: wall and CPU time, memory, output.

mod common;

use brig_core::{Status, TimeoutKind};
use common::{module, python, python_installed, tier};
use std::time::Instant;

const SPIN: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (local i32)
    (loop $l (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br $l))))"#;

#[test]
fn an_infinite_loop_hits_the_wall_deadline() {
    let mut job = module(SPIN);
    job.limits.timeout_ms = 300;
    let started = Instant::now();
    let r = tier().run(&job);
    assert_eq!(
        (r.status, r.limit),
        (Status::Timeout, Some(TimeoutKind::Wall)),
        "{r:?}"
    );
    assert!((300..1000).contains(&r.wall_ms), "wall_ms {}", r.wall_ms);
    assert!(started.elapsed().as_millis() < 2000);
    assert_eq!(r.exit_code, None);
    assert!(r.message.unwrap().contains("300 ms"));
}

#[test]
fn an_infinite_loop_spends_the_cpu_budget() {
    let mut job = module(SPIN);
    job.limits.cpu_time_ms = 200;
    job.limits.timeout_ms = 20_000;
    let r = tier().run(&job);
    assert_eq!(
        (r.status, r.limit),
        (Status::Timeout, Some(TimeoutKind::Cpu)),
        "{r:?}"
    );
    // Fuel is calibrated to CPU time (run::FUEL_PER_CPU_MS); allow for its spread per workload.
    assert!(
        (60..800).contains(&r.cpu_ms),
        "cpu_ms {} for a 200 ms budget",
        r.cpu_ms
    );
}

#[test]
fn memory_growth_past_the_limit_is_memory_limit() {
    // Grows one page at a time; when a growth is refused, traps (as a failed malloc would).
    let mut job = module(
        r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $l
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
      (br $l))))"#,
    );
    job.limits.memory_bytes = 8 << 20;
    let r = tier().run(&job);
    assert_eq!(r.status, Status::MemoryLimit, "{r:?}");
    assert_eq!(r.memory_peak_bytes, 8 << 20);
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
}

#[test]
fn an_initial_memory_over_the_limit_is_memory_limit() {
    let mut job = module(r#"(module (memory (export "memory") 1000) (func (export "_start")))"#);
    job.limits.memory_bytes = 16 << 20; // 1000 pages = 62.5 MiB
    let r = tier().run(&job);
    assert_eq!(r.status, Status::MemoryLimit, "{r:?}");
}

#[test]
fn an_output_flood_is_output_limit_with_the_prefix_kept() {
    // Writes "0123456789" forever.
    let mut job = module(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "0123456789")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 10))
    (loop $l
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $l))))"#,
    );
    job.limits.output_bytes = 10_005;
    job.limits.timeout_ms = 5_000;
    let r = tier().run(&job);
    assert_eq!(r.status, Status::OutputLimit, "{r:?}");
    assert_eq!(r.stdout.len(), 10_005);
    assert!(r.stdout.starts_with("01234567890123456789"));
    assert!(r.stdout.ends_with("0123456789012345678901234"));
    assert!(
        r.wall_ms < 1000,
        "stopped at once, not at the deadline: {} ms",
        r.wall_ms
    );
}

#[test]
fn python_output_flood_counts_stdout_and_stderr_together() {
    if !python_installed() {
        return;
    }
    let mut job = python(
        "import sys\nsys.stderr.write('E' * 100)\nwhile True:\n    print('line of output')\n",
    );
    job.limits.output_bytes = 1000;
    let r = tier().run(&job);
    assert_eq!(r.status, Status::OutputLimit, "{r:?}");
    assert_eq!(r.stderr, "E".repeat(100));
    assert_eq!(r.stdout.len(), 900);
    assert!(r.stdout.starts_with("line of output\nline of output\n"));
}

#[test]
fn python_busy_loop_hits_cpu_and_sleep_hits_wall() {
    if !python_installed() {
        return;
    }
    let mut job = python("while True:\n    pass\n");
    job.limits.cpu_time_ms = 300;
    job.limits.timeout_ms = 20_000;
    let r = tier().run(&job);
    assert_eq!(
        (r.status, r.limit),
        (Status::Timeout, Some(TimeoutKind::Cpu)),
        "{r:?}"
    );

    // A guest asleep in the host (poll_oneoff) runs no Wasm to interrupt: the async timeout
    // around the call ends it.
    let mut job = python("import time\nprint('going to sleep', flush=True)\ntime.sleep(60)\n");
    job.limits.timeout_ms = 400;
    let r = tier().run(&job);
    assert_eq!(
        (r.status, r.limit),
        (Status::Timeout, Some(TimeoutKind::Wall)),
        "{r:?}"
    );
    assert!(r.wall_ms < 1500, "{}", r.wall_ms);
    assert!(r.cpu_ms < 300, "sleeping costs no CPU: {}", r.cpu_ms);
    assert_eq!(
        r.stdout, "going to sleep\n",
        "output before the timeout is kept"
    );
}

#[test]
fn python_memory_error_is_memory_limit() {
    if !python_installed() {
        return;
    }
    let mut job = python("x = bytearray(200 * 1024 * 1024)\n");
    job.limits.memory_bytes = 64 << 20;
    let r = tier().run(&job);
    assert_eq!(r.status, Status::MemoryLimit, "{r:?}");
    assert!(r.stderr.contains("MemoryError"), "{}", r.stderr);
    assert!(r.memory_peak_bytes <= 64 << 20);
    // The same program within its limit is fine, and its peak shows the allocation.
    let mut job = python("x = bytearray(50 * 1024 * 1024)\n");
    job.limits.memory_bytes = 128 << 20;
    let r = tier().run(&job);
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(r.memory_peak_bytes >= 50 << 20, "{}", r.memory_peak_bytes);
}

/// Keeps `FUEL_PER_CPU_MS` honest: a busy loop given N ms of CPU budget ends with a `cpu`
/// timeout after CPU time of the order of N ms. Fuel counts work, not time (a busy host gives
/// the same verdict), so how much CPU the budget buys depends on the host's speed as well as
/// the workload: on the reference VM (5.8-6.2 M operators per CPU ms) a loop uses 480-520 ms
/// here, and on a faster day of the same VM kind (2026-12-03) the WAT loop used 240-263 ms and
/// the Python loop 385-427 ms. The bounds, a fifth to three times the budget, catch a wrong
/// unit or scale, not the host's speed (the spread is documented in `run.rs` and the crate's
/// README).
#[test]
fn cpu_budget_matches_cpu_time() {
    let mut job = module(SPIN);
    job.limits.cpu_time_ms = 500;
    job.limits.timeout_ms = 30_000;
    let r = tier().run(&job);
    assert_eq!(r.limit, Some(TimeoutKind::Cpu), "{r:?}");
    assert!(
        (100..1500).contains(&r.cpu_ms),
        "WAT loop: {} ms of CPU for 500 ms",
        r.cpu_ms
    );
    if !python_installed() {
        return;
    }
    let mut job = python("x = 0\nwhile True:\n    x = (x * 31 + 7) % 1000003\n");
    job.limits.cpu_time_ms = 500;
    job.limits.timeout_ms = 30_000;
    let r = tier().run(&job);
    assert_eq!(r.limit, Some(TimeoutKind::Cpu), "{r:?}");
    assert!(
        (100..1500).contains(&r.cpu_ms),
        "Python loop: {} ms of CPU for 500 ms",
        r.cpu_ms
    );
}
