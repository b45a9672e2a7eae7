//! Credentials of agents and blueprints (SPEC §1, §5).

use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum CredentialKind {
    /// Only the argon2id hash is kept; `hint` is the first characters, for people.
    ClientSecret { hash: String, hint: String },
    /// A key for private_key_jwt: exactly one of the three is set.
    PublicKey {
        jwk: Option<serde_json::Value>,
        jwks_uri: Option<String>,
        certificate: Option<String>,
    },
    /// Trust a JWT from a trusted issuer with these `iss`, `sub`, `aud`.
    Federated {
        issuer: String,
        subject: String,
        audience: String,
    },
}

impl CredentialKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ClientSecret { .. } => "client_secret",
            Self::PublicKey { .. } => "public_key",
            Self::Federated { .. } => "federated",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub id: Uuid,
    /// The agent or blueprint it belongs to.
    pub owner_id: Uuid,
    pub kind: CredentialKind,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl Credential {
    pub fn is_usable(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }
}
