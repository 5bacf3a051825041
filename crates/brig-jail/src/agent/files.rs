//! File operations confined to the work dir. Every path is resolved by `openat2(2)` with
//! `RESOLVE_IN_ROOT` relative to the work dir's fd, so `..` and symlinks (absolute or relative)
//! cannot leave it; paths with `..` or absolute paths are refused up front with a clear error,
//! and magic links (`/proc/self/fd/...`) are never followed.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::{Read, Write};

use super::FileEntry;

/// Largest file the agent reads in one request.
pub const MAX_READ: u64 = 64 << 20;

/// A failed file operation: (kind, message).
pub type FileFailure = (&'static str, String);

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

fn check(path: &str) -> Result<Vec<&str>, FileFailure> {
    let trimmed = path.trim_start_matches("./");
    if trimmed.is_empty() || trimmed == "." {
        return Ok(Vec::new());
    }
    if path.starts_with('/') || path.contains('\0') {
        return Err((
            "invalid_path",
            format!("`{path}`: must be a path relative to the work dir"),
        ));
    }
    let parts: Vec<&str> = trimmed
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(("invalid_path", format!("`{path}`: `..` is not allowed")));
    }
    Ok(parts)
}

fn os_failure(path: &str, e: rustix::io::Errno) -> FileFailure {
    let kind = match e {
        rustix::io::Errno::NOENT => "not_found",
        rustix::io::Errno::ISDIR => "is_directory",
        rustix::io::Errno::NOTDIR => "not_directory",
        rustix::io::Errno::XDEV | rustix::io::Errno::LOOP => "invalid_path",
        _ => "io",
    };
    (kind, format!("`{path}`: {}", std::io::Error::from(e)))
}

fn open(work: &OwnedFd, rel: &str, flags: OFlags, mode: u32) -> rustix::io::Result<OwnedFd> {
    let target = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        work,
        target,
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(mode),
        RESOLVE,
    )
}

/// Writes `content` to `path`, creating parent directories.
pub fn write(work: &OwnedFd, path: &str, mode: u32, content: &[u8]) -> Result<(), FileFailure> {
    let parts = check(path)?;
    let Some((name, parents)) = parts.split_last() else {
        return Err(("is_directory", "the work dir itself is not a file".into()));
    };
    if mode & !0o777 != 0 {
        return Err(("invalid_path", format!("mode {mode:o} must be within 0777")));
    }
    let mut dir = rustix::io::dup(work).map_err(|e| os_failure(path, e))?;
    for part in parents {
        match rustix::fs::mkdirat(&dir, *part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(os_failure(path, e)),
        }
        dir = open(&dir, part, OFlags::DIRECTORY | OFlags::RDONLY, 0)
            .map_err(|e| os_failure(path, e))?;
    }
    let fd = open(
        &dir,
        name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC,
        mode,
    )
    .map_err(|e| os_failure(path, e))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| os_failure(path, e))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(content)
        .map_err(|e| ("io", format!("`{path}`: {e}")))
}

/// Reads `path`.
pub fn read(work: &OwnedFd, path: &str) -> Result<Vec<u8>, FileFailure> {
    let parts = check(path)?;
    let fd = open(work, &parts.join("/"), OFlags::RDONLY, 0).map_err(|e| os_failure(path, e))?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| os_failure(path, e))?;
    if stat.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return Err(("is_directory", format!("`{path}` is a directory")));
    }
    if stat.st_size as u64 > MAX_READ {
        return Err((
            "too_large",
            format!("`{path}` is {} bytes, more than {MAX_READ}", stat.st_size),
        ));
    }
    let mut content = Vec::with_capacity(stat.st_size as usize);
    std::fs::File::from(fd)
        .take(MAX_READ + 1)
        .read_to_end(&mut content)
        .map_err(|e| ("io", format!("`{path}`: {e}")))?;
    Ok(content)
}

fn kind_of(file_type: rustix::fs::FileType) -> &'static str {
    match file_type {
        rustix::fs::FileType::RegularFile => "file",
        rustix::fs::FileType::Directory => "dir",
        rustix::fs::FileType::Symlink => "symlink",
        _ => "other",
    }
}

/// Lists the directory `path`.
pub fn list(work: &OwnedFd, path: &str) -> Result<Vec<FileEntry>, FileFailure> {
    let parts = check(path)?;
    let fd = open(
        work,
        &parts.join("/"),
        OFlags::RDONLY | OFlags::DIRECTORY,
        0,
    )
    .map_err(|e| os_failure(path, e))?;
    let mut entries = Vec::new();
    let mut dir = rustix::fs::Dir::read_from(&fd).map_err(|e| os_failure(path, e))?;
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|e| os_failure(path, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let stat = rustix::fs::statat(
            &fd,
            entry.file_name(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        );
        let (kind, size) = match stat {
            Ok(st) => (
                kind_of(rustix::fs::FileType::from_raw_mode(st.st_mode)),
                st.st_size as u64,
            ),
            Err(_) => ("other", 0),
        };
        entries.push(FileEntry {
            name,
            kind: kind.into(),
            size,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Deletes `path` (a directory with everything in it).
pub fn delete(work: &OwnedFd, path: &str) -> Result<(), FileFailure> {
    let parts = check(path)?;
    let Some((name, parents)) = parts.split_last() else {
        return Err((
            "invalid_path",
            "the work dir itself cannot be deleted".into(),
        ));
    };
    let parent = open(
        work,
        &parents.join("/"),
        OFlags::RDONLY | OFlags::DIRECTORY,
        0,
    )
    .map_err(|e| os_failure(path, e))?;
    remove(&parent, name, 0).map_err(|e| os_failure(path, e))
}

fn remove(parent: &impl AsFd, name: &str, depth: u32) -> rustix::io::Result<()> {
    let stat = rustix::fs::statat(parent, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return rustix::fs::unlinkat(parent, name, rustix::fs::AtFlags::empty());
    }
    if depth > 64 {
        return Err(rustix::io::Errno::LOOP);
    }
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    let mut reader = rustix::fs::Dir::read_from(&dir)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let child = entry.file_name().to_string_lossy().into_owned();
        if child != "." && child != ".." {
            names.push(child);
        }
    }
    for child in names {
        remove(&dir, &child, depth + 1)?;
    }
    rustix::fs::unlinkat(parent, name, rustix::fs::AtFlags::REMOVEDIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work() -> (tempfile::TempDir, OwnedFd) {
        let dir = tempfile::tempdir().unwrap();
        let fd = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        (dir, fd)
    }

    #[test]
    fn round_trip_binary_and_nested() {
        let (_d, w) = work();
        let bytes: Vec<u8> = (0..=255).collect();
        write(&w, "a/b/c.bin", 0o600, &bytes).unwrap();
        assert_eq!(read(&w, "a/b/c.bin").unwrap(), bytes);
        let listing = list(&w, "a/b").unwrap();
        assert_eq!(
            listing,
            vec![FileEntry {
                name: "c.bin".into(),
                kind: "file".into(),
                size: 256
            }]
        );
        delete(&w, "a").unwrap();
        assert_eq!(read(&w, "a/b/c.bin").unwrap_err().0, "not_found");
        assert!(list(&w, "").unwrap().is_empty());
    }

    #[test]
    fn traversal_and_symlink_escapes_are_refused() {
        let (d, w) = work();
        for bad in ["../x", "a/../../x", "/etc/passwd"] {
            assert_eq!(
                write(&w, bad, 0o644, b"x").unwrap_err().0,
                "invalid_path",
                "{bad}"
            );
            assert_eq!(read(&w, bad).unwrap_err().0, "invalid_path", "{bad}");
        }
        // A symlink pointing out of the work dir resolves inside it (RESOLVE_IN_ROOT), and the
        // final component is never followed (O_NOFOLLOW).
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "secret").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        std::os::unix::fs::symlink("/", d.path().join("rootlink")).unwrap();
        assert!(read(&w, "link").is_err());
        assert_ne!(
            read(&w, "rootlink/etc/hostname").ok(),
            std::fs::read("/etc/hostname").ok()
        );
        write(&w, "rootlink/tmp/planted", 0o644, b"x").ok();
        assert!(!std::path::Path::new("/tmp/planted").exists());
        assert_eq!(std::fs::read_to_string(outside.path()).unwrap(), "secret");
    }
}
