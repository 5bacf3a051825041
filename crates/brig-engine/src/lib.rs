//! brig-engine: from "run this code in this language with these limits" to a result.
//!
//! It picks the language (`languages`), builds the sandbox spec — the source and extra files in
//! the work dir, a compile step when the language has one, the run step — chooses the tier, runs
//! it, and turns the jail's facts into the one result object of DESIGN.md (`execute`).

pub mod execute;
pub mod languages;
pub mod session;
pub mod zygote;

pub use execute::{Engine, EngineError, Launch, RunRequest};
pub use languages::Languages;
