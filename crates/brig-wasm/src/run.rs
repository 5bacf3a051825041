//! One run of a prepared module: a fresh `Store` with its limits, WASI that grants only what
//! the run spec lists, `_start`, and the facts of how it ended.
//!
//! Each limit has one mechanism (the mapping the README documents):
//! - wall time: the epoch callback compares the clock with the deadline at every tick and
//!   interrupts the guest; a guest blocked in the host (`poll_oneoff`, i.e. `sleep`) is cut off
//!   by a `tokio::time::timeout` around the whole call. That is why calls are async: a sync
//!   call cannot be interrupted while the host sleeps on the guest's behalf.
//! - CPU time: fuel, [`FUEL_PER_CPU_MS`] units per millisecond of budget; an empty tank traps.
//! - memory: `crate::limiter::MemoryCap` (sum of linear memories).
//! - output: `crate::capture::Capture` (stdout + stderr, one budget).
//!
//! WASI grants nothing by default (wasmtime-wasi's `WasiCtxBuilder` starts empty): no inherited
//! env, args or stdio, no sockets (WASIp1 has none unless preopened, and none are), only the
//! directories in [`RunSpec::preopens`]. Paths are resolved by cap-std inside each preopen, so
//! `..` and symlinks cannot leave it.

use crate::capture::{Capture, Captured, Which};
use crate::limiter::MemoryCap;
use brig_core::{Exit, KillReason, Limits, Termination};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmtime::{Engine, InstancePre, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// Fuel per millisecond of CPU budget: the calibration constant. wasmtime charges one unit per
/// Wasm operator; Cranelift code on the reference machine (a 2 vCPU VM, see FINDINGS.md) retires
/// 5.8–6.2 million operators per CPU millisecond, both in a bare WAT loop and in CPython's
/// interpreter (a `while` loop doing arithmetic, `json` round trips); CPython's own start-up is
/// ~250 million (~45 ms). So a budget of N ms is N × 6 million fuel, and a busy loop ends
/// within a few percent of N ms of CPU. `tests/limits.rs::cpu_budget_matches_cpu_time` keeps it
/// honest. Fuel counts work, not time: a faster machine gets through the same budget sooner (a
/// faster day of the same VM kind, 2026-12-03: 11.4–12.5 M per CPU ms in the WAT loop, 7–7.8 M
/// in the Python loop).
pub(crate) const FUEL_PER_CPU_MS: u64 = 6_000_000;

/// The exit code a trap reports, as `wasmtime run` does on Unix: 128 + SIGABRT.
pub const TRAP_EXIT_CODE: i32 = 134;

/// Why Brig could not run the module (never the program's fault).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A directory could not be opened for the guest.
    #[error("preopening {path} as {guest}: {source:#}")]
    Preopen {
        /// The host directory.
        path: String,
        /// Its name in the guest.
        guest: String,
        /// What wasmtime-wasi said.
        source: wasmtime::Error,
    },
    /// The fuel budget could not be set.
    #[error("setting the fuel budget: {0:#}")]
    Fuel(wasmtime::Error),
    /// Every pooled instance slot is in use.
    #[error("no free instance slot, too many wasm runs at once (retry): {0:#}")]
    PoolExhausted(wasmtime::Error),
    /// The async runtime that drives the call could not start.
    #[error("starting the runtime for the call: {0}")]
    Runtime(std::io::Error),
    /// The helper thread that ran the call panicked.
    #[error("the run's thread panicked")]
    Panicked,
}

/// A host directory the guest may use, and under which name.
#[derive(Debug, Clone)]
pub(crate) struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub perms: FsPerms,
}

/// Everything one run is given.
#[derive(Debug)]
pub(crate) struct RunSpec<'a> {
    /// `argv`, including `argv[0]`.
    pub argv: Vec<String>,
    pub env: &'a [(String, String)],
    pub stdin: &'a [u8],
    pub preopens: Vec<Preopen>,
    pub limits: &'a Limits,
}

/// The facts of how a run ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub termination: Termination,
    /// The trap's message and Wasm backtrace, when the guest trapped for its own reasons.
    pub trap: Option<String>,
    pub captured: Captured,
    pub wall: Duration,
    /// CPU time of the thread that ran the guest (Wasm and the WASI calls it made).
    pub cpu: Duration,
    pub memory_peak: u64,
}

/// The `T` of every run's `Store`.
pub(crate) struct RunState {
    pub wasi: WasiP1Ctx,
    memory: MemoryCap,
    deadline: Instant,
    wall_expired: bool,
}

/// Runs `pre`'s `_start` under `spec`'s limits. Blocks the calling thread; safe to call from
/// inside a tokio runtime (the call then runs on a helper thread).
pub(crate) fn execute(
    engine: &Engine,
    pre: &InstancePre<RunState>,
    spec: &RunSpec<'_>,
) -> Result<Outcome, RunError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        // `block_on` inside a runtime panics; give the call a thread of its own.
        return std::thread::scope(|s| {
            s.spawn(|| execute_here(engine, pre, spec))
                .join()
                .map_err(|_| RunError::Panicked)?
        });
    }
    execute_here(engine, pre, spec)
}

fn execute_here(
    engine: &Engine,
    pre: &InstancePre<RunState>,
    spec: &RunSpec<'_>,
) -> Result<Outcome, RunError> {
    let limits = spec.limits;
    let capture = Capture::new(limits.output_bytes);
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdin(MemoryInputPipe::new(spec.stdin.to_vec()))
        .stdout(capture.stream(Which::Stdout))
        .stderr(capture.stream(Which::Stderr))
        .args(&spec.argv)
        .envs(spec.env)
        // File I/O on this thread instead of tokio's blocking pool: the runtime is ours alone.
        .allow_blocking_current_thread(true);
    for p in &spec.preopens {
        wasi.preopened_dir(&p.host, &p.guest, p.perms)
            .map_err(|source| RunError::Preopen {
                path: p.host.display().to_string(),
                guest: p.guest.clone(),
                source,
            })?;
    }

    let wall_limit = Duration::from_millis(limits.timeout_ms);
    let start = Instant::now();
    let mut store = Store::new(
        engine,
        RunState {
            wasi: wasi.build_p1(),
            memory: MemoryCap::new(limits.memory_bytes),
            deadline: start + wall_limit,
            wall_expired: false,
        },
    );
    store.limiter(|s| &mut s.memory);
    let fuel = limits.cpu_time_ms.saturating_mul(FUEL_PER_CPU_MS);
    store.set_fuel(fuel).map_err(RunError::Fuel)?;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        if Instant::now() >= state.deadline {
            state.wall_expired = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(RunError::Runtime)?;
    let call = async {
        let instance = pre.instantiate_async(&mut store).await?;
        let start_fn = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start_fn.call_async(&mut store, ()).await
    };
    let cpu_start = thread_cpu_time();
    let result = runtime.block_on(async { tokio::time::timeout(wall_limit, call).await });
    let cpu = thread_cpu_time().saturating_sub(cpu_start);
    let wall = start.elapsed();

    let state = store.data();
    let wall_expired = state.wall_expired || result.is_err();
    let denied = state.memory.denied();
    let memory_peak = state.memory.peak();
    let captured = capture.take();

    let (exit, trap) = match result {
        Err(_elapsed) => (Exit::Code(TRAP_EXIT_CODE), None),
        Ok(Ok(())) => (Exit::Code(0), None),
        Ok(Err(e)) => {
            if let Some(code) = e.downcast_ref::<I32Exit>() {
                (Exit::Code(code.0), None)
            } else if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                return Err(RunError::PoolExhausted(e));
            } else {
                (Exit::Code(TRAP_EXIT_CODE), Some(e))
            }
        }
    };
    let trap_kind = trap
        .as_ref()
        .and_then(|e| e.downcast_ref::<Trap>().copied());
    let killed_for = if captured.overflowed {
        Some(KillReason::OutputLimit)
    } else if wall_expired {
        Some(KillReason::WallTimeout)
    } else if trap_kind == Some(Trap::OutOfFuel) {
        Some(KillReason::CpuTimeout)
    } else {
        None
    };
    let trap = match killed_for {
        // Brig stopped the guest: the verdict says why; a trap message would only confuse.
        Some(_) => None,
        None => trap.map(|e| describe_trap(&e)),
    };
    Ok(Outcome {
        termination: Termination {
            exit,
            killed_for,
            oom_killed: denied,
        },
        trap,
        captured,
        wall,
        cpu,
        memory_peak,
    })
}

/// CPU time of the calling thread. The guest runs on this thread only (a current-thread
/// runtime; async calls switch fibers, not threads), so the difference is the run's CPU time —
/// exact, where fuel read back after a trap can be stale (compiled code keeps its fuel count in
/// a register and saves it only on calls out).
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// `wasm trap: <reason>` and the Wasm backtrace, for the end of `stderr`.
fn describe_trap(e: &wasmtime::Error) -> String {
    let mut text = match e.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(), // "wasm trap: ..."
        None => format!("error: {}", e.root_cause()),
    };
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        let bt = bt.to_string();
        let frames = bt.split_once('\n').map_or("", |(_header, frames)| frames);
        if !frames.trim().is_empty() {
            text.push_str("\nwasm backtrace:\n");
            text.push_str(frames.trim_end());
        }
    }
    text
}
