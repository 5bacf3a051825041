//! Sessions through the engine API: a stateful Python kernel, files, limits per execution,
//! isolation between sessions, warm pools and reaping. Every session is a real sandbox started
//! through the re-exec'd helper.

mod common;
use base64::Engine as _;
use brig_engine::Languages;
use brig_engine::session::{
    CreateSession, Execute, PoolConfig, SessionManager, SessionsConfig, StreamEvent,
};
use common::*;
use std::collections::HashMap;
use std::time::Duration;

fn manager(pools: &[(&str, PoolConfig)]) -> SessionManager {
    let config = SessionsConfig {
        jail: brig_jail::JailConfig {
            helper: env!("CARGO_BIN_EXE_brig").into(),
            ..brig_jail::JailConfig::default()
        },
        pools: pools
            .iter()
            .map(|(t, c)| (t.to_string(), *c))
            .collect::<HashMap<_, _>>(),
        maintenance_interval: Duration::from_millis(100),
        ..SessionsConfig::default()
    };
    SessionManager::new(config, Languages::load(None).unwrap())
}

fn create(template: &str) -> CreateSession {
    CreateSession {
        owner: "alice".into(),
        template: Some(template.into()),
        ..CreateSession::default()
    }
}

fn cell(code: &str) -> Execute {
    Execute {
        code: code.into(),
        ..Execute::default()
    }
}

fn scientific_stack() -> bool {
    std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import numpy, pandas, matplotlib"])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_persists_and_results_come_back_like_jupyter() {
    if no_sandbox() {
        return;
    }
    let sessions = manager(&[]);
    let s = sessions.create(create("python-minimal")).await.unwrap();
    let r = sessions
        .execute("alice", &s.id, cell("x = 20\nprint('set')"))
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::Ok, "{r:?}");
    assert_eq!(r.stdout, "set\n");
    let r = sessions
        .execute("alice", &s.id, cell("x * 2 + 2"))
        .await
        .unwrap();
    assert_eq!(r.result.as_ref().unwrap()["text/plain"], "42");
    let r = sessions.execute("alice", &s.id, cell("1/0")).await.unwrap();
    assert_eq!(r.status, brig_core::Status::RuntimeError);
    let error = r.error.unwrap();
    assert_eq!(error["name"], "ZeroDivisionError");
    assert!(
        error["traceback"].as_str().unwrap().contains("1/0"),
        "{error}"
    );
    let r = sessions
        .execute("alice", &s.id, cell("def (:"))
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::CompileError);
    assert_eq!(r.error.unwrap()["name"], "SyntaxError");
    sessions.delete("alice", &s.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_and_dataframes() {
    if no_sandbox() {
        return;
    }
    if !scientific_stack() {
        skip("python3-numpy/pandas/matplotlib not installed");
        return;
    }
    let sessions = manager(&[]);
    let s = sessions.create(create("python")).await.unwrap();
    let r = sessions
        .execute("alice", &s.id, cell("import matplotlib.pyplot as plt\nplt.figure(figsize=(4, 3), dpi=50)\nplt.plot([1, 3, 2])\nplt.show()"))
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::Ok, "{r:?}");
    assert_eq!(r.outputs.len(), 1);
    assert_eq!(r.outputs[0].mime, "image/png");
    let png = base64::engine::general_purpose::STANDARD
        .decode(r.outputs[0].data.as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (200, 150));
    let r = sessions
        .execute(
            "alice",
            &s.id,
            cell("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})"),
        )
        .await
        .unwrap();
    let result = r.result.unwrap();
    assert!(result["text/plain"].as_str().unwrap().contains('a'));
    assert!(result["text/html"].as_str().unwrap().contains("<table"));
    sessions.delete("alice", &s.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_cell_keeps_earlier_state_and_a_memory_bomb_restarts_the_kernel() {
    if no_sandbox() {
        return;
    }
    let sessions = manager(&[]);
    let s = sessions.create(create("python-minimal")).await.unwrap();
    sessions
        .execute("alice", &s.id, cell("kept = 'yes'"))
        .await
        .unwrap();
    let r = sessions
        .execute(
            "alice",
            &s.id,
            Execute {
                timeout_ms: Some(500),
                ..cell("import time\ntime.sleep(30)")
            },
        )
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::Timeout, "{r:?}");
    assert_eq!(r.limit, Some(brig_core::TimeoutKind::Wall));
    assert!(!r.kernel_restarted);
    let r = sessions
        .execute("alice", &s.id, cell("kept"))
        .await
        .unwrap();
    assert_eq!(r.result.unwrap()["text/plain"], "'yes'");
    // A cell that ignores the interrupt: the kernel is restarted after the grace period.
    let r = sessions
        .execute(
            "alice",
            &s.id,
            Execute {
                timeout_ms: Some(300),
                ..cell(
                    "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass",
                )
            },
        )
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::Timeout, "{r:?}");
    assert!(r.kernel_restarted, "{r:?}");
    // Memory: the session's cgroup OOM-kills the kernel; the session lives on.
    let r = sessions
        .execute(
            "alice",
            &s.id,
            cell("chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::MemoryLimit, "{r:?}");
    assert!(r.kernel_restarted);
    let r = sessions
        .execute("alice", &s.id, cell("1 + 1"))
        .await
        .unwrap();
    assert_eq!(r.result.unwrap()["text/plain"], "2");
    sessions.delete("alice", &s.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_streams_in_order_and_ends_with_the_result() {
    if no_sandbox() {
        return;
    }
    let sessions = manager(&[]);
    let s = sessions.create(create("python-minimal")).await.unwrap();
    let mut events = sessions
        .execute_stream("alice", &s.id, cell("import sys, time\nprint('one', flush=True)\ntime.sleep(0.2)\nprint('two', file=sys.stderr, flush=True)\ntime.sleep(0.2)\n'done'"))
        .await
        .unwrap();
    // Chunks of one stream that follow each other are merged (`print` may write the text and
    // the newline separately); the order across streams is what matters.
    let mut seen: Vec<String> = Vec::new();
    while let Some(event) = events.recv().await {
        let (kind, text) = match event {
            StreamEvent::Stdout { text } => ("stdout:", text),
            StreamEvent::Stderr { text } => ("stderr:", text),
            StreamEvent::Display { .. } => ("display", String::new()),
            StreamEvent::Result { result } => {
                ("result:", result.result.unwrap()["text/plain"].to_string())
            }
        };
        match seen.last_mut() {
            Some(last) if last.starts_with(kind) && kind != "result:" => last.push_str(&text),
            _ => seen.push(format!("{kind}{text}")),
        }
    }
    assert_eq!(seen, ["stdout:one\n", "stderr:two\n", "result:\"'done'\""]);
    sessions.delete("alice", &s.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_round_trip_and_stay_inside_the_work_dir() {
    if no_sandbox() {
        return;
    }
    let sessions = manager(&[]);
    let s = sessions.create(create("python-minimal")).await.unwrap();
    let binary: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    sessions
        .write_file("alice", &s.id, "data/blob.bin", binary.clone())
        .await
        .unwrap();
    assert_eq!(
        sessions
            .read_file("alice", &s.id, "data/blob.bin")
            .await
            .unwrap(),
        binary
    );
    // The kernel sees the file, and a file it writes can be downloaded.
    let r = sessions
        .execute(
            "alice",
            &s.id,
            cell("open('/work/out.txt', 'w').write(str(len(open('data/blob.bin', 'rb').read())))"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::Ok, "{r:?}");
    assert_eq!(
        sessions.read_file("alice", &s.id, "out.txt").await.unwrap(),
        b"100000"
    );
    let listing = sessions.list_files("alice", &s.id, "").await.unwrap();
    let names: Vec<&str> = listing.iter().map(|e| e.name.as_str()).collect();
    assert!(
        names.contains(&"data") && names.contains(&"out.txt"),
        "{names:?}"
    );
    // Traversal is refused up front; symlinks cannot lead out.
    for bad in ["../etc/passwd", "/etc/passwd", "a/../../x"] {
        let err = sessions.read_file("alice", &s.id, bad).await.unwrap_err();
        assert!(
            err.to_string().contains("..") || err.to_string().contains("relative"),
            "{bad}: {err}"
        );
    }
    sessions
        .execute(
            "alice",
            &s.id,
            cell("import os\nos.symlink('/etc', 'etc-link')\nos.symlink('../..', 'up')"),
        )
        .await
        .unwrap();
    let err = sessions
        .read_file("alice", &s.id, "etc-link/passwd")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    let err = sessions
        .read_file("alice", &s.id, "up/etc/passwd")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    sessions.delete_file("alice", &s.id, "data").await.unwrap();
    assert!(
        sessions
            .read_file("alice", &s.id, "data/blob.bin")
            .await
            .is_err()
    );
    sessions.delete("alice", &s.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_cannot_see_each_others_files_or_processes_and_owners_are_separate() {
    if no_sandbox() {
        return;
    }
    let sessions = manager(&[]);
    let a = sessions.create(create("python-minimal")).await.unwrap();
    let b = sessions.create(create("python-minimal")).await.unwrap();
    sessions
        .write_file("alice", &a.id, "secret.txt", b"a's".to_vec())
        .await
        .unwrap();
    sessions
        .execute(
            "alice",
            &a.id,
            cell("import subprocess\np = subprocess.Popen(['/bin/sleep', '77.7'])"),
        )
        .await
        .unwrap();
    let r = sessions
        .execute("alice", &b.id, cell("import os\n(os.path.exists('/work/secret.txt'), [open(f'/proc/{p}/cmdline','rb').read() for p in os.listdir('/proc') if p.isdigit()])"))
        .await
        .unwrap();
    let text = r.result.unwrap()["text/plain"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("(False,"), "{text}");
    assert!(!text.contains("77.7"), "b sees a's process: {text}");
    // Another owner cannot reach alice's session at all.
    let err = sessions
        .execute("mallory", &a.id, cell("1"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        brig_engine::session::SessionError::NotFound(_)
    ));
    assert!(sessions.list("mallory").is_empty());
    assert_eq!(sessions.list("alice").len(), 2);
    sessions.delete("alice", &a.id).await.unwrap();
    sessions.delete("alice", &b.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_sessions_and_other_languages_share_the_work_dir() {
    if no_sandbox() {
        return;
    }
    let sessions = manager(&[]);
    let s = sessions.create(create("bash")).await.unwrap();
    let r = sessions
        .execute("alice", &s.id, cell("cd /work && echo hi > note && ls"))
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::Ok, "{r:?}");
    assert_eq!(r.stdout, "note\n");
    let r = sessions
        .execute("alice", &s.id, cell("exit 4"))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.exit_code),
        (brig_core::Status::RuntimeError, Some(4))
    );
    let r = sessions
        .execute(
            "alice",
            &s.id,
            Execute {
                language: Some("javascript".into()),
                ..cell("console.log(require('fs').readFileSync('/work/note', 'utf8').trim())")
            },
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "hi\n", "{r:?}");
    let r = sessions
        .execute(
            "alice",
            &s.id,
            Execute {
                timeout_ms: Some(300),
                ..cell("sleep 30")
            },
        )
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::Timeout);
    let r = sessions
        .execute(
            "alice",
            &s.id,
            Execute {
                limits: brig_core::LimitOverrides {
                    output_bytes: Some(1000),
                    ..Default::default()
                },
                ..cell("yes")
            },
        )
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::OutputLimit);
    assert_eq!(r.stdout.len(), 1000);
    sessions.delete("alice", &s.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_agent_from_inside_fails_and_its_death_ends_the_session_clearly() {
    if no_sandbox() {
        return;
    }
    let sessions = manager(&[]);
    let s = sessions.create(create("bash")).await.unwrap();
    // PID 1 ignores signals from inside its namespace; the agent lives on.
    let r = sessions
        .execute("alice", &s.id, cell("kill -9 1; echo still"))
        .await
        .unwrap();
    assert_eq!(r.stdout, "still\n", "{r:?}");
    let r = sessions
        .execute("alice", &s.id, cell("echo alive"))
        .await
        .unwrap();
    assert_eq!(r.stdout, "alive\n");
    // Its memory is out of reach too (not dumpable, and Landlock keeps /proc read-only).
    let r = sessions
        .execute("alice", &s.id, cell("echo x > /proc/1/mem"))
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::RuntimeError);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    // If the sandbox dies anyway (here: its helper is killed from outside), the session ends
    // with a clear error instead of hanging.
    let pid = sessions.helper_pid("alice", &s.id).unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = sessions
        .execute("alice", &s.id, cell("echo again"))
        .await
        .unwrap();
    assert_eq!(r.status, brig_core::Status::InternalError, "{r:?}");
    assert!(
        r.message.unwrap().contains("session"),
        "the message names what happened"
    );
    assert!(
        sessions
            .info("alice", &s.id)
            .unwrap()
            .status
            .starts_with("ended")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_hand_out_ready_sandboxes_and_refill_and_one_shot_runs_leak_nothing() {
    if no_sandbox() {
        return;
    }
    let pool = PoolConfig {
        target_size: 2,
        min_size: 1,
        max_idle_time: Duration::from_secs(300),
    };
    let sessions = manager(&[("python-minimal", pool)]);
    // The pool fills in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sessions.pool_stats()[0].size < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "pool never filled: {:?}",
            sessions.pool_stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = sessions.create(create("python-minimal")).await.unwrap();
    assert!(s.from_pool);
    // Deplete it, then watch it refill to its target.
    let mut extra = Vec::new();
    for _ in 0..3 {
        extra.push(sessions.create(create("python-minimal")).await.unwrap());
    }
    let stats = sessions.pool_stats()[0].clone();
    assert!(stats.hits >= 1 && stats.misses >= 1, "{stats:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sessions.pool_stats()[0].size < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "pool never refilled: {:?}",
            sessions.pool_stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sessions.pool_stats()[0].avg_build_ms > 0.0);
    // One-shot runs through the pool: nothing from one is visible in the next.
    let first = sessions
        .run_once("python-minimal", cell("leak = 1\nopen('/work/leak.txt', 'w').write('x')\nimport os\nos.path.exists('/work/leak.txt')"))
        .await
        .unwrap();
    assert_eq!(first.result.unwrap()["text/plain"], "True");
    let second = sessions
        .run_once(
            "python-minimal",
            cell("import os\n('leak' in globals(), os.path.exists('/work/leak.txt'))"),
        )
        .await
        .unwrap();
    assert_eq!(second.result.unwrap()["text/plain"], "(False, False)");
    for info in extra.into_iter().chain([s]) {
        sessions.delete("alice", &info.id).await.unwrap();
    }
}

/// Lets the manager's background task run after the clock moved.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

// A current-thread runtime: tokio's clock can only be paused there.
#[tokio::test]
async fn idle_and_expired_sessions_are_reaped() {
    if no_sandbox() {
        return;
    }
    let sessions = manager(&[]);
    let idle = sessions
        .create(CreateSession {
            idle_timeout: Some(Duration::from_secs(60)),
            ..create("bash")
        })
        .await
        .unwrap();
    let busy = sessions
        .create(CreateSession {
            idle_timeout: Some(Duration::from_secs(60)),
            ttl: Some(Duration::from_secs(100)),
            ..create("bash")
        })
        .await
        .unwrap();
    // Freeze tokio's clock and move it: 40 s, use `busy`, 30 s more: `idle` has been idle for
    // 70 s and goes; `busy` for 30 s and stays, until its TTL (100 s).
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(40)).await;
    settle().await;
    assert!(sessions.info("alice", &idle.id).is_ok(), "reaped too early");
    sessions.keep_alive("alice", &busy.id).unwrap();
    tokio::time::advance(Duration::from_secs(31)).await;
    settle().await;
    assert!(
        sessions.info("alice", &idle.id).is_err(),
        "the idle session is still there"
    );
    assert!(sessions.info("alice", &busy.id).is_ok());
    sessions.keep_alive("alice", &busy.id).unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    settle().await;
    assert!(
        sessions.info("alice", &busy.id).is_err(),
        "the session outlived its TTL"
    );
    tokio::time::resume();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_owner_cap_holds() {
    if no_sandbox() {
        return;
    }
    let config = SessionsConfig {
        jail: brig_jail::JailConfig {
            helper: env!("CARGO_BIN_EXE_brig").into(),
            ..brig_jail::JailConfig::default()
        },
        pools: HashMap::new(),
        max_sessions_per_owner: 2,
        ..SessionsConfig::default()
    };
    let sessions = SessionManager::new(config, Languages::load(None).unwrap());
    let a = sessions.create(create("bash")).await.unwrap();
    let b = sessions.create(create("bash")).await.unwrap();
    let err = sessions.create(create("bash")).await.unwrap_err();
    assert!(err.to_string().contains("already has 2 sessions"), "{err}");
    let other = sessions
        .create(CreateSession {
            owner: "bob".into(),
            ..create("bash")
        })
        .await
        .unwrap();
    for (owner, id) in [("alice", a.id), ("alice", b.id), ("bob", other.id)] {
        sessions.delete(owner, &id).await.unwrap();
    }
}
