//! One-shot Python runs forked from warm zygotes: the fast path of a one-shot `python` run.
//!
//! A [`ZygotePool`] keeps up to `size` zygote sandboxes of one template (see `brig_jail::zygote`
//! for the isolation, and `kernel/brig_zygote.py` for the fork side), each a helper process
//! serving runs one at a time. A run takes an idle zygote (or starts one while fewer than `size`
//! exist), which forks a fresh sandbox for it — its own cgroup, namespaces, tmpfs work dir,
//! Landlock domain and seccomp filter — runs the program as `python3 -u main.py` would, and
//! destroys it. Nothing of a run is visible to the next: each gets new mounts and a new fork of
//! an interpreter that never saw the run's code.
//!
//! The request is built exactly as for a fresh sandbox (`Engine::spec`: the language's
//! environment, limits and files), so the two paths give the same result for the same program.

use brig_core::{RunResult, Tier};
use brig_jail::report::StepReport;
use brig_jail::spec::SessionSpec;
use brig_jail::zygote::{ZygoteRun, ZygoteSpec, tag};
use brig_jail::{JailConfig, Report, SandboxSpec, SpecFile, Stdin};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::execute::{Engine, EngineError, RunRequest, invalid, to_result};
use crate::session::sandbox::{read_frame, spawn_helper};
use crate::session::templates::Template;

/// The zygote, placed in its sandbox at `/etc/brig/brig_zygote.py`.
pub const ZYGOTE_SOURCE: &str = include_str!("../kernel/brig_zygote.py");

/// Why a zygote run did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ZygoteError {
    /// The request is the caller's mistake.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The zygote could not be started, or died.
    #[error("zygote: {0}")]
    Gone(String),
    /// The run could not be set up (the zygote lives on).
    #[error("zygote run: {0}")]
    Setup(String),
}

/// One live zygote: its helper and the socket to it.
struct Zygote {
    stream: UnixStream,
    helper: tokio::process::Child,
}

impl Zygote {
    async fn start(config: &JailConfig, spec: &SandboxSpec) -> Result<Zygote, ZygoteError> {
        let (helper, mut stream) = spawn_helper(config, spec)
            .await
            .map_err(ZygoteError::Gone)?;
        match read_frame(&mut stream).await {
            Ok(Some((tag::READY, _))) => Ok(Zygote { stream, helper }),
            Ok(Some((_, body))) => Err(ZygoteError::Gone(
                String::from_utf8_lossy(&body).into_owned(),
            )),
            Ok(None) => Err(ZygoteError::Gone(
                "the helper exited before the zygote was ready".into(),
            )),
            Err(e) => Err(gone("read from the helper", &e)),
        }
    }

    /// One run. `Err(Gone)` means this zygote is unusable.
    async fn run(
        &mut self,
        run: &ZygoteRun,
        cancel: Option<&CancellationToken>,
    ) -> Result<StepReport, ZygoteError> {
        let body = serde_json::to_vec(run).map_err(|e| gone("encode", &e))?;
        self.stream
            .write_all(&brig_jail::frame::encode(tag::RUN, &[&body]))
            .await
            .map_err(|e| gone("send the run", &e))?;
        let never = CancellationToken::new();
        let cancel = cancel.unwrap_or(&never);
        let mut cancelled = false;
        let (mut reader, mut writer) = self.stream.split();
        loop {
            // The frame is read to its end whatever happens meanwhile: a cancel is sent
            // beside the read, never in place of it (a read cut short would lose bytes).
            let read = read_frame(&mut reader);
            tokio::pin!(read);
            let frame = loop {
                tokio::select! {
                    frame = &mut read => break frame,
                    () = cancel.cancelled(), if !cancelled => {
                        cancelled = true;
                        writer
                            .write_all(&brig_jail::frame::encode(tag::CANCEL, &[]))
                            .await
                            .map_err(|e| gone("cancel", &e))?;
                    }
                }
            };
            match frame {
                // Output as it comes: collected in the report, which is what one-shot callers
                // use.
                Ok(Some((b'O', _))) => {}
                Ok(Some((tag::REPORT, body))) => {
                    return serde_json::from_slice(&body).map_err(|e| gone("bad report", &e));
                }
                Ok(Some((tag::FAILED, body))) => {
                    return Err(ZygoteError::Setup(
                        String::from_utf8_lossy(&body).into_owned(),
                    ));
                }
                Ok(Some((_, body))) => {
                    return Err(ZygoteError::Gone(
                        String::from_utf8_lossy(&body).into_owned(),
                    ));
                }
                Ok(None) => return Err(ZygoteError::Gone("the helper exited".into())),
                Err(e) => return Err(gone("read from the helper", &e)),
            }
        }
    }
}

/// A zygote failure: `what failed: why`.
fn gone(what: &str, e: &dyn std::fmt::Display) -> ZygoteError {
    ZygoteError::Gone(format!("{what}: {e}"))
}

/// Counters of a pool.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ZygoteStats {
    /// The template.
    pub template: String,
    /// Zygotes started.
    pub started: u64,
    /// Runs served.
    pub runs: u64,
    /// Zygotes lost (died, or failed to start).
    pub lost: u64,
}

/// The zygote sandbox's own limits. Its cgroup holds only the zygote and its init (each run
/// has its own), so memory is the template's; its rlimits are the ceiling of every run's (a
/// process may lower its hard limits, not raise them), so they are as high as a run may ask.
/// Runs asking for more than this process may grant get a fresh sandbox instead (the server
/// falls back when a zygote refuses a run).
fn zygote_limits(template: &Template) -> brig_core::Limits {
    let ceiling = |name: &str, wanted: u64| hard_limit(name).map_or(wanted, |h| h.min(wanted));
    brig_core::Limits {
        pids: ceiling("Max processes", 65_536).saturating_sub(1).max(1) as u32,
        cpu_time_ms: 24 * 3_600_000,
        // Below 65536: a run's process closes every fd up to there (`brig_zygote.lock_down`).
        open_files: ceiling("Max open files", 1 << 16) as u32,
        file_size_bytes: ceiling("Max file size", u64::MAX),
        stack_bytes: ceiling("Max stack size", 1 << 30),
        ..template.limits
    }
}

/// This process's hard limit `name` (as `/proc/self/limits` names it); `None` when unlimited
/// or unreadable.
fn hard_limit(name: &str) -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with(name))?;
    // `Max open files            1024                 20000                files`
    line[name.len()..].split_whitespace().nth(1)?.parse().ok()
}

/// Up to `size` zygotes of one Python template.
pub struct ZygotePool {
    jail: JailConfig,
    spec: SandboxSpec,
    idle: Mutex<Vec<Zygote>>,
    slots: Semaphore,
    stats: Mutex<ZygoteStats>,
}

impl ZygotePool {
    /// A pool of up to `size` zygotes for `template` (a Python template: its preloads are
    /// imported once per zygote). Zygotes start on first use, or with [`ZygotePool::warm`].
    pub fn new(
        engine: &Engine,
        jail: JailConfig,
        template: &Template,
        size: usize,
    ) -> Result<ZygotePool, EngineError> {
        let python = engine
            .languages
            .find("python")
            .ok_or_else(|| EngineError::UnknownLanguage("python".into()))?;
        if let Some(reason) = &python.unavailable {
            return Err(EngineError::Unavailable {
                id: "python".into(),
                reason: reason.clone(),
            });
        }
        // The interpreter the `python` language runs (languages.toml, or the operator's file).
        let interpreter = python
            .language
            .run
            .first()
            .cloned()
            .unwrap_or_else(|| "/usr/bin/python3".into());
        let mut argv: Vec<String> = vec![interpreter];
        argv.extend(["-I", "-u", "/etc/brig/brig_zygote.py"].map(String::from));
        let preload = template.preload.unwrap_or(&[]);
        if !preload.is_empty() {
            argv.push("--preload".into());
            argv.push(preload.join(","));
        }
        let mut env: BTreeMap<String, String> = python.env.clone();
        // One thread: a zygote forks, and a fork of a multi-threaded process may inherit a
        // lock held by a thread that does not exist in the child.
        for var in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
            env.insert(var.into(), "1".into());
        }
        let mut spec = SandboxSpec::command(&["/bin/true"]);
        spec.steps.clear();
        spec.session = Some(SessionSpec {
            limits: zygote_limits(template),
            kernel: None,
            zygote: Some(ZygoteSpec {
                argv,
                env,
                ready_timeout_ms: 60_000,
                run_limits: python.limits,
            }),
        });
        spec.system_files.push(SpecFile {
            path: "brig_zygote.py".into(),
            content: ZYGOTE_SOURCE.as_bytes().to_vec(),
            mode: 0o644,
        });
        spec.ro_mounts = python
            .language
            .ro_mounts
            .iter()
            .filter(|p| std::path::Path::new(p).exists())
            .map(Into::into)
            .collect();
        spec.validate().map_err(invalid)?;
        Ok(ZygotePool {
            jail,
            spec,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(size.max(1)),
            stats: Mutex::new(ZygoteStats {
                template: template.name.into(),
                ..ZygoteStats::default()
            }),
        })
    }

    /// Starts zygotes until `count` are idle (or the pool is full).
    pub async fn warm(&self, count: usize) -> Result<(), ZygoteError> {
        let mut permits = Vec::new();
        while self.idle.lock().expect("idle").len() + permits.len() < count {
            let Ok(permit) = self.slots.try_acquire() else {
                break;
            };
            permits.push(permit);
        }
        let started = permits.len();
        let mut zygotes = Vec::new();
        for _ in 0..started {
            zygotes.push(self.start().await?);
        }
        self.idle.lock().expect("idle").extend(zygotes);
        drop(permits);
        Ok(())
    }

    async fn start(&self) -> Result<Zygote, ZygoteError> {
        let zygote = Zygote::start(&self.jail, &self.spec).await;
        let mut stats = self.stats.lock().expect("stats");
        match &zygote {
            Ok(_) => stats.started += 1,
            Err(_) => stats.lost += 1,
        }
        zygote
    }

    /// The helper pids of the idle zygotes (for tests that simulate a crash).
    pub fn helper_pids(&self) -> Vec<u32> {
        self.idle
            .lock()
            .expect("idle")
            .iter()
            .filter_map(|z| z.helper.id())
            .collect()
    }

    /// The pool's counters.
    pub fn stats(&self) -> ZygoteStats {
        self.stats.lock().expect("stats").clone()
    }

    /// Whether `request` can take this path: Python, the namespace tier, no network.
    pub fn accepts(engine: &Engine, request: &RunRequest) -> bool {
        let python = engine
            .languages
            .find(&request.language)
            .is_some_and(|l| l.language.id == "python" && l.unavailable.is_none());
        python
            && !request.network
            && matches!(
                request.tier,
                brig_core::TierChoice::Namespace | brig_core::TierChoice::Auto
            )
            && std::str::from_utf8(&request.source).is_ok()
    }

    /// Runs a Python `request` in a fresh sandbox forked from a zygote.
    pub async fn run(
        &self,
        engine: &Engine,
        request: &RunRequest,
        cancel: Option<&CancellationToken>,
    ) -> Result<RunResult, ZygoteError> {
        let language = engine
            .languages
            .find(&request.language)
            .ok_or_else(|| EngineError::UnknownLanguage(request.language.clone()))?;
        let spec = engine.spec(request, &language)?;
        let step = spec.steps.last().expect("a spec has a run step");
        let source = &language.language.source_file;
        let stdin = match &request.stdin {
            Stdin::Null => Vec::new(),
            Stdin::Bytes(bytes) => bytes.clone(),
            Stdin::File(path) => std::fs::read(path)
                .map_err(|e| EngineError::Invalid(format!("stdin {}: {e}", path.display())))?,
        };
        let run = ZygoteRun {
            limits: step.limits,
            code: String::from_utf8(request.source.clone())
                .map_err(|_| EngineError::Invalid("the program is not UTF-8".into()))?,
            args: request.args.clone(),
            env: step.env.clone(),
            files: spec
                .files
                .iter()
                .filter(|f| &f.path != source)
                .cloned()
                .collect(),
            stdin,
        };
        let _permit = self.slots.acquire().await.expect("never closed");
        let taken = self.idle.lock().expect("idle").pop();
        let mut zygote = match taken {
            Some(zygote) => zygote,
            None => self.start().await?,
        };
        let outcome = zygote.run(&run, cancel).await;
        match &outcome {
            Err(ZygoteError::Gone(_)) => self.stats.lock().expect("stats").lost += 1,
            _ => self.idle.lock().expect("idle").push(zygote),
        }
        self.stats.lock().expect("stats").runs += 1;
        let report = outcome?;
        Ok(to_result(
            Report {
                steps: vec![report],
            },
            &language,
            Tier::Namespace,
        ))
    }
}
