//! `brig run`: one program, one sandbox, output passed through live, the program's exit code.

use anyhow::{Context, Result, bail};
use brig_core::size::{parse_bytes, parse_millis};
use brig_core::{LimitOverrides, RunResult, Status, TierChoice};
use brig_engine::{Engine, Languages, Launch, RunRequest};
use brig_jail::{JailConfig, OutputSink, Stdin, Stream};
use clap::Args;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// `brig run` flags.
#[derive(Args)]
pub struct RunArgs {
    /// Language id or alias (default: from the file's extension).
    #[arg(long = "lang", short = 'l')]
    lang: Option<String>,
    #[command(flatten)]
    limits: LimitFlags,
    /// Isolation tier: namespace (the default), process, wasm or auto. `.wasm` and `.wat`
    /// files run on the wasm tier.
    #[arg(long)]
    tier: Option<TierChoice>,
    /// Read the program's stdin from this file (default: brig's own stdin when it is not a
    /// terminal, else nothing).
    #[arg(long)]
    stdin: Option<PathBuf>,
    /// Allow network access (the host's network; off by default).
    #[arg(long)]
    network: bool,
    /// Print one JSON result object instead of passing the output through.
    #[arg(long)]
    json: bool,
    /// An extra languages file, over the built-in one (also BRIG_LANGUAGES).
    #[arg(long, env = "BRIG_LANGUAGES")]
    languages: Option<PathBuf>,
    /// The program's source file, or - for standard input.
    file: PathBuf,
    /// Arguments for the program.
    #[arg(last = true)]
    args: Vec<String>,
}

/// The limit flags `brig run` and `brig exec` share.
#[derive(Args, Debug)]
pub struct LimitFlags {
    /// Wall-clock limit, e.g. 10s or 500ms.
    #[arg(long, value_parser = parse_millis)]
    timeout: Option<u64>,
    /// CPU-time limit (all processes and threads).
    #[arg(long = "cpu-time", value_parser = parse_millis)]
    cpu_time: Option<u64>,
    /// Memory limit, e.g. 256MiB.
    #[arg(long, value_parser = parse_bytes)]
    memory: Option<u64>,
    /// Processes and threads at once.
    #[arg(long)]
    pids: Option<u32>,
    /// Captured output limit (stdout + stderr).
    #[arg(long = "output-limit", value_parser = parse_bytes)]
    output_limit: Option<u64>,
    /// Size of the writable work dir and /tmp.
    #[arg(long, value_parser = parse_bytes)]
    disk: Option<u64>,
}

impl LimitFlags {
    /// The limits asked for.
    pub fn overrides(&self) -> LimitOverrides {
        LimitOverrides {
            timeout_ms: self.timeout,
            cpu_time_ms: self.cpu_time,
            memory_bytes: self.memory,
            pids: self.pids,
            output_bytes: self.output_limit,
            disk_bytes: self.disk,
            ..LimitOverrides::default()
        }
    }
}

/// Writes the program's output through as it comes.
struct Passthrough {
    run_step: usize,
}

impl OutputSink for Passthrough {
    fn output(&mut self, step: usize, stream: Stream, data: &[u8]) {
        if step != self.run_step {
            return;
        }
        let _ = match stream {
            Stream::Stdout => std::io::stdout().lock().write_all(data),
            Stream::Stderr => std::io::stderr().lock().write_all(data),
        };
    }
}

/// Runs `brig run`.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    brig_jail::run::phase("brig run: arguments parsed");
    let languages = Languages::load(args.languages.as_deref())?;
    brig_jail::run::phase("brig run: languages loaded");
    let from_stdin = args.file.as_os_str() == "-";
    let source = if from_stdin {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the program from stdin")?;
        buf
    } else {
        std::fs::read(&args.file).with_context(|| format!("{}", args.file.display()))?
    };
    let is_module = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| brig_engine::execute::WASM_EXTENSIONS.contains(&e));
    let tier = match (args.tier, is_module) {
        (None, true) | (Some(TierChoice::Wasm), true) | (Some(TierChoice::Auto), true) => {
            TierChoice::Wasm
        }
        (Some(other), true) => bail!(
            "{} is a WebAssembly module: it runs on the wasm tier, not `{other:?}`",
            args.file.display()
        ),
        (None, false) => TierChoice::Namespace,
        (Some(tier), false) => tier,
    };
    if is_module {
        return run_module(&args, source, tier, languages);
    }
    let language = match &args.lang {
        Some(name) => languages
            .find(name)
            .with_context(|| format!("unknown language `{name}` (see `brig languages`)"))?,
        None if from_stdin => bail!("--lang is required when the program comes from stdin"),
        None => languages.for_file(&args.file).with_context(|| {
            format!(
                "cannot tell the language of {} from its extension; pass --lang",
                args.file.display()
            )
        })?,
    };
    let stdin = stdin_of(&args, from_stdin)?;
    let request = RunRequest {
        language: language.language.id.clone(),
        source,
        files: Vec::new(),
        args: args.args.clone(),
        stdin,
        limits: args.limits.overrides(),
        compile_limits: brig_core::LimitOverrides::default(),
        network: args.network,
        tier,
    };
    let run_step = usize::from(language.language.compile.is_some());
    if tier == TierChoice::Wasm {
        let engine = engine_with(languages, JailConfig::default());
        let result = engine.run_wasm(&request)?;
        return Ok(finish(&args, &result, true));
    }
    // A crashed Brig leaves nothing behind for long: the next start removes its cgroups (while
    // the program runs).
    // The result is out as soon as it is known; the sandboxes' end (the kernel's teardown, the
    // cgroups' removal, the id's release) goes on in a reaper after we exit.
    let jail = JailConfig {
        sweep_while_running: true,
        defer_teardown: true,
        early_reaper: true,
        ..JailConfig::default()
    };
    let engine = engine_with(languages, jail);
    let result = if args.json {
        engine.run_language(&language, &request, &mut brig_jail::Discard)?
    } else {
        engine.run_language(&language, &request, &mut Passthrough { run_step })?
    };
    brig_jail::run::phase("brig run: result built");
    finish(&args, &result, false);
    brig_jail::run::phase("brig run: result printed");
    if let Err(e) = brig_jail::teardown::finish_in_background() {
        eprintln!("brig: cleaning up after the sandbox: {e}");
    }
    brig_jail::run::phase("brig run: reaper started");
    // Nothing is left to do but exit: skip dropping the engine, its languages and the result
    // (tens of µs of frees on the caller's clock). `process::exit` still flushes stdout.
    std::process::exit(result.cli_exit_code().clamp(0, 255));
}

fn engine_with(languages: Languages, jail: JailConfig) -> Engine {
    Engine {
        languages,
        jail,
        launch: Launch::InProcess,
        wasm: Default::default(),
    }
}

/// A `.wasm` or `.wat` module on the wasm tier.
fn run_module(
    args: &RunArgs,
    source: Vec<u8>,
    tier: TierChoice,
    languages: Languages,
) -> Result<ExitCode> {
    let request = RunRequest {
        language: "wasm".into(),
        source,
        args: args.args.clone(),
        stdin: stdin_of(args, false)?,
        limits: args.limits.overrides(),
        tier,
        ..RunRequest::default()
    };
    let engine = engine_with(languages, JailConfig::default());
    let result = engine.run_wasm(&request)?;
    Ok(finish(args, &result, true))
}

/// Prints the result (JSON, or the buffered output for tiers that do not stream) and returns
/// the exit code.
fn finish(args: &RunArgs, result: &RunResult, buffered: bool) -> ExitCode {
    finish_result(args.json, result, buffered)
}

/// Prints a result as `brig run` does (JSON, or the buffered output and a line on why it
/// ended) and returns the exit code; `brig exec` shares it.
pub fn finish_result(json: bool, result: &RunResult, buffered: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(result).unwrap_or_default()
        );
    } else {
        if buffered {
            let _ = std::io::stdout().lock().write_all(result.stdout.as_bytes());
            let _ = std::io::stderr().lock().write_all(result.stderr.as_bytes());
        }
        explain(result);
    }
    ExitCode::from(result.cli_exit_code().clamp(0, 255) as u8)
}

fn stdin_of(args: &RunArgs, program_from_stdin: bool) -> Result<Stdin> {
    Ok(match &args.stdin {
        Some(path) => {
            std::fs::metadata(path).with_context(|| format!("--stdin {}", path.display()))?;
            Stdin::File(path.clone())
        }
        None if !program_from_stdin && !std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            Stdin::File("/dev/stdin".into())
        }
        None => Stdin::Null,
    })
}

/// One line on stderr when the run did not simply exit.
fn explain(result: &RunResult) {
    let line = match result.status {
        Status::Ok | Status::RuntimeError => None,
        Status::CompileError => {
            if let Some(compile) = &result.compile {
                eprint!("{}{}", compile.stdout, compile.stderr);
            }
            Some("compile error".to_string())
        }
        Status::Timeout => Some(format!(
            "timeout ({} limit)",
            match result.limit {
                Some(brig_core::TimeoutKind::Cpu) => "cpu-time",
                _ => "wall-clock",
            }
        )),
        Status::MemoryLimit => Some("memory limit exceeded".into()),
        Status::OutputLimit => Some("output limit exceeded (output truncated)".into()),
        Status::Killed => Some(format!("killed by signal {}", result.signal.unwrap_or(0))),
        Status::InternalError => Some(format!(
            "internal error: {}",
            result.message.as_deref().unwrap_or("unknown")
        )),
        other => Some(other.as_str().to_string()),
    };
    if let Some(line) = line {
        eprintln!("brig: {line}");
    }
}
