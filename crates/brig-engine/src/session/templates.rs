//! Session templates: what a session's sandbox is built with. A template names the kernel (and
//! what it preloads) and the session's default limits; sessions and pools are keyed by it.

use brig_core::Limits;

/// The kernel file, placed in every Python sandbox at `/etc/brig/brig_kernel.py`.
pub const KERNEL_SOURCE: &str = include_str!("../../kernel/brig_kernel.py");

/// A session template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Its name (`python`, `python-minimal`, `bash`).
    pub name: &'static str,
    /// The language executions use when they name none.
    pub language: &'static str,
    /// Modules the kernel imports before the session is handed out; `None`: no kernel.
    pub preload: Option<&'static [&'static str]>,
    /// Default session limits (memory, pids and disk hold for the session's life; time and
    /// output are each execution's defaults).
    pub limits: Limits,
}

const MIB: u64 = 1 << 20;

/// Every template.
pub fn all() -> Vec<Template> {
    let base = Limits {
        timeout_ms: 30_000,
        cpu_time_ms: 30_000,
        ..Limits::default()
    };
    vec![
        Template {
            name: "python",
            language: "python",
            preload: Some(&["numpy", "pandas", "matplotlib"]),
            limits: Limits {
                memory_bytes: 1024 * MIB,
                pids: 128,
                disk_bytes: 256 * MIB,
                ..base
            },
        },
        Template {
            name: "python-minimal",
            language: "python",
            preload: Some(&[]),
            limits: Limits {
                memory_bytes: 256 * MIB,
                ..base
            },
        },
        Template {
            name: "bash",
            language: "bash",
            preload: None,
            limits: Limits {
                memory_bytes: 256 * MIB,
                ..base
            },
        },
    ]
}

/// The template named `name`.
pub fn find(name: &str) -> Option<Template> {
    all().into_iter().find(|t| t.name == name)
}

/// The template a session in `language` starts from.
pub fn for_language(language: &str) -> Option<Template> {
    match language {
        "python" | "py" | "python3" => find("python"),
        "bash" | "sh" | "shell" => find("bash"),
        _ => None,
    }
}
