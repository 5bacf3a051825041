//! The `brig` command: `run`, `doctor`, `languages` (and, hidden, the sandbox helper that
//! multi-threaded callers re-exec).

mod cli_run;
mod doctor;
mod languages_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Run untrusted code safely and fast.
#[derive(Parser)]
#[command(name = "brig", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a program in a sandbox.
    Run(cli_run::RunArgs),
    /// Report what this host supports and which tiers are usable.
    Doctor(doctor::DoctorArgs),
    /// List the languages and whether each is available here.
    Languages(languages_cmd::LanguagesArgs),
}

/// The wasm tier's doctor entry (until the tier is built in).
fn wasm_tier_status() -> serde_json::Value {
    serde_json::json!({"usable": false, "reason": "not built into this binary"})
}

fn main() -> ExitCode {
    // The sandbox helper must start before anything else (no threads, no parsing).
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(brig_jail::HELPER_ARG)) {
        brig_jail::helper_main();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli_run::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Languages(args) => languages_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("brig: {error:#}");
            ExitCode::from(2)
        }
    }
}
