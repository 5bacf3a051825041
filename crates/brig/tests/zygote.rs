//! One-shot Python runs forked from a warm zygote (`brig_engine::zygote`): the same results as
//! a fresh sandbox, each run in a sandbox of its own, and the limits and escape probes of
//! `escape.rs` holding for runs forked from a zygote too.

mod common;
use brig_core::{LimitOverrides, Status, TierChoice, TimeoutKind};
use brig_engine::session::templates;
use brig_engine::zygote::ZygotePool;
use brig_engine::{Engine, Languages, Launch, RunRequest};
use brig_jail::{SpecFile, Stdin};
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn engine() -> Engine {
    Engine {
        languages: Languages::load(None).unwrap(),
        jail: brig_jail::JailConfig {
            helper: env!("CARGO_BIN_EXE_brig").into(),
            ..brig_jail::JailConfig::default()
        },
        launch: Launch::Helper,
        wasm: Default::default(),
    }
}

fn pool(engine: &Engine, size: usize) -> ZygotePool {
    let template = templates::find("python-minimal").unwrap();
    ZygotePool::new(engine, engine.jail.clone(), &template, size).unwrap()
}

fn python(code: &str) -> RunRequest {
    RunRequest {
        language: "python".into(),
        source: code.as_bytes().to_vec(),
        tier: TierChoice::Namespace,
        ..RunRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_behaves_like_python3_main_py() {
    if no_sandbox() {
        return;
    }
    let engine = engine();
    let pool = pool(&engine, 1);
    let r = pool
        .run(
            &engine,
            &python("import sys\nprint('hi', sys.argv)\n"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.stdout, "hi ['/work/main.py']\n");
    assert_eq!(r.exit_code, Some(0));
    assert!(r.memory_peak_bytes > 0, "{r:?}");
    // Arguments, stdin, files beside the program, exit codes, as `python3 main.py` has them.
    let mut request = python(
        "import sys, helper\nprint(sys.argv[1:], sys.stdin.read().upper(), helper.VALUE)\nsys.exit(3)",
    );
    request.args = vec!["a".into(), "b c".into()];
    request.stdin = Stdin::Bytes(b"echo".to_vec());
    request.files = vec![SpecFile {
        path: "helper.py".into(),
        content: b"VALUE = 42\n".to_vec(),
        mode: 0o644,
    }];
    let r = pool.run(&engine, &request, None).await.unwrap();
    assert_eq!(r.status, Status::RuntimeError, "{r:?}");
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.stdout, "['a', 'b c'] ECHO 42\n");
    // A syntax error is compile_error, with Python's own message.
    let r = pool.run(&engine, &python("def (:\n"), None).await.unwrap();
    assert_eq!(r.status, Status::CompileError, "{r:?}");
    assert!(r.stderr.contains("SyntaxError"), "{}", r.stderr);
    assert!(r.stderr.contains("/work/main.py"), "{}", r.stderr);
    // An exception: a traceback of the program's frames only, exit code 1.
    let r = pool
        .run(&engine, &python("def f():\n    1/0\nf()\n"), None)
        .await
        .unwrap();
    assert_eq!(r.status, Status::RuntimeError, "{r:?}");
    assert_eq!(r.exit_code, Some(1));
    assert!(
        r.stderr
            .starts_with("Traceback (most recent call last):\n  File \"/work/main.py\", line 3"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("ZeroDivisionError"), "{}", r.stderr);
    assert!(!r.stderr.contains("brig_zygote"), "{}", r.stderr);
    // The same program through a fresh sandbox gives the same result.
    let fresh = engine
        .run(&python("print('hi')"), &mut brig_jail::Discard)
        .unwrap();
    let forked = pool
        .run(&engine, &python("print('hi')"), None)
        .await
        .unwrap();
    assert_eq!(
        (fresh.status, fresh.stdout, fresh.exit_code),
        (forked.status, forked.stdout, forked.exit_code)
    );
}

fn lines(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_run_is_as_confined_as_a_fresh_sandbox() {
    if no_sandbox() {
        return;
    }
    let engine = engine();
    let pool = pool(&engine, 1);
    let probe = format!(
        "{PROBE_PRELUDE}\n{}",
        r#"
status = dict(l.split(':\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\t' in l)
print('uid', os.getuid(), os.geteuid(), os.getgid())
print('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
print('hostname', socket.gethostname())
for field in ('CapEff', 'CapPrm', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'):
    print(field, status[field].strip())
print('interfaces', sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]))
import fcntl, struct
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    flags = struct.unpack('16sH22x', fcntl.ioctl(s.fileno(), 0x8913, struct.pack('16sH22x', b'lo', 0)))[1]
print('lo_up', bool(flags & 1))
attempt('shadow', lambda: open('/etc/shadow'))
attempt('home', lambda: os.listdir('/home'))
attempt('write_usr', lambda: open('/usr/brig-probe', 'w'))
attempt('mount', lambda: libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None))
attempt('unshare_user', lambda: libc.unshare(0x10000000))
attempt('unshare_net', lambda: libc.unshare(0x40000000))
attempt('inet', lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
attempt('ptrace', lambda: libc.ptrace(16, 1, 0, 0))
attempt('kill_init', lambda: os.kill(1, 9))
import time
time.sleep(0.2)
print('init_alive', os.path.exists('/proc/1'))
attempt('sethostname', lambda: libc.sethostname(b'x', 1))
attempt('proc_write', lambda: open('/proc/self/comm', 'w').write('x'))
attempt('signal_init', lambda: os.kill(1, 0))
attempt('zygote_socket', lambda: os.fstat(3))
attempt('ruleset_fd', lambda: os.fstat(4))
"#
    );
    let r = pool.run(&engine, &python(&probe), None).await.unwrap();
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let out = lines(&r.stdout);
    assert_eq!(out["uid"], "1000 1000 1000", "{}", r.stdout);
    // The run's init and the program: nothing of the zygote or of other runs.
    assert_eq!(out["pids"], "[1, 2]", "{}", r.stdout);
    assert_eq!(out["hostname"], "brig");
    for field in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(out[field], "0000000000000000", "{field}: {}", r.stdout);
    }
    assert_eq!(out["NoNewPrivs"], "1");
    assert_eq!(out["Seccomp"], "2");
    assert_eq!(out["interfaces"], "['lo']", "{}", r.stdout);
    assert_eq!(out["lo_up"], "True", "{}", r.stdout);
    let errno = |name: &str| out[name].parse::<i64>().unwrap();
    assert_eq!(errno("shadow"), 2, "ENOENT: /etc/shadow is not in the root");
    assert_eq!(errno("home"), 2, "ENOENT: no /home");
    assert_eq!(errno("write_usr"), 30, "EROFS");
    // Refused by the run's own seccomp filter, stacked on the zygote's.
    for name in [
        "mount",
        "unshare_user",
        "unshare_net",
        "inet",
        "ptrace",
        "sethostname",
    ] {
        assert_eq!(errno(name), 1, "{name} must be EPERM: {}", r.stdout);
    }
    // PID 1 is the run's init, which its namespace cannot kill (the kernel drops the signal).
    assert_eq!(out["init_alive"], "True");
    // Landlock: /proc is read-only to the run (EACCES, where without Landlock a process may
    // rename itself), and the run's init, outside the run's Landlock domain, cannot be
    // signalled (scoped signals, ABI 6: EPERM).
    assert_eq!(
        errno("proc_write"),
        13,
        "EACCES from Landlock: {}",
        r.stdout
    );
    assert_eq!(
        errno("signal_init"),
        1,
        "EPERM from Landlock's signal scope: {}",
        r.stdout
    );
    // No fd of the zygote's is left open.
    assert_eq!(errno("zygote_socket"), 9, "EBADF");
    assert_eq!(errno("ruleset_fd"), 9, "EBADF");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_one_run_is_visible_to_the_next() {
    if no_sandbox() {
        return;
    }
    let engine = engine();
    let pool = pool(&engine, 1);
    let first = r#"
import json, os, subprocess
for path in ('/work/leak', '/tmp/leak', '/dev/shm/leak'):
    open(path, 'w').write('x')
json.LEAK = 1
subprocess.Popen(['/bin/sleep', '30'], start_new_session=True)
print('planted')
"#;
    let r = pool.run(&engine, &python(first), None).await.unwrap();
    assert_eq!(
        r.stdout,
        "planted
",
        "{r:?}"
    );
    let second = r#"
import json, os
print([p for p in ('/work/leak', '/tmp/leak', '/dev/shm/leak') if os.path.exists(p)])
print(hasattr(json, 'LEAK'))
print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
"#;
    let r = pool.run(&engine, &python(second), None).await.unwrap();
    assert_eq!(
        r.stdout,
        "[]
False
[1, 2]
",
        "{r:?}"
    );
    // The daemon died with its run: no `sleep 30` of a sandbox is left on the host.
    let sleeping = std::process::Command::new("pgrep")
        .args(["-f", "^/bin/sleep 30$"])
        .output()
        .unwrap();
    assert!(sleeping.stdout.is_empty(), "{sleeping:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_cannot_reach_each_other() {
    if no_sandbox() {
        return;
    }
    let engine = std::sync::Arc::new(engine());
    let pool = std::sync::Arc::new(pool(&engine, 2));
    // The first run listens on an abstract socket and waits; the second tries to reach it and
    // to see it.
    let listener = r#"
import socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind('\0brig-zygote-test')
s.listen()
open('/tmp/mine', 'w').write('x')
print('listening', flush=True)
time.sleep(3)
"#;
    let (e, p) = (engine.clone(), pool.clone());
    let first = tokio::spawn(async move { p.run(&e, &python(listener), None).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let prober = format!(
        "{PROBE_PRELUDE}\n{}",
        r#"
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect('\0brig-zygote-test')
attempt('connect', connect)
print('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
print('tmp', os.listdir('/tmp'))
"#
    );
    let second = pool.run(&engine, &python(&prober), None).await.unwrap();
    let out = lines(&second.stdout);
    assert_eq!(
        out.get("connect").map(String::as_str),
        Some("111"),
        "ECONNREFUSED, another network namespace: {second:?}"
    );
    assert_eq!(out["pids"], "[1, 2]");
    assert_eq!(out["tmp"], "[]");
    let first = first.await.unwrap();
    assert_eq!(first.stdout, "listening\n", "{first:?}");
}

fn limited(code: &str, limits: LimitOverrides) -> RunRequest {
    RunRequest {
        limits,
        ..python(code)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_holds_and_the_zygote_lives_on() {
    if no_sandbox() {
        return;
    }
    let engine = engine();
    let pool = pool(&engine, 1);
    let memory = limited(
        "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))",
        LimitOverrides {
            memory_bytes: Some(64 << 20),
            ..Default::default()
        },
    );
    let r = pool.run(&engine, &memory, None).await.unwrap();
    assert_eq!(r.status, Status::MemoryLimit, "{r:?}");
    assert_eq!(r.signal, Some(9));
    assert!(
        r.memory_peak_bytes > 48 << 20 && r.memory_peak_bytes <= 64 << 20,
        "{r:?}"
    );

    let wall = limited(
        "import time\ntime.sleep(60)",
        LimitOverrides {
            timeout_ms: Some(700),
            ..Default::default()
        },
    );
    let r = pool.run(&engine, &wall, None).await.unwrap();
    assert_eq!(
        (r.status, r.limit),
        (Status::Timeout, Some(TimeoutKind::Wall)),
        "{r:?}"
    );

    let cpu = limited(
        "import threading\ndef spin():\n    while True: pass\nfor _ in range(4): threading.Thread(target=spin).start()",
        LimitOverrides {
            cpu_time_ms: Some(600),
            timeout_ms: Some(30_000),
            ..Default::default()
        },
    );
    let r = pool.run(&engine, &cpu, None).await.unwrap();
    assert_eq!(
        (r.status, r.limit),
        (Status::Timeout, Some(TimeoutKind::Cpu)),
        "{r:?}"
    );

    let flood = limited(
        "import sys\nwhile True:\n    sys.stdout.write('y' * 4096)",
        LimitOverrides {
            output_bytes: Some(100_000),
            ..Default::default()
        },
    );
    let r = pool.run(&engine, &flood, None).await.unwrap();
    assert_eq!(r.status, Status::OutputLimit, "{r:?}");
    assert_eq!(r.stdout.len(), 100_000);
    assert!(r.stdout.bytes().all(|b| b == b'y'));

    let fork_bomb = limited(
        FORK_BOMB,
        LimitOverrides {
            pids: Some(16),
            timeout_ms: Some(20_000),
            ..Default::default()
        },
    );
    let r = pool.run(&engine, &fork_bomb, None).await.unwrap();
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let (n, errno) = r.stdout.trim().split_once(' ').unwrap();
    assert_eq!(errno, "11", "fork must fail with EAGAIN: {}", r.stdout);
    assert!(
        (10..16).contains(&n.parse::<u32>().unwrap()),
        "{}",
        r.stdout
    );

    let disk = limited(
        "attempt('fill', lambda: open('/tmp/big', 'wb').write(b'x' * (8 << 20)))",
        LimitOverrides {
            disk_bytes: Some(4 << 20),
            ..Default::default()
        },
    );
    let disk = RunRequest {
        source: format!(
            "{PROBE_PRELUDE}\n{}",
            String::from_utf8(disk.source.clone()).unwrap()
        )
        .into_bytes(),
        ..disk
    };
    let r = pool.run(&engine, &disk, None).await.unwrap();
    assert_eq!(lines(&r.stdout)["fill"], "28", "ENOSPC: {r:?}");

    // After all that, the same zygote still serves.
    let r = pool
        .run(&engine, &python("print(6 * 7)"), None)
        .await
        .unwrap();
    assert_eq!(r.stdout, "42\n");
    let stats = pool.stats();
    assert_eq!((stats.started, stats.lost), (1, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_ends_at_once() {
    if no_sandbox() {
        return;
    }
    let engine = engine();
    let pool = pool(&engine, 1);
    let cancel = tokio_util::sync::CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = std::time::Instant::now();
    let r = pool
        .run(
            &engine,
            &python("import time\ntime.sleep(30)"),
            Some(&cancel),
        )
        .await
        .unwrap();
    assert_eq!(r.status, Status::Cancelled, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let r = pool
        .run(&engine, &python("print('next')"), None)
        .await
        .unwrap();
    assert_eq!(r.stdout, "next\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_gets_its_own_rlimits_above_and_below_the_defaults() {
    if no_sandbox() {
        return;
    }
    let engine = engine();
    let pool = pool(&engine, 1);
    let code = "import resource as r\nfor name in ('NOFILE', 'STACK', 'CPU', 'NPROC', 'FSIZE'):\n    print(name, *r.getrlimit(getattr(r, 'RLIMIT_' + name)))";
    let high = limited(
        code,
        LimitOverrides {
            open_files: Some(4096),
            stack_bytes: Some(64 << 20),
            cpu_time_ms: Some(120_000),
            pids: Some(200),
            file_size_bytes: Some(1 << 30),
            ..Default::default()
        },
    );
    let r = pool.run(&engine, &high, None).await.unwrap();
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let out = lines(&r.stdout);
    assert_eq!(out["NOFILE"], "4096 4096");
    assert_eq!(out["STACK"], format!("{0} {0}", 64 << 20));
    assert_eq!(out["CPU"], "121 121");
    assert_eq!(out["NPROC"], "201 201");
    assert_eq!(out["FSIZE"], format!("{0} {0}", 1u64 << 30));
    let low = limited(
        code,
        LimitOverrides {
            open_files: Some(32),
            ..Default::default()
        },
    );
    let r = pool.run(&engine, &low, None).await.unwrap();
    assert_eq!(lines(&r.stdout)["NOFILE"], "32 32", "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_zygote_fails_its_run_clearly_and_the_next_run_gets_a_new_one() {
    if no_sandbox() {
        return;
    }
    let engine = engine();
    let pool = pool(&engine, 1);
    pool.warm(1).await.unwrap();
    let [helper] = pool.helper_pids()[..] else {
        panic!("one idle zygote expected: {:?}", pool.helper_pids())
    };
    let killed = std::process::Command::new("kill")
        .args(["-9", &helper.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The run that finds it gone says so (a server then runs it in a fresh sandbox)...
    let error = pool
        .run(&engine, &python("print(1)"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, brig_engine::zygote::ZygoteError::Gone(_)),
        "{error}"
    );
    // ...and the next one starts a new zygote.
    let r = pool.run(&engine, &python("print(2)"), None).await.unwrap();
    assert_eq!(r.stdout, "2\n", "{r:?}");
    let stats = pool.stats();
    assert_eq!((stats.started, stats.lost), (2, 1), "{stats:?}");
}
