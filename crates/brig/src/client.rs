//! The CLI client of a `brig serve`: `brig exec --server URL FILE` (a one-shot run, output and
//! exit code like `brig run`) and `brig session create|exec|upload|download|ls|rm`. The key
//! comes from `--api-key` or `BRIG_API_KEY`; the server from `--server` or `BRIG_SERVER`.

use anyhow::{Context, Result, bail};
use brig_core::RunResult;
use brig_core::size::parse_millis;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Where the server is and who is calling.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The server's URL, e.g. http://127.0.0.1:7070.
    #[arg(long, env = "BRIG_SERVER")]
    server: String,
    /// The API key (default: BRIG_API_KEY).
    #[arg(long, env = "BRIG_API_KEY", hide_env_values = true)]
    api_key: String,
}

/// `brig exec` flags.
#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Language id or alias (default: from the file's extension).
    #[arg(long = "lang", short = 'l')]
    lang: Option<String>,
    #[command(flatten)]
    limits: crate::cli_run::LimitFlags,
    /// Tier: namespace, process, wasm or auto.
    #[arg(long)]
    tier: Option<String>,
    /// The program's stdin from this file.
    #[arg(long)]
    stdin: Option<PathBuf>,
    /// Print the result object as JSON.
    #[arg(long)]
    json: bool,
    /// The program, or - for standard input.
    file: PathBuf,
    /// Arguments for the program.
    #[arg(last = true)]
    args: Vec<String>,
}

/// `brig session` flags.
#[derive(Args, Debug)]
pub struct SessionArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: SessionCommand,
}

#[derive(Subcommand, Debug)]
enum SessionCommand {
    /// Create a session; prints its id.
    Create {
        /// Template: python, python-minimal, bash.
        #[arg(long)]
        template: Option<String>,
        /// Language, when no template is named.
        #[arg(long = "lang")]
        lang: Option<String>,
        /// Time to live, e.g. 1h.
        #[arg(long, value_parser = parse_millis)]
        ttl: Option<u64>,
        /// Idle timeout, e.g. 10m.
        #[arg(long = "idle-timeout", value_parser = parse_millis)]
        idle_timeout: Option<u64>,
        /// Print the session as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run code (a file, or - for stdin) in a session.
    Exec {
        /// The session.
        id: String,
        /// Language (default: the session's).
        #[arg(long = "lang")]
        lang: Option<String>,
        /// Wall-clock limit.
        #[arg(long, value_parser = parse_millis)]
        timeout: Option<u64>,
        /// Print the result object as JSON.
        #[arg(long)]
        json: bool,
        /// The code.
        file: PathBuf,
    },
    /// Copy a local file into the session's work dir.
    Upload {
        /// The session.
        id: String,
        /// The local file.
        local: PathBuf,
        /// Its path in the work dir (default: the file's name).
        remote: Option<String>,
    },
    /// Copy a file out of the session's work dir (to stdout with `-`).
    Download {
        /// The session.
        id: String,
        /// Its path in the work dir.
        remote: String,
        /// The local file (default: the remote file's name).
        local: Option<PathBuf>,
    },
    /// List a directory of the work dir.
    Ls {
        /// The session.
        id: String,
        /// The directory (default: the work dir).
        #[arg(default_value = "")]
        path: String,
    },
    /// Delete the session.
    Rm {
        /// The session.
        id: String,
    },
}

/// A blocking client of one server.
struct Client {
    base: String,
    key: String,
    http: reqwest::blocking::Client,
}

impl Client {
    fn new(args: &ServerArgs) -> Result<Client> {
        Ok(Client {
            base: args.server.trim_end_matches('/').to_string(),
            key: args.api_key.clone(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(3600))
                .build()
                .context("cannot build the HTTP client")?,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    /// Sends; a non-2xx answer becomes an error carrying the server's message.
    fn send(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response> {
        let response = request
            .send()
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().unwrap_or(Value::Null);
        let message = body["error"]["message"]
            .as_str()
            .map_or_else(|| status.to_string(), str::to_string);
        bail!("the server answered {}: {message}", status.as_u16())
    }

    fn json(&self, method: reqwest::Method, path: &str, body: &Value) -> Result<Value> {
        self.send(self.request(method, path).json(body))?
            .json()
            .context("the server's answer is not JSON")
    }
}

fn read_source(file: &Path) -> Result<String> {
    if file == Path::new("-") {
        let mut code = String::new();
        std::io::stdin()
            .read_to_string(&mut code)
            .context("reading the program from stdin")?;
        return Ok(code);
    }
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Prints a result like `brig run` does and returns its exit code.
fn finish(result: &Value, json: bool) -> Result<ExitCode> {
    let parsed: RunResult = serde_json::from_value(result.clone())
        .with_context(|| format!("unexpected result object: {result}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(result)?);
        return Ok(ExitCode::from(parsed.cli_exit_code().clamp(0, 255) as u8));
    }
    let _ = std::io::stdout().lock().write_all(parsed.stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(parsed.stderr.as_bytes());
    // A cell's value and exception, the way a notebook shows them.
    if let Some(text) = result["result"]["text/plain"].as_str() {
        println!("{text}");
    }
    if let Some(traceback) = result["error"]["traceback"].as_array() {
        for line in traceback.iter().filter_map(Value::as_str) {
            eprintln!("{}", line.trim_end());
        }
    }
    Ok(crate::cli_run::finish_result(false, &parsed, false))
}

/// Runs `brig exec`.
pub fn exec(args: ExecArgs) -> Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let code = read_source(&args.file)?;
    let language = match &args.lang {
        Some(lang) => lang.clone(),
        None => brig_engine::Languages::load(None)?
            .for_file(&args.file)
            .map(|l| l.language.id)
            .with_context(|| {
                format!(
                    "cannot tell the language of {} from its extension: use --lang",
                    args.file.display()
                )
            })?,
    };
    let stdin = match &args.stdin {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("--stdin {}", path.display()))?,
        ),
        None => None,
    };
    // The same field names as the API's `limits` (the flags set only those); unset ones are
    // left out.
    let limits = serde_json::to_value(args.limits.overrides())?;
    let limits: serde_json::Map<String, Value> = limits
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let mut body = json!({"language": language, "code": code, "args": args.args, "limits": limits});
    if let Some(stdin) = stdin {
        body["stdin"] = json!(stdin);
    }
    if let Some(tier) = &args.tier {
        body["tier"] = json!(tier);
    }
    let result = client.json(reqwest::Method::POST, "/api/v1/execute", &body)?;
    finish(&result, args.json)
}

/// Runs `brig session ...`.
pub fn session(args: SessionArgs) -> Result<ExitCode> {
    let client = Client::new(&args.server)?;
    match args.command {
        SessionCommand::Create {
            template,
            lang,
            ttl,
            idle_timeout,
            json,
        } => {
            let mut body = json!({});
            if let Some(t) = template {
                body["template"] = json!(t);
            }
            if let Some(l) = lang {
                body["language"] = json!(l);
            }
            if let Some(ttl) = ttl {
                body["ttl_s"] = json!(ttl.div_ceil(1000));
            }
            if let Some(idle) = idle_timeout {
                body["idle_timeout_s"] = json!(idle.div_ceil(1000));
            }
            let session = client.json(reqwest::Method::POST, "/api/v1/sessions", &body)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&session)?);
            } else {
                println!("{}", session["id"].as_str().unwrap_or_default());
            }
        }
        SessionCommand::Exec {
            id,
            lang,
            timeout,
            json,
            file,
        } => {
            let mut body = json!({"code": read_source(&file)?});
            if let Some(l) = lang {
                body["language"] = json!(l);
            }
            if let Some(t) = timeout {
                body["timeout_ms"] = json!(t);
            }
            let result = client.json(
                reqwest::Method::POST,
                &format!("/api/v1/sessions/{id}/execute"),
                &body,
            )?;
            return finish(&result, json);
        }
        SessionCommand::Upload { id, local, remote } => {
            let bytes = std::fs::read(&local)
                .with_context(|| format!("cannot read {}", local.display()))?;
            let remote = match remote {
                Some(r) => r,
                None => local
                    .file_name()
                    .context("the local path has no file name: name the remote path")?
                    .to_string_lossy()
                    .into_owned(),
            };
            client.send(
                client
                    .request(
                        reqwest::Method::PUT,
                        &format!("/api/v1/sessions/{id}/files/{remote}"),
                    )
                    .body(bytes),
            )?;
        }
        SessionCommand::Download { id, remote, local } => {
            let bytes = client
                .send(client.request(
                    reqwest::Method::GET,
                    &format!("/api/v1/sessions/{id}/files/{remote}"),
                ))?
                .bytes()
                .context("reading the file")?;
            let local = local.unwrap_or_else(|| {
                PathBuf::from(remote.rsplit('/').next().unwrap_or(&remote).to_string())
            });
            if local == Path::new("-") {
                std::io::stdout().lock().write_all(&bytes)?;
            } else {
                std::fs::write(&local, &bytes)
                    .with_context(|| format!("cannot write {}", local.display()))?;
            }
        }
        SessionCommand::Ls { id, path } => {
            let listing: Value = client
                .send(
                    client
                        .request(
                            reqwest::Method::GET,
                            &format!("/api/v1/sessions/{id}/files"),
                        )
                        .query(&[("path", path)]),
                )?
                .json()?;
            for entry in listing["entries"].as_array().into_iter().flatten() {
                println!(
                    "{:<8} {:>10} {}",
                    entry["kind"].as_str().unwrap_or("?"),
                    entry["size"].as_u64().unwrap_or(0),
                    entry["name"].as_str().unwrap_or("?")
                );
            }
        }
        SessionCommand::Rm { id } => {
            client
                .send(client.request(reqwest::Method::DELETE, &format!("/api/v1/sessions/{id}")))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
