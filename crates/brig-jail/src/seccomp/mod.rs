//! seccomp-bpf: the last layer of the child sequence, a default-deny allowlist of syscalls.
//!
//! A seccomp filter is a classic-BPF program the kernel runs on every syscall the process makes;
//! it sees the architecture, the syscall number and the six raw argument registers (never the
//! memory they point to) and returns an action. Filters are inherited across `fork`/`clone` and
//! kept across `execve`, and can only ever be made stricter. Read seccomp(2), the
//! `PR_SET_NO_NEW_PRIVS` section of prctl(2), and the kernel's
//! `Documentation/userspace-api/seccomp_filter.rst`.
//!
//! # Parent and child halves
//! As nsjail does (`preparePolicy` before clone, `applyPolicy` in the child), [`compile`] runs in
//! the parent and may allocate; [`install`] runs in the child as the last step before `execve` and
//! makes two syscalls (`prctl(PR_SET_NO_NEW_PRIVS)`, `seccomp(SECCOMP_SET_MODE_FILTER)`) without
//! allocating. The BPF is built by `seccompiler` (rust-vmm, the compiler Firecracker uses): it is
//! pure Rust, compiles a 109-syscall allowlist in 22–42 µs in the parent, and the child installs
//! the ready program with one syscall, where `libseccomp` takes 190–265 µs and regenerates the
//! filter in the child (see `FINDINGS.md`). This list (289 syscalls on x86_64) compiles in about
//! 36 µs in a release build.
//!
//! # The policy
//! An allowlist in the spirit of Docker's default profile (moby `profiles/seccomp/default.json`),
//! tightened for running untrusted code with no capabilities at all:
//! - Anything not allowed fails with `EPERM`, which programs report cleanly, rather than killing
//!   the process. A foreign architecture (i386 `int 0x80`, for example) kills the process; the
//!   check is `seccompiler`'s, before anything else. x32 syscalls share `AUDIT_ARCH_X86_64` but
//!   have bit 30 set in their number (`nr | 0x4000_0000`), so none of them matches the allowlist
//!   and each gets `EPERM`.
//! - `clone3` fails with `ENOSYS`: its flags live in a struct in memory that BPF cannot read, and
//!   glibc falls back to `clone` on `ENOSYS` (Docker does the same).
//! - `clone` is allowed only without `CLONE_NEW*` flags; `unshare`, `setns`, and the whole mount
//!   API (`mount`, `umount2`, `pivot_root`, `chroot`, `open_tree`, `move_mount`, `fsopen`,
//!   `fsconfig`, `fsmount`, `fspick`, `mount_setattr`) are denied, so the sandbox cannot build new
//!   namespaces, where the kernel's attack surface is much larger.
//! - `socket` is limited to `AF_UNIX`, plus `AF_INET`/`AF_INET6` when
//!   [`SeccompPolicy::allow_network`] is set (no netlink, packet, vsock, ...); `socketpair` to
//!   `AF_UNIX`.
//! - `mknod`/`mknodat` may create FIFOs and regular files, never device nodes.
//! - `personality` accepts only Docker's values (`PER_LINUX`, `PER_LINUX32`, `UNAME26` and their
//!   combination, and the `0xffffffff` query); `ADDR_NO_RANDOMIZE` is refused.
//! - `ioctl` refuses `TIOCSTI` and `TIOCLINUX`, which push keystrokes into a terminal outside the
//!   sandbox (bubblewrap blocks both since CVE-2017-5226). The command is compared as 32 bits, as
//!   the kernel reads it, so high bits cannot smuggle it past.
//! - Denied outright, besides the above: `ptrace`, `process_vm_readv`/`writev`, `kcmp`,
//!   `pidfd_getfd`, `process_madvise`, `process_mrelease` (reaching into other processes); `bpf`,
//!   `perf_event_open`, `userfaultfd`, `io_uring_*`, `keyctl`/`add_key`/`request_key` (large,
//!   bug-prone kernel surfaces; libuv and others fall back when io_uring is refused); the
//!   `kexec_*`, `*_module`, `reboot`, `swapon`/`swapoff`, `acct`, `quotactl*`, `syslog`,
//!   `sethostname`/`setdomainname`, `vhangup`, `iopl`/`ioperm`, `modify_ldt`, `uselib`,
//!   `nfsservctl`, `lookup_dcookie`, `fanotify_init` administration calls; `settimeofday`,
//!   `clock_settime`, `clock_adjtime`, `adjtimex`; `open_by_handle_at`/`name_to_handle_at` (the
//!   "shocker" container escape); `migrate_pages`/`move_pages`.
//!
//! The unconditional part of the list is data, in `seccomp/syscalls.rs`. The program (193
//! instructions on x86_64) is a binary search over syscall numbers (`fast_path`) in front of
//! `seccompiler`'s linear chain, which holds only the argument-filtered calls (`ioctl`,
//! `socket`, `clone`...) and the architecture check. Unconditionally allowed syscalls do not run
//! it at all: since Linux 5.11 the kernel caches their verdict per syscall number when the
//! filter is installed, by running the filter once per number (over a linear chain of every
//! allowed call that took ~1 ms per sandbox; the search makes it cheap).
use std::collections::BTreeMap;

use libc::c_long;
use seccompiler::{
    BackendError, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

pub use seccompiler::BpfProgram;

mod syscalls;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("brig-jail's seccomp allowlist is written for x86_64 and aarch64 only");

/// What the filter allows beyond the fixed allowlist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompPolicy {
    /// Allow `AF_INET` and `AF_INET6` sockets. Whether they reach anything is the network
    /// namespace's business; without this, only `AF_UNIX` sockets can be created.
    pub allow_network: bool,
    /// Allow what building a sandbox inside the sandbox takes: `unshare` (a user namespace
    /// first, which the unprivileged caller may create, then the others), `mount`, `umount2`
    /// and `sethostname`. Only for the Python zygote (`zygote`), whose forks build each run's
    /// sandbox and then install the ordinary filter on top of this one: a stacked filter can
    /// only refuse more.
    pub nest_sandboxes: bool,
}

/// The calls [`SeccompPolicy::nest_sandboxes`] adds to the allowlist.
const NESTING: [c_long; 4] = [
    libc::SYS_unshare,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_sethostname,
];

/// The unconditionally allowed calls of `policy`.
fn allowed(policy: &SeccompPolicy) -> impl Iterator<Item = c_long> + '_ {
    syscalls::COMMON
        .iter()
        .chain(syscalls::ARCH)
        .copied()
        .chain(NESTING.into_iter().filter(|_| policy.nest_sandboxes))
}

/// A failure to build or to install the filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// Building the BPF program failed: a bug in the allowlist, or a program over 4096
    /// instructions.
    #[error("compiling the seccomp filter")]
    Compile(#[source] BackendError),
    /// `prctl(PR_SET_NO_NEW_PRIVS)` or `seccomp(SECCOMP_SET_MODE_FILTER)` failed in the child.
    #[error("installing the seccomp filter")]
    Install(#[source] seccompiler::Error),
}

/// Namespace-creating `clone` flags. `CLONE_NEWTIME` (0x80) exists only for `clone3` and
/// `unshare`; in `clone`'s first argument that bit belongs to the exit-signal byte, and masking it
/// only refuses exit signals of 128 and above, which are invalid anyway.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWTIME) as u64;

/// The `personality` values Docker allows: `PER_LINUX`, `PER_LINUX32`, `UNAME26`,
/// `UNAME26 | PER_LINUX32`, and `0xffffffff`, which only queries the current persona.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// `ioctl` commands that type into a terminal: `TIOCSTI` and `TIOCLINUX`.
#[allow(clippy::unnecessary_cast)] // `libc::Ioctl` is `c_ulong` with glibc but `c_int` with musl
const TERMINAL_INJECTION: [u64; 2] = [libc::TIOCSTI as u64, libc::TIOCLINUX as u64];

/// The largest program the kernel accepts (`BPF_MAXINSNS`).
const BPF_MAX_LEN: usize = 4096;

/// A policy's filter, compiled on first use. A run's helper asks for it only once the sandbox's
/// init is cloned and released, and sends it through a pipe (`encode`, `decode`): compiling
/// (~0.2 ms) overlaps with the init's own setup instead of delaying it.
pub struct Filter {
    policy: SeccompPolicy,
    program: std::cell::OnceCell<BpfProgram>,
}

impl Filter {
    /// The filter of `policy`, not compiled yet.
    pub fn new(policy: SeccompPolicy) -> Filter {
        Filter {
            policy,
            program: std::cell::OnceCell::new(),
        }
    }

    /// The compiled program (compiled now if it was not).
    pub fn program(&self) -> Result<&BpfProgram, SeccompError> {
        if let Some(program) = self.program.get() {
            return Ok(program);
        }
        let program = compile(&self.policy)?;
        Ok(self.program.get_or_init(|| program))
    }
}

/// A program as bytes (8 per instruction, native endianness), to cross a pipe or a socket.
pub fn encode(program: &BpfProgram) -> Vec<u8> {
    program
        .iter()
        .flat_map(|insn| {
            let mut bytes = [0u8; 8];
            bytes[..2].copy_from_slice(&insn.code.to_ne_bytes());
            bytes[2] = insn.jt;
            bytes[3] = insn.jf;
            bytes[4..].copy_from_slice(&insn.k.to_ne_bytes());
            bytes
        })
        .collect()
}

/// The program `encode` made, or None if `bytes` cannot be one (empty, or not whole
/// instructions).
pub fn decode(bytes: &[u8]) -> Option<BpfProgram> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) || bytes.len() / 8 > BPF_MAX_LEN {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|b| sock_filter {
                code: u16::from_ne_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect(),
    )
}

/// Build the BPF program for `policy`, for the architecture this crate is compiled for.
///
/// Runs in the parent, before clone; allocates. The program does not depend on anything but the
/// policy, so callers may compile once per policy and reuse it.
pub fn compile(policy: &SeccompPolicy) -> Result<BpfProgram, SeccompError> {
    build(policy).map_err(SeccompError::Compile)
}

/// The same policy without the binary-search prefix (`fast_path`): slower to install, equal in
/// every answer — the tests check that, syscall by syscall.
pub fn compile_linear(policy: &SeccompPolicy) -> Result<BpfProgram, SeccompError> {
    build_with(policy, false).map_err(SeccompError::Compile)
}

/// Install `program` on the calling thread.
///
/// Runs in the child as the last step before `execve`: the child is single-threaded there, so
/// the calling thread is the whole process, and the filter survives the `execve`. Sets
/// `PR_SET_NO_NEW_PRIVS` first (required to install a filter without `CAP_SYS_ADMIN`; the child
/// sequence has already set it, and setting it twice is harmless). Makes two syscalls and does not
/// allocate, on success or on error.
pub fn install(program: &BpfProgram) -> Result<(), SeccompError> {
    seccompiler::apply_filter(program).map_err(SeccompError::Install)
}

fn build(policy: &SeccompPolicy) -> Result<BpfProgram, BackendError> {
    build_with(policy, true)
}

fn build_with(policy: &SeccompPolicy, with_fast_path: bool) -> Result<BpfProgram, BackendError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let mut rules = rules(policy)?;
    if with_fast_path {
        // The search answers every unconditional syscall itself; the body only has to judge
        // the argument-filtered ones (and the foreign architecture), which keeps it short to
        // validate and JIT-compile at install time.
        rules.retain(|_, conditions| !conditions.is_empty());
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )?;
    let body: BpfProgram = filter.try_into()?;
    let mut program = clone3_enosys().to_vec();
    if with_fast_path {
        program.extend(fast_path(policy));
    }
    program.extend(body);
    if program.len() > BPF_MAX_LEN {
        return Err(BackendError::FilterTooLarge(program.len()));
    }
    Ok(program)
}

/// The allowlist as `seccompiler` wants it: syscall number → rules, any one of which allows the
/// call; an empty list allows it whatever the arguments.
fn rules(policy: &SeccompPolicy) -> Result<BTreeMap<c_long, Vec<SeccompRule>>, BackendError> {
    let mut rules: BTreeMap<c_long, Vec<SeccompRule>> =
        allowed(policy).map(|nr| (nr, Vec::new())).collect();

    // clone: threads and plain processes, no new namespaces. The flags are the first argument on
    // both supported architectures (s390 is the odd one out).
    let no_namespaces = SeccompCmpOp::MaskedEq(CLONE_NAMESPACE_FLAGS);
    rules.insert(libc::SYS_clone, vec![rule(&[(0, no_namespaces, 0)])?]);

    let mut families = vec![libc::AF_UNIX];
    if policy.allow_network {
        families.extend([libc::AF_INET, libc::AF_INET6]);
    }
    let families: Vec<u64> = families.into_iter().map(|f| f as u64).collect();
    rules.insert(libc::SYS_socket, any_of(0, &families)?);
    rules.insert(libc::SYS_socketpair, any_of(0, &[libc::AF_UNIX as u64])?);

    rules.insert(libc::SYS_mknodat, harmless_file_types(2)?);
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_mknod, harmless_file_types(1)?);

    rules.insert(libc::SYS_personality, any_of(0, &PERSONALITIES)?);

    let [sti, linux] = TERMINAL_INJECTION;
    let no_terminal_injection = rule(&[(1, SeccompCmpOp::Ne, sti), (1, SeccompCmpOp::Ne, linux)])?;
    rules.insert(libc::SYS_ioctl, vec![no_terminal_injection]);

    Ok(rules)
}

/// `mknod`/`mknodat` rules on the mode argument `arg`: a FIFO, a regular file, or no file type
/// at all (which the kernel treats as a regular file); never a device node or a socket.
fn harmless_file_types(arg: u8) -> Result<Vec<SeccompRule>, BackendError> {
    let file_type = SeccompCmpOp::MaskedEq(u64::from(libc::S_IFMT));
    [0, libc::S_IFREG, libc::S_IFIFO]
        .into_iter()
        .map(|t| rule(&[(arg, file_type.clone(), u64::from(t))]))
        .collect()
}

/// One rule per value: argument `arg` equals any of `values`.
fn any_of(arg: u8, values: &[u64]) -> Result<Vec<SeccompRule>, BackendError> {
    values
        .iter()
        .map(|&v| rule(&[(arg, SeccompCmpOp::Eq, v)]))
        .collect()
}

/// A rule whose conditions must all hold. Every argument filtered here is a C `int`,
/// `unsigned int` or `mode_t`, or (for `clone`) flags that all sit in the low half, so
/// conditions compare the low 32 bits only — as the kernel reads them, so that garbage in the
/// high half can neither smuggle a value past a `Ne` nor make an allowed value fail an `Eq`.
fn rule(conditions: &[(u8, SeccompCmpOp, u64)]) -> Result<SeccompRule, BackendError> {
    let conditions = conditions
        .iter()
        .map(|(arg, op, value)| {
            SeccompCondition::new(*arg, SeccompCmpArgLen::Dword, op.clone(), *value)
        })
        .collect::<Result<Vec<_>, _>>()?;
    SeccompRule::new(conditions)
}

/// A binary search over syscall numbers, in front of `seccompiler`'s program, which tests the
/// allowlist one number after the other. The search answers ALLOW for the unconditionally
/// allowed calls and EPERM for every call the allowlist does not name (in about ten
/// comparisons), and jumps to `seccompiler`'s program only for the few argument-filtered calls
/// and for a foreign architecture (which that program kills).
///
/// Why: when a filter is installed the kernel emulates it for every syscall number to cache the
/// constant answers; over a 1500-instruction linear chain that took ~1 ms per sandbox here.
fn fast_path(policy: &SeccompPolicy) -> Vec<sock_filter> {
    let allowed: std::collections::BTreeSet<u32> = allowed(policy).map(|nr| nr as u32).collect();
    let filtered: std::collections::BTreeSet<u32> = rules(policy)
        .map(|r| {
            r.into_iter()
                .filter(|(_, rules)| !rules.is_empty())
                .map(|(nr, _)| nr as u32)
                .collect()
        })
        .unwrap_or_default();
    // Intervals [start, next start) of numbers with the same answer; the last runs to u32::MAX
    // (x32 numbers, with bit 30 set, are denied there).
    let max = allowed.iter().chain(&filtered).max().copied().unwrap_or(0) + 1;
    let mut intervals: Vec<(u32, Leaf)> = Vec::new();
    for nr in 0..=max {
        let leaf = if filtered.contains(&nr) {
            Leaf::Body
        } else if allowed.contains(&nr) {
            Leaf::Allow
        } else {
            Leaf::Deny
        };
        if intervals.last().map(|(_, l)| *l) != Some(leaf) {
            intervals.push((nr, leaf));
        }
    }
    let mut nodes = Vec::new();
    let root = search(&intervals, &mut nodes);
    // Layout: the prologue, the tree's nodes (or, with one answer for every number, a jump to
    // it), the two shared answers, then the body.
    const PROLOGUE: usize = 3;
    let tree_len = nodes.len().max(1);
    let allow_at = PROLOGUE + tree_len;
    let deny_at = allow_at + 1;
    let body_at = deny_at + 1;
    let target = |branch: Branch| match branch {
        Branch::Node(i) => PROLOGUE + i,
        Branch::Leaf(Leaf::Allow) => allow_at,
        Branch::Leaf(Leaf::Deny) => deny_at,
        Branch::Leaf(Leaf::Body) => body_at,
    };
    // BPF jumps are forward, relative to the next instruction, and 8 bits wide: the whole tree
    // sits within 255 instructions of the body (the allowlist makes ~85 intervals, and
    // `program_fits_with_room_to_spare` would fail long before this overflows).
    let offset = |from: usize, to: usize| {
        u8::try_from(to - from - 1).expect("the search tree is within a BPF jump of the body")
    };
    let mut program = vec![
        op(BPF_LOAD, 0, 0, 4),                                   // arch
        op(BPF_JEQ, 0, offset(1, body_at), native_audit_arch()), // foreign: to the body
        op(BPF_LOAD, 0, 0, 0),                                   // nr
    ];
    match root {
        Branch::Node(_) => program.extend(nodes.iter().enumerate().map(|(i, node)| {
            let at = PROLOGUE + i;
            op(
                BPF_JGE,
                offset(at, target(node.at_or_above)),
                offset(at, target(node.below)),
                node.split,
            )
        })),
        // One answer for every number (not this allowlist): a jump to it.
        leaf => program.push(op(BPF_JA, 0, 0, u32::from(offset(PROLOGUE, target(leaf))))),
    }
    program.push(op(BPF_RET, 0, 0, libc::SECCOMP_RET_ALLOW));
    program.push(op(
        BPF_RET,
        0,
        0,
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
    ));
    program
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Leaf {
    Allow,
    Deny,
    Body,
}

/// Where a comparison of the search leads: another comparison (by its index among the nodes),
/// or an answer.
#[derive(Clone, Copy, Debug)]
enum Branch {
    Node(usize),
    Leaf(Leaf),
}

/// One comparison: `nr >= split`.
struct Node {
    split: u32,
    at_or_above: Branch,
    below: Branch,
}

const BPF_LOAD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const BPF_RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The search tree over `intervals` (sorted by start), its comparisons appended to `nodes` in
/// pre-order (so a node's lower half follows it); returns where the search starts. The answers
/// are not instructions of the tree: every comparison whose half has one answer jumps straight
/// to one shared `RET` (or to the body), which halves the program next to a `RET` per leaf.
/// The kernel validates and JIT-compiles every instruction at install time, per sandbox.
fn search(intervals: &[(u32, Leaf)], nodes: &mut Vec<Node>) -> Branch {
    if let [(_, leaf)] = intervals {
        return Branch::Leaf(*leaf);
    }
    let mid = intervals.len() / 2;
    let at = nodes.len();
    nodes.push(Node {
        split: intervals[mid].0,
        at_or_above: Branch::Leaf(Leaf::Deny),
        below: Branch::Leaf(Leaf::Deny),
    });
    nodes[at].below = search(&intervals[..mid], nodes);
    nodes[at].at_or_above = search(&intervals[mid..], nodes);
    Branch::Node(at)
}

fn native_audit_arch() -> u32 {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    ARCH
}

/// Three instructions put before `seccompiler`'s program: `clone3` returns `ENOSYS` (so glibc
/// falls back to `clone`, whose flags the filter can check) instead of the default `EPERM`.
/// `seccompiler` gives every match the same action, hence the hand-written prefix. It runs before
/// the architecture check, so syscall number 435 of a foreign architecture gets `ENOSYS` rather
/// than a kill: a refusal either way. BPF jumps are relative, so the program after it is intact.
fn clone3_enosys() -> [sock_filter; 3] {
    const LOAD_NR: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JUMP_EQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    [
        // `nr` is the first field of `struct seccomp_data`.
        sock_filter {
            code: LOAD_NR,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: JUMP_EQ,
            jt: 0,
            jf: 1,
            k: libc::SYS_clone3 as u32,
        },
        sock_filter {
            code: RETURN,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Syscalls that must never be in the allowlist, whatever the policy.
    const DENIED: &[(&str, c_long)] = &[
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("chroot", libc::SYS_chroot),
        ("move_mount", libc::SYS_move_mount),
        ("open_tree", libc::SYS_open_tree),
        ("fsopen", libc::SYS_fsopen),
        ("fsmount", libc::SYS_fsmount),
        ("fsconfig", libc::SYS_fsconfig),
        ("fspick", libc::SYS_fspick),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("unshare", libc::SYS_unshare),
        ("setns", libc::SYS_setns),
        ("clone3", libc::SYS_clone3),
        ("ptrace", libc::SYS_ptrace),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("process_madvise", libc::SYS_process_madvise),
        ("process_mrelease", libc::SYS_process_mrelease),
        ("kcmp", libc::SYS_kcmp),
        ("pidfd_getfd", libc::SYS_pidfd_getfd),
        ("bpf", libc::SYS_bpf),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("request_key", libc::SYS_request_key),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register),
        ("kexec_load", libc::SYS_kexec_load),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("reboot", libc::SYS_reboot),
        ("swapon", libc::SYS_swapon),
        ("swapoff", libc::SYS_swapoff),
        ("acct", libc::SYS_acct),
        ("quotactl", libc::SYS_quotactl),
        ("quotactl_fd", libc::SYS_quotactl_fd),
        ("settimeofday", libc::SYS_settimeofday),
        ("clock_settime", libc::SYS_clock_settime),
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("adjtimex", libc::SYS_adjtimex),
        ("syslog", libc::SYS_syslog),
        ("sethostname", libc::SYS_sethostname),
        ("setdomainname", libc::SYS_setdomainname),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("vhangup", libc::SYS_vhangup),
        ("fanotify_init", libc::SYS_fanotify_init),
        ("nfsservctl", libc::SYS_nfsservctl),
        ("migrate_pages", libc::SYS_migrate_pages),
        ("move_pages", libc::SYS_move_pages),
        #[cfg(target_arch = "x86_64")]
        ("iopl", libc::SYS_iopl),
        #[cfg(target_arch = "x86_64")]
        ("ioperm", libc::SYS_ioperm),
        #[cfg(target_arch = "x86_64")]
        ("modify_ldt", libc::SYS_modify_ldt),
        #[cfg(target_arch = "x86_64")]
        ("uselib", libc::SYS_uselib),
    ];

    fn all_lists() -> impl Iterator<Item = c_long> {
        syscalls::COMMON.iter().chain(syscalls::ARCH).copied()
    }

    #[test]
    fn no_denied_syscall_is_allowed() {
        for allow_network in [false, true] {
            let rules = rules(&SeccompPolicy {
                allow_network,
                ..Default::default()
            })
            .unwrap();
            for (name, nr) in DENIED {
                assert!(!rules.contains_key(nr), "{name} ({nr}) is in the allowlist");
            }
        }
    }

    #[test]
    fn only_the_zygote_policy_allows_nesting_and_nothing_else_it_denies() {
        let plain = rules(&SeccompPolicy::default()).unwrap();
        let zygote = rules(&SeccompPolicy {
            nest_sandboxes: true,
            ..Default::default()
        })
        .unwrap();
        for nr in NESTING {
            assert!(!plain.contains_key(&nr), "{nr} allowed without nesting");
            assert!(zygote.contains_key(&nr), "{nr} refused to the zygote");
        }
        for (name, nr) in DENIED {
            if !NESTING.contains(nr) {
                assert!(!zygote.contains_key(nr), "{name} allowed to the zygote");
            }
        }
        // Namespaces come only from `unshare`: `clone` keeps its no-namespace rule.
        assert!(!zygote[&libc::SYS_clone].is_empty());
    }

    #[test]
    fn lists_have_no_duplicates_and_no_argument_filtered_calls() {
        let mut seen = std::collections::BTreeSet::new();
        for nr in all_lists() {
            assert!(seen.insert(nr), "syscall {nr} is listed twice");
        }
        // A syscall in both places would have its argument rules silently replaced or widened.
        let filtered = [
            libc::SYS_clone,
            libc::SYS_socket,
            libc::SYS_socketpair,
            libc::SYS_mknodat,
            libc::SYS_personality,
            libc::SYS_ioctl,
        ];
        for nr in filtered {
            assert!(
                !seen.contains(&nr),
                "syscall {nr} is argument-filtered, not unconditional"
            );
        }
        #[cfg(target_arch = "x86_64")]
        assert!(!seen.contains(&libc::SYS_mknod));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn unified_numbers_match_libc() {
        assert_eq!(syscalls::SYS_FCHMODAT2, libc::SYS_fchmodat2);
    }

    #[test]
    fn allowlist_size() {
        let rules = rules(&SeccompPolicy::default()).unwrap();
        let filtered = rules.values().filter(|r| !r.is_empty()).count();
        println!(
            "allowlist: {} syscalls ({} argument-filtered) on {}",
            rules.len(),
            filtered,
            std::env::consts::ARCH
        );
        assert!(rules.len() > 200);
    }

    #[test]
    fn the_search_has_one_comparison_per_boundary_and_shared_answers() {
        for allow_network in [false, true] {
            let policy = SeccompPolicy {
                allow_network,
                ..Default::default()
            };
            let path = fast_path(&policy);
            let count = |code: u16| path.iter().filter(|i| i.code == code).count();
            // Intervals of equal answers over the numbers the allowlist names.
            let allowed: Vec<u32> = allowed(&policy).map(|nr| nr as u32).collect();
            assert!(allowed.len() > 200);
            let comparisons = count(BPF_JGE);
            assert!(comparisons > 40, "{comparisons} comparisons");
            // Two answers, each once: the leaves share them instead of a RET apiece.
            assert_eq!(count(BPF_RET), 2);
            // The prologue (3) and the answers (2) around one comparison per boundary.
            assert_eq!(path.len(), 3 + comparisons + 2);
            // Every jump lands inside the program (the body follows the path).
            for (at, insn) in path.iter().enumerate().filter(|(_, i)| i.code == BPF_JGE) {
                let furthest = at + 1 + usize::from(insn.jt.max(insn.jf));
                assert!(furthest <= path.len(), "jump at {at} past the body");
            }
        }
    }

    #[test]
    fn program_fits_with_room_to_spare() {
        let program = compile(&SeccompPolicy {
            allow_network: true,
            ..Default::default()
        })
        .unwrap();
        println!("BPF program: {} instructions", program.len());
        assert!(program.len() < BPF_MAX_LEN / 2);
    }
}
