//! Declarative setup (SPEC §9): a TOML file of resources, blueprints, agents (fixed `id` and
//! `client_secret` allowed), roles, delegations, user assignments and trusted issuers, applied
//! idempotently — applying the same file twice changes nothing the second time.

use crate::admin::agents::{CreateAgent, PatchAgent, PutDelegation, PutRoles};
use crate::admin::blueprints::{CreateBlueprint, DefaultRoles, DefaultScopes};
use crate::admin::credentials::CreateCredential;
use crate::admin::issuers::CreateIssuer;
use crate::admin::resources::{CreateResource, PatchResource, PutUserAssignment};
use crate::admin::{AdminError, AdminService, format_time, parse_time};
use crate::bootstrap::system_actor;
use crate::domain::{CredentialKind, IssuerUse, TokenProfile};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use uuid::Uuid;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyFile {
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub blueprints: Vec<BlueprintSpec>,
    #[serde(default)]
    pub agents: Vec<AgentSpec>,
    #[serde(default)]
    pub user_assignments: Vec<UserAssignmentSpec>,
    #[serde(default)]
    pub trusted_issuers: Vec<IssuerSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    pub identifier: String,
    pub name: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub user_assignment_required: bool,
    pub token_profile: Option<TokenProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueprintSpec {
    pub id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub sponsors: Vec<String>,
    #[serde(default)]
    pub default_roles: Vec<DefaultRoles>,
    #[serde(default)]
    pub default_delegations: Vec<DefaultScopes>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub resource: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub sponsors: Vec<String>,
    pub expires_at: Option<String>,
    pub token_ttl_seconds: Option<i64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The blueprint's name or id.
    pub blueprint: Option<String>,
    /// At creation, copy the blueprint's default roles and delegations.
    #[serde(default)]
    pub inherit_defaults: bool,
    pub client_secret: Option<String>,
    #[serde(default)]
    pub roles: Vec<Grant>,
    #[serde(default)]
    pub delegations: Vec<Grant>,
    #[serde(default)]
    pub federated_credentials: Vec<FederatedSpec>,
    #[serde(default)]
    pub public_keys: Vec<PublicKeySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedSpec {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeySpec {
    pub jwk: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub certificate: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserAssignmentSpec {
    pub principal: String,
    pub resource: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSpec {
    pub id: Option<Uuid>,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub subject_claim: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(rename = "use")]
    pub uses: Vec<IssuerUse>,
}

/// What applying did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read the file: {0}")]
    Read(String),
    #[error("the file is not valid: {0}")]
    Parse(String),
    #[error("{what}: {error}")]
    Admin { what: String, error: AdminError },
}

fn at(what: impl Into<String>) -> impl FnOnce(AdminError) -> ApplyError {
    let what = what.into();
    move |error| ApplyError::Admin { what, error }
}

pub async fn apply_file(admin: &AdminService, path: &Path) -> Result<ApplyReport, ApplyError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| ApplyError::Read(e.to_string()))?;
    let file: ApplyFile = toml::from_str(&text).map_err(|e| ApplyError::Parse(e.to_string()))?;
    apply(admin, file).await
}

pub async fn apply(admin: &AdminService, file: ApplyFile) -> Result<ApplyReport, ApplyError> {
    let actor = system_actor();
    let mut report = ApplyReport::default();
    for r in file.resources {
        let what = format!("resource {}", r.identifier);
        match admin
            .store
            .get_resource_by_identifier(&r.identifier)
            .await
            .map_err(|e| at(&what)(e.into()))?
        {
            None => {
                admin
                    .create_resource(
                        &actor,
                        CreateResource {
                            identifier: r.identifier.clone(),
                            name: r.name,
                            scopes: r.scopes,
                            roles: r.roles,
                            user_assignment_required: r.user_assignment_required,
                            token_profile: r.token_profile,
                        },
                    )
                    .await
                    .map_err(at(&what))?;
                report.created += 1;
            }
            Some(existing) => {
                let scopes = crate::admin::dedup(r.scopes);
                let roles = crate::admin::dedup(r.roles);
                let profile = r.token_profile.unwrap_or_default();
                let name = r.name.unwrap_or_else(|| existing.name.clone());
                if existing.scopes == scopes
                    && existing.roles == roles
                    && existing.token_profile == profile
                    && existing.user_assignment_required == r.user_assignment_required
                    && existing.name == name
                {
                    report.unchanged += 1;
                } else {
                    admin
                        .patch_resource(
                            &actor,
                            &existing.id.to_string(),
                            PatchResource {
                                name: Some(name),
                                scopes: Some(scopes),
                                roles: Some(roles),
                                user_assignment_required: Some(r.user_assignment_required),
                                token_profile: Some(profile),
                            },
                        )
                        .await
                        .map_err(at(&what))?;
                    report.updated += 1;
                }
            }
        }
    }
    for b in file.blueprints {
        let what = format!("blueprint {}", b.name);
        let existing = match b.id {
            Some(id) => admin
                .store
                .get_blueprint(id)
                .await
                .map_err(|e| at(&what)(e.into()))?,
            None => find_blueprint_by_name(admin, &b.name)
                .await
                .map_err(at(&what))?,
        };
        let id = match existing {
            Some(e) => {
                report.unchanged += 1;
                e.id
            }
            None => {
                let v = admin
                    .create_blueprint(
                        &actor,
                        CreateBlueprint {
                            name: b.name.clone(),
                            description: b.description,
                            owners: Some(b.owners),
                            sponsors: Some(b.sponsors),
                            default_roles: b.default_roles,
                            default_delegations: b.default_delegations,
                            id: b.id,
                        },
                    )
                    .await
                    .map_err(at(&what))?;
                report.created += 1;
                Uuid::parse_str(&v.id)
                    .map_err(|e| at(&what)(AdminError::Internal(e.to_string())))?
            }
        };
        if let Some(secret) = b.client_secret {
            ensure_secret(admin, id, None, secret, &mut report)
                .await
                .map_err(at(&what))?;
        }
    }
    for a in file.agents {
        apply_agent(admin, a, &mut report).await?;
    }
    for u in file.user_assignments {
        let what = format!("user assignment {} on {}", u.principal, u.resource);
        let current = admin
            .list_user_assignments(Some(&u.principal), Some(&u.resource))
            .await
            .map_err(at(&what))?;
        let scopes = crate::admin::dedup(u.scopes);
        // No assignment and an empty one are the same state.
        let held = current
            .first()
            .map(|c| c.scopes.clone())
            .unwrap_or_default();
        if held == scopes {
            report.unchanged += 1;
        } else {
            admin
                .put_user_assignment(
                    &actor,
                    PutUserAssignment {
                        principal: u.principal,
                        resource: u.resource,
                        scopes,
                    },
                )
                .await
                .map_err(at(&what))?;
            report.updated += 1;
        }
    }
    for i in file.trusted_issuers {
        let what = format!("trusted issuer {}", i.issuer);
        if admin
            .store
            .get_issuer_by_name(&i.issuer)
            .await
            .map_err(|e| at(&what)(e.into()))?
            .is_some()
        {
            report.unchanged += 1;
            continue;
        }
        admin
            .create_issuer(
                &actor,
                CreateIssuer {
                    issuer: i.issuer,
                    jwks_uri: i.jwks_uri,
                    jwks: i.jwks,
                    subject_claim: i.subject_claim,
                    audiences: i.audiences,
                    uses: i.uses,
                    id: i.id,
                },
            )
            .await
            .map_err(at(&what))?;
        report.created += 1;
    }
    Ok(report)
}

async fn find_blueprint_by_name(
    admin: &AdminService,
    name: &str,
) -> Result<Option<crate::domain::Blueprint>, AdminError> {
    Ok(admin
        .all_blueprints()
        .await?
        .into_iter()
        .find(|b| b.name == name))
}

async fn apply_agent(
    admin: &AdminService,
    a: AgentSpec,
    report: &mut ApplyReport,
) -> Result<(), ApplyError> {
    let actor = system_actor();
    let what = format!("agent {}", a.name);
    let existing = match a.id {
        Some(id) => admin
            .store
            .get_agent(id)
            .await
            .map_err(|e| at(&what)(e.into()))?,
        None => admin
            .store
            .get_agent_by_name(&a.name)
            .await
            .map_err(|e| at(&what)(e.into()))?,
    };
    let blueprint_id = match &a.blueprint {
        Some(b) => match Uuid::parse_str(b) {
            Ok(id) => Some(id),
            Err(_) => Some(
                find_blueprint_by_name(admin, b)
                    .await
                    .map_err(at(&what))?
                    .ok_or_else(|| {
                        at(&what)(AdminError::invalid(
                            "blueprint",
                            format!("no blueprint is named {b}"),
                        ))
                    })?
                    .id,
            ),
        },
        None => None,
    };
    let id = match existing {
        None => {
            let v = admin
                .create_agent(
                    &actor,
                    CreateAgent {
                        name: a.name.clone(),
                        description: a.description.clone(),
                        owners: Some(a.owners.clone()),
                        sponsors: Some(a.sponsors.clone()),
                        expires_at: a.expires_at.clone(),
                        token_ttl_seconds: a.token_ttl_seconds,
                        tags: Some(a.tags.clone()),
                        blueprint_id: blueprint_id.map(|b| b.to_string()),
                        inherit_defaults: a.inherit_defaults,
                        id: a.id,
                    },
                )
                .await
                .map_err(at(&what))?;
            report.created += 1;
            Uuid::parse_str(&v.id).map_err(|e| at(&what)(AdminError::Internal(e.to_string())))?
        }
        Some(e) => {
            let expires_at = a
                .expires_at
                .as_deref()
                .map(|t| parse_time("expires_at", t))
                .transpose()
                .map_err(at(&what))?;
            let description = a.description.clone().unwrap_or_default();
            let same = e.name == a.name
                && e.description == description
                && e.owners == a.owners
                && e.sponsors == a.sponsors
                && expires_at.is_none_or(|t| t == e.expires_at)
                && e.token_ttl_seconds == a.token_ttl_seconds
                && e.tags == a.tags;
            if same {
                report.unchanged += 1;
            } else {
                admin
                    .patch_agent(
                        &actor,
                        &e.id.to_string(),
                        PatchAgent {
                            name: Some(a.name.clone()),
                            description: Some(description),
                            owners: Some(a.owners.clone()),
                            sponsors: Some(a.sponsors.clone()),
                            expires_at: expires_at.map(format_time),
                            token_ttl_seconds: Some(a.token_ttl_seconds),
                            tags: Some(a.tags.clone()),
                        },
                    )
                    .await
                    .map_err(at(&what))?;
                report.updated += 1;
            }
            e.id
        }
    };
    if let Some(secret) = a.client_secret {
        ensure_secret(admin, id, Some(id), secret, report)
            .await
            .map_err(at(&what))?;
    }
    let current_roles = admin.list_roles(&id.to_string()).await.map_err(at(&what))?;
    for g in a.roles {
        let roles = crate::admin::dedup(g.roles);
        // No assignment and an empty one are the same state.
        let held = current_roles
            .iter()
            .find(|c| c.resource == g.resource)
            .map(|c| c.roles.clone())
            .unwrap_or_default();
        if held == roles {
            report.unchanged += 1;
        } else {
            admin
                .put_roles(
                    &actor,
                    &id.to_string(),
                    PutRoles {
                        resource: g.resource,
                        roles,
                    },
                )
                .await
                .map_err(at(&what))?;
            report.updated += 1;
        }
    }
    let current = admin
        .list_delegations(&id.to_string())
        .await
        .map_err(at(&what))?;
    for g in a.delegations {
        let scopes = crate::admin::dedup(g.scopes);
        let held = current
            .iter()
            .find(|c| c.resource == g.resource)
            .map(|c| c.scopes.clone())
            .unwrap_or_default();
        if held == scopes {
            report.unchanged += 1;
        } else {
            admin
                .put_delegation(
                    &actor,
                    &id.to_string(),
                    PutDelegation {
                        resource: g.resource,
                        scopes,
                    },
                )
                .await
                .map_err(at(&what))?;
            report.updated += 1;
        }
    }
    let credentials = admin
        .store
        .list_credentials(id)
        .await
        .map_err(|e| at(&what)(e.into()))?;
    for f in a.federated_credentials {
        let exists = credentials.iter().any(|c| {
            matches!(&c.kind, CredentialKind::Federated { issuer, subject, audience }
                if *issuer == f.issuer && *subject == f.subject && *audience == f.audience)
        });
        if exists {
            report.unchanged += 1;
            continue;
        }
        admin
            .add_credential(
                &actor,
                id,
                Some(id),
                CreateCredential::Federated {
                    issuer: f.issuer,
                    subject: f.subject,
                    audience: f.audience,
                    expires_at: None,
                },
                None,
            )
            .await
            .map_err(at(&what))?;
        report.created += 1;
    }
    for k in a.public_keys {
        let exists = credentials.iter().any(|c| {
            matches!(&c.kind, CredentialKind::PublicKey { jwk, jwks_uri, certificate }
                if *jwk == k.jwk && *jwks_uri == k.jwks_uri && *certificate == k.certificate)
        });
        if exists {
            report.unchanged += 1;
            continue;
        }
        admin
            .add_credential(
                &actor,
                id,
                Some(id),
                CreateCredential::PublicKey {
                    jwk: k.jwk,
                    jwks_uri: k.jwks_uri,
                    certificate: k.certificate,
                    expires_at: None,
                },
                None,
            )
            .await
            .map_err(at(&what))?;
        report.created += 1;
    }
    Ok(())
}

/// Adds `secret` unless one of the owner's secrets already matches it.
async fn ensure_secret(
    admin: &AdminService,
    owner: Uuid,
    agent: Option<Uuid>,
    secret: String,
    report: &mut ApplyReport,
) -> Result<(), AdminError> {
    let hashes: Vec<String> = admin
        .store
        .list_credentials(owner)
        .await?
        .into_iter()
        .filter_map(|c| match c.kind {
            CredentialKind::ClientSecret { hash, .. } => Some(hash),
            _ => None,
        })
        .collect();
    let secret = SecretString::from(secret);
    let probe = secret.clone();
    let known = tokio::task::spawn_blocking(move || {
        hashes
            .iter()
            .any(|h| crate::crypto::secret::verify_secret(probe.expose_secret(), h))
    })
    .await
    .map_err(|e| AdminError::Internal(e.to_string()))?;
    if known {
        report.unchanged += 1;
        return Ok(());
    }
    admin
        .add_credential(
            &system_actor(),
            owner,
            agent,
            CreateCredential::ClientSecret { expires_at: None },
            Some(secret),
        )
        .await?;
    report.created += 1;
    Ok(())
}
