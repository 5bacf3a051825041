//! The run's work dir on the host: the caller's own (kept, e.g. a session's files) or a fresh
//! temporary one (deleted after the run), with the job's files written into it.
//!
//! The guest sees it as `/work` (the namespace tier's work dir too), read-write, and as its
//! current directory (see `crate::tier`). File names are relative paths; one that is absolute
//! or climbs out with `..` is refused before anything is written.

use std::path::{Component, Path, PathBuf};
use tempfile::TempDir;

/// Why the work dir could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum WorkDirError {
    /// A temporary directory could not be created.
    #[error("creating a temporary work dir: {0}")]
    Create(std::io::Error),
    /// A file name is absolute, empty, or leaves the work dir.
    #[error("file `{0}`: must be a relative path inside the work dir")]
    BadPath(String),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The host path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A work dir for one run.
#[derive(Debug)]
pub(crate) enum WorkDir {
    /// The caller's directory; left as the run leaves it.
    Kept(PathBuf),
    /// A temporary directory, removed on drop.
    Temp(TempDir),
}

impl WorkDir {
    /// `dir` if given, else a fresh temporary directory.
    pub fn new(dir: Option<&Path>) -> Result<WorkDir, WorkDirError> {
        match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| WorkDirError::Write {
                    path: dir.to_path_buf(),
                    source,
                })?;
                Ok(WorkDir::Kept(dir.to_path_buf()))
            }
            None => tempfile::Builder::new()
                .prefix("brig-wasm-")
                .tempdir()
                .map(WorkDir::Temp)
                .map_err(WorkDirError::Create),
        }
    }

    /// The directory on the host.
    pub fn path(&self) -> &Path {
        match self {
            WorkDir::Kept(p) => p,
            WorkDir::Temp(t) => t.path(),
        }
    }

    /// Writes `contents` to the relative path `name`, creating parent directories.
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<(), WorkDirError> {
        let relative = Path::new(name);
        let inside = !name.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(WorkDirError::BadPath(name.to_string()));
        }
        let path = self.path().join(relative);
        let write = || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, contents)
        };
        write().map_err(|source| WorkDirError::Write {
            path: path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_land_inside_and_escapes_are_refused() {
        let dir = WorkDir::new(None).unwrap();
        dir.write("a/b.txt", b"hi").unwrap();
        assert_eq!(std::fs::read(dir.path().join("a/b.txt")).unwrap(), b"hi");
        for bad in ["", "/etc/passwd", "../x", "a/../../x"] {
            assert!(
                matches!(dir.write(bad, b""), Err(WorkDirError::BadPath(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_temp_dir_goes_away_and_a_kept_one_stays() {
        let temp = WorkDir::new(None).unwrap();
        let path = temp.path().to_path_buf();
        drop(temp);
        assert!(!path.exists());
        let outer = tempfile::tempdir().unwrap();
        let kept = WorkDir::new(Some(&outer.path().join("w"))).unwrap();
        kept.write("f", b"x").unwrap();
        drop(kept);
        assert!(outer.path().join("w/f").exists());
    }
}
