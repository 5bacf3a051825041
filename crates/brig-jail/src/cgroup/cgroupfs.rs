//! The cgroupfs operations both versions share: one-`write(2)` writes, reads and parsing of
//! the kernel's flat formats, kill-until-empty, and `rmdir` with a retry.
//!
//! Interface files are small text files generated on each read; a write is parsed whole, so
//! each value goes out in one `write(2)`. Formats: `Documentation/admin-guide/cgroup-v2.rst`
//! ("Interface Files", "Conventions"). Signals: `man 2 pidfd_open`, `man 2 pidfd_send_signal`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, kill_process, pidfd_open, pidfd_send_signal};

use super::CgroupError;

/// Rounds of read-and-SIGKILL before [`CgroupError::KillTimeout`]; 1 ms apart.
const KILL_ROUNDS: u32 = 200;
/// How long `remove` retries an `EBUSY` rmdir.
const REMOVE_RETRY: Duration = Duration::from_millis(100);

/// SIGKILLs what the `cgroup.procs` files of `dirs` list, in rounds, until they list nothing.
pub(super) fn kill_until_empty(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    kill_rounds(dirs, KILL_ROUNDS)
}

/// SIGKILLs what the `cgroup.procs` files of `dirs` list, once, without waiting for the
/// processes to be gone.
pub(super) fn kill_listed(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    kill_rounds(dirs, 1).or_else(|e| match e {
        CgroupError::KillTimeout { .. } => Ok(()),
        other => Err(other),
    })
}

fn kill_rounds(dirs: &[PathBuf], rounds: u32) -> Result<(), CgroupError> {
    let procs: Vec<PathBuf> = dirs.iter().map(|d| d.join("cgroup.procs")).collect();
    let own_pid = std::process::id() as i32;
    let mut remaining = 0;
    for round in 0..rounds {
        if round > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let pids = read_procs(&procs)?;
        if pids.is_empty() {
            return Ok(());
        }
        remaining = pids.len();
        // Pin each process with a pidfd, then check it is still listed: a pid that exited
        // and was reused by an unrelated process between the two reads is never signalled.
        // (v1 has no atomic kill; runc freezes the group first. Here the group can only
        // refill up to pids.max between rounds, and every round kills what it lists.)
        let mut pinned = Vec::with_capacity(pids.len());
        for pid in pids {
            let Some(target) = Pid::from_raw(pid).filter(|_| pid != own_pid) else {
                continue; // never ourselves, nor 0 (`kill(0)` means our process group)
            };
            match pidfd_open(target, PidfdFlags::empty()) {
                Ok(fd) => pinned.push((pid, Some(fd))),
                Err(Errno::SRCH) => {} // exited meanwhile
                Err(Errno::NOSYS) => pinned.push((pid, None)), // before Linux 5.3
                Err(e) => {
                    return Err(CgroupError::Kill {
                        pid,
                        source: e.into(),
                    });
                }
            }
        }
        let listed = read_procs(&procs)?;
        for (pid, fd) in pinned {
            if !listed.contains(&pid) {
                continue;
            }
            let sent = match (fd, Pid::from_raw(pid)) {
                (Some(fd), _) => pidfd_send_signal(fd, Signal::KILL),
                (None, Some(target)) => kill_process(target, Signal::KILL),
                (None, None) => Ok(()),
            };
            match sent {
                Ok(()) | Err(Errno::SRCH) => {}
                Err(e) => {
                    return Err(CgroupError::Kill {
                        pid,
                        source: e.into(),
                    });
                }
            }
        }
    }
    Err(CgroupError::KillTimeout {
        path: procs[0].clone(),
        remaining,
    })
}

/// The union of the pids listed in `files`; a missing file (group gone) lists none.
pub(super) fn read_procs(files: &[PathBuf]) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    for file in files {
        match fs::read_to_string(file) {
            Ok(text) => pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CgroupError::Read {
                    path: file.clone(),
                    source,
                });
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// rmdir every directory, tolerating ones already gone and retrying `EBUSY` (tasks still
/// exiting) until [`REMOVE_RETRY`]. Tries them all and reports the first failure.
pub(super) fn remove_dirs(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    let deadline = Instant::now() + REMOVE_RETRY;
    let mut first_error = None;
    for dir in dirs {
        loop {
            match fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(source) => {
                    first_error.get_or_insert(CgroupError::RemoveDir {
                        path: dir.clone(),
                        source,
                    });
                    break;
                }
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One attempt at removing `dirs`: `Ok(false)` while one is still busy (its last tasks are
/// exiting); already-removed directories count as removed.
pub(super) fn remove_dirs_once(dirs: &[PathBuf]) -> Result<bool, CgroupError> {
    let mut removed = true;
    for dir in dirs {
        match fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => removed = false,
            Err(source) => {
                return Err(CgroupError::RemoveDir {
                    path: dir.clone(),
                    source,
                });
            }
        }
    }
    Ok(removed)
}

/// Writes `value` to an existing interface file in one `write(2)`, as cgroupfs expects.
/// No `O_CREAT`: a missing file means a missing controller, and should say so. `O_TRUNC`
/// is what `echo v > file` does too; cgroupfs ignores it and it keeps fixture files exact.
pub(super) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.into(),
            value: value.into(),
            source,
        })
}

pub(super) fn read(path: &Path) -> Result<String, CgroupError> {
    let error = |source| CgroupError::Read {
        path: path.into(),
        source,
    };
    read_whole(&fs::File::open(path).map_err(error)?).map_err(error)
}

/// Everything an interface file shows, from offset 0 (so a file kept open shows fresh values):
/// usually one `pread`, where `fs::read_to_string` takes a `statx` and a second read for EOF. A
/// short read is the end: cgroupfs shows each interface file as one seq_file record, handed out
/// whole when it fits.
pub(super) fn read_whole(file: &fs::File) -> io::Result<String> {
    use std::os::unix::fs::FileExt as _;
    let mut text = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = file.read_at(&mut chunk, text.len() as u64)?;
        text.extend_from_slice(&chunk[..n]);
        if n < chunk.len() {
            break;
        }
    }
    String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(super) fn parse_u64(text: &str, path: &Path) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.into(),
        expected: "number",
    })
}

/// The value of the `key value` line in flat-keyed files such as `memory.events`.
pub(super) fn keyed(
    text: &str,
    key: &str,
    path: &Path,
    expected: &'static str,
) -> Result<u64, CgroupError> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .ok_or_else(|| CgroupError::Parse {
            path: path.into(),
            expected,
        })
}
