//! A live session sandbox, from the engine's side: the helper process (spawned with a session
//! spec), and an async client of the agent protocol over its socket. A reader task routes the
//! helper's frames: an execution's output, display data and report to that execution's channel,
//! file replies to their waiting request, and a fatal `x` frame (the agent died) to everyone.

use base64::Engine as _;
use brig_jail::agent::{ExecKind, ExecReport, FileEntry, Request, UsageReport};
use brig_jail::{JailConfig, SandboxSpec};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

/// Something an execution produced, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecEvent {
    /// Standard output bytes.
    Stdout(Vec<u8>),
    /// Standard error bytes.
    Stderr(Vec<u8>),
    /// Display data (a figure...): a mime bundle.
    Display(serde_json::Value),
    /// The end: the helper's report.
    Done(ExecReport),
    /// The session died during the execution.
    Failed(String),
}

/// Why a sandbox operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The sandbox could not be started.
    #[error("the session's sandbox could not start: {0}")]
    Start(String),
    /// The sandbox is gone (its agent died, or it was shut down).
    #[error("{0}")]
    Gone(String),
    /// A file operation failed inside (`kind` is `not_found`, `invalid_path`...).
    #[error("{message}")]
    File {
        /// The kind of failure.
        kind: String,
        /// A sentence for a person.
        message: String,
    },
}

enum Reply {
    Ok,
    Bytes(Vec<u8>),
    List(Vec<FileEntry>),
    Usage(UsageReport),
    Error(String, String),
}

#[derive(Default)]
struct Router {
    execs: HashMap<u64, mpsc::UnboundedSender<ExecEvent>>,
    replies: HashMap<u64, oneshot::Sender<Reply>>,
    dead: Option<String>,
}

/// One live sandbox with an agent (and maybe a kernel).
pub struct Sandbox {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    router: Arc<Mutex<Router>>,
    next_id: AtomicU64,
    helper: Mutex<Option<tokio::process::Child>>,
    /// The agent's hello: the kernel's ready message, if any.
    pub kernel: Option<serde_json::Value>,
}

pub(crate) async fn read_frame(
    reader: &mut (impl AsyncReadExt + Unpin),
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > brig_jail::frame::MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "bad frame length",
        ));
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    let tag = body.remove(0);
    Ok(Some((tag, body)))
}

impl Sandbox {
    /// Starts a session sandbox for `spec` (which must have `session` set) and waits until
    /// its agent (and kernel) is ready.
    pub async fn start(config: &JailConfig, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        let start_err =
            |what: &str, e: &dyn std::fmt::Display| SandboxError::Start(format!("{what}: {e}"));
        let (child, stream) = spawn_helper(config, spec)
            .await
            .map_err(SandboxError::Start)?;
        let (mut reader, writer) = stream.into_split();
        // The first frame is the agent's hello, or why it failed.
        let kernel = loop {
            match read_frame(&mut reader).await {
                Ok(Some((b'e', body))) => {
                    let event: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or_default();
                    if event["event"] == "hello" {
                        if event["kernel"]["type"] == "error" {
                            return Err(SandboxError::Start(
                                event["kernel"]["message"]
                                    .as_str()
                                    .unwrap_or("kernel failed")
                                    .into(),
                            ));
                        }
                        break Some(event["kernel"].clone()).filter(|k| !k.is_null());
                    }
                }
                Ok(Some((b'x', body))) | Ok(Some((b'E', body))) => {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let message = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["message"].as_str().map(str::to_owned))
                        .unwrap_or(text);
                    return Err(SandboxError::Start(message));
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(SandboxError::Start(
                        "the helper exited before the sandbox was ready".into(),
                    ));
                }
                Err(e) => return Err(start_err("read from the helper", &e)),
            }
        };
        let router = Arc::new(Mutex::new(Router::default()));
        tokio::spawn(route(reader, router.clone()));
        Ok(Sandbox {
            writer: tokio::sync::Mutex::new(writer),
            router,
            next_id: AtomicU64::new(1),
            helper: Mutex::new(Some(child)),
            kernel,
        })
    }

    /// Why the sandbox is gone, if it is.
    pub fn dead(&self) -> Option<String> {
        self.router.lock().expect("router").dead.clone()
    }

    async fn send(&self, request: &Request) -> Result<(), SandboxError> {
        if let Some(reason) = self.dead() {
            return Err(SandboxError::Gone(reason));
        }
        let body = serde_json::to_vec(request).map_err(|e| SandboxError::Gone(e.to_string()))?;
        let mut writer = self.writer.lock().await;
        write_frame(&mut writer, b'q', &[&body]).await.map_err(|_| {
            SandboxError::Gone(
                self.dead()
                    .unwrap_or_else(|| "the session's sandbox is gone".into()),
            )
        })
    }

    /// Starts an execution; its events arrive on the returned channel, ending with `Done` or
    /// `Failed`.
    pub async fn exec(
        &self,
        kind: ExecKind,
        limits: brig_core::Limits,
        stdin: Vec<u8>,
    ) -> Result<(u64, mpsc::UnboundedReceiver<ExecEvent>), SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.router.lock().expect("router").execs.insert(id, tx);
        if let Err(e) = self
            .send(&Request::Exec {
                id,
                kind,
                limits,
                stdin,
            })
            .await
        {
            self.router.lock().expect("router").execs.remove(&id);
            return Err(e);
        }
        Ok((id, rx))
    }

    /// Asks the agent to stop execution `id`.
    pub async fn kill(&self, id: u64) -> Result<(), SandboxError> {
        self.send(&Request::Kill { id }).await
    }

    async fn request(&self, make: impl FnOnce(u64) -> Request) -> Result<Reply, SandboxError> {
        let rid = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.router.lock().expect("router").replies.insert(rid, tx);
        self.send(&make(rid)).await?;
        rx.await.map_err(|_| {
            SandboxError::Gone(
                self.dead()
                    .unwrap_or_else(|| "the session's sandbox is gone".into()),
            )
        })
    }

    fn file_result<T>(
        reply: Reply,
        pick: impl FnOnce(Reply) -> Option<T>,
    ) -> Result<T, SandboxError> {
        match reply {
            Reply::Error(kind, message) => Err(SandboxError::File { kind, message }),
            other => pick(other)
                .ok_or_else(|| SandboxError::Gone("unexpected reply from the agent".into())),
        }
    }

    /// Writes a file in the work dir.
    pub async fn write_file(
        &self,
        path: &str,
        content: Vec<u8>,
        mode: u32,
    ) -> Result<(), SandboxError> {
        let path = path.to_string();
        let reply = self
            .request(|rid| Request::WriteFile {
                rid,
                path,
                mode,
                content,
            })
            .await?;
        Self::file_result(reply, |r| matches!(r, Reply::Ok).then_some(()))
    }

    /// Reads a file of the work dir.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        let path = path.to_string();
        let reply = self.request(|rid| Request::ReadFile { rid, path }).await?;
        Self::file_result(reply, |r| match r {
            Reply::Bytes(b) => Some(b),
            _ => None,
        })
    }

    /// Lists a directory of the work dir.
    pub async fn list_files(&self, path: &str) -> Result<Vec<FileEntry>, SandboxError> {
        let path = path.to_string();
        let reply = self.request(|rid| Request::ListFiles { rid, path }).await?;
        Self::file_result(reply, |r| match r {
            Reply::List(l) => Some(l),
            _ => None,
        })
    }

    /// Deletes a file or directory of the work dir.
    pub async fn delete_file(&self, path: &str) -> Result<(), SandboxError> {
        let path = path.to_string();
        let reply = self
            .request(|rid| Request::DeleteFile { rid, path })
            .await?;
        Self::file_result(reply, |r| matches!(r, Reply::Ok).then_some(()))
    }

    /// Processes, CPU and memory of the sandbox.
    pub async fn usage(&self) -> Result<UsageReport, SandboxError> {
        let reply = self.request(|rid| Request::Usage { rid }).await?;
        Self::file_result(reply, |r| match r {
            Reply::Usage(u) => Some(u),
            _ => None,
        })
    }

    /// Ends the sandbox: asks the agent to stop, and kills the helper if it lingers.
    pub async fn shutdown(&self) {
        let _ = self.send(&Request::Shutdown).await;
        let child = self.helper.lock().expect("helper").take();
        if let Some(mut child) = child {
            let waited =
                tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await;
            if waited.is_err() {
                let _ = child.kill().await;
            }
        }
        self.router
            .lock()
            .expect("router")
            .dead
            .get_or_insert_with(|| "the session was deleted".into());
    }

    /// The helper's pid (tests kill it to simulate a crash).
    pub fn helper_pid(&self) -> Option<u32> {
        self.helper
            .lock()
            .expect("helper")
            .as_ref()
            .and_then(|c| c.id())
    }
}

/// Spawns the helper of a long-lived sandbox (`spec` has `session` set: an agent or a
/// zygote) and sends it the spec; the sandbox's frames follow on the returned socket. Not
/// kill_on_drop: when the socket closes the helper tears the sandbox down and removes its
/// cgroups itself. An error is `what failed: why`.
pub(crate) async fn spawn_helper(
    config: &JailConfig,
    spec: &SandboxSpec,
) -> Result<(tokio::process::Child, UnixStream), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| fail("socketpair", &e))?;
    let child = tokio::process::Command::new(&config.helper)
        .arg(brig_jail::HELPER_ARG)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(OwnedFd::from(theirs)))
        .stderr(std::process::Stdio::inherit())
        .env_clear()
        .spawn()
        .map_err(|e| fail("spawn the helper", &e))?;
    ours.set_nonblocking(true).map_err(|e| fail("socket", &e))?;
    let mut stream = UnixStream::from_std(ours).map_err(|e| fail("socket", &e))?;
    let request = serde_json::json!({ "config": config, "spec": spec, "stream": true });
    let body = serde_json::to_vec(&request).map_err(|e| fail("encode", &e))?;
    stream
        .write_all(&brig_jail::frame::encode(b'S', &[&body]))
        .await
        .map_err(|e| fail("send the spec", &e))?;
    Ok((child, stream))
}

async fn write_frame(
    writer: &mut OwnedWriteHalf,
    tag: u8,
    payload: &[&[u8]],
) -> std::io::Result<()> {
    writer
        .write_all(&brig_jail::frame::encode(tag, payload))
        .await
}

/// The reader task: routes every frame from the helper until the socket closes.
async fn route(mut reader: tokio::net::unix::OwnedReadHalf, router: Arc<Mutex<Router>>) {
    let reason = loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break "the session's sandbox exited".to_string(),
            Err(e) => break format!("lost the session's sandbox: {e}"),
        };
        let mut r = router.lock().expect("router");
        match frame {
            (b'o', body) if body.len() >= 9 => {
                let id = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
                let data = body[9..].to_vec();
                let event = if body[8] == 1 {
                    ExecEvent::Stdout(data)
                } else {
                    ExecEvent::Stderr(data)
                };
                if let Some(tx) = r.execs.get(&id) {
                    let _ = tx.send(event);
                }
            }
            (b'r', body) => {
                if let Ok(report) = serde_json::from_slice::<ExecReport>(&body)
                    && let Some(tx) = r.execs.remove(&report.id)
                {
                    let _ = tx.send(ExecEvent::Done(report));
                }
            }
            (b'e', body) => {
                let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let rid = event["rid"].as_u64().unwrap_or(0);
                match event["event"].as_str() {
                    Some("display") => {
                        let id = event["id"].as_u64().unwrap_or(0);
                        if let Some(tx) = r.execs.get(&id) {
                            let _ = tx.send(ExecEvent::Display(event["data"].clone()));
                        }
                    }
                    Some("file_ok") => reply(&mut r, rid, Reply::Ok),
                    Some("file_list") => {
                        let entries =
                            serde_json::from_value(event["entries"].clone()).unwrap_or_default();
                        reply(&mut r, rid, Reply::List(entries));
                    }
                    Some("file_error") => reply(
                        &mut r,
                        rid,
                        Reply::Error(
                            event["kind"].as_str().unwrap_or("io").into(),
                            event["message"].as_str().unwrap_or("").into(),
                        ),
                    ),
                    Some("done") => {
                        // The agent refused an execution before it started.
                        let id = event["id"].as_u64().unwrap_or(0);
                        if let Some(tx) = r.execs.remove(&id) {
                            let _ = tx.send(ExecEvent::Failed(
                                event["error"].as_str().unwrap_or("refused").into(),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            (b'f', body) if body.len() >= 8 => {
                let rid = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
                reply(&mut r, rid, Reply::Bytes(body[8..].to_vec()));
            }
            (b'u', body) => {
                if let Ok(usage) = serde_json::from_slice::<UsageReport>(&body) {
                    reply(&mut r, usage.rid, Reply::Usage(usage));
                }
            }
            (b'x', body) => {
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                break value["message"]
                    .as_str()
                    .unwrap_or("the session's sandbox failed")
                    .to_string();
            }
            _ => {}
        }
    };
    let mut r = router.lock().expect("router");
    r.dead.get_or_insert(reason.clone());
    for (_, tx) in r.execs.drain() {
        let _ = tx.send(ExecEvent::Failed(reason.clone()));
    }
    r.replies.clear();
}

fn reply(router: &mut Router, rid: u64, reply: Reply) {
    if let Some(tx) = router.replies.remove(&rid) {
        let _ = tx.send(reply);
    }
}

/// Base64 for display data (figures arrive already encoded; this is for callers).
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
