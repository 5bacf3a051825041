//! Plans: what a tenant may use. A plan caps every resource limit a request may ask for, the
//! sessions and executions a tenant may have at once, and its request rate. Plans are data
//! (config); the built-in `free`, `standard` and `premium` follow what hosted sandboxes offer.

use brig_core::LimitOverrides;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Plan {
    /// Largest wall-clock limit of one execution, in ms.
    pub max_timeout_ms: u64,
    /// Largest CPU-time limit, in ms.
    pub max_cpu_time_ms: u64,
    /// Largest memory limit, in bytes.
    pub max_memory_bytes: u64,
    /// Most processes/threads.
    pub max_pids: u32,
    /// Largest output limit, in bytes.
    pub max_output_bytes: u64,
    /// Largest writable disk, in bytes.
    pub max_disk_bytes: u64,
    /// Live sessions at once.
    pub max_sessions: usize,
    /// Executions running or queued at once.
    pub max_concurrent_executions: usize,
    /// Sustained requests per second.
    pub requests_per_second: u32,
    /// Requests allowed in a burst above the rate.
    pub burst: u32,
    /// Whether executions may enable networking.
    pub allow_network: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            max_timeout_ms: 30_000,
            max_cpu_time_ms: 30_000,
            max_memory_bytes: 512 << 20,
            max_pids: 64,
            max_output_bytes: 4 << 20,
            max_disk_bytes: 256 << 20,
            max_sessions: 10,
            max_concurrent_executions: 8,
            requests_per_second: 50,
            burst: 100,
            allow_network: false,
        }
    }
}

/// The built-in plans.
pub fn builtin() -> BTreeMap<String, Plan> {
    let free = Plan {
        max_timeout_ms: 10_000,
        max_cpu_time_ms: 10_000,
        max_memory_bytes: 256 << 20,
        max_pids: 32,
        max_output_bytes: 1 << 20,
        max_disk_bytes: 64 << 20,
        max_sessions: 2,
        max_concurrent_executions: 2,
        requests_per_second: 5,
        burst: 20,
        allow_network: false,
    };
    let premium = Plan {
        max_timeout_ms: 300_000,
        max_cpu_time_ms: 300_000,
        max_memory_bytes: 4 << 30,
        max_pids: 256,
        max_output_bytes: 64 << 20,
        max_disk_bytes: 2 << 30,
        max_sessions: 200,
        max_concurrent_executions: 64,
        requests_per_second: 2000,
        burst: 4000,
        allow_network: true,
    };
    BTreeMap::from([
        ("free".to_string(), free),
        ("standard".to_string(), Plan::default()),
        ("premium".to_string(), premium),
    ])
}

/// A limit asked above the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` = {asked} is above plan `{plan}`'s maximum of {max}")]
pub struct OverPlan {
    /// The limit's field name.
    pub field: &'static str,
    /// What was asked.
    pub asked: u64,
    /// The plan's cap.
    pub max: u64,
    /// The plan.
    pub plan: String,
}

impl Plan {
    /// Whether the plan itself makes sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.requests_per_second == 0 {
            return Err("requests_per_second must be at least 1".into());
        }
        if self.max_concurrent_executions == 0 {
            return Err("max_concurrent_executions must be at least 1".into());
        }
        Ok(())
    }

    /// Checks `asked` against the plan; the first limit above it is the error. Limits not
    /// asked for are capped instead: the result is what the run gets.
    pub fn cap(&self, name: &str, asked: &LimitOverrides) -> Result<LimitOverrides, OverPlan> {
        let checks: [(&'static str, Option<u64>, u64); 6] = [
            ("timeout_ms", asked.timeout_ms, self.max_timeout_ms),
            ("cpu_time_ms", asked.cpu_time_ms, self.max_cpu_time_ms),
            ("memory_bytes", asked.memory_bytes, self.max_memory_bytes),
            ("pids", asked.pids.map(u64::from), u64::from(self.max_pids)),
            ("output_bytes", asked.output_bytes, self.max_output_bytes),
            ("disk_bytes", asked.disk_bytes, self.max_disk_bytes),
        ];
        for (field, value, max) in checks {
            if let Some(value) = value
                && value > max
            {
                return Err(OverPlan {
                    field,
                    asked: value,
                    max,
                    plan: name.to_string(),
                });
            }
        }
        Ok(*asked)
    }

    /// Caps resolved limits (the language's defaults may exceed a small plan).
    pub fn clamp(&self, limits: &mut brig_core::Limits) {
        limits.timeout_ms = limits.timeout_ms.min(self.max_timeout_ms);
        limits.cpu_time_ms = limits.cpu_time_ms.min(self.max_cpu_time_ms);
        limits.memory_bytes = limits.memory_bytes.min(self.max_memory_bytes);
        limits.pids = limits.pids.min(self.max_pids);
        limits.output_bytes = limits.output_bytes.min(self.max_output_bytes);
        limits.disk_bytes = limits.disk_bytes.min(self.max_disk_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_above_the_plan_is_named() {
        let plans = builtin();
        let asked = LimitOverrides {
            memory_bytes: Some(1 << 30),
            ..LimitOverrides::default()
        };
        let err = plans["free"].cap("free", &asked).unwrap_err();
        assert_eq!(err.field, "memory_bytes");
        assert!(err.to_string().contains("plan `free`"), "{err}");
        assert!(plans["premium"].cap("premium", &asked).is_ok());
    }

    #[test]
    fn clamp_lowers_defaults_to_the_plan() {
        let mut limits = brig_core::Limits {
            memory_bytes: 1 << 30,
            ..brig_core::Limits::default()
        };
        builtin()["free"].clamp(&mut limits);
        assert_eq!(limits.memory_bytes, 256 << 20);
    }
}
