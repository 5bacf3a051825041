//! Brig's shared vocabulary: the limits every run has, the isolation tiers, and the one
//! result object every tier returns (`ok`, `runtime_error`, `timeout`... as `../shared/DESIGN.md`
//! names them).
//!
//! This crate holds data and pure functions only, so the jail, the wasm tier, the engine and the
//! server can all speak it without depending on one another.

pub mod limits;
pub mod result;
pub mod size;
pub mod tier;
pub mod verdict;

pub use limits::{LimitError, LimitOverrides, Limits};
pub use result::{DisplayOutput, RunResult, Status, TimeoutKind};
pub use tier::{Tier, TierChoice};
pub use verdict::{Exit, KillReason, Termination};
