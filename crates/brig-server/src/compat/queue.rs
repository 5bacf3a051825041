//! The worker of the persisted queue: Judge0's `wait=false` submissions are rows `queued` in
//! the store with their validated request sealed beside them (see `brig_store::QueuedRun`).
//! One worker per node claims the oldest row (the store makes the claim safe across nodes),
//! then runs it through the same admission control as every other run: the tenant's
//! concurrency cap, the node's running slots, the plan's limits. A row whose tenant is at its
//! cap goes back to the queue and that tenant's rows are left out of claims for a moment, so
//! one busy tenant neither fails its submissions nor holds up the others'. A row is claimed
//! only when this node has a running slot for it, so what waits, waits in the database: a
//! submission queued on a node that dies stays queued and is picked up by the next worker to
//! look, that node's after its restart included.
//!
//! Shutdown: the worker stops claiming, and a row claimed but not yet started goes back to the
//! queue. Every claim and run is counted ([`InFlight`]) so that shutdown's drain waits for
//! runs already going as it waits for live executions: they finish and their result is
//! recorded, or, at the end of the grace period, they are recorded `cancelled` (Judge0's 13
//! Internal Error). The one-shot engine run has no cancel hook, so the sandbox itself is left
//! to end within its own wall-time limit; only its result is dropped.

use brig_store::QueuedRun;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

use super::judge0;
use crate::auth::Caller;
use crate::record::Recorder;
use crate::state::AppState;
use brig_store::now_ms;

/// How often an idle worker looks at the queue (rows queued by other nodes; this node's own
/// submissions wake it at once).
const POLL: Duration = Duration::from_millis(500);
/// How long a tenant found at its concurrency cap is left out of claims.
const TENANT_BUSY: Duration = Duration::from_millis(100);

/// Tenants found at their concurrency cap, and when.
type Busy = Arc<Mutex<HashMap<String, Instant>>>;

fn busy_tenants(busy: &Busy) -> Vec<String> {
    let mut busy = busy.lock().expect("busy");
    busy.retain(|_, at| at.elapsed() < TENANT_BUSY);
    busy.keys().cloned().collect()
}

/// One claim or run of the queue in flight on this node, counted in
/// [`super::Compat::in_flight`] while it lives.
pub struct InFlight {
    state: AppState,
}

impl InFlight {
    /// Counts one more; `None` (counting nothing) once the server is shutting down. Counting
    /// before looking at the shutdown token closes the race with `drain`, which cancels the
    /// token before it reads the count: either drain sees this one, or this one sees the
    /// cancellation.
    pub fn enter(state: &AppState) -> Option<InFlight> {
        let in_flight = InFlight {
            state: state.clone(),
        };
        state.inner.compat.in_flight.fetch_add(1, Ordering::SeqCst);
        (!state.inner.shutdown.is_cancelled()).then_some(in_flight)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state
            .inner
            .compat
            .in_flight
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// Claims and runs queued submissions until the server shuts down.
pub async fn work(state: AppState) {
    // At most as many claimed rows in flight as this node has running slots: a claimed row
    // waits here, not in the database, only while it can soon run.
    let slots = Arc::new(Semaphore::new(state.inner.config.max_running_executions));
    let shutdown = state.inner.shutdown.clone();
    let busy: Busy = Arc::default();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("never closed"),
            () = shutdown.cancelled() => return,
        };
        // Counted from before the claim, so that a row claimed as shutdown starts is waited
        // for (and put back) rather than left `running`.
        let Some(counted) = InFlight::enter(&state) else {
            return;
        };
        let skip = busy_tenants(&busy);
        match state
            .inner
            .store
            .claim_queued(&state.inner.node_id, now_ms(), &skip)
            .await
        {
            Ok(Some(run)) => {
                let state = state.clone();
                let busy = busy.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let _counted = counted;
                    run_claimed(&state, run, &busy).await;
                    // A slot and the tenant's room are free again.
                    state.inner.compat.wake.notify_one();
                });
            }
            Ok(None) => {
                drop((permit, counted));
                let wait = if skip.is_empty() { POLL } else { TENANT_BUSY };
                tokio::select! {
                    () = state.inner.compat.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => return,
                }
            }
            Err(e) => {
                drop((permit, counted));
                tracing::error!(error = %e, "cannot claim from the compat queue");
                tokio::select! {
                    () = tokio::time::sleep(POLL * 2) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }
}

/// The caller a queued row runs as: its tenant, with the plan the tenant has now.
async fn caller_for(state: &AppState, run: &QueuedRun) -> Result<Caller, String> {
    let tenant = state
        .inner
        .store
        .get_tenant(&run.tenant_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("its tenant is gone")?;
    let (plan_name, plan) = state.plan(&tenant.plan);
    Ok(Caller {
        key_id: judge0::stored_key(&run.request),
        tenant_id: tenant.id,
        tenant_name: tenant.name,
        plan_name,
        plan,
        admin: false,
        client_addr: None,
        secret: None,
    })
}

async fn run_claimed(state: &AppState, run: QueuedRun, busy: &Busy) {
    let caller = match caller_for(state, &run).await {
        Ok(caller) => caller,
        Err(why) => return fail(state, &run, None, &why).await,
    };
    let prepared = match judge0::reload(&run.request) {
        Ok(prepared) => prepared,
        Err(e) => return fail(state, &run, Some(&caller), &e.message).await,
    };
    let code = String::from_utf8_lossy(&prepared.source_code).into_owned();
    let admitted = match crate::routes::execute::Admitted::new(state, &caller, prepared.run.clone())
    {
        Ok(mut admitted) => {
            admitted.runs = prepared.number_of_runs.max(1);
            admitted
        }
        // E.g. the language became unavailable while the row waited.
        Err(e) => return fail(state, &run, Some(&caller), &e.message).await,
    };
    let mut ticket = match state.reserve(&caller.tenant_id, &caller.plan) {
        Ok(ticket) => ticket,
        // The tenant is at its cap (or the node is shutting down): back to the queue.
        Err(_) => {
            busy.lock()
                .expect("busy")
                .insert(caller.tenant_id.clone(), Instant::now());
            return requeue(state, &run).await;
        }
    };
    // A slot taken by other work first: a shutdown while waiting for it is not the
    // submission's failure, so the row goes back to the queue.
    if ticket.wait_slot().await.is_err() {
        return requeue(state, &run).await;
    }
    let recorder = Recorder::resume(
        state,
        &caller,
        &run.id,
        &admitted.language.language.id,
        &code,
        admitted.limits.memory_bytes,
    );
    tokio::select! {
        ran = admitted.run(state, ticket, &recorder) => {
            if let Err(e) = ran {
                tracing::warn!(token = %run.id, error = %e.message, "queued submission did not run");
            }
        }
        () = state.inner.compat.abort.cancelled() => {
            tracing::warn!(token = %run.id, "queued submission cancelled at the end of the shutdown grace period");
            let result = brig_core::RunResult::cancelled(
                brig_core::Tier::Namespace,
                "the server shut down before the submission finished",
            );
            if let Err(e) = recorder.finish(&result).await {
                tracing::error!(token = %run.id, error = %e.message, "cannot record a cancelled submission");
            }
        }
    }
    match judge0::load(state, &caller.tenant_id, &run.id).await {
        Ok(Some(submission)) => judge0::callback(state, &submission),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(token = %run.id, error = %e.message, "reading a finished submission")
        }
    }
}

async fn requeue(state: &AppState, run: &QueuedRun) {
    if let Err(e) = state.inner.store.requeue(&run.id).await {
        tracing::error!(token = %run.id, error = %e, "cannot put a submission back in the queue");
    }
}

/// Ends a claimed row that cannot run as `internal_error`, naming why.
async fn fail(state: &AppState, run: &QueuedRun, caller: Option<&Caller>, why: &str) {
    tracing::error!(token = %run.id, reason = why, "queued submission cannot run");
    let caller = caller.cloned().unwrap_or_else(|| Caller {
        key_id: judge0::stored_key(&run.request),
        tenant_id: run.tenant_id.clone(),
        tenant_name: String::new(),
        plan_name: String::new(),
        plan: crate::plans::Plan::default(),
        admin: false,
        client_addr: None,
        secret: None,
    });
    let recorder = Recorder::resume(state, &caller, &run.id, "", "", 0);
    let result = brig_core::RunResult::internal_error(
        brig_core::Tier::Namespace,
        format!("the queued submission cannot run: {why}"),
    );
    if let Err(e) = recorder.finish(&result).await {
        tracing::error!(token = %run.id, error = %e.message, "cannot record a failed submission");
    }
}
