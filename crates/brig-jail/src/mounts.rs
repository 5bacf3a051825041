//! The sandbox's filesystem: a new root on tmpfs holding read-only binds of the host's system
//! paths, generated `/etc` files, device nodes, and size-limited tmpfs for `/tmp` and `/work`.
//!
//! Three parts, as in nsjail and bubblewrap, with the shared half built once:
//! - `plan` (helper, before anything is mounted): the layout as lists of `MountOp`s, computed
//!   from the spec and what exists on the host: the *template* half every sandbox of this
//!   shape shares, and the *per-run* half (the run's tmpfs and files);
//! - `apply` (one loop over a list): the helper applies the template half as real root in a
//!   mount namespace of its own, which `template.rs` keeps for the next runs. Building it there,
//!   rather than in the sandbox's user namespace, lets the binds reach host paths the sandbox
//!   user could not traverse (a toolchain under `/root`), and makes every mount *locked* when
//!   the sandbox's namespaces copy it: the sandbox cannot remount them read-write or uncover
//!   what is beneath, even while it still holds capabilities;
//! - in the sandbox's init (its `/` already the template's root): `mount_proc`, then `apply`
//!   of the per-run half.
//!
//! Man pages: mount(2), pivot_root(2), mount_namespaces(7), tmpfs(5), proc(5).

use rustix::fs::{FileType, Mode};
use rustix::mount::{MountFlags, MountPropagationFlags};
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// The two halves of a sandbox's filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootPlan {
    /// What every sandbox of this shape shares: built once into a template mount namespace
    /// (`template.rs`), read-only, by the helper.
    pub template: Vec<MountOp>,
    /// Each sandbox's own size-limited tmpfs, `/dev/shm` and `/tmp`, mounted by its init in its
    /// own mount namespace. Paths are relative to the sandbox's `/`.
    pub step: Vec<MountOp>,
    /// The work dir and the program's files, owned by the sandbox user (ids inside its user
    /// namespace): made by the sandbox's init when the run has one step; when it has several,
    /// which share `/work`, the helper makes it once (`work_ops` with host ids) in a copy of
    /// the template that every step is cloned from.
    pub work: Vec<MountOp>,
    /// The identity (device, inode, size, modification time) of every host file and directory
    /// the template binds or copies, as the plan found them, hashed: a replaced host file
    /// (`ldconfig` writes a new `ld.so.cache` and renames it over the old one) gives another
    /// value, hence another template (`template.rs`), without a second `stat` of each.
    pub host_files: u64,
}

/// Adds what identifies the host file behind `meta` (or the error that stands for it) to
/// `hasher` (see [`RootPlan::host_files`]).
fn stamp(hasher: &mut DefaultHasher, meta: &io::Result<fs::Metadata>) {
    match meta {
        Ok(m) => (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()).hash(hasher),
        Err(e) => e.raw_os_error().hash(hasher),
    }
}

/// The layout for `spec`. `privileged` says whether device nodes can be created (real root)
/// or must be bound from the host.
pub fn plan(spec: &SandboxSpec, privileged: bool) -> Result<RootPlan, MountError> {
    let mut ops = Vec::new();
    let mut host_files = DefaultHasher::new();
    let rel = |p: &str| PathBuf::from(p.trim_start_matches('/'));
    for path in SYSTEM_PATHS {
        let meta = fs::symlink_metadata(path);
        match &meta {
            Ok(m) if m.file_type().is_symlink() => ops.push(MountOp::Symlink {
                path: rel(path),
                target: fs::read_link(path).map_err(syscall_err("readlink", Path::new(path)))?,
            }),
            Ok(m) if m.is_dir() => {
                stamp(&mut host_files, &meta);
                ops.push(MountOp::BindReadOnly {
                    host: path.into(),
                    path: rel(path),
                });
            }
            _ => {}
        }
    }
    ops.push(MountOp::Dir {
        path: "etc".into(),
        mode: 0o755,
        owner: None,
    });
    for dir in ETC_DIRS {
        let meta = fs::metadata(dir);
        if meta.as_ref().is_ok_and(fs::Metadata::is_dir) {
            stamp(&mut host_files, &meta);
            ops.push(MountOp::BindReadOnly {
                host: dir.into(),
                path: rel(dir),
            });
        }
    }
    for file in ETC_FILES {
        let meta = fs::symlink_metadata(file);
        if meta.is_ok() {
            stamp(&mut host_files, &meta);
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
        // Followed, as the bind follows it: a dangling symlink is a missing source.
        let meta = fs::metadata(mount);
        if meta.is_err() {
            return Err(MountError::MissingSource(mount.clone()));
        }
        stamp(&mut host_files, &meta);
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
            let host = Path::new("/dev").join(name);
            stamp(&mut host_files, &fs::metadata(&host));
            MountOp::BindDevice { host, path }
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
    // Mount points of the per-run half (and of the sandbox's own /proc).
    for (path, mode) in [("dev/shm", 0o1777), ("proc", 0o555), ("tmp", 0o1777)] {
        ops.push(MountOp::Dir {
            path: path.into(),
            mode,
            owner: None,
        });
    }
    ops.push(MountOp::Dir {
        path: rel(WORK_DIR),
        mode: 0o755,
        owner: None,
    });
    ops.push(MountOp::RemountRootReadOnly);
    let disk = spec.disk_bytes();
    Ok(RootPlan {
        template: ops,
        step: vec![
            MountOp::Tmpfs {
                path: "dev/shm".into(),
                size: shm_bytes(disk),
                mode: 0o1777,
                owner: None,
            },
            MountOp::Tmpfs {
                path: "tmp".into(),
                size: disk,
                mode: 0o1777,
                owner: None,
            },
        ],
        work: work_ops(spec, (SANDBOX_UID, SANDBOX_GID)),
        host_files: host_files.finish(),
    })
}

/// The work dir tmpfs and the program's files in it, owned by `owner` (see `RootPlan::work`).
pub fn work_ops(spec: &SandboxSpec, owner: (u32, u32)) -> Vec<MountOp> {
    let rel = |p: &str| PathBuf::from(p.trim_start_matches('/'));
    let mut ops = vec![MountOp::Tmpfs {
        path: rel(WORK_DIR),
        size: spec.disk_bytes(),
        mode: 0o755,
        owner: Some(owner),
    }];
    for file in &spec.files {
        let mut dir = rel(WORK_DIR);
        for component in Path::new(&file.path)
            .parent()
            .into_iter()
            .flat_map(|p| p.iter())
        {
            dir.push(component);
            ops.push(MountOp::Dir {
                path: dir.clone(),
                mode: 0o755,
                owner: Some(owner),
            });
        }
        ops.push(MountOp::WriteFile {
            path: rel(WORK_DIR).join(&file.path),
            content: file.content.clone(),
            mode: file.mode,
            owner: Some(owner),
        });
    }
    ops
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
                // The superblock too: every sandbox's root is a mount of this one tmpfs, so
                // no mount of it, ever, may write.
                rustix::mount::mount_remount(root, MountFlags::RDONLY | MountFlags::NOSUID, "")
                    .map_err(io::Error::from)
                    .map_err(syscall_err("remount the root's superblock read-only", root))?;
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

/// In the sandbox's init, whose `/` is already the sandbox's root (a copy of the template's):
/// a fresh `/proc` for its PID namespace, over the template's (see `template.rs`).
pub fn mount_proc() -> Result<(), MountError> {
    rustix::mount::mount(
        "proc",
        "/proc",
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(io::Error::from)
    .map_err(syscall_err("mount proc", Path::new("/proc")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecFile;

    fn paths(ops: &[MountOp]) -> Vec<String> {
        ops.iter()
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
            .collect()
    }

    #[test]
    fn plan_has_the_layout_and_nothing_private() {
        let mut spec = SandboxSpec::command(&["/usr/bin/true"]);
        spec.files.push(SpecFile {
            path: "src/main.py".into(),
            content: b"print(1)".to_vec(),
            mode: 0o644,
        });
        let plan = plan(&spec, true).unwrap();
        let template = paths(&plan.template);
        let per_run = [paths(&plan.step), paths(&plan.work)].concat();
        for expected in ["usr", "etc/passwd", "dev/null", "dev/urandom", "proc"] {
            assert!(
                template.iter().any(|p| p == expected),
                "{expected} in {template:?}"
            );
        }
        // Mount points for the run's own tmpfs are in the template; the tmpfs and the
        // program's files are not.
        for mount_point in ["tmp", "work", "dev/shm"] {
            assert!(template.iter().any(|p| p == mount_point));
            assert!(plan.template.iter().all(|op| !matches!(op,
                MountOp::Tmpfs { path, .. } if path.to_str() == Some(mount_point))));
            assert!(per_run.iter().any(|p| p == mount_point), "{per_run:?}");
        }
        assert!(!template.iter().any(|p| p.starts_with("work/")));
        for forbidden in ["home", "root", "var", "run", "sys", "etc/shadow"] {
            assert!(
                !template.iter().any(|p| p == forbidden),
                "{forbidden} mounted"
            );
            assert!(
                !per_run.iter().any(|p| p == forbidden),
                "{forbidden} mounted"
            );
        }
        // The read-only remount of the root comes last.
        assert_eq!(plan.template.last(), Some(&MountOp::RemountRootReadOnly));
        // The work dir tmpfs comes before the files written into it, and belongs to the
        // sandbox user (ids inside its user namespace).
        let work = per_run.iter().position(|p| p == "work").unwrap();
        let file = per_run
            .iter()
            .position(|p| p == "work/src/main.py")
            .unwrap();
        assert!(work < file);
        assert!(plan.work.iter().any(|op| matches!(op,
            MountOp::Tmpfs { path, owner: Some((SANDBOX_UID, SANDBOX_GID)), .. } if path.ends_with("work"))));
    }

    #[test]
    fn generated_passwd_names_the_sandbox_user() {
        assert!(passwd().contains("sandbox:x:1000:1000:sandbox:/work:/bin/sh"));
        assert!(!passwd().contains("$"));
    }

    #[test]
    fn a_replaced_host_file_changes_the_plans_host_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("ld.so.cache");
        fs::write(&cache, "one").unwrap();
        let mut spec = SandboxSpec::command(&["/usr/bin/true"]);
        spec.ro_mounts.push(cache.clone());
        let first = plan(&spec, true).unwrap();
        assert_eq!(first, plan(&spec, true).unwrap(), "the plan is stable");
        // Replaced as ldconfig does: a new file renamed over the old one (a new inode).
        let replacement = dir.path().join("new");
        fs::write(&replacement, "two!").unwrap();
        fs::rename(&replacement, &cache).unwrap();
        let second = plan(&spec, true).unwrap();
        assert_eq!(first.template, second.template, "the same operations");
        assert_ne!(first.host_files, second.host_files);
    }

    #[test]
    fn a_missing_extra_mount_is_an_error() {
        let mut spec = SandboxSpec::command(&["/usr/bin/true"]);
        spec.ro_mounts.push("/no/such/toolchain".into());
        assert!(matches!(
            plan(&spec, true),
            Err(MountError::MissingSource(_))
        ));
    }
}
