//! Executions in flight on this node: their events so far (for Server-Sent Events, replayed
//! from the start for a late subscriber) and their cancel token. A finished execution stays a
//! short while for subscribers that come late, then only its persisted record remains.

use brig_engine::session::StreamEvent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One execution in flight.
pub struct LiveExecution {
    /// Its tenant (no other tenant may see it).
    pub tenant_id: String,
    /// Fields the `result` event carries besides the result object (`id`, `session_id`), as
    /// the stored result does.
    pub result_fields: serde_json::Map<String, serde_json::Value>,
    events: Mutex<Vec<StreamEvent>>,
    /// Count of events so far; `done` is signalled by the sender side closing.
    changed: watch::Sender<usize>,
    /// Cancels it.
    pub cancel: CancellationToken,
}

impl LiveExecution {
    /// Appends an event and wakes subscribers.
    pub fn push(&self, event: StreamEvent) {
        let mut events = self.events.lock().expect("events");
        events.push(event);
        let n = events.len();
        drop(events);
        self.changed.send_replace(n);
    }

    /// Events from index `from` on.
    pub fn since(&self, from: usize) -> Vec<StreamEvent> {
        let events = self.events.lock().expect("events");
        events.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    /// Whether the final result is in.
    pub fn finished(&self) -> bool {
        matches!(
            self.events.lock().expect("events").last(),
            Some(StreamEvent::Result { .. })
        )
    }

    /// A receiver that changes with every event.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.changed.subscribe()
    }
}

/// The executions in flight, by id.
#[derive(Default, Clone)]
pub struct LiveExecutions {
    map: Arc<Mutex<HashMap<String, Arc<LiveExecution>>>>,
}

impl LiveExecutions {
    /// Registers a new execution.
    pub fn start(
        &self,
        id: &str,
        tenant_id: &str,
        session_id: Option<&str>,
        cancel: CancellationToken,
    ) -> Arc<LiveExecution> {
        let mut result_fields = serde_json::Map::new();
        result_fields.insert("id".into(), id.into());
        if let Some(session_id) = session_id {
            result_fields.insert("session_id".into(), session_id.into());
        }
        let live = Arc::new(LiveExecution {
            tenant_id: tenant_id.to_string(),
            result_fields,
            events: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
            cancel,
        });
        self.map
            .lock()
            .expect("live")
            .insert(id.to_string(), live.clone());
        live
    }

    /// The execution `id` of `tenant_id`, if in flight here.
    pub fn get(&self, tenant_id: &str, id: &str) -> Option<Arc<LiveExecution>> {
        self.map
            .lock()
            .expect("live")
            .get(id)
            .filter(|l| l.tenant_id == tenant_id)
            .cloned()
    }

    /// Forgets `id` after `linger` (late subscribers still get the events meanwhile).
    pub fn retire(&self, id: &str, linger: Duration) {
        let map = self.map.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(linger).await;
            map.lock().expect("live").remove(&id);
        });
    }

    /// Every execution not finished yet.
    pub fn unfinished(&self) -> Vec<(String, Arc<LiveExecution>)> {
        self.map
            .lock()
            .expect("live")
            .iter()
            .filter(|(_, l)| !l.finished())
            .map(|(id, l)| (id.clone(), l.clone()))
            .collect()
    }
}
