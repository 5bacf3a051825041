//! Enforcement tests of `brig_jail::seccomp` (the escape-test tier of STYLE.md): this test
//! binary runs itself again with `BRIG_SECCOMP_PROBE` set. The copy (`probe_child`) compiles and
//! installs the filter on its test thread, then either probes syscalls from Rust and prints
//! `PROBE name=errno` lines, or `execve`s a program (a python ctypes probe, or a language
//! runtime), which keeps the filter exactly as a sandboxed program does after the jail's own
//! `execve`.
//!
//! A runtime that is not installed prints `SKIP:`; with `CI` or `BRIG_TEST_STRICT` set it fails.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use brig_jail::seccomp::{SeccompPolicy, compile, install};
use libc::{EPERM, c_long};

const PROBE_MODE: &str = "BRIG_SECCOMP_PROBE";
const PROBE_NETWORK: &str = "BRIG_SECCOMP_NETWORK";
const PROBE_ARGV: &str = "BRIG_SECCOMP_ARGV";
/// Printed by the probe child just before it `execve`s; what follows is the program's output.
const EXEC_MARKER: &str = "BRIG-SECCOMP-EXEC\n";
/// A path that does not exist, so a call the filter fails to stop does nothing even as root.
const NOWHERE: &str = "/nonexistent-brig-seccomp-probe";

/// Entry point of the probe child; in an ordinary test run (no `BRIG_SECCOMP_PROBE`) it is not
/// a test at all and returns at once.
#[test]
fn probe_child() {
    let Ok(mode) = std::env::var(PROBE_MODE) else {
        return;
    };
    let allow_network = std::env::var(PROBE_NETWORK).as_deref() == Ok("1");
    let dir = tempfile::tempdir().expect("temp dir");
    let program = compile(&SeccompPolicy {
        allow_network,
        ..Default::default()
    })
    .expect("policy compiles");
    // The filter binds this (test) thread, the threads it starts and the processes it forks,
    // and survives its `execve`: exactly what the jail's child sequence relies on.
    install(&program).expect("filter installs");
    match mode.as_str() {
        "syscalls" => rust_probes(dir.path()),
        "exec" => {
            let argv: Vec<String> = serde_json::from_str(&std::env::var(PROBE_ARGV).unwrap())
                .expect("argv is a JSON list");
            print!("{EXEC_MARKER}");
            let error = Command::new(&argv[0]).args(&argv[1..]).exec();
            panic!("execve {argv:?}: {error}");
        }
        other => panic!("unknown probe mode {other}"),
    }
}

/// Syscalls made directly from the filtered thread, each printed as `PROBE name=errno` (0 for
/// success). Arguments are chosen so that, were the filter missing, nothing would change on the
/// host even as root (paths that do not exist, a host name too long to be accepted).
fn rust_probes(dir: &Path) {
    use rustix::fs::{CWD, FileType, Mode, makedev, mknodat};
    use rustix::net::{AddressFamily as Af, SocketFlags, SocketType, socket, socketpair};

    fn report<T, E: Into<std::io::Error>>(name: &str, result: Result<T, E>) {
        let errno = match result {
            Ok(_) => 0,
            Err(e) => e.into().raw_os_error().unwrap_or(-1),
        };
        println!("PROBE {name}={errno}");
    }

    let status = std::fs::read_to_string("/proc/thread-self/status").expect("read status");
    let mode = status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .unwrap_or("?")
        .trim();
    println!("PROBE seccomp_mode={mode}");
    report("read_file", std::fs::read("/proc/self/cmdline"));

    let flags = rustix::mount::MountFlags::empty();
    report(
        "mount",
        rustix::mount::mount("none", NOWHERE, "tmpfs", flags, None),
    );
    let unmount_flags = rustix::mount::UnmountFlags::empty();
    report("umount2", rustix::mount::unmount(NOWHERE, unmount_flags));
    report("chroot", rustix::process::chroot(NOWHERE));
    report("pivot_root", rustix::process::pivot_root(NOWHERE, NOWHERE));
    report("sethostname", rustix::system::sethostname(&[b'x'; 100]));

    report("socket_unix", socket(Af::UNIX, SocketType::STREAM, None));
    report("socket_inet", socket(Af::INET, SocketType::STREAM, None));
    report("socket_inet6", socket(Af::INET6, SocketType::DGRAM, None));
    report(
        "socket_netlink",
        socket(Af::NETLINK, SocketType::DGRAM, None),
    );
    report("socket_packet", socket(Af::PACKET, SocketType::RAW, None));
    let none = SocketFlags::empty();
    report(
        "socketpair_unix",
        socketpair(Af::UNIX, SocketType::STREAM, none, None),
    );
    report(
        "socketpair_inet",
        socketpair(Af::INET, SocketType::STREAM, none, None),
    );

    let mode = Mode::from_raw_mode(0o600);
    let dev = makedev(1, 3);
    let char_dev = mknodat(CWD, dir.join("null"), FileType::CharacterDevice, mode, dev);
    report("mknod_char", char_dev);
    report(
        "mknod_block",
        mknodat(CWD, dir.join("sda"), FileType::BlockDevice, mode, dev),
    );
    report(
        "mknod_fifo",
        mknodat(CWD, dir.join("fifo"), FileType::Fifo, mode, 0),
    );
    report(
        "mknod_regular",
        mknodat(CWD, dir.join("file"), FileType::RegularFile, mode, 0),
    );

    report(
        "thread",
        std::thread::spawn(|| ())
            .join()
            .map_err(|_| std::io::Error::other("panic")),
    );
    report("spawn", Command::new("true").status());
}

/// Run the probe child in `mode` under the filter for `allow_network`.
fn probe_child_output(mode: &str, allow_network: bool, argv: &[&str]) -> Output {
    let exe = std::env::current_exe().expect("current exe");
    Command::new(exe)
        .args(["probe_child", "--exact", "--nocapture", "--quiet"])
        .env(PROBE_MODE, mode)
        .env(PROBE_NETWORK, if allow_network { "1" } else { "0" })
        .env(PROBE_ARGV, serde_json::to_string(argv).unwrap())
        .stdin(Stdio::null())
        .output()
        .expect("run probe child")
}

/// `PROBE name=value` lines of an output.
fn parse_probes(stdout: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| line.split_once("PROBE ").map(|(_, probe)| probe))
        .filter_map(|probe| probe.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// Compare observed probe values with expected errnos; one assertion listing every mismatch.
fn assert_probes(context: &str, observed: &BTreeMap<String, String>, expected: &[(&str, i32)]) {
    let mut table = String::new();
    let mut wrong = 0;
    for (name, errno) in expected {
        let got = observed.get(*name).map_or("missing", String::as_str);
        let ok = got == errno.to_string();
        wrong += usize::from(!ok);
        let mark = if ok { "ok" } else { "WRONG" };
        table.push_str(&format!(
            "  {name:<22} expected {errno:<3} got {got:<8} {mark}\n"
        ));
    }
    println!("{context}:\n{table}");
    assert_eq!(wrong, 0, "{context}: {wrong} probe(s) wrong\n{table}");
}

#[test]
fn syscalls_from_the_filtered_thread_are_enforced() {
    for allow_network in [false, true] {
        let output = probe_child_output("syscalls", allow_network, &[]);
        let observed = parse_probes(&output.stdout);
        let net = if allow_network { 0 } else { EPERM };
        let expected = [
            ("seccomp_mode", 2), // SECCOMP_MODE_FILTER
            ("read_file", 0),
            ("mount", EPERM),
            ("umount2", EPERM),
            ("chroot", EPERM),
            ("pivot_root", EPERM),
            ("sethostname", EPERM),
            ("socket_unix", 0),
            ("socket_inet", net),
            ("socket_inet6", net),
            ("socket_netlink", EPERM),
            ("socket_packet", EPERM),
            ("socketpair_unix", 0),
            ("socketpair_inet", EPERM),
            ("mknod_char", EPERM),
            ("mknod_block", EPERM),
            ("mknod_fifo", 0),
            ("mknod_regular", 0),
            ("thread", 0),
            ("spawn", 0),
        ];
        let context = format!(
            "rust probes, allow_network={allow_network} (stderr: {})",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        assert_probes(&context, &observed, &expected);
    }
}

/// Runs each `[name, nr, args]` of `argv[1]` with `syscall(2)` and prints `PROBE name=errno`.
/// It first leaves the controlling terminal (`setsid`) so that `vhangup` has none to hang up,
/// and a successful `clone` child exits at once.
const PYTHON_PROBE: &str = r#"
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
try:
    os.setsid()
    detached = True
except OSError:
    detached = False
for name, nr, args in json.loads(sys.argv[1]):
    if name == "vhangup" and not detached:
        print("PROBE vhangup=skipped", flush=True)
        continue
    argv = [ctypes.c_char_p(a.encode()) if isinstance(a, str) else ctypes.c_long(a) for a in args]
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *argv)
    if name.startswith("clone") and r == 0:
        os._exit(0)
    if name.startswith("clone") and r > 0:
        os.waitpid(r, 0)
    print(f"PROBE {name}={ctypes.get_errno() if r == -1 else 0}", flush=True)
"#;

/// One python probe argument: an integer, or a string passed as a C string pointer.
#[derive(Clone, Copy)]
enum Arg {
    I(i64),
    S(&'static str),
}

/// `(name, syscall, arguments, errno expected under the filter)`. The arguments are invalid
/// (bad fd, NULL, absent pid or path, bad flags or magic), so the unfiltered control run, even
/// as root, fails or does nothing harmful.
#[rustfmt::skip] // a table: one probe per line
fn python_probes() -> Vec<(&'static str, c_long, Vec<Arg>, i32)> {
    use Arg::{I, S};
    use libc::*;
    const NOPID: i64 = 0x3fff_ffff; // above the largest possible pid_max
    const BAD_FLAGS: i64 = 0x8000;
    let sigchld = i64::from(SIGCHLD);
    let newuser = i64::from(CLONE_NEWUSER);
    let (fionread, tiocsti) = (FIONREAD as i64, TIOCSTI as i64);
    #[allow(unused_mut)] // extended on x86_64 only
    let mut table = vec![
        // Allowed: the filter must not get in the way.
        ("getpid", SYS_getpid, vec![], 0),
        ("personality_query", SYS_personality, vec![I(0xffff_ffff)], 0),
        ("clone_plain", SYS_clone, vec![I(sigchld), I(0), I(0), I(0), I(0)], 0),
        ("ioctl_fionread", SYS_ioctl, vec![I(-1), I(fionread), I(0)], EBADF),
        // Argument-filtered.
        ("ioctl_tiocsti", SYS_ioctl, vec![I(-1), I(tiocsti), S("x")], EPERM),
        ("ioctl_tiocsti_high", SYS_ioctl, vec![I(-1), I(tiocsti | 1 << 32), S("x")], EPERM),
        ("clone_newuser", SYS_clone, vec![I(newuser | sigchld), I(0), I(0), I(0), I(0)], EPERM),
        ("personality_no_aslr", SYS_personality, vec![I(0x0040000)], EPERM),
        // Denied outright.
        ("clone3", SYS_clone3, vec![I(0), I(0)], ENOSYS),
        ("unshare_newuser", SYS_unshare, vec![I(newuser)], EPERM),
        ("setns", SYS_setns, vec![I(-1), I(0)], EPERM),
        ("ptrace", SYS_ptrace, vec![I(2), I(NOPID), I(0), I(0)], EPERM),
        ("process_vm_readv", SYS_process_vm_readv, vec![I(NOPID), I(0), I(1)], EPERM),
        ("process_vm_writev", SYS_process_vm_writev, vec![I(NOPID), I(0), I(1)], EPERM),
        ("kcmp", SYS_kcmp, vec![I(NOPID), I(NOPID), I(0), I(0), I(0)], EPERM),
        ("pidfd_getfd", SYS_pidfd_getfd, vec![I(-1), I(0), I(0)], EPERM),
        ("process_madvise", SYS_process_madvise, vec![I(-1), I(0), I(0)], EPERM),
        ("process_mrelease", SYS_process_mrelease, vec![I(-1), I(0)], EPERM),
        ("bpf", SYS_bpf, vec![I(0xffff), I(0), I(0)], EPERM),
        ("perf_event_open", SYS_perf_event_open, vec![I(0), I(0), I(-1), I(-1)], EPERM),
        ("keyctl", SYS_keyctl, vec![I(0), I(-3), I(0)], EPERM),
        ("add_key", SYS_add_key, vec![I(0), I(0), I(0), I(0), I(0)], EPERM),
        ("request_key", SYS_request_key, vec![I(0), I(0), I(0), I(0)], EPERM),
        ("userfaultfd", SYS_userfaultfd, vec![I(0xffff_ffff)], EPERM),
        ("io_uring_setup", SYS_io_uring_setup, vec![I(0), I(0)], EPERM),
        ("io_uring_enter", SYS_io_uring_enter, vec![I(-1), I(0), I(0), I(0)], EPERM),
        ("io_uring_register", SYS_io_uring_register, vec![I(-1), I(0), I(0)], EPERM),
        ("mount", SYS_mount, vec![S("none"), S(NOWHERE), S("tmpfs"), I(0)], EPERM),
        ("umount2", SYS_umount2, vec![S(NOWHERE), I(0)], EPERM),
        ("pivot_root", SYS_pivot_root, vec![S(NOWHERE), S(NOWHERE)], EPERM),
        ("chroot", SYS_chroot, vec![S(NOWHERE)], EPERM),
        ("move_mount", SYS_move_mount, vec![I(-1), S(""), I(-1), S(""), I(0)], EPERM),
        ("open_tree", SYS_open_tree, vec![I(-1), I(0), I(0)], EPERM),
        ("fsopen", SYS_fsopen, vec![I(0), I(0)], EPERM),
        ("fsconfig", SYS_fsconfig, vec![I(-1), I(0), I(0), I(0), I(0)], EPERM),
        ("fsmount", SYS_fsmount, vec![I(-1), I(0), I(0)], EPERM),
        ("fspick", SYS_fspick, vec![I(-1), I(0), I(0)], EPERM),
        ("mount_setattr", SYS_mount_setattr, vec![I(-1), I(0), I(0), I(0)], EPERM),
        // Invalid flags *and* too many segments: never an unload of a loaded crash kernel.
        ("kexec_load", SYS_kexec_load, vec![I(0), I(1000), I(0), I(BAD_FLAGS)], EPERM),
        ("kexec_file_load", SYS_kexec_file_load, vec![I(-1), I(-1), I(0), I(0), I(BAD_FLAGS)],
            EPERM),
        ("init_module", SYS_init_module, vec![I(0), I(0), I(0)], EPERM),
        ("finit_module", SYS_finit_module, vec![I(-1), I(0), I(0)], EPERM),
        ("delete_module", SYS_delete_module, vec![S("brig_no_such_module"), I(0)], EPERM),
        ("reboot", SYS_reboot, vec![I(0), I(0), I(0), I(0)], EPERM), // bad magic
        ("swapon", SYS_swapon, vec![S(NOWHERE), I(0)], EPERM),
        ("swapoff", SYS_swapoff, vec![S(NOWHERE)], EPERM),
        ("acct", SYS_acct, vec![S(NOWHERE)], EPERM),
        ("quotactl", SYS_quotactl, vec![I(0xffff_ffff), I(0), I(0), I(0)], EPERM),
        ("settimeofday", SYS_settimeofday, vec![I(0), I(0)], EPERM), // sets nothing
        ("clock_settime", SYS_clock_settime, vec![I(0x7fff), I(0)], EPERM),
        ("clock_adjtime", SYS_clock_adjtime, vec![I(0x7fff), I(0)], EPERM),
        ("adjtimex", SYS_adjtimex, vec![I(0)], EPERM),
        ("syslog", SYS_syslog, vec![I(10), I(0), I(0)], EPERM), // a size query
        ("sethostname", SYS_sethostname, vec![S("x"), I(1000)], EPERM),  // too long
        ("open_by_handle_at", SYS_open_by_handle_at, vec![I(-1), I(0), I(0)], EPERM),
        ("name_to_handle_at", SYS_name_to_handle_at, vec![I(-1), I(0), I(0), I(0), I(0)], EPERM),
        ("lookup_dcookie", SYS_lookup_dcookie, vec![I(0), I(0), I(0)], EPERM),
        ("vhangup", SYS_vhangup, vec![], EPERM),
        ("fanotify_init", SYS_fanotify_init, vec![I(0xffff_ffff), I(0)], EPERM),
        ("nfsservctl", SYS_nfsservctl, vec![], EPERM),
        ("migrate_pages", SYS_migrate_pages, vec![I(NOPID), I(0), I(0), I(0)], EPERM),
        ("move_pages", SYS_move_pages, vec![I(NOPID), I(0), I(0), I(0), I(0)], EPERM),
    ];
    #[cfg(target_arch = "x86_64")]
    table.extend([
        // The x32 ABI's getpid: the x86_64 audit arch, number 39 | 0x4000_0000.
        ("x32_getpid", 0x4000_0000 | SYS_getpid, vec![], EPERM),
        ("iopl", SYS_iopl, vec![I(0)], EPERM),
        ("ioperm", SYS_ioperm, vec![I(0), I(0), I(0)], EPERM),
        ("modify_ldt", SYS_modify_ldt, vec![I(0), I(0), I(0)], EPERM), // a read
        ("uselib", SYS_uselib, vec![I(0)], EPERM),
    ]);
    table
}

#[test]
fn dangerous_syscalls_fail_with_the_right_errno() {
    if !require("python3") {
        return;
    }
    let probes = python_probes();
    let table: Vec<serde_json::Value> = probes
        .iter()
        .map(|(name, nr, args, _)| {
            let args: Vec<serde_json::Value> = args
                .iter()
                .map(|arg| match *arg {
                    Arg::I(i) => i.into(),
                    Arg::S(s) => s.into(),
                })
                .collect();
            serde_json::json!([name, nr, args])
        })
        .collect();
    let table = serde_json::to_string(&table).unwrap();

    // The same probes without the filter, for the record: what the filter changed.
    let control = Command::new("python3")
        .args(["-c", PYTHON_PROBE, &table])
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let control = parse_probes(&control.stdout);
    println!("unfiltered control run: {control:?}");

    let output = probe_child_output("exec", false, &["python3", "-c", PYTHON_PROBE, &table]);
    let observed = parse_probes(&output.stdout);
    let expected: Vec<(&str, i32)> = probes.iter().map(|p| (p.0, p.3)).collect();
    let context = format!(
        "python ctypes probes under the filter (stderr: {})",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    assert_probes(&context, &observed, &expected);
}

// ---------------------------------------------------------------------------------------------
// Real runtimes under the filter.

fn strict() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("BRIG_TEST_STRICT").is_some()
}

/// Whether `program` is on `PATH`; if not, say SKIP loudly, or fail in strict mode.
fn require(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    if !found {
        assert!(
            !strict(),
            "{program} is not installed (CI/BRIG_TEST_STRICT is set)"
        );
        eprintln!("SKIP: {program} is not installed");
    }
    found
}

/// Run `argv` under the default policy (no network); return (stdout, stderr) after checking
/// that it exited successfully.
fn run_under_filter(argv: &[&str]) -> (String, String) {
    let start = Instant::now();
    let output = probe_child_output("exec", false, argv);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stdout = stdout
        .split_once(EXEC_MARKER)
        .map_or("", |(_, after)| after)
        .to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!(
        "{} under the filter: {:?}, {:?}",
        argv[0],
        start.elapsed(),
        output.status
    );
    assert!(
        output.status.success(),
        "{argv:?} failed under the filter: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    (stdout, stderr)
}

#[test]
fn python_works_under_filter() {
    if !require("python3") {
        return;
    }
    let script = r#"
import os, socket, subprocess, sys, tempfile, threading
print(1)
open(sys.executable, "rb").read(64)
t = threading.Thread(target=lambda: None); t.start(); t.join()
a, b = socket.socketpair(); a.send(b"x"); assert b.recv(1) == b"x"
socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raise SystemExit("AF_INET socket allowed without network")
except PermissionError:
    pass
pid = os.fork()
if pid == 0:
    os._exit(7)
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
subprocess.run(["true"], check=True)
with tempfile.TemporaryDirectory() as d:
    os.mkfifo(os.path.join(d, "fifo"))
print("python ok")
"#;
    let (stdout, _) = run_under_filter(&["python3", "-c", script]);
    assert_eq!(stdout, "1\npython ok\n");
}

#[test]
fn node_works_under_filter() {
    if !require("node") {
        return;
    }
    let script = r#"
const fs = require("fs"), cp = require("child_process"), { Worker } = require("worker_threads");
fs.readFileSync(process.execPath, { flag: "r" });
fs.promises.readFile(process.execPath).then(() => {
  cp.execFileSync("true");
  const w = new Worker('require("worker_threads").parentPort.postMessage(42)', { eval: true });
  w.on("message", (m) => { console.log("node ok", m); w.terminate(); });
});
"#;
    let (stdout, _) = run_under_filter(&["node", "-e", script]);
    assert_eq!(stdout, "node ok 42\n");
}

#[test]
fn java_works_under_filter() {
    if !require("java") {
        return;
    }
    let (_, stderr) = run_under_filter(&["java", "-version"]);
    assert!(stderr.contains("version"), "{stderr}");

    // A single-file program (JEP 330): the JVM compiles it in memory, then runs threads.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("Probe.java");
    std::fs::write(
        &source,
        r#"public class Probe {
    public static void main(String[] args) throws Exception {
        Thread t = new Thread(() -> System.out.println("java thread"));
        t.start();
        t.join();
        System.out.println("java ok " + (Runtime.getRuntime().availableProcessors() > 0));
    }
}
"#,
    )
    .unwrap();
    let (stdout, _) = run_under_filter(&["java", source.to_str().unwrap()]);
    assert_eq!(stdout, "java thread\njava ok true\n");
}

#[test]
fn bash_and_perl_work_under_filter() {
    if require("bash") {
        let script = r#"set -e; x=$(echo hi | tr a-z A-Z); [ "$x" = HI ]
            f=$(mktemp -u); mkfifo "$f"; rm "$f"; echo bash ok"#;
        let (stdout, _) = run_under_filter(&["bash", "-c", script]);
        assert_eq!(stdout, "bash ok\n");
    }
    if require("perl") {
        let script = r#"my $pid = fork(); if (!$pid) { exit 3 }
            waitpid($pid, 0); print "perl ok ", $? >> 8, "\n""#;
        let (stdout, _) = run_under_filter(&["perl", "-e", script]);
        assert_eq!(stdout, "perl ok 3\n");
    }
}

/// Compile hello world in a temp dir with `compiler` and run it, all under the filter.
fn compile_and_run(compiler: &str, file: &str, source: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), source).unwrap();
    let script = format!(
        "cd '{}' && {compiler} -o hello {file} && ./hello",
        dir.path().display()
    );
    run_under_filter(&["sh", "-c", &script]).0
}

#[test]
fn gcc_compiles_and_runs_under_filter() {
    if !require("gcc") {
        return;
    }
    let source = "#include <stdio.h>\nint main(void) { puts(\"gcc ok\"); return 0; }\n";
    assert_eq!(compile_and_run("gcc -O2", "hello.c", source), "gcc ok\n");
}

#[test]
fn rustc_compiles_and_runs_under_filter() {
    if !require("rustc") {
        return;
    }
    let source = r#"fn main() {
    let t = std::thread::spawn(|| 1);
    println!("rustc ok {}", t.join().unwrap());
}
"#;
    assert_eq!(compile_and_run("rustc", "hello.rs", source), "rustc ok 1\n");
}
