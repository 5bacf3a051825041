//! The one wasmtime `Engine` of the process, and the epoch ticker that gives runs a wall clock.
//!
//! Following wasmtime's `examples/fast_instantiation.rs` and `examples/epochs.rs`:
//! - **Pooling allocator**: instance, memory, table and fiber-stack slots are reserved once;
//!   instantiating is then a slot claim plus a copy-on-write memory image, not a dozen mmaps.
//!   The pool has `max_concurrent_runs` slots (more concurrent runs fail, retryably).
//! - **Fuel** is the CPU budget (deterministic, counted per Wasm operator) and **epochs** the
//!   wall deadline (a host thread bumps the epoch every [`TICK`]; each run's epoch callback
//!   compares the clock with its deadline). Fuel costs a few percent of speed; epochs almost
//!   nothing.
//! - **Compiled-module cache**: wasmtime's own cache (`Config::cache`), pointed at
//!   `<cache_dir>/wasmtime`. It is keyed by a SHA-256 of the module bytes *and* the engine's
//!   compiler version and settings, so a changed module or a different wasmtime never loads a
//!   stale artifact, and it is safe Rust. The alternative — `Engine::precompile_module` plus
//!   `Module::deserialize_file`, which mmaps the artifact — is `unsafe` (a tampered file is
//!   executed as machine code), and this workspace forbids `unsafe`. The price: a cache hit
//!   hashes the module, reads the zstd-compressed artifact and decompresses it instead of
//!   mapping it — ~1 ms for a small module, ~100 ms for CPython (26 MB of Wasm, a 12 MB
//!   artifact) against ~1 ms by mmap. Within a process, `crate::modules` keeps the ready
//!   `InstancePre`, so this happens once per module per process.

use crate::limiter::{MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy};

/// How often the epoch advances: the wall deadline's resolution.
pub(crate) const TICK: Duration = Duration::from_millis(2);

/// Native stack the guest may use (wasmtime's default is 512 KiB; CPython's deep C recursion —
/// `re`, `json`, a recursive `repr` — wants more before Python's own `RecursionError` fires).
const MAX_WASM_STACK: usize = 2 << 20;
/// The fiber stack each async call runs on: the Wasm stack plus room for host calls.
const ASYNC_STACK: usize = MAX_WASM_STACK + (1 << 20);
/// The largest linear memory any run may have (wasm32's whole address space); each run's own
/// cap is `limits.memory_bytes`, enforced by `crate::limiter`.
const MAX_MEMORY_SIZE: usize = 4 << 30;

/// Why the engine could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The compiled-module cache directory could not be used.
    #[error("compiled-module cache at {dir}: {source:#}")]
    Cache {
        /// The cache directory.
        dir: String,
        /// What wasmtime said.
        source: wasmtime::Error,
    },
    /// wasmtime rejected the configuration (e.g. the pool could not reserve address space).
    #[error("creating the wasmtime engine: {0:#}")]
    Engine(wasmtime::Error),
    /// The epoch ticker thread could not be started.
    #[error("starting the epoch ticker thread: {0}")]
    Ticker(std::io::Error),
}

/// Builds the process's engine with a pool of `slots` concurrent instances and the on-disk
/// cache in `cache_dir`; returns the cache too, for its hit and miss counters.
pub(crate) fn build(cache_dir: &Path, slots: u32) -> Result<(Engine, Cache), EngineError> {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK);

    let slots = slots.max(1);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_stacks(slots)
        .total_memories(slots * MAX_MEMORIES as u32)
        .total_tables(slots * MAX_TABLES as u32)
        .max_memories_per_module(MAX_MEMORIES as u32)
        .max_tables_per_module(MAX_TABLES as u32)
        .table_elements(MAX_TABLE_ELEMENTS)
        .max_memory_size(MAX_MEMORY_SIZE)
        .total_component_instances(0);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    let dir = std::path::absolute(cache_dir.join("wasmtime")).map_err(|e| EngineError::Cache {
        dir: cache_dir.display().to_string(),
        source: e.into(),
    })?;
    let mut cache_config = CacheConfig::new();
    cache_config.with_directory(&dir);
    let cache = Cache::new(cache_config).map_err(|source| EngineError::Cache {
        dir: dir.display().to_string(),
        source,
    })?;
    config.cache(Some(cache.clone()));

    let engine = Engine::new(&config).map_err(EngineError::Engine)?;
    Ok((engine, cache))
}

/// The thread that advances the engine's epoch every [`TICK`]; stops when dropped.
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts ticking `engine`'s epoch.
    pub fn start(engine: &Engine) -> Result<Ticker, EngineError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let engine = engine.clone();
        let thread = std::thread::Builder::new()
            .name("brig-wasm-epoch".into())
            .spawn(move || {
                // `recv_timeout` doubles as the sleep; the sender's drop wakes it at once.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    engine.increment_epoch();
                }
            })
            .map_err(EngineError::Ticker)?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
