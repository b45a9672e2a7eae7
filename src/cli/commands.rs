//! The admin subcommands: parse, call the admin API, print.

use super::api_client::{AdminClient, client_credentials, http_client};
use super::output::{print, say};
use super::{ApiArgs, Command, StoreArgs};
use crate::config::Config;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;

const AGENT_COLUMNS: &[&str] = &[
    "id",
    "name",
    "status",
    "sponsors",
    "expires_at",
    "last_active_at",
];
const RESOURCE_COLUMNS: &[&str] = &[
    "id",
    "identifier",
    "name",
    "roles",
    "scopes",
    "token_profile",
];

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Register an agent.
    Create {
        name: String,
        #[arg(long, required = true)]
        sponsor: Vec<String>,
        #[arg(long)]
        owner: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// RFC 3339 (default: 90 days from now).
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long)]
        token_ttl_seconds: Option<i64>,
        #[arg(long)]
        blueprint_id: Option<String>,
        /// Copy the blueprint's default roles and delegations to the new agent.
        #[arg(long, requires = "blueprint_id")]
        inherit_defaults: bool,
    },
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        sponsor: Option<String>,
    },
    Show {
        id: String,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        sponsor: Vec<String>,
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long)]
        token_ttl_seconds: Option<i64>,
    },
    Disable {
        id: String,
    },
    Enable {
        id: String,
    },
    Delete {
        id: String,
    },
    Restore {
        id: String,
    },
    /// Revoke every token the agent holds.
    RevokeTokens {
        id: String,
    },
    /// Client secrets.
    Secrets {
        #[command(subcommand)]
        command: SecretCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Make a new secret (shown once).
    Add {
        agent: String,
        #[arg(long)]
        expires_at: Option<String>,
    },
    List {
        agent: String,
    },
    Remove {
        agent: String,
        credential: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    Create {
        identifier: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        role: Vec<String>,
        #[arg(long)]
        scope: Vec<String>,
        #[arg(long)]
        user_assignment_required: bool,
        /// rfc9068 or entra.
        #[arg(long)]
        token_profile: Option<String>,
    },
    List,
    Show {
        id: String,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Replace the set on one resource (no values removes it).
    Set {
        agent: String,
        resource: String,
        values: Vec<String>,
    },
    List {
        agent: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BlueprintCommand {
    Create {
        name: String,
        #[arg(long, required = true)]
        sponsor: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    List,
    Show {
        id: String,
    },
    Delete {
        id: String,
    },
    /// Add a client secret to a blueprint (shown once).
    AddSecret {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    Add {
        issuer: String,
        #[arg(long)]
        jwks_uri: Option<String>,
        #[arg(long)]
        audience: Vec<String>,
        #[arg(long, default_value = "sub")]
        subject_claim: String,
        /// subject_tokens and/or federated_credentials.
        #[arg(long = "use", required = true)]
        uses: Vec<String>,
    },
    List,
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    List,
    /// Publish a new key now; it signs after the pre-publication window.
    Rotate,
    /// Import a PKCS#8 PEM private key as the next key (works on the key store directly).
    Import {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    List {
        #[arg(long)]
        agent_id: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        /// The `next_cursor` a previous page printed: the page after it.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Every event as JSON lines.
    Export,
    /// Check the hash chain.
    Verify,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long, env = "AGENTAUTH_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Generated secrets are URL-safe base64 and may begin with `-`.
    #[arg(long, env = "AGENTAUTH_CLIENT_SECRET", allow_hyphen_values = true)]
    pub client_secret: Option<String>,
    /// Default: the admin scope from the credentials file.
    #[arg(long)]
    pub scope: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

fn query(pairs: &[(&str, &Option<String>)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            s.append_pair(k, v);
        }
    }
    let q = s.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

fn store_config(store: &StoreArgs) -> Result<Config, String> {
    let mut flags = serde_json::Map::new();
    if let Some(d) = &store.data_dir {
        flags.insert("data_dir".into(), Value::String(d.display().to_string()));
    }
    if let Some(u) = &store.database_url {
        flags.insert("database_url".into(), Value::String(u.clone()));
    }
    Config::load(store.config.clone(), flags).map_err(|e| e.to_string())
}

pub async fn dispatch(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => super::serve::serve(args).await,
        Command::Migrate(store) => {
            let config = store_config(&store)?;
            crate::store::migrate(&config.database_url())
                .await
                .map_err(|e| e.to_string())?;
            say!(
                "migrations applied to {}",
                crate::store::redact_url(&config.database_url())
            );
            Ok(())
        }
        Command::Apply { file, store } => {
            let config = store_config(&store)?;
            let admin = offline_admin(&config).await?;
            let report = crate::apply::apply_file(&admin, &file)
                .await
                .map_err(|e| e.to_string())?;
            say!(
                "applied {}: {} created, {} updated, {} unchanged",
                file.display(),
                report.created,
                report.updated,
                report.unchanged
            );
            Ok(())
        }
        Command::Agents { command, api } => agents(command, &api).await,
        Command::Resources { command, api } => resources(command, &api).await,
        Command::Roles { command, api } => grants(command, &api, "roles").await,
        Command::Delegations { command, api } => grants(command, &api, "delegations").await,
        Command::Blueprints { command, api } => blueprints(command, &api).await,
        Command::Issuers { command, api } => issuers(command, &api).await,
        Command::Keys { command, api } => keys(command, &api).await,
        Command::Audit { command, api } => audit(command, &api).await,
        Command::Token(args) => token(args).await,
        Command::Decode { token } => decode(&token),
    }
}

async fn agents(command: AgentCommand, api: &ApiArgs) -> Result<(), String> {
    let c = AdminClient::connect(api).await?;
    let (value, columns) = match command {
        AgentCommand::Create {
            name,
            sponsor,
            owner,
            description,
            expires_at,
            token_ttl_seconds,
            blueprint_id,
            inherit_defaults,
        } => {
            let mut body = json!({ "name": name, "sponsors": sponsor, "owners": owner });
            let o = body.as_object_mut().ok_or("internal")?;
            for (k, v) in [
                ("description", description),
                ("expires_at", expires_at),
                ("blueprint_id", blueprint_id),
            ] {
                if let Some(v) = v {
                    o.insert(k.into(), Value::String(v));
                }
            }
            if let Some(t) = token_ttl_seconds {
                o.insert("token_ttl_seconds".into(), json!(t));
            }
            if inherit_defaults {
                o.insert("inherit_defaults".into(), Value::Bool(true));
            }
            (
                c.call(Method::POST, "/agents", Some(body)).await?,
                AGENT_COLUMNS,
            )
        }
        AgentCommand::List {
            status,
            owner,
            sponsor,
        } => {
            let q = query(&[
                ("status", &status),
                ("owner", &owner),
                ("sponsor", &sponsor),
            ]);
            (
                Value::Array(c.get_all(&format!("/agents{q}")).await?),
                AGENT_COLUMNS,
            )
        }
        AgentCommand::Show { id } => (c.get(&format!("/agents/{id}")).await?, AGENT_COLUMNS),
        AgentCommand::Update {
            id,
            name,
            description,
            sponsor,
            expires_at,
            token_ttl_seconds,
        } => {
            let mut body = serde_json::Map::new();
            for (k, v) in [
                ("name", name),
                ("description", description),
                ("expires_at", expires_at),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), Value::String(v));
                }
            }
            if !sponsor.is_empty() {
                body.insert("sponsors".into(), json!(sponsor));
            }
            if let Some(t) = token_ttl_seconds {
                body.insert("token_ttl_seconds".into(), json!(t));
            }
            (
                c.call(
                    Method::PATCH,
                    &format!("/agents/{id}"),
                    Some(Value::Object(body)),
                )
                .await?,
                AGENT_COLUMNS,
            )
        }
        AgentCommand::Disable { id } => (
            c.call(Method::POST, &format!("/agents/{id}/disable"), None)
                .await?,
            AGENT_COLUMNS,
        ),
        AgentCommand::Enable { id } => (
            c.call(Method::POST, &format!("/agents/{id}/enable"), None)
                .await?,
            AGENT_COLUMNS,
        ),
        AgentCommand::Restore { id } => (
            c.call(Method::POST, &format!("/agents/{id}/restore"), None)
                .await?,
            AGENT_COLUMNS,
        ),
        AgentCommand::Delete { id } => (
            c.call(Method::DELETE, &format!("/agents/{id}"), None)
                .await?,
            AGENT_COLUMNS,
        ),
        AgentCommand::RevokeTokens { id } => (
            c.call(Method::POST, &format!("/agents/{id}/revoke-tokens"), None)
                .await?,
            AGENT_COLUMNS,
        ),
        AgentCommand::Secrets { command } => match command {
            SecretCommand::Add { agent, expires_at } => {
                let mut body = json!({ "type": "client_secret" });
                if let Some(e) = expires_at {
                    body["expires_at"] = Value::String(e);
                }
                (
                    c.call(
                        Method::POST,
                        &format!("/agents/{agent}/credentials"),
                        Some(body),
                    )
                    .await?,
                    &["id", "secret", "hint", "expires_at"][..],
                )
            }
            SecretCommand::List { agent } => (
                Value::Array(c.get_all(&format!("/agents/{agent}/credentials")).await?),
                &["id", "type", "hint", "expires_at", "created_at"][..],
            ),
            SecretCommand::Remove { agent, credential } => (
                c.call(
                    Method::DELETE,
                    &format!("/agents/{agent}/credentials/{credential}"),
                    None,
                )
                .await?,
                &[][..],
            ),
        },
    };
    print(api.json, &value, columns);
    Ok(())
}

async fn resources(command: ResourceCommand, api: &ApiArgs) -> Result<(), String> {
    let c = AdminClient::connect(api).await?;
    let value = match command {
        ResourceCommand::Create {
            identifier,
            name,
            role,
            scope,
            user_assignment_required,
            token_profile,
        } => {
            let mut body = json!({ "identifier": identifier, "roles": role, "scopes": scope, "user_assignment_required": user_assignment_required });
            if let Some(n) = name {
                body["name"] = Value::String(n);
            }
            if let Some(p) = token_profile {
                body["token_profile"] = Value::String(p);
            }
            c.call(Method::POST, "/resources", Some(body)).await?
        }
        ResourceCommand::List => Value::Array(c.get_all("/resources").await?),
        ResourceCommand::Show { id } => c.get(&format!("/resources/{id}")).await?,
        ResourceCommand::Delete { id } => {
            c.call(Method::DELETE, &format!("/resources/{id}"), None)
                .await?
        }
    };
    print(api.json, &value, RESOURCE_COLUMNS);
    Ok(())
}

async fn grants(command: GrantCommand, api: &ApiArgs, kind: &str) -> Result<(), String> {
    let c = AdminClient::connect(api).await?;
    let field = if kind == "roles" { "roles" } else { "scopes" };
    let value = match command {
        GrantCommand::Set {
            agent,
            resource,
            values,
        } => {
            c.call(
                Method::PUT,
                &format!("/agents/{agent}/{kind}"),
                Some(json!({ "resource": resource, field: values })),
            )
            .await?
        }
        GrantCommand::List { agent } => {
            Value::Array(c.get_all(&format!("/agents/{agent}/{kind}")).await?)
        }
    };
    print(api.json, &value, &["resource", field]);
    Ok(())
}

async fn blueprints(command: BlueprintCommand, api: &ApiArgs) -> Result<(), String> {
    let c = AdminClient::connect(api).await?;
    let columns: &[&str] = &["id", "name", "status", "sponsors"];
    let (value, columns) = match command {
        BlueprintCommand::Create {
            name,
            sponsor,
            description,
        } => (
            c.call(
                Method::POST,
                "/blueprints",
                Some(json!({ "name": name, "sponsors": sponsor, "description": description })),
            )
            .await?,
            columns,
        ),
        BlueprintCommand::List => (Value::Array(c.get_all("/blueprints").await?), columns),
        BlueprintCommand::Show { id } => (c.get(&format!("/blueprints/{id}")).await?, columns),
        BlueprintCommand::Delete { id } => (
            c.call(Method::DELETE, &format!("/blueprints/{id}"), None)
                .await?,
            columns,
        ),
        BlueprintCommand::AddSecret { id } => (
            c.call(
                Method::POST,
                &format!("/blueprints/{id}/credentials"),
                Some(json!({ "type": "client_secret" })),
            )
            .await?,
            &["id", "secret", "hint", "expires_at"][..],
        ),
    };
    print(api.json, &value, columns);
    Ok(())
}

async fn issuers(command: IssuerCommand, api: &ApiArgs) -> Result<(), String> {
    let c = AdminClient::connect(api).await?;
    let value = match command {
        IssuerCommand::Add {
            issuer,
            jwks_uri,
            audience,
            subject_claim,
            uses,
        } => {
            let body = json!({ "issuer": issuer, "jwks_uri": jwks_uri, "audiences": audience, "subject_claim": subject_claim, "use": uses });
            c.call(Method::POST, "/trusted-issuers", Some(body)).await?
        }
        IssuerCommand::List => Value::Array(c.get_all("/trusted-issuers").await?),
        IssuerCommand::Delete { id } => {
            c.call(Method::DELETE, &format!("/trusted-issuers/{id}"), None)
                .await?
        }
    };
    print(
        api.json,
        &value,
        &["id", "issuer", "jwks_uri", "audiences", "use"],
    );
    Ok(())
}

async fn keys(command: KeyCommand, api: &ApiArgs) -> Result<(), String> {
    let columns: &[&str] = &[
        "kid",
        "alg",
        "state",
        "created_at",
        "activate_at",
        "retired_at",
    ];
    let value = match command {
        KeyCommand::List => Value::Array(AdminClient::connect(api).await?.get_all("/keys").await?),
        KeyCommand::Rotate => {
            AdminClient::connect(api)
                .await?
                .call(Method::POST, "/keys/rotate", None)
                .await?
        }
        KeyCommand::Import { file, store } => {
            let config = store_config(&store)?;
            let pem = std::fs::read_to_string(&file)
                .map_err(|e| format!("reading {}: {e}", file.display()))?;
            let admin = offline_admin(&config).await?;
            let key = admin
                .import_key(&crate::bootstrap::system_actor(), &pem)
                .await
                .map_err(|e| e.to_string())?;
            json!({ "kid": key.kid, "state": key.state })
        }
    };
    print(api.json, &value, columns);
    Ok(())
}

async fn audit(command: AuditCommand, api: &ApiArgs) -> Result<(), String> {
    let c = AdminClient::connect(api).await?;
    match command {
        AuditCommand::List {
            agent_id,
            action,
            outcome,
            since,
            until,
            limit,
            cursor,
        } => {
            let limit = limit.map(|l| l.to_string());
            let q = query(&[
                ("agent_id", &agent_id),
                ("action", &action),
                ("outcome", &outcome),
                ("since", &since),
                ("until", &until),
                ("limit", &limit),
                ("cursor", &cursor),
            ]);
            let page = c.get(&format!("/audit{q}")).await?;
            print(
                api.json,
                &page,
                &["seq", "at", "actor", "action", "outcome", "reason"],
            );
            if let (false, Some(next)) = (api.json, page["next_cursor"].as_str()) {
                say!("more: --cursor {next}");
            }
        }
        AuditCommand::Export => {
            for e in c.get_all("/audit").await? {
                say!("{}", serde_json::to_string(&e).unwrap_or_default());
            }
        }
        AuditCommand::Verify => {
            let records: Vec<crate::domain::AuditRecord> = c
                .get_all("/audit")
                .await?
                .into_iter()
                .map(record_from_json)
                .collect::<Result<_, _>>()?;
            let n = crate::audit::verify_chain(&records).map_err(|e| e.to_string())?;
            // The chain proves every row up to its head; cutting rows off the end shows only
            // against a head recorded earlier, so the head is printed to be kept.
            let (seq, hash) = records
                .last()
                .map_or((0, crate::audit::GENESIS), |r| (r.seq, r.hash.as_str()));
            if api.json {
                say!(
                    "{}",
                    json!({"intact": true, "events": n, "last_seq": seq, "last_hash": hash})
                );
            } else {
                say!("audit chain intact: {n} events verified; head: seq {seq}, hash {hash}");
            }
        }
    }
    Ok(())
}

/// Rebuilds a record from the API's JSON so its hash can be recomputed.
fn record_from_json(v: Value) -> Result<crate::domain::AuditRecord, String> {
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    let at = s("at").ok_or("event without at")?;
    Ok(crate::domain::AuditRecord {
        seq: v["seq"].as_i64().ok_or("event without seq")?,
        event: crate::domain::AuditEvent {
            id: uuid::Uuid::parse_str(&s("id").unwrap_or_default()).map_err(|e| e.to_string())?,
            // Events keep their instant to the millisecond; the hash covers all of it.
            at: time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("event at {at:?}: {e}"))?,
            actor: s("actor").unwrap_or_default(),
            action: s("action").unwrap_or_default(),
            outcome: if s("outcome").as_deref() == Some("success") {
                crate::domain::Outcome::Success
            } else {
                crate::domain::Outcome::Failure
            },
            agent_id: s("agent_id"),
            reason: s("reason"),
            detail: v["detail"].clone(),
        },
        prev_hash: s("prev_hash").unwrap_or_default(),
        hash: s("hash").unwrap_or_default(),
    })
}

async fn token(args: TokenArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.api.credentials).ok();
    let creds: Option<crate::bootstrap::AdminCredentials> =
        text.and_then(|t| serde_json::from_str(&t).ok());
    let base = match (&args.api.url, &creds) {
        (Some(u), _) => u.trim_end_matches('/').to_owned(),
        (None, Some(c)) => c
            .token_endpoint
            .trim_end_matches("/oauth2/token")
            .to_owned(),
        (None, None) => return Err("give --url, or run where admin-credentials.json is".into()),
    };
    let (id, secret) = match (args.client_id, args.client_secret, &creds) {
        (Some(i), Some(s), _) => (i, s),
        (None, None, Some(c)) => (c.client_id.clone(), c.client_secret.clone()),
        _ => return Err("give both --client-id and --client-secret".into()),
    };
    let scope = args
        .scope
        .or_else(|| creds.map(|c| c.scope))
        .ok_or("give --scope")?;
    let http = http_client(args.api.ca.as_deref())?;
    let answer =
        client_credentials(&http, &format!("{base}/oauth2/token"), &id, &secret, &scope).await?;
    if args.api.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
    } else {
        say!("{}", answer["access_token"].as_str().unwrap_or_default());
    }
    Ok(())
}

fn decode(token: &str) -> Result<(), String> {
    let mut token = token.to_owned();
    if token == "-" {
        token.clear();
        std::io::stdin()
            .read_to_string(&mut token)
            .map_err(|e| e.to_string())?;
    }
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return Err("not a compact JWS (three dot-separated parts)".into());
    }
    let part = |p: &str, what: &str| -> Result<Value, String> {
        let bytes = crate::crypto::digest::b64url_decode(p)
            .ok_or(format!("the {what} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("the {what} is not JSON: {e}"))
    };
    let out = json!({ "header": part(parts[0], "header")?, "claims": part(parts[1], "claims")? });
    say!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}

async fn open_key_ring(config: &Config) -> Result<crate::keys::KeyRing, String> {
    let policy = crate::keys::KeyPolicy {
        algorithm: config.signing_algorithm().map_err(|e| e.to_string())?,
        prepublish: time::Duration::seconds(config.keys.prepublish_seconds),
        retire_after: time::Duration::seconds(config.keys.retire_after_seconds),
        rotate_every: None,
    };
    let rows = crate::store::open(&config.database_url())
        .await
        .map_err(|e| e.to_string())?;
    let store = crate::keys::open_store(config, rows)
        .await
        .map_err(|e| e.to_string())?;
    crate::keys::KeyRing::open(store, policy, time::OffsetDateTime::now_utc())
        .await
        .map_err(|e| e.to_string())
}

/// The admin use-cases over the store directly, for `apply` without a running server.
async fn offline_admin(config: &Config) -> Result<crate::admin::AdminService, String> {
    let store = crate::store::open(&config.database_url())
        .await
        .map_err(|e| e.to_string())?;
    let keys = std::sync::Arc::new(open_key_ring(config).await?);
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    let (audit, _writer) = crate::audit::AuditLog::start(store.clone(), metrics.clone());
    let directory = std::sync::Arc::new(crate::cache::Directory::new(
        store.clone(),
        std::time::Duration::from_millis(0),
        metrics,
    ));
    Ok(crate::admin::AdminService {
        store,
        directory,
        keys,
        audit,
        clock: std::sync::Arc::new(crate::clock::SystemClock),
        admin_resource: String::new(),
    })
}
