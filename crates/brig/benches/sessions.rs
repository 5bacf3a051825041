//! Sessions and warm pools, side by side in one run (`cargo bench -p brig --bench sessions`,
//! as root): session create from a warm pool, a `print(1)` cell in a live session, one-shot
//! `print(1)` through the pool (latency and sustained rate, next to bare `python3 -c` spawns),
//! time to the first figure in a warm `python` session, the memory (PSS) of idle warm
//! sandboxes, and one-shot `print(1)` forked from warm zygotes (latency and sustained rate).

use brig_engine::session::{CreateSession, Execute, PoolConfig, SessionManager, SessionsConfig};
use brig_engine::zygote::ZygotePool;
use brig_engine::{Engine, Languages, Launch, RunRequest};
use std::time::{Duration, Instant};

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, samples: &mut [f64]) {
    println!(
        "{name:<52} n={:<4} p50 {:>8.2} ms   p90 {:>8.2} ms",
        samples.len(),
        percentile(samples, 0.5),
        percentile(samples, 0.9)
    );
}

fn cell(code: &str) -> Execute {
    Execute {
        code: code.into(),
        ..Execute::default()
    }
}

/// PSS of a process and all its descendants, in bytes.
fn pss_tree(root: u32) -> u64 {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let ppid: u32 = after
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        children.entry(ppid).or_default().push(pid);
    }
    let mut total = 0;
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            total += rollup
                .lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024;
        }
        stack.extend(children.get(&pid).cloned().unwrap_or_default());
    }
    total
}

async fn wait_for_pool(sessions: &SessionManager, template: &str, size: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = sessions.pool_stats();
        let pool = stats.iter().find(|p| p.template == template).unwrap();
        if pool.size >= size || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pools = [
        (
            "python-minimal",
            PoolConfig {
                target_size: 12,
                min_size: 5,
                max_idle_time: Duration::from_secs(300),
            },
        ),
        (
            "python",
            PoolConfig {
                target_size: 2,
                min_size: 1,
                max_idle_time: Duration::from_secs(300),
            },
        ),
    ];
    let config = SessionsConfig {
        jail: brig_jail::JailConfig {
            helper: env!("CARGO_BIN_EXE_brig").into(),
            ..brig_jail::JailConfig::default()
        },
        pools: pools.iter().map(|(t, c)| (t.to_string(), *c)).collect(),
        max_sessions_per_owner: 1000,
        maintenance_interval: Duration::from_millis(20),
        ..SessionsConfig::default()
    };
    let sessions = SessionManager::new(config, Languages::load(None).unwrap());
    wait_for_pool(&sessions, "python-minimal", 12).await;
    wait_for_pool(&sessions, "python", 2).await;

    // Session create from the warm pool.
    let mut create = Vec::new();
    let mut live = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let info = sessions
            .create(CreateSession {
                owner: "bench".into(),
                template: Some("python-minimal".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        create.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(info.from_pool, "pool ran dry");
        live.push(info.id);
    }
    report(
        "session create from a warm pool (python-minimal)",
        &mut create,
    );

    // A print(1) cell in a live session.
    let mut cells = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let r = sessions
            .execute("bench", &live[0], cell("print(1)"))
            .await
            .unwrap();
        cells.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.stdout, "1\n");
    }
    report("print(1) cell in a live session (engine API)", &mut cells);

    // PSS of idle warm sandboxes.
    let pss_minimal: Vec<u64> = live
        .iter()
        .take(3)
        .filter_map(|id| sessions.helper_pid("bench", id))
        .map(pss_tree)
        .collect();
    for id in &live {
        sessions.delete("bench", id).await.unwrap();
    }

    // Time to first figure in a warm `python` session (once the pools are full again, so that
    // no build competes for the CPUs).
    wait_for_pool(&sessions, "python-minimal", 12).await;
    let info = sessions
        .create(CreateSession {
            owner: "bench".into(),
            template: Some("python".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let pss_python = sessions
        .helper_pid("bench", &info.id)
        .map(pss_tree)
        .unwrap_or(0);
    let t = Instant::now();
    let r = sessions
        .execute(
            "bench",
            &info.id,
            cell("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"),
        )
        .await
        .unwrap();
    let first_figure = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(r.outputs.len(), 1, "{r:?}");
    println!(
        "{:<52} {:>8.2} ms (from pool: {})",
        "time to first figure, warm python session", first_figure, info.from_pool
    );
    sessions.delete("bench", &info.id).await.unwrap();
    println!(
        "{:<52} {:>8.1} MB per sandbox (helper + agent + kernel)",
        "idle warm sandbox PSS, python-minimal",
        pss_minimal.iter().sum::<u64>() as f64 / pss_minimal.len().max(1) as f64 / 1e6
    );
    println!(
        "{:<52} {:>8.1} MB",
        "idle warm sandbox PSS, python",
        pss_python as f64 / 1e6
    );

    // One-shot print(1) through the pool: latency, then the sustained rate.
    wait_for_pool(&sessions, "python-minimal", 12).await;
    let mut once = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let r = sessions
            .run_once("python-minimal", cell("print(1)"))
            .await
            .unwrap();
        once.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.stdout, "1\n");
    }
    report("one-shot print(1) through the pool (pool hits)", &mut once);
    let window = Duration::from_secs(10);
    let started = Instant::now();
    let mut done = 0u32;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let sessions = sessions.clone();
        tasks.spawn(async move {
            let mut n = 0u32;
            while started.elapsed() < window {
                if sessions
                    .run_once("python-minimal", cell("print(1)"))
                    .await
                    .is_ok_and(|r| r.stdout == "1\n")
                {
                    n += 1;
                }
            }
            n
        });
    }
    while let Some(n) = tasks.join_next().await {
        done += n.unwrap();
    }
    let rate = done as f64 / started.elapsed().as_secs_f64();
    println!(
        "{:<52} {:>8.1} runs/s (4 clients, {}s)",
        "one-shot print(1) through the pool, sustained",
        rate,
        window.as_secs()
    );
    // One-shot print(1) forked from warm zygotes (`brig_engine::zygote`): each run still gets a
    // sandbox of its own. Measured once the pool above has refilled, so that no sandbox build
    // competes for the CPU.
    wait_for_pool(&sessions, "python-minimal", 12).await;
    let engine = std::sync::Arc::new(Engine {
        languages: Languages::load(None).unwrap(),
        jail: brig_jail::JailConfig {
            helper: env!("CARGO_BIN_EXE_brig").into(),
            ..brig_jail::JailConfig::default()
        },
        launch: Launch::Helper,
        wasm: Default::default(),
    });
    let template = brig_engine::session::templates::find("python-minimal").unwrap();
    let zygotes =
        std::sync::Arc::new(ZygotePool::new(&engine, engine.jail.clone(), &template, 4).unwrap());
    let t = Instant::now();
    zygotes.warm(4).await.unwrap();
    println!(
        "{:<52} {:>8.1} ms",
        "4 python-minimal zygotes started",
        t.elapsed().as_secs_f64() * 1000.0
    );
    // Idle: each zygote's helper, init, interpreter and the next run's sandbox built ahead.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pids = zygotes.helper_pids();
    println!(
        "{:<52} {:>8.1} MB per zygote (helper + init + zygote + next run's sandbox)",
        "idle zygote PSS, python-minimal",
        pids.iter().map(|&pid| pss_tree(pid)).sum::<u64>() as f64 / pids.len().max(1) as f64 / 1e6
    );
    let print1 = RunRequest {
        language: "python".into(),
        source: b"print(1)".to_vec(),
        ..RunRequest::default()
    };
    // Latency when the run's sandbox is ready (runs 20 ms apart, as requests arrive), then
    // back to back (each run's sandbox is built while the previous one runs).
    let mut paced = Vec::new();
    let mut back_to_back = Vec::new();
    for i in 0..100 {
        if i < 50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let t = Instant::now();
        let r = zygotes.run(&engine, &print1, None).await.unwrap();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(r.stdout, "1\n", "{r:?}");
        if i < 50 {
            paced.push(ms)
        } else {
            back_to_back.push(ms)
        }
    }
    report(
        "one-shot print(1) forked from a zygote, 20 ms apart",
        &mut paced,
    );
    report(
        "one-shot print(1) forked from a zygote, back to back",
        &mut back_to_back,
    );
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (engine, zygotes, print1) = (engine.clone(), zygotes.clone(), print1.clone());
        tasks.spawn(async move {
            let mut n = 0u32;
            while started.elapsed() < window {
                let r = zygotes.run(&engine, &print1, None).await.unwrap();
                assert_eq!(r.stdout, "1\n", "{r:?}");
                n += 1;
            }
            n
        });
    }
    let mut done = 0u32;
    while let Some(n) = tasks.join_next().await {
        done += n.unwrap();
    }
    println!(
        "{:<52} {:>8.1} runs/s (4 clients, 4 zygotes, {}s)",
        "one-shot print(1) forked from a zygote, sustained",
        done as f64 / started.elapsed().as_secs_f64(),
        window.as_secs()
    );

    let started = Instant::now();
    let mut spawned = 0u32;
    let mut handles = Vec::new();
    for _ in 0..2 {
        handles.push(std::thread::spawn(move || {
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(5) {
                std::process::Command::new("/usr/bin/python3")
                    .args(["-c", "print(1)"])
                    .output()
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    for h in handles {
        spawned += h.join().unwrap();
    }
    println!(
        "{:<52} {:>8.1} runs/s (2 threads, 5s)",
        "bare python3 -c 'print(1)' spawns, for comparison",
        spawned as f64 / started.elapsed().as_secs_f64()
    );
    for stats in sessions.pool_stats() {
        println!(
            "pool {:<16} hits {:>5} misses {:>5} builds {:>5} avg build {:>7.1} ms",
            stats.template, stats.hits, stats.misses, stats.builds, stats.avg_build_ms
        );
    }
}
