//! The limits every run has. A language brings defaults, a caller may override any of them
//! (`LimitOverrides`), and a plan caps them; `Limits::validate` names every bad field at once.

use serde::{Deserialize, Serialize};

const MIB: u64 = 1 << 20;

/// Every limit of one run. All are always set: there is no "unlimited".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall-clock deadline in milliseconds.
    pub timeout_ms: u64,
    /// CPU time (all processes and threads together) in milliseconds.
    pub cpu_time_ms: u64,
    /// Memory (RSS + page cache + tmpfs, swap off) in bytes.
    pub memory_bytes: u64,
    /// Processes and threads alive at once.
    pub pids: u32,
    /// Captured stdout + stderr in bytes; past it the run ends as `output_limit`.
    pub output_bytes: u64,
    /// Size of each writable filesystem (the work dir and `/tmp`) in bytes.
    pub disk_bytes: u64,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    pub open_files: u32,
    /// Largest file a process may write (`RLIMIT_FSIZE`), in bytes.
    pub file_size_bytes: u64,
    /// Stack size per process (`RLIMIT_STACK`), in bytes.
    pub stack_bytes: u64,
    /// Optional CPU bandwidth cap in percent of one core (150 = one and a half cores).
    pub cpu_quota_percent: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: 10_000,
            cpu_time_ms: 10_000,
            memory_bytes: 256 * MIB,
            pids: 64,
            output_bytes: MIB,
            disk_bytes: 64 * MIB,
            open_files: 256,
            file_size_bytes: 64 * MIB,
            stack_bytes: 8 * MIB,
            cpu_quota_percent: None,
        }
    }
}

/// A caller's partial override of `Limits`: every field optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitOverrides {
    /// See [`Limits::timeout_ms`].
    pub timeout_ms: Option<u64>,
    /// See [`Limits::cpu_time_ms`].
    pub cpu_time_ms: Option<u64>,
    /// See [`Limits::memory_bytes`].
    pub memory_bytes: Option<u64>,
    /// See [`Limits::pids`].
    pub pids: Option<u32>,
    /// See [`Limits::output_bytes`].
    pub output_bytes: Option<u64>,
    /// See [`Limits::disk_bytes`].
    pub disk_bytes: Option<u64>,
    /// See [`Limits::open_files`].
    pub open_files: Option<u32>,
    /// See [`Limits::file_size_bytes`].
    pub file_size_bytes: Option<u64>,
    /// See [`Limits::stack_bytes`].
    pub stack_bytes: Option<u64>,
    /// See [`Limits::cpu_quota_percent`].
    pub cpu_quota_percent: Option<u32>,
}

impl From<&Limits> for LimitOverrides {
    /// Every field set: the overrides that turn any defaults into exactly `limits`.
    fn from(l: &Limits) -> LimitOverrides {
        LimitOverrides {
            timeout_ms: Some(l.timeout_ms),
            cpu_time_ms: Some(l.cpu_time_ms),
            memory_bytes: Some(l.memory_bytes),
            pids: Some(l.pids),
            output_bytes: Some(l.output_bytes),
            disk_bytes: Some(l.disk_bytes),
            open_files: Some(l.open_files),
            file_size_bytes: Some(l.file_size_bytes),
            stack_bytes: Some(l.stack_bytes),
            cpu_quota_percent: l.cpu_quota_percent,
        }
    }
}

/// One invalid limit, naming the field so a person (or an HTTP 422) can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit `{field}`: {problem}")]
pub struct LimitError {
    /// The field's name as it appears in JSON.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Limits {
    /// These limits with every field the overrides set replaced.
    pub fn with(mut self, o: &LimitOverrides) -> Limits {
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { self.$f = v; } )* };
        }
        take!(
            timeout_ms,
            cpu_time_ms,
            memory_bytes,
            pids,
            output_bytes,
            disk_bytes,
            open_files,
            file_size_bytes,
            stack_bytes
        );
        if o.cpu_quota_percent.is_some() {
            self.cpu_quota_percent = o.cpu_quota_percent;
        }
        self
    }

    /// Checks every field and returns all problems, not just the first.
    pub fn validate(&self) -> Result<(), Vec<LimitError>> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, field: &'static str, problem: &str| {
            if !ok {
                errors.push(LimitError {
                    field,
                    problem: problem.to_string(),
                });
            }
        };
        check(self.timeout_ms >= 1, "timeout_ms", "must be at least 1 ms");
        check(
            self.timeout_ms <= 24 * 3_600_000,
            "timeout_ms",
            "must be at most 24 hours",
        );
        check(
            self.cpu_time_ms >= 1,
            "cpu_time_ms",
            "must be at least 1 ms",
        );
        check(
            self.memory_bytes >= 4 * MIB,
            "memory_bytes",
            "must be at least 4 MiB (no runtime starts in less)",
        );
        check(self.pids >= 1, "pids", "must be at least 1");
        check(self.pids <= 65_536, "pids", "must be at most 65536");
        check(
            self.output_bytes >= 1,
            "output_bytes",
            "must be at least 1 byte",
        );
        check(
            self.output_bytes <= 1 << 30,
            "output_bytes",
            "must be at most 1 GiB (output is held in memory)",
        );
        check(
            self.disk_bytes >= 64 * 1024,
            "disk_bytes",
            "must be at least 64 KiB",
        );
        check(self.open_files >= 16, "open_files", "must be at least 16");
        check(
            self.open_files <= 1 << 20,
            "open_files",
            "must be at most 1048576",
        );
        check(
            self.file_size_bytes >= 1,
            "file_size_bytes",
            "must be at least 1 byte",
        );
        check(
            self.stack_bytes >= 64 * 1024,
            "stack_bytes",
            "must be at least 64 KiB",
        );
        if let Some(q) = self.cpu_quota_percent {
            check(
                (1..=100_000).contains(&q),
                "cpu_quota_percent",
                "must be between 1 and 100000",
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Limits::default().validate().unwrap();
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let l = Limits::default().with(&LimitOverrides {
            timeout_ms: Some(500),
            pids: Some(4),
            ..Default::default()
        });
        assert_eq!(l.timeout_ms, 500);
        assert_eq!(l.pids, 4);
        assert_eq!(l.memory_bytes, Limits::default().memory_bytes);
    }

    #[test]
    fn validate_reports_every_bad_field() {
        let l = Limits {
            timeout_ms: 0,
            memory_bytes: 1024,
            pids: 0,
            ..Limits::default()
        };
        let fields: Vec<_> = l.validate().unwrap_err().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["timeout_ms", "memory_bytes", "pids"]);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<LimitOverrides>(r#"{"timeout":5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
    }
}
