//! Piston v2 against fixtures written from Piston's `docs/api-v2.md` and `api/src/api/v2.js`.

mod common;

use brig_compat::piston::{self, ExecuteRequest, PistonLimits, Versions};
use brig_core::{Status, TimeoutKind};
use brig_engine::Languages;
use brig_jail::Stdin;
use common::{fixture, fixture_bytes, result};

fn languages() -> Languages {
    Languages::load(None).unwrap()
}

fn versions() -> Versions {
    Versions::from_printed([
        ("python", "Python 3.11.2"),
        ("javascript", "v20.11.1"),
        ("bash", "5.2.21(1)-release"),
        ("cpp", "12.2.0"),
    ])
}

fn request(language: &str, version: &str) -> ExecuteRequest {
    ExecuteRequest {
        language: language.into(),
        version: version.into(),
        files: vec![piston::File {
            name: Some("main.py".into()),
            content: "print(1)".into(),
            encoding: None,
        }],
        ..ExecuteRequest::default()
    }
}

#[test]
fn the_documented_request_parses_every_field_and_maps_to_a_run() {
    let req = piston::parse_execute(&fixture_bytes("piston/execute_request.json")).unwrap();
    assert_eq!(req.language, "js");
    assert_eq!(req.files.len(), 3);
    assert_eq!(req.args.as_deref().unwrap(), ["1", "2", "3"]);
    assert_eq!(req.run_timeout, Some(3000.0));
    assert_eq!(req.compile_timeout, Some(10000.0));
    assert_eq!(req.run_cpu_time, Some(3000.0));
    assert_eq!(req.compile_cpu_time, Some(10000.0));
    assert_eq!(req.run_memory_limit, Some(-1.0));
    assert_eq!(req.compile_memory_limit, Some(-1.0));

    let run =
        piston::to_run_request(&req, &languages(), &versions(), &PistonLimits::stock()).unwrap();
    assert_eq!(run.language, "javascript");
    assert_eq!(run.source, b"console.log(process.argv)");
    assert_eq!(run.args, ["1", "2", "3"]);
    assert!(matches!(run.stdin, Stdin::Null));
    assert_eq!(run.limits.timeout_ms, Some(3000));
    assert_eq!(run.limits.cpu_time_ms, Some(3000));
    // -1: no limit, so the language's default.
    assert_eq!(run.limits.memory_bytes, None);
    // The compile stage's limits go to the compile step.
    assert_eq!(run.compile_limits.timeout_ms, Some(10000));
    assert_eq!(run.compile_limits.cpu_time_ms, Some(10000));
    assert_eq!(run.compile_limits.memory_bytes, None);
    let files: Vec<_> = run
        .files
        .iter()
        .map(|f| (f.path.as_str(), &f.content[..]))
        .collect();
    assert_eq!(
        files,
        [("data.bin", &b"hello"[..]), ("file2.code", &b"Hi\n"[..])]
    );
}

#[test]
fn the_documented_response_is_what_a_successful_run_becomes() {
    let mut r = result(Status::Ok, Some(0), None);
    r.stdout = "[ '1', '2', '3' ]\n".into();
    r.stderr = String::new();
    r.memory_peak_bytes = 8_216_000;
    r.cpu_ms = 8;
    r.wall_ms = 154;
    let response = piston::to_response("javascript", "20.11.1", &r);
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        fixture("piston/execute_response.json")
    );
}

#[test]
fn runtimes_list_available_languages_with_versions_and_piston_names() {
    let runtimes = piston::runtimes(&languages(), &versions());
    let names: Vec<_> = runtimes.iter().map(|r| r.language.as_str()).collect();
    assert_eq!(names, ["python", "bash", "javascript", "c++"]);
    let bash = &runtimes[1];
    assert_eq!(
        serde_json::to_value(bash).unwrap(),
        fixture("piston/runtimes_entry.json")
    );
    let js = &runtimes[2];
    assert_eq!(js.version, "20.11.1");
    assert_eq!(js.runtime.as_deref(), Some("node"));
    assert!(js.aliases.iter().any(|a| a == "js"));
    let cpp = &runtimes[3];
    assert_eq!(cpp.runtime.as_deref(), Some("gcc"));
    assert!(cpp.aliases.iter().any(|a| a == "cpp"));
}

#[test]
fn versions_match_star_exact_ranges_and_refuse_others_with_pistons_message() {
    let (l, v, caps) = (languages(), versions(), PistonLimits::default());
    for ok in ["*", "3.11.2", "3.x", "3", ">=3.10", "^3.11.0", "~3.11"] {
        let run = piston::to_run_request(&request("python", ok), &l, &v, &caps);
        assert_eq!(run.unwrap().language, "python", "{ok}");
    }
    for (lang, version) in [("python", "3.10.0"), ("python", "2.x"), ("python", "<3")] {
        let err = piston::to_run_request(&request(lang, version), &l, &v, &caps).unwrap_err();
        assert_eq!(err.message, format!("{lang}-{version} runtime is unknown"));
        assert_eq!(err.http_status(), 400);
    }
    let err = piston::to_run_request(&request("cobol", "*"), &l, &v, &caps).unwrap_err();
    assert_eq!(err.message, "cobol-* runtime is unknown");
    // Known to Brig but not available (no version): unknown to Piston.
    let err = piston::to_run_request(&request("perl", "*"), &l, &v, &caps).unwrap_err();
    assert_eq!(err.message, "perl-* runtime is unknown");
    // Piston's aliases resolve to Brig's languages.
    for alias in ["py3", "node-js", "c++", "g++", "sh"] {
        assert!(
            piston::to_run_request(&request(alias, "*"), &l, &v, &caps).is_ok(),
            "{alias}"
        );
    }
}

#[test]
fn request_errors_carry_pistons_messages() {
    let msg = |body: &str| piston::parse_execute(body.as_bytes()).unwrap_err().message;
    assert_eq!(
        msg(r#"{"version":"*","files":[]}"#),
        "language is required as a string"
    );
    assert_eq!(
        msg(r#"{"language":"py","files":[]}"#),
        "version is required as a string"
    );
    assert_eq!(
        msg(r#"{"language":"py","version":"*"}"#),
        "files is required as an array"
    );
    assert_eq!(
        msg(r#"{"language":"py","version":"*","files":[{"content":"x"},{"name":"a"}]}"#),
        "files[1].content is required as a string"
    );
    assert_eq!(
        msg(r#"{"language":"py","version":"*","files":[{"content":"x"}],"run_timeout":"5"}"#),
        "If specified, run_timeout must be a number"
    );
    assert!(msg("not json").starts_with("invalid JSON body"));

    let (l, v) = (languages(), versions());
    let mut req = request("python", "*");
    req.run_timeout = Some(5000.0);
    let err = piston::to_run_request(&req, &l, &v, &PistonLimits::stock()).unwrap_err();
    assert_eq!(
        err.message,
        "run_timeout cannot exceed the configured limit of 3000"
    );
    req.run_timeout = Some(-1.0);
    let err = piston::to_run_request(&req, &l, &v, &PistonLimits::stock()).unwrap_err();
    assert_eq!(err.message, "run_timeout must be non-negative");
    let run = piston::to_run_request(&req, &l, &v, &PistonLimits::default()).unwrap();
    assert_eq!(
        run.limits.timeout_ms, None,
        "-1 without a cap is the default"
    );

    let mut req = request("python", "*");
    req.files[0].encoding = Some("base64".into());
    req.files[0].content = "cHJpbnQoMSk=".into();
    let err = piston::to_run_request(&req, &l, &v, &PistonLimits::default()).unwrap_err();
    assert_eq!(
        err.message,
        "files must include at least one utf8 encoded file"
    );
    req.files[0].content = "!!".into();
    let err = piston::to_run_request(&req, &l, &v, &PistonLimits::default()).unwrap_err();
    assert_eq!(err.message, "files[0].content is not valid base64");
    req.files[0].encoding = Some("latin1".into());
    let err = piston::to_run_request(&req, &l, &v, &PistonLimits::default()).unwrap_err();
    assert!(
        err.message.starts_with("files[0].encoding must be one of"),
        "{}",
        err.message
    );
    let mut req = request("python", "*");
    req.files.push(piston::File {
        name: Some("../escape.py".into()),
        content: "x".into(),
        encoding: None,
    });
    let err = piston::to_run_request(&req, &l, &v, &PistonLimits::default()).unwrap_err();
    assert!(
        err.message.contains("tries to escape parent directory"),
        "{}",
        err.message
    );
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        serde_json::json!({ "message": err.message })
    );
}

#[test]
fn the_entry_point_is_the_first_utf8_file_and_stdin_is_passed() {
    let body = br#"{"language":"python","version":"*","stdin":"42\n","files":[
        {"name":"lib.bin","content":"AAE=","encoding":"base64"},
        {"name":"main.py","content":"print(input())"},
        {"name":"helper.py","content":"X = 1"}]}"#;
    let req = piston::parse_execute(body).unwrap();
    let run =
        piston::to_run_request(&req, &languages(), &versions(), &PistonLimits::default()).unwrap();
    assert_eq!(run.source, b"print(input())");
    let names: Vec<_> = run.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(names, ["lib.bin", "helper.py"]);
    assert!(matches!(&run.stdin, Stdin::Bytes(b) if b == b"42\n"));
}

#[test]
fn every_brig_status_maps_to_a_piston_status() {
    let stage = |r| piston::to_stage(&r);
    let ok = stage(result(Status::Ok, Some(0), None));
    assert_eq!((ok.status, ok.signal, ok.code), (None, None, Some(0)));
    assert_eq!(ok.output, "out\nerr\n");

    let re = stage(result(Status::RuntimeError, Some(3), None));
    assert_eq!(re.status.as_deref(), Some("RE"));
    assert_eq!(re.code, Some(3));
    assert_eq!(re.message.as_deref(), Some("Exited with error status 3"));

    let sg = stage(result(Status::Killed, None, Some(11)));
    assert_eq!(sg.status.as_deref(), Some("SG"));
    assert_eq!(sg.signal.as_deref(), Some("SIGSEGV"));
    assert_eq!(sg.code, None);

    let mut to = result(Status::Timeout, None, Some(9));
    to.limit = Some(TimeoutKind::Wall);
    let to = stage(to);
    assert_eq!(to.status.as_deref(), Some("TO"));
    assert_eq!(to.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(
        to.message.as_deref(),
        Some("Time limit exceeded (wall clock)")
    );

    let mem = stage(result(Status::MemoryLimit, None, Some(9)));
    assert_eq!(mem.status.as_deref(), Some("SG"));
    assert_eq!(mem.signal.as_deref(), Some("SIGKILL"));
    assert!(mem.message.unwrap().contains("Memory limit exceeded"));

    let ol = stage(result(Status::OutputLimit, None, Some(9)));
    assert_eq!(ol.status.as_deref(), Some("OL"));
    assert_eq!(ol.signal.as_deref(), Some("SIGKILL"));
    let mut el = result(Status::OutputLimit, None, Some(9));
    el.stdout.clear();
    assert_eq!(stage(el).status.as_deref(), Some("EL"));

    let mut xx = result(Status::InternalError, None, None);
    xx.message = Some("cgroup setup failed".into());
    let xx = stage(xx);
    assert_eq!(xx.status.as_deref(), Some("XX"));
    assert_eq!(xx.message.as_deref(), Some("cgroup setup failed"));

    // A Python syntax error is Brig's compile_error but a run-stage RE for Piston.
    let syntax = stage(result(Status::CompileError, Some(1), None));
    assert_eq!(syntax.status.as_deref(), Some("RE"));
}

#[test]
fn a_failed_compile_is_repeated_as_the_run_stage() {
    let mut compile = result(Status::RuntimeError, Some(1), None);
    compile.stderr = "main.cpp:1: error".into();
    let mut top = result(Status::CompileError, Some(1), None);
    top.compile = Some(Box::new(compile));
    let response = piston::to_response("c++", "12.2.0", &top);
    let c = response.compile.clone().unwrap();
    assert_eq!(c.status.as_deref(), Some("RE"));
    assert_eq!(c.stderr, "main.cpp:1: error");
    assert_eq!(response.run, c);

    let mut ok = result(Status::Ok, Some(0), None);
    ok.compile = Some(Box::new(result(Status::Ok, Some(0), None)));
    ok.stdout = "ran\n".into();
    let response = piston::to_response("c++", "12.2.0", &ok);
    assert_eq!(response.run.stdout, "ran\n");
    assert_eq!(response.compile.unwrap().status, None);
    assert_eq!(piston::language_name("cpp"), "c++");
}
