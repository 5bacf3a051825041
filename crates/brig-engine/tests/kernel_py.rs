//! Runs the Python kernel's own test suite (`kernel/test_brig_kernel.py`, stdlib unittest) so
//! that `cargo test` covers it.

#[test]
fn the_python_kernel_passes_its_own_tests() {
    let python = std::path::Path::new("/usr/bin/python3");
    if !python.exists() {
        assert!(
            std::env::var_os("CI").is_none() && std::env::var_os("BRIG_TEST_STRICT").is_none(),
            "/usr/bin/python3 is required (CI/BRIG_TEST_STRICT is set)"
        );
        eprintln!("SKIP: /usr/bin/python3 is not installed");
        return;
    }
    let kernel_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/kernel");
    let out = std::process::Command::new(python)
        .args(["-m", "unittest", "discover", "-s", kernel_dir, "-v"])
        .current_dir(kernel_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kernel tests failed:\n{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
    let ran = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("Ran ")
                .and_then(|r| r.split(' ').next()?.parse::<u32>().ok())
        })
        .unwrap_or(0);
    assert!(ran >= 40, "only {ran} kernel tests ran:\n{stderr}");
}
