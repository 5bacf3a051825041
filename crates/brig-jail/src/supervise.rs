//! The helper's watch over one running step: a single-threaded `poll(2)` loop over the
//! program's output pipes, the init's status and error pipes, its pidfd, and the caller's
//! control fd, with the wall-clock deadline and the CPU budget as the timeout.
//!
//! It enforces the limits that are not the kernel's: the wall deadline, the CPU budget across
//! every process (polled from the cgroup), and the output limit (stdout + stderr together; the
//! prefix is kept, the rest discarded). Any of them kills the sandbox's init through its pidfd,
//! and the kernel takes every other process of the PID namespace with it.

use brig_core::{Exit, KillReason, Limits};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::{AsFd, OwnedFd};
use rustix::process::Signal;
use std::io;
use std::time::{Duration, Instant};

use crate::cgroup::Cgroup;
use crate::child::SetupFailure;
use crate::report::{OutputSink, Stream};
pub use crate::sys::ChildrenUsage;

/// How often the CPU budget is checked when it is far from spent.
const CPU_POLL_MAX: Duration = Duration::from_millis(50);
/// How long to keep draining output after init died (only the kernel's teardown is left).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// The helper's ends of one step's pipes.
pub struct StepFds {
    /// The program's stdout (namespace tier: through init; process tier: the program's own).
    pub stdout: OwnedFd,
    /// The program's stderr.
    pub stderr: OwnedFd,
    /// Setup failures from init or the program (EOF once `execve` succeeded).
    pub error: OwnedFd,
    /// The program's raw wait status, from init.
    pub status: OwnedFd,
    /// Readable when init has exited.
    pub pidfd: OwnedFd,
    /// The status comes from an init that first sent SIGKILL to every other process of the
    /// sandbox (`child::reap_until`): once it is in and the pipes are at EOF, the run is over
    /// and the watch ends without waiting for the init's exit (see `teardown`).
    pub status_ends_run: bool,
}

/// What the loop observed.
pub struct Observed {
    /// How the program ended (None if init died without reporting).
    pub exit: Option<Exit>,
    /// Why the loop killed the sandbox, if it did.
    pub killed_for: Option<KillReason>,
    /// A setup failure reported from inside.
    pub setup_failure: Option<SetupFailure>,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// From start until the run was over (init exited, or the status ended it).
    pub wall: Duration,
    /// What init's `getrusage` said of the program and what it reaped, sent with the status:
    /// the CPU time and peak memory of a run without a cgroup.
    pub usage: Option<ChildrenUsage>,
}

/// Output kept up to a shared budget.
struct Capture {
    budget: u64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exceeded: bool,
}

impl Capture {
    /// Keeps what fits; returns false once the budget is exceeded.
    fn push(&mut self, stream: Stream, data: &[u8]) -> bool {
        let used = (self.stdout.len() + self.stderr.len()) as u64;
        let room = self.budget.saturating_sub(used) as usize;
        let kept = &data[..data.len().min(room)];
        match stream {
            Stream::Stdout => self.stdout.extend_from_slice(kept),
            Stream::Stderr => self.stderr.extend_from_slice(kept),
        }
        if kept.len() < data.len() {
            self.exceeded = true;
        }
        !self.exceeded
    }
}

/// A `poll(2)` timeout.
pub(crate) fn to_timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    }
}

/// Init's status message (`child::reap_until`): the program's raw wait status (4 bytes,
/// little-endian), then `getrusage(RUSAGE_CHILDREN)` of init (CPU ns and peak RSS bytes, 8
/// bytes each). At 20 bytes it is below `PIPE_BUF`, so one `write` arrives whole. A zygote's
/// agent sends the status alone (its runs always have a cgroup). Built on the stack: init's
/// heap is a copy-on-write share of the helper's, and every page it writes is a fault.
pub(crate) fn encode_status_message(raw: i32, usage: Option<ChildrenUsage>) -> StatusMessage {
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&raw.to_le_bytes());
    let len = match usage {
        Some(usage) => {
            bytes[4..12].copy_from_slice(&usage.cpu_ns.to_le_bytes());
            bytes[12..20].copy_from_slice(&usage.max_rss_bytes.to_le_bytes());
            20
        }
        None => 4,
    };
    StatusMessage { bytes, len }
}

/// See [`encode_status_message`].
pub(crate) struct StatusMessage {
    bytes: [u8; 20],
    len: usize,
}

impl StatusMessage {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// See [`encode_status_message`]; `None` if it is too short to hold a status.
pub(crate) fn decode_status_message(message: &[u8]) -> Option<(i32, Option<ChildrenUsage>)> {
    let raw = i32::from_le_bytes(message.get(..4)?.try_into().ok()?);
    let u64_at = |at: usize| {
        Some(u64::from_le_bytes(
            message.get(at..at + 8)?.try_into().ok()?,
        ))
    };
    let usage = match (u64_at(4), u64_at(12)) {
        (Some(cpu_ns), Some(max_rss_bytes)) => Some(ChildrenUsage {
            cpu_ns,
            max_rss_bytes,
        }),
        _ => None,
    };
    Some((raw, usage))
}

/// Decodes a raw wait status.
pub fn decode_status(raw: i32) -> Exit {
    if libc::WIFSIGNALED(raw) {
        Exit::Signal(libc::WTERMSIG(raw))
    } else {
        Exit::Code(libc::WEXITSTATUS(raw))
    }
}

/// Watches one step until the watched process (init, or the program in the process tier) has
/// exited and the output pipes are drained. `kill_rest` ends whatever the signal to the pidfd
/// does not (the process tier's process group).
pub fn watch(
    fds: StepFds,
    step: usize,
    limits: &Limits,
    cgroup: Option<&Cgroup>,
    control: Option<&OwnedFd>,
    sink: &mut dyn OutputSink,
    kill_rest: &dyn Fn(),
) -> io::Result<Observed> {
    let start = Instant::now();
    let deadline = start + Duration::from_millis(limits.timeout_ms);
    let cpu_budget_ns = limits.cpu_time_ms.saturating_mul(1_000_000);
    let mut capture = Capture {
        budget: limits.output_bytes,
        stdout: Vec::new(),
        stderr: Vec::new(),
        exceeded: false,
    };
    let mut killed_for = None;
    let mut exit = None;
    let mut usage = None;
    let mut setup_error = Vec::new();
    let mut init_exited_at: Option<Instant> = None;
    let mut ended_at: Option<Instant> = None;
    let (mut stdout_open, mut stderr_open, mut error_open, mut status_open) =
        (true, true, true, true);
    let mut control_open = control.is_some();
    // Not zeroed: `read_some` fills only what it reads, so a run with little output touches
    // few of its pages (zeroing all 64 KiB faulted in 16 fresh pages, ~60 µs here, per run).
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);

    // The first reason wins; a program that already exited was not killed for anything.
    let kill = |reason: KillReason, killed_for: &mut Option<KillReason>, exited: bool| {
        if killed_for.is_none() && !exited {
            *killed_for = Some(reason);
        }
        let _ = rustix::process::pidfd_send_signal(&fds.pidfd, Signal::KILL);
        kill_rest();
        if let Some(cgroup) = cgroup {
            let _ = cgroup.kill_all();
        }
    };

    loop {
        let now = Instant::now();
        if init_exited_at.is_none() && killed_for.is_none() {
            if now >= deadline {
                kill(KillReason::WallTimeout, &mut killed_for, exit.is_some());
                continue;
            }
            // Once the program's status is in, the init has killed the rest: no CPU time is
            // left to watch, and the end of the run (below) need not wait for a read of it.
            if exit.is_none()
                && let Some(cgroup) = cgroup
                && cgroup.cpu_usage_ns().unwrap_or(0) >= cpu_budget_ns
            {
                kill(KillReason::CpuTimeout, &mut killed_for, exit.is_some());
                continue;
            }
        }
        let done_reading = !stdout_open && !stderr_open && !error_open && !status_open;
        if let Some(at) = init_exited_at
            && (done_reading || now.duration_since(at) > DRAIN_GRACE)
        {
            break;
        }
        if fds.status_ends_run && done_reading && exit.is_some() {
            crate::run::phase("run over");
            ended_at = Some(now);
            break;
        }
        let timeout = match init_exited_at {
            Some(at) => DRAIN_GRACE.saturating_sub(now.duration_since(at)),
            None if killed_for.is_some() => DRAIN_GRACE,
            None => deadline.saturating_duration_since(now).min(CPU_POLL_MAX),
        };

        let mut polled: Vec<(u8, PollFd<'_>)> = Vec::with_capacity(6);
        let watch_in = PollFlags::IN;
        if stdout_open {
            polled.push((b'o', PollFd::new(&fds.stdout, watch_in)));
        }
        if stderr_open {
            polled.push((b'e', PollFd::new(&fds.stderr, watch_in)));
        }
        if error_open {
            polled.push((b'x', PollFd::new(&fds.error, watch_in)));
        }
        if status_open {
            polled.push((b's', PollFd::new(&fds.status, watch_in)));
        }
        if init_exited_at.is_none() {
            polled.push((b'p', PollFd::new(&fds.pidfd, watch_in)));
        }
        if let (true, Some(control)) = (control_open, control) {
            polled.push((b'c', PollFd::new(control, watch_in)));
        }
        let mut pollfds: Vec<PollFd<'_>> = polled.iter().map(|(_, p)| p.clone()).collect();
        match rustix::event::poll(&mut pollfds, Some(&to_timespec(timeout))) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        for ((tag, _), pollfd) in polled.iter().zip(&pollfds) {
            if pollfd.revents().is_empty() {
                continue;
            }
            match tag {
                b'o' | b'e' => {
                    let (fd, stream) = if *tag == b'o' {
                        (&fds.stdout, Stream::Stdout)
                    } else {
                        (&fds.stderr, Stream::Stderr)
                    };
                    let n = read_some(fd, &mut buf)?;
                    if n == 0 {
                        if *tag == b'o' {
                            stdout_open = false;
                        } else {
                            stderr_open = false;
                        }
                        continue;
                    }
                    let data = &buf[..n];
                    if !capture.exceeded {
                        let before = match stream {
                            Stream::Stdout => capture.stdout.len(),
                            Stream::Stderr => capture.stderr.len(),
                        };
                        let fits = capture.push(stream, data);
                        let kept = match stream {
                            Stream::Stdout => &capture.stdout[before..],
                            Stream::Stderr => &capture.stderr[before..],
                        };
                        sink.output(step, stream, kept);
                        if !fits {
                            kill(KillReason::OutputLimit, &mut killed_for, exit.is_some());
                        }
                    }
                }
                b'x' => {
                    let n = read_some(&fds.error, &mut buf)?;
                    if n == 0 {
                        error_open = false;
                    } else {
                        setup_error.extend_from_slice(&buf[..n]);
                    }
                }
                b's' => {
                    let n = read_some(&fds.status, &mut buf)?;
                    if let Some((raw, reported)) = decode_status_message(&buf[..n]) {
                        exit = Some(decode_status(raw));
                        usage = reported;
                        crate::run::phase("program's status received");
                    }
                    if n == 0 || n >= 4 {
                        status_open = false;
                    }
                }
                b'p' => {
                    crate::run::phase("init exited");
                    init_exited_at = Some(Instant::now());
                    // Nothing may outlive the run (the PID namespace already saw to it in the
                    // namespace tier; in the process tier this ends the process group).
                    kill_rest();
                }
                b'c' => {
                    // Any byte, or EOF (the caller went away), cancels the run.
                    let _ = read_some(control.expect("polled"), &mut buf);
                    control_open = false;
                    kill(KillReason::Cancelled, &mut killed_for, exit.is_some());
                }
                _ => unreachable!("unknown poll tag"),
            }
        }
    }
    let setup_failure = if setup_error.is_empty() {
        None
    } else {
        Some(SetupFailure::from_bytes(&setup_error, "setup"))
    };
    Ok(Observed {
        exit,
        killed_for,
        setup_failure,
        stdout: capture.stdout,
        stderr: capture.stderr,
        wall: ended_at.or(init_exited_at).unwrap_or_else(Instant::now) - start,
        usage,
    })
}

/// One `read` into `buf`, emptied first (its capacity is the most read); the bytes read are
/// then `buf[..n]`.
fn read_some(fd: &impl AsFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    loop {
        match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_message_carries_the_usage_when_init_sends_it() {
        let usage = ChildrenUsage {
            cpu_ns: 1_234_567_890,
            max_rss_bytes: 64 << 20,
        };
        let message = encode_status_message(0x0900, Some(usage));
        let message = message.as_bytes();
        assert_eq!(message.len(), 20);
        assert_eq!(decode_status_message(message), Some((0x0900, Some(usage))));
        // A zygote's agent sends the status alone.
        let bare = encode_status_message(9, None);
        let bare = bare.as_bytes();
        assert_eq!(bare, 9i32.to_le_bytes());
        assert_eq!(decode_status_message(bare), Some((9, None)));
        assert_eq!(decode_status_message(&bare[..3]), None);
        assert_eq!(decode_status_message(&message[..12]), Some((0x0900, None)));
    }
}
