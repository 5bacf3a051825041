//! Brig's WebAssembly tier: programs compiled to WebAssembly, and Python on a CPython WASI
//! build, run on wasmtime behind the same limits and verdicts as the other tiers.
//!
//! The shape follows wasmtime's own examples (`fast_instantiation.rs`, `epochs.rs`) and its WASI
//! crate: one [`WasmTier`] per process holds one `Engine` with the pooling allocator and an
//! epoch ticker; each module is compiled once (through wasmtime's on-disk cache) and linked once
//! into an `InstancePre`; every run gets a fresh `Store` with its own limits and a WASI context
//! that grants nothing but its work dir.
//!
//! ```no_run
//! use brig_wasm::{WasmConfig, WasmJob, WasmProgram, WasmTier};
//! let tier = WasmTier::new(WasmConfig::default())?;
//! let job = WasmJob::new(WasmProgram::Python { source: "print(1)".into() });
//! let result = tier.run(&job);
//! println!("{:?}: {}", result.status, result.stdout);
//! # Ok::<(), brig_wasm::WasmError>(())
//! ```
//!
//! Modules, in the order a run meets them: `tier` (the API below), `workdir` (the host side
//! of `/work`), `modules` (compile, link, memoize), `python` (CPython specifics), `run` (one
//! run: store, limits, WASI, the facts of its end), `limiter` (the memory cap), `capture`
//! (bounded output); `engine` (the engine, its disk cache, the epoch ticker) and [`config`]
//! (paths and defaults) set it all up. The README maps every Brig limit to its mechanism.

mod capture;
pub mod config;
mod engine;
mod limiter;
mod modules;
mod python;
mod run;
mod tier;
mod workdir;

pub use config::{WasmConfig, python_available};
pub use engine::EngineError;
pub use modules::ModuleError;
pub use python::PythonError;
pub use run::{RunError, TRAP_EXIT_CODE};
pub use tier::{CacheStats, GUEST_WORK_DIR, WasmError, WasmJob, WasmProgram, WasmTier};
pub use workdir::WorkDirError;
