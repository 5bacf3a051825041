//! `brig serve`'s settings: one plain struct read from a TOML file, then overridden by the
//! environment and flags (the binary does that part). Every field has a default that just
//! works: listen on loopback, keep data in `./brig-data`, use SQLite there.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::plans::Plan;

/// The server's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where the SQLite database, the encryption key and the node id live.
    pub data_dir: PathBuf,
    /// `sqlite:PATH`, `mysql://...` or `postgres://...`; default: SQLite in the data dir.
    pub database_url: Option<String>,
    /// The admin API key to make sure exists (instead of generating one on first start).
    pub admin_key: Option<String>,
    /// The encryption key for data at rest: `KEYID:BASE64` (32 bytes); default: a key
    /// generated once into the data dir.
    pub encryption_key: Option<String>,
    /// Older keys still accepted for reading (`KEYID:BASE64` each), for rotation.
    pub old_encryption_keys: Vec<String>,
    /// This node's id (several nodes may share one database); default: one generated once
    /// into the data dir.
    pub node_id: Option<String>,
    /// The URL other nodes sharing the database reach this one at (default: `http://` and the
    /// listen address).
    pub advertise_url: Option<String>,
    /// Plans by name; the built-in `free`, `standard` and `premium` unless given.
    pub plans: BTreeMap<String, Plan>,
    /// Largest request body, in bytes (file uploads included).
    pub max_body_bytes: usize,
    /// Time limit of a request that is not an execution, in milliseconds.
    pub request_timeout_ms: u64,
    /// Executions running at once on this node (one-shot and session).
    pub max_running_executions: usize,
    /// Executions waiting for a slot at most; beyond it requests get 429.
    pub max_queued_executions: usize,
    /// How long shutdown waits for running executions before cancelling them, in ms.
    pub shutdown_grace_ms: u64,
    /// Warm pool size per template (`target_size`); 0 disables the pools.
    pub pool_target_size: usize,
    /// Warm pool floor per template (`min_size`).
    pub pool_min_size: usize,
    /// Python zygotes for one-shot Python runs (each run forked into a sandbox of its own; see
    /// the README); 0 disables them and every one-shot run starts a fresh interpreter.
    pub zygotes: usize,
    /// Alert thresholds.
    pub alerts: Alerts,
    /// The helper binary the jail re-execs (default: this executable).
    pub helper: Option<PathBuf>,
    /// An extra languages file over the built-in one.
    pub languages: Option<PathBuf>,
    /// The tenant whose plan and quotas serve the Piston and Judge0 routes without an API key,
    /// honoured only while that tenant's `anonymous_compat` is true (see brig-compat's README).
    pub compat_anonymous_tenant: Option<String>,
    /// The Judge0 API's limits and switches (`[judge0]`, Judge0's own names and units).
    pub judge0: brig_compat::judge0::Judge0Config,
}

/// Thresholds that log a warning and count in `brig_alerts_total`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// A sandbox's peak memory above this share of its limit, in percent.
    pub sandbox_memory_percent: f64,
    /// An execution's CPU time above this share of its wall time, in percent.
    pub cpu_percent: f64,
    /// More live sessions than this on the node.
    pub active_sessions: usize,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            sandbox_memory_percent: 80.0,
            cpu_percent: 90.0,
            active_sessions: 500,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir: PathBuf::from("brig-data"),
            database_url: None,
            admin_key: None,
            encryption_key: None,
            old_encryption_keys: Vec::new(),
            node_id: None,
            advertise_url: None,
            plans: crate::plans::builtin(),
            max_body_bytes: 16 << 20,
            request_timeout_ms: 30_000,
            max_running_executions: cores * 8,
            max_queued_executions: 256,
            shutdown_grace_ms: 10_000,
            pool_target_size: 4,
            pool_min_size: 2,
            zygotes: 2,
            alerts: Alerts::default(),
            helper: None,
            languages: None,
            compat_anonymous_tenant: None,
            judge0: brig_compat::judge0::Judge0Config::default(),
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (in the message, not chained: it would print twice).
        error: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}: {error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        error: Box<toml::de::Error>,
    },
    /// A value is not valid.
    #[error("{0}")]
    Invalid(String),
}

impl ServerConfig {
    /// Reads a TOML file (fields not named keep their defaults).
    pub fn from_file(path: &std::path::Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            error: Box::new(error),
        })
    }

    /// Every problem of the settings, before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.plans.is_empty() {
            problems.push("at least one plan is needed".to_string());
        }
        for (name, plan) in &self.plans {
            if let Err(e) = plan.validate() {
                problems.push(format!("plan `{name}`: {e}"));
            }
        }
        if self.max_running_executions == 0 {
            problems.push("max_running_executions must be at least 1".into());
        }
        if self.max_body_bytes < 1024 {
            problems.push("max_body_bytes must be at least 1024".into());
        }
        if self.zygotes > 64 {
            problems.push("zygotes must be at most 64".into());
        }
        if self.pool_min_size > self.pool_target_size {
            problems.push("pool_min_size must not exceed pool_target_size".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("; ")))
        }
    }

    /// The database URL: the configured one, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("brig.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_local() {
        let config = ServerConfig::default();
        config.validate().unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.listen.port(), 7070);
        assert!(config.database_url().starts_with("sqlite://"));
        assert!(config.plans.contains_key("free"));
    }

    #[test]
    fn the_example_config_is_valid() {
        let config: ServerConfig =
            toml::from_str(include_str!("../../../examples/brig.toml")).unwrap();
        config.validate().unwrap();
        assert_eq!(config.plans.len(), 2);
        assert_eq!(config.max_running_executions, 16);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<ServerConfig>("listne = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `listne`"), "{err}");
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let config: ServerConfig = toml::from_str(
            "listen = \"0.0.0.0:9000\"\n[plans.tiny]\nmax_memory_bytes = 67108864\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.plans.len(), 1);
        assert_eq!(config.plans["tiny"].max_memory_bytes, 64 << 20);
        assert_eq!(config.request_timeout_ms, 30_000);
    }
}
