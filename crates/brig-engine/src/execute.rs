//! One-shot execution: request → spec → jail → `RunResult`.

use brig_core::{LimitOverrides, Limits, RunResult, Status, Tier, TierChoice};
use brig_jail::{JailConfig, OutputSink, Report, SandboxSpec, SpecFile, Stdin, Step, StepReport};
use std::path::Path;

use crate::languages::{Languages, Resolved};

/// A request to run a program once.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Language id or alias.
    pub language: String,
    /// The program's source.
    pub source: Vec<u8>,
    /// Other files placed beside it in the work dir.
    pub files: Vec<SpecFile>,
    /// Arguments for the program.
    pub args: Vec<String>,
    /// Its stdin.
    pub stdin: Stdin,
    /// Limits over the language's defaults.
    pub limits: LimitOverrides,
    /// Limits of the compile step over the language's compile defaults (compiled languages).
    pub compile_limits: LimitOverrides,
    /// Allow network access (host network, AF_INET sockets).
    pub network: bool,
    /// Which tier.
    pub tier: TierChoice,
}

/// How the engine starts sandboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// In this process (it must be single-threaded and exist for this run: `brig run`).
    InProcess,
    /// Through a re-exec'd helper (any caller).
    Helper,
}

/// A request the engine refuses; the caller's mistake, not Brig's.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No such language.
    #[error("unknown language `{0}` (see `brig languages`)")]
    UnknownLanguage(String),
    /// The language's toolchain is missing here.
    #[error("language `{id}` is unavailable on this host: {reason}")]
    Unavailable {
        /// The language.
        id: String,
        /// Why.
        reason: String,
    },
    /// Invalid limits or files.
    #[error("{0}")]
    Invalid(String),
    /// The tier asked for cannot run here.
    #[error("tier `{tier}` is not usable on this host: {reason}")]
    TierUnavailable {
        /// The tier.
        tier: &'static str,
        /// Why.
        reason: String,
    },
}

/// The engine: languages plus the jail's host settings.
pub struct Engine {
    /// The languages.
    pub languages: Languages,
    /// The jail's host settings.
    pub jail: JailConfig,
    /// How sandboxes are started.
    pub launch: Launch,
    /// The wasm tier, built on first use (one wasmtime engine per process).
    pub wasm: std::sync::OnceLock<Result<brig_wasm::WasmTier, String>>,
}

/// File extensions of WebAssembly modules (binary and text).
pub const WASM_EXTENSIONS: &[&str] = &["wasm", "wat"];

/// Every problem of a validation, as one `Invalid` error.
pub(crate) fn invalid<E: std::fmt::Display>(errors: Vec<E>) -> EngineError {
    EngineError::Invalid(
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    )
}

fn substitute(argv: &[String], source: &str, limits: &Limits) -> Vec<String> {
    argv.iter()
        .map(|a| {
            a.replace("{source}", source).replace(
                "{memory_mib}",
                &(limits.memory_bytes >> 20).max(16).to_string(),
            )
        })
        .collect()
}

impl Engine {
    /// Builds the sandbox spec for `request` in `language`.
    pub fn spec(
        &self,
        request: &RunRequest,
        language: &Resolved,
    ) -> Result<SandboxSpec, EngineError> {
        let lang = &language.language;
        let limits = language.limits.with(&request.limits);
        limits.validate().map_err(invalid)?;
        let mut files = vec![SpecFile {
            path: lang.source_file.clone(),
            content: request.source.clone(),
            mode: 0o644,
        }];
        for file in &request.files {
            if file.path == lang.source_file {
                return Err(EngineError::Invalid(format!(
                    "file `{}` would overwrite the program's source",
                    file.path
                )));
            }
            files.push(file.clone());
        }
        let mut steps = Vec::new();
        if let Some(compile) = &lang.compile {
            // The compile step may use more than the program, never less disk.
            let mut compile_limits = language.compile_limits.with(&request.compile_limits);
            compile_limits.disk_bytes = compile_limits.disk_bytes.max(limits.disk_bytes);
            steps.push(Step {
                name: "compile".into(),
                argv: substitute(compile, &lang.source_file, &compile_limits),
                env: language.env.clone(),
                cwd: brig_jail::spec::WORK_DIR.into(),
                limits: compile_limits,
                stdin: false,
            });
        }
        let mut argv = substitute(&lang.run, &lang.source_file, &limits);
        argv.extend(request.args.iter().cloned());
        steps.push(Step {
            name: "run".into(),
            argv,
            env: language.env.clone(),
            cwd: brig_jail::spec::WORK_DIR.into(),
            limits,
            stdin: true,
        });
        let spec = SandboxSpec {
            files,
            ro_mounts: lang
                .ro_mounts
                .iter()
                .filter(|p| Path::new(p).exists())
                .map(Into::into)
                .collect(),
            network: request.network,
            hostname: "brig".into(),
            isolation: brig_jail::spec::Isolation::Namespace,
            session: None,
            system_files: Vec::new(),
            steps,
        };
        spec.validate().map_err(invalid)?;
        Ok(spec)
    }

    /// The wasm tier, created on first use.
    pub fn wasm_tier(&self) -> Result<&brig_wasm::WasmTier, EngineError> {
        self.wasm
            .get_or_init(|| {
                brig_wasm::WasmTier::new(brig_wasm::WasmConfig::default())
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|reason| EngineError::TierUnavailable {
                tier: "wasm",
                reason: reason.clone(),
            })
    }

    /// Runs a request on the wasm tier: language `wasm` (a `.wasm` or `.wat` module) or
    /// `python` (CPython compiled to WebAssembly).
    pub fn run_wasm(&self, request: &RunRequest) -> Result<RunResult, EngineError> {
        let program = match request.language.as_str() {
            "wasm" | "wat" => brig_wasm::WasmProgram::Module {
                bytes: request.source.clone(),
            },
            name if self
                .languages
                .find(name)
                .is_some_and(|l| l.language.id == "python") =>
            {
                if let Err(reason) = brig_wasm::python_available(&brig_wasm::WasmConfig::default())
                {
                    return Err(EngineError::Unavailable {
                        id: "python (wasm tier)".into(),
                        reason,
                    });
                }
                brig_wasm::WasmProgram::Python {
                    source: String::from_utf8_lossy(&request.source).into_owned(),
                }
            }
            other => {
                return Err(EngineError::Invalid(format!(
                    "the wasm tier runs WebAssembly modules (.wasm, .wat) and Python, not `{other}`"
                )));
            }
        };
        let limits = Limits::default().with(&request.limits);
        limits.validate().map_err(invalid)?;
        let stdin = match &request.stdin {
            Stdin::Null => Vec::new(),
            Stdin::Bytes(bytes) => bytes.clone(),
            Stdin::File(path) => std::fs::read(path)
                .map_err(|e| EngineError::Invalid(format!("stdin {}: {e}", path.display())))?,
        };
        let mut job = brig_wasm::WasmJob::new(program);
        job.args = request.args.clone();
        job.stdin = stdin;
        job.limits = limits;
        job.files = request
            .files
            .iter()
            .map(|f| (f.path.clone(), f.content.clone()))
            .collect();
        Ok(self.wasm_tier()?.run(&job))
    }

    /// Runs a request. User mistakes are `Err`; everything that ran (or that Brig failed to
    /// run) is a `RunResult`.
    pub fn run(
        &self,
        request: &RunRequest,
        sink: &mut dyn OutputSink,
    ) -> Result<RunResult, EngineError> {
        let language = self
            .languages
            .find(&request.language)
            .ok_or_else(|| EngineError::UnknownLanguage(request.language.clone()))?;
        self.run_language(&language, request, sink)
    }

    /// Runs a request in a language the caller already resolved (resolving runs the toolchain
    /// command, e.g. `rustc --print sysroot`, so it is done once per run).
    pub fn run_language(
        &self,
        language: &Resolved,
        request: &RunRequest,
        sink: &mut dyn OutputSink,
    ) -> Result<RunResult, EngineError> {
        if let Some(reason) = &language.unavailable {
            return Err(EngineError::Unavailable {
                id: language.language.id.clone(),
                reason: reason.clone(),
            });
        }
        let tier = match request.tier {
            TierChoice::Namespace => Tier::Namespace,
            TierChoice::Process => Tier::Process,
            TierChoice::Auto => {
                if brig_jail::probe::namespace_tier_usable(&self.jail).is_ok() {
                    Tier::Namespace
                } else {
                    Tier::Process
                }
            }
            TierChoice::Wasm => return self.run_wasm(request),
        };
        let mut spec = self.spec(request, language)?;
        if tier == Tier::Process {
            spec.isolation = brig_jail::spec::Isolation::Process;
        }
        let outcome = match self.launch {
            Launch::InProcess => match request.stdin.open() {
                Ok(stdin) => brig_jail::run_here(&self.jail, &spec, stdin, None, sink),
                Err(e) => return Err(EngineError::Invalid(format!("stdin: {e}"))),
            },
            Launch::Helper => {
                brig_jail::run_via_helper(&self.jail, &spec, &request.stdin, Some(sink))
            }
        };
        Ok(match outcome {
            Ok(report) => to_result(report, language, tier),
            Err(e) => RunResult::internal_error(tier, e.to_string()),
        })
    }
}

fn step_result(step: &StepReport, tier: Tier) -> RunResult {
    let (status, limit) = step.termination.status();
    RunResult {
        status,
        limit,
        exit_code: step.termination.exit_code(),
        signal: step.termination.signal(),
        stdout: String::from_utf8_lossy(&step.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&step.stderr).into_owned(),
        wall_ms: step.wall_ms,
        cpu_ms: step.cpu_ms,
        memory_peak_bytes: step.memory_peak_bytes,
        tier,
        compile: None,
        message: None,
        result: None,
        error: None,
        outputs: Vec::new(),
        kernel_restarted: false,
    }
}

/// The jail's report as a result: the run step's facts, the compile step nested, and a parse
/// failure of an interpreted language reported as `compile_error`.
pub fn to_result(report: Report, language: &Resolved, tier: Tier) -> RunResult {
    let mut steps = report.steps.iter();
    let compiled = language.language.compile.is_some();
    let compile = if compiled {
        steps.next().map(|s| step_result(s, tier))
    } else {
        None
    };
    let Some(run) = steps.next() else {
        // The compile step failed: the result is the compile step's, as `compile_error` when
        // the compiler itself reported the failure.
        let compile = compile.unwrap_or_else(|| RunResult::internal_error(tier, "no step ran"));
        let mut result = compile.clone();
        if result.status == Status::RuntimeError {
            result.status = Status::CompileError;
        }
        result.message = Some(format!("compile step ended `{}`", compile.status.as_str()));
        result.stdout.clear();
        result.stderr.clear();
        result.compile = Some(Box::new(compile));
        return result;
    };
    let mut result = step_result(run, tier);
    if let (Status::RuntimeError, Some(rule), Some(code)) = (
        result.status,
        &language.language.syntax_error,
        result.exit_code,
    ) && rule.matches(code, &result.stderr)
    {
        result.status = Status::CompileError;
    }
    result.compile = compile.map(Box::new);
    result
}
