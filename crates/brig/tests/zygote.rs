//! One-shot Python runs forked from a warm zygote (`brig_engine::zygote`): the same results as
//! a fresh sandbox, each run in a sandbox of its own, and the limits and escape probes of
//! `escape.rs` holding for runs forked from a zygote too.

mod common;
use brig_core::{KillReason, Status, TierChoice};
use brig_engine::session::templates;
use brig_engine::zygote::ZygotePool;
use brig_engine::{Engine, Languages, Launch, RunRequest};
use common::*;

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
    let r = pool.run(&engine, &python("import sys\nprint('hi', sys.argv)\n"), None).await.unwrap();
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.stdout, "hi ['/work/main.py']\n");
    assert_eq!(r.exit_code, Some(0));
    assert!(r.memory_peak_bytes > 0 && r.wall_ms > 0 || r.wall_ms == 0, "{r:?}");
}
