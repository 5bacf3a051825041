//! `brig serve` (the HTTP service) and the settings it shares with `brig keys`: a TOML file,
//! then the environment (`BRIG_LISTEN`, `BRIG_DATA_DIR`, `BRIG_DATABASE_URL`,
//! `BRIG_ADMIN_KEY`, `BRIG_ENCRYPTION_KEY`), then flags — each over the one before.

use anyhow::{Context, Result};
use brig_server::ServerConfig;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the server's settings come from (shared by `serve` and `keys`).
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// A TOML config file.
    #[arg(long, env = "BRIG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data dir (SQLite database, encryption key, node id).
    #[arg(long, env = "BRIG_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite:PATH, mysql://..., postgres://...
    #[arg(long = "database", env = "BRIG_DATABASE_URL")]
    pub database: Option<String>,
}

/// `brig serve` flags.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:7070).
    #[arg(long, env = "BRIG_LISTEN")]
    listen: Option<SocketAddr>,
    /// Log format: `json` (default) or `text`.
    #[arg(long, env = "BRIG_LOG_FORMAT", default_value = "json")]
    log_format: String,
}

impl ConfigArgs {
    /// The settings: file, then environment, then flags.
    pub fn load(&self) -> Result<ServerConfig> {
        let mut config = match &self.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database {
            config.database_url = Some(url.clone());
        }
        if let Ok(key) = std::env::var("BRIG_ADMIN_KEY")
            && !key.is_empty()
        {
            config.admin_key = Some(key);
        }
        if let Ok(key) = std::env::var("BRIG_ENCRYPTION_KEY")
            && !key.is_empty()
        {
            config.encryption_key = Some(key);
        }
        if let Ok(node) = std::env::var("BRIG_NODE_ID")
            && !node.is_empty()
        {
            config.node_id = Some(node);
        }
        Ok(config)
    }
}

fn init_logging(format: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRIG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "json" => builder.json().flatten_event(true).init(),
        "text" => builder.init(),
        other => anyhow::bail!("--log-format: `{other}` is not `json` or `text`"),
    }
    Ok(())
}

/// Runs `brig serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    init_logging(&args.log_format)?;
    let mut config = args.config.load()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let running = brig_server::start(config).await?;
        if let Some(key) = &running.new_admin_key {
            println!("admin API key (shown once, keep it): {key}");
        }
        println!("listening on http://{}", running.addr);
        running.wait().await.context("server failed")?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
