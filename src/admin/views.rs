//! The JSON shapes of the admin API (SPEC §8), exactly.

use super::format_time;
use crate::domain::{Agent, Blueprint, Credential, CredentialKind, Resource, TrustedIssuer};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub owners: Vec<String>,
    pub sponsors: Vec<String>,
    /// `active`, `disabled`, `expired` or `deleted`.
    pub status: String,
    pub expires_at: String,
    pub token_ttl_seconds: Option<i64>,
    pub tags: BTreeMap<String, String>,
    pub blueprint_id: Option<String>,
    pub last_active_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl AgentView {
    pub fn of(a: &Agent, now: OffsetDateTime) -> Self {
        Self {
            id: a.id.to_string(),
            client_id: a.id.to_string(),
            name: a.name.clone(),
            description: a.description.clone(),
            owners: a.owners.clone(),
            sponsors: a.sponsors.clone(),
            status: a.status(now).as_str().to_owned(),
            expires_at: format_time(a.expires_at),
            token_ttl_seconds: a.token_ttl_seconds,
            tags: a.tags.clone(),
            blueprint_id: a.blueprint_id.map(|b| b.to_string()),
            last_active_at: a.last_active_at.map(format_time),
            created_at: format_time(a.created_at),
            updated_at: format_time(a.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwk: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    pub expires_at: Option<String>,
    pub created_at: String,
}

impl CredentialView {
    pub fn of(c: &Credential) -> Self {
        let mut v = Self {
            id: c.id.to_string(),
            kind: c.kind.type_name().to_owned(),
            hint: None,
            jwk: None,
            jwks_uri: None,
            certificate: None,
            issuer: None,
            subject: None,
            audience: None,
            expires_at: c.expires_at.map(format_time),
            created_at: format_time(c.created_at),
        };
        match &c.kind {
            CredentialKind::ClientSecret { hint, .. } => v.hint = Some(hint.clone()),
            CredentialKind::PublicKey {
                jwk,
                jwks_uri,
                certificate,
            } => {
                v.jwk = jwk.clone();
                v.jwks_uri = jwks_uri.clone();
                v.certificate = certificate.clone();
            }
            CredentialKind::Federated {
                issuer,
                subject,
                audience,
            } => {
                v.issuer = Some(issuer.clone());
                v.subject = Some(subject.clone());
                v.audience = Some(audience.clone());
            }
        }
        v
    }
}

/// The answer to creating a client secret: the only time `secret` is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewSecretView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub secret: String,
    pub hint: String,
    pub expires_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView {
    pub id: String,
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub user_assignment_required: bool,
    pub token_profile: String,
    pub created_at: String,
    pub updated_at: String,
}

impl ResourceView {
    pub fn of(r: &Resource) -> Self {
        Self {
            id: r.id.to_string(),
            identifier: r.identifier.clone(),
            name: r.name.clone(),
            scopes: r.scopes.clone(),
            roles: r.roles.clone(),
            user_assignment_required: r.user_assignment_required,
            token_profile: r.token_profile.as_str().to_owned(),
            created_at: format_time(r.created_at),
            updated_at: format_time(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolesView {
    pub resource: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DelegationView {
    pub resource: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserAssignmentView {
    pub principal: String,
    pub resource: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlueprintView {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub owners: Vec<String>,
    pub sponsors: Vec<String>,
    pub status: String,
    pub default_roles: Vec<RolesView>,
    pub default_delegations: Vec<DelegationView>,
    pub created_at: String,
    pub updated_at: String,
}

impl BlueprintView {
    pub fn of(b: &Blueprint) -> Self {
        Self {
            id: b.id.to_string(),
            client_id: b.id.to_string(),
            name: b.name.clone(),
            description: b.description.clone(),
            owners: b.owners.clone(),
            sponsors: b.sponsors.clone(),
            status: if b.deleted_at.is_some() {
                "deleted"
            } else if b.disabled {
                "disabled"
            } else {
                "active"
            }
            .to_owned(),
            default_roles: b
                .default_roles
                .iter()
                .map(|(resource, roles)| RolesView {
                    resource: resource.clone(),
                    roles: roles.clone(),
                })
                .collect(),
            default_delegations: b
                .default_delegations
                .iter()
                .map(|(resource, scopes)| DelegationView {
                    resource: resource.clone(),
                    scopes: scopes.clone(),
                })
                .collect(),
            created_at: format_time(b.created_at),
            updated_at: format_time(b.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerView {
    pub id: String,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub subject_claim: String,
    pub audiences: Vec<String>,
    #[serde(rename = "use")]
    pub uses: Vec<crate::domain::IssuerUse>,
    pub created_at: String,
}

impl IssuerView {
    pub fn of(i: &TrustedIssuer) -> Self {
        Self {
            id: i.id.to_string(),
            issuer: i.issuer.clone(),
            jwks_uri: i.jwks_uri.clone(),
            jwks: i.jwks.clone(),
            subject_claim: i.subject_claim.clone(),
            audiences: i.audiences.clone(),
            uses: i.uses.clone(),
            created_at: format_time(i.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub created_at: String,
    pub activate_at: String,
    pub retired_at: Option<String>,
    pub jwk: serde_json::Value,
}
