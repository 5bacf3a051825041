//! `brig languages`: every language, its version here, or why it is unavailable.

use anyhow::Result;
use brig_engine::Languages;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `brig languages` flags.
#[derive(Args)]
pub struct LanguagesArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// An extra languages file, over the built-in one (also BRIG_LANGUAGES).
    #[arg(long, env = "BRIG_LANGUAGES")]
    languages: Option<PathBuf>,
}

/// Runs `brig languages`.
pub fn run(args: LanguagesArgs) -> Result<ExitCode> {
    let languages = Languages::load(args.languages.as_deref())?;
    let mut rows = Vec::new();
    for resolved in &languages.all() {
        let version = match resolved.unavailable {
            None => Languages::version(resolved),
            Some(_) => None,
        };
        rows.push(serde_json::json!({
            "id": resolved.language.id,
            "name": resolved.language.name,
            "aliases": resolved.language.aliases,
            "extensions": resolved.language.extensions,
            "compiled": resolved.language.compile.is_some(),
            "available": resolved.unavailable.is_none(),
            "version": version,
            "reason": resolved.unavailable,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for row in &rows {
            let status = match row["reason"].as_str() {
                None => row["version"].as_str().unwrap_or("available").to_string(),
                Some(reason) => format!("unavailable: {reason}"),
            };
            println!(
                "{:<12} {:<24} {}",
                row["id"].as_str().unwrap_or(""),
                row["name"].as_str().unwrap_or(""),
                status
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
