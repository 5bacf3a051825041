//! Sessions: long-lived sandboxes that keep state (files, processes, a Python kernel's
//! globals), executions in them with their own limits and verdicts, warm pools, and reaping.
//!
//! [`SessionManager`] is the engine's API for it (the HTTP server puts it on the wire). It is
//! async (tokio); a background task owned by the manager refills the pools and reaps sessions
//! past their TTL or idle timeout, on tokio's clock (so tests can pause it).

mod execution;
mod maintenance;
pub mod pool;
pub mod sandbox;
pub mod templates;

use brig_core::{DisplayOutput, LimitOverrides, Limits, RunResult};
use brig_jail::agent::KernelSpec;
use brig_jail::spec::{SessionSpec, SpecFile};
use brig_jail::{JailConfig, SandboxSpec};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::languages::Languages;
pub use pool::{Pool, PoolConfig, PoolStats};
pub use sandbox::{ExecEvent, Sandbox, SandboxError};
pub use templates::Template;

/// A request to create a session.
#[derive(Debug, Clone, Default)]
pub struct CreateSession {
    /// Who owns it (a tenant); the per-owner cap applies.
    pub owner: String,
    /// Template name (`python`, `python-minimal`, `bash`), or none to derive it from `language`.
    pub template: Option<String>,
    /// Language (`python`, `bash`), when no template is named.
    pub language: Option<String>,
    /// Limits over the template's.
    pub limits: LimitOverrides,
    /// Time to live.
    pub ttl: Option<Duration>,
    /// How long it may stay unused.
    pub idle_timeout: Option<Duration>,
    /// Caller's labels.
    pub metadata: BTreeMap<String, String>,
}

/// What the engine knows of a session.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionInfo {
    /// Its id.
    pub id: String,
    /// Its owner.
    pub owner: String,
    /// Its template.
    pub template: String,
    /// `active`, or `ended` with the reason.
    pub status: String,
    /// Seconds since creation.
    pub age_s: u64,
    /// Time to live, in seconds.
    pub ttl_s: u64,
    /// Idle timeout, in seconds.
    pub idle_timeout_s: u64,
    /// Caller's labels.
    pub metadata: BTreeMap<String, String>,
    /// Whether it came from a warm pool.
    pub from_pool: bool,
}

/// An execution request in a session.
#[derive(Debug, Clone, Default)]
pub struct Execute {
    /// The code (a cell for Python; a script for other languages).
    pub code: String,
    /// Its language (default: the session's).
    pub language: Option<String>,
    /// Stdin (commands only; a cell reads EOF).
    pub stdin: Vec<u8>,
    /// Wall-clock limit of this execution.
    pub timeout_ms: Option<u64>,
    /// Other limits of this execution (time and output; memory and pids are the session's).
    pub limits: LimitOverrides,
    /// Cancels the execution: before it starts it never runs, while it runs it is killed; either
    /// way its status is `cancelled`.
    pub cancel: Option<CancellationToken>,
}

/// An event of a running execution, for streaming.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// Standard output text.
    Stdout {
        /// The text.
        text: String,
    },
    /// Standard error text.
    Stderr {
        /// The text.
        text: String,
    },
    /// Display data.
    Display {
        /// The output.
        output: DisplayOutput,
    },
    /// The final result (always last).
    Result {
        /// The result object.
        result: Box<RunResult>,
    },
}

/// Errors a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No such session (or not the caller's).
    #[error("no session `{0}`")]
    NotFound(String),
    /// Unknown template or language.
    #[error("{0}")]
    Invalid(String),
    /// The owner has too many sessions.
    #[error("owner `{owner}` already has {limit} sessions (the maximum)")]
    TooMany {
        /// The owner.
        owner: String,
        /// The cap.
        limit: usize,
    },
    /// The session's sandbox is gone or failed.
    #[error("{0}")]
    Sandbox(#[from] SandboxError),
}

/// Settings of the session manager.
#[derive(Debug, Clone)]
pub struct SessionsConfig {
    /// The jail's host settings (the helper binary...).
    pub jail: JailConfig,
    /// Pools per template name; a template without an entry has no pool.
    pub pools: HashMap<String, PoolConfig>,
    /// Sessions one owner may have at once.
    pub max_sessions_per_owner: usize,
    /// Default time to live.
    pub default_ttl: Duration,
    /// Default idle timeout.
    pub default_idle_timeout: Duration,
    /// How often the pools are maintained and sessions reaped.
    pub maintenance_interval: Duration,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        let pools = templates::all()
            .into_iter()
            .map(|t| (t.name.to_string(), PoolConfig::default()))
            .collect();
        SessionsConfig {
            jail: JailConfig::default(),
            pools,
            max_sessions_per_owner: 20,
            default_ttl: Duration::from_secs(3600),
            default_idle_timeout: Duration::from_secs(600),
            maintenance_interval: Duration::from_secs(1),
        }
    }
}

struct Session {
    id: String,
    owner: String,
    template: Template,
    metadata: BTreeMap<String, String>,
    created: Instant,
    ttl: Duration,
    idle_timeout: Duration,
    last_used: Mutex<Instant>,
    sandbox: Arc<Sandbox>,
    exec_lock: tokio::sync::Mutex<()>,
    from_pool: bool,
}

impl Session {
    fn info(&self) -> SessionInfo {
        SessionInfo {
            id: self.id.clone(),
            owner: self.owner.clone(),
            template: self.template.name.to_string(),
            status: match self.sandbox.dead() {
                None => "active".into(),
                Some(reason) => format!("ended: {reason}"),
            },
            age_s: self.created.elapsed().as_secs(),
            ttl_s: self.ttl.as_secs(),
            idle_timeout_s: self.idle_timeout.as_secs(),
            metadata: self.metadata.clone(),
            from_pool: self.from_pool,
        }
    }

    fn touch(&self) {
        *self.last_used.lock().expect("session") = Instant::now();
    }
}

struct Inner {
    config: SessionsConfig,
    languages: Languages,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    pools: HashMap<String, Arc<Pool>>,
}

/// Sessions and pools. Cloning shares them; the background task stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

fn kernel_spec(template: &Template) -> Option<KernelSpec> {
    let preload = template.preload?;
    let mut argv: Vec<String> = ["/usr/bin/python3", "-I", "-u", "/etc/brig/brig_kernel.py"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !preload.is_empty() {
        argv.push("--preload".into());
        argv.push(preload.join(","));
    }
    Some(KernelSpec {
        argv,
        ready_timeout_ms: 60_000,
        interrupt_grace_ms: 2_000,
    })
}

/// The sandbox spec of a session built from `template` with `limits`.
pub fn session_spec(template: &Template, limits: Limits, languages: &Languages) -> SandboxSpec {
    let mut spec = SandboxSpec::command(&["/bin/true"]);
    spec.steps.clear();
    spec.session = Some(SessionSpec {
        limits,
        kernel: kernel_spec(template),
        zygote: None,
    });
    spec.system_files.push(SpecFile {
        path: "brig_kernel.py".into(),
        content: templates::KERNEL_SOURCE.as_bytes().to_vec(),
        mode: 0o644,
    });
    // The interpreted languages a session may run, with their read-only extras.
    for id in ["python", "javascript", "perl", "bash"] {
        if let Some(language) = languages.find(id).filter(|l| l.unavailable.is_none()) {
            for mount in &language.language.ro_mounts {
                let path = std::path::PathBuf::from(mount);
                if path.exists() && !spec.ro_mounts.contains(&path) {
                    spec.ro_mounts.push(path);
                }
            }
        }
    }
    spec
}

impl SessionManager {
    /// A manager; starts its background task on the current tokio runtime.
    pub fn new(config: SessionsConfig, languages: Languages) -> SessionManager {
        // Whatever a crashed predecessor left behind goes first.
        brig_jail::run::sweep_stale(&config.jail);
        let pools = templates::all()
            .into_iter()
            .filter_map(|t| {
                let pool_config = *config.pools.get(t.name)?;
                Some((t.name.to_string(), Arc::new(Pool::new(t, pool_config))))
            })
            .collect();
        let manager = SessionManager {
            inner: Arc::new(Inner {
                config,
                languages,
                sessions: Mutex::new(HashMap::new()),
                pools,
            }),
        };
        let weak = Arc::downgrade(&manager.inner);
        tokio::spawn(maintenance::maintain(weak));
        manager
    }

    async fn build(
        inner: &Inner,
        template: &Template,
        limits: Limits,
    ) -> Result<Arc<Sandbox>, SandboxError> {
        let spec = session_spec(template, limits, &inner.languages);
        Ok(Arc::new(Sandbox::start(&inner.config.jail, &spec).await?))
    }

    /// A ready sandbox for `template`: from its pool when the limits are the template's own
    /// (a hit), else built now (a miss).
    async fn obtain(
        &self,
        template: &Template,
        limits: Limits,
    ) -> Result<(Arc<Sandbox>, bool), SandboxError> {
        let pool = self
            .inner
            .pools
            .get(template.name)
            .filter(|_| limits == template.limits);
        if let Some(pool) = pool
            && let Some(sandbox) = pool.take()
        {
            return Ok((sandbox, true));
        }
        let started = std::time::Instant::now();
        let built = Self::build(&self.inner, template, limits).await;
        if let Some(pool) = pool {
            pool.record_build(started.elapsed(), built.is_ok());
        }
        Ok((built?, false))
    }

    fn resolve_template(request: &CreateSession) -> Result<Template, SessionError> {
        match (&request.template, &request.language) {
            (Some(name), _) => templates::find(name).ok_or_else(|| {
                SessionError::Invalid(format!(
                    "unknown template `{name}` (python, python-minimal, bash)"
                ))
            }),
            (None, Some(language)) => templates::for_language(language).ok_or_else(|| {
                SessionError::Invalid(format!(
                    "no session template for language `{language}` (python, bash)"
                ))
            }),
            (None, None) => Ok(templates::find("python").expect("built-in template")),
        }
    }

    /// Creates a session.
    pub async fn create(&self, request: CreateSession) -> Result<SessionInfo, SessionError> {
        let template = Self::resolve_template(&request)?;
        let limits = template.limits.with(&request.limits);
        limits.validate().map_err(|e| {
            SessionError::Invalid(
                e.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let owned = self
            .inner
            .sessions
            .lock()
            .expect("sessions")
            .values()
            .filter(|s| s.owner == request.owner)
            .count();
        let cap = self.inner.config.max_sessions_per_owner;
        if owned >= cap {
            return Err(SessionError::TooMany {
                owner: request.owner,
                limit: cap,
            });
        }
        let (sandbox, from_pool) = self.obtain(&template, limits).await?;
        let session = Arc::new(Session {
            id: uuid::Uuid::new_v4().simple().to_string(),
            owner: request.owner,
            template,
            metadata: request.metadata,
            created: Instant::now(),
            ttl: request.ttl.unwrap_or(self.inner.config.default_ttl),
            idle_timeout: request
                .idle_timeout
                .unwrap_or(self.inner.config.default_idle_timeout),
            last_used: Mutex::new(Instant::now()),
            sandbox,
            exec_lock: tokio::sync::Mutex::new(()),
            from_pool,
        });
        let info = session.info();
        self.inner
            .sessions
            .lock()
            .expect("sessions")
            .insert(session.id.clone(), session);
        Ok(info)
    }

    fn get(&self, owner: &str, id: &str) -> Result<Arc<Session>, SessionError> {
        self.inner
            .sessions
            .lock()
            .expect("sessions")
            .get(id)
            .filter(|s| s.owner == owner)
            .cloned()
            .ok_or_else(|| SessionError::NotFound(id.to_string()))
    }

    /// Marks a session as used now (a client keeping it alive without executing anything).
    pub fn keep_alive(&self, owner: &str, id: &str) -> Result<(), SessionError> {
        self.get(owner, id)?.touch();
        Ok(())
    }

    /// A session's info.
    pub fn info(&self, owner: &str, id: &str) -> Result<SessionInfo, SessionError> {
        Ok(self.get(owner, id)?.info())
    }

    /// The owner's sessions.
    pub fn list(&self, owner: &str) -> Vec<SessionInfo> {
        let mut list: Vec<SessionInfo> = self
            .inner
            .sessions
            .lock()
            .expect("sessions")
            .values()
            .filter(|s| s.owner == owner)
            .map(|s| s.info())
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Deletes a session (its sandbox and everything in it).
    pub async fn delete(&self, owner: &str, id: &str) -> Result<(), SessionError> {
        let session = self.get(owner, id)?;
        self.inner.sessions.lock().expect("sessions").remove(id);
        session.sandbox.shutdown().await;
        Ok(())
    }

    /// Pool counters, per template.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        let mut stats: Vec<PoolStats> = self.inner.pools.values().map(|p| p.stats()).collect();
        stats.sort_by(|a, b| a.template.cmp(&b.template));
        stats
    }

    /// Live sessions.
    pub fn active(&self) -> usize {
        self.inner.sessions.lock().expect("sessions").len()
    }

    /// Starts an execution; returns its events, ending with `StreamEvent::Result`.
    pub async fn execute_stream(
        &self,
        owner: &str,
        id: &str,
        request: Execute,
    ) -> Result<mpsc::UnboundedReceiver<StreamEvent>, SessionError> {
        let session = self.get(owner, id)?;
        session.touch();
        let (tx, rx) = mpsc::unbounded_channel();
        let languages = self.inner.languages.clone();
        tokio::spawn(async move {
            // A cancelled execution still waiting for its turn never runs.
            let cancel = request.cancel.clone().unwrap_or_default();
            let _turn = tokio::select! {
                turn = session.exec_lock.lock() => turn,
                () = cancel.cancelled() => {
                    let _ = tx.send(StreamEvent::Result {
                        result: Box::new(execution::cancelled_before_start()),
                    });
                    return;
                }
            };
            let result = execution::run_in(
                &session.sandbox,
                &session.template,
                &languages,
                request,
                Some(&tx),
            )
            .await;
            session.touch();
            let _ = tx.send(StreamEvent::Result {
                result: Box::new(result),
            });
        });
        Ok(rx)
    }

    /// Runs an execution to its end.
    pub async fn execute(
        &self,
        owner: &str,
        id: &str,
        request: Execute,
    ) -> Result<RunResult, SessionError> {
        let mut events = self.execute_stream(owner, id, request).await?;
        while let Some(event) = events.recv().await {
            if let StreamEvent::Result { result } = event {
                return Ok(*result);
            }
        }
        Err(SessionError::Sandbox(SandboxError::Gone(
            "the execution ended without a result".into(),
        )))
    }

    /// Writes a file in a session's work dir.
    pub async fn write_file(
        &self,
        owner: &str,
        id: &str,
        path: &str,
        content: Vec<u8>,
    ) -> Result<(), SessionError> {
        let session = self.get(owner, id)?;
        session.touch();
        Ok(session.sandbox.write_file(path, content, 0o644).await?)
    }

    /// Reads a file of a session's work dir.
    pub async fn read_file(
        &self,
        owner: &str,
        id: &str,
        path: &str,
    ) -> Result<Vec<u8>, SessionError> {
        let session = self.get(owner, id)?;
        session.touch();
        Ok(session.sandbox.read_file(path).await?)
    }

    /// Lists a directory of a session's work dir.
    pub async fn list_files(
        &self,
        owner: &str,
        id: &str,
        path: &str,
    ) -> Result<Vec<brig_jail::agent::FileEntry>, SessionError> {
        let session = self.get(owner, id)?;
        session.touch();
        Ok(session.sandbox.list_files(path).await?)
    }

    /// Deletes a file or directory of a session's work dir.
    pub async fn delete_file(&self, owner: &str, id: &str, path: &str) -> Result<(), SessionError> {
        let session = self.get(owner, id)?;
        session.touch();
        Ok(session.sandbox.delete_file(path).await?)
    }

    /// Processes, CPU and memory of a session.
    pub async fn usage(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<brig_jail::agent::UsageReport, SessionError> {
        Ok(self.get(owner, id)?.sandbox.usage().await?)
    }

    /// A one-shot run through the pool: a single-use sandbox of `template`, destroyed after.
    pub async fn run_once(
        &self,
        template: &str,
        request: Execute,
    ) -> Result<RunResult, SessionError> {
        let template = templates::find(template)
            .ok_or_else(|| SessionError::Invalid(format!("unknown template `{template}`")))?;
        let (sandbox, _) = self.obtain(&template, template.limits).await?;
        let result =
            execution::run_in(&sandbox, &template, &self.inner.languages, request, None).await;
        tokio::spawn(async move { sandbox.shutdown().await });
        Ok(result)
    }

    /// The helper pid of a session's sandbox (for tests that simulate a crash).
    pub fn helper_pid(&self, owner: &str, id: &str) -> Option<u32> {
        self.get(owner, id).ok()?.sandbox.helper_pid()
    }
}
