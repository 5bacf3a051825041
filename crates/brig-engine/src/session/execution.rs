//! One execution in a session's sandbox: how code in a language becomes an agent request (a
//! cell, `bash -c`, or an interpreter on a file), and how the agent's events and the helper's
//! report become the result object (and the stream of events) of DESIGN.md.

use brig_core::{DisplayOutput, RunResult, Status, Tier};
use brig_jail::agent::{ExecKind, ExecReport};
use tokio::sync::mpsc;

use super::sandbox::{ExecEvent, Sandbox};
use super::templates::Template;
use super::{Execute, StreamEvent};
use crate::languages::Languages;

/// Runs one execution in `sandbox` and builds its result, streaming events to `tx`.
pub(super) async fn run_in(
    sandbox: &Sandbox,
    template: &Template,
    languages: &Languages,
    request: Execute,
    tx: Option<&mpsc::UnboundedSender<StreamEvent>>,
) -> RunResult {
    let mut limits = template.limits.with(&request.limits);
    if let Some(timeout) = request.timeout_ms {
        limits.timeout_ms = timeout;
        limits.cpu_time_ms = limits.cpu_time_ms.max(timeout);
    }
    if let Err(errors) = limits.validate() {
        return RunResult::internal_error(
            Tier::Namespace,
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    let language = request
        .language
        .clone()
        .unwrap_or_else(|| template.language.to_string());
    let kind = match exec_kind(sandbox, template, languages, &language, &request.code).await {
        Ok(kind) => kind,
        Err(message) => {
            let mut result = RunResult::internal_error(Tier::Namespace, message);
            result.status = Status::RuntimeError;
            return result;
        }
    };
    let cancel = request.cancel.unwrap_or_default();
    if cancel.is_cancelled() {
        return cancelled_before_start();
    }
    let (exec_id, mut events) = match sandbox.exec(kind, limits, request.stdin).await {
        Ok(started) => started,
        Err(e) => return RunResult::internal_error(Tier::Namespace, e.to_string()),
    };
    let (mut stdout, mut stderr, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
    let mut cancelled = false;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = cancel.cancelled(), if !cancelled => {
                // Kill it, then keep reading: the agent still reports how it ended.
                cancelled = true;
                let _ = sandbox.kill(exec_id).await;
                continue;
            }
        };
        let Some(event) = event else { break };
        match event {
            ExecEvent::Stdout(data) => {
                if let Some(tx) = tx {
                    let _ = tx.send(StreamEvent::Stdout {
                        text: String::from_utf8_lossy(&data).into_owned(),
                    });
                }
                stdout.extend_from_slice(&data);
            }
            ExecEvent::Stderr(data) => {
                if let Some(tx) = tx {
                    let _ = tx.send(StreamEvent::Stderr {
                        text: String::from_utf8_lossy(&data).into_owned(),
                    });
                }
                stderr.extend_from_slice(&data);
            }
            ExecEvent::Display(bundle) => {
                let output = DisplayOutput::from_bundle(bundle);
                if let Some(tx) = tx {
                    let _ = tx.send(StreamEvent::Display {
                        output: output.clone(),
                    });
                }
                outputs.push(output);
            }
            ExecEvent::Done(report) => {
                let mut result = to_result(report, stdout, stderr, outputs);
                if cancelled {
                    result.status = Status::Cancelled;
                    result.limit = None;
                    result.message = Some("cancelled by the caller".into());
                }
                return result;
            }
            ExecEvent::Failed(reason) => {
                let mut result = RunResult::internal_error(Tier::Namespace, reason);
                result.stdout = String::from_utf8_lossy(&stdout).into_owned();
                result.stderr = String::from_utf8_lossy(&stderr).into_owned();
                return result;
            }
        }
    }
    RunResult::internal_error(Tier::Namespace, "the execution ended without a result")
}

/// The result of an execution cancelled before it started.
pub(super) fn cancelled_before_start() -> RunResult {
    RunResult::cancelled(Tier::Namespace, "cancelled before it started")
}

/// How `code` in `language` runs in a session: a cell for Python, `bash -c` for bash, the
/// language's run command on a file for other interpreted languages.
async fn exec_kind(
    sandbox: &Sandbox,
    template: &Template,
    languages: &Languages,
    language: &str,
    code: &str,
) -> Result<ExecKind, String> {
    let resolved = languages
        .find(language)
        .ok_or_else(|| format!("unknown language `{language}`"))?;
    let lang = &resolved.language;
    if lang.id == "python" && template.preload.is_some() {
        return Ok(ExecKind::Cell {
            code: code.to_string(),
        });
    }
    if let Some(reason) = &resolved.unavailable {
        return Err(format!("language `{}` is unavailable: {reason}", lang.id));
    }
    if lang.compile.is_some() {
        return Err(format!(
            "compiled languages (`{}`) run as one-shot executions, not in sessions",
            lang.id
        ));
    }
    let env = resolved.env.clone();
    if lang.id == "bash" {
        return Ok(ExecKind::Command {
            argv: vec!["/bin/bash".into(), "-c".into(), code.to_string()],
            env,
            cwd: "/work".into(),
        });
    }
    // Other interpreters read the code from a file beside the user's.
    let file = format!(".brig/{}", lang.source_file);
    sandbox
        .write_file(&file, code.as_bytes().to_vec(), 0o644)
        .await
        .map_err(|e| e.to_string())?;
    let argv = lang
        .run
        .iter()
        .map(|a| a.replace("{source}", &format!("/work/{file}")))
        .collect();
    Ok(ExecKind::Command {
        argv,
        env,
        cwd: "/work".into(),
    })
}

fn to_result(
    report: ExecReport,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    outputs: Vec<DisplayOutput>,
) -> RunResult {
    let cell = report.cell.clone();
    RunResult {
        status: report.status,
        limit: report.limit,
        exit_code: report.exit_code,
        signal: report.signal,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        wall_ms: report.wall_ms,
        cpu_ms: report.cpu_ms,
        memory_peak_bytes: report.memory_peak_bytes,
        tier: Tier::Namespace,
        compile: None,
        message: report.error.clone().or_else(|| {
            report
                .kernel_restarted
                .then(|| "the Python kernel was restarted: earlier variables are gone".to_string())
        }),
        result: cell.as_ref().and_then(|c| c.result.clone()),
        error: cell.as_ref().and_then(|c| c.error.clone()),
        outputs,
        kernel_restarted: report.kernel_restarted,
    }
}
