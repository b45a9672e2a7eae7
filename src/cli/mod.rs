//! The `agentauth` command line (SPEC §9).

mod api_client;
mod commands;
mod output;
mod serve;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "agentauth",
    version,
    about = "An OAuth 2.0 authorization server for AI-agent identities"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the server's own files are (for commands that work on them directly).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory holding the SQLite file, keys/ and admin-credentials.json.
    #[arg(long, env = "AGENTAUTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite:… or postgres:… (default: sqlite in the data dir).
    #[arg(long, env = "AGENTAUTH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Configuration file (default ./agentauth.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// How admin commands reach the server.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The server's base URL (default: from the credentials' token endpoint).
    #[arg(long, global = true, env = "AGENTAUTH_URL")]
    pub url: Option<String>,
    /// The admin credentials file.
    #[arg(
        long,
        global = true,
        default_value = "admin-credentials.json",
        env = "AGENTAUTH_CREDENTIALS"
    )]
    pub credentials: PathBuf,
    /// A CA certificate to trust (for --tls-self-signed servers: <data dir>/tls/ca.pem).
    #[arg(long, global = true, env = "AGENTAUTH_CA")]
    pub ca: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(StoreArgs),
    /// Apply a declarative TOML file (idempotent) to the store.
    Apply {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage agents.
    Agents {
        #[command(subcommand)]
        command: commands::AgentCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Manage resources.
    Resources {
        #[command(subcommand)]
        command: commands::ResourceCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Set or list an agent's roles on a resource.
    Roles {
        #[command(subcommand)]
        command: commands::GrantCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Set or list an agent's delegation grants on a resource.
    Delegations {
        #[command(subcommand)]
        command: commands::GrantCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Manage blueprints.
    Blueprints {
        #[command(subcommand)]
        command: commands::BlueprintCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Manage trusted issuers.
    Issuers {
        #[command(subcommand)]
        command: commands::IssuerCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: commands::KeyCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: commands::AuditCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Get an access token as an agent (client credentials), for testing.
    Token(commands::TokenArgs),
    /// Print a JWT's header and claims (no verification).
    Decode {
        /// The token; `-` reads it from standard input.
        token: String,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
