//! Running a sandbox from a multi-threaded process (the server, tests): re-exec a small
//! single-threaded helper — the `brig` binary with the hidden `__sandbox-helper` argument —
//! which does the whole job (`run::run_here`) and reports back. Nothing runs between `fork` and
//! `exec` in the caller: `std::process::Command` spawns the helper (posix_spawn/vfork).
//!
//! The helper's fd 0 is the program's stdin (a file, a memfd holding bytes, or /dev/null) and
//! its fd 1 is one end of a socketpair carrying frames both ways: `[u32 length][u8 tag][payload]`.
//! The caller sends one request (`S`: the config and spec as JSON); the helper streams output
//! (`O`: step, stream, bytes) and ends with the report (`R`, JSON) or an error (`E`, text).
//! Any byte from the caller afterwards, or the caller closing its end, cancels the run. The
//! report goes out as soon as the result is known; the helper then finishes the end of the
//! run's sandboxes (`teardown`) and exits, and the caller returns without waiting for that.

use rustix::fd::{AsFd, OwnedFd};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::JailConfig;
use crate::frame::{read_frame, write_frame};
use crate::report::{OutputSink, Report, Stream};
use crate::run::{self, JailError};
use crate::spec::SandboxSpec;

/// The hidden first argument that turns the `brig` binary into the helper.
pub const HELPER_ARG: &str = "__sandbox-helper";

/// Where the program's stdin comes from.
#[derive(Debug, Clone, Default)]
pub enum Stdin {
    /// `/dev/null`.
    #[default]
    Null,
    /// These bytes (through a sealed memfd: a seekable file, no copying thread).
    Bytes(Vec<u8>),
    /// A host file, opened by the caller.
    File(PathBuf),
}

impl Stdin {
    /// Opens the source as an fd for the sandbox.
    pub fn open(&self) -> io::Result<Option<OwnedFd>> {
        match self {
            Stdin::Null => Ok(None),
            Stdin::File(path) => Ok(Some(std::fs::File::open(path)?.into())),
            Stdin::Bytes(bytes) => {
                let fd = rustix::fs::memfd_create(
                    "brig-stdin",
                    rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
                )?;
                let mut file = std::fs::File::from(fd);
                file.write_all(bytes)?;
                rustix::fs::seek(&file, rustix::fs::SeekFrom::Start(0))?;
                rustix::fs::fcntl_add_seals(
                    &file,
                    rustix::fs::SealFlags::WRITE
                        | rustix::fs::SealFlags::GROW
                        | rustix::fs::SealFlags::SHRINK
                        | rustix::fs::SealFlags::SEAL,
                )?;
                Ok(Some(file.into()))
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Request {
    config: JailConfig,
    spec: SandboxSpec,
    stream: bool,
}

/// Streams output frames to the caller.
struct FrameSink<'a> {
    socket: &'a UnixStream,
}

impl OutputSink for FrameSink<'_> {
    fn output(&mut self, step: usize, stream: Stream, data: &[u8]) {
        let stream_byte = match stream {
            Stream::Stdout => 1u8,
            Stream::Stderr => 2u8,
        };
        let _ = write_frame(
            &mut &*self.socket,
            b'O',
            &[&[step as u8, stream_byte], data],
        );
    }
}

/// The helper process's `main`: fd 0 is the program's stdin, fd 1 the socket.
pub fn helper_main() -> ! {
    let code = match serve_one() {
        Ok(()) => 0,
        // A broken pipe means the caller is gone (killed, or shutting down): nobody is left to
        // tell, and the sandbox dies with this process.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 1,
        Err(e) => {
            eprintln!("brig sandbox helper: {e}");
            1
        }
    };
    std::process::exit(code)
}

fn serve_one() -> io::Result<()> {
    let socket = UnixStream::from(rustix::io::dup(rustix::stdio::stdout())?);
    // fd 1 must not stay the socket: a sandbox inherits its own stdout, but we keep no
    // stray copy that would hold the caller's socket open.
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    rustix::stdio::dup2_stdout(null.as_fd())?;
    let stdin_is_file = rustix::fs::fstat(rustix::stdio::stdin())
        .map(|st| st.st_mode & libc::S_IFMT != libc::S_IFCHR)
        .unwrap_or(false);
    let stdin = if stdin_is_file {
        Some(rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3)?)
    } else {
        None
    };
    let Some((b'S', body)) = read_frame(&mut &socket)? else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "expected a request frame",
        ));
    };
    let request: Request =
        serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let control: OwnedFd = rustix::io::dup(&socket)?;
    // The report goes back as soon as it is known; the sandboxes' end follows, here.
    let config = crate::JailConfig {
        defer_teardown: true,
        ..request.config.clone()
    };
    let result = if request.stream {
        run::run_here(
            &config,
            &request.spec,
            stdin,
            Some(&control),
            &mut FrameSink { socket: &socket },
        )
    } else {
        run::run_here(
            &config,
            &request.spec,
            stdin,
            Some(&control),
            &mut crate::report::Discard,
        )
    };
    let sent = match result {
        Ok(report) => serde_json::to_vec(&report)
            .map_err(io::Error::other)
            .and_then(|json| write_frame(&mut &socket, b'R', &[&json])),
        Err(e) => write_frame(&mut &socket, b'E', &[e.to_string().as_bytes()]),
    };
    // Then, with the caller answered (or gone), the end of the run's sandboxes.
    drop((control, socket));
    crate::teardown::finish_now().map_err(|e| io::Error::other(e.to_string()))?;
    sent
}

/// Runs `spec` through a fresh helper process; safe to call from any thread.
/// `sink`, when given, receives output as it is produced.
pub fn run_via_helper(
    config: &JailConfig,
    spec: &SandboxSpec,
    stdin: &Stdin,
    sink: Option<&mut dyn OutputSink>,
) -> Result<Report, JailError> {
    let helper_error = |what: &str, e: io::Error| JailError::Helper(format!("{what}: {e}"));
    let (ours, theirs) = UnixStream::pair().map_err(|e| helper_error("socketpair", e))?;
    let stdin_fd = stdin.open().map_err(|e| helper_error("open stdin", e))?;
    let mut command = Command::new(&config.helper);
    command
        .arg(HELPER_ARG)
        .stdin(match stdin_fd {
            Some(fd) => Stdio::from(fd),
            None => Stdio::null(),
        })
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .stderr(Stdio::inherit())
        .env_clear();
    let mut child = command
        .spawn()
        .map_err(|e| helper_error(&format!("spawn {}", config.helper.display()), e))?;
    drop(command);
    let request = Request {
        config: config.clone(),
        spec: spec.clone(),
        stream: sink.is_some(),
    };
    let body = serde_json::to_vec(&request).map_err(|e| JailError::Helper(e.to_string()))?;
    write_frame(&mut &ours, b'S', &[&body]).map_err(|e| helper_error("send the spec", e))?;
    let mut sink = sink;
    let outcome = loop {
        match read_frame(&mut &ours) {
            Ok(Some((b'O', body))) if body.len() >= 2 => {
                if let Some(sink) = sink.as_deref_mut() {
                    let stream = if body[1] == 1 {
                        Stream::Stdout
                    } else {
                        Stream::Stderr
                    };
                    sink.output(body[0] as usize, stream, &body[2..]);
                }
            }
            Ok(Some((b'R', body))) => {
                break serde_json::from_slice::<Report>(&body)
                    .map_err(|e| JailError::Helper(format!("bad report: {e}")));
            }
            Ok(Some((b'E', body))) => {
                break Err(JailError::Helper(
                    String::from_utf8_lossy(&body).into_owned(),
                ));
            }
            Ok(Some((tag, _))) => {
                break Err(JailError::Helper(format!("unexpected frame {tag}")));
            }
            Ok(None) => {
                break Err(JailError::Helper(
                    "the helper exited without a report".into(),
                ));
            }
            Err(e) => break Err(helper_error("read from the helper", e)),
        }
    };
    if outcome.is_ok() {
        // The report is in; the helper is finishing the sandbox's end (`teardown`), which the
        // caller need not wait for. A thread reaps it.
        std::thread::spawn(move || child.wait());
        return outcome;
    }
    let status = child
        .wait()
        .map_err(|e| helper_error("wait for the helper", e))?;
    match outcome {
        Err(JailError::Helper(message)) if !status.success() && message.contains("without") => {
            Err(JailError::Helper(format!("{message} ({status})")))
        }
        other => other,
    }
}
