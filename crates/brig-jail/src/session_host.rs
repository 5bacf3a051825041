//! The helper's side of a session: start the sandbox with the agent as its init, then relay
//! frames between the engine (the `control` socket) and the agent until either ends.
//!
//! Each execution is watched from here: its wall-clock deadline, its CPU budget (the cgroup's
//! usage since it started), its output limit (bytes relayed), and afterwards the cgroup's OOM
//! counter and memory peak; the agent is asked to kill what overruns. The engine receives the
//! agent's events, output (`o`), file bytes (`f`), and instead of the agent's `Done` an
//! [`ExecReport`] (`r`) with the one status of DESIGN.md. If the agent dies, the engine gets an
//! `x` frame saying so and the session ends.

use brig_core::{Exit, KillReason, Limits, Status, Termination};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::agent::{CellOutcome, Event, ExecReport, Request, UsageReport};
use crate::cgroup::Cgroup;
use crate::frame::{read_frame, write_frame};
use crate::run::{JailError, Started};

/// How often the CPU budget is checked.
const CPU_POLL: Duration = Duration::from_millis(20);
/// How long the agent has to report an execution it was told to kill.
const KILL_BACKSTOP: Duration = Duration::from_secs(15);

struct Watched {
    id: u64,
    limits: Limits,
    started: Instant,
    cpu_start: u64,
    oom_start: u64,
    output_used: u64,
    killed_for: Option<KillReason>,
    killed_at: Option<Instant>,
}

fn send_to_agent(agent: &UnixStream, request: &Request) {
    if let Ok(json) = serde_json::to_vec(request) {
        let _ = write_frame(&mut &*agent, b'q', &[&json]);
    }
}

fn fatal(engine: &UnixStream, message: &str) {
    let json = serde_json::json!({ "message": message });
    let _ = write_frame(&mut &*engine, b'x', &[json.to_string().as_bytes()]);
}

/// Relays until the engine or the agent goes away, then tears the sandbox down.
pub(crate) fn serve(
    started: Started,
    agent: UnixStream,
    control: &OwnedFd,
) -> Result<(), JailError> {
    let engine = UnixStream::from(rustix::io::dup(control).map_err(|e| JailError::Os {
        op: "dup the control socket",
        source: e.into(),
    })?);
    let cgroup = started.cgroup.as_ref();
    let mut watched: Option<Watched> = None;
    let mut setup_error = Vec::new();
    let mut error_open = true;
    let mut hello_seen = false;
    loop {
        let now = Instant::now();
        if let Some(w) = &mut watched {
            let over_wall = now >= w.started + Duration::from_millis(w.limits.timeout_ms);
            let over_cpu = cgroup
                .and_then(|c| c.cpu_usage_ns().ok())
                .is_some_and(|used| {
                    used.saturating_sub(w.cpu_start) >= w.limits.cpu_time_ms * 1_000_000
                });
            if w.killed_for.is_none() && (over_wall || over_cpu) {
                w.killed_for = Some(if over_wall {
                    KillReason::WallTimeout
                } else {
                    KillReason::CpuTimeout
                });
                w.killed_at = Some(now);
                send_to_agent(&agent, &Request::Kill { id: w.id });
            }
            if w.killed_at.is_some_and(|at| now >= at + KILL_BACKSTOP) {
                fatal(
                    &engine,
                    "the sandbox's agent did not stop an execution it was told to kill",
                );
                break;
            }
        }
        let timeout = match &watched {
            Some(w) => (w.started + Duration::from_millis(w.limits.timeout_ms))
                .saturating_duration_since(now)
                .min(CPU_POLL)
                .max(Duration::from_millis(1)),
            None => Duration::from_secs(1),
        };
        let mut fds = vec![
            PollFd::new(&engine, PollFlags::IN),
            PollFd::new(&agent, PollFlags::IN),
            PollFd::new(&started.pidfd, PollFlags::IN),
        ];
        if error_open {
            fds.push(PollFd::new(&started.error, PollFlags::IN));
        }
        let _ = rustix::event::poll(&mut fds, Some(&crate::supervise::to_timespec(timeout)));
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if ready.get(3).copied().unwrap_or(false) {
            let mut buf = [0u8; 4096];
            match rustix::io::read(&started.error, &mut buf) {
                Ok(0) | Err(_) => error_open = false,
                Ok(n) => setup_error.extend_from_slice(&buf[..n]),
            }
        }
        if ready[0] {
            match read_frame(&mut &engine) {
                Ok(Some((b'q', body))) => {
                    let Ok(request) = serde_json::from_slice::<Request>(&body) else {
                        fatal(&engine, "bad request frame");
                        continue;
                    };
                    if let Request::Exec { id, limits, .. } = &request {
                        if let Some(c) = cgroup {
                            c.reset_peak();
                        }
                        let stats = cgroup.and_then(|c| c.stats().ok());
                        watched = Some(Watched {
                            id: *id,
                            limits: *limits,
                            started: Instant::now(),
                            cpu_start: stats.map_or(0, |s| s.cpu_usage_ns),
                            oom_start: stats.map_or(0, |s| s.oom_kills),
                            output_used: 0,
                            killed_for: None,
                            killed_at: None,
                        });
                    }
                    if let Request::Kill { id } = &request
                        && let Some(w) = watched
                            .as_mut()
                            .filter(|w| w.id == *id && w.killed_for.is_none())
                    {
                        w.killed_for = Some(KillReason::Cancelled);
                        w.killed_at = Some(Instant::now());
                    }
                    let shutdown = request == Request::Shutdown;
                    send_to_agent(&agent, &request);
                    if shutdown {
                        break;
                    }
                }
                Ok(Some(_)) => fatal(&engine, "unexpected frame from the engine"),
                Ok(None) | Err(_) => {
                    send_to_agent(&agent, &Request::Shutdown);
                    break;
                }
            }
        }
        if ready[1] {
            match read_frame(&mut &agent) {
                Ok(Some((b'o', body))) if body.len() >= 9 => {
                    let id = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
                    let data = &body[9..];
                    let Some(w) = watched.as_mut().filter(|w| w.id == id) else {
                        continue;
                    };
                    let room = w.limits.output_bytes.saturating_sub(w.output_used) as usize;
                    let kept = &data[..data.len().min(room)];
                    w.output_used += kept.len() as u64;
                    if !kept.is_empty() {
                        let _ = write_frame(&mut &engine, b'o', &[&body[..9], kept]);
                    }
                    if kept.len() < data.len() && w.killed_for.is_none() {
                        w.killed_for = Some(KillReason::OutputLimit);
                        w.killed_at = Some(Instant::now());
                        send_to_agent(&agent, &Request::Kill { id });
                    }
                }
                Ok(Some((b'e', body))) => match serde_json::from_slice::<Event>(&body) {
                    Ok(Event::Done {
                        id,
                        exit,
                        cell,
                        kernel_restarted,
                        error,
                    }) => {
                        let Some(w) = watched.take().filter(|w| w.id == id) else {
                            continue;
                        };
                        let report = finish(w, cgroup, exit, cell, kernel_restarted, error);
                        if let Ok(json) = serde_json::to_vec(&report) {
                            let _ = write_frame(&mut &engine, b'r', &[&json]);
                        }
                    }
                    Ok(Event::Usage { rid, pids }) => {
                        let stats = cgroup.and_then(|c| c.stats().ok());
                        let usage = UsageReport {
                            rid,
                            pids,
                            cpu_ms: stats.map_or(0, |s| s.cpu_usage_ns / 1_000_000),
                            memory_peak_bytes: stats.map_or(0, |s| s.memory_peak_bytes),
                        };
                        if let Ok(json) = serde_json::to_vec(&usage) {
                            let _ = write_frame(&mut &engine, b'u', &[&json]);
                        }
                    }
                    Ok(event) => {
                        hello_seen |= matches!(event, Event::Hello { .. });
                        let _ = write_frame(&mut &engine, b'e', &[&body]);
                    }
                    Err(_) => fatal(&engine, "bad event from the agent"),
                },
                Ok(Some((b'f', body))) => {
                    let _ = write_frame(&mut &engine, b'f', &[&body]);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    fatal(&engine, &agent_gone(&setup_error, hello_seen, cgroup));
                    break;
                }
            }
        }
        if ready[2] {
            fatal(&engine, &agent_gone(&setup_error, hello_seen, cgroup));
            break;
        }
    }
    started.tear_down()
}

fn agent_gone(setup_error: &[u8], hello_seen: bool, cgroup: Option<&Cgroup>) -> String {
    if !setup_error.is_empty() {
        let failure: Result<crate::child::SetupFailure, _> = serde_json::from_slice(setup_error);
        return match failure {
            Ok(f) => format!("sandbox setup failed at {}: {}", f.stage, f.message),
            Err(_) => String::from_utf8_lossy(setup_error).into_owned(),
        };
    }
    let oom = cgroup
        .and_then(|c| c.stats().ok())
        .is_some_and(|s| s.oom_kills > 0);
    match (hello_seen, oom) {
        (_, true) => {
            "the sandbox's agent was killed by the memory limit; the session has ended".into()
        }
        (true, false) => "the sandbox's agent exited; the session has ended".into(),
        (false, false) => "the sandbox's agent exited before it was ready".into(),
    }
}

/// The one status of an execution, from the agent's account and the cgroup's counters.
fn finish(
    w: Watched,
    cgroup: Option<&Cgroup>,
    exit: Option<Exit>,
    cell: Option<CellOutcome>,
    kernel_restarted: bool,
    error: Option<String>,
) -> ExecReport {
    let stats = cgroup.and_then(|c| c.stats().ok());
    let oom = stats.is_some_and(|s| s.oom_kills > w.oom_start);
    let (mut status, limit) = match (&error, &cell, exit) {
        (Some(_), _, _) => (Status::InternalError, None),
        (None, Some(cell), _) => match w.killed_for {
            Some(reason) => reason.status(),
            None => match cell.status.as_str() {
                "ok" => (Status::Ok, None),
                "compile_error" => (Status::CompileError, None),
                _ => (Status::RuntimeError, None),
            },
        },
        (None, None, Some(exit)) => Termination {
            exit,
            killed_for: w.killed_for,
            oom_killed: oom,
        }
        .status(),
        (None, None, None) => (Status::InternalError, None),
    };
    // A kernel that died under the memory limit.
    if kernel_restarted && oom && w.killed_for.is_none() {
        status = Status::MemoryLimit;
    }
    ExecReport {
        id: w.id,
        status,
        limit,
        exit_code: match exit {
            Some(Exit::Code(c)) => Some(c),
            _ => None,
        },
        signal: match exit {
            Some(Exit::Signal(s)) => Some(s),
            _ => None,
        },
        wall_ms: w.started.elapsed().as_millis() as u64,
        cpu_ms: stats.map_or(0, |s| {
            s.cpu_usage_ns.saturating_sub(w.cpu_start) / 1_000_000
        }),
        memory_peak_bytes: stats.map_or(0, |s| s.memory_peak_bytes),
        cell,
        kernel_restarted,
        error,
    }
}
