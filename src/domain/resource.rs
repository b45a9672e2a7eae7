//! Resources (APIs agents call) and who holds what on them (SPEC §1).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The access-token shape a resource asks for (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenProfile {
    #[default]
    Rfc9068,
    Entra,
}

impl TokenProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rfc9068 => "rfc9068",
            Self::Entra => "entra",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rfc9068" => Some(Self::Rfc9068),
            "entra" => Some(Self::Entra),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: Uuid,
    /// The audience: `api://hotel-api`, `https://hotel.example`.
    pub identifier: String,
    pub name: String,
    /// Delegated permissions (acting for a user).
    pub scopes: Vec<String>,
    /// Application permissions (acting as itself).
    pub roles: Vec<String>,
    pub user_assignment_required: bool,
    pub token_profile: TokenProfile,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Agent X holds roles R on resource Y.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleAssignment {
    pub agent_id: Uuid,
    pub resource_id: Uuid,
    pub roles: Vec<String>,
}

/// Agent X may act for users with at most scopes S on resource Y.
#[derive(Debug, Clone, PartialEq)]
pub struct DelegationGrant {
    pub agent_id: Uuid,
    pub resource_id: Uuid,
    pub scopes: Vec<String>,
}

/// Principal P holds scopes S on resource Y.
#[derive(Debug, Clone, PartialEq)]
pub struct UserAssignment {
    pub principal: String,
    pub resource_id: Uuid,
    pub scopes: Vec<String>,
}
