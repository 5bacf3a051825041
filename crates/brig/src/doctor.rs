//! `brig doctor` (placeholder).
use anyhow::Result;
use clap::Args;
use std::process::ExitCode;
/// `brig doctor` flags.
#[derive(Args)]
pub struct DoctorArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}
/// Runs `brig doctor`.
pub fn run(args: DoctorArgs) -> Result<ExitCode> {
    let _ = args.json;
    Ok(ExitCode::SUCCESS)
}
