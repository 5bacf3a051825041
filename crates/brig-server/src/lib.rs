//! brig-server: `brig serve`, the multi-tenant HTTP service over the engine (DESIGN.md
//! §Public contract).
//!
//! [`start`] turns a [`ServerConfig`] into a running server: the data dir, the encryption key
//! and node id kept there, the store (with crash recovery of whatever this node left
//! unfinished), the first admin key, the engine and its session manager, the background tasks
//! (audit writer, session bookkeeping), and the listener with graceful shutdown. The routes
//! live in [`routes`], one module per resource.

pub mod api;
pub mod auth;
pub mod compat;
pub mod config;
pub mod error;
pub mod forward;
pub mod live;
pub mod metrics;
pub mod plans;
pub mod record;
pub mod routes;
pub mod state;

pub use config::ServerConfig;
pub use state::AppState;

use base64::Engine as _;
use brig_engine::session::{PoolConfig, SessionManager, SessionsConfig, templates};
use brig_engine::{Engine, Languages, Launch};
use brig_store::{AuditEvent, Cipher, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use brig_store::now_ms;

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The data dir cannot be used.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database cannot be used.
    #[error(transparent)]
    Store(#[from] brig_store::StoreError),
    /// The languages file is wrong.
    #[error(transparent)]
    Languages(#[from] brig_engine::languages::LanguagesError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

fn data_dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a small file of the data dir, or creates it with `make()` (mode 0600).
fn kept_value(dir: &Path, name: &str, make: impl FnOnce() -> String) -> Result<String, StartError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(value) => Ok(value.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let value = make();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(data_dir_error(&path))?;
            file.write_all(format!("{value}\n").as_bytes())
                .map_err(data_dir_error(&path))?;
            Ok(value)
        }
        Err(e) => Err(data_dir_error(&path)(e)),
    }
}

/// A `KEYID:BASE64` key (32 bytes).
fn parse_key(text: &str) -> Result<(String, [u8; 32]), StartError> {
    let invalid = |why: &str| {
        StartError::Config(config::ConfigError::Invalid(format!(
            "encryption key: {why} (expected `KEYID:BASE64`, 32 bytes)"
        )))
    };
    let (id, key) = text.split_once(':').ok_or_else(|| invalid("no key id"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|_| invalid("not base64"))?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| invalid("not 32 bytes"))?;
    Ok((id.to_string(), key))
}

/// The cipher from the config, or from a key generated once into the data dir.
pub fn cipher_for(config: &ServerConfig) -> Result<Cipher, StartError> {
    let current = match &config.encryption_key {
        Some(text) => text.clone(),
        None => kept_value(&config.data_dir, "encryption.key", || {
            let mut key = [0u8; 32];
            rand::fill(&mut key);
            format!(
                "k1:{}",
                base64::engine::general_purpose::STANDARD.encode(key)
            )
        })?,
    };
    let (id, key) = parse_key(&current)?;
    let mut cipher = Cipher::new(&id, key);
    for old in &config.old_encryption_keys {
        let (id, key) = parse_key(old)?;
        cipher = cipher.with_old_key(&id, key);
    }
    Ok(cipher)
}

/// A started server: its address, and a handle to stop it.
pub struct Running {
    /// The bound address.
    pub addr: std::net::SocketAddr,
    /// The shared state.
    pub state: AppState,
    /// The admin key created on this start (shown once), if one was.
    pub new_admin_key: Option<String>,
    serve: tokio::task::JoinHandle<std::io::Result<()>>,
    drained: tokio::task::JoinHandle<()>,
    stop: tokio_util::sync::CancellationToken,
}

impl Running {
    /// Stops on SIGTERM or SIGINT (or [`Running::stop`]), then shuts down gracefully.
    pub async fn wait(self) -> std::io::Result<()> {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                () = stop.cancelled() => {}
            }
            stop.cancel();
        });
        let result = self
            .serve
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let _ = self.drained.await;
        finish_shutdown(&self.state).await;
        result
    }

    /// Asks the server to stop.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// Opens everything and starts listening.
pub async fn start(config: ServerConfig) -> Result<Running, StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(data_dir_error(&config.data_dir))?;
    let cipher = cipher_for(&config)?;
    let node_id = match &config.node_id {
        Some(id) => id.clone(),
        None => kept_value(&config.data_dir, "node-id", || {
            uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
        })?,
    };
    let store = Store::connect(&config.database_url(), cipher).await?;
    let recovery = store.recover_node(&node_id, now_ms()).await?;
    if recovery.executions_failed + recovery.sessions_ended > 0 {
        tracing::warn!(
            executions = recovery.executions_failed,
            sessions = recovery.sessions_ended,
            "recovered from an unclean stop: unfinished executions are internal_error (queued compat submissions stay queued), sessions ended"
        );
    }
    let new_admin_key = ensure_admin(&store, &config).await?;

    let languages = Languages::load(config.languages.as_deref())?;
    let mut jail = brig_jail::JailConfig::default();
    if let Some(helper) = &config.helper {
        jail.helper = helper.clone();
    }
    let engine = Arc::new(Engine {
        languages: languages.clone(),
        jail: jail.clone(),
        launch: Launch::Helper,
        wasm: std::sync::OnceLock::new(),
    });
    let pool = PoolConfig {
        target_size: config.pool_target_size,
        min_size: config.pool_min_size,
        ..PoolConfig::default()
    };
    let sessions = SessionManager::new(
        SessionsConfig {
            jail,
            pools: templates::all()
                .into_iter()
                .filter(|_| config.pool_target_size > 0)
                .map(|t| (t.name.to_string(), pool))
                .collect(),
            max_sessions_per_owner: config
                .plans
                .values()
                .map(|p| p.max_sessions)
                .max()
                .unwrap_or(1),
            ..SessionsConfig::default()
        },
        languages,
    );

    let zygotes = zygote_pool(&config, &engine);
    let (audit_tx, audit_rx) = mpsc::channel(1024);
    let state = AppState::new(
        config,
        store.clone(),
        engine,
        zygotes,
        sessions,
        node_id,
        audit_tx,
    );
    tokio::spawn(write_audit(store, audit_rx));
    tokio::spawn(track_sessions(state.clone()));
    tokio::spawn(purge_idempotency(state.clone()));
    compat::start(&state);

    let addr = state.inner.config.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr, source })?;
    // Other nodes sharing the database reach this one here (see `forward`).
    let url = state
        .inner
        .config
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    if addr.ip().is_unspecified() && state.inner.config.advertise_url.is_none() {
        tracing::warn!(
            "listening on {addr} without `advertise_url`: other nodes cannot forward requests here"
        );
    }
    state
        .inner
        .store
        .heartbeat_node(&state.inner.node_id, &url, now_ms())
        .await?;
    tokio::spawn(forward::heartbeat(state.clone(), url));
    let stop = tokio_util::sync::CancellationToken::new();
    let app =
        routes::app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // On stop: the listener closes at once (axum's graceful shutdown) while requests in flight
    // run on; the drain gives running executions the grace period, then cancels them, so those
    // requests end too.
    let stop_signal = stop.clone();
    let shutdown_state = state.clone();
    let serve = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                stop_signal.cancelled().await;
                shutdown_state.inner.shutdown.cancel();
            })
            .await
    });
    let drain_state = state.clone();
    let drain_signal = stop.clone();
    let drained = tokio::spawn(async move {
        drain_signal.cancelled().await;
        drain(&drain_state).await;
    });
    tracing::info!("listening on http://{addr}");
    Ok(Running {
        addr,
        state,
        new_admin_key,
        serve,
        drained,
        stop,
    })
}

/// Makes sure an admin key exists: `admin_key` from the config, or a new one on first start.
async fn ensure_admin(store: &Store, config: &ServerConfig) -> Result<Option<String>, StartError> {
    let tenant = match store.tenant_by_name("admin").await? {
        Some(tenant) => tenant,
        None => {
            let plan = if config.plans.contains_key("premium") {
                "premium".to_string()
            } else {
                config.plans.keys().next().cloned().unwrap_or_default()
            };
            store.create_tenant("admin", &plan).await?
        }
    };
    if let Some(secret) = &config.admin_key {
        store.ensure_key(&tenant.id, true, secret).await?;
        return Ok(None);
    }
    if store.count_admin_keys().await? > 0 {
        return Ok(None);
    }
    let (_, secret) = store.create_key(&tenant.id, true).await?;
    Ok(Some(secret))
}

/// Writes audit events in order.
async fn write_audit(store: Store, mut events: mpsc::Receiver<AuditEvent>) {
    while let Some(event) = events.recv().await {
        if let Err(e) = store.record_audit(&event).await {
            tracing::error!(error = %e, action = %event.action, "cannot write an audit event");
        }
    }
}

/// Records the end of sessions the engine reaped (TTL, idle timeout) or whose sandbox died.
async fn track_sessions(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if state.inner.shutdown.is_cancelled() {
            return;
        }
        let here = state.sessions_here();
        for (id, tenant) in here {
            match state.inner.sessions.info(&tenant, &id) {
                Err(_) => state.session_ended(&id, "expired").await,
                Ok(info) if info.status != "active" => {
                    let _ = state.inner.sessions.delete(&tenant, &id).await;
                    let reason = info.status.trim_start_matches("ended: ").to_string();
                    state.session_ended(&id, &reason).await;
                }
                Ok(_) => {}
            }
        }
    }
}

/// How long a stored `Idempotency-Key` answer is replayed.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// Forgets stored idempotent answers older than [`IDEMPOTENCY_TTL`], hourly (the table would
/// otherwise grow without bound).
async fn purge_idempotency(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if state.inner.shutdown.is_cancelled() {
            return;
        }
        let before = now_ms() - IDEMPOTENCY_TTL.as_millis() as i64;
        match state.inner.store.idempotency_purge(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "forgot old idempotent answers"),
            Err(e) => tracing::warn!(error = %e, "cannot purge idempotent answers"),
        }
    }
}

/// Shutdown, first part: refuse new executions (the compat queue's worker claims nothing
/// more), let running ones finish within the grace period, session executions and queued
/// Judge0 submissions alike, then cancel the rest (their final state is recorded by their own
/// tasks).
async fn drain(state: &AppState) {
    state.inner.shutdown.cancel();
    let live = &state.inner.live;
    let queue = &state.inner.compat;
    let busy = || !live.unfinished().is_empty() || queue.in_flight() > 0;
    let grace = Duration::from_millis(state.inner.config.shutdown_grace_ms);
    let deadline = tokio::time::Instant::now() + grace;
    while busy() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !busy() {
        return;
    }
    let left = live.unfinished();
    tracing::warn!(
        executions = left.len(),
        queued_submissions = queue.in_flight(),
        "cancelling executions still running at shutdown"
    );
    for (_, live) in &left {
        live.cancel.cancel();
    }
    queue.abort.cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while busy() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Shutdown, last part: the sessions of this node end (their sandboxes go with the process).
async fn finish_shutdown(state: &AppState) {
    let here = state.sessions_here();
    for (id, tenant) in here {
        let _ = state.inner.sessions.delete(&tenant, &id).await;
        state.session_ended(&id, "server stopped").await;
    }
    tracing::info!("stopped");
}

/// The zygote pool for one-shot Python runs: `config.zygotes` of the `python-minimal` template,
/// started in the background; none when disabled, or when this host cannot run the namespace
/// tier or Python (one-shot runs then start fresh interpreters, as they would anyway).
fn zygote_pool(
    config: &ServerConfig,
    engine: &Arc<Engine>,
) -> Option<Arc<brig_engine::zygote::ZygotePool>> {
    if config.zygotes == 0 {
        return None;
    }
    if let Err(reason) = brig_jail::probe::namespace_tier_usable(&engine.jail) {
        tracing::warn!(%reason, "no zygotes: the namespace tier is not usable here");
        return None;
    }
    let template = templates::find("python-minimal").expect("a built-in template");
    match brig_engine::zygote::ZygotePool::new(
        engine,
        engine.jail.clone(),
        &template,
        config.zygotes,
    ) {
        Ok(pool) => {
            let pool = Arc::new(pool);
            let warming = pool.clone();
            let count = config.zygotes;
            tokio::spawn(async move {
                if let Err(e) = warming.warm(count).await {
                    tracing::warn!(error = %e, "zygotes did not start; they are retried per run");
                }
            });
            Some(pool)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no zygotes");
            None
        }
    }
}
