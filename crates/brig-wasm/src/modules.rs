//! Compiled, linked, ready-to-instantiate modules (`InstancePre`), memoized per process.
//!
//! A user's module is keyed by the SHA-256 of its bytes (binary or WAT text): the second run of
//! the same module skips compiling *and* linking, so a run is a pool-slot claim and a call
//! (`examples/fast_instantiation.rs`). Compiling goes through wasmtime's on-disk cache (see
//! `crate::engine`), so a new process pays a cache read, not a compile. The memo holds at most
//! [`MAX_MEMOIZED`] modules and forgets the oldest first.
//!
//! Every problem found here is the program's, not Brig's — bytes that are neither Wasm nor WAT,
//! an import WASI does not provide, no `_start` — and ends the run as `compile_error`.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use wasmtime::{Engine, ExternType, InstancePre, Linker, Module};

/// How many distinct user modules stay ready in memory.
const MAX_MEMOIZED: usize = 128;

/// Why a module cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Not a valid WebAssembly binary or WAT text, or it fails validation.
    #[error("invalid WebAssembly module: {0:#}")]
    Invalid(wasmtime::Error),
    /// It imports something this tier does not provide (only WASI preview 1 is linked).
    #[error("cannot link the module (only wasi_snapshot_preview1 is available): {0:#}")]
    Link(wasmtime::Error),
    /// It has no `_start` function taking and returning nothing (not a WASI command).
    #[error("the module exports no `_start: func()` (a WASI command module is expected)")]
    NoStart,
}

/// Compiles `bytes` (Wasm or WAT) and links it against `linker`.
pub(crate) fn prepare<T: 'static>(
    engine: &Engine,
    linker: &Linker<T>,
    bytes: &[u8],
) -> Result<InstancePre<T>, ModuleError> {
    let module = Module::new(engine, bytes).map_err(ModuleError::Invalid)?;
    match module.get_export("_start") {
        Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => {}
        _ => return Err(ModuleError::NoStart),
    }
    linker.instantiate_pre(&module).map_err(ModuleError::Link)
}

/// The per-process memo of prepared user modules.
pub(crate) struct Memo<T: 'static> {
    inner: Mutex<Entries<T>>,
}

struct Entries<T: 'static> {
    by_hash: HashMap<[u8; 32], InstancePre<T>>,
    order: VecDeque<[u8; 32]>,
}

impl<T: 'static> Memo<T> {
    /// An empty memo.
    pub fn new() -> Memo<T> {
        Memo {
            inner: Mutex::new(Entries {
                by_hash: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The prepared module for `bytes`, compiling and linking it on first use. The lock is not
    /// held while compiling: two first runs of one module may both compile (the disk cache
    /// makes the second cheap), and other modules are not held up.
    pub fn get_or_prepare(
        &self,
        engine: &Engine,
        linker: &Linker<T>,
        bytes: &[u8],
    ) -> Result<InstancePre<T>, ModuleError> {
        let key: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(pre) = self.lock().by_hash.get(&key) {
            return Ok(pre.clone());
        }
        let pre = prepare(engine, linker, bytes)?;
        let mut entries = self.lock();
        if !entries.by_hash.contains_key(&key) {
            if entries.order.len() >= MAX_MEMOIZED
                && let Some(oldest) = entries.order.pop_front()
            {
                entries.by_hash.remove(&oldest);
            }
            entries.order.push_back(key);
            entries.by_hash.insert(key, pre.clone());
        }
        Ok(pre)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<T>> {
        // Each update leaves the map consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
