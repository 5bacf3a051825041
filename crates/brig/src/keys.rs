//! `brig keys create|list|revoke`: manage API keys straight in the server's database (the
//! same settings as `brig serve`), for the first tenant or when no admin key is at hand.

use anyhow::{Context, Result, bail};
use brig_store::Store;
use clap::{Args, Subcommand};
use std::process::ExitCode;

use crate::serve::ConfigArgs;

/// `brig keys` flags.
#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a key for a tenant (created with `--plan` if it does not exist); prints it once.
    Create {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Plan of a new tenant.
        #[arg(long, default_value = "standard")]
        plan: String,
        /// An admin key.
        #[arg(long)]
        admin: bool,
    },
    /// List keys (never their secrets).
    List {
        /// Only this tenant's (by name).
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id.
    Revoke {
        /// The key's id.
        id: String,
    },
}

/// Runs `brig keys`.
pub fn run(args: KeysArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("data dir {}", config.data_dir.display()))?;
        let cipher = brig_server::cipher_for(&config)?;
        let store = Store::connect(&config.database_url(), cipher).await?;
        match args.command {
            KeysCommand::Create {
                tenant,
                plan,
                admin,
            } => {
                if !config.plans.contains_key(&plan) {
                    let known: Vec<&str> = config.plans.keys().map(String::as_str).collect();
                    bail!("unknown plan `{plan}` (one of: {})", known.join(", "));
                }
                let tenant = match store.tenant_by_name(&tenant).await? {
                    Some(t) => t,
                    None => store.create_tenant(&tenant, &plan).await?,
                };
                let (key, secret) = store.create_key(&tenant.id, admin).await?;
                eprintln!(
                    "key {} for tenant `{}` (plan {}); shown once:",
                    key.id, tenant.name, tenant.plan
                );
                println!("{secret}");
            }
            KeysCommand::List { tenant, json } => {
                let tenant_id = match &tenant {
                    Some(name) => Some(
                        store
                            .tenant_by_name(name)
                            .await?
                            .with_context(|| format!("no tenant `{name}`"))?
                            .id,
                    ),
                    None => None,
                };
                let keys = store.list_keys(tenant_id.as_deref()).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&keys)?);
                } else {
                    for key in keys {
                        let state = if key.revoked_at_ms.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        let role = if key.admin { "admin" } else { "user" };
                        println!(
                            "{:<34} {:<34} {:<10} {:<6} {state}",
                            key.id, key.tenant_id, key.prefix, role
                        );
                    }
                }
            }
            KeysCommand::Revoke { id } => {
                if !store.revoke_key(&id).await? {
                    bail!("no active key `{id}`");
                }
                eprintln!("revoked {id}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
