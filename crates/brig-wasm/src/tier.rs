//! [`WasmTier`]: the engine-facing API. One per process; [`WasmTier::run`] takes a job and
//! always returns a [`RunResult`] (Brig's own failures as `internal_error`).

use crate::config::WasmConfig;
use crate::engine::{self, EngineError, Ticker};
use crate::modules::{Memo, ModuleError};
use crate::python::{self, PythonError};
use crate::run::{self, Outcome, Preopen, RunSpec, RunState};
use crate::workdir::WorkDir;
use brig_core::{Limits, RunResult, Status, Tier, TimeoutKind};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use wasmtime::{Engine, InstancePre, Linker};
use wasmtime_wasi::FsPerms;

/// The work dir's name inside the guest (as on the namespace tier).
pub const GUEST_WORK_DIR: &str = "/work";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmProgram {
    /// A WASI command module, binary (`.wasm`) or text (`.wat`), run by its `_start`.
    Module {
        /// The module's bytes.
        bytes: Vec<u8>,
    },
    /// Python source, run by CPython on WASI as `/work/main.py`.
    Python {
        /// The program's source.
        source: String,
    },
}

/// One run's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmJob {
    /// The program.
    pub program: WasmProgram,
    /// Arguments after the program name (`argv[1..]`).
    pub args: Vec<String>,
    /// The whole environment the guest sees (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Standard input.
    pub stdin: Vec<u8>,
    /// Files written into the work dir before the run: relative path, contents. A path that is
    /// absolute or leaves the work dir is refused (as `internal_error`: callers validate
    /// user input first).
    pub files: Vec<(String, Vec<u8>)>,
    /// The host directory to use as the work dir, kept after the run (files the program wrote
    /// stay there); `None` for a fresh temporary directory removed after the run.
    pub work_dir: Option<PathBuf>,
    /// The run's limits (`memory_bytes`: linear memory; `cpu_time_ms`: fuel; see the README).
    pub limits: Limits,
}

impl WasmJob {
    /// A job with no args, env, stdin or files and the default limits.
    pub fn new(program: WasmProgram) -> WasmJob {
        WasmJob {
            program,
            args: Vec::new(),
            env: Vec::new(),
            stdin: Vec::new(),
            files: Vec::new(),
            work_dir: None,
            limits: Limits::default(),
        }
    }
}

/// Why the tier could not start.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The engine, its cache or its ticker could not be set up.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// WASI could not be added to the linker.
    #[error("linking WASI preview 1: {0:#}")]
    Linker(wasmtime::Error),
}

/// How often the compiled-module cache on disk was hit and missed by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Modules loaded from the cache instead of compiled.
    pub hits: usize,
    /// Modules compiled and written to the cache.
    pub misses: usize,
}

/// The WebAssembly tier: one wasmtime engine, its epoch ticker, and the prepared modules.
pub struct WasmTier {
    engine: Engine,
    cache: wasmtime::Cache,
    linker: Linker<RunState>,
    modules: Memo<RunState>,
    python: Mutex<Option<InstancePre<RunState>>>,
    config: WasmConfig,
    _ticker: Ticker,
}

impl std::fmt::Debug for WasmTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmTier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WasmTier {
    /// Sets up the engine (pooling allocator, fuel, epochs, the disk cache in
    /// `config.cache_dir`) and starts the epoch ticker, which stops when the tier is dropped.
    /// Python is loaded on its first run.
    pub fn new(config: WasmConfig) -> Result<WasmTier, WasmError> {
        let (engine, cache) = engine::build(&config.cache_dir, config.max_concurrent_runs)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut RunState| &mut s.wasi)
            .map_err(WasmError::Linker)?;
        let ticker = Ticker::start(&engine)?;
        Ok(WasmTier {
            engine,
            cache,
            linker,
            modules: Memo::new(),
            python: Mutex::new(None),
            config,
            _ticker: ticker,
        })
    }

    /// The configuration the tier was built with.
    pub fn config(&self) -> &WasmConfig {
        &self.config
    }

    /// Hits and misses of the on-disk compiled-module cache in this process.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.cache.cache_hits(),
            misses: self.cache.cache_misses(),
        }
    }

    /// Compiles (or loads from the cache) and links Python now, so the first Python run does
    /// not pay for it. Optional.
    pub fn warm_python(&self) -> Result<(), PythonError> {
        self.python_pre().map(drop)
    }

    /// Runs one job to the end. Never panics: a failure of Brig's own is an `internal_error`
    /// result with a `message`; everything the program does maps to the usual statuses.
    pub fn run(&self, job: &WasmJob) -> RunResult {
        match self.try_run(job) {
            Ok(result) => result,
            Err(message) => RunResult::internal_error(Tier::Wasm, message),
        }
    }

    fn try_run(&self, job: &WasmJob) -> Result<RunResult, String> {
        let work = WorkDir::new(job.work_dir.as_deref()).map_err(|e| e.to_string())?;
        for (name, contents) in &job.files {
            work.write(name, contents).map_err(|e| e.to_string())?;
        }
        let (pre, argv, env, is_python) = match &job.program {
            WasmProgram::Module { bytes } => {
                match self
                    .modules
                    .get_or_prepare(&self.engine, &self.linker, bytes)
                {
                    Ok(pre) => {
                        let mut argv = vec!["main.wasm".to_string()];
                        argv.extend(job.args.iter().cloned());
                        (pre, argv, job.env.clone(), false)
                    }
                    Err(e) => return Ok(compile_error(&e)),
                }
            }
            WasmProgram::Python { source } => {
                let pre = self.python_pre().map_err(|e| e.to_string())?;
                work.write(python::MAIN_FILE, source.as_bytes())
                    .map_err(|e| e.to_string())?;
                let argv = python::argv(GUEST_WORK_DIR, &job.args);
                (pre, argv, python::env(&job.env), true)
            }
        };
        let spec = RunSpec {
            argv,
            env: &env,
            stdin: &job.stdin,
            // The work dir twice: as `/work`, and as `.` so that relative paths land in it
            // (WASIp1 has no cwd; wasi-libc starts at `/`, which the `.` preopen serves).
            preopens: [GUEST_WORK_DIR, "."]
                .into_iter()
                .map(|guest| Preopen {
                    host: work.path().to_path_buf(),
                    guest: guest.to_string(),
                    perms: FsPerms::ReadWrite,
                })
                .collect(),
            limits: &job.limits,
        };

        let outcome = run::execute(&self.engine, &pre, &spec).map_err(|e| e.to_string())?;
        let mut result = to_result(outcome, &job.limits);
        if is_python
            && result.status == Status::RuntimeError
            && python::is_syntax_error(result.exit_code, &result.stderr)
        {
            result.status = Status::CompileError;
        }
        Ok(result)
    }

    fn python_pre(&self) -> Result<InstancePre<RunState>, PythonError> {
        let mut slot = self.python.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pre) = slot.as_ref() {
            return Ok(pre.clone());
        }
        let path = self
            .config
            .python_wasm
            .as_deref()
            .ok_or(PythonError::NotConfigured)?;
        // Loading under the lock: concurrent first Python runs wait for one compile.
        let pre = python::load(&self.engine, &self.linker, path)?;
        *slot = Some(pre.clone());
        Ok(pre)
    }
}

fn compile_error(e: &ModuleError) -> RunResult {
    let mut result = RunResult::internal_error(Tier::Wasm, "the module does not compile");
    result.status = Status::CompileError;
    result.stderr = format!("{e}\n");
    result.exit_code = None;
    result
}

fn to_result(o: Outcome, limits: &Limits) -> RunResult {
    let (status, limit) = o.termination.status();
    let mut stderr = String::from_utf8_lossy(&o.captured.stderr).into_owned();
    if let Some(trap) = &o.trap {
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str(trap);
        stderr.push('\n');
    }
    let message = match (status, limit) {
        (Status::Timeout, Some(TimeoutKind::Wall)) => Some(format!(
            "wall-clock limit of {} ms reached",
            limits.timeout_ms
        )),
        (Status::Timeout, _) => Some(format!(
            "CPU-time limit of {} ms reached (fuel exhausted)",
            limits.cpu_time_ms
        )),
        (Status::MemoryLimit, _) => Some(format!(
            "memory limit of {} bytes reached (a linear memory growth was denied)",
            limits.memory_bytes
        )),
        (Status::OutputLimit, _) => Some(format!(
            "output limit of {} bytes reached; output kept up to it",
            limits.output_bytes
        )),
        _ => None,
    };
    RunResult {
        status,
        limit,
        // A run Brig stopped did not exit; a trap reports 134 like `wasmtime run`.
        exit_code: match o.termination.killed_for {
            Some(_) => None,
            None => o.termination.exit_code(),
        },
        signal: None,
        stdout: String::from_utf8_lossy(&o.captured.stdout).into_owned(),
        stderr,
        wall_ms: o.wall.as_millis() as u64,
        cpu_ms: o.cpu.as_millis() as u64,
        memory_peak_bytes: o.memory_peak,
        tier: Tier::Wasm,
        compile: None,
        message,
        ..RunResult::internal_error(Tier::Wasm, "")
    }
}
