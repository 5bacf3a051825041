//! WASI command modules in WAT: output, exit codes, traps, bad modules, and the filesystem
//! boundary.

mod common;

use brig_core::Status;
use common::{hello_wat, module, tier};

#[test]
fn wat_hello_prints_and_exits_zero() {
    let r = tier().run(&module(&hello_wat("hello, wasm\n")));
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.stdout, "hello, wasm\n");
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.tier, brig_core::Tier::Wasm);
    assert_eq!(r.memory_peak_bytes, 64 * 1024, "one page");
}

#[test]
fn a_binary_module_runs_too() {
    let wasm = wat::parse_str(hello_wat("binary\n")).unwrap();
    let r = tier().run(&brig_wasm::WasmJob::new(brig_wasm::WasmProgram::Module {
        bytes: wasm,
    }));
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (Status::Ok, "binary\n"),
        "{r:?}"
    );
}

#[test]
fn runs_from_inside_an_async_runtime() {
    // The server calls the tier from tokio; `run` must not try to nest a runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = rt.block_on(async { tier().run(&module(&hello_wat("from async\n"))) });
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (Status::Ok, "from async\n"),
        "{r:?}"
    );
}

#[test]
fn proc_exit_sets_the_exit_code() {
    let r = tier().run(&module(
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 7))))"#,
    ));
    assert_eq!(r.status, Status::RuntimeError, "{r:?}");
    assert_eq!(r.exit_code, Some(7));
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn a_trap_is_a_runtime_error_with_the_message_in_stderr() {
    let r = tier().run(&module(
        r#"(module
  (memory (export "memory") 1)
  (func $divide (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
  (func (export "_start") (drop (call $divide (i32.const 0)))))"#,
    ));
    assert_eq!(r.status, Status::RuntimeError, "{r:?}");
    assert_eq!(r.exit_code, Some(brig_wasm::TRAP_EXIT_CODE));
    assert!(
        r.stderr.contains("wasm trap: integer divide by zero"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("divide"),
        "the backtrace names the function: {}",
        r.stderr
    );
}

#[test]
fn invalid_modules_are_compile_errors() {
    let cases = [
        ("(module (func $f (result i32)))", "invalid WebAssembly"),
        ("not wasm at all", "invalid WebAssembly"),
        (
            r#"(module (import "env" "launch_missiles" (func)) (func (export "_start")))"#,
            "cannot link",
        ),
        ("(module (func (export \"main\")))", "_start"),
    ];
    for (text, expected) in cases {
        let r = tier().run(&module(text));
        assert_eq!(r.status, Status::CompileError, "{text}: {r:?}");
        assert!(r.stderr.contains(expected), "{text}: {}", r.stderr);
    }
}

/// A module that opens `path` relative to directory fd `dir` and exits with the errno.
fn open_probe(dir: u32, path: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{path}")
  (func (export "_start")
    (call $exit (call $open (i32.const {dir}) (i32.const 0) (i32.const 64) (i32.const {len})
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))))"#,
        len = path.len()
    )
}

#[test]
fn only_the_work_dir_is_reachable() {
    const EBADF: i32 = 8;
    const ENOENT: i32 = 44;
    const EPERM: i32 = 63;
    const ENOTCAPABLE: i32 = 76;
    let mut job = module(&open_probe(3, "input.txt"));
    job.files = vec![("input.txt".into(), b"data".to_vec())];
    let r = tier().run(&job);
    assert_eq!(
        (r.status, r.exit_code),
        (Status::Ok, Some(0)),
        "fd 3 is the work dir: {r:?}"
    );

    for (dir, path, allowed) in [
        (3, "../../../etc/passwd", &[EPERM, ENOTCAPABLE][..]),
        (3, "/etc/passwd", &[EPERM, ENOTCAPABLE, ENOENT][..]),
        (4, "../etc/passwd", &[EPERM, ENOTCAPABLE][..]),
        (5, "etc/passwd", &[EBADF][..]), // fds 3 and 4 are the only preopens
        (9, "etc/passwd", &[EBADF][..]),
    ] {
        let r = tier().run(&module(&open_probe(dir, path)));
        let code = r.exit_code.unwrap_or(-1);
        assert!(
            allowed.contains(&code),
            "open({dir}, {path}) gave errno {code}: {r:?}"
        );
    }
}
