//! `agentauth serve`.

use crate::config::Config;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory for the SQLite file, keys/, admin-credentials.json and tls/ (default: .).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub bind: Option<String>,
    /// sqlite:… or postgres:… (default: sqlite:<data dir>/agentauth.db).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Public base URL, the issuer (default: from the bind address and scheme).
    #[arg(long)]
    pub base_url: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Make (once) a local CA and a certificate for localhost and 127.0.0.1.
    #[arg(long)]
    pub tls_self_signed: bool,
    /// pretty or json.
    #[arg(long)]
    pub log_format: Option<String>,
    /// Apply this declarative file at start.
    #[arg(long)]
    pub apply: Option<PathBuf>,
    /// Configuration file (default ./agentauth.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl ServeArgs {
    /// Only the flags that were given, so they override without erasing lower layers.
    pub fn overrides(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k.into(), serde_json::Value::String(v));
            }
        };
        put(
            "data_dir",
            self.data_dir.as_ref().map(|p| p.display().to_string()),
        );
        put("bind", self.bind.clone());
        put("database_url", self.database_url.clone());
        put("base_url", self.base_url.clone());
        put(
            "tls_cert",
            self.tls_cert.as_ref().map(|p| p.display().to_string()),
        );
        put(
            "tls_key",
            self.tls_key.as_ref().map(|p| p.display().to_string()),
        );
        put("log_format", self.log_format.clone());
        put(
            "apply",
            self.apply.as_ref().map(|p| p.display().to_string()),
        );
        if self.tls_self_signed {
            m.insert("tls_self_signed".into(), serde_json::Value::Bool(true));
        }
        m
    }

    pub fn config(&self) -> Result<Config, crate::config::ConfigError> {
        Config::load(self.config.clone(), self.overrides())
    }
}

pub async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = args.config().map_err(|e| e.to_string())?;
    crate::telemetry::init(&config.log_format, &config.log_level);
    let server = crate::app::start(config, std::sync::Arc::new(crate::clock::SystemClock), true)
        .await
        .map_err(|e| e.to_string())?;
    server.wait().await;
    Ok(())
}
