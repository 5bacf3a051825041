//! The few raw syscalls Brig needs that no safe wrapper covers: `clone3` (or `clone`) into new
//! namespaces, `fork` inside the sandbox, `execve` with pre-built pointer arrays, `_exit`,
//! bringing `lo` up, `close_range`, `kill(-1)`, `getrusage` and `wait4`, the detached reaper that ends a sandbox
//! after `brig run` has exited, and `brig`'s entry point (`brig_start`, below). This is the
//! only module of the workspace allowed to use `unsafe`; every block says why it is sound.
//!
//! Everything here is called from a single-threaded process (the sandbox helper, see
//! `helper.rs`), which is what makes running ordinary Rust after `fork`/`clone3` sound: no other
//! thread can hold a lock (the allocator's, stdio's) at the moment of the copy.
//!
//! Man pages: clone(2), fork(2), execve(2), close_range(2), getrusage(2), wait4(2), netdevice(7).
#![allow(unsafe_code)]

use rustix::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ffi::CString;
use std::io;

// `brig`'s entry point (x86_64): pre-fault the pages the start-up relocations will write, in
// one `madvise(MADV_POPULATE_WRITE)`, then go on to glibc's `_start`.
//
// Brig is a static PIE (`.cargo/config.toml`): before `main`, glibc's
// `_dl_relocate_static_pie` writes ~57,000 relative relocations into ~240 pages of
// `.data.rel.ro` (the `PT_GNU_RELRO` range), and each first write to a page is a
// copy-on-write fault. Populating the range first makes the same copies in one system call
// instead of ~240 exceptions (a C check on this VM: 256 pages 237 µs faulted one by one, 127 µs
// populated). It must happen before any relocation is applied, so it cannot be Rust or C
// compiled as PIE (which would read relocated pointers): this is position-independent assembly
// that reads only the ELF header through a PC-relative address (`__ehdr_start`, the load
// base of a PIE) and the program headers after it.
//
// At entry the kernel has set `rsp` (argc, argv, envp, auxv above it) and `rdx` (0: no
// dynamic linker's fini); both reach `_start` unchanged, and no other register is defined
// yet. Not a PIE (`e_type` ET_EXEC, a `-C relocation-model=static` build): nothing to
// relocate, straight to `_start`. A kernel without MADV_POPULATE_WRITE (before 5.14) answers
// EINVAL, and the relocations fault the pages in as before. `crates/brig/build.rs` makes it
// the `brig` binary's entry (`-e brig_start`); other binaries keep `_start`.
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
std::arch::global_asm!(
    ".globl brig_start",
    ".type brig_start,@function",
    "brig_start:",
    "    mov r8, rdx",
    "    lea r9, [rip + __ehdr_start]",
    // e_type: 3 is ET_DYN (a PIE).
    "    cmp word ptr [r9 + 16], 3",
    "    jne 3f",
    // The program headers: e_phoff (+32), e_phentsize (+54), e_phnum (+56).
    "    mov rcx, qword ptr [r9 + 32]",
    "    add rcx, r9",
    "    movzx r10d, word ptr [r9 + 56]",
    "    movzx r11d, word ptr [r9 + 54]",
    "2:",
    "    test r10d, r10d",
    "    jz 3f",
    // PT_GNU_RELRO
    "    cmp dword ptr [rcx], 0x6474e552",
    "    je 4f",
    "    add rcx, r11",
    "    dec r10d",
    "    jmp 2b",
    "4:",
    // [base + p_vaddr (+16), + p_memsz (+40)), widened to whole pages.
    "    mov rdi, qword ptr [rcx + 16]",
    "    add rdi, r9",
    "    mov rsi, qword ptr [rcx + 40]",
    "    add rsi, rdi",
    "    and rdi, -4096",
    "    add rsi, 4095",
    "    and rsi, -4096",
    "    sub rsi, rdi",
    // madvise(start, length, MADV_POPULATE_WRITE); the result does not matter.
    "    mov edx, 23",
    "    mov eax, 28",
    "    syscall",
    "3:",
    "    mov rdx, r8",
    "    jmp _start",
    ".size brig_start, . - brig_start",
);

/// What `clone3`/`fork` returned in the calling process.
pub enum Forked {
    /// We are the new child.
    Child,
    /// We are the parent; the child's pid and, for `clone3`, a pidfd.
    Parent {
        /// The child's pid in our PID namespace.
        pid: i32,
        /// A pidfd for the child (clone3 only).
        pidfd: Option<OwnedFd>,
    },
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3(flags | CLONE_PIDFD)` with `SIGCHLD` as the exit signal: a fork into new namespaces,
/// and, given a cgroup v2 directory fd, straight into that cgroup (`CLONE_INTO_CGROUP`).
pub fn clone_into_namespaces(
    namespace_flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: namespace_flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size we pass; without CLONE_VM the child gets
    // a copy of our address space and continues on its own stack like after fork(2). The caller
    // is single-threaded (checked by `run::check_this_process`), so the child's copy of
    // every lock is unlocked.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match forked(ret, pidfd) {
        // No clone3: a kernel before 5.3, or a seccomp profile that answers ENOSYS so that
        // callers fall back (Docker's default does). clone(2) makes the same child, without
        // CLONE_INTO_CGROUP; a caller that asked for it retries without (`step::start`).
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) && cgroup.is_none() => {
            clone_legacy(namespace_flags)
        }
        other => other,
    }
}

/// `clone(2)` with the same effect as `clone_into_namespaces` without a cgroup: for hosts where
/// `clone3` is missing or filtered.
fn clone_legacy(namespace_flags: u64) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let flags = namespace_flags | libc::CLONE_PIDFD as u64 | libc::SIGCHLD as u64;
    // SAFETY: as for clone3 above: without CLONE_VM and with no new stack (0), the child gets a
    // copy of our address space and continues on its copy of our stack, like after fork(2);
    // the caller is single-threaded. With CLONE_PIDFD the kernel writes the pidfd to the
    // `parent_tid` argument, the third one on x86_64 and aarch64.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            &mut pidfd as *mut RawFd,
            0usize,
            0usize,
        )
    };
    forked(ret, pidfd)
}

/// What a `clone`/`clone3` with CLONE_PIDFD returned (`ret`), and where it put the pidfd.
fn forked(ret: libc::c_long, pidfd: RawFd) -> io::Result<Forked> {
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the call succeeded in the parent, and with CLONE_PIDFD the kernel stored
            // a new, owned pidfd in `pidfd`.
            pidfd: Some(unsafe { OwnedFd::from_raw_fd(pidfd) }),
        }),
    }
}

/// Whether this process may call `clone3` (else `clone_into_namespaces` uses `clone`). Asks
/// with an empty argument, which a kernel that has it refuses with EINVAL, creating nothing.
pub fn clone3_available() -> bool {
    // SAFETY: a null pointer with size 0 is rejected before anything is read or created.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<CloneArgs>(), 0usize) };
    !(ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

/// `fork(2)`, for the sandbox's init to start the program.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: called only from the sandbox's init, a single-threaded process (see module doc).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { pid, pidfd: None }),
    }
}

/// Starts `child` in a new process that shares our memory until it calls `execve` or `_exit`,
/// the way `posix_spawn` does it (`clone(CLONE_VM | CLONE_VFORK)` on a stack of its own): no
/// page tables are copied and no copy-on-write fault follows, which makes starting the
/// sandbox's program ~0.2 ms cheaper than `fork`. We are suspended until then. Returns the
/// child's pid.
///
/// For the sandbox's init only: single-threaded, so no lock (the allocator's, stderr's) can be
/// held by anyone while the child runs on our memory; `child` must end in `execve` or
/// `exit_now` (returning ends the child with 127) and must not unwind.
pub fn spawn_sharing_memory(child: &mut dyn FnMut()) -> io::Result<i32> {
    const STACK_BYTES: usize = 256 * 1024;
    const GUARD_BYTES: usize = 4096;
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&mut &mut dyn FnMut` below, alive until the child has exec'd
        // or exited (CLONE_VFORK keeps the parent, and its stack frame, suspended until then).
        let child = unsafe { &mut *(arg as *mut &mut dyn FnMut()) };
        child();
        // `child` ends in execve or _exit; were it to return, the process still ends here.
        exit_now(127)
    }
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK_BYTES + GUARD_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the lowest page of our own mapping becomes a guard against stack overflow.
    unsafe { libc::mprotect(stack, GUARD_BYTES, libc::PROT_NONE) };
    let mut child_ref: &mut dyn FnMut() = child;
    // SAFETY: the stack top is the end of our mapping (page-aligned, so 16-byte aligned); the
    // child runs `trampoline` there while we are suspended (CLONE_VFORK), and shares no fd
    // table, fs or signal state with us (no CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_THREAD).
    let pid = unsafe {
        libc::clone(
            trampoline,
            (stack as *mut u8).add(STACK_BYTES + GUARD_BYTES) as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut child_ref as *mut &mut dyn FnMut() as *mut libc::c_void,
        )
    };
    let error = io::Error::last_os_error();
    // SAFETY: the child no longer uses the stack: it has exec'd (its memory is its own now) or
    // exited when clone returns in the parent, or it never started.
    unsafe { libc::munmap(stack, STACK_BYTES + GUARD_BYTES) };
    if pid == -1 { Err(error) } else { Ok(pid) }
}

/// What a detached reaper (`spawn_reaper`) does once the process that started it has gone:
/// send SIGKILL to every pidfd of `pidfds` and wait for each to report its process gone, then
/// remove each directory of `dirs` (cgroups; retried while the kernel still counts an exiting
/// task in one), and once they are all gone make a spare cgroup from `refill`
/// (`cgroup/spare.rs`). Every fd
/// not listed in `keep` is closed first, so the reaper holds none of its caller's pipes
/// (stdout, a test harness's) open; what it keeps (pidfds, lock files) is released when it
/// exits. Plain data that nobody frees or changes once the reaper runs (`&'static`).
pub struct ReaperPlan {
    /// Fds to keep open, sorted ascending: the pidfds and the claims (locks) to hold.
    pub keep: Vec<RawFd>,
    /// Processes to end (SIGKILL: sandboxes' inits, which wait for it) and wait for.
    pub pidfds: Vec<RawFd>,
    /// Directories to remove once they are gone.
    pub dirs: Vec<CString>,
    /// Where to make a spare cgroup once every directory of `dirs` is gone (see
    /// `cgroup/spare.rs`): candidates in order, each its directories, the lock one last.
    pub refill: Vec<Vec<CString>>,
    /// A pidfd of the process that started the reaper, for a reaper started ahead (while the
    /// sandbox still runs, `teardown::reap_early`): it does nothing until that process is gone.
    /// In `keep` too.
    pub wait_for: Option<RawFd>,
}

/// How long a reaper waits for a sandbox's init (which has been sent SIGKILL) to be gone
/// before giving up; what it leaves, the next start's sweep removes.
const REAPER_WAIT_SECS: i64 = 30;
/// How often, and how many times, a reaper retries an `rmdir` that answers EBUSY.
const REAPER_RMDIR_PAUSE_NS: i64 = 1_000_000;
const REAPER_RMDIR_TRIES: u32 = 2_000;

/// Starts a process that carries out `plan` after we are gone, without making us wait: the
/// end of a sandbox whose result is already known (`teardown::finish_in_background`). It
/// shares our memory (`CLONE_VM`, on a stack of its own, never unmapped), so starting it copies
/// no page tables, and our own exit then skips unmapping our address space: the reaper does
/// that, off the caller's clock. Returns its pid.
///
/// The reaper runs at the same time as we do, on our memory and with our thread pointer, so it
/// touches nothing but `plan` and its own stack, calls nothing that allocates, locks, panics or
/// sets `errno` (rustix's raw syscalls), and ends with the raw `exit` syscall: our heap, stdio
/// and thread-local state stay ours alone.
pub fn spawn_reaper(plan: &'static ReaperPlan) -> io::Result<i32> {
    const STACK_BYTES: usize = 64 * 1024;
    extern "C" fn reaper(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&'static ReaperPlan` passed below: alive for the whole process.
        let plan = unsafe { &*(arg as *const ReaperPlan) };
        reap(plan);
        // SAFETY: the raw exit syscall ends this process (its own thread group: no
        // CLONE_THREAD) without running anything of libc's or Rust's exit path, which belong
        // to the process we share memory with. It does not return.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
        0
    }
    // SAFETY: a fresh private anonymous mapping that nothing else refers to. It is never
    // unmapped: the reaper may outlive us, and the address space goes with the last of us.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the stack top is the end of our mapping (page-aligned). The child runs `reaper`
    // there on shared memory under the contract above; it gets copies of our fd table, fs and
    // signal state (no CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_THREAD), and SIGCHLD tells
    // whoever is its parent by then that it ended.
    let pid = unsafe {
        libc::clone(
            reaper,
            (stack as *mut u8).add(STACK_BYTES) as *mut libc::c_void,
            libc::CLONE_VM | libc::SIGCHLD,
            plan as *const ReaperPlan as *mut libc::c_void,
        )
    };
    if pid == -1 {
        let error = io::Error::last_os_error();
        // SAFETY: no child was started: the stack is ours alone.
        unsafe { libc::munmap(stack, STACK_BYTES) };
        return Err(error);
    }
    Ok(pid)
}

/// The reaper's work (see `spawn_reaper` for what it may and may not call).
fn reap(plan: &ReaperPlan) {
    let mut next: u32 = 0;
    for &fd in &plan.keep {
        let fd = fd as u32;
        if fd > next {
            close_fds(next, fd - 1);
        }
        next = fd.saturating_add(1);
    }
    close_fds(next, u32::MAX);
    if let Some(starter) = plan.wait_for {
        // SAFETY: `starter` is in `keep`: open in our fd table until we exit.
        let fd = unsafe { BorrowedFd::borrow_raw(starter) };
        let mut polled = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        // Readable once it has exited; only an interrupted wait is retried.
        while let Err(rustix::io::Errno::INTR) = rustix::event::poll(&mut polled, None) {}
    }
    for &pidfd in &plan.pidfds {
        // SAFETY: `pidfd` is in `keep`: open in our fd table until we exit.
        let fd = unsafe { BorrowedFd::borrow_raw(pidfd) };
        // A sandbox's init waits to be killed once it has sent the status (one already gone
        // answers ESRCH).
        let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
        let mut polled = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: REAPER_WAIT_SECS,
            tv_nsec: 0,
        };
        // Until it is gone, the wait times out (the next start's sweep sees to the rest) or
        // fails; only an interrupted wait is retried.
        while let Err(rustix::io::Errno::INTR) = rustix::event::poll(&mut polled, Some(&timeout)) {}
    }
    let mut all_removed = true;
    for dir in &plan.dirs {
        let mut gone = false;
        for _ in 0..REAPER_RMDIR_TRIES {
            match rustix::fs::rmdir(dir.as_c_str()) {
                Err(rustix::io::Errno::BUSY) | Err(rustix::io::Errno::INTR) => {
                    let pause = rustix::thread::Timespec {
                        tv_sec: 0,
                        tv_nsec: REAPER_RMDIR_PAUSE_NS,
                    };
                    let _ = rustix::thread::nanosleep(&pause);
                }
                Ok(()) | Err(rustix::io::Errno::NOENT) => {
                    gone = true;
                    break;
                }
                // Not ours to remove: done with it.
                Err(_) => break,
            }
        }
        all_removed &= gone;
    }
    if all_removed {
        crate::cgroup::refill(&plan.refill);
    }
}

/// `close_range(first, last, 0)`. Through libc's `syscall`, which writes `errno` only on
/// failure, and close_range fails only for `first > last`, which `reap` never asks: so the
/// reaper leaves the `errno` it shares with the process that started it alone.
fn close_fds(first: u32, last: u32) {
    if first > last {
        return;
    }
    // SAFETY: closes fds of the reaper's own fd table (a copy of its parent's, in which no Rust
    // owner lives); the call touches no memory.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
}

/// An `execve` prepared before forking: the strings and the NULL-terminated pointer arrays.
pub struct PreparedExec {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl PreparedExec {
    /// Builds the C strings; fails on an interior NUL (the spec validation rejects those).
    pub fn new(argv: &[String], env: &[(String, String)]) -> io::Result<PreparedExec> {
        let nul = |_| io::Error::from_raw_os_error(libc::EINVAL);
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(nul))
            .collect::<Result<_, _>>()?;
        let envp: Vec<CString> = env
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(nul))
            .collect::<Result<_, _>>()?;
        let program = argv
            .first()
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut prepared = PreparedExec {
            program,
            argv,
            envp,
            argv_ptrs: Vec::new(),
            envp_ptrs: Vec::new(),
        };
        prepared.argv_ptrs = prepared.argv.iter().map(|s| s.as_ptr()).collect();
        prepared.argv_ptrs.push(std::ptr::null());
        prepared.envp_ptrs = prepared.envp.iter().map(|s| s.as_ptr()).collect();
        prepared.envp_ptrs.push(std::ptr::null());
        Ok(prepared)
    }

    /// The program's path, for messages.
    pub fn program(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// Replaces this process with the program; returns only on failure.
    pub fn exec(&self) -> io::Error {
        // SAFETY: the pointer arrays are NULL-terminated and point into CStrings owned by
        // `self`, which outlives the call (on success the process image is replaced).
        unsafe {
            libc::execve(
                self.program.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            )
        };
        io::Error::last_os_error()
    }
}

/// `_exit(2)`: ends the process at once, without running atexit handlers or destructors
/// (which belong to the process we were forked from).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// `kill(-1, SIGKILL)`: from a PID namespace's init, SIGKILL to every other process of the
/// namespace (init itself is spared). Once it returns, each has the signal pending and runs no
/// more user code; a fork racing with it is either killed too or fails. Errors (ESRCH: nobody
/// left) do not matter.
pub fn kill_every_other_process() {
    // SAFETY: kill(2) takes no pointers.
    unsafe { libc::kill(-1, libc::SIGKILL) };
}

/// Closes each fd of `fds` but `keep`: the sandbox's init, once the program has its own stdio,
/// drops the copies of the helper's stdio (0, 1, 2) that came with the helper's fd table.
pub fn close_inherited(fds: &[RawFd], keep: RawFd) {
    for &fd in fds.iter().filter(|&&fd| fd != keep) {
        // SAFETY: init never returns (it exits or is killed), so no `OwnedFd` left in its memory
        // is dropped after this; the only fd it still uses is `keep`. A number already closed
        // gives EBADF, which changes nothing.
        unsafe { libc::close(fd) };
    }
}

/// Whether the calling process has a child left, running, stopped or a zombie:
/// `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT | __WALL)` fails with ECHILD only when it has
/// none (`__WALL`: children that announce their end with another signal than SIGCHLD count
/// too). Any other answer counts as a child. Reaps nothing.
pub fn has_children() -> bool {
    // SAFETY: an all-zero `siginfo_t` is a valid value of the plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let options = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
    // SAFETY: a valid idtype and options, and a pointer to a writable `siginfo_t` that lives
    // across the call.
    let ret = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, options) };
    !(ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
}

/// What `getrusage(RUSAGE_CHILDREN)` says of the children (and their waited-for descendants)
/// that the calling process has reaped. rustix has no `getrusage`.
pub fn reaped_children_usage() -> io::Result<ChildrenUsage> {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct, and getrusage only
    // writes into the one we pass, which lives across the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a pointer to a writable `rusage`.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ChildrenUsage::from(&usage))
}

/// `wait4(pid)`, blocking: the child's raw wait status and its usage (its own and that of
/// the descendants it waited for). rustix's `waitpid` does not return the usage.
pub fn wait_with_usage(pid: i32) -> io::Result<(i32, ChildrenUsage)> {
    // SAFETY: as in `reaped_children_usage`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    loop {
        // SAFETY: pointers to a writable int and `rusage` that live across the call.
        let ret = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if ret == pid {
            return Ok((status, ChildrenUsage::from(&usage)));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// See [`reaped_children_usage`] and [`wait_with_usage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildrenUsage {
    /// User plus system CPU time.
    pub cpu_ns: u64,
    /// The largest resident set any of them reached.
    pub max_rss_bytes: u64,
}

impl From<&libc::rusage> for ChildrenUsage {
    fn from(usage: &libc::rusage) -> ChildrenUsage {
        let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
        ChildrenUsage {
            cpu_ns: ns(usage.ru_utime) + ns(usage.ru_stime),
            // In KiB on Linux: the largest of them, not a sum.
            max_rss_bytes: usage.ru_maxrss as u64 * 1024,
        }
    }
}

/// Marks every fd from `first` up close-on-exec, so the program inherits only 0, 1 and 2.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags; it closes nothing, so no
    // Rust owner is left with a dangling fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Brings the loopback interface of the current network namespace up (SIOCSIFFLAGS).
pub fn loopback_up() -> io::Result<()> {
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq that lives for the whole call.
    let ret = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `unshare(CLONE_NEWCGROUP)`.
pub fn unshare_cgroup_namespace() -> io::Result<()> {
    unshare(libc::CLONE_NEWCGROUP)
}

/// `unshare(CLONE_NEWNS)` for the helper's private mount namespace.
pub fn unshare_mount_namespace() -> io::Result<()> {
    unshare(libc::CLONE_NEWNS)
}

/// `unshare(CLONE_NEWUSER | CLONE_NEWNS)`: the unprivileged helper's own user namespace, and
/// a mount namespace that it owns.
pub fn unshare_user_and_mount_namespaces() -> io::Result<()> {
    unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS)
}

/// `unshare(CLONE_NEWNET)`: a new, empty network namespace (only a down `lo`).
pub fn unshare_network_namespace() -> io::Result<()> {
    unshare(libc::CLONE_NEWNET)
}

fn unshare(flag: libc::c_int) -> io::Result<()> {
    // SAFETY: none of these flags is CLONE_FILES/CLONE_FS/CLONE_VM, the ones that could leave
    // other threads with a diverged view; and the caller is single-threaded anyway.
    if unsafe { libc::unshare(flag) } == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The Landlock ABI version the kernel offers (0 when it has none).
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with the VERSION flag and a NULL attr of size 0 the call only returns a number.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 { 0 } else { ret as i32 }
}

/// An `OwnedFd` naming fd number `n`, as the target of a `dup2` in a freshly forked child that
/// then execs (or exits): the caller forgets it instead of closing it.
pub fn fd_number(n: RawFd) -> OwnedFd {
    // SAFETY: only used as a dup2 target in a forked child, where fd `n` is either free or one
    // we are about to replace; the value is forgotten, never closed by Rust.
    unsafe { OwnedFd::from_raw_fd(n) }
}

#[cfg(test)]
mod tests {
    /// `has_children` in a forked process: none at first, one while a grandchild lives (and
    /// while it is an unreaped zombie), none once it is reaped. The forked process makes only
    /// syscalls (the test harness is multi-threaded) and reports through its exit code.
    #[test]
    fn has_children_sees_running_and_zombie_children_only() {
        // SAFETY: the child below only makes syscalls and ends with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let step = |ok: bool, code: i32| {
                if !ok {
                    super::exit_now(code)
                }
            };
            step(!super::has_children(), 10);
            // SAFETY: as above; the grandchild waits for SIGKILL.
            let grandchild = unsafe { libc::fork() };
            if grandchild == 0 {
                loop {
                    // SAFETY: pause takes no arguments.
                    unsafe { libc::pause() };
                }
            }
            step(grandchild > 0, 11);
            step(super::has_children(), 12);
            // SAFETY: kill takes no pointers.
            unsafe { libc::kill(grandchild, libc::SIGKILL) };
            // SAFETY: an all-zero `siginfo_t` is a valid value of the plain C struct.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waits for the grandchild's end without reaping it.
            let waited = unsafe {
                libc::waitid(
                    libc::P_PID,
                    grandchild as u32,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            step(waited == 0, 13);
            step(super::has_children(), 14);
            // SAFETY: reaps the zombie.
            step(
                unsafe { libc::waitpid(grandchild, std::ptr::null_mut(), 0) } == grandchild,
                15,
            );
            step(!super::has_children(), 16);
            super::exit_now(0)
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "the step that failed (10-16)");
    }

    use super::*;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    /// The reaper lets go of every fd it does not keep at once, ends the process behind its
    /// pidfd (SIGKILL: a sandbox's init waits for it) and waits for it, then removes the
    /// directories and makes a spare.
    #[test]
    fn a_reaper_closes_what_it_does_not_keep_ends_its_process_then_removes() {
        let dir = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = ["a", "b"].iter().map(|n| dir.path().join(n)).collect();
        for d in &dirs {
            std::fs::create_dir(d).unwrap();
        }
        let (mut sleeper, pidfd) = sleeping("30");
        let (read_end, write_end) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        // Spare "a" exists already: the reaper makes "b", whole, its lock directory last.
        let c = |name: &str| CString::new(dir.path().join(name).to_str().unwrap()).unwrap();
        std::fs::create_dir(dir.path().join("spare-a")).unwrap();
        let plan: &'static ReaperPlan = Box::leak(Box::new(ReaperPlan {
            wait_for: None,
            refill: vec![
                vec![c("spare-a-part"), c("spare-a")],
                vec![c("spare-b-part"), c("spare-b")],
            ],
            keep: vec![pidfd.as_raw_fd()],
            pidfds: vec![pidfd.as_raw_fd()],
            dirs: dirs
                .iter()
                .map(|d| CString::new(d.to_str().unwrap()).unwrap())
                .collect(),
        }));
        let started = Instant::now();
        let reaper = spawn_reaper(plan).unwrap();
        drop(write_end);
        // EOF at once: the reaper's copy of the write end is closed.
        let mut byte = [0u8; 1];
        assert_eq!(rustix::io::read(&read_end, &mut byte).unwrap(), 0);
        wait_for_reaper(reaper);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sleeper was waited out"
        );
        let status = sleeper.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "{status:?}"
        );
        assert!(dirs.iter().all(|d| !d.exists()), "left: {dirs:?}");
        for made in ["spare-a-part", "spare-b-part", "spare-b"] {
            assert!(dir.path().join(made).is_dir(), "{made} not made");
        }
    }

    /// A reaper started ahead (`wait_for`) does nothing until that process has exited.
    #[test]
    fn a_reaper_started_ahead_waits_for_its_starter() {
        let dir = tempfile::tempdir().unwrap();
        let group = dir.path().join("group");
        std::fs::create_dir(&group).unwrap();
        let (mut starter, pidfd) = sleeping("0.4");
        let plan: &'static ReaperPlan = Box::leak(Box::new(ReaperPlan {
            keep: vec![pidfd.as_raw_fd()],
            pidfds: Vec::new(),
            dirs: vec![CString::new(group.to_str().unwrap()).unwrap()],
            refill: Vec::new(),
            wait_for: Some(pidfd.as_raw_fd()),
        }));
        let started = Instant::now();
        let reaper = spawn_reaper(plan).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        assert!(group.exists(), "removed while its starter runs");
        wait_for_reaper(reaper);
        assert!(started.elapsed() >= Duration::from_millis(350));
        assert!(starter.try_wait().unwrap().is_some());
        assert!(!group.exists());
    }

    /// A `sleep` of `seconds`, and a pidfd of it.
    fn sleeping(seconds: &str) -> (std::process::Child, OwnedFd) {
        let sleeper = std::process::Command::new("/bin/sleep")
            .arg(seconds)
            .spawn()
            .unwrap();
        let pid = rustix::process::Pid::from_raw(sleeper.id() as i32).unwrap();
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
        (sleeper, pidfd)
    }

    /// Waits for the reaper `pid`, which must have exited with 0.
    fn wait_for_reaper(pid: i32) {
        let status = rustix::process::waitpid(
            Some(rustix::process::Pid::from_raw(pid).unwrap()),
            rustix::process::WaitOptions::empty(),
        )
        .unwrap()
        .unwrap()
        .1;
        assert_eq!(status.exit_status(), Some(0));
    }

    /// A directory the reaper cannot remove (here: not empty) leaves the spare unmade: one is
    /// made only in the place of a group that is entirely gone.
    #[test]
    fn a_reaper_makes_no_spare_when_a_directory_stays() {
        let dir = tempfile::tempdir().unwrap();
        let busy = dir.path().join("busy");
        std::fs::create_dir_all(busy.join("inside")).unwrap();
        let c = |path: &std::path::Path| CString::new(path.to_str().unwrap()).unwrap();
        let plan: &'static ReaperPlan = Box::leak(Box::new(ReaperPlan {
            keep: Vec::new(),
            pidfds: Vec::new(),
            dirs: vec![c(&busy)],
            refill: vec![vec![c(&dir.path().join("spare-0"))]],
            wait_for: None,
        }));
        wait_for_reaper(spawn_reaper(plan).unwrap());
        assert!(busy.is_dir());
        assert!(!dir.path().join("spare-0").exists(), "a spare was made");
    }
}
