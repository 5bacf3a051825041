//! `brig doctor`: what this host supports, and which tiers are usable and why not.

use anyhow::Result;
use brig_jail::JailConfig;
use brig_jail::probe::host_report;
use clap::Args;
use std::process::ExitCode;

/// `brig doctor` flags.
#[derive(Args)]
pub struct DoctorArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `brig doctor`; exits 1 when the default (namespace) tier is unusable.
pub fn run(args: DoctorArgs) -> Result<ExitCode> {
    let mut report = serde_json::to_value(host_report(&JailConfig::default()))?;
    let (wasm, python_wasm) = crate::wasm_tier_status();
    report["tiers"]["wasm"] = wasm;
    report["features"]["wasm.python"] = python_wasm;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("kernel {}", report["kernel"].as_str().unwrap_or("?"));
        println!("\nfeatures:");
        if let Some(features) = report["features"].as_object() {
            for (name, f) in features {
                let mark = if f["ok"].as_bool() == Some(true) {
                    "ok "
                } else {
                    "NO "
                };
                println!("  {mark} {name:<28} {}", f["detail"].as_str().unwrap_or(""));
            }
        }
        println!("\ntiers:");
        if let Some(tiers) = report["tiers"].as_object() {
            for (name, t) in tiers {
                match t["reason"].as_str() {
                    None => println!("  ok  {name}"),
                    Some(reason) => println!("  NO  {name}: {reason}"),
                }
            }
        }
    }
    let usable = report["tiers"]["namespace"]["usable"].as_bool() == Some(true);
    Ok(if usable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
