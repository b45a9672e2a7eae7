//! Table rows and their conversion to domain types. Times are stored as Unix seconds.

use super::{StoreError, StoreResult};
use crate::domain::{
    Agent, AuditEvent, AuditRecord, Blueprint, Credential, CredentialKind, IssuerUse, Outcome,
    Resource, TokenProfile, TrustedIssuer,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn secs(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub fn time_of(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn parse_json<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub fn uuid(text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("id {text:?}: {e}")))
}

#[derive(sqlx::FromRow)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owners: String,
    pub sponsors: String,
    pub disabled: bool,
    pub deleted_at: Option<i64>,
    pub expires_at: i64,
    pub token_ttl_seconds: Option<i64>,
    pub tags: String,
    pub blueprint_id: Option<String>,
    pub last_active_at: Option<i64>,
    pub tokens_revoked_before_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl AgentRow {
    pub fn into_agent(self) -> StoreResult<Agent> {
        Ok(Agent {
            id: uuid(&self.id)?,
            name: self.name,
            description: self.description,
            owners: parse_json(&self.owners, "owners")?,
            sponsors: parse_json(&self.sponsors, "sponsors")?,
            disabled: self.disabled,
            deleted_at: self.deleted_at.map(time_of),
            expires_at: time_of(self.expires_at),
            token_ttl_seconds: self.token_ttl_seconds,
            tags: parse_json(&self.tags, "tags")?,
            blueprint_id: self.blueprint_id.as_deref().map(uuid).transpose()?,
            last_active_at: self.last_active_at.map(time_of),
            tokens_revoked_before_ms: self.tokens_revoked_before_ms,
            created_at: time_of(self.created_at),
            updated_at: time_of(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct BlueprintRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owners: String,
    pub sponsors: String,
    pub disabled: bool,
    pub deleted_at: Option<i64>,
    pub default_roles: String,
    pub default_delegations: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl BlueprintRow {
    pub fn into_blueprint(self) -> StoreResult<Blueprint> {
        Ok(Blueprint {
            id: uuid(&self.id)?,
            name: self.name,
            description: self.description,
            owners: parse_json(&self.owners, "owners")?,
            sponsors: parse_json(&self.sponsors, "sponsors")?,
            disabled: self.disabled,
            deleted_at: self.deleted_at.map(time_of),
            default_roles: parse_json(&self.default_roles, "default_roles")?,
            default_delegations: parse_json(&self.default_delegations, "default_delegations")?,
            created_at: time_of(self.created_at),
            updated_at: time_of(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct CredentialRow {
    pub id: String,
    pub owner_id: String,
    pub kind: String,
    pub secret_hash: Option<String>,
    pub hint: Option<String>,
    pub jwk: Option<String>,
    pub jwks_uri: Option<String>,
    pub certificate: Option<String>,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

impl CredentialRow {
    pub fn from_credential(c: &Credential) -> Self {
        let mut row = Self {
            id: c.id.to_string(),
            owner_id: c.owner_id.to_string(),
            kind: c.kind.type_name().to_owned(),
            secret_hash: None,
            hint: None,
            jwk: None,
            jwks_uri: None,
            certificate: None,
            issuer: None,
            subject: None,
            audience: None,
            expires_at: c.expires_at.map(secs),
            created_at: secs(c.created_at),
        };
        match &c.kind {
            CredentialKind::ClientSecret { hash, hint } => {
                row.secret_hash = Some(hash.clone());
                row.hint = Some(hint.clone());
            }
            CredentialKind::PublicKey {
                jwk,
                jwks_uri,
                certificate,
            } => {
                row.jwk = jwk.as_ref().map(json);
                row.jwks_uri = jwks_uri.clone();
                row.certificate = certificate.clone();
            }
            CredentialKind::Federated {
                issuer,
                subject,
                audience,
            } => {
                row.issuer = Some(issuer.clone());
                row.subject = Some(subject.clone());
                row.audience = Some(audience.clone());
            }
        }
        row
    }

    pub fn into_credential(self) -> StoreResult<Credential> {
        let missing =
            |what: &str| StoreError::Corrupt(format!("credential {} lacks {what}", self.id));
        let kind = match self.kind.as_str() {
            "client_secret" => CredentialKind::ClientSecret {
                hash: self
                    .secret_hash
                    .clone()
                    .ok_or_else(|| missing("secret_hash"))?,
                hint: self.hint.clone().unwrap_or_default(),
            },
            "public_key" => CredentialKind::PublicKey {
                jwk: self
                    .jwk
                    .as_deref()
                    .map(|j| parse_json(j, "jwk"))
                    .transpose()?,
                jwks_uri: self.jwks_uri.clone(),
                certificate: self.certificate.clone(),
            },
            "federated" => CredentialKind::Federated {
                issuer: self.issuer.clone().ok_or_else(|| missing("issuer"))?,
                subject: self.subject.clone().ok_or_else(|| missing("subject"))?,
                audience: self.audience.clone().ok_or_else(|| missing("audience"))?,
            },
            other => return Err(StoreError::Corrupt(format!("credential kind {other:?}"))),
        };
        Ok(Credential {
            id: uuid(&self.id)?,
            owner_id: uuid(&self.owner_id)?,
            kind,
            expires_at: self.expires_at.map(time_of),
            created_at: time_of(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ResourceRow {
    pub id: String,
    pub identifier: String,
    pub name: String,
    pub scopes: String,
    pub roles: String,
    pub user_assignment_required: bool,
    pub token_profile: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ResourceRow {
    pub fn into_resource(self) -> StoreResult<Resource> {
        Ok(Resource {
            id: uuid(&self.id)?,
            identifier: self.identifier,
            name: self.name,
            scopes: parse_json(&self.scopes, "scopes")?,
            roles: parse_json(&self.roles, "roles")?,
            user_assignment_required: self.user_assignment_required,
            token_profile: TokenProfile::parse(&self.token_profile)
                .ok_or_else(|| StoreError::Corrupt(format!("profile {}", self.token_profile)))?,
            created_at: time_of(self.created_at),
            updated_at: time_of(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct IssuerRow {
    pub id: String,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub jwks: Option<String>,
    pub subject_claim: String,
    pub audiences: String,
    pub uses: String,
    pub created_at: i64,
}

impl IssuerRow {
    pub fn into_issuer(self) -> StoreResult<TrustedIssuer> {
        Ok(TrustedIssuer {
            id: uuid(&self.id)?,
            issuer: self.issuer,
            jwks_uri: self.jwks_uri,
            jwks: self
                .jwks
                .as_deref()
                .map(|j| parse_json(j, "jwks"))
                .transpose()?,
            subject_claim: self.subject_claim,
            audiences: parse_json(&self.audiences, "audiences")?,
            uses: parse_json::<Vec<IssuerUse>>(&self.uses, "uses")?,
            created_at: time_of(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub agent_id: Option<String>,
    pub reason: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    pub fn into_record(self) -> StoreResult<AuditRecord> {
        Ok(AuditRecord {
            seq: self.seq,
            event: AuditEvent {
                id: uuid(&self.id)?,
                at: OffsetDateTime::from_unix_timestamp_nanos(self.at_ms as i128 * 1_000_000)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                actor: self.actor,
                action: self.action,
                outcome: if self.outcome == "success" {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                agent_id: self.agent_id,
                reason: self.reason,
                detail: parse_json(&self.detail, "detail")?,
            },
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ScopedRow {
    pub owner: String,
    pub resource_id: String,
    pub items: String,
}

impl ScopedRow {
    pub fn items(&self) -> StoreResult<Vec<String>> {
        parse_json(&self.items, "assignment")
    }
}
