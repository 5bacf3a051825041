//! The agent's loop, inside the sandbox (PID 1): one `poll(2)` over the helper's socket, the
//! running execution's pipes and pidfd, and the kernel's pipes and pidfd. Single-threaded, like
//! everything forked from the helper.

use brig_core::{Exit, Limits};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, OwnedFd};
use rustix::process::{Pid, Signal, WaitOptions};
use std::ffi::CString;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::{CellOutcome, Event, ExecKind, KernelSpec, PROTOCOL, Request, files};
use crate::exec::{self, ExecPlan, OnFailure};
use crate::frame::{read_frame, write_frame};
use crate::report::Stream;
use crate::sys::{self, Forked, PreparedExec};
use crate::{rlimits, supervise};

/// A child process the agent started, with its pipes.
struct Child {
    pid: Pid,
    pidfd: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// The session's Python kernel.
struct Kernel {
    child: Child,
    requests: OwnedFd,
    events: OwnedFd,
    pending: Vec<u8>,
}

enum Running {
    Command {
        id: u64,
        child: Child,
        exit: Option<Exit>,
    },
    Cell {
        id: u64,
        interrupt_deadline: Option<Instant>,
    },
}

struct Agent {
    socket: UnixStream,
    work: OwnedFd,
    kernel_spec: Option<KernelSpec>,
    kernel: Option<Kernel>,
    running: Option<Running>,
}

fn pipe() -> rustix::io::Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
}

fn nonblocking(fd: &OwnedFd) {
    let _ = rustix::io::ioctl_fionbio(fd, true);
}

/// Starts a child: stdio wired, own session, cwd, rlimits, only fds 0-4 kept.
fn spawn(
    exec: &PreparedExec,
    cwd: &str,
    rlimit_plan: &[(rustix::process::Resource, u64)],
    stdin: &OwnedFd,
    extra: &[&OwnedFd],
) -> rustix::io::Result<Child> {
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let cwd = CString::new(cwd).map_err(|_| rustix::io::Errno::INVAL)?;
    let keep = exec::keep_fds(extra)?;
    let plan = ExecPlan {
        exec,
        stdio: [stdin.as_fd(), stdout_w.as_fd(), stderr_w.as_fd()],
        keep: &keep,
        cwd: &cwd,
        rlimits: rlimit_plan,
        cgroup_tasks: &[],
        seccomp: None,
        on_failure: OnFailure::ExecOnStderr {
            prefix: "brig agent: ",
        },
    };
    match sys::fork()
        .map_err(|e| rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO))?
    {
        Forked::Child => exec::exec_child(&plan),
        Forked::Parent { pid, .. } => {
            let pid = Pid::from_raw(pid).expect("fork returned a pid");
            let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
            nonblocking(&stdout_r);
            nonblocking(&stderr_r);
            Ok(Child {
                pid,
                pidfd,
                stdout: stdout_r,
                stderr: stderr_r,
            })
        }
    }
}

fn null() -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
}

impl Agent {
    fn send(&self, event: &Event) {
        if let Ok(json) = serde_json::to_vec(event) {
            let _ = write_frame(&mut &self.socket, b'e', &[&json]);
        }
    }

    fn send_output(&self, id: u64, stream: Stream, data: &[u8]) {
        let stream_byte = match stream {
            Stream::Stdout => [1u8],
            Stream::Stderr => [2u8],
        };
        let _ = write_frame(
            &mut &self.socket,
            b'o',
            &[&id.to_le_bytes(), &stream_byte, data],
        );
    }

    /// Starts the kernel and waits for its `ready` event.
    fn start_kernel(&mut self) -> Result<serde_json::Value, String> {
        let Some(spec) = self.kernel_spec.clone() else {
            return Err("this session has no kernel".into());
        };
        let env = vec![
            (
                "PATH".to_string(),
                "/usr/local/bin:/usr/bin:/bin".to_string(),
            ),
            ("HOME".to_string(), "/work".to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("TMPDIR".to_string(), "/tmp".to_string()),
            ("MPLBACKEND".to_string(), "Agg".to_string()),
            ("MPLCONFIGDIR".to_string(), "/tmp/matplotlib".to_string()),
        ];
        let exec = PreparedExec::new(&spec.argv, &env).map_err(|e| e.to_string())?;
        let (req_r, req_w) = pipe().map_err(|e| e.to_string())?;
        let (ev_r, ev_w) = pipe().map_err(|e| e.to_string())?;
        let stdin = null().map_err(|e| e.to_string())?;
        let child = spawn(&exec, "/work", &[], &stdin, &[&req_r, &ev_w])
            .map_err(|e| format!("start the kernel: {e}"))?;
        drop((req_r, ev_w));
        nonblocking(&ev_r);
        let mut kernel = Kernel {
            child,
            requests: req_w,
            events: ev_r,
            pending: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_millis(spec.ready_timeout_ms);
        loop {
            for event in read_events(&mut kernel) {
                if event["type"] == "ready" {
                    self.kernel = Some(kernel);
                    return Ok(event);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                let _ = rustix::process::pidfd_send_signal(&kernel.child.pidfd, Signal::KILL);
                return Err("the kernel did not become ready in time".into());
            }
            let mut fds = [
                PollFd::new(&kernel.events, PollFlags::IN),
                PollFd::new(&kernel.child.pidfd, PollFlags::IN),
            ];
            let _ = rustix::event::poll(&mut fds, Some(&supervise::to_timespec(deadline - now)));
            if !fds[1].revents().is_empty() && fds[0].revents().is_empty() {
                let stderr = drain(&kernel.child.stderr);
                return Err(format!(
                    "the kernel exited during start-up: {}",
                    String::from_utf8_lossy(&stderr).trim()
                ));
            }
        }
    }

    fn kill_kernel(&mut self) {
        if let Some(kernel) = self.kernel.take() {
            let _ = rustix::process::pidfd_send_signal(&kernel.child.pidfd, Signal::KILL);
            let _ = rustix::process::waitpid(Some(kernel.child.pid), WaitOptions::empty());
        }
    }

    fn handle(&mut self, request: Request) -> bool {
        match request {
            Request::Exec {
                id,
                kind,
                limits,
                stdin,
            } => self.exec(id, kind, &limits, &stdin),
            Request::Kill { id } => self.kill(id),
            Request::WriteFile {
                rid,
                path,
                mode,
                content,
            } => match files::write(&self.work, &path, mode, &content) {
                Ok(()) => self.send(&Event::FileOk { rid }),
                Err((kind, message)) => self.send(&Event::FileError {
                    rid,
                    kind: kind.into(),
                    message,
                }),
            },
            Request::ReadFile { rid, path } => match files::read(&self.work, &path) {
                Ok(content) => {
                    let _ = write_frame(&mut &self.socket, b'f', &[&rid.to_le_bytes(), &content]);
                }
                Err((kind, message)) => self.send(&Event::FileError {
                    rid,
                    kind: kind.into(),
                    message,
                }),
            },
            Request::ListFiles { rid, path } => match files::list(&self.work, &path) {
                Ok(entries) => self.send(&Event::FileList { rid, entries }),
                Err((kind, message)) => self.send(&Event::FileError {
                    rid,
                    kind: kind.into(),
                    message,
                }),
            },
            Request::DeleteFile { rid, path } => match files::delete(&self.work, &path) {
                Ok(()) => self.send(&Event::FileOk { rid }),
                Err((kind, message)) => self.send(&Event::FileError {
                    rid,
                    kind: kind.into(),
                    message,
                }),
            },
            Request::Usage { rid } => {
                let pids = std::fs::read_dir("/proc")
                    .map(|d| {
                        d.flatten()
                            .filter(|e| {
                                e.file_name()
                                    .to_string_lossy()
                                    .bytes()
                                    .all(|b| b.is_ascii_digit())
                            })
                            .count() as u32
                    })
                    .unwrap_or(0);
                self.send(&Event::Usage { rid, pids });
            }
            Request::Shutdown => return false,
        }
        true
    }

    fn done(
        &mut self,
        id: u64,
        exit: Option<Exit>,
        cell: Option<CellOutcome>,
        kernel_restarted: bool,
        error: Option<String>,
    ) {
        self.running = None;
        self.send(&Event::Done {
            id,
            exit,
            cell,
            kernel_restarted,
            error,
        });
    }

    fn exec(&mut self, id: u64, kind: ExecKind, limits: &Limits, stdin: &[u8]) {
        if self.running.is_some() {
            self.send(&Event::Done {
                id,
                exit: None,
                cell: None,
                kernel_restarted: false,
                error: Some("another execution is running in this session".into()),
            });
            return;
        }
        match kind {
            ExecKind::Command { argv, env, cwd } => {
                let env: Vec<(String, String)> = env.into_iter().collect();
                let started = (|| -> Result<Child, String> {
                    let exec = PreparedExec::new(&argv, &env).map_err(|e| e.to_string())?;
                    let stdin_fd = crate::helper::Stdin::Bytes(stdin.to_vec())
                        .open()
                        .map_err(|e| e.to_string())?
                        .ok_or("stdin")?;
                    spawn(&exec, &cwd, &rlimits::plan(limits), &stdin_fd, &[])
                        .map_err(|e| e.to_string())
                })();
                match started {
                    Ok(child) => {
                        self.running = Some(Running::Command {
                            id,
                            child,
                            exit: None,
                        })
                    }
                    Err(e) => self.done(id, None, None, false, Some(e)),
                }
            }
            ExecKind::Cell { code } => {
                let Some(kernel) = &self.kernel else {
                    self.done(
                        id,
                        None,
                        None,
                        false,
                        Some("this session has no Python kernel".into()),
                    );
                    return;
                };
                let request =
                    serde_json::json!({"op": "execute", "id": id.to_string(), "code": code});
                let mut line = serde_json::to_vec(&request).unwrap_or_default();
                line.push(b'\n');
                if write_all(&kernel.requests, &line).is_err() {
                    self.kernel_died(id);
                    return;
                }
                self.running = Some(Running::Cell {
                    id,
                    interrupt_deadline: None,
                });
            }
        }
    }

    fn kill(&mut self, id: u64) {
        let grace = self
            .kernel_spec
            .as_ref()
            .map_or(1000, |k| k.interrupt_grace_ms);
        match &mut self.running {
            Some(Running::Command {
                id: running, child, ..
            }) if *running == id => {
                let _ = rustix::process::kill_process_group(child.pid, Signal::KILL);
            }
            Some(Running::Cell {
                id: running,
                interrupt_deadline,
            }) if *running == id && interrupt_deadline.is_none() => {
                // The kernel only, not its process group (its own children may be cleaning up).
                if let Some(kernel) = &self.kernel {
                    let _ = rustix::process::pidfd_send_signal(&kernel.child.pidfd, Signal::INT);
                }
                *interrupt_deadline = Some(Instant::now() + Duration::from_millis(grace));
            }
            _ => {}
        }
    }

    /// The kernel died (or was killed) during cell `id`: restart it and report.
    fn kernel_died(&mut self, id: u64) {
        let mut exit = None;
        if let Some(kernel) = self.kernel.take() {
            let _ = rustix::process::pidfd_send_signal(&kernel.child.pidfd, Signal::KILL);
            let out = drain(&kernel.child.stdout);
            let err = drain(&kernel.child.stderr);
            self.forward(id, &out, &err);
            if let Ok(Some((_, status))) =
                rustix::process::waitpid(Some(kernel.child.pid), WaitOptions::empty())
            {
                exit = Some(supervise::decode_status(status.as_raw()));
            }
        }
        let error = self.start_kernel().err();
        self.done(id, exit, None, true, error);
    }

    fn forward(&self, id: u64, out: &[u8], err: &[u8]) {
        if !out.is_empty() {
            self.send_output(id, Stream::Stdout, out);
        }
        if !err.is_empty() {
            self.send_output(id, Stream::Stderr, err);
        }
    }

    /// One turn of the loop. Returns false to stop.
    fn turn(&mut self) -> bool {
        // Reap orphans (we are PID 1), keeping the status of the command we run.
        while let Ok(Some((pid, status))) = rustix::process::waitpid(None, WaitOptions::NOHANG) {
            if let Some(Running::Command { child, exit, .. }) = &mut self.running
                && child.pid == pid
            {
                *exit = Some(supervise::decode_status(status.as_raw()));
            }
        }
        let timeout = match &self.running {
            Some(Running::Cell {
                interrupt_deadline: Some(at),
                ..
            }) => at.saturating_duration_since(Instant::now()),
            _ => Duration::from_secs(1),
        };
        let mut tags = Vec::new();
        let mut fds = vec![PollFd::new(&self.socket, PollFlags::IN)];
        tags.push('s');
        if let Some(kernel) = &self.kernel {
            fds.push(PollFd::new(&kernel.child.stdout, PollFlags::IN));
            tags.push('o');
            fds.push(PollFd::new(&kernel.child.stderr, PollFlags::IN));
            tags.push('e');
            fds.push(PollFd::new(&kernel.events, PollFlags::IN));
            tags.push('k');
            fds.push(PollFd::new(&kernel.child.pidfd, PollFlags::IN));
            tags.push('K');
        }
        if let Some(Running::Command { child, .. }) = &self.running {
            fds.push(PollFd::new(&child.stdout, PollFlags::IN));
            tags.push('1');
            fds.push(PollFd::new(&child.stderr, PollFlags::IN));
            tags.push('2');
            fds.push(PollFd::new(&child.pidfd, PollFlags::IN));
            tags.push('p');
        }
        let _ = rustix::event::poll(&mut fds, Some(&supervise::to_timespec(timeout)));
        let ready: Vec<char> = fds
            .iter()
            .zip(&tags)
            .filter(|(fd, _)| !fd.revents().is_empty())
            .map(|(_, t)| *t)
            .collect();
        drop(fds);
        let running_id = match &self.running {
            Some(Running::Command { id, .. }) | Some(Running::Cell { id, .. }) => Some(*id),
            None => None,
        };
        for tag in ready {
            match tag {
                's' => match read_frame(&mut &self.socket) {
                    Ok(Some((b'q', body))) => match serde_json::from_slice::<Request>(&body) {
                        Ok(request) => {
                            if !self.handle(request) {
                                return false;
                            }
                        }
                        Err(e) => self.send(&Event::Done {
                            id: 0,
                            exit: None,
                            cell: None,
                            kernel_restarted: false,
                            error: Some(format!("bad request: {e}")),
                        }),
                    },
                    Ok(_) | Err(_) => return false,
                },
                'o' | 'e' => {
                    let Some(kernel) = &self.kernel else { continue };
                    let fd = if tag == 'o' {
                        &kernel.child.stdout
                    } else {
                        &kernel.child.stderr
                    };
                    let data = drain(fd);
                    if let Some(id) =
                        running_id.filter(|_| matches!(self.running, Some(Running::Cell { .. })))
                    {
                        let stream = if tag == 'o' {
                            Stream::Stdout
                        } else {
                            Stream::Stderr
                        };
                        if !data.is_empty() {
                            self.send_output(id, stream, &data);
                        }
                    }
                }
                'k' => {
                    let Some(kernel) = &mut self.kernel else {
                        continue;
                    };
                    for event in read_events(kernel) {
                        self.kernel_event(event);
                    }
                }
                'K' => {
                    if let Some(id) =
                        running_id.filter(|_| matches!(self.running, Some(Running::Cell { .. })))
                    {
                        self.kernel_died(id);
                    } else {
                        // Died while idle: restart quietly.
                        self.kill_kernel();
                        let _ = self.start_kernel();
                    }
                }
                '1' | '2' => {
                    if let Some(Running::Command { id, child, .. }) = &self.running {
                        let data = drain(if tag == '1' {
                            &child.stdout
                        } else {
                            &child.stderr
                        });
                        if !data.is_empty() {
                            self.send_output(
                                *id,
                                if tag == '1' {
                                    Stream::Stdout
                                } else {
                                    Stream::Stderr
                                },
                                &data,
                            );
                        }
                    }
                }
                'p' => {
                    if let Some(Running::Command { child, exit, .. }) = &mut self.running
                        && exit.is_none()
                        && let Ok(Some((_, status))) =
                            rustix::process::waitpid(Some(child.pid), WaitOptions::NOHANG)
                    {
                        *exit = Some(supervise::decode_status(status.as_raw()));
                    }
                }
                _ => {}
            }
        }
        // A command whose process exited: forward what is left in its pipes and report.
        if let Some(Running::Command {
            id,
            child,
            exit: Some(exit),
        }) = &self.running
        {
            let (id, exit) = (*id, *exit);
            let out = drain(&child.stdout);
            let err = drain(&child.stderr);
            self.forward(id, &out, &err);
            self.done(id, Some(exit), None, false, None);
        }
        // A cell that ignored its interrupt past the grace period: restart the kernel.
        if let Some(Running::Cell {
            id,
            interrupt_deadline: Some(at),
        }) = &self.running
            && Instant::now() >= *at
        {
            let id = *id;
            self.kernel_died(id);
        }
        true
    }

    fn kernel_event(&mut self, event: serde_json::Value) {
        let Some(Running::Cell { id, .. }) = &self.running else {
            return;
        };
        let id = *id;
        match event["type"].as_str() {
            Some("display") => self.send(&Event::Display {
                id,
                data: event["data"].clone(),
            }),
            Some("done") => {
                if let Some(kernel) = &self.kernel {
                    let out = drain(&kernel.child.stdout);
                    let err = drain(&kernel.child.stderr);
                    self.forward(id, &out, &err);
                }
                let cell = CellOutcome {
                    status: event["status"]
                        .as_str()
                        .unwrap_or("runtime_error")
                        .to_string(),
                    result: Some(event["result"].clone()).filter(|r| !r.is_null()),
                    error: Some(event["error"].clone()).filter(|e| !e.is_null()),
                };
                self.done(id, None, Some(cell), false, None);
            }
            _ => {}
        }
    }
}

/// Reads whatever is available (the fd is non-blocking).
fn drain(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if out.len() > 4 << 20 {
            break;
        }
    }
    out
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> rustix::io::Result<()> {
    while !data.is_empty() {
        let n = rustix::io::write(fd, data)?;
        data = &data[n..];
    }
    Ok(())
}

/// Complete JSON lines from the kernel's event pipe.
fn read_events(kernel: &mut Kernel) -> Vec<serde_json::Value> {
    let data = drain(&kernel.events);
    kernel.pending.extend_from_slice(&data);
    let mut events = Vec::new();
    while let Some(pos) = kernel.pending.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = kernel.pending.drain(..=pos).collect();
        if let Ok(value) = serde_json::from_slice(&line) {
            events.push(value);
        }
    }
    events
}

/// The agent's main: serves the helper's socket until shutdown or until the socket closes.
pub fn run(socket: OwnedFd, kernel: Option<KernelSpec>) -> ! {
    let work = match rustix::fs::open(
        "/work",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(_) => sys::exit_now(1),
    };
    let mut agent = Agent {
        socket: UnixStream::from(socket),
        work,
        kernel_spec: kernel,
        kernel: None,
        running: None,
    };
    let kernel = match agent.kernel_spec {
        Some(_) => match agent.start_kernel() {
            Ok(ready) => Some(ready),
            Err(e) => Some(serde_json::json!({"type": "error", "message": e})),
        },
        None => None,
    };
    agent.send(&Event::Hello {
        protocol: PROTOCOL,
        kernel,
    });
    while agent.turn() {}
    agent.kill_kernel();
    sys::exit_now(0)
}
