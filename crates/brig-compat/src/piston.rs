//! Piston v2 (engineer-man/piston, `docs/api-v2.md`): `GET /api/v2/runtimes` and
//! `POST /api/v2/execute`, as pure functions.
//!
//! What this follows, from Piston's source:
//! - `api/src/api/v2.js` `get_job`: the validation order and its exact messages
//!   (`language is required as a string`, `<lang>-<version> runtime is unknown`,
//!   `files must include at least one utf8 encoded file`, `<name> cannot exceed the configured
//!   limit of <n>`...), all answered `400 {"message"}`; a missing limit takes the runtime's
//!   default; `0` is "not given"; a negative limit is "no limit" (`-1` is what Piston documents).
//! - `api/src/runtime.js`: a language is matched by name or alias, the version with
//!   `semver.satisfies`, and the highest matching version wins.
//! - `api/src/job.js`: unnamed files are `file<i>.code`; the program is the first `utf8` file;
//!   a stage is `{stdout, stderr, output, code, signal, message, status, memory, cpu_time,
//!   wall_time}` where `status` is isolate's (`RE`, `SG`, `TO`, `XX`) or Piston's own (`OL`, `EL`
//!   for stdout/stderr over the limit), and `signal` is `SIGKILL` for `TO`, `OL` and `EL`;
//!   `memory` is in bytes, times in milliseconds. When the compile stage fails there is no run
//!   stage and `run` repeats `compile` ("backward compatibility" in `v2.js`).
//!
//! Brig's own choices are in the crate's `README.md`: unknown `encoding` names and content that
//! does not decode are a 400 (Piston silently treats them as utf8 / truncates); `compile_*`
//! limits become the compile step's limits (over the language's compile defaults).

use brig_core::{LimitOverrides, RunResult, Status, TimeoutKind};
use brig_engine::{Languages, RunRequest};
use brig_jail::{SpecFile, Stdin};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::encoding;
use crate::semver::{self, Version};
use crate::signals;

/// Piston's error body, `{"message": "..."}`, always answered with HTTP 400 by `/execute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct PistonError {
    /// The sentence, in Piston's words where Piston has one.
    pub message: String,
}

impl PistonError {
    fn new(message: impl Into<String>) -> PistonError {
        PistonError {
            message: message.into(),
        }
    }

    /// The HTTP status Piston answers with (400 for every request error).
    pub fn http_status(&self) -> u16 {
        400
    }
}

/// One entry of `GET /api/v2/runtimes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    /// Piston's language name (`python`, `javascript`, `c++`...).
    pub language: String,
    /// The host's version, `x.y.z`.
    pub version: String,
    /// Other names accepted in `language`.
    pub aliases: Vec<String>,
    /// The runtime behind several languages (`gcc` for `c` and `c++`, `node` for JavaScript).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub runtime: Option<String>,
}

/// One file of an execute request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    /// Its name (`file<i>.code` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its content, in `encoding`.
    pub content: String,
    /// `utf8` (the default), `base64` or `hex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

/// `POST /api/v2/execute`'s body. Limits are milliseconds and bytes; negative means "no limit"
/// (the language default in Brig, which always has one), `0` or absent means the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecuteRequest {
    /// Language name or alias.
    pub language: String,
    /// `*`, an exact version or a node-semver range (`3.x`, `>=3.10`).
    pub version: String,
    /// The files; the first utf8 one is the program.
    pub files: Vec<File>,
    /// Standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Arguments for the program.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Wall-clock limit of the compile stage (ms).
    #[serde(default)]
    pub compile_timeout: Option<f64>,
    /// Wall-clock limit of the run stage (ms).
    #[serde(default)]
    pub run_timeout: Option<f64>,
    /// CPU-time limit of the compile stage (ms).
    #[serde(default)]
    pub compile_cpu_time: Option<f64>,
    /// CPU-time limit of the run stage (ms).
    #[serde(default)]
    pub run_cpu_time: Option<f64>,
    /// Memory limit of the compile stage (bytes).
    #[serde(default)]
    pub compile_memory_limit: Option<f64>,
    /// Memory limit of the run stage (bytes).
    #[serde(default)]
    pub run_memory_limit: Option<f64>,
}

const LIMIT_FIELDS: [&str; 6] = [
    "compile_memory_limit",
    "run_memory_limit",
    "compile_timeout",
    "run_timeout",
    "compile_cpu_time",
    "run_cpu_time",
];

/// Parses an execute body the way `get_job` validates it, with Piston's messages. The body is
/// JSON whatever the request's content type said (Piston's client libraries send `text/plain`).
pub fn parse_execute(body: &[u8]) -> Result<ExecuteRequest, PistonError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| PistonError::new(format!("invalid JSON body: {e}")))?;
    let field = |name: &str| value.get(name).filter(|v| !v.is_null());
    let non_empty_str = |name: &str| {
        field(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if non_empty_str("language").is_none() {
        return Err(PistonError::new("language is required as a string"));
    }
    if non_empty_str("version").is_none() {
        return Err(PistonError::new("version is required as a string"));
    }
    let Some(files) = field("files").and_then(Value::as_array) else {
        return Err(PistonError::new("files is required as an array"));
    };
    for (i, file) in files.iter().enumerate() {
        if !file.get("content").is_some_and(Value::is_string) {
            return Err(PistonError::new(format!(
                "files[{i}].content is required as a string"
            )));
        }
    }
    for name in LIMIT_FIELDS {
        // `if (!constraint_value) continue;`: null, 0 and false are "not given".
        match field(name) {
            None | Some(Value::Bool(false)) => {}
            Some(v) if v.as_f64() == Some(0.0) => {}
            Some(v) if v.is_number() => {}
            Some(_) => {
                return Err(PistonError::new(format!(
                    "If specified, {name} must be a number"
                )));
            }
        }
    }
    let mut request: ExecuteRequest = serde_json::from_value(value.clone())
        .map_err(|e| PistonError::new(format!("invalid request: {e}")))?;
    for name in LIMIT_FIELDS {
        if field(name) == Some(&Value::Bool(false)) {
            *limit_mut(&mut request, name) = None;
        }
    }
    Ok(request)
}

fn limit_mut<'a>(request: &'a mut ExecuteRequest, name: &str) -> &'a mut Option<f64> {
    match name {
        "compile_memory_limit" => &mut request.compile_memory_limit,
        "run_memory_limit" => &mut request.run_memory_limit,
        "compile_timeout" => &mut request.compile_timeout,
        "run_timeout" => &mut request.run_timeout,
        "compile_cpu_time" => &mut request.compile_cpu_time,
        _ => &mut request.run_cpu_time,
    }
}

/// Per-deployment caps, Piston's "configured limit" of each field (`PISTON_RUN_TIMEOUT`...).
/// A value above its cap is refused with Piston's message. `None` = no cap here (the caller's
/// plan still caps what runs). The defaults of a field left out are the language's, not these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PistonLimits {
    /// Cap of `compile_timeout` (ms).
    pub compile_timeout: Option<u64>,
    /// Cap of `run_timeout` (ms).
    pub run_timeout: Option<u64>,
    /// Cap of `compile_cpu_time` (ms).
    pub compile_cpu_time: Option<u64>,
    /// Cap of `run_cpu_time` (ms).
    pub run_cpu_time: Option<u64>,
    /// Cap of `compile_memory_limit` (bytes).
    pub compile_memory_limit: Option<u64>,
    /// Cap of `run_memory_limit` (bytes).
    pub run_memory_limit: Option<u64>,
}

impl PistonLimits {
    /// Stock Piston's configuration (`api/src/config.js`): 10 s / 3 s wall, 10 s / 3 s CPU,
    /// memory unlimited (`-1`).
    pub fn stock() -> PistonLimits {
        PistonLimits {
            compile_timeout: Some(10_000),
            run_timeout: Some(3_000),
            compile_cpu_time: Some(10_000),
            run_cpu_time: Some(3_000),
            compile_memory_limit: None,
            run_memory_limit: None,
        }
    }

    fn cap(&self, name: &str) -> Option<u64> {
        match name {
            "compile_memory_limit" => self.compile_memory_limit,
            "run_memory_limit" => self.run_memory_limit,
            "compile_timeout" => self.compile_timeout,
            "run_timeout" => self.run_timeout,
            "compile_cpu_time" => self.compile_cpu_time,
            _ => self.run_cpu_time,
        }
    }
}

/// Piston's name, extra aliases and `runtime` for each of Brig's language ids. Brig's own id
/// and aliases are accepted too; these add the names Piston's package set uses.
fn piston_names(id: &str) -> (&str, &'static [&'static str], Option<&'static str>) {
    match id {
        "python" => ("python", &["py", "py3", "python3"], None),
        "javascript" => (
            "javascript",
            &["node-javascript", "node-js", "javascript", "js"],
            Some("node"),
        ),
        "c" => ("c", &["gcc"], Some("gcc")),
        "cpp" => ("c++", &["cpp", "g++"], Some("gcc")),
        "bash" => ("bash", &["sh"], None),
        "rust" => ("rust", &["rs"], None),
        "perl" => ("perl", &["pl"], None),
        other => (other, &[], None),
    }
}

/// The host's version of each available language, normalised to `x.y.z`. A language that is
/// missing here (unavailable on the host, or without a version) is not a Piston runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions(BTreeMap<String, Version>);

impl Versions {
    /// From `(language id, what its version_command printed)` pairs; unparsable ones are left
    /// out.
    pub fn from_printed<I, K, V>(printed: I) -> Versions
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: AsRef<str>,
    {
        Versions(
            printed
                .into_iter()
                .filter_map(|(id, text)| Some((id.into(), Version::normalise(text.as_ref())?)))
                .collect(),
        )
    }

    /// Runs every available language's `version_command` on the host (not pure: call it once,
    /// at start-up, and keep the result).
    pub fn detect(languages: &Languages) -> Versions {
        Versions::from_printed(
            languages
                .all()
                .iter()
                .filter(|r| r.unavailable.is_none())
                .filter_map(|r| Some((r.language.id.clone(), Languages::version(r)?))),
        )
    }

    /// The version of language `id`.
    pub fn get(&self, id: &str) -> Option<Version> {
        self.0.get(id).copied()
    }
}

/// `GET /api/v2/runtimes`: every language in `versions`, in `languages`' order.
pub fn runtimes(languages: &Languages, versions: &Versions) -> Vec<Runtime> {
    languages
        .all()
        .iter()
        .filter_map(|resolved| {
            let lang = &resolved.language;
            let version = versions.get(&lang.id)?;
            let (name, extra, runtime) = piston_names(&lang.id);
            let mut aliases: Vec<String> = Vec::new();
            for alias in std::iter::once(&lang.id)
                .chain(&lang.aliases)
                .map(String::as_str)
                .chain(extra.iter().copied())
            {
                if alias != name && !aliases.iter().any(|a| a == alias) {
                    aliases.push(alias.to_string());
                }
            }
            Some(Runtime {
                language: name.to_string(),
                version: version.to_string(),
                aliases,
                runtime: runtime.map(str::to_string),
            })
        })
        .collect()
}

/// The Brig language id a Piston name or alias stands for.
fn brig_id(languages: &Languages, name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if let Some(found) = languages.find(&lower) {
        return Some(found.language.id);
    }
    ["python", "javascript", "c", "cpp", "bash", "rust", "perl"]
        .into_iter()
        .find(|id| {
            let (piston, extra, _) = piston_names(id);
            piston == lower || extra.contains(&lower.as_str())
        })
        .map(str::to_string)
}

/// The language id and version an execute request runs, or Piston's "runtime is unknown".
pub fn resolve_runtime(
    request: &ExecuteRequest,
    languages: &Languages,
    versions: &Versions,
) -> Result<(String, Version), PistonError> {
    brig_id(languages, &request.language)
        .and_then(|id| {
            let version = versions.get(&id)?;
            semver::satisfies(version, &request.version).then_some((id, version))
        })
        .ok_or_else(|| {
            PistonError::new(format!(
                "{}-{} runtime is unknown",
                request.language, request.version
            ))
        })
}

fn decode(file: &File, i: usize) -> Result<Vec<u8>, PistonError> {
    let bad = |e: encoding::DecodeError| PistonError::new(format!("files[{i}].content {e}"));
    match file.encoding.as_deref().unwrap_or("utf8") {
        "utf8" => Ok(file.content.clone().into_bytes()),
        "base64" => encoding::decode_base64(&file.content).map_err(bad),
        "hex" => encoding::decode_hex(&file.content).map_err(bad),
        other => Err(PistonError::new(format!(
            "files[{i}].encoding must be one of utf8, base64, hex (not `{other}`)"
        ))),
    }
}

/// A run limit: `None` when not given (`0`) or unlimited (negative), else checked against its
/// cap with Piston's message.
fn limit(value: Option<f64>, name: &str, caps: &PistonLimits) -> Result<Option<u64>, PistonError> {
    let Some(v) = value.filter(|v| *v != 0.0) else {
        return Ok(None);
    };
    match caps.cap(name) {
        // Uncapped: a negative value is Piston's documented `-1`, "no limit" (here: the
        // language's default, since every Brig run has limits).
        None if v < 0.0 => Ok(None),
        None => Ok(Some(v.ceil() as u64)),
        Some(cap) if v > cap as f64 => Err(PistonError::new(format!(
            "{name} cannot exceed the configured limit of {cap}"
        ))),
        // Capped: Piston refuses a negative value rather than lift the cap.
        Some(_) if v < 0.0 => Err(PistonError::new(format!("{name} must be non-negative"))),
        Some(_) => Ok(Some(v.ceil() as u64)),
    }
}

/// An execute request as Brig's `RunRequest`: the language resolved by name and version, the
/// first utf8 file as the program, the other files beside it, the run limits as overrides.
pub fn to_run_request(
    request: &ExecuteRequest,
    languages: &Languages,
    versions: &Versions,
    caps: &PistonLimits,
) -> Result<RunRequest, PistonError> {
    let (id, _) = resolve_runtime(request, languages, versions)?;
    let mut contents = Vec::with_capacity(request.files.len());
    for (i, file) in request.files.iter().enumerate() {
        contents.push(decode(file, i)?);
    }
    let is_utf8 = |f: &File| f.encoding.as_deref().is_none_or(|e| e == "utf8");
    let Some(entry) = request.files.iter().position(is_utf8) else {
        return Err(PistonError::new(
            "files must include at least one utf8 encoded file",
        ));
    };
    let mut files = Vec::new();
    for (i, (file, content)) in request.files.iter().zip(&mut contents).enumerate() {
        if i == entry {
            continue;
        }
        let path = file.name.clone().unwrap_or_else(|| format!("file{i}.code"));
        if !brig_jail::spec::is_relative_inside(&path) {
            return Err(PistonError::new(format!(
                "File path \"{path}\" tries to escape parent directory"
            )));
        }
        files.push(SpecFile {
            path,
            content: std::mem::take(content),
            mode: 0o644,
        });
    }
    let compile_limits = LimitOverrides {
        timeout_ms: limit(request.compile_timeout, "compile_timeout", caps)?,
        cpu_time_ms: limit(request.compile_cpu_time, "compile_cpu_time", caps)?,
        memory_bytes: limit(request.compile_memory_limit, "compile_memory_limit", caps)?,
        ..LimitOverrides::default()
    };
    let limits = LimitOverrides {
        timeout_ms: limit(request.run_timeout, "run_timeout", caps)?,
        cpu_time_ms: limit(request.run_cpu_time, "run_cpu_time", caps)?,
        memory_bytes: limit(request.run_memory_limit, "run_memory_limit", caps)?,
        ..LimitOverrides::default()
    };
    Ok(RunRequest {
        language: id,
        source: std::mem::take(&mut contents[entry]),
        files,
        args: request.args.clone().unwrap_or_default(),
        stdin: match request.stdin.as_deref() {
            None | Some("") => Stdin::Null,
            Some(s) => Stdin::Bytes(s.as_bytes().to_vec()),
        },
        limits,
        compile_limits,
        ..RunRequest::default()
    })
}

/// One stage (`run` or `compile`) of an execute response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// stdout then stderr (Brig captures the two streams apart, so their interleaving is lost).
    pub output: String,
    /// Exit code; `null` when a signal ended the stage.
    pub code: Option<i32>,
    /// The signal's name (`SIGKILL`), or `null`.
    pub signal: Option<String>,
    /// A sentence for a person, or `null`.
    pub message: Option<String>,
    /// `RE`, `SG`, `TO`, `OL`, `EL`, `XX`, or `null` when the stage exited 0.
    pub status: Option<String>,
    /// Peak memory in bytes.
    pub memory: Option<u64>,
    /// CPU time in milliseconds.
    pub cpu_time: Option<u64>,
    /// Wall time in milliseconds.
    pub wall_time: Option<u64>,
}

/// `POST /api/v2/execute`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteResponse {
    /// The language that ran (Piston's name).
    pub language: String,
    /// Its version.
    pub version: String,
    /// The run stage (the compile stage again when compiling failed).
    pub run: Stage,
    /// The compile stage, for compiled languages.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub compile: Option<Stage>,
}

/// The Piston status, signal and message of one step's result (see the crate's README):
/// `ok` → none; `runtime_error` and a parse failure of an interpreted language → `RE`;
/// `killed` → `SG` with its signal; `memory_limit` → `SG` with `SIGKILL` (what isolate reports
/// for a cgroup OOM kill) and a message saying so; `timeout` → `TO`; `output_limit` → `OL`,
/// or `EL` when only stderr has output (Brig's limit counts both streams); `internal_error` and
/// `cancelled` → `XX`.
fn verdict(r: &RunResult) -> (Option<&'static str>, Option<String>, Option<String>) {
    let signal_name = |n: i32| signals::name(n).map(str::to_string);
    let kill = signal_name(signals::SIGKILL);
    match r.status {
        Status::Ok => (None, None, None),
        Status::RuntimeError | Status::CompileError => (
            Some("RE"),
            r.signal.and_then(signal_name),
            r.exit_code
                .map(|c| format!("Exited with error status {c}"))
                .or_else(|| r.message.clone()),
        ),
        Status::Killed => (
            Some("SG"),
            r.signal.and_then(signal_name),
            Some(format!("Caught fatal signal {}", r.signal.unwrap_or(0))),
        ),
        Status::MemoryLimit => (
            Some("SG"),
            kill,
            Some("Memory limit exceeded (killed with SIGKILL)".into()),
        ),
        Status::Timeout => (
            Some("TO"),
            kill,
            Some(
                match r.limit {
                    Some(TimeoutKind::Wall) => "Time limit exceeded (wall clock)",
                    _ => "Time limit exceeded",
                }
                .into(),
            ),
        ),
        Status::OutputLimit if r.stdout.is_empty() && !r.stderr.is_empty() => {
            (Some("EL"), kill, Some("stderr length exceeded".into()))
        }
        Status::OutputLimit => (Some("OL"), kill, Some("stdout length exceeded".into())),
        Status::InternalError | Status::Cancelled | Status::Queued | Status::Running => (
            Some("XX"),
            None,
            Some(
                r.message
                    .clone()
                    .unwrap_or_else(|| format!("run ended `{}`", r.status.as_str())),
            ),
        ),
    }
}

/// One step's result as a Piston stage.
pub fn to_stage(r: &RunResult) -> Stage {
    let (status, signal, message) = verdict(r);
    Stage {
        output: format!("{}{}", r.stdout, r.stderr),
        stdout: r.stdout.clone(),
        stderr: r.stderr.clone(),
        code: r.exit_code,
        signal,
        message,
        status: status.map(str::to_string),
        memory: Some(r.memory_peak_bytes),
        cpu_time: Some(r.cpu_ms),
        wall_time: Some(r.wall_ms),
    }
}

/// Brig's result as Piston's answer. `language` is the Piston name to report (from
/// [`runtimes`]' `language`, or the request's), `version` the version that ran.
pub fn to_response(language: &str, version: &str, result: &RunResult) -> ExecuteResponse {
    let compile = result.compile.as_deref().map(to_stage);
    // A failed compile step has no run stage; Piston repeats the compile stage as `run`.
    let compile_failed = result
        .compile
        .as_deref()
        .is_some_and(|c| c.status != Status::Ok);
    let run = match (&compile, compile_failed) {
        (Some(stage), true) => stage.clone(),
        _ => to_stage(result),
    };
    ExecuteResponse {
        language: language.to_string(),
        version: version.to_string(),
        run,
        compile,
    }
}

/// The Piston language name of Brig language `id` (`cpp` → `c++`), for [`to_response`].
pub fn language_name(id: &str) -> &str {
    piston_names(id).0
}
