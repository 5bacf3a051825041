//! Judge0 CE against fixtures written from its API docs (ce.judge0.com) and its source
//! (`app/models/submission.rb`, `app/jobs/isolate_job.rb`, `app/helpers/config.rb`).

mod common;

use brig_compat::encoding::encode_base64;
use brig_compat::judge0::{
    self, Judge0Config, Judge0Error, Submission, SubmissionRequest, select_fields, status_for,
};
use brig_compat::piston::Versions;
use brig_core::{Status, TimeoutKind};
use brig_jail::Stdin;
use common::{fixture, result};
use serde_json::json;

fn parse(path: &str) -> SubmissionRequest {
    serde_json::from_value(fixture(path)).unwrap()
}

#[test]
fn every_documented_field_parses_and_maps_to_the_run() {
    let req = parse("judge0/submission_request.json");
    let p = req.prepare(false, &Judge0Config::default()).unwrap();
    assert_eq!(p.language.id, 50);
    assert_eq!(p.run.language, "c");
    assert!(p.run.source.starts_with(b"#include <stdio.h>"));
    assert!(matches!(&p.run.stdin, Stdin::Bytes(b) if b == b"world"));
    assert_eq!(p.expected_output.as_deref(), Some(&b"hello, world"[..]));
    assert_eq!(p.run.args, ["--verbose", "two words"]);
    let l = &p.run.limits;
    assert_eq!(l.cpu_time_ms, Some(2500), "cpu_time_limit + cpu_extra_time");
    assert_eq!(l.timeout_ms, Some(5000));
    assert_eq!(l.memory_bytes, Some(256_000 * 1024));
    assert_eq!(l.stack_bytes, Some(64_000 * 1024));
    assert_eq!(l.pids, Some(30));
    assert_eq!(l.file_size_bytes, Some(2048 * 1024));
    assert_eq!(l.output_bytes, Some(2048 * 1024));
    assert!(!p.run.network);
    assert_eq!(p.number_of_runs, 3);
    assert_eq!(
        p.callback_url.as_deref(),
        Some("https://example.com/callback")
    );
    assert!(!p.redirect_stderr_to_stdout);
}

#[test]
fn base64_requests_decode_to_the_same_run_and_outputs_encode() {
    let config = Judge0Config::default();
    let plain = parse("judge0/submission_request.json")
        .prepare(false, &config)
        .unwrap();
    let encoded = parse("judge0/submission_request_base64.json")
        .prepare(true, &config)
        .unwrap();
    assert_eq!(encoded.source_code, plain.source_code);
    assert_eq!(encoded.stdin, b"world");
    assert_eq!(encoded.expected_output, plain.expected_output);
    assert_eq!(
        encoded.language.id, 50,
        "a numeric string is an id, as Rails casts it"
    );

    let mut r = result(Status::Ok, Some(0), None);
    r.stdout = "hello, world\n".into();
    r.stderr = "é\n".into();
    let sub = Submission::finished("t", encoded, &r);
    let value = sub.to_value(true);
    assert_eq!(value["stdout"], encode_base64(b"hello, world\n"));
    assert_eq!(value["stderr"], encode_base64("é\n".as_bytes()));
    assert_eq!(
        value["source_code"],
        fixture("judge0/submission_request_base64.json")["source_code"]
    );
    assert_eq!(sub.to_value(false)["stdout"], "hello, world\n");

    let bad = SubmissionRequest {
        source_code: Some("not base64!".into()),
        language_id: Some(71.0),
        ..Default::default()
    };
    let err = bad.prepare(true, &config).unwrap_err();
    assert_eq!(
        err.body(),
        json!({ "source_code": ["is not valid base64"] })
    );
}

#[test]
fn defaults_come_from_the_config() {
    let req = SubmissionRequest {
        source_code: Some("print(1)".into()),
        language_id: Some(71.0),
        ..Default::default()
    };
    let p = req.prepare(false, &Judge0Config::default()).unwrap();
    assert_eq!(p.cpu_time_limit, 5.0);
    assert_eq!(p.cpu_extra_time, 1.0);
    assert_eq!(p.wall_time_limit, 10.0);
    assert_eq!(p.memory_limit, 128_000);
    assert_eq!(p.stack_limit, 64_000);
    assert_eq!(p.max_processes_and_or_threads, 60);
    assert_eq!(p.max_file_size, 1024);
    assert_eq!(p.number_of_runs, 1);
    assert_eq!(p.run.limits.cpu_time_ms, Some(6000));
    assert_eq!(p.run.language, "python");
    assert!(matches!(p.run.stdin, Stdin::Null));
}

#[test]
fn limits_above_max_are_a_422_in_judge0s_shape() {
    let req = SubmissionRequest {
        source_code: Some("x".into()),
        language_id: Some(71.0),
        cpu_time_limit: Some(20.0),
        memory_limit: Some(600_000.0),
        wall_time_limit: Some(0.5),
        ..Default::default()
    };
    let err = req.prepare(false, &Judge0Config::default()).unwrap_err();
    assert_eq!(err.http_status(), 422);
    assert_eq!(err.body(), fixture("judge0/validation_error.json"));

    let req: SubmissionRequest = serde_json::from_value(json!({
        "language_id": 999, "max_processes_and_or_threads": "many", "number_of_runs": 0
    }))
    .unwrap();
    let err = req.prepare(false, &Judge0Config::default()).unwrap_err();
    assert_eq!(
        err.body(),
        json!({
            "source_code": ["can't be blank"],
            "language_id": ["language with id 999 doesn't exist"],
            "max_processes_and_or_threads": ["is not a number"],
            "number_of_runs": ["must be greater than 0"],
        })
    );
    let err = SubmissionRequest::default()
        .prepare(false, &Judge0Config::default())
        .unwrap_err();
    assert_eq!(err.body()["language_id"], json!(["can't be blank"]));
}

#[test]
fn features_brig_lacks_are_refused_with_judge0s_messages() {
    let req = SubmissionRequest {
        source_code: Some("x".into()),
        language_id: Some(54.0),
        compiler_options: Some("-O3".into()),
        additional_files: Some("UEsDBA==".into()),
        ..Default::default()
    };
    let err = req.prepare(false, &Judge0Config::default()).unwrap_err();
    assert_eq!(
        err.body(),
        json!({
            "compiler_options": ["setting compiler options is not allowed"],
            "additional_files": ["setting additional files is not allowed"],
        })
    );
    let config = Judge0Config {
        allow_enable_network: false,
        ..Judge0Config::default()
    };
    let req = SubmissionRequest {
        source_code: Some("x".into()),
        language_id: Some(71.0),
        enable_network: Some(true),
        ..Default::default()
    };
    assert_eq!(
        req.prepare(false, &config).unwrap_err().body(),
        json!({ "enable_network": ["enabling network is not allowed"] })
    );
    let ok = req.prepare(false, &Judge0Config::default()).unwrap();
    assert!(ok.run.network);
}

#[test]
fn every_brig_status_maps_to_its_judge0_status() {
    let id = |r: &brig_core::RunResult| status_for(r, None).id;
    assert_eq!(id(&result(Status::Ok, Some(0), None)), 3);
    let mut to = result(Status::Timeout, None, Some(9));
    to.limit = Some(TimeoutKind::Cpu);
    assert_eq!(id(&to), 5);
    for (signal, expected) in [(11, 7), (25, 8), (8, 9), (6, 10), (9, 12), (15, 12)] {
        assert_eq!(
            id(&result(Status::Killed, None, Some(signal))),
            expected,
            "{signal}"
        );
    }
    assert_eq!(id(&result(Status::RuntimeError, Some(1), None)), 11);
    assert_eq!(id(&result(Status::OutputLimit, None, Some(9))), 8);
    assert_eq!(id(&result(Status::MemoryLimit, None, Some(9))), 12);
    assert_eq!(id(&result(Status::InternalError, None, None)), 13);
    assert_eq!(id(&result(Status::Queued, None, None)), 1);
    assert_eq!(id(&result(Status::Running, None, None)), 2);
    // An interpreted language's parse failure is NZEC in Judge0 (no compile step there).
    assert_eq!(id(&result(Status::CompileError, Some(1), None)), 11);
    let mut ce = result(Status::CompileError, Some(1), None);
    ce.compile = Some(Box::new(result(Status::RuntimeError, Some(1), None)));
    assert_eq!(id(&ce), 6);
    let status = status_for(&ce, None);
    assert_eq!(status.description, "Compilation Error");
}

#[test]
fn expected_output_is_compared_after_judge0s_strip() {
    let mut r = result(Status::Ok, Some(0), None);
    r.stdout = "1 2 \n3\n\n".into();
    assert_eq!(
        status_for(&r, Some("1 2\n3")).id,
        3,
        "trailing whitespace is ignored"
    );
    assert_eq!(status_for(&r, Some("1 2\n3\n")).id, 3);
    assert_eq!(status_for(&r, Some("1 2\n4")).id, 4);
    assert_eq!(
        status_for(&r, Some(" 1 2\n3")).id,
        4,
        "leading whitespace counts"
    );
    assert_eq!(
        status_for(&r, Some("1 2\n\n3")).id,
        4,
        "blank lines inside count"
    );
    assert_eq!(status_for(&r, None).id, 3);
    assert_eq!(status_for(&r, Some("1 2\n4")).description, "Wrong Answer");
}

#[test]
fn a_finished_submission_has_judge0s_fields_and_formats() {
    let p = parse("judge0/submission_request.json")
        .prepare(false, &Judge0Config::default())
        .unwrap();
    let mut r = result(Status::Ok, Some(0), None);
    r.stdout = "hello, world\n".into();
    r.stderr = String::new();
    r.cpu_ms = 1;
    r.memory_peak_bytes = 380 * 1024;
    r.compile = Some(Box::new(result(Status::Ok, Some(0), None)));
    r.compile.as_mut().unwrap().stdout.clear();
    r.compile.as_mut().unwrap().stderr.clear();
    let sub = Submission::finished("2e979232-92fd-4012-97cf-3e9177257d10", p, &r);
    let all = sub.to_value(false);
    let default = select_fields(&all, None).unwrap();
    assert_eq!(
        default,
        fixture("judge0/submission_response_default_fields.json")
    );
    assert_eq!(all["wall_time"], "0.154");
    assert_eq!(all["exit_code"], 0);
    assert_eq!(all["cpu_time_limit"], "2.0");
    assert_eq!(
        all["language"],
        json!({ "id": 50, "name": "C (GCC 9.2.0)" })
    );
    assert_eq!(all["status_id"], 3);
}

#[test]
fn runtime_errors_memory_kills_and_compile_errors_fill_the_right_fields() {
    let p = || {
        SubmissionRequest {
            source_code: Some("x".into()),
            language_id: Some(54.0),
            ..Default::default()
        }
        .prepare(false, &Judge0Config::default())
        .unwrap()
    };
    let seg =
        Submission::finished("t", p(), &result(Status::Killed, None, Some(11))).to_value(false);
    assert_eq!(
        seg["status"],
        json!({ "id": 7, "description": "Runtime Error (SIGSEGV)" })
    );
    assert_eq!(seg["exit_signal"], 11);
    assert_eq!(seg["exit_code"], 0, "Judge0 reads a missing exitcode as 0");
    assert_eq!(seg["message"], "Caught fatal signal 11");

    let oom =
        Submission::finished("t", p(), &result(Status::MemoryLimit, None, Some(9))).to_value(false);
    assert_eq!(oom["status"]["id"], 12);
    assert_eq!(oom["exit_signal"], 9);
    assert!(
        oom["message"]
            .as_str()
            .unwrap()
            .contains("Memory limit exceeded")
    );

    let nzec = Submission::finished("t", p(), &result(Status::RuntimeError, Some(2), None))
        .to_value(false);
    assert_eq!(nzec["status"]["id"], 11);
    assert_eq!(nzec["message"], "Exited with error status 2");

    let mut ce = result(Status::CompileError, Some(1), None);
    let mut compile = result(Status::RuntimeError, Some(1), None);
    compile.stdout.clear();
    compile.stderr = "main.cpp:1:1: error: x\n".into();
    ce.compile = Some(Box::new(compile));
    let ce = Submission::finished("t", p(), &ce).to_value(false);
    assert_eq!(ce["status"]["id"], 6);
    assert_eq!(ce["compile_output"], "main.cpp:1:1: error: x\n");
    for empty in ["stdout", "stderr", "time", "memory", "exit_code", "message"] {
        assert!(ce[empty].is_null(), "{empty}");
    }

    let mut slow_compile = result(Status::CompileError, None, Some(9));
    slow_compile.compile = Some(Box::new(result(Status::Timeout, None, Some(9))));
    let v = Submission::finished("t", p(), &slow_compile).to_value(false);
    assert_eq!(v["compile_output"], "Compilation time limit exceeded.");

    let mut redirected = p();
    redirected.redirect_stderr_to_stdout = true;
    let v =
        Submission::finished("t", redirected, &result(Status::Ok, Some(0), None)).to_value(false);
    assert_eq!(v["stdout"], "out\nerr\n");
    assert!(v["stderr"].is_null());

    let queued = Submission::pending("t", p(), false).to_value(false);
    assert_eq!(
        queued["status"],
        json!({ "id": 1, "description": "In Queue" })
    );
    assert!(queued["stdout"].is_null());
}

#[test]
fn fields_select_default_all_listed_or_refuse_unknown() {
    let p = SubmissionRequest {
        source_code: Some("x".into()),
        language_id: Some(71.0),
        ..Default::default()
    }
    .prepare(false, &Judge0Config::default())
    .unwrap();
    let all = Submission::finished("tok", p, &result(Status::Ok, Some(0), None)).to_value(false);
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&select_fields(&all, Some("")).unwrap()),
        [
            "compile_output",
            "memory",
            "message",
            "status",
            "stderr",
            "stdout",
            "time",
            "token"
        ]
    );
    assert_eq!(select_fields(&all, Some("*")).unwrap(), all);
    assert_eq!(
        select_fields(&all, Some("stdout,exit_code")).unwrap(),
        json!({ "stdout": "out\n", "exit_code": 0 })
    );
    let err = select_fields(&all, Some("stdout,nope,bad")).unwrap_err();
    assert_eq!(
        err,
        Judge0Error::BadRequest("invalid fields: [nope, bad]".into())
    );
    assert_eq!(err.http_status(), 400);
    assert_eq!(
        err.body(),
        json!({ "error": "invalid fields: [nope, bad]" })
    );
}

#[test]
fn older_gcc_ids_of_c_and_cpp_run_brigs_c_and_cpp() {
    // Judge0 CE's `db/languages/active.rb`: 48, 49 are C (GCC 7.4.0, 8.3.0), 52, 53 C++ (GCC
    // 7.4.0, 8.3.0); the official SDK sends 52 for `judge0.CPP`.
    let config = Judge0Config::default();
    for (id, brig) in [
        (48, "c"),
        (49, "c"),
        (50, "c"),
        (52, "cpp"),
        (53, "cpp"),
        (54, "cpp"),
    ] {
        let req: SubmissionRequest =
            serde_json::from_value(json!({"source_code": "int main(){}", "language_id": id}))
                .unwrap();
        let p = req.prepare(false, &config).unwrap();
        assert_eq!((p.language.id, p.run.language.as_str()), (id, brig));
        // The submission echoes the id it was sent, with Judge0's name for it.
        let s = Submission::pending("t", p, false).to_value(false);
        assert_eq!(s["language_id"], id, "{s}");
    }
    assert_eq!(
        judge0::Judge0Language::by_id(52).unwrap().name,
        "C++ (GCC 7.4.0)"
    );
    // Python 2 (70) and the Clang ids (75, 76) are other languages or compilers: refused.
    for id in [70, 75, 76] {
        let req: SubmissionRequest =
            serde_json::from_value(json!({"source_code": "x", "language_id": id})).unwrap();
        let err = req.prepare(false, &config).unwrap_err();
        assert_eq!(
            err.body(),
            json!({"language_id": [format!("language with id {id} doesn't exist")]})
        );
    }
    // `/languages` lists the older ids too (clients check an id against it); `/languages/52`
    // answers.
    let ids: Vec<u64> = judge0::languages::list(None)
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect();
    assert!(ids.contains(&54) && ids.contains(&52) && ids.contains(&53) && ids.contains(&48));
    assert!(!ids.contains(&70), "Python 2 is not Python 3");
    let languages = brig_engine::Languages::load(None).unwrap();
    let versions = Versions::from_printed([("cpp", "g++ (Debian 12.2.0-14) 12.2.0")]);
    let cpp = judge0::languages::detail(52, &languages, Some(&versions)).unwrap();
    assert_eq!(cpp["id"], 52);
    assert_eq!(cpp["source_file"], "main.cpp");
    assert!(
        cpp["compile_cmd"].as_str().unwrap().contains("g++"),
        "{cpp}"
    );
    assert!(judge0::languages::detail(70, &languages, None).is_none());
}

#[test]
fn statuses_languages_about_and_config_info_have_judge0s_shapes() {
    let statuses = judge0::languages::statuses();
    let list = statuses.as_array().unwrap();
    assert_eq!(list.len(), 14);
    assert_eq!(list[0], json!({ "id": 1, "description": "In Queue" }));
    assert_eq!(
        list[6],
        json!({ "id": 7, "description": "Runtime Error (SIGSEGV)" })
    );
    assert_eq!(
        list[13],
        json!({ "id": 14, "description": "Exec Format Error" })
    );

    let all = judge0::languages::list(None);
    let ids: Vec<u64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [46, 48, 49, 50, 52, 53, 54, 62, 63, 71, 73, 85]);
    assert_eq!(all[9], json!({ "id": 71, "name": "Python (3.8.1)" }));
    let versions = Versions::from_printed([("python", "Python 3.11.2")]);
    assert_eq!(
        judge0::languages::list(Some(&versions)),
        json!([{ "id": 71, "name": "Python (3.11.2)" }])
    );
    let languages = brig_engine::Languages::load(None).unwrap();
    let c = judge0::languages::detail(50, &languages, None).unwrap();
    assert_eq!(c["source_file"], "main.c");
    assert!(c["compile_cmd"].as_str().unwrap().contains("gcc"));
    assert_eq!(c["is_archived"], false);
    let py = judge0::languages::detail(71, &languages, None).unwrap();
    assert!(py["compile_cmd"].is_null());
    assert!(py["run_cmd"].as_str().unwrap().ends_with("main.py"));
    assert!(judge0::languages::detail(1, &languages, None).is_none());

    assert_eq!(judge0::about()["version"], "1.13.1");
    let info = judge0::config_info(&Judge0Config::default());
    for (key, value) in [
        ("cpu_time_limit", json!(5.0)),
        ("max_cpu_time_limit", json!(15.0)),
        ("wall_time_limit", json!(10.0)),
        ("memory_limit", json!(128000)),
        ("max_memory_limit", json!(512000)),
        ("stack_limit", json!(64000)),
        ("max_processes_and_or_threads", json!(60)),
        ("max_file_size", json!(1024)),
        ("enable_wait_result", json!(true)),
        ("enable_compiler_options", json!(false)),
        ("number_of_runs", json!(1)),
        ("allow_enable_network", json!(true)),
    ] {
        assert_eq!(info[key], value, "{key}");
    }
    assert_eq!(info.as_object().unwrap().len(), 40);
}
