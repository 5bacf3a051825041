//! Load on `brig serve` from a second process over loopback (this bench; the server is the
//! spawned `brig` binary): idle RSS, one-shot `POST /api/v1/execute` of `print(1)`, and
//! session cells at concurrency 1 and across 16 sessions. Prints p50/p99 and throughput.
//!
//! `cargo bench -p brig --bench serve` (add `-- --quick` for a short run). Needs root (the
//! namespace tier), like the server itself.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "brig_bench_admin_key_0123456789abcdef";

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    println!(
        "{name:<44} n={:<6} p50={:>7.2} ms  p99={:>7.2} ms  throughput={:>8.1}/s",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.len() as f64 / wall.as_secs_f64()
    );
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: &Value) -> Value {
    client
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 50 } else { 400 };
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("brig.toml"),
        "pool_target_size = 4\npool_min_size = 2\n[plans.bench]\nrequests_per_second = 100000\nburst = 100000\nmax_sessions = 64\nmax_concurrent_executions = 64\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_brig"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
        .arg("--config")
        .arg(data.path().join("brig.toml"))
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .env("BRIG_ADMIN_KEY", ADMIN)
        .env("BRIG_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn brig serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        .by_ref()
        .find_map(|l| l.ok()?.strip_prefix("listening on ").map(str::to_string))
        .expect("server ready");
    std::thread::spawn(move || for _ in lines {});
    let client = reqwest::Client::new();

    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("idle server RSS: {} KiB", rss_kib(child.id()));

    let tenant = post(
        &client,
        &format!("{base}/api/v1/tenants"),
        ADMIN,
        &json!({"name": "bench", "plan": "bench"}),
    )
    .await;
    let key = post(
        &client,
        &format!(
            "{base}/api/v1/tenants/{}/keys",
            tenant["id"].as_str().unwrap()
        ),
        ADMIN,
        &json!({}),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_string();

    // One-shot print(1), concurrency 1 and 4.
    let one_shot = json!({"language": "python", "code": "print(1)"});
    let url = format!("{base}/api/v1/execute");
    for concurrency in [1usize, 4] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, url, key, body) =
                (client.clone(), url.clone(), key.clone(), one_shot.clone());
            let per = n / 4 / concurrency;
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                for _ in 0..per {
                    let t = Instant::now();
                    let r = post(&client, &url, &key, &body).await;
                    assert_eq!(r["status"], "ok", "{r}");
                    samples.push(t.elapsed());
                }
                samples
            }));
        }
        let mut samples = Vec::new();
        for t in tasks {
            samples.extend(t.await.unwrap());
        }
        report(
            &format!("one-shot print(1), concurrency {concurrency}"),
            samples,
            started.elapsed(),
        );
    }

    // Session cells.
    let mut sessions = Vec::new();
    for _ in 0..16 {
        let s = post(
            &client,
            &format!("{base}/api/v1/sessions"),
            &key,
            &json!({"template": "python-minimal"}),
        )
        .await;
        sessions.push(s["id"].as_str().expect("session").to_string());
    }
    let cell = json!({"code": "print(1)"});
    let url0 = format!("{base}/api/v1/sessions/{}/execute", sessions[0]);
    for _ in 0..20 {
        post(&client, &url0, &key, &cell).await;
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = post(&client, &url0, &key, &cell).await;
        assert_eq!(r["status"], "ok", "{r}");
        samples.push(t.elapsed());
    }
    report(
        "session cell print(1), concurrency 1",
        samples,
        started.elapsed(),
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in &sessions {
        let (client, key, body) = (client.clone(), key.clone(), cell.clone());
        let url = format!("{base}/api/v1/sessions/{id}/execute");
        let per = n / 4;
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for _ in 0..per {
                let t = Instant::now();
                let r = post(&client, &url, &key, &body).await;
                assert_eq!(r["status"], "ok", "{r}");
                samples.push(t.elapsed());
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.unwrap());
    }
    report(
        "session cells print(1), 16 sessions",
        samples,
        started.elapsed(),
    );
    println!("server RSS after load: {} KiB", rss_kib(child.id()));
    let _ = child.kill();
    let _ = child.wait();
}
