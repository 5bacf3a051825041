//! The `brig` command: `run`, `doctor`, `languages`, `serve`, `keys`, `exec`, `session` (and, hidden, the sandbox helper that
//! multi-threaded callers re-exec).

mod cli_run;
mod client;
mod doctor;
mod keys;
mod languages_cmd;
mod serve;

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
    /// Run the HTTP service.
    Serve(serve::ServeArgs),
    /// Manage API keys in the server's database.
    Keys(keys::KeysArgs),
    /// Run a program once on a `brig serve` (output and exit code like `brig run`).
    Exec(client::ExecArgs),
    /// Sessions on a `brig serve`: create, exec, upload, download, ls, rm.
    Session(client::SessionArgs),
}

/// `brig run` on its own: the command Brig is started for most often parses only its own
/// flags, without building the parser of every other command (~0.2 ms of its start-up).
#[derive(Parser)]
#[command(
    name = "brig run",
    bin_name = "brig run",
    version,
    about = "Run a program in a sandbox."
)]
struct RunOnly {
    #[command(flatten)]
    args: cli_run::RunArgs,
}

/// The wasm tier's doctor entries: whether the tier starts, and whether Python is installed.
fn wasm_tier_status() -> (serde_json::Value, serde_json::Value) {
    let config = brig_wasm::WasmConfig::default();
    let tier = match brig_wasm::WasmTier::new(config.clone()) {
        Ok(_) => serde_json::json!({"usable": true, "reason": null}),
        Err(e) => serde_json::json!({"usable": false, "reason": e.to_string()}),
    };
    let python = match brig_wasm::python_available(&config) {
        Ok(path) => {
            serde_json::json!({"ok": true, "detail": format!("{} at {}", brig_wasm::config::PYTHON_VERSION, path.display())})
        }
        Err(reason) => serde_json::json!({"ok": false, "detail": reason}),
    };
    (tier, python)
}

fn main() -> ExitCode {
    // The sandbox helper must start before anything else (no threads, no parsing).
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(brig_jail::HELPER_ARG)) {
        brig_jail::helper_main();
    }
    brig_jail::run::phase("main");
    let command = if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new("run")) {
        let args = std::env::args_os().skip(2);
        Command::Run(RunOnly::parse_from(std::iter::once("brig run".into()).chain(args)).args)
    } else {
        Cli::parse().command
    };
    let result = match command {
        Command::Run(args) => cli_run::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Languages(args) => languages_cmd::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Exec(args) => client::exec(args),
        Command::Session(args) => client::session(args),
    };
    brig_jail::run::phase("main returns");
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("brig: {error:#}");
            ExitCode::from(2)
        }
    }
}
