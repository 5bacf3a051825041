//! Where the tier keeps its compiled-module cache and finds `python.wasm`, and how many runs
//! it serves at once.
//!
//! Defaults follow the XDG base-directory spec: the cache under `$XDG_CACHE_HOME/brig` (or
//! `~/.cache/brig`), Python at `$BRIG_PYTHON_WASM`, else the first of
//! `$XDG_DATA_HOME/brig/wasm/python.wasm` (or `~/.local/share/brig/wasm/python.wasm`) and
//! `/usr/local/share/brig/wasm/python.wasm` that exists. `scripts/install-python-wasm.sh`
//! installs to the same place.

use std::path::{Path, PathBuf};

/// The environment variable that names `python.wasm` explicitly.
pub const PYTHON_WASM_ENV: &str = "BRIG_PYTHON_WASM";
/// The system-wide location, for packages and images.
pub const SYSTEM_PYTHON_WASM: &str = "/usr/local/share/brig/wasm/python.wasm";
/// The Python this tier is built and tested for (the install script pins its SHA-256).
pub const PYTHON_VERSION: &str = "CPython 3.12.0 (wasm32-wasi, VMware Wasm Labs build)";

/// How the WebAssembly tier is set up; one per process, given to [`crate::WasmTier::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmConfig {
    /// Brig's cache directory; compiled modules go to `<cache_dir>/wasmtime`.
    pub cache_dir: PathBuf,
    /// The CPython WASI build, or `None` to offer no Python on this tier.
    pub python_wasm: Option<PathBuf>,
    /// Runs at once; the pooling allocator reserves this many instance, memory and stack slots.
    /// A run past it ends as `internal_error` (retryable).
    pub max_concurrent_runs: u32,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            cache_dir: default_cache_dir(),
            python_wasm: Some(default_python_wasm()),
            max_concurrent_runs: 64,
        }
    }
}

/// `$XDG_CACHE_HOME/brig`, else `~/.cache/brig`, else `brig-cache` in the temp dir.
pub fn default_cache_dir() -> PathBuf {
    xdg_dir("XDG_CACHE_HOME", ".cache")
        .unwrap_or_else(std::env::temp_dir)
        .join("brig")
}

/// `$BRIG_PYTHON_WASM` when set; else the first existing of the user and system locations;
/// else the user location (so a message can say where to install it).
pub fn default_python_wasm() -> PathBuf {
    if let Some(path) = std::env::var_os(PYTHON_WASM_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let user = xdg_dir("XDG_DATA_HOME", ".local/share")
        .map(|d| d.join("brig/wasm/python.wasm"))
        .unwrap_or_else(|| PathBuf::from(SYSTEM_PYTHON_WASM));
    let system = PathBuf::from(SYSTEM_PYTHON_WASM);
    if !user.is_file() && system.is_file() {
        system
    } else {
        user
    }
}

fn xdg_dir(var: &str, home_relative: &str) -> Option<PathBuf> {
    let from_var = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    from_var.or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|h| h.is_absolute())
            .map(|h| h.join(home_relative))
    })
}

/// Whether Python is usable on this tier: the configured `python.wasm` exists and is a
/// WebAssembly module. For `brig doctor` and `brig languages`; cheap (reads 4 bytes).
pub fn python_available(config: &WasmConfig) -> Result<PathBuf, String> {
    let path = config
        .python_wasm
        .as_deref()
        .ok_or_else(|| "Python is not configured for the wasm tier".to_string())?;
    check_wasm_file(path)?;
    Ok(path.to_path_buf())
}

fn check_wasm_file(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let hint = "run scripts/install-python-wasm.sh, or set BRIG_PYTHON_WASM";
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("{}: {e} ({hint})", path.display()))?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|e| format!("{}: {e} ({hint})", path.display()))?;
    if &magic != b"\0asm" {
        return Err(format!(
            "{}: not a WebAssembly module ({hint})",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_available_checks_the_magic() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.wasm");
        std::fs::write(&good, b"\0asm\x01\0\0\0").unwrap();
        let bad = dir.path().join("bad.wasm");
        std::fs::write(&bad, b"#!/bin/sh\n").unwrap();
        let cfg = |p: &Path| WasmConfig {
            python_wasm: Some(p.to_path_buf()),
            ..WasmConfig::default()
        };
        assert_eq!(python_available(&cfg(&good)).unwrap(), good);
        assert!(
            python_available(&cfg(&bad))
                .unwrap_err()
                .contains("not a WebAssembly")
        );
        let missing = python_available(&cfg(&dir.path().join("nope"))).unwrap_err();
        assert!(missing.contains("install-python-wasm.sh"), "{missing}");
        let none = WasmConfig {
            python_wasm: None,
            ..WasmConfig::default()
        };
        assert!(python_available(&none).is_err());
    }
}
