//! Pure tests of `brig_jail::seccomp` (no privilege, no kernel filter): the compiled program,
//! run by the small classic-BPF interpreter below on made-up `seccomp_data`, gives the expected
//! verdict for each syscall and argument. `seccomp_enforced.rs` checks the same policy against
//! the kernel.

use std::time::{Duration, Instant};

use brig_jail::seccomp::{SeccompPolicy, compile, compile_linear};
use libc::{ENOSYS, EPERM, c_long};
use seccompiler::sock_filter;

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "x86_64")]
const FOREIGN_ARCH: u32 = 0x4000_0003; // AUDIT_ARCH_I386, reachable through `int 0x80`
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
#[cfg(target_arch = "aarch64")]
const FOREIGN_ARCH: u32 = 0x4000_0028; // AUDIT_ARCH_ARM, the 32-bit compat ABI

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Allow,
    Errno(i32),
    KillProcess,
}

/// Run `program` the way the kernel would for one syscall (`struct seccomp_data`: `nr` at
/// offset 0, `arch` at 4, the instruction pointer at 8, six 64-bit arguments from 16). Supports
/// the instructions `seccompiler` and the module emit and panics on any other.
fn run_bpf(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> Verdict {
    use libc::{
        BPF_ABS, BPF_ALU, BPF_AND, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K,
        BPF_LD, BPF_RET, BPF_W,
    };
    let load = |offset: u32| match offset {
        0 => nr,
        4 => arch,
        16..=63 if offset.is_multiple_of(4) => {
            let arg = args[(offset as usize - 16) / 8];
            if offset.is_multiple_of(8) {
                arg as u32
            } else {
                (arg >> 32) as u32
            }
        }
        _ => panic!("load from seccomp_data offset {offset}"),
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let insn = &program[pc];
        pc += 1;
        let code = u32::from(insn.code);
        if code == BPF_LD | BPF_W | BPF_ABS {
            acc = load(insn.k);
        } else if code == BPF_ALU | BPF_AND | BPF_K {
            acc &= insn.k;
        } else if code == BPF_JMP | BPF_JA {
            pc += insn.k as usize;
        } else if code & 0x07 == BPF_JMP && code & 0x08 == BPF_K {
            let taken = match code & 0xf0 {
                BPF_JEQ => acc == insn.k,
                BPF_JGT => acc > insn.k,
                BPF_JGE => acc >= insn.k,
                BPF_JSET => acc & insn.k != 0,
                _ => panic!("unsupported BPF jump {code:#x}"),
            };
            pc += usize::from(if taken { insn.jt } else { insn.jf });
        } else if code == BPF_RET | BPF_K {
            let data = (insn.k & libc::SECCOMP_RET_DATA) as i32;
            return match insn.k & libc::SECCOMP_RET_ACTION_FULL {
                libc::SECCOMP_RET_ALLOW => Verdict::Allow,
                libc::SECCOMP_RET_ERRNO => Verdict::Errno(data),
                libc::SECCOMP_RET_KILL_PROCESS => Verdict::KillProcess,
                other => panic!("unexpected seccomp action {other:#x}"),
            };
        } else {
            panic!("unsupported BPF instruction {code:#x}");
        }
    }
}

/// The compiled filter for one policy, asked one question at a time.
struct Filter(Vec<sock_filter>);

impl Filter {
    fn new(allow_network: bool) -> Self {
        Self(
            compile(&SeccompPolicy {
                allow_network,
                ..Default::default()
            })
            .expect("policy compiles"),
        )
    }

    fn call(&self, nr: c_long, args: &[u64]) -> Verdict {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        run_bpf(&self.0, NATIVE_ARCH, nr as u32, all)
    }
}

const DENIED: Verdict = Verdict::Errno(EPERM);

#[test]
fn policy_compiles_quickly_for_both_network_settings() {
    for allow_network in [false, true] {
        let policy = SeccompPolicy {
            allow_network,
            ..Default::default()
        };
        let mut times: Vec<Duration> = (0..200)
            .map(|_| {
                let start = Instant::now();
                let program = compile(&policy).expect("policy compiles");
                let elapsed = start.elapsed();
                assert!(!program.is_empty());
                elapsed
            })
            .collect();
        times.sort();
        let program = compile(&policy).unwrap();
        println!(
            "allow_network={allow_network}: {} BPF instructions, compile min {:?}, median {:?}",
            program.len(),
            times[0],
            times[times.len() / 2],
        );
    }
}

#[test]
fn every_syscall_number_is_allowed_or_refused_never_killed() {
    let filter = Filter::new(true);
    let mut allowed = 0;
    for nr in 0..512 {
        match filter.call(nr, &[]) {
            Verdict::Allow => allowed += 1,
            Verdict::Errno(EPERM) => {}
            Verdict::Errno(ENOSYS) => assert_eq!(nr, libc::SYS_clone3),
            other => panic!("syscall {nr}: {other:?}"),
        }
    }
    // With all arguments zero, only socket and socketpair (AF_UNSPEC) among the allowlist fail.
    println!("{allowed} syscall numbers allowed with zero arguments");
}

#[test]
fn clone3_gets_enosys_so_libc_falls_back_to_clone() {
    assert_eq!(
        Filter::new(false).call(libc::SYS_clone3, &[]),
        Verdict::Errno(ENOSYS)
    );
}

#[test]
fn foreign_architecture_is_killed() {
    let filter = Filter::new(true);
    for nr in [0, 1, 20, 120, 435] {
        let verdict = run_bpf(&filter.0, FOREIGN_ARCH, nr, [0; 6]);
        // 435 is clone3 on every architecture and meets the ENOSYS prefix first: a refusal too.
        let expected = if nr == 435 {
            Verdict::Errno(ENOSYS)
        } else {
            Verdict::KillProcess
        };
        assert_eq!(verdict, expected, "foreign syscall {nr}");
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn x32_syscalls_get_eperm() {
    const X32: u32 = 0x4000_0000;
    let filter = Filter::new(true);
    for nr in [
        libc::SYS_read,
        libc::SYS_getpid,
        libc::SYS_openat,
        libc::SYS_clone3,
    ] {
        assert_eq!(
            run_bpf(&filter.0, NATIVE_ARCH, X32 | nr as u32, [0; 6]),
            DENIED
        );
    }
}

#[test]
fn clone_allows_processes_and_threads_but_no_namespaces() {
    let filter = Filter::new(false);
    let sigchld = libc::SIGCHLD as u64;
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    let vfork = (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | sigchld;
    for flags in [sigchld, thread, vfork] {
        assert_eq!(
            filter.call(libc::SYS_clone, &[flags]),
            Verdict::Allow,
            "{flags:#x}"
        );
    }
    for ns in [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWTIME,
    ] {
        let flags = ns as u64 | sigchld;
        assert_eq!(filter.call(libc::SYS_clone, &[flags]), DENIED, "{flags:#x}");
    }
}

#[test]
fn socket_families_follow_the_policy() {
    let families = [
        (libc::AF_UNIX, true, true),
        (libc::AF_INET, false, true),
        (libc::AF_INET6, false, true),
        (libc::AF_NETLINK, false, false),
        (libc::AF_PACKET, false, false),
        (libc::AF_VSOCK, false, false),
        (libc::AF_UNSPEC, false, false),
    ];
    for (family, without_net, with_net) in families {
        for (allow_network, allowed) in [(false, without_net), (true, with_net)] {
            let expected = if allowed { Verdict::Allow } else { DENIED };
            let filter = Filter::new(allow_network);
            let stream = libc::SOCK_STREAM as u64;
            let verdict = filter.call(libc::SYS_socket, &[family as u64, stream]);
            assert_eq!(
                verdict, expected,
                "socket({family}) allow_network={allow_network}"
            );
        }
        let expected = if family == libc::AF_UNIX {
            Verdict::Allow
        } else {
            DENIED
        };
        let verdict = Filter::new(true).call(libc::SYS_socketpair, &[family as u64]);
        assert_eq!(verdict, expected, "socketpair({family})");
    }
}

#[test]
fn mknod_makes_fifos_and_files_but_no_devices() {
    let filter = Filter::new(false);
    let cases = [
        (libc::S_IFIFO, Verdict::Allow),
        (libc::S_IFREG, Verdict::Allow),
        (0, Verdict::Allow), // no file type means a regular file
        (libc::S_IFCHR, DENIED),
        (libc::S_IFBLK, DENIED),
        (libc::S_IFSOCK, DENIED),
    ];
    for (file_type, expected) in cases {
        let mode = u64::from(file_type | 0o644);
        let at_fdcwd = libc::AT_FDCWD as u64;
        let verdict = filter.call(libc::SYS_mknodat, &[at_fdcwd, 0, mode, 0]);
        assert_eq!(verdict, expected, "mknodat mode {mode:o}");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            filter.call(libc::SYS_mknod, &[0, mode, 0]),
            expected,
            "mknod {mode:o}"
        );
    }
}

#[test]
fn personality_allows_only_dockers_values() {
    let filter = Filter::new(false);
    for persona in [0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff] {
        assert_eq!(
            filter.call(libc::SYS_personality, &[persona]),
            Verdict::Allow
        );
    }
    let no_aslr = libc::ADDR_NO_RANDOMIZE as u64;
    for persona in [no_aslr, 0x0400_0000 /* READ_IMPLIES_EXEC */, 0x1] {
        assert_eq!(
            filter.call(libc::SYS_personality, &[persona]),
            DENIED,
            "{persona:#x}"
        );
    }
}

#[test]
fn ioctl_refuses_terminal_injection_even_with_high_bits_set() {
    let filter = Filter::new(false);
    let sti = libc::TIOCSTI;
    for cmd in [sti, sti | 1 << 32, libc::TIOCLINUX] {
        assert_eq!(filter.call(libc::SYS_ioctl, &[0, cmd]), DENIED, "{cmd:#x}");
    }
    for cmd in [libc::TCGETS, libc::FIONREAD, libc::TIOCGWINSZ] {
        assert_eq!(
            filter.call(libc::SYS_ioctl, &[0, cmd]),
            Verdict::Allow,
            "{cmd:#x}"
        );
    }
}

#[test]
fn the_search_prefix_answers_exactly_like_the_linear_filter() {
    let interesting_args: [[u64; 6]; 5] = [
        [0; 6],
        [libc::AF_UNIX as u64, 1, 0, 0, 0, 0],
        [
            libc::AF_INET as u64,
            libc::CLONE_NEWUSER as u64,
            0o20644,
            0,
            0,
            0,
        ],
        [
            libc::CLONE_THREAD as u64 | libc::SIGCHLD as u64,
            0x5412,
            libc::S_IFCHR as u64 | 0o644,
            0,
            0,
            0,
        ],
        [u64::MAX; 6],
    ];
    for allow_network in [false, true] {
        let policy = SeccompPolicy {
            allow_network,
            ..Default::default()
        };
        let fast = compile(&policy).unwrap();
        let linear = compile_linear(&policy).unwrap();
        // The search plus a body for the argument-filtered calls only is much shorter.
        assert!(
            fast.len() * 2 < linear.len(),
            "{} vs {}",
            fast.len(),
            linear.len()
        );
        let numbers = (0..1100u32).chain([0x4000_0000, 0x4000_0027, 0x4000_0200, u32::MAX]);
        let mut checked = 0;
        for nr in numbers {
            for arch in [NATIVE_ARCH, FOREIGN_ARCH] {
                for args in interesting_args {
                    assert_eq!(
                        run_bpf(&fast, arch, nr, args),
                        run_bpf(&linear, arch, nr, args),
                        "nr {nr} arch {arch:#x} args {args:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000);
    }
}
