use brig_wasm::*;
#[test]
fn scratch() {
    let dir = tempfile::tempdir().unwrap();
    let tier = WasmTier::new(WasmConfig {
        cache_dir: dir.path().into(),
        ..Default::default()
    })
    .unwrap();
    let t = std::time::Instant::now();
    tier.warm_python().unwrap();
    eprintln!("warm {:?} {:?}", t.elapsed(), tier.cache_stats());
    for src in [
        "import sys, os; print(sys.version, os.getcwd(), sys.path, os.listdir('/'), os.environ)",
        "print(open('x.txt','w').write('hi')); print(open('/work/x.txt').read()); import os; print(os.listdir('.'))",
        "def (",
        "raise ValueError('boom')",
        "open('/etc/passwd')",
        "import ssl",
        "import _ctypes",
        "import time; time.sleep(30)",
        "while True: pass",
        "x = bytearray(10**9)",
        "print(input())",
        "import sys; sys.exit(3)",
        "def f(n): return f(n+1)\nf(0)",
        "print('x'*100000)",
    ] {
        let mut job = WasmJob::new(WasmProgram::Python { source: src.into() });
        job.stdin = b"hello stdin\n".to_vec();
        job.limits.timeout_ms = 2000;
        job.limits.output_bytes = 50_000;
        let t = std::time::Instant::now();
        let r = tier.run(&job);
        eprintln!(
            "=== {src}\n{:?} {:?} exit={:?} wall={} cpu={} mem={} msg={:?} took {:?}\nSTDOUT: {}\nSTDERR: {}",
            r.status,
            r.limit,
            r.exit_code,
            r.wall_ms,
            r.cpu_ms,
            r.memory_peak_bytes,
            r.message,
            t.elapsed(),
            &r.stdout[..r.stdout.len().min(300)],
            &r.stderr[r.stderr.len().saturating_sub(1500)..]
        );
    }
}
