//! The Piston v2 and Judge0 CE compatible APIs of `brig serve` over HTTP (a real server on an
//! ephemeral port): every route, the verdicts, base64, `?fields=`, batches, delete, the
//! persisted queue across `kill -9` and SIGTERM, `callback_url`, anonymous access and tenant
//! isolation (what touches persistence on every database of `server::databases()`); then the real
//! clients, the official Judge0 Python SDK (PyPI `judge0`) and npm `piston-client`, against a
//! live server. The clients are installed by `.ci/run`; a missing one is a loud skip (a failure
//! under `CI`).

mod common;
mod server;

use base64::Engine as _;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use server::{Db, Options, Server};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A request with `X-Auth-Token` (as Judge0's clients send it), or with no key at all when
/// `key` is empty; the body as JSON text without a content type, as Piston's clients send it.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server.http.request(method, format!("{}{path}", server.url));
    if !key.is_empty() {
        request = request.header("X-Auth-Token", key);
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "text/plain;charset=UTF-8")
            .body(body.to_string());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /submissions?wait=true` → the whole submission (`fields=*`).
async fn judge(server: &Server, key: &str, body: Value) -> Value {
    let (status, s) = call(
        server,
        Method::POST,
        "/submissions?wait=true&fields=*",
        key,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    s
}

/// Polls a token until its status is neither In Queue nor Processing.
async fn wait_done(server: &Server, key: &str, token: &str) -> Value {
    for _ in 0..600 {
        let (status, s) = call(
            server,
            Method::GET,
            &format!("/submissions/{token}?fields=*"),
            key,
            None,
        )
        .await;
        assert_eq!(status, 200, "{s}");
        if !matches!(s["status"]["id"].as_u64(), Some(1 | 2)) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("submission {token} did not finish");
}

fn start(toml: &str) -> Server {
    start_on(Db::Sqlite, toml).expect("SQLite is always there")
}

/// A server on `db` with `toml`; None (after a loud skip) if that database is not reachable.
fn start_on(db: Db, toml: &str) -> Option<Server> {
    Server::start(
        db,
        Options {
            toml: toml.to_string(),
            ..Options::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge0_info_routes() {
    let server = start("");
    let (_, key) = server.tenant("acme", "free").await;
    let (status, about) = call(&server, Method::GET, "/about", &key, None).await;
    assert_eq!(status, 200, "{about}");
    assert!(about["version"].as_str().unwrap().starts_with("1.13"));
    let (status, config) = call(&server, Method::GET, "/config_info", &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(config["enable_wait_result"], true);
    // The free plan (256 MiB, 10 s, 32 processes, no network) lowers Judge0's maxima.
    assert_eq!(config["max_memory_limit"], 256 * 1024);
    assert_eq!(config["max_wall_time_limit"], 10.0);
    assert_eq!(config["max_max_processes_and_or_threads"], 32);
    assert_eq!(config["allow_enable_network"], false);
    let (status, statuses) = call(&server, Method::GET, "/statuses", &key, None).await;
    assert_eq!(status, 200);
    let statuses = statuses.as_array().unwrap();
    assert_eq!(statuses.len(), 14);
    assert_eq!(statuses[2], json!({"id": 3, "description": "Accepted"}));
    assert_eq!(statuses[10]["description"], "Runtime Error (NZEC)");
    let (status, languages) = call(&server, Method::GET, "/languages", &key, None).await;
    assert_eq!(status, 200);
    let python = languages
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == 71)
        .expect("Python is id 71");
    assert!(python["name"].as_str().unwrap().starts_with("Python ("));
    let (status, one) = call(&server, Method::GET, "/languages/71", &key, None).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], 71);
    assert!(
        one["source_file"].as_str().unwrap().ends_with(".py"),
        "{one}"
    );
    // Judge0's older GCC ids of C++ (the SDK's `judge0.CPP` is 52) are listed (clients check an
    // id against the list) and answer under their own id.
    let ids: Vec<&Value> = languages
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["id"])
        .collect();
    assert!(
        ids.contains(&&json!(54)) && ids.contains(&&json!(52)),
        "{languages}"
    );
    let (status, cpp) = call(&server, Method::GET, "/languages/52", &key, None).await;
    assert_eq!(status, 200, "{cpp}");
    assert_eq!(cpp["id"], 52);
    assert!(
        cpp["name"].as_str().unwrap().starts_with("C++ (GCC "),
        "{cpp}"
    );
    let (status, _) = call(&server, Method::GET, "/languages/70", &key, None).await;
    assert_eq!(status, 404, "70 is Python 2, not Brig's Python");
    let (status, missing) = call(&server, Method::GET, "/languages/9999", &key, None).await;
    assert_eq!((status, missing), (404, json!({"error": "Not Found"})));
    // Piston's runtimes.
    let (status, runtimes) = call(&server, Method::GET, "/api/v2/runtimes", &key, None).await;
    assert_eq!(status, 200);
    let python = runtimes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["language"] == "python")
        .expect("python runtime");
    assert!(python["aliases"].as_array().unwrap().contains(&json!("py")));
    // Without a key, and with a wrong one.
    let (status, body) = call(&server, Method::GET, "/about", "", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = call(&server, Method::GET, "/api/v2/runtimes", "nope", None).await;
    assert_eq!(status, 401);
    assert!(body["message"].is_string(), "Piston's shape: {body}");
    // Bearer works as well as X-Auth-Token.
    let (status, _) = server.call(Method::GET, "/statuses", &key, None).await;
    assert_eq!(status, 200);
    // Validation in Judge0's shapes.
    let (status, errors) = call(&server, Method::POST, "/submissions", &key, Some(json!({}))).await;
    assert_eq!(status, 422);
    assert_eq!(errors["source_code"], json!(["can't be blank"]));
    assert_eq!(errors["language_id"], json!(["can't be blank"]));
    let (status, errors) = call(
        &server,
        Method::POST,
        "/submissions",
        &key,
        Some(json!({"source_code": "print(1)", "language_id": 71, "memory_limit": 300000})),
    )
    .await;
    assert_eq!(status, 422, "{errors}");
    assert_eq!(
        errors,
        json!({"memory_limit": ["must be less than or equal to 262144"]})
    );
    let (status, errors) = call(
        &server,
        Method::POST,
        "/submissions",
        &key,
        Some(json!({"source_code": "x", "language_id": 999})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        errors["language_id"],
        json!(["language with id 999 doesn't exist"])
    );
    let (status, _) = call(
        &server,
        Method::GET,
        "/submissions/0123456789abcdef0123456789abcdef",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 404);
    // Piston: an unknown runtime and a limit above the plan, in Piston's shape.
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v2/execute",
        &key,
        Some(json!({"language": "cobol", "version": "*", "files": [{"content": "x"}]})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"message": "cobol-* runtime is unknown"}));
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v2/execute",
        &key,
        Some(
            json!({"language": "python", "version": "*", "files": [{"content": "1"}],
                    "run_timeout": 60000}),
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "run_timeout cannot exceed the configured limit of 10000"
    );
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v2/execute",
        &key,
        Some(json!({"version": "*"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, json!({"message": "language is required as a string"}))
    );
    // The compat routes stay out of Brig's own OpenAPI document.
    let (_, doc) = server
        .call(Method::GET, "/api/v1/openapi.json", "", None)
        .await;
    assert!(doc["paths"]["/submissions"].is_null());
    assert!(doc["paths"]["/api/v2/execute"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge0_verdicts() {
    if no_sandbox() {
        return;
    }
    for db in server::databases() {
        eprintln!("== {db:?}");
        if let Some(server) = start_on(db, "") {
            verdicts(server).await;
        }
    }
}

async fn verdicts(server: Server) {
    let (_, key) = server.tenant("acme", "standard").await;
    let py = |code: &str| json!({"language_id": 71, "source_code": code});
    let c = |code: &str| json!({"language_id": 50, "source_code": code});

    // Accepted: Judge0's comparison ignores trailing whitespace.
    let mut body = py("print(input()[::-1])");
    body["stdin"] = json!("abc\n");
    body["expected_output"] = json!("cba  \n\n");
    let s = judge(&server, &key, body.clone()).await;
    assert_eq!(
        s["status"],
        json!({"id": 3, "description": "Accepted"}),
        "{s}"
    );
    assert_eq!(s["stdout"], "cba\n");
    assert_eq!(s["exit_code"], 0);
    assert!(s["time"].as_str().unwrap().parse::<f64>().is_ok(), "{s}");
    assert!(s["wall_time"].as_str().is_some(), "{s}");
    assert!(s["memory"].as_u64().unwrap() > 0, "memory in KB: {s}");
    assert_eq!(s["language"]["id"], 71);
    assert!(s["created_at"].as_str().unwrap().ends_with('Z'));
    // Wrong Answer.
    body["expected_output"] = json!("abc");
    let s = judge(&server, &key, body).await;
    assert_eq!(s["status"]["id"], 4, "{s}");
    // Time Limit Exceeded.
    let mut body = py("while True:\n    pass");
    body["cpu_time_limit"] = json!(1);
    body["cpu_extra_time"] = json!(0.5);
    body["wall_time_limit"] = json!(5);
    let s = judge(&server, &key, body).await;
    assert_eq!(
        s["status"],
        json!({"id": 5, "description": "Time Limit Exceeded"}),
        "{s}"
    );
    // Compilation Error (C).
    let s = judge(&server, &key, c("int main( { return 0; }")).await;
    assert_eq!(s["status"]["id"], 6, "{s}");
    assert!(
        s["compile_output"].as_str().unwrap().contains("error"),
        "{s}"
    );
    assert!(s["stdout"].is_null() && s["exit_code"].is_null(), "{s}");
    // Runtime Error (NZEC).
    let s = judge(&server, &key, py("import sys\nprint('x')\nsys.exit(3)")).await;
    assert_eq!(
        s["status"],
        json!({"id": 11, "description": "Runtime Error (NZEC)"}),
        "{s}"
    );
    assert_eq!(
        (s["exit_code"].as_i64(), s["stdout"].as_str()),
        (Some(3), Some("x\n"))
    );
    // SIGSEGV: a C null dereference.
    let s = judge(
        &server,
        &key,
        c("int main(void) { volatile int *p = 0; return *p; }"),
    )
    .await;
    assert_eq!(
        s["status"],
        json!({"id": 7, "description": "Runtime Error (SIGSEGV)"}),
        "{s}"
    );
    assert_eq!(s["exit_signal"], 11);
    // A memory-limit kill: Runtime Error (Other), SIGKILL, a message naming the limit.
    let mut body = py("a = []\nwhile True:\n    a.append(bytearray(8 << 20))");
    body["memory_limit"] = json!(65536);
    let s = judge(&server, &key, body).await;
    assert_eq!(s["status"]["id"], 12, "{s}");
    assert_eq!(s["exit_signal"], 9, "{s}");
    assert!(
        s["message"].as_str().unwrap().contains("Memory limit"),
        "{s}"
    );
    // number_of_runs: run three times, the verdict of the last, the largest time and memory.
    let mut body = py("print(1)");
    body["number_of_runs"] = json!(3);
    let s = judge(&server, &key, body).await;
    assert_eq!(
        (s["status"]["id"].as_u64(), s["number_of_runs"].as_u64()),
        (Some(3), Some(3))
    );
    // Arguments, split like a shell after Judge0's filter.
    let mut body = py("import sys\nprint(sys.argv[1:])");
    body["command_line_arguments"] = json!("a 'b c'; d");
    let s = judge(&server, &key, body).await;
    assert_eq!(s["stdout"], "['a', 'b c', 'd']\n", "{s}");
    // Judge0's older GCC ids run Brig's C and C++, and the submission keeps the id it was sent.
    for (id, source) in [
        (
            52,
            "#include <iostream>\nint main() { std::cout << 6 * 7 << std::endl; }",
        ),
        (
            48,
            "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 6 * 7); }",
        ),
    ] {
        let s = judge(
            &server,
            &key,
            json!({"language_id": id, "source_code": source, "expected_output": "42"}),
        )
        .await;
        assert_eq!(s["status"]["id"], 3, "{s}");
        assert_eq!(
            (s["language_id"].as_u64(), s["language"]["id"].as_u64()),
            (Some(id), Some(id))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge0_base64_fields_batch_and_delete() {
    if no_sandbox() {
        return;
    }
    for db in server::databases() {
        eprintln!("== {db:?}");
        if let Some(server) = start_on(db, "") {
            base64_fields_batch_and_delete(server).await;
        }
    }
}

async fn base64_fields_batch_and_delete(server: Server) {
    let (_, key) = server.tenant("acme", "standard").await;
    // base64 both ways, with non-ASCII text.
    let (status, s) = call(
        &server,
        Method::POST,
        "/submissions?base64_encoded=true&wait=true",
        &key,
        Some(json!({
            "language_id": 71,
            "source_code": B64.encode("import sys\ns = sys.stdin.read()\nprint(s.upper())\nprint('é', file=sys.stderr)"),
            "stdin": B64.encode("héllo"),
        })),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let decode = |v: &Value| String::from_utf8(B64.decode(v.as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(decode(&s["stdout"]), "HÉLLO\n");
    assert_eq!(decode(&s["stderr"]), "é\n");
    let token = s["token"].as_str().unwrap().to_string();
    // The default fields, then a chosen few, then a wrong one.
    let mut keys: Vec<String> = s.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
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
    let (status, s) = call(
        &server,
        Method::GET,
        &format!("/submissions/{token}?fields=stdout,exit_code,source_code"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(s.as_object().unwrap().len(), 3, "{s}");
    assert_eq!(s["stdout"], "HÉLLO\n");
    assert!(s["source_code"].as_str().unwrap().starts_with("import sys"));
    let (status, s) = call(
        &server,
        Method::GET,
        &format!("/submissions/{token}?fields=stdout,bogus"),
        &key,
        None,
    )
    .await;
    assert_eq!(
        (status, s),
        (400, json!({"error": "invalid fields: [bogus]"}))
    );

    // A batch: two valid, one not; answered in order.
    let (status, created) = call(
        &server,
        Method::POST,
        "/submissions/batch",
        &key,
        Some(json!({"submissions": [
            {"language_id": 71, "source_code": "print(6*7)", "expected_output": "42"},
            {"language_id": 71},
            {"language_id": 46, "source_code": "echo $((1+1))"},
        ]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 3);
    assert_eq!(created[1], json!({"source_code": ["can't be blank"]}));
    let (a, b) = (
        created[0]["token"].as_str().unwrap(),
        created[2]["token"].as_str().unwrap(),
    );
    for token in [a, b] {
        wait_done(&server, &key, token).await;
    }
    let (status, batch) = call(
        &server,
        Method::GET,
        &format!("/submissions/batch?tokens={a},{b},0123456789abcdef0123456789abcdef&fields=token,status,stdout"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    let list = batch["submissions"].as_array().unwrap();
    assert_eq!(list[0]["status"]["id"], 3, "{batch}");
    assert_eq!(list[1]["stdout"], "2\n");
    assert_eq!(list[2], Value::Null);

    // Delete: the submission's fields, then it is gone.
    let (status, gone) = call(
        &server,
        Method::DELETE,
        &format!("/submissions/{a}?fields=token,stdout"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(gone, json!({"token": a, "stdout": "42\n"}));
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("/submissions/{a}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("/submissions/{a}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piston_execute() {
    if no_sandbox() {
        return;
    }
    let server = start("");
    let (_, key) = server.tenant("acme", "standard").await;
    let execute = |body: Value| call(&server, Method::POST, "/api/v2/execute", &key, Some(body));
    let (status, r) = execute(json!({
        "language": "py", "version": "3.x",
        "files": [{"name": "main.py", "content": "import sys, helper\nprint(helper.X, sys.argv[1:], input())"},
                  {"name": "helper.py", "content": B64.encode("X = 7\n"), "encoding": "base64"}],
        "stdin": "in", "args": ["1", "2"],
        "run_timeout": 3000, "compile_memory_limit": -1, "run_memory_limit": -1,
    }))
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["language"], "python");
    assert_eq!(r["run"]["stdout"], "7 ['1', '2'] in\n", "{r}");
    assert_eq!(
        (r["run"]["code"].as_i64(), r["run"]["status"].clone()),
        (Some(0), Value::Null)
    );
    // A compile stage's own limit applies to the compile step.
    let (status, r) = execute(
        json!({"language": "c", "version": "*", "compile_timeout": 1,
                                      "files": [{"content": "int main(void) { return 0; }"}]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["compile"]["status"], "TO", "{r}");
    let (_, r) = execute(json!({"language": "python", "version": "*",
                                 "files": [{"content": "import sys; sys.exit(4)"}]}))
    .await;
    assert_eq!(
        (r["run"]["status"].as_str(), r["run"]["code"].as_i64()),
        (Some("RE"), Some(4)),
        "{r}"
    );
    let (_, r) = execute(json!({"language": "c", "version": "*",
                                 "files": [{"content": "int main(void) { volatile int *p = 0; return *p; }"}]}))
    .await;
    assert_eq!(r["compile"]["code"], 0, "{r}");
    assert_eq!(
        (r["run"]["status"].as_str(), r["run"]["signal"].as_str()),
        (Some("SG"), Some("SIGSEGV")),
        "{r}"
    );
    let (_, r) =
        execute(json!({"language": "c", "version": "*", "files": [{"content": "int main( {"}]}))
            .await;
    assert_ne!(r["compile"]["code"], 0, "{r}");
    assert_eq!(
        r["run"], r["compile"],
        "a failed compile is repeated as run: {r}"
    );
    let (_, r) = execute(
        json!({"language": "python", "version": "*", "run_timeout": 500,
                                 "files": [{"content": "import time; time.sleep(5)"}]}),
    )
    .await;
    assert_eq!(
        (r["run"]["status"].as_str(), r["run"]["signal"].as_str()),
        (Some("TO"), Some("SIGKILL")),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_submission_survives_kill_9() {
    if no_sandbox() {
        return;
    }
    for db in server::databases() {
        eprintln!("== {db:?}");
        // One running slot: the second submission waits in the database, not in memory.
        if let Some(server) = start_on(db, "max_running_executions = 1\n") {
            survives_kill_9(server).await;
        }
    }
}

/// Polls a token until its status is `id` (Processing: a queue worker is running it).
async fn wait_status(server: &Server, key: &str, token: &str, id: u64) {
    for _ in 0..200 {
        let (_, s) = call(
            server,
            Method::GET,
            &format!("/submissions/{token}"),
            key,
            None,
        )
        .await;
        if s["status"]["id"] == id {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("submission {token} never reached status {id}");
}

async fn survives_kill_9(server: Server) {
    let (_, key) = server.tenant("acme", "standard").await;
    let submit = |code: &str| {
        call(
            &server,
            Method::POST,
            "/submissions",
            &key,
            Some(json!({"language_id": 71, "source_code": code, "wall_time_limit": 20})),
        )
    };
    let (status, long) = submit("import time\ntime.sleep(60)").await;
    assert_eq!(status, 201, "{long}");
    let long = long["token"].as_str().unwrap().to_string();
    for _ in 0..100 {
        let (_, s) = call(
            &server,
            Method::GET,
            &format!("/submissions/{long}"),
            &key,
            None,
        )
        .await;
        if s["status"]["id"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, queued) = submit("print('after the restart')").await;
    let queued = queued["token"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, s) = call(
        &server,
        Method::GET,
        &format!("/submissions/{queued}"),
        &key,
        None,
    )
    .await;
    assert_eq!(
        s["status"],
        json!({"id": 1, "description": "In Queue"}),
        "{s}"
    );
    let (_, s) = call(
        &server,
        Method::GET,
        &format!("/submissions/{long}"),
        &key,
        None,
    )
    .await;
    assert_eq!(
        s["status"],
        json!({"id": 2, "description": "Processing"}),
        "{s}"
    );
    // A pending submission cannot be deleted.
    let (status, body) = call(
        &server,
        Method::DELETE,
        &format!("/submissions/{queued}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let server = server.kill_and_restart();
    let s = wait_done(&server, &key, &queued).await;
    assert_eq!(s["status"]["id"], 3, "{s}");
    assert_eq!(s["stdout"], "after the restart\n");
    let s = wait_done(&server, &key, &long).await;
    assert_eq!(
        s["status"]["id"], 13,
        "what was running is an Internal Error: {s}"
    );
    assert!(
        s["message"].as_str().unwrap().contains("server restarted"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_queued_submission_finish() {
    if no_sandbox() {
        return;
    }
    for db in server::databases() {
        eprintln!("== {db:?}");
        if let Some(server) = start_on(db, "") {
            sigterm_during_a_queued_run(server).await;
        }
        if let Some(server) = start_on(db, "shutdown_grace_ms = 300\n") {
            sigterm_past_the_grace_period(server).await;
        }
    }
}

/// A queued run still going at the end of the grace period is recorded cancelled (Judge0's
/// Internal Error, naming the shutdown), not left `running` for recovery to fail.
async fn sigterm_past_the_grace_period(mut server: Server) {
    let (_, key) = server.tenant("acme", "standard").await;
    let (status, created) = call(
        &server,
        Method::POST,
        "/submissions",
        &key,
        Some(json!({"language_id": 71, "source_code": "import time\ntime.sleep(3)"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    running_in_its_sandbox(&server, &key, &token).await;
    let exit = server.terminate();
    assert!(exit.success(), "brig serve exited with {exit}");
    let server = server.restart();
    let s = submission(&server, &key, &token).await;
    assert_eq!(s["status"]["id"], 13, "{s}");
    assert!(s["message"].as_str().unwrap().contains("shut down"), "{s}");
}

/// A `wait=false` submission running when SIGTERM arrives finishes within the grace period,
/// its result recorded; the server exits cleanly and, restarted on the same data, shows it
/// Accepted with its output (not the Internal Error of a run cut short).
async fn sigterm_during_a_queued_run(mut server: Server) {
    let (_, key) = server.tenant("acme", "standard").await;
    let (status, created) = call(
        &server,
        Method::POST,
        "/submissions",
        &key,
        Some(json!({"language_id": 71,
                    "source_code": "import time\ntime.sleep(1)\nprint('finished')"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    running_in_its_sandbox(&server, &key, &token).await;
    let exit = server.terminate();
    assert!(exit.success(), "brig serve exited with {exit}");
    let server = server.restart();
    // Finished before the exit: at once after the restart (a run put back in the queue
    // instead would still be queued or running now).
    let s = submission(&server, &key, &token).await;
    assert_eq!(
        s["status"],
        json!({"id": 3, "description": "Accepted"}),
        "{s}"
    );
    assert_eq!(s["stdout"], "finished\n");
}

/// Waits until a queue worker runs `token` (Processing, which a claim shows at once), then a
/// moment more so that its program is running in the sandbox, not still being admitted.
async fn running_in_its_sandbox(server: &Server, key: &str, token: &str) {
    wait_status(server, key, token, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// `GET /submissions/{token}?fields=*`.
async fn submission(server: &Server, key: &str, token: &str) -> Value {
    let (status, s) = call(
        server,
        Method::GET,
        &format!("/submissions/{token}?fields=*"),
        key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{s}");
    s
}

/// One HTTP request a tiny listener received: (method, path, body).
type Received = (String, String, Value);

/// A plain-HTTP listener on an ephemeral port that answers `200` to every request and sends
/// what it got down the channel.
async fn callback_listener() -> (String, tokio::sync::mpsc::Receiver<Received>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut bytes = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            let request = loop {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                bytes.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let Some(end) = text.find("\r\n\r\n") else {
                    continue;
                };
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if bytes.len() >= end + 4 + length {
                    break Some((text, end, length));
                }
            };
            let Some((text, end, length)) = request else {
                continue;
            };
            let mut words = text.split_whitespace();
            let method = words.next().unwrap_or("").to_string();
            let path = words.next().unwrap_or("").to_string();
            let body = &bytes[end + 4..end + 4 + length];
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
            let _ = tx
                .send((
                    method,
                    path,
                    serde_json::from_slice(body).unwrap_or(Value::Null),
                ))
                .await;
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_url_gets_the_finished_submission() {
    if no_sandbox() {
        return;
    }
    for db in server::databases() {
        eprintln!("== {db:?}");
        if let Some(server) = start_on(db, "") {
            callbacks(server).await;
        }
    }
}

/// Judge0 `PUT`s a finished submission to its `callback_url`: its default fields, base64, for
/// a queued (`wait=false`) submission run by the worker and for a `wait=true` one.
async fn callbacks(server: Server) {
    let (_, key) = server.tenant("acme", "standard").await;
    let (url, mut received) = callback_listener().await;
    for (wait, stdout, status_id) in [(false, "queued", 3), (true, "waited", 11)] {
        let code = format!(
            "import sys\nprint('{stdout}')\nsys.exit({})",
            u8::from(wait) * 2
        );
        let (status, created) = call(
            &server,
            Method::POST,
            &format!("/submissions?wait={wait}"),
            &key,
            Some(json!({"language_id": 71, "source_code": code,
                        "callback_url": format!("{url}/done/{stdout}")})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let token = created["token"].as_str().unwrap();
        let (method, path, body) = tokio::time::timeout(Duration::from_secs(60), received.recv())
            .await
            .expect("the callback within a minute")
            .expect("the listener is running");
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("PUT", &*format!("/done/{stdout}"))
        );
        assert_eq!(body["token"], token, "{body}");
        assert_eq!(body["status"]["id"], status_id, "{body}");
        assert_eq!(
            B64.decode(body["stdout"].as_str().unwrap()).unwrap(),
            format!("{stdout}\n").as_bytes(),
            "stdout is base64 in a callback: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_access_and_tenant_isolation() {
    // Anonymous access needs both the config and the tenant's switch.
    let server = start("compat_anonymous_tenant = \"public\"\n");
    let (_, key) = server.tenant("acme", "standard").await;
    let (status, _) = call(&server, Method::GET, "/about", "", None).await;
    assert_eq!(status, 401, "no tenant `public` yet");
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/tenants",
            server::ADMIN_KEY,
            Some(json!({"name": "public", "plan": "free"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = call(&server, Method::GET, "/about", "", None).await;
    assert_eq!(
        status, 401,
        "`public` exists but its anonymous_compat is off"
    );
    let server2 = start("compat_anonymous_tenant = \"open\"\n");
    let (status, _) = server2
        .call(
            Method::POST,
            "/api/v1/tenants",
            server::ADMIN_KEY,
            Some(json!({"name": "open", "plan": "free", "anonymous_compat": true})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = call(&server2, Method::GET, "/about", "", None).await;
    assert_eq!(status, 200, "anonymous on");
    let (status, config) = call(&server2, Method::GET, "/config_info", "", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        config["max_memory_limit"],
        256 * 1024,
        "the anonymous tenant's plan"
    );
    let (status, _) = call(&server2, Method::GET, "/api/v2/runtimes", "", None).await;
    assert_eq!(status, 200);
    // A wrong key is still refused: anonymous is for requests without one.
    let (status, _) = call(&server2, Method::GET, "/about", "brig_wrong", None).await;
    assert_eq!(status, 401);
    // And without the config the tenant's switch alone does nothing.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/tenants",
            server::ADMIN_KEY,
            Some(json!({"name": "open", "plan": "free", "anonymous_compat": true})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = call(&server, Method::GET, "/about", "", None).await;
    assert_eq!(status, 401);

    // Isolation: another tenant's token is 404 everywhere, and a native execution is not a
    // Judge0 submission.
    let (_, other) = server.tenant("other", "standard").await;
    let (status, created) = call(
        &server,
        Method::POST,
        "/submissions",
        &key,
        Some(json!({"language_id": 71, "source_code": "print(1)"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap();
    let path = format!("/submissions/{token}");
    let (status, _) = call(&server, Method::GET, &path, &other, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&server, Method::DELETE, &path, &other, None).await;
    assert_eq!(status, 404);
    let (status, batch) = call(
        &server,
        Method::GET,
        &format!("/submissions/batch?tokens={token}"),
        &other,
        None,
    )
    .await;
    assert_eq!((status, batch), (200, json!({"submissions": [null]})));
    let (status, _) = call(&server, Method::GET, &path, &key, None).await;
    assert_eq!(status, 200);
    // The anonymous tenant of the other server sees nothing of this one, naturally; and on
    // this server the Judge0 token is a Brig execution of the owner only.
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v1/executions/{token}"),
            &other,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// The directory of the npm client (`package.json` committed, `node_modules` installed by
/// `.ci/run`).
fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat_clients")
}

const PYTHON: &str = "/usr/bin/python3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_judge0_python_sdk() {
    let has_sdk = Command::new(PYTHON)
        .args(["-c", "import judge0"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        skip(
            "the Judge0 Python SDK is not installed (/usr/bin/python3 -m pip install --break-system-packages judge0)",
        );
        return;
    }
    if no_sandbox() {
        return;
    }
    let server = start("");
    let (_, key) = server.tenant("acme", "standard").await;
    let script = r#"
import json, os, sys
import judge0
from judge0 import Status, Submission

client = judge0.Client(os.environ["BRIG_URL"], headers={"X-Auth-Token": os.environ["BRIG_KEY"]})
assert client.version.startswith("1.13"), client.version
assert client.config.max_memory_limit > 0
assert client.is_language_supported(judge0.PYTHON)
assert client.is_language_supported(judge0.C)
assert client.is_language_supported(judge0.CPP)

# C++ through the SDK's own constant (id 52, an older GCC id Brig runs with its g++).
r = judge0.run(client=client, source_code='#include <cstdio>\nint main(){std::puts("cpp");}', language=judge0.CPP)
assert r.status == Status.ACCEPTED, r
assert r.stdout == "cpp\n", r.stdout

# One submission, waited on by the SDK (create with wait=false, then poll).
r = judge0.run(client=client, source_code="print(input() * 2)", stdin="ab", language=judge0.PYTHON)
assert r.status == Status.ACCEPTED, r
assert r.stdout == "abab\n", r.stdout

# Several at once (the batch routes), with test cases and a compile error.
subs = judge0.run(
    client=client,
    submissions=[
        Submission(source_code="print(int(input()) + 1)", language=judge0.PYTHON, stdin="1", expected_output="2"),
        Submission(source_code="print(int(input()) + 1)", language=judge0.PYTHON, stdin="1", expected_output="3"),
        Submission(source_code="int main( {", language=judge0.C),
        Submission(source_code="import sys; sys.exit(2)", language=judge0.PYTHON),
    ],
)
got = [s.status for s in subs]
assert got == [Status.ACCEPTED, Status.WRONG_ANSWER, Status.COMPILATION_ERROR, Status.RUNTIME_ERROR_NZEC], got
assert subs[2].compile_output, subs[2]
assert subs[3].exit_code == 2, subs[3]
assert subs[0].time is not None and subs[0].memory is not None
print(json.dumps({"ok": True}))
"#;
    let out = tokio::task::spawn_blocking({
        let url = server.url.clone();
        move || {
            Command::new(PYTHON)
                .args(["-c", script])
                .env("BRIG_URL", url)
                .env("BRIG_KEY", key)
                .env("JUDGE0_SUPPRESS_PREVIEW_WARNING", "1")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(r#""ok": true"#),
        "the Judge0 SDK against Brig failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_piston_client() {
    let module = clients_dir().join("node_modules/piston-client/index.js");
    if !module.exists() {
        skip(
            "npm piston-client is not installed (npm ci --prefix crates/brig/tests/compat_clients)",
        );
        return;
    }
    if no_sandbox() {
        return;
    }
    // piston-client sends no key: serve it through the anonymous tenant.
    let server = start("compat_anonymous_tenant = \"public\"\n");
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/tenants",
            server::ADMIN_KEY,
            Some(json!({"name": "public", "plan": "standard", "anonymous_compat": true})),
        )
        .await;
    assert_eq!(status, 201);
    let script = r#"
import piston from "piston-client";
const client = piston({ server: process.env.BRIG_URL });
const runtimes = await client.runtimes();
if (!Array.isArray(runtimes) || !runtimes.some(r => r.language === "python")) {
  throw new Error("runtimes: " + JSON.stringify(runtimes));
}
const ok = await client.execute("python", "import sys\nprint(sys.argv[1:], input())", { stdin: "hi" });
if (ok.run?.stdout !== "['1', '2', '3'] hi\n" || ok.run.code !== 0) {
  throw new Error("execute: " + JSON.stringify(ok));
}
const c = await client.execute({ language: "c", files: [{ name: "main.c", content: "int main(void){return 5;}" }] });
if (c.run?.code !== 5 || c.run.status !== "RE" || c.compile?.code !== 0) {
  throw new Error("c: " + JSON.stringify(c));
}
const bad = await client.execute("python", "1", { version: "9.9.9" });
if (bad.message !== "python-9.9.9 runtime is unknown") {
  throw new Error("unknown version: " + JSON.stringify(bad));
}
console.log(JSON.stringify({ ok: true }));
"#;
    let dir = clients_dir();
    let out = tokio::task::spawn_blocking({
        let url = server.url.clone();
        move || {
            Command::new("node")
                .args(["--input-type=module", "-e", script])
                .current_dir(dir)
                .env("BRIG_URL", url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(r#"{"ok":true}"#),
        "piston-client against Brig failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
