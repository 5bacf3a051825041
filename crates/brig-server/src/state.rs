//! The server's shared state: one `Clone` struct of `Arc`s (store, engine, sessions, metrics,
//! limits), and the admission control every execution passes: a tenant's concurrency cap, a
//! bounded queue, and a fixed number of running slots on this node.

use brig_engine::Engine;
use brig_engine::session::SessionManager;
use brig_store::{AuditEvent, Store, now_ms};
use governor::{DefaultDirectRateLimiter, Quota};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::auth::Caller;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::live::LiveExecutions;
use crate::metrics::Metrics;
use crate::plans::Plan;

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The shared parts.
    pub inner: Arc<Shared>,
}

/// The shared parts of [`AppState`].
pub struct Shared {
    /// Settings.
    pub config: ServerConfig,
    /// Persistence.
    pub store: Store,
    /// One-shot runs.
    pub engine: Arc<Engine>,
    /// One-shot Python runs forked from warm zygotes, when enabled and usable here.
    pub zygotes: Option<Arc<brig_engine::zygote::ZygotePool>>,
    /// Sessions and pools.
    pub sessions: SessionManager,
    /// This node's id.
    pub node_id: String,
    /// Metrics.
    pub metrics: Metrics,
    /// Executions in flight.
    pub live: LiveExecutions,
    /// Audit events, written by a background task in order.
    pub audit: mpsc::Sender<AuditEvent>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// When the server started.
    pub started: Instant,
    /// The HTTP client that forwards requests to other nodes (see `forward`).
    pub forwarder: reqwest::Client,
    /// Sessions this node created and has not ended: id → (tenant, memory limit).
    pub sessions_here: Mutex<HashMap<String, (String, u64)>>,
    /// What the Piston and Judge0 routes and the compat queue share.
    pub compat: crate::compat::Compat,
    /// Authenticated keys, briefly cached (see `auth`).
    pub key_cache: Mutex<HashMap<String, (crate::auth::Caller, Instant)>>,
    rates: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    tenant_load: Mutex<HashMap<String, usize>>,
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    idempotent_in_flight: Mutex<HashSet<(String, String)>>,
}

/// A reserved place for one execution: a running slot, or a place in the queue. Dropping it
/// gives the place back.
pub struct Ticket {
    state: AppState,
    tenant_id: Option<String>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    queued: bool,
}

/// A running slot; released on drop.
pub struct Slot {
    ticket: Ticket,
}

impl Ticket {
    fn leave_queue(&mut self) {
        if std::mem::take(&mut self.queued) {
            self.state.inner.waiting.fetch_sub(1, Ordering::SeqCst);
            self.state.inner.metrics.queue_depth.dec();
        }
    }

    /// Waits for a running slot (at once if one was free), keeping it in the ticket; 503 if the
    /// server shuts down first. The queue worker waits here before it runs anything, so that a
    /// shutdown puts a row that never started back in the queue.
    pub async fn wait_slot(&mut self) -> Result<(), ApiError> {
        if self.permit.is_none() {
            let inner = self.state.inner.clone();
            let permit = tokio::select! {
                permit = inner.running.clone().acquire_owned() => permit.ok(),
                () = inner.shutdown.cancelled() => None,
            };
            self.leave_queue();
            self.permit =
                Some(permit.ok_or_else(|| ApiError::unavailable("the server is shutting down"))?);
        }
        Ok(())
    }

    /// Waits for a running slot (see [`Ticket::wait_slot`]) and takes it.
    pub async fn start(mut self) -> Result<Slot, ApiError> {
        self.wait_slot().await?;
        self.state.inner.metrics.running_executions.inc();
        Ok(Slot { ticket: self })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.leave_queue();
        if let Some(tenant_id) = self.tenant_id.take() {
            self.state.release_tenant(&tenant_id);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.ticket.state.inner.metrics.running_executions.dec();
    }
}

/// An idempotency key being served; released on drop.
pub struct IdempotencyClaim {
    state: AppState,
    key: (String, String),
}

impl Drop for IdempotencyClaim {
    fn drop(&mut self) {
        self.state
            .inner
            .idempotent_in_flight
            .lock()
            .expect("idempotency")
            .remove(&self.key);
    }
}

impl AppState {
    /// The state over its parts.
    pub fn new(
        config: ServerConfig,
        store: Store,
        engine: Arc<Engine>,
        zygotes: Option<Arc<brig_engine::zygote::ZygotePool>>,
        sessions: SessionManager,
        node_id: String,
        audit: mpsc::Sender<AuditEvent>,
    ) -> AppState {
        let running = Arc::new(Semaphore::new(config.max_running_executions));
        AppState {
            inner: Arc::new(Shared {
                config,
                store,
                engine,
                zygotes,
                sessions,
                node_id,
                metrics: Metrics::new(),
                live: LiveExecutions::default(),
                audit,
                shutdown: CancellationToken::new(),
                started: Instant::now(),
                forwarder: reqwest::Client::new(),
                sessions_here: Mutex::new(HashMap::new()),
                compat: crate::compat::Compat::default(),
                key_cache: Mutex::new(HashMap::new()),
                rates: Mutex::new(HashMap::new()),
                tenant_load: Mutex::new(HashMap::new()),
                running,
                waiting: AtomicUsize::new(0),
                idempotent_in_flight: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The plan named `name` (an unknown name falls back to the most restrictive one).
    pub fn plan(&self, name: &str) -> (String, Plan) {
        let plans = &self.inner.config.plans;
        match plans.get(name) {
            Some(plan) => (name.to_string(), plan.clone()),
            None => {
                let (name, plan) = plans
                    .iter()
                    .min_by_key(|(_, p)| p.max_memory_bytes)
                    .expect("validated: at least one plan");
                (name.clone(), plan.clone())
            }
        }
    }

    /// Takes one request from `tenant_id`'s rate; 429 with the wait when it is spent.
    pub fn check_rate(&self, tenant_id: &str, plan: &Plan) -> Result<(), ApiError> {
        let limiter = {
            let mut rates = self.inner.rates.lock().expect("rates");
            rates
                .entry(tenant_id.to_string())
                .or_insert_with(|| {
                    let per_second = NonZeroU32::new(plan.requests_per_second).expect("validated");
                    let burst = NonZeroU32::new(plan.burst.max(plan.requests_per_second))
                        .expect("non-zero");
                    Arc::new(DefaultDirectRateLimiter::direct(
                        Quota::per_second(per_second).allow_burst(burst),
                    ))
                })
                .clone()
        };
        limiter.check().map_err(|not_until| {
            self.inner
                .metrics
                .throttled
                .with_label_values(&["rate"])
                .inc();
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            ApiError::too_many(
                format!(
                    "tenant is over its rate of {} requests/s",
                    plan.requests_per_second
                ),
                wait.as_secs_f64().ceil() as u64,
            )
        })
    }

    fn release_tenant(&self, tenant_id: &str) {
        let mut load = self.inner.tenant_load.lock().expect("load");
        if let Some(n) = load.get_mut(tenant_id) {
            *n -= 1;
            if *n == 0 {
                load.remove(tenant_id);
            }
        }
    }

    /// Reserves a place for one execution of `tenant_id`, without waiting: within its plan's
    /// concurrency, and a running slot now or a place in the bounded queue. 429 when the
    /// tenant is at its cap or the queue is full; 503 when the server is shutting down.
    pub fn reserve(&self, tenant_id: &str, plan: &Plan) -> Result<Ticket, ApiError> {
        let inner = &self.inner;
        if inner.shutdown.is_cancelled() {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        {
            let mut load = inner.tenant_load.lock().expect("load");
            let n = load.entry(tenant_id.to_string()).or_insert(0);
            if *n >= plan.max_concurrent_executions {
                inner
                    .metrics
                    .throttled
                    .with_label_values(&["tenant_concurrency"])
                    .inc();
                return Err(ApiError::too_many(
                    format!(
                        "tenant already has {} executions running or queued (its plan's maximum)",
                        plan.max_concurrent_executions
                    ),
                    1,
                ));
            }
            *n += 1;
        }
        let mut ticket = Ticket {
            state: self.clone(),
            tenant_id: Some(tenant_id.to_string()),
            permit: None,
            queued: false,
        };
        match inner.running.clone().try_acquire_owned() {
            Ok(permit) => ticket.permit = Some(permit),
            Err(_) => {
                let waiting = inner.waiting.fetch_add(1, Ordering::SeqCst);
                ticket.queued = true;
                inner.metrics.queue_depth.inc();
                if waiting >= inner.config.max_queued_executions {
                    inner
                        .metrics
                        .throttled
                        .with_label_values(&["queue_full"])
                        .inc();
                    return Err(ApiError::too_many(
                        format!(
                            "the execution queue is full ({} waiting)",
                            inner.config.max_queued_executions
                        ),
                        1,
                    ));
                }
            }
        }
        Ok(ticket)
    }

    /// The sessions this node has: (id, tenant) pairs.
    pub fn sessions_here(&self) -> Vec<(String, String)> {
        self.inner
            .sessions_here
            .lock()
            .expect("sessions")
            .iter()
            .map(|(id, (tenant, _))| (id.clone(), tenant.clone()))
            .collect()
    }

    /// Executions waiting for a slot now.
    pub fn queue_depth(&self) -> usize {
        self.inner.waiting.load(Ordering::SeqCst)
    }

    /// Claims an idempotency key while its first request runs; a concurrent repeat gets 409.
    pub fn claim_idempotency(
        &self,
        tenant_id: &str,
        key: &str,
    ) -> Result<IdempotencyClaim, ApiError> {
        let key = (tenant_id.to_string(), key.to_string());
        if !self
            .inner
            .idempotent_in_flight
            .lock()
            .expect("idempotency")
            .insert(key.clone())
        {
            return Err(ApiError::conflict(
                "a request with this Idempotency-Key is still in progress",
            ));
        }
        Ok(IdempotencyClaim {
            state: self.clone(),
            key,
        })
    }

    /// Audits a state change made by `caller`.
    pub async fn audit_action(
        &self,
        caller: &Caller,
        action: &str,
        session_id: Option<&str>,
        execution_id: Option<&str>,
        detail: serde_json::Value,
    ) {
        self.audit(AuditEvent {
            id: None,
            at_ms: now_ms(),
            tenant_id: Some(caller.tenant_id.clone()),
            key_id: Some(caller.key_id.clone()),
            action: action.to_string(),
            session_id: session_id.map(str::to_string),
            execution_id: execution_id.map(str::to_string),
            language: None,
            code_sha256: None,
            status: None,
            http_status: None,
            wall_ms: None,
            cpu_ms: None,
            memory_peak_bytes: None,
            client_addr: caller.client_addr.clone(),
            detail,
        })
        .await;
    }

    /// Queues an audit event (written in order by the audit task; also logged as JSON).
    pub async fn audit(&self, event: AuditEvent) {
        tracing::info!(
            target: "brig::audit",
            action = %event.action,
            tenant = event.tenant_id.as_deref().unwrap_or(""),
            key = event.key_id.as_deref().unwrap_or(""),
            session = event.session_id.as_deref().unwrap_or(""),
            execution = event.execution_id.as_deref().unwrap_or(""),
            status = event.status.as_deref().unwrap_or(""),
            client = event.client_addr.as_deref().unwrap_or(""),
            "audit"
        );
        // Awaiting keeps back-pressure on; nothing is dropped.
        let _ = self.inner.audit.send(event).await;
    }
}
