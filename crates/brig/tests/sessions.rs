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
