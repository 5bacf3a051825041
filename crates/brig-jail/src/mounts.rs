//! The sandbox's filesystem: a new root on tmpfs holding read-only binds of the host's system
//! paths, generated `/etc` files, device nodes, and size-limited tmpfs for `/tmp` and `/work`.
//!
//! Two halves, as in nsjail and bubblewrap:
//! - `plan` (helper, before anything is mounted): the layout as a list of `MountOp`s, computed
//!   from the spec and what exists on the host;
//! - `apply` (helper, as real root in its own private mount namespace): one loop over the list.
//!   Building the tree there, rather than in the sandbox's user namespace, lets the binds reach
//!   host paths the sandbox user could not traverse (a toolchain under `/root`), and makes every
//!   mount *locked* when the sandbox's namespaces copy it: the sandbox cannot remount them
//!   read-write or uncover what is beneath, even while it still holds capabilities;
//! - `enter` (the sandbox's init, in its new namespaces): fresh `/proc`, then `pivot_root` into
//!   a self-bind of the prepared root (a locked mount cannot be pivoted into) and detach the
//!   old root.
//!
//! Man pages: mount(2), pivot_root(2), mount_namespaces(7), tmpfs(5), proc(5).

use rustix::fs::{FileType, Mode};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::spec::{SANDBOX_GID, SANDBOX_UID, SandboxSpec, WORK_DIR};

/// Host system paths offered read-only to every sandbox, when they exist. On merged-/usr
/// systems the top-level ones are symlinks and are recreated as symlinks (no mount needed).
const SYSTEM_PATHS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Directories of `/etc` the runtimes read, bound read-only when present.
const ETC_DIRS: &[&str] = &["/etc/alternatives", "/etc/ssl"];

/// Small files of `/etc` copied into the new root when present (a copy costs less than a bind
/// and its read-only remount). Never `/etc/shadow`, never the host's passwd.
const ETC_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/mime.types",
];

/// Character devices recreated in `/dev`: (name, major, minor).
const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
];

/// Size of the root tmpfs: it holds only directories, symlinks and a few small files.
const ROOT_TMPFS_BYTES: u64 = 4 << 20;
/// Largest `/dev/shm`.
const SHM_MAX_BYTES: u64 = 16 << 20;

/// The size of a sandbox's `/dev/shm` for a disk limit of `disk` bytes.
pub(crate) fn shm_bytes(disk: u64) -> u64 {
    disk.min(SHM_MAX_BYTES)
}

/// One step of building the new root. Paths are relative to the new root unless named `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// A directory (and its parents).
    Dir {
        /// Where, inside the new root.
        path: PathBuf,
        /// Permission bits.
        mode: u32,
        /// Host owner uid and gid (default: root).
        owner: Option<(u32, u32)>,
    },
    /// A read-only, nosuid, nodev bind of a host directory or file.
    BindReadOnly {
        /// The host path.
        host: PathBuf,
        /// Where, inside the new root.
        path: PathBuf,
    },
    /// A symlink.
    Symlink {
        /// Where, inside the new root.
        path: PathBuf,
        /// What it points to.
        target: PathBuf,
    },
    /// A copy of a small host file (a symlink is copied as a symlink).
    CopyFile {
        /// The host path.
        host: PathBuf,
        /// Where, inside the new root.
        path: PathBuf,
    },
    /// A generated file.
    WriteFile {
        /// Where, inside the new root.
        path: PathBuf,
        /// The bytes.
        content: Vec<u8>,
        /// Permission bits.
        mode: u32,
        /// Host owner uid and gid.
        owner: Option<(u32, u32)>,
    },
    /// A bind of a host device node (without privilege, a user namespace may not mknod).
    BindDevice {
        /// The host device.
        host: PathBuf,
        /// Where, inside the new root.
        path: PathBuf,
    },
    /// A character device node.
    Device {
        /// Where, inside the new root.
        path: PathBuf,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A size-limited, nosuid, nodev tmpfs.
    Tmpfs {
        /// Where, inside the new root.
        path: PathBuf,
        /// Size in bytes.
        size: u64,
        /// Mode of its root directory.
        mode: u32,
        /// Host owner uid and gid of its root directory.
        owner: Option<(u32, u32)>,
    },
    /// Makes the new root itself read-only (after everything else is in place).
    RemountRootReadOnly,
}

/// Errors while building the root, naming the operation and the path.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A mount-related syscall failed.
    #[error("{op} {path}: {source}")]
    Syscall {
        /// The operation (`mount tmpfs`, `bind`...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A read-only mount asked for by the spec does not exist on the host.
    #[error("read-only mount {0}: no such file or directory on this host")]
    MissingSource(PathBuf),
}

fn syscall_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MountError + 'a {
    move |source| MountError::Syscall {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The generated `/etc/passwd`: root (unmapped, for tools that look it up), the sandbox user
/// and nobody.
fn passwd() -> String {
    format!(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n\
         sandbox:x:{SANDBOX_UID}:{SANDBOX_GID}:sandbox:{WORK_DIR}:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
}

fn group() -> String {
    format!("root:x:0:\nsandbox:x:{SANDBOX_GID}:\nnogroup:x:65534:\n")
}

/// The layout for `spec`, given the host uid/gid the sandbox user maps to. `privileged` says
/// whether device nodes can be created (real root) or must be bound from the host.
pub fn plan(
    spec: &SandboxSpec,
    host_owner: (u32, u32),
    privileged: bool,
) -> Result<Vec<MountOp>, MountError> {
    let mut ops = Vec::new();
    let rel = |p: &str| PathBuf::from(p.trim_start_matches('/'));
    for path in SYSTEM_PATHS {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => ops.push(MountOp::Symlink {
                path: rel(path),
                target: fs::read_link(path).map_err(syscall_err("readlink", Path::new(path)))?,
            }),
            Ok(meta) if meta.is_dir() => ops.push(MountOp::BindReadOnly {
                host: path.into(),
                path: rel(path),
            }),
            _ => {}
        }
    }
    ops.push(MountOp::Dir {
        path: "etc".into(),
        mode: 0o755,
        owner: None,
    });
    for dir in ETC_DIRS {
        if Path::new(dir).is_dir() {
            ops.push(MountOp::BindReadOnly {
                host: dir.into(),
                path: rel(dir),
            });
        }
    }
    for file in ETC_FILES {
        if fs::symlink_metadata(file).is_ok() {
            ops.push(MountOp::CopyFile {
                host: file.into(),
                path: rel(file),
            });
        }
    }
    let hosts = format!(
        "127.0.0.1\tlocalhost {0}\n::1\tlocalhost {0}\n",
        spec.hostname
    );
    for (name, content) in [
        ("etc/passwd", passwd()),
        ("etc/group", group()),
        ("etc/hosts", hosts),
        ("etc/hostname", format!("{}\n", spec.hostname)),
    ] {
        ops.push(MountOp::WriteFile {
            path: name.into(),
            content: content.into_bytes(),
            mode: 0o644,
            owner: None,
        });
    }
    if !spec.system_files.is_empty() {
        ops.push(MountOp::Dir {
            path: "etc/brig".into(),
            mode: 0o755,
            owner: None,
        });
    }
    for file in &spec.system_files {
        ops.push(MountOp::WriteFile {
            path: Path::new("etc/brig").join(&file.path),
            content: file.content.clone(),
            mode: 0o644,
            owner: None,
        });
    }
    for mount in &spec.ro_mounts {
        if fs::symlink_metadata(mount).is_err() {
            return Err(MountError::MissingSource(mount.clone()));
        }
        ops.push(MountOp::BindReadOnly {
            host: mount.clone(),
            path: mount.strip_prefix("/").unwrap_or(mount).to_path_buf(),
        });
    }
    ops.push(MountOp::Dir {
        path: "dev".into(),
        mode: 0o755,
        owner: None,
    });
    for (name, major, minor) in DEVICES {
        let path = Path::new("dev").join(name);
        ops.push(if privileged {
            MountOp::Device {
                path,
                major: *major,
                minor: *minor,
            }
        } else {
            MountOp::BindDevice {
                host: Path::new("/dev").join(name),
                path,
            }
        });
    }
    for (name, target) in [
        ("dev/fd", "/proc/self/fd"),
        ("dev/stdin", "/proc/self/fd/0"),
        ("dev/stdout", "/proc/self/fd/1"),
        ("dev/stderr", "/proc/self/fd/2"),
    ] {
        ops.push(MountOp::Symlink {
            path: name.into(),
            target: target.into(),
        });
    }
    let disk = spec.disk_bytes();
    ops.push(MountOp::Tmpfs {
        path: "dev/shm".into(),
        size: shm_bytes(disk),
        mode: 0o1777,
        owner: None,
    });
    ops.push(MountOp::Dir {
        path: "proc".into(),
        mode: 0o555,
        owner: None,
    });
    ops.push(MountOp::Tmpfs {
        path: "tmp".into(),
        size: disk,
        mode: 0o1777,
        owner: None,
    });
    ops.push(MountOp::Tmpfs {
        path: rel(WORK_DIR),
        size: disk,
        mode: 0o755,
        owner: Some(host_owner),
    });
    for file in &spec.files {
        let path = rel(WORK_DIR).join(&file.path);
        let work = rel(WORK_DIR);
        let mut dir = work.clone();
        for component in Path::new(&file.path)
            .parent()
            .into_iter()
            .flat_map(|p| p.iter())
        {
            dir.push(component);
            ops.push(MountOp::Dir {
                path: dir.clone(),
                mode: 0o755,
                owner: Some(host_owner),
            });
        }
        ops.push(MountOp::WriteFile {
            path,
            content: file.content.clone(),
            mode: file.mode,
            owner: Some(host_owner),
        });
    }
    ops.push(MountOp::RemountRootReadOnly);
    Ok(ops)
}

/// Makes every mount of our (new, private) mount namespace private, so nothing we mount
/// propagates back to the host, then mounts the root tmpfs at `root`.
pub fn prepare_root(root: &Path) -> Result<(), MountError> {
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(io::Error::from)
    .map_err(syscall_err("make private", Path::new("/")))?;
    fs::create_dir_all(root).map_err(syscall_err("mkdir", root))?;
    mount_tmpfs(root, ROOT_TMPFS_BYTES, 0o755, None, MountFlags::NOSUID)
}

fn mount_tmpfs(
    target: &Path,
    size: u64,
    mode: u32,
    owner: Option<(u32, u32)>,
    flags: MountFlags,
) -> Result<(), MountError> {
    let mut data = format!("size={size},mode={mode:o}");
    if let Some((uid, gid)) = owner {
        data.push_str(&format!(",uid={uid},gid={gid}"));
    }
    let data = std::ffi::CString::new(data).expect("no NUL in tmpfs options");
    rustix::mount::mount("tmpfs", target, "tmpfs", flags, Some(data.as_c_str()))
        .map_err(io::Error::from)
        .map_err(syscall_err("mount tmpfs", target))
}

/// Applies the plan under `root`: one loop, one match.
pub fn apply(root: &Path, ops: &[MountOp]) -> Result<(), MountError> {
    for op in ops {
        match op {
            MountOp::Dir { path, mode, owner } => {
                let path = root.join(path);
                fs::create_dir_all(&path).map_err(syscall_err("mkdir", &path))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
                    .map_err(syscall_err("chmod", &path))?;
                chown(&path, *owner)?;
            }
            MountOp::BindReadOnly { host, path } => bind_read_only(host, &root.join(path))?,
            MountOp::Symlink { path, target } => {
                let path = root.join(path);
                symlink(target, &path).map_err(syscall_err("symlink", &path))?;
            }
            MountOp::CopyFile { host, path } => {
                let path = root.join(path);
                let meta = fs::symlink_metadata(host).map_err(syscall_err("stat", host))?;
                if meta.file_type().is_symlink() {
                    let target = fs::read_link(host).map_err(syscall_err("readlink", host))?;
                    symlink(target, &path).map_err(syscall_err("symlink", &path))?;
                } else {
                    fs::copy(host, &path).map_err(syscall_err("copy", &path))?;
                }
            }
            MountOp::WriteFile {
                path,
                content,
                mode,
                owner,
            } => {
                let path = root.join(path);
                fs::write(&path, content).map_err(syscall_err("write", &path))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
                    .map_err(syscall_err("chmod", &path))?;
                chown(&path, *owner)?;
            }
            MountOp::BindDevice { host, path } => {
                let path = root.join(path);
                fs::write(&path, b"").map_err(syscall_err("create mount point", &path))?;
                rustix::mount::mount_bind(host, &path)
                    .map_err(io::Error::from)
                    .map_err(syscall_err("bind device", &path))?;
                rustix::mount::mount_remount(
                    &path,
                    MountFlags::BIND | MountFlags::NOSUID | MountFlags::NOEXEC,
                    "",
                )
                .map_err(io::Error::from)
                .map_err(syscall_err("remount device", &path))?;
            }
            MountOp::Device { path, major, minor } => {
                let path = root.join(path);
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &path,
                    FileType::CharacterDevice,
                    Mode::from_raw_mode(0o666),
                    rustix::fs::makedev(*major, *minor),
                )
                .map_err(io::Error::from)
                .map_err(syscall_err("mknod", &path))?;
                // mknod applies the umask; devices must be usable by the sandbox user.
                fs::set_permissions(&path, fs::Permissions::from_mode(0o666))
                    .map_err(syscall_err("chmod", &path))?;
            }
            MountOp::Tmpfs {
                path,
                size,
                mode,
                owner,
            } => {
                let path = root.join(path);
                fs::create_dir_all(&path).map_err(syscall_err("mkdir", &path))?;
                mount_tmpfs(
                    &path,
                    *size,
                    *mode,
                    *owner,
                    MountFlags::NOSUID | MountFlags::NODEV,
                )?;
            }
            MountOp::RemountRootReadOnly => {
                rustix::mount::mount_remount(
                    root,
                    MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID,
                    "",
                )
                .map_err(io::Error::from)
                .map_err(syscall_err("remount read-only", root))?;
            }
        }
    }
    Ok(())
}

fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<(), MountError> {
    match owner {
        Some((uid, gid)) => {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(syscall_err("chown", path))
        }
        None => Ok(()),
    }
}

/// Binds `host` at `target` (creating a directory or an empty file to mount on), then remounts
/// it read-only, nosuid and nodev: a bind ignores those flags on its first mount.
fn bind_read_only(host: &Path, target: &Path) -> Result<(), MountError> {
    let meta = fs::metadata(host).map_err(syscall_err("stat", host))?;
    if meta.is_dir() {
        fs::create_dir_all(target).map_err(syscall_err("mkdir", target))?;
    } else {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(syscall_err("mkdir", parent))?;
        }
        fs::write(target, b"").map_err(syscall_err("create mount point", target))?;
    }
    rustix::mount::mount_bind_recursive(host, target)
        .map_err(io::Error::from)
        .map_err(syscall_err("bind", target))?;
    rustix::mount::mount_remount(
        target,
        MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
        "",
    )
    .map_err(io::Error::from)
    .map_err(syscall_err("remount read-only", target))
}

/// In the sandbox's init: mount a fresh `/proc` for its PID namespace, then make the prepared
/// root the process's `/` and detach the host's tree.
pub fn enter(root: &Path) -> Result<(), MountError> {
    let proc_dir = root.join("proc");
    rustix::mount::mount(
        "proc",
        &proc_dir,
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(io::Error::from)
    .map_err(syscall_err("mount proc", &proc_dir))?;
    // The prepared root is locked (it came from a more privileged mount namespace) and
    // pivot_root refuses a locked new root; a recursive self-bind is a fresh, unlocked copy
    // whose children stay locked.
    rustix::mount::mount_bind_recursive(root, root)
        .map_err(io::Error::from)
        .map_err(syscall_err("bind new root", root))?;
    rustix::process::chdir(root)
        .map_err(io::Error::from)
        .map_err(syscall_err("chdir", root))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then
    // removes the old root without needing a directory for it (see pivot_root(2), NOTES).
    rustix::process::pivot_root(".", ".")
        .map_err(io::Error::from)
        .map_err(syscall_err("pivot_root", root))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH)
        .map_err(io::Error::from)
        .map_err(syscall_err("detach old root", Path::new("/")))?;
    rustix::process::chdir("/")
        .map_err(io::Error::from)
        .map_err(syscall_err("chdir", Path::new("/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecFile;

    #[test]
    fn plan_has_the_layout_and_nothing_private() {
        let mut spec = SandboxSpec::command(&["/usr/bin/true"]);
        spec.files.push(SpecFile {
            path: "src/main.py".into(),
            content: b"print(1)".to_vec(),
            mode: 0o644,
        });
        let ops = plan(&spec, (4000, 4000), true).unwrap();
        let paths: Vec<String> = ops
            .iter()
            .filter_map(|op| match op {
                MountOp::BindReadOnly { path, .. }
                | MountOp::Symlink { path, .. }
                | MountOp::CopyFile { path, .. }
                | MountOp::WriteFile { path, .. }
                | MountOp::Tmpfs { path, .. }
                | MountOp::Device { path, .. }
                | MountOp::BindDevice { path, .. }
                | MountOp::Dir { path, .. } => Some(path.display().to_string()),
                MountOp::RemountRootReadOnly => None,
            })
            .collect();
        for expected in [
            "usr",
            "etc/passwd",
            "dev/null",
            "dev/urandom",
            "tmp",
            "work",
            "work/src/main.py",
        ] {
            assert!(
                paths.iter().any(|p| p == expected),
                "{expected} in {paths:?}"
            );
        }
        for forbidden in ["home", "root", "var", "run", "sys", "etc/shadow"] {
            assert!(!paths.iter().any(|p| p == forbidden), "{forbidden} mounted");
        }
        // The work dir tmpfs comes before the files written into it, and the read-only
        // remount of the root comes last.
        let work = paths.iter().position(|p| p == "work").unwrap();
        let file = paths.iter().position(|p| p == "work/src/main.py").unwrap();
        assert!(work < file);
        assert_eq!(ops.last(), Some(&MountOp::RemountRootReadOnly));
        // Files belong to the sandbox user's host id.
        assert!(ops.iter().any(|op| matches!(op,
            MountOp::WriteFile { path, owner: Some((4000, 4000)), .. } if path.ends_with("main.py"))));
    }

    #[test]
    fn generated_passwd_names_the_sandbox_user() {
        assert!(passwd().contains("sandbox:x:1000:1000:sandbox:/work:/bin/sh"));
        assert!(!passwd().contains("$"));
    }

    #[test]
    fn a_missing_extra_mount_is_an_error() {
        let mut spec = SandboxSpec::command(&["/usr/bin/true"]);
        spec.ro_mounts.push("/no/such/toolchain".into());
        assert!(matches!(
            plan(&spec, (1, 1), true),
            Err(MountError::MissingSource(_))
        ));
    }
}
