//! `SandboxSpec`: everything one sandbox run needs, as plain data.
//!
//! The spec crosses a process boundary (the caller serialises it to JSON and the single-threaded
//! helper reads it from a socket), so it holds no file descriptors and no host state. Unknown
//! fields are rejected and `validate()` reports every problem before anything is created.

use brig_core::{LimitError, Limits};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Inside the sandbox: the work dir, which holds the program's files and is the default cwd.
pub const WORK_DIR: &str = "/work";
/// Inside the sandbox: the unprivileged user the program runs as.
pub const SANDBOX_UID: u32 = 1000;
/// Inside the sandbox: the sandbox user's group.
pub const SANDBOX_GID: u32 = 1000;

/// One sandbox: files, mounts and network, and the steps run in it one after the other
/// (a compile step, then the program). Each step gets fresh namespaces over the same work dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    /// Files written into the work dir before the first step.
    #[serde(default)]
    pub files: Vec<SpecFile>,
    /// Extra host paths bound read-only at the same path (a toolchain outside `/usr`...).
    #[serde(default)]
    pub ro_mounts: Vec<PathBuf>,
    /// Share the host's network and allow AF_INET/AF_INET6 sockets. Off by default: the sandbox
    /// gets an empty network namespace with only `lo`.
    #[serde(default)]
    pub network: bool,
    /// Hostname inside the sandbox.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Namespaces and every layer (default), or a plain process (the `process` tier).
    #[serde(default)]
    pub isolation: Isolation,
    /// The steps, run in order; a step that does not exit 0 ends the run.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Instead of steps: a long-lived sandbox served by the agent (see `agent`).
    #[serde(default)]
    pub session: Option<SessionSpec>,
    /// Read-only files Brig itself provides, placed under `/etc/brig/` (the Python kernel).
    #[serde(default)]
    pub system_files: Vec<SpecFile>,
}

/// A session: limits for its whole life, and its kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Memory, pids and disk of the whole session (its cgroup and tmpfs sizes); the time and
    /// output limits here are the defaults of its executions.
    pub limits: Limits,
    /// The Python kernel to start, if any.
    pub kernel: Option<crate::agent::KernelSpec>,
    /// Instead of the agent: a Python zygote that forks each one-shot run into a sandbox of
    /// its own (see `zygote`).
    #[serde(default)]
    pub zygote: Option<crate::zygote::ZygoteSpec>,
}

/// How strongly the steps are isolated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// The `namespace` tier: namespaces, new root, Landlock, seccomp, cgroups, rlimits.
    #[default]
    Namespace,
    /// The `process` tier: a child with rlimits, its own session and process group, only the
    /// spec's environment and a private temporary work dir (and cgroups when Brig is root).
    /// `/work` in argv and cwd is replaced by that directory.
    Process,
}

/// A file placed in the work dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    /// Path relative to the work dir, without `..`.
    pub path: String,
    /// The bytes.
    #[serde(with = "bytes_as_base64")]
    pub content: Vec<u8>,
    /// Permission bits (default 0644).
    #[serde(default = "default_mode")]
    pub mode: u32,
}

/// One program run inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A short name for messages (`compile`, `run`).
    #[serde(default = "default_step_name")]
    pub name: String,
    /// Program and arguments; the program is an absolute path inside the sandbox.
    pub argv: Vec<String>,
    /// The whole environment: nothing else is inherited.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the sandbox.
    #[serde(default = "default_cwd")]
    pub cwd: String,
    /// Limits of this step.
    #[serde(default)]
    pub limits: Limits,
    /// Whether the caller's stdin is connected to this step (otherwise `/dev/null`).
    #[serde(default)]
    pub stdin: bool,
}

/// What is wrong with `limits`, each error naming `step`; empty when they are valid.
pub(crate) fn limit_errors(step: &str, limits: &Limits) -> Vec<SpecError> {
    match limits.validate() {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|error| SpecError::Limit {
                step: step.into(),
                error,
            })
            .collect(),
    }
}

fn default_hostname() -> String {
    "brig".into()
}
fn default_mode() -> u32 {
    0o644
}
fn default_step_name() -> String {
    "run".into()
}
fn default_cwd() -> String {
    WORK_DIR.into()
}

/// One problem found by `validate`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The spec has no step to run.
    #[error("the sandbox has no step to run")]
    NoSteps,
    /// A session spec also has steps.
    #[error("a session has no steps: its agent runs what it is asked")]
    SessionWithSteps,
    /// Sessions need the namespace tier.
    #[error("sessions run on the namespace tier only")]
    SessionIsolation,
    /// A zygote replaces the agent's kernel and runs without a network.
    #[error("a zygote has no kernel and no network")]
    Zygote,
    /// A step's argv is empty.
    #[error("step `{step}`: argv is empty")]
    EmptyArgv {
        /// The step's name.
        step: String,
    },
    /// A step's program is not an absolute path.
    #[error("step `{step}`: program `{program}` must be an absolute path inside the sandbox")]
    RelativeProgram {
        /// The step's name.
        step: String,
        /// The program given.
        program: String,
    },
    /// A string holds a NUL byte, which cannot cross `execve`.
    #[error("{what} contains a NUL byte")]
    Nul {
        /// Which string.
        what: String,
    },
    /// An environment variable name is empty or holds `=`.
    #[error("environment variable name `{0}` is invalid")]
    EnvName(String),
    /// A step's cwd is not an absolute path.
    #[error("step `{step}`: cwd `{cwd}` must be an absolute path")]
    Cwd {
        /// The step's name.
        step: String,
        /// The cwd given.
        cwd: String,
    },
    /// A limit is out of range.
    #[error("step `{step}`: {error}")]
    Limit {
        /// The step's name.
        step: String,
        /// The bad limit.
        error: LimitError,
    },
    /// A file path is absolute, empty, or climbs out of the work dir.
    #[error("file `{0}`: must be a relative path inside the work dir, without `..`")]
    FilePath(String),
    /// A file's mode has bits beyond 0777.
    #[error("file `{path}`: mode {mode:o} must be within 0777")]
    FileMode {
        /// The file's path.
        path: String,
        /// The mode given.
        mode: u32,
    },
    /// The files do not fit in the work dir.
    #[error("files total {total} bytes, more than the disk limit of {limit} bytes")]
    FilesTooBig {
        /// Their total size.
        total: u64,
        /// The disk limit.
        limit: u64,
    },
    /// An extra mount is not an absolute, normal path, or shadows the sandbox's own layout.
    #[error("read-only mount `{0}`: must be an absolute path outside /work, /tmp, /proc and /dev")]
    Mount(PathBuf),
    /// The hostname is not a valid hostname.
    #[error("hostname `{0}` is invalid (1-64 characters of [A-Za-z0-9-])")]
    Hostname(String),
}

impl SandboxSpec {
    /// A spec with one step running `argv` with default limits and no files.
    pub fn command(argv: &[&str]) -> SandboxSpec {
        SandboxSpec {
            files: Vec::new(),
            ro_mounts: Vec::new(),
            network: false,
            hostname: default_hostname(),
            isolation: Isolation::Namespace,
            session: None,
            system_files: Vec::new(),
            steps: vec![Step {
                name: default_step_name(),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                env: BTreeMap::new(),
                cwd: default_cwd(),
                limits: Limits::default(),
                stdin: true,
            }],
        }
    }

    /// The size of the work dir and `/tmp`: the session's, or the largest among the steps.
    pub fn disk_bytes(&self) -> u64 {
        if let Some(session) = &self.session {
            return session.limits.disk_bytes;
        }
        self.steps
            .iter()
            .map(|s| s.limits.disk_bytes)
            .max()
            .unwrap_or(Limits::default().disk_bytes)
    }

    /// Checks everything and returns every problem found.
    pub fn validate(&self) -> Result<(), Vec<SpecError>> {
        let mut errors = Vec::new();
        match (&self.session, self.steps.is_empty()) {
            (None, true) => errors.push(SpecError::NoSteps),
            (Some(_), false) => errors.push(SpecError::SessionWithSteps),
            (Some(session), true) => {
                errors.extend(limit_errors("session", &session.limits));
                if self.isolation != Isolation::Namespace {
                    errors.push(SpecError::SessionIsolation);
                }
                if session.zygote.is_some() && (session.kernel.is_some() || self.network) {
                    errors.push(SpecError::Zygote);
                }
            }
            (None, false) => {}
        }
        for file in &self.system_files {
            if !is_relative_inside(&file.path) {
                errors.push(SpecError::FilePath(file.path.clone()));
            }
        }
        for step in &self.steps {
            validate_step(step, &mut errors);
        }
        let mut total = 0u64;
        for file in &self.files {
            if !is_relative_inside(&file.path) {
                errors.push(SpecError::FilePath(file.path.clone()));
            }
            if file.mode & !0o777 != 0 {
                errors.push(SpecError::FileMode {
                    path: file.path.clone(),
                    mode: file.mode,
                });
            }
            total += file.content.len() as u64;
        }
        if total > self.disk_bytes() {
            errors.push(SpecError::FilesTooBig {
                total,
                limit: self.disk_bytes(),
            });
        }
        for mount in &self.ro_mounts {
            if !is_allowed_mount(mount) {
                errors.push(SpecError::Mount(mount.clone()));
            }
        }
        let hostname_ok = (1..=64).contains(&self.hostname.len())
            && self
                .hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !hostname_ok {
            errors.push(SpecError::Hostname(self.hostname.clone()));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn validate_step(step: &Step, errors: &mut Vec<SpecError>) {
    let name = &step.name;
    match step.argv.first() {
        None => errors.push(SpecError::EmptyArgv { step: name.clone() }),
        Some(program) if !program.starts_with('/') => errors.push(SpecError::RelativeProgram {
            step: name.clone(),
            program: program.clone(),
        }),
        Some(_) => {}
    }
    for arg in &step.argv {
        if arg.contains('\0') {
            errors.push(SpecError::Nul {
                what: format!("step `{name}`: argument `{}`", arg.replace('\0', "\\0")),
            });
        }
    }
    for (key, value) in &step.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            errors.push(SpecError::EnvName(key.clone()));
        }
        if value.contains('\0') {
            errors.push(SpecError::Nul {
                what: format!("step `{name}`: environment variable `{key}`"),
            });
        }
    }
    if !step.cwd.starts_with('/') || step.cwd.contains('\0') {
        errors.push(SpecError::Cwd {
            step: name.clone(),
            cwd: step.cwd.clone(),
        });
    }
    errors.extend(limit_errors(name, &step.limits));
}

/// True for `a/b.txt`; false for `/etc/x`, `../x`, `a/../../x`, `` and `.`.
pub fn is_relative_inside(path: &str) -> bool {
    let path = Path::new(path);
    !path.as_os_str().is_empty()
        && !path.as_os_str().as_encoded_bytes().contains(&0)
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn is_allowed_mount(path: &Path) -> bool {
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return false;
    }
    let rest: Vec<_> = components.collect();
    if rest.is_empty() || !rest.iter().all(|c| matches!(c, Component::Normal(_))) {
        return false;
    }
    !["work", "tmp", "proc", "dev"]
        .iter()
        .any(|reserved| rest[0].as_os_str() == *reserved)
}

/// Bytes travel as base64 in the JSON spec.
pub(crate) mod bytes_as_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_command_is_valid() {
        SandboxSpec::command(&["/usr/bin/python3", "-c", "pass"])
            .validate()
            .unwrap();
    }

    #[test]
    fn every_problem_is_reported() {
        let mut spec = SandboxSpec::command(&["python3"]);
        spec.files.push(SpecFile {
            path: "../escape".into(),
            content: vec![],
            mode: 0o644,
        });
        spec.ro_mounts.push("/tmp/x".into());
        spec.hostname = "bad host".into();
        spec.steps[0].limits.pids = 0;
        spec.steps[0].env.insert("A=B".into(), "x".into());
        let errors = spec.validate().unwrap_err();
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(matches!(errors[0], SpecError::RelativeProgram { .. }));
    }

    #[test]
    fn file_paths_stay_inside() {
        assert!(is_relative_inside("main.py"));
        assert!(is_relative_inside("src/lib/a.rs"));
        for bad in ["", ".", "/etc/passwd", "../x", "a/../../x", "a/./b"] {
            // `a/./b` normalises to a/b in Path::components, which is still inside.
            if bad == "a/./b" {
                assert!(is_relative_inside(bad));
            } else {
                assert!(!is_relative_inside(bad), "{bad}");
            }
        }
    }

    #[test]
    fn unknown_fields_are_rejected_and_bytes_round_trip() {
        let mut spec = SandboxSpec::command(&["/bin/true"]);
        spec.files.push(SpecFile {
            path: "data.bin".into(),
            content: (0..=255u8).collect(),
            mode: 0o600,
        });
        let json = serde_json::to_string(&spec).unwrap();
        let back: SandboxSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        let err = serde_json::from_str::<SandboxSpec>(r#"{"steps":[],"netwrk":true}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `netwrk`"), "{err}");
    }
}
