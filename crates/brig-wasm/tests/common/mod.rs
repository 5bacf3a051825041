//! Helpers shared by the integration tests: one tier per test binary, and loud skips.

#![allow(dead_code)] // each test binary uses a different subset

use brig_wasm::{WasmConfig, WasmJob, WasmProgram, WasmTier};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The compiled-module cache the tests share: under the target dir, so CPython is compiled once
/// per checkout, not once per test run.
pub fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("brig-wasm-test-cache")
}

/// One tier for the whole test binary (tests run in parallel on it, as the server would).
pub fn tier() -> &'static WasmTier {
    static TIER: OnceLock<WasmTier> = OnceLock::new();
    TIER.get_or_init(|| {
        WasmTier::new(WasmConfig {
            cache_dir: shared_cache_dir(),
            ..WasmConfig::default()
        })
        .expect("the wasm tier starts")
    })
}

/// Whether python.wasm is installed. When it is not, prints the SKIP line and returns false —
/// or panics when `CI` or `BRIG_TEST_STRICT` is set, so a missing install never passes there.
pub fn python_installed() -> bool {
    match brig_wasm::python_available(tier().config()) {
        Ok(_) => true,
        Err(why) => {
            let strict = ["CI", "BRIG_TEST_STRICT"]
                .iter()
                .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
            assert!(!strict, "python.wasm is required here: {why}");
            println!("SKIP: python.wasm not installed (run scripts/install-python-wasm.sh)");
            false
        }
    }
}

/// A job for a WAT (or Wasm) module.
pub fn module(text: &str) -> WasmJob {
    WasmJob::new(WasmProgram::Module {
        bytes: text.as_bytes().to_vec(),
    })
}

/// A job for Python source.
pub fn python(source: &str) -> WasmJob {
    WasmJob::new(WasmProgram::Python {
        source: source.to_string(),
    })
}

/// A WAT module whose `_start` writes `text` to stdout with `fd_write`.
pub fn hello_wat(text: &str) -> String {
    let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = text.len()
    )
}
