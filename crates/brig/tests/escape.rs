//! Escape tests: probe programs run inside the namespace tier, each asserting the precise
//! failure (errno, signal, status) that proves the restriction held for the right reason.

mod common;
use common::*;
use std::path::Path;

fn probe_results(body: &str, flags: &[&str]) -> std::collections::BTreeMap<String, i64> {
    let result = python(&format!("{PROBE_PRELUDE}\n{body}"), flags);
    assert_status(&result, "ok");
    stdout(&result)
        .lines()
        .filter_map(|l| {
            let (name, code) = l.rsplit_once(' ')?;
            Some((name.to_string(), code.parse().ok()?))
        })
        .collect()
}

const EPERM: i64 = 1;
const ENOENT: i64 = 2;
const EACCES: i64 = 13;
const EROFS: i64 = 30;

#[test]
fn host_processes_are_invisible() {
    if no_sandbox() {
        return;
    }
    let result = python(
        "import os\npids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\nprint(pids)\nprint(open('/proc/1/cmdline','rb').read().split(b'\\0')[0].decode())",
        &[],
    );
    assert_status(&result, "ok");
    let out = stdout(&result);
    let pids: Vec<u32> = out
        .lines()
        .next()
        .unwrap()
        .trim_matches(['[', ']'])
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    // init (1) and the program (2): nothing of the host.
    assert_eq!(pids, vec![1, 2], "{out}");
    assert!(
        !out.contains("systemd") && !out.contains("/sbin/init"),
        "{out}"
    );
}

#[test]
fn host_files_outside_the_binds_do_not_exist() {
    if no_sandbox() {
        return;
    }
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "secret").unwrap();
    let body = format!(
        "for p in ['/etc/shadow', '/root', '/home', '/var', '/run', '/sys/kernel', '/boot', {:?}]:\n    attempt(p, lambda: os.stat(p))",
        secret.path().display().to_string()
    );
    let results = probe_results(&body, &[]);
    assert_eq!(results.len(), 8, "{results:?}");
    for (path, code) in results {
        assert_eq!(code, ENOENT, "{path} must not exist in the sandbox");
    }
}

#[test]
fn system_paths_and_root_are_not_writable() {
    if no_sandbox() {
        return;
    }
    let results = probe_results(
        "attempt('usr', lambda: open('/usr/brig-test', 'w'))\n\
         attempt('root', lambda: open('/brig-test', 'w'))\n\
         attempt('etc', lambda: open('/etc/passwd', 'a'))\n\
         attempt('mkdir', lambda: os.mkdir('/usr/lib/brig-test'))",
        &[],
    );
    for (what, code) in &results {
        assert!(
            *code == EACCES || *code == EROFS,
            "{what}: expected EACCES or EROFS, got {code}"
        );
    }
    assert_eq!(results.len(), 4);
}

/// Landlock holds where the mounts alone would not: procfs lets a process rename itself
/// through `/proc/<pid>/comm`, but the sandbox's rule on `/proc` grants reading only, so the
/// write is EACCES. The same rename through `prctl` (no path) still works, and the run's own
/// paths (the init's rules) and the template's device nodes (the helper's) stay writable.
#[test]
fn landlock_refuses_writes_the_mounts_would_allow() {
    if no_sandbox() {
        return;
    }
    // Outside a sandbox the write is allowed: it is Landlock that refuses it inside.
    std::fs::write("/proc/thread-self/comm", "escape-test").expect("procfs allows it outside");
    let results = probe_results(
        "attempt('proc comm', lambda: open('/proc/self/comm', 'w').write('renamed'))\n\
         attempt('prctl name', lambda: libc.prctl(15, b'renamed', 0, 0, 0))\n\
         attempt('work', lambda: open('/work/brig-test', 'w').write('x'))\n\
         attempt('tmp', lambda: os.mkfifo('/tmp/brig-fifo'))\n\
         attempt('dev null', lambda: open('/dev/null', 'w').write('x'))",
        &[],
    );
    assert_eq!(results["proc comm"], EACCES, "{results:?}");
    for allowed in ["prctl name", "work", "tmp", "dev null"] {
        assert_eq!(results[allowed], 0, "{allowed}: {results:?}");
    }
    assert_eq!(results.len(), 5);
}

#[test]
fn privileged_syscalls_are_refused_with_eperm() {
    if no_sandbox() {
        return;
    }
    let results = probe_results(
        r#"
SYS_ptrace, SYS_unshare, SYS_setns, SYS_bpf, SYS_keyctl, SYS_io_uring_setup, SYS_mount = 101, 272, 308, 321, 250, 425, 165
attempt('mount', lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))
attempt('ptrace', lambda: libc.syscall(SYS_ptrace, 16, 1, 0, 0))
attempt('unshare', lambda: libc.syscall(SYS_unshare, 0x10000000))
attempt('setns', lambda: libc.syscall(SYS_setns, os.open('/proc/self/ns/net', os.O_RDONLY), 0))
attempt('bpf', lambda: libc.syscall(SYS_bpf, 0, 0, 0))
attempt('keyctl', lambda: libc.syscall(SYS_keyctl, 0, -3, 0))
buf = ctypes.create_string_buffer(120)
attempt('io_uring_setup', lambda: libc.syscall(SYS_io_uring_setup, 8, buf))
"#,
        &[],
    );
    assert_eq!(results.len(), 7, "{results:?}");
    for (what, code) in results {
        assert_eq!(code, EPERM, "{what} must fail with EPERM");
    }
}

#[test]
fn no_tcp_or_udp_anywhere() {
    if no_sandbox() {
        return;
    }
    let results = probe_results(
        "attempt('tcp', lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(('127.0.0.1', 7)))\n\
         attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('1.1.1.1', 53)))\n\
         attempt('tcp6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))\n\
         attempt('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))\n\
         attempt('unix', lambda: socket.socketpair())",
        &[],
    );
    for what in ["tcp", "udp", "tcp6", "netlink"] {
        assert_eq!(results[what], EPERM, "{what} socket must be refused");
    }
    assert_eq!(results["unix"], 0, "AF_UNIX socketpair must work");
}

#[test]
fn runs_as_an_unprivileged_user_with_no_capabilities() {
    if no_sandbox() {
        return;
    }
    let result = python(
        "import os\nprint(os.getuid(), os.geteuid(), os.getgid())\nprint([l for l in open('/proc/self/status') if l.startswith(('CapEff','CapPrm','CapBnd','CapAmb','NoNewPrivs','Seccomp:'))])",
        &[],
    );
    assert_status(&result, "ok");
    let out = stdout(&result);
    assert!(out.starts_with("1000 1000 1000\n"), "{out}");
    for cap in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert!(
            out.contains(&format!("{cap}:\\t0000000000000000")),
            "{cap} in {out}"
        );
    }
    assert!(out.contains("NoNewPrivs:\\t1"), "{out}");
    assert!(out.contains("Seccomp:\\t2"), "{out}");
}

#[test]
fn the_host_id_is_unprivileged_and_distinct_per_sandbox() {
    if no_sandbox() {
        return;
    }
    // From the host, read the uid of each sandbox's process while both run.
    let token_a = format!("brig-id-a-{}", std::process::id());
    let token_b = format!("brig-id-b-{}", std::process::id());
    let spawn = |token: &str| {
        let p = program("sh", &format!("exec -a {token} sleep 2"));
        let child = brig()
            .args(["run", "--json"])
            .arg(&p.path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (p, child)
    };
    let (_pa, a) = spawn(&token_a);
    let (_pb, b) = spawn(&token_b);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let host_uid = |token: &str| -> Option<u32> {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if cmdline.starts_with(token.as_bytes()) {
                let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
                let uid = status.lines().find(|l| l.starts_with("Uid:"))?;
                return uid.split_whitespace().nth(1)?.parse().ok();
            }
        }
        None
    };
    let (uid_a, uid_b) = (host_uid(&token_a), host_uid(&token_b));
    a.wait_with_output().unwrap();
    b.wait_with_output().unwrap();
    let (uid_a, uid_b) = (
        uid_a.expect("sandbox a running"),
        uid_b.expect("sandbox b running"),
    );
    assert_ne!(uid_a, 0);
    assert_ne!(uid_b, 0);
    assert_ne!(uid_a, uid_b, "two live sandboxes share a host id");
    assert!(uid_a >= 1_000_000 && uid_b >= 1_000_000, "{uid_a} {uid_b}");
}

#[test]
fn a_setuid_binary_does_not_elevate() {
    if no_sandbox() {
        return;
    }
    // A setuid-root copy of `id`, bound read-only into the sandbox through the library.
    let dir = tempfile::Builder::new()
        .prefix("brig-setuid")
        .tempdir_in("/var/tmp")
        .unwrap();
    let id = dir.path().join("id");
    std::fs::copy("/usr/bin/id", &id).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut spec = brig_jail::SandboxSpec::command(&[
        "/usr/bin/sh",
        "-c",
        "stat -c %a $0; $0 -u; $0 -G",
        id.to_str().unwrap(),
    ]);
    spec.ro_mounts.push(dir.path().to_path_buf());
    let report =
        brig_jail::run_via_helper(&helper_config(), &spec, &brig_jail::Stdin::Null, None).unwrap();
    let out = String::from_utf8_lossy(&report.steps[0].stdout).into_owned();
    let err = String::from_utf8_lossy(&report.steps[0].stderr).into_owned();
    assert_eq!(out, "4755\n1000\n1000\n", "stderr: {err}");
}

fn helper_config() -> brig_jail::JailConfig {
    brig_jail::JailConfig {
        helper: env!("CARGO_BIN_EXE_brig").into(),
        ..brig_jail::JailConfig::default()
    }
}

#[test]
fn a_fork_bomb_is_stopped_by_the_pids_limit() {
    if no_sandbox() {
        return;
    }
    let result = python(FORK_BOMB, &["--pids", "16", "--timeout", "20s"]);
    assert_status(&result, "ok");
    let out = stdout(&result);
    let (n, code) = out.trim().split_once(' ').unwrap();
    let n: u32 = n.parse().unwrap();
    assert_eq!(code, "11", "fork must fail with EAGAIN: {out}");
    assert!(
        (10..16).contains(&n),
        "forked {n} children under a limit of 16"
    );
    // The host is unharmed: it still forks.
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn a_memory_bomb_is_memory_limit() {
    if no_sandbox() {
        return;
    }
    let result = python(
        "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))",
        &["--memory", "64MiB"],
    );
    assert_status(&result, "memory_limit");
    assert_eq!(result["signal"], 9);
    let peak = result["memory_peak_bytes"].as_u64().unwrap();
    assert!(peak > 48 << 20 && peak <= 64 << 20, "peak {peak}");
}

#[test]
fn an_endless_sleep_is_a_wall_timeout() {
    if no_sandbox() {
        return;
    }
    let start = std::time::Instant::now();
    let result = python("import time\ntime.sleep(60)", &["--timeout", "700ms"]);
    assert_status(&result, "timeout");
    assert_eq!(result["limit"], "wall");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert!(result["wall_ms"].as_u64().unwrap() >= 700);
}

#[test]
fn busy_threads_are_a_cpu_timeout() {
    if no_sandbox() {
        return;
    }
    let result = python(
        "import threading\ndef spin():\n    while True: pass\nfor _ in range(4): threading.Thread(target=spin).start()",
        &["--cpu-time", "600ms", "--timeout", "30s"],
    );
    assert_status(&result, "timeout");
    assert_eq!(result["limit"], "cpu");
    let cpu = result["cpu_ms"].as_u64().unwrap();
    assert!(cpu >= 600, "cpu_ms {cpu}");
}

#[test]
fn an_output_flood_is_output_limit_with_the_prefix_kept() {
    if no_sandbox() {
        return;
    }
    let result = python(
        "import sys\ni = 0\nwhile True:\n    sys.stdout.write(f'line {i}\\n')\n    i += 1",
        &["--output-limit", "10KiB"],
    );
    assert_status(&result, "output_limit");
    let out = stdout(&result);
    assert_eq!(out.len(), 10 * 1024);
    assert!(out.starts_with("line 0\nline 1\nline 2\n"));
}

#[test]
fn filling_tmp_or_the_work_dir_is_enospc_at_the_limit() {
    if no_sandbox() {
        return;
    }
    let result = python(
        r#"
import os
for d in ['/tmp', '/work']:
    n = 0
    try:
        with open(d + '/fill', 'wb') as f:
            while True:
                f.write(b'x' * 65536)
                f.flush()
                n += 65536
    except OSError as e:
        print(d, n, e.errno)
    os.remove(d + '/fill')
"#,
        &["--disk", "4MiB", "--memory", "256MiB"],
    );
    assert_status(&result, "ok");
    for line in stdout(&result).lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts[2], "28", "ENOSPC expected: {line}");
        let n: u64 = parts[1].parse().unwrap();
        assert!((3 << 20..=4 << 20).contains(&n), "{line}");
    }
    assert_eq!(stdout(&result).lines().count(), 2);
}

#[test]
fn a_daemonized_child_does_not_outlive_the_run() {
    if no_sandbox() {
        return;
    }
    let token = format!("987{}.5", std::process::id());
    let result = python(
        &format!(
            "import subprocess\nsubprocess.Popen(['/bin/sleep', '{token}'], start_new_session=True)\nprint('started')"
        ),
        &[],
    );
    assert_status(&result, "ok");
    assert_eq!(stdout(&result), "started\n");
    // `brig run` has exited, maybe before the kernel finished tearing the sandbox down: the
    // daemon may still be exiting, but it must already have SIGKILL pending (init sends it
    // before reporting the program's status), so it runs no more code.
    let daemons = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmdline).contains(&token)
            })
            .collect()
    };
    for daemon in daemons() {
        let Ok(status) = std::fs::read_to_string(daemon.join("status")) else {
            continue; // gone meanwhile
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        let pending = u64::from_str_radix(&field("SigPnd:"), 16).unwrap_or(0)
            | u64::from_str_radix(&field("ShdPnd:"), 16).unwrap_or(0);
        let sigkill = 1u64 << (9 - 1);
        assert!(
            pending & sigkill != 0 || field("State:").starts_with(['Z', 'X']),
            "daemon {daemon:?} alive without SIGKILL pending: {status}"
        );
    }
    // And soon gone altogether.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !daemons().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        daemons(),
        Vec::<std::path::PathBuf>::new(),
        "daemon survived"
    );
}

#[test]
fn two_sandboxes_cannot_see_or_signal_each_other() {
    if no_sandbox() {
        return;
    }
    let token = format!("brig-victim-{}", std::process::id());
    let victim = program(
        "sh",
        &format!("exec -a {token} sh -c 'sleep 2; echo survived'"),
    );
    let victim_child = brig()
        .args(["run", "--json"])
        .arg(&victim.path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let attacker = python(
        &format!(
            "import os, signal\nseen = [p for p in os.listdir('/proc') if p.isdigit() and b'{token}' in open(f'/proc/{{p}}/cmdline','rb').read()]\nprint('seen', len(seen))\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError as e:\n    print('kill', e.errno)\nprint('done')"
        ),
        &[],
    );
    let out = stdout(&attacker);
    assert!(out.starts_with("seen 0\n"), "{out}");
    let victim_out = victim_child.wait_with_output().unwrap();
    let victim_result: serde_json::Value = serde_json::from_slice(&victim_out.stdout).unwrap();
    assert_status(&victim_result, "ok");
    assert_eq!(stdout(&victim_result), "survived\n");
}

#[test]
fn the_environment_holds_only_what_the_spec_names() {
    if no_sandbox() {
        return;
    }
    let p = program("py", "import os\nprint(sorted(os.environ))");
    let out = brig()
        .args(["run", "--json"])
        .arg(&p.path)
        .env("BRIG_TEST_SECRET", "leak")
        .output()
        .unwrap();
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_status(&result, "ok");
    assert_eq!(
        stdout(&result).trim(),
        "['HOME', 'LANG', 'MPLBACKEND', 'MPLCONFIGDIR', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'TMPDIR']"
    );
    let _ = Path::new("/");
}

#[test]
fn the_hostname_is_brig_and_only_lo_exists() {
    if no_sandbox() {
        return;
    }
    let result = python(
        "import socket\nprint(socket.gethostname())\nprint(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))",
        &[],
    );
    assert_status(&result, "ok");
    assert_eq!(stdout(&result), "brig\n['lo']\n");
}

#[test]
fn without_root_the_sandbox_runs_as_the_callers_own_id() {
    if no_sandbox() {
        return;
    }
    // Drop to `nobody` with setpriv (util-linux) and run the same binary unprivileged.
    let token = format!("brig-unpriv-{}", std::process::id());
    let p = program_for_nobody("sh", &format!("id -u; exec -a {token} sleep 1"));
    let child = brig_run_as_nobody()
        .arg(&p.path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut host_uid = None;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline.starts_with(token.as_bytes()) {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap();
            host_uid = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1).unwrap().to_string());
        }
    }
    let out = child.wait_with_output().unwrap();
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_status(&result, "ok");
    assert_eq!(stdout(&result), "1000\n");
    assert_eq!(
        host_uid.as_deref(),
        Some("65534"),
        "the sandbox must map to the caller's id"
    );
}

/// `brig run --json`, to be completed, as `nobody`: dropped to with setpriv (util-linux).
fn brig_run_as_nobody() -> std::process::Command {
    let mut command = std::process::Command::new("setpriv");
    command.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        env!("CARGO_BIN_EXE_brig"),
        "run",
        "--json",
    ]);
    command
}

/// A program whose directory `nobody` may enter.
fn program_for_nobody(ext: &str, code: &str) -> Program {
    let p = program(ext, code);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        p.path.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    p
}

/// `brig run --json ARGS FILE` as `nobody`: no cgroups then.
fn run_unprivileged(code: &str, args: &[&str]) -> serde_json::Value {
    let p = program_for_nobody("py", code);
    let out = brig_run_as_nobody()
        .args(args)
        .arg(&p.path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

/// Without root there is no cgroup to poll: the CPU time and peak memory come from the
/// sandbox init's `getrusage` (the process tier's `wait4`), and `RLIMIT_CPU`, set at the
/// budget, ends a busy program with a `cpu` timeout, not a bare SIGKILL.
#[test]
fn without_root_cpu_and_memory_are_measured_and_the_cpu_budget_is_a_cpu_timeout() {
    if no_sandbox() {
        return;
    }
    for tier in ["namespace", "process"] {
        let busy = run_unprivileged(
            "import threading\ndef spin():\n    while True: pass\nfor _ in range(2): threading.Thread(target=spin).start()",
            &["--tier", tier, "--cpu-time", "1s", "--timeout", "20s"],
        );
        assert_status(&busy, "timeout");
        assert_eq!(busy["limit"], "cpu", "{tier}: {busy}");
        let cpu_ms = busy["cpu_ms"].as_u64().unwrap();
        // At the budget, give or take the tick the rlimit is checked at.
        assert!((900..3000).contains(&cpu_ms), "{tier}: {busy}");
        assert!(busy["wall_ms"].as_u64().unwrap() < 20_000, "{tier}: {busy}");

        // 64 MiB touched, and ~0.2 s of CPU.
        let heavy = run_unprivileged(
            "import time\nx = bytearray(64 << 20)\nend = time.process_time() + 0.2\nwhile time.process_time() < end: pass\nprint(len(x))",
            &["--tier", tier, "--memory", "256MiB"],
        );
        assert_status(&heavy, "ok");
        let peak = heavy["memory_peak_bytes"].as_u64().unwrap();
        assert!((64 << 20..256 << 20).contains(&peak), "{tier}: {heavy}");
        assert!(heavy["cpu_ms"].as_u64().unwrap() >= 200, "{tier}: {heavy}");
    }
}

#[test]
fn live_sandboxes_never_share_a_network_namespace() {
    if no_sandbox() {
        return;
    }
    let p = program("sh", "readlink /proc/self/ns/net; sleep 1");
    let spawn = || {
        brig()
            .args(["run", "--json"])
            .arg(&p.path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let ns = |child: std::process::Child| {
        let out = child.wait_with_output().unwrap();
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_status(&result, "ok");
        stdout(&result).trim().to_string()
    };
    let (ns_a, ns_b) = (ns(a), ns(b));
    assert!(ns_a.starts_with("net:["), "{ns_a}");
    assert_ne!(ns_a, ns_b, "two live sandboxes shared a network namespace");
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(
        ns_a,
        host.display().to_string(),
        "the sandbox is in the host's network namespace"
    );
}

#[test]
fn the_sandbox_dies_with_brig() {
    if no_sandbox() {
        return;
    }
    let token = format!("brig-orphan-{}", std::process::id());
    let p = program("sh", &format!("exec -a {token} sleep 30"));
    let mut child = brig().arg("run").arg(&p.path).spawn().unwrap();
    let find = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .unwrap_or_default()
                .starts_with(token.as_bytes())
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !find() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sandbox never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SIGKILL: brig gets no chance to clean up; the kernel must take the sandbox down.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while find() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sandbox outlived brig"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every run's root is a mount of one kept template's tmpfs (`brig-jail/src/template.rs`): the
/// same root device in two runs proves the reuse; a write anywhere in it fails with EROFS; the
/// mount table holds the sandbox's own mounts and nothing of the host's (no `/run`, `/home`,
/// `/sys`, `/var`); `/proc` is the sandbox's own proc over the template's empty one.
#[test]
fn the_root_comes_from_a_kept_read_only_template() {
    if no_sandbox() {
        return;
    }
    let body = "print('rootdev', os.stat('/').st_dev)\n\
        attempt('write /', lambda: open('/x', 'w'))\n\
        attempt('mkdir /etc/x', lambda: os.mkdir('/etc/x'))\n\
        attempt('write /usr', lambda: open('/usr/x', 'w'))\n\
        points = [l.split()[4] for l in open('/proc/self/mountinfo')]\n\
        print('proc_mounts', points.count('/proc'))\n\
        print('host_mounts', sum(p.startswith(('/run', '/home', '/sys', '/var', '/boot')) for p in points))\n\
        print('work_is_a_mount', int('/work' in points))";
    let first = probe_results(body, &[]);
    let second = probe_results(body, &[]);
    assert_eq!(first["rootdev"], second["rootdev"], "{first:?} {second:?}");
    for write in ["write /", "mkdir /etc/x", "write /usr"] {
        assert_eq!(first[write], EROFS, "{write}: {first:?}");
    }
    assert_eq!(first["proc_mounts"], 2, "{first:?}");
    assert_eq!(first["host_mounts"], 0, "{first:?}");
    assert_eq!(first["work_is_a_mount"], 1, "{first:?}");
    // Kept on the host as an nsfs bind mount (root only: without root nothing is kept).
    if is_root() {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let kept: Vec<&str> = mountinfo
            .lines()
            .filter(|l| {
                l.split(' ')
                    .nth(4)
                    .is_some_and(|p| p.starts_with("/run/brig/templates/"))
            })
            .collect();
        assert!(!kept.is_empty(), "{mountinfo}");
        for line in kept {
            assert!(line.contains(" - nsfs "), "{line}");
        }
    }
}
