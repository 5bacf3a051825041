//! The jail as a library from a multi-threaded caller: every run goes through the re-exec'd
//! single-threaded helper (`brig __sandbox-helper`), reports setup failures as typed errors and
//! streams output as it comes.

mod common;
use brig_jail::{JailConfig, JailError, OutputSink, SandboxSpec, Stdin, Stream, run_via_helper};
use common::*;

fn config() -> JailConfig {
    JailConfig {
        helper: env!("CARGO_BIN_EXE_brig").into(),
        ..JailConfig::default()
    }
}

#[test]
fn concurrent_runs_from_threads_each_get_their_own_sandbox() {
    if no_sandbox() {
        return;
    }
    let handles: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                let spec = SandboxSpec::command(&["/bin/sh", "-c", &format!("echo run {i}; cat")]);
                run_via_helper(
                    &config(),
                    &spec,
                    &Stdin::Bytes(format!("in{i}").into_bytes()),
                    None,
                )
                .unwrap()
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let report = handle.join().unwrap();
        let step = &report.steps[0];
        assert_eq!(step.termination.status().0, brig_core::Status::Ok);
        assert_eq!(
            String::from_utf8_lossy(&step.stdout),
            format!("run {i}\nin{i}")
        );
    }
}

#[test]
fn a_missing_program_is_a_typed_setup_error_not_an_exit_code() {
    if no_sandbox() {
        return;
    }
    let spec = SandboxSpec::command(&["/usr/bin/no-such-program"]);
    let err = run_via_helper(&config(), &spec, &Stdin::Null, None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, JailError::Helper(_)), "{err:?}");
    assert!(text.contains("sandbox setup failed at exec"), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
}

#[test]
fn an_invalid_spec_is_refused_before_anything_runs() {
    let mut spec = SandboxSpec::command(&["relative/program"]);
    spec.steps[0].limits.memory_bytes = 1;
    let err =
        brig_jail::run_here(&config(), &spec, None, None, &mut brig_jail::Discard).unwrap_err();
    // The test harness is multi-threaded: run_here refuses to fork from it.
    assert!(matches!(err, JailError::NotSingleThreaded), "{err}");
    let errors = spec.validate().unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter().any(|t| t.contains("must be an absolute path")),
        "{text:?}"
    );
    assert!(text.iter().any(|t| t.contains("memory_bytes")), "{text:?}");
}

struct Collect(Vec<(Stream, Vec<u8>)>);

impl OutputSink for Collect {
    fn output(&mut self, _step: usize, stream: Stream, data: &[u8]) {
        self.0.push((stream, data.to_vec()));
    }
}

#[test]
fn output_streams_as_it_is_produced() {
    if no_sandbox() {
        return;
    }
    let spec = SandboxSpec::command(&[
        "/bin/sh",
        "-c",
        "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three",
    ]);
    let mut sink = Collect(Vec::new());
    let report = run_via_helper(&config(), &spec, &Stdin::Null, Some(&mut sink)).unwrap();
    let chunks: Vec<(Stream, String)> = sink
        .0
        .iter()
        .map(|(s, d)| (*s, String::from_utf8_lossy(d).into_owned()))
        .collect();
    assert_eq!(
        chunks,
        vec![
            (Stream::Stdout, "one\n".to_string()),
            (Stream::Stderr, "two\n".to_string()),
            (Stream::Stdout, "three\n".to_string())
        ]
    );
    assert_eq!(report.steps[0].stdout, b"one\nthree\n");
}

/// The helper answers as soon as the result is known and removes the run's cgroups after that,
/// before it exits: they are still there when the answer arrives (a daemon with 1 GiB to
/// unmap keeps the sandbox's teardown going for tens of ms), and none outlives its helper.
#[test]
fn the_helper_removes_its_cgroups_after_answering() {
    if no_sandbox() {
        return;
    }
    // A parent of its own, so that the other tests' runs do not show up in it.
    let parent = format!("brig-test-{}", std::process::id());
    let config = JailConfig {
        cgroup_parent: parent.clone(),
        ..config()
    };
    let parents = cgroup_parents(&parent);
    let run_dirs = || cgroups_named(&parents, "run-");
    // `run-<pid>-<start>-<step>`: is the helper that made it still running?
    let owner_alive = |dir: &std::path::Path| {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let pid = name.split('-').nth(1).unwrap_or("0").to_owned();
        std::path::Path::new("/proc").join(pid).exists()
    };
    let before = run_dirs();
    let daemon = python_leaving_a_heavy_daemon("print('started')");
    let mut spec = SandboxSpec::command(&["/usr/bin/python3", "-c", &daemon]);
    spec.steps[0].limits.memory_bytes = 2 << 30;
    let report = run_via_helper(&config, &spec, &Stdin::Null, None).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&report.steps[0].stdout),
        "started\n",
        "{report:?}"
    );
    let appeared: Vec<_> = run_dirs().difference(&before).cloned().collect();
    assert!(!appeared.is_empty(), "no cgroup of the run left to remove");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while appeared.iter().any(|d| d.exists() && owner_alive(d))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let leaked: Vec<_> = appeared
        .iter()
        .filter(|d| d.exists() && !owner_alive(d))
        .collect();
    assert!(
        leaked.is_empty(),
        "cgroups outlived their helper: {leaked:?}"
    );
    // Once its own group is gone, the helper has made a spare for the next run in its place.
    let spares = cgroups_named(&parents, "spare-");
    assert!(!spares.is_empty(), "no spare made after the run");
    for spare in spares.iter().chain(parents.iter().filter(|p| p.exists())) {
        std::fs::remove_dir(spare).unwrap_or_else(|e| panic!("{}: {e}", spare.display()));
    }
}
