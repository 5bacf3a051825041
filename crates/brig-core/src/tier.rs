//! Isolation tiers: which mechanism ran a program, and what a caller may ask for.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The mechanism that actually ran a program. A result never says `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Linux namespaces, cgroups, Landlock and seccomp (the default).
    Namespace,
    /// A plain child process with rlimits and its own session; no namespaces.
    Process,
    /// WebAssembly on wasmtime.
    Wasm,
}

/// What a caller asks for. `Auto` picks the strongest tier this host supports and the
/// result says which one ran; a weaker tier is never chosen silently for an explicit request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierChoice {
    /// The strongest tier usable on this host.
    Auto,
    /// The namespace tier, or an error if the host cannot provide it.
    #[default]
    Namespace,
    /// The process tier.
    Process,
    /// The WebAssembly tier.
    Wasm,
}

impl Tier {
    /// The lowercase name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Namespace => "namespace",
            Tier::Process => "process",
            Tier::Wasm => "wasm",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TierChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(TierChoice::Auto),
            "namespace" => Ok(TierChoice::Namespace),
            "process" => Ok(TierChoice::Process),
            "wasm" => Ok(TierChoice::Wasm),
            other => Err(format!(
                "unknown tier `{other}` (expected namespace, process, wasm or auto)"
            )),
        }
    }
}
