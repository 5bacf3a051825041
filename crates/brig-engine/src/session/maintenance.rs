//! The session manager's background task: reaps sessions past their TTL or idle timeout and
//! keeps the warm pools filled (one builder per core), on tokio's clock so tests can pause it.

use std::sync::{Arc, Weak};
use tokio::time::Instant;

use super::{Inner, Session, SessionManager};

/// The background task: reap sessions, maintain pools; stops when the manager is dropped.
pub(super) async fn maintain(inner: Weak<Inner>) {
    let interval = match inner.upgrade() {
        Some(inner) => inner.config.maintenance_interval,
        None => return,
    };
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let now = Instant::now();
        // Reap.
        let expired: Vec<Arc<Session>> = {
            let mut sessions = strong.sessions.lock().expect("sessions");
            let ids: Vec<String> = sessions
                .values()
                .filter(|s| {
                    let idle = now.duration_since(*s.last_used.lock().expect("session"));
                    now.duration_since(s.created) >= s.ttl || idle >= s.idle_timeout
                })
                .map(|s| s.id.clone())
                .collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for session in expired {
            tokio::spawn(async move { session.sandbox.shutdown().await });
        }
        // Pools.
        for pool in strong.pools.values() {
            let (retired, missing) = pool.maintain(now);
            for sandbox in retired {
                tokio::spawn(async move { sandbox.shutdown().await });
            }
            // Builders: as many as the machine has cores (a build is mostly one interpreter
            // starting), each taking one missing sandbox at a time.
            let builders = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut building = pool.stats().building;
            while building < missing.min(builders) {
                building += 1;
                pool.add_building(1);
                let pool = pool.clone();
                let weak = inner.clone();
                tokio::spawn(async move {
                    let template = pool.template.clone();
                    loop {
                        let Some(inner) = weak.upgrade() else { break };
                        let started = std::time::Instant::now();
                        let built = SessionManager::build(&inner, &template, template.limits).await;
                        pool.record_build(started.elapsed(), built.is_ok());
                        match built {
                            Ok(sandbox) => pool.put(sandbox),
                            Err(_) => break,
                        }
                        if !pool.wants_more(Instant::now()) {
                            break;
                        }
                    }
                    pool.add_building(-1);
                });
            }
        }
        drop(strong);
        tokio::time::sleep(interval).await;
    }
}
