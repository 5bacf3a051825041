//! Warm pools: per template, sandboxes built ahead of time (namespaces set up, agent serving,
//! kernel started and its modules imported) so that creating a session, or a one-shot run,
//! takes a ready one instead of building it.
//!
//! A background task keeps each pool at `target_size` while it is in demand; after
//! `max_idle_time` without a hit the pool shrinks to `min_size`, and entries idle that long are
//! recycled (replaced by fresh ones) so that no sandbox waits forever. Entries are single-use:
//! a taken sandbox never returns to the pool.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

use super::sandbox::Sandbox;
use super::templates::Template;

/// How big a pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Ready sandboxes kept while the pool is in demand.
    pub target_size: usize,
    /// Ready sandboxes kept when it is not.
    pub min_size: usize,
    /// How long a ready sandbox, or the pool itself, may go unused.
    pub max_idle_time: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            target_size: 10,
            min_size: 5,
            max_idle_time: Duration::from_secs(300),
        }
    }
}

/// A pool's counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PoolStats {
    /// The template.
    pub template: String,
    /// Ready sandboxes now.
    pub size: usize,
    /// Sandboxes being built now.
    pub building: usize,
    /// Takes served from the pool.
    pub hits: u64,
    /// Takes that had to build.
    pub misses: u64,
    /// Sandboxes built (for the pool or on a miss).
    pub builds: u64,
    /// Builds that failed.
    pub build_failures: u64,
    /// Idle sandboxes recycled.
    pub recycled: u64,
    /// Mean build time, in milliseconds.
    pub avg_build_ms: f64,
    /// Last build time, in milliseconds.
    pub last_build_ms: f64,
}

/// One template's pool.
pub struct Pool {
    /// The template.
    pub template: Template,
    /// Its sizes.
    pub config: PoolConfig,
    ready: Mutex<VecDeque<(Arc<Sandbox>, Instant)>>,
    stats: Mutex<PoolStats>,
    last_hit: Mutex<Option<Instant>>,
}

impl Pool {
    /// An empty pool.
    pub fn new(template: Template, config: PoolConfig) -> Pool {
        let stats = PoolStats {
            template: template.name.to_string(),
            ..PoolStats::default()
        };
        Pool {
            template,
            config,
            ready: Mutex::new(VecDeque::new()),
            stats: Mutex::new(stats),
            // A new pool counts as in demand: it fills to its target first.
            last_hit: Mutex::new(Some(Instant::now())),
        }
    }

    /// A ready sandbox, if there is one (a hit), else `None` (a miss: the caller builds).
    pub fn take(&self) -> Option<Arc<Sandbox>> {
        *self.last_hit.lock().expect("pool") = Some(Instant::now());
        let mut ready = self.ready.lock().expect("pool");
        // A sandbox that died while waiting is no use.
        while let Some((sandbox, _)) = ready.pop_front() {
            if sandbox.dead().is_none() {
                self.stats.lock().expect("pool").hits += 1;
                return Some(sandbox);
            }
        }
        self.stats.lock().expect("pool").misses += 1;
        None
    }

    /// Records a build's duration and outcome.
    pub fn record_build(&self, elapsed: Duration, ok: bool) {
        let mut stats = self.stats.lock().expect("pool");
        if ok {
            let ms = elapsed.as_secs_f64() * 1000.0;
            stats.avg_build_ms =
                (stats.avg_build_ms * stats.builds as f64 + ms) / (stats.builds + 1) as f64;
            stats.last_build_ms = ms;
            stats.builds += 1;
        } else {
            stats.build_failures += 1;
        }
    }

    /// The counters now.
    pub fn stats(&self) -> PoolStats {
        let mut stats = self.stats.lock().expect("pool").clone();
        stats.size = self.ready.lock().expect("pool").len();
        stats
    }

    /// Whether a builder that just finished should build another: the ready sandboxes plus the
    /// other builds under way are still short of what the pool wants.
    pub fn wants_more(&self, now: Instant) -> bool {
        let others = self.stats.lock().expect("pool").building.saturating_sub(1);
        self.ready.lock().expect("pool").len() + others < self.desired(now)
    }

    /// Counts builds starting (+1) and ending (-1).
    pub fn add_building(&self, delta: isize) {
        let mut stats = self.stats.lock().expect("pool");
        stats.building = stats.building.saturating_add_signed(delta);
    }

    /// How many ready sandboxes the pool wants now.
    fn desired(&self, now: Instant) -> usize {
        let in_demand = self
            .last_hit
            .lock()
            .expect("pool")
            .is_some_and(|at| now.duration_since(at) < self.config.max_idle_time);
        if in_demand {
            self.config.target_size
        } else {
            self.config.min_size
        }
    }

    /// Removes what is dead, surplus or idle too long; returns them for shutdown, and how many
    /// sandboxes to build.
    pub fn maintain(&self, now: Instant) -> (Vec<Arc<Sandbox>>, usize) {
        let desired = self.desired(now);
        let mut ready = self.ready.lock().expect("pool");
        let mut retired = Vec::new();
        let mut kept = VecDeque::new();
        for (sandbox, since) in ready.drain(..) {
            let stale = now.duration_since(since) >= self.config.max_idle_time;
            if sandbox.dead().is_some() || stale || kept.len() >= desired {
                if stale {
                    self.stats.lock().expect("pool").recycled += 1;
                }
                retired.push(sandbox);
            } else {
                kept.push_back((sandbox, since));
            }
        }
        *ready = kept;
        let missing = desired.saturating_sub(ready.len());
        (retired, missing)
    }

    /// Adds a freshly built sandbox.
    pub fn put(&self, sandbox: Arc<Sandbox>) {
        self.ready
            .lock()
            .expect("pool")
            .push_back((sandbox, Instant::now()));
    }
}
