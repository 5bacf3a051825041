//! The template mount namespace: the sandbox's shared root, built once and kept.
//!
//! Every sandbox of one shape (language, extra mounts, hostname) has the same read-only root:
//! binds of `/usr`, `/lib`..., copies of a few `/etc` files, device nodes, mount points. The
//! helper builds it once in a mount namespace of its own, `pivot_root`s that namespace into it
//! (so the namespace holds the sandbox's tree and nothing of the host's) and, when Brig runs as
//! root, keeps the namespace as a bind mount of its nsfs file under
//! `<runtime_dir>/templates/<key>` (the way `ip netns` keeps network namespaces). A run then
//! `setns`es into the template just around its `clone3(CLONE_NEWNS)`: the sandbox's mount
//! namespace is a copy of the template's few mounts, already rooted, and its init only adds
//! the run's own `/proc`, `/tmp`, `/dev/shm` and `/work` (`mounts::RootPlan::per_run`). This
//! takes ~1 ms of mounting, a `pivot_root` (which walks every task of the host) and the
//! teardown of a copy of the host's mount table out of each run.
//!
//! The key hashes the template's operations with the identity (device, inode, size, mtime) of
//! every host file they bind or copy, so an upgraded `/etc/ld.so.cache` or a replaced toolchain
//! makes a new template rather than a stale root. The root tmpfs is read-only down to its
//! superblock: every sandbox's root is a mount of that one tmpfs. Past `MAX_KEPT` templates
//! the kept ones are dropped and the pool starts over.
//!
//! `/proc` of the template is a proc instance of a PID namespace that exists only to mount it
//! (so it lists no process): a user namespace may mount a new proc only where a fully visible
//! one exists (`mount_too_revealing` in the kernel), and the sandbox's init mounts its own over
//! this one.
//!
//! Man pages: mount_namespaces(7), setns(2), pivot_root(2), ip-netns(8).

use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::LinkNameSpaceType;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::Path;

use crate::mounts::{self, MountOp};
use crate::run::{JailError, os, os_errno};
use crate::sys::{self, Forked};

/// Kept templates (one per sandbox shape in use) before the pool is emptied and refilled.
const MAX_KEPT: usize = 64;
/// Changes whenever what a template holds changes without its operations changing.
const LAYOUT_VERSION: u32 = 1;
/// `f_type` of nsfs (linux/magic.h).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// A template mount namespace, with the way back to the helper's own.
pub(crate) struct Template {
    namespace: OwnedFd,
    home: OwnedFd,
    cwd: OwnedFd,
    /// The paths Landlock grants read and execute beneath in this root
    /// (`landlock::read_exec_roots`).
    read_exec: Vec<std::path::PathBuf>,
}

impl Template {
    /// The template for `ops`: the kept one when there is one (`keep`: Brig runs as root),
    /// else a new one, kept when `keep`.
    pub(crate) fn prepare(
        runtime_dir: &Path,
        ops: &[MountOp],
        host_files: u64,
        keep: bool,
    ) -> Result<Template, JailError> {
        let home = open_namespace(Path::new("/proc/thread-self/ns/mnt"))
            .map_err(os("open our mount namespace"))?;
        // Where to come back to after each `setns` (which moves us to the namespace's root);
        // `/` if our working directory is gone.
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let cwd = rustix::fs::open(".", dir_flags, Mode::empty())
            .or_else(|_| rustix::fs::open("/", dir_flags, Mode::empty()))
            .map_err(os_errno("open the working directory"))?;
        let dir = runtime_dir.join("templates");
        let kept_at = dir.join(key(ops, host_files));
        let read_exec = crate::landlock::read_exec_roots(ops);
        if keep && let Some(namespace) = open_kept(&kept_at) {
            return Ok(Template {
                namespace,
                home,
                cwd,
                read_exec,
            });
        }
        let template = Template {
            namespace: build(runtime_dir, ops, &home, &cwd)?,
            home,
            cwd,
            read_exec,
        };
        if keep {
            // Best effort: without it the next run builds its own.
            let _ = template.keep(&dir, &kept_at);
        }
        Ok(template)
    }

    /// A copy of this template with `work` (the run's `/work` and files, `mounts::work_ops`)
    /// applied, for a run whose steps share `/work`. Not kept.
    pub(crate) fn with_work(self, work: &[MountOp]) -> Result<Template, JailError> {
        // Opened now: the template's /proc lists no process.
        let ours = rustix::fs::open(
            "/proc/thread-self/ns",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(os_errno("open /proc/thread-self/ns"))?;
        self.enter()?;
        let made = (|| {
            sys::unshare_mount_namespace().map_err(os("unshare mount namespace"))?;
            mounts::apply(Path::new("/"), work)?;
            rustix::fs::openat(
                &ours,
                "mnt",
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(os_errno("open the run's mount namespace"))
        })();
        self.leave()?;
        Ok(Template {
            namespace: made?,
            home: self.home,
            cwd: self.cwd,
            read_exec: self.read_exec,
        })
    }

    /// The paths Landlock grants read and execute beneath in this root.
    pub(crate) fn read_exec(&self) -> &[std::path::PathBuf] {
        &self.read_exec
    }

    /// Moves the (single-threaded) caller into the template; `clone3(CLONE_NEWNS)` then copies it.
    pub(crate) fn enter(&self) -> Result<(), JailError> {
        rustix::thread::move_into_link_name_space(
            self.namespace.as_fd(),
            Some(LinkNameSpaceType::Mount),
        )
        .map_err(os_errno("enter the template mount namespace"))
    }

    /// Back to the caller's own mount namespace and working directory.
    pub(crate) fn leave(&self) -> Result<(), JailError> {
        go_home(&self.home, &self.cwd)
    }

    fn keep(&self, dir: &Path, kept_at: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let lock = rustix::fs::open(
            dir.join(".lock"),
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        rustix::fs::flock(&lock, FlockOperation::LockExclusive)?;
        if open_kept(kept_at).is_some() {
            return Ok(());
        }
        make_private_mount(dir)?;
        let kept: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n != ".lock"))
            .collect();
        if kept.len() >= MAX_KEPT {
            for path in kept {
                let _ = rustix::mount::unmount(&path, UnmountFlags::DETACH);
                let _ = std::fs::remove_file(&path);
            }
        }
        drop(rustix::fs::open(
            kept_at,
            OFlags::CREATE | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?);
        let source = format!("/proc/self/fd/{}", self.namespace.as_raw_fd());
        Ok(rustix::mount::mount_bind(source.as_str(), kept_at)?)
    }
}

/// The template's name: a hash of its operations and of the identity of every host file they
/// use (`RootPlan::host_files`), so that a changed host file gives a new template.
fn key(ops: &[MountOp], host_files: u64) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    (env!("CARGO_PKG_VERSION"), LAYOUT_VERSION, ops, host_files).hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn open_namespace(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The kept namespace at `path`, if the file there is one (not an empty file whose bind mount
/// is not made yet, or was undone).
fn open_kept(path: &Path) -> Option<OwnedFd> {
    let fd = open_namespace(path).ok()?;
    let stat = rustix::fs::fstatfs(&fd).ok()?;
    (stat.f_type as i64 == NSFS_MAGIC).then_some(fd)
}

fn go_home(home: &OwnedFd, cwd: &OwnedFd) -> Result<(), JailError> {
    rustix::thread::move_into_link_name_space(home.as_fd(), Some(LinkNameSpaceType::Mount))
        .map_err(os_errno("return to our mount namespace"))?;
    rustix::process::fchdir(cwd).map_err(os_errno("return to our working directory"))
}

/// Builds a template in a new mount namespace and returns to `home`.
fn build(
    runtime_dir: &Path,
    ops: &[MountOp],
    home: &OwnedFd,
    cwd: &OwnedFd,
) -> Result<OwnedFd, JailError> {
    sys::unshare_mount_namespace().map_err(os("unshare mount namespace"))?;
    let built = (|| {
        let namespace = open_namespace(Path::new("/proc/thread-self/ns/mnt"))
            .map_err(os("open the template mount namespace"))?;
        let root = runtime_dir.join("root");
        mounts::prepare_root(&root)?;
        mounts::apply(&root, ops)?;
        mount_empty_proc(&root.join("proc"))?;
        // The template's tree becomes the namespace's whole tree: pivot_root(".", ".") stacks
        // the old root on the new one, and detaching "." removes it (pivot_root(2), NOTES).
        rustix::process::chdir(&root).map_err(os_errno("chdir into the new root"))?;
        rustix::process::pivot_root(".", ".").map_err(os_errno("pivot_root"))?;
        rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(os_errno("detach old root"))?;
        Ok(namespace)
    })();
    go_home(home, cwd)?;
    built
}

/// Mounts at `target` the proc of a new PID namespace whose only process exits at once.
fn mount_empty_proc(target: &Path) -> Result<(), JailError> {
    match sys::clone_into_namespaces(libc::CLONE_NEWPID as u64, None)
        .map_err(os("clone a PID namespace for the template's /proc"))?
    {
        Forked::Child => {
            let mounted = rustix::mount::mount(
                "proc",
                target,
                "proc",
                MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                None,
            );
            sys::exit_now(if mounted.is_ok() { 0 } else { 1 })
        }
        Forked::Parent { pid, .. } => {
            let status = rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            )
            .map_err(os_errno("wait for the template's /proc"))?;
            match status.and_then(|(_, s)| s.exit_status()) {
                Some(0) => Ok(()),
                _ => Err(JailError::Helper(
                    "mounting the template's /proc failed".into(),
                )),
            }
        }
    }
}

/// Makes `dir` a private mount point (a bind of itself), so that the namespaces kept under it
/// do not propagate: the kernel refuses to bind a mount namespace onto a shared mount.
fn make_private_mount(dir: &Path) -> io::Result<()> {
    let mount_id = |p: &Path| -> io::Result<u64> {
        let st = rustix::fs::statx(
            rustix::fs::CWD,
            p,
            rustix::fs::AtFlags::empty(),
            rustix::fs::StatxFlags::MNT_ID,
        )?;
        Ok(st.stx_mnt_id)
    };
    if mount_id(dir)? == mount_id(&dir.join(".."))? {
        rustix::mount::mount_bind(dir, dir)?;
    }
    rustix::mount::mount_change(dir, MountPropagationFlags::PRIVATE)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_the_operations_and_the_host_files_they_use() {
        let ops = vec![
            MountOp::CopyFile {
                host: "/etc/ld.so.cache".into(),
                path: "etc/ld.so.cache".into(),
            },
            MountOp::RemountRootReadOnly,
        ];
        let first = key(&ops, 1);
        assert_eq!(first, key(&ops, 1), "the key is stable");
        assert_eq!(first.len(), 16);
        // Host files that changed (`RootPlan::host_files`, tested with the plan) give a new key.
        assert_ne!(first, key(&ops, 2));
        // Other operations give another key.
        assert_ne!(first, key(&ops[..1], 1));
    }
}
