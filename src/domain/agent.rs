//! Agents and blueprints (SPEC §1).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// How long a deleted agent can be restored.
pub const RESTORE_WINDOW: time::Duration = time::Duration::days(30);

/// The status an agent shows; `expired` is derived from `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Active,
    Disabled,
    Expired,
    Deleted,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
            Self::Deleted => "deleted",
        }
    }
}

impl std::str::FromStr for AgentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            "expired" => Ok(Self::Expired),
            "deleted" => Ok(Self::Deleted),
            other => Err(format!(
                "unknown status {other:?}: use active, disabled, expired or deleted"
            )),
        }
    }
}

/// One agent identity. Its `id` is also its OAuth `client_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub owners: Vec<String>,
    pub sponsors: Vec<String>,
    pub disabled: bool,
    pub deleted_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
    pub token_ttl_seconds: Option<i64>,
    pub tags: BTreeMap<String, String>,
    pub blueprint_id: Option<Uuid>,
    pub last_active_at: Option<OffsetDateTime>,
    /// Tokens issued before this instant (Unix ms) are revoked: set by revoke-tokens, disable
    /// and delete, so re-enabling never resurrects old tokens.
    pub tokens_revoked_before_ms: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Agent {
    pub fn status(&self, now: OffsetDateTime) -> AgentStatus {
        if self.deleted_at.is_some() {
            AgentStatus::Deleted
        } else if self.disabled {
            AgentStatus::Disabled
        } else if self.expires_at <= now {
            AgentStatus::Expired
        } else {
            AgentStatus::Active
        }
    }

    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.status(now) == AgentStatus::Active
    }

    /// Whether a token of this agent issued at `issued_ms` (Unix ms) was revoked wholesale.
    pub fn revoked_token_issued_at(&self, issued_ms: i64) -> bool {
        issued_ms < self.tokens_revoked_before_ms
    }
}

/// A template for a kind of agent (Entra Agent ID's agent identity blueprint).
#[derive(Debug, Clone, PartialEq)]
pub struct Blueprint {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub owners: Vec<String>,
    pub sponsors: Vec<String>,
    pub disabled: bool,
    pub deleted_at: Option<OffsetDateTime>,
    /// Role assignments its agents may inherit: resource identifier → roles.
    pub default_roles: BTreeMap<String, Vec<String>>,
    /// Delegation grants its agents may inherit: resource identifier → scopes.
    pub default_delegations: BTreeMap<String, Vec<String>>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Blueprint {
    pub fn is_active(&self) -> bool {
        !self.disabled && self.deleted_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use time::macros::datetime;

    fn agent() -> Agent {
        let t = datetime!(2026-01-01 0:00 UTC);
        Agent {
            id: Uuid::nil(),
            name: "a".into(),
            description: String::new(),
            owners: vec![],
            sponsors: vec!["s".into()],
            disabled: false,
            deleted_at: None,
            expires_at: datetime!(2026-02-01 0:00 UTC),
            token_ttl_seconds: None,
            tags: BTreeMap::new(),
            blueprint_id: None,
            last_active_at: None,
            tokens_revoked_before_ms: 0,
            created_at: t,
            updated_at: t,
        }
    }

    #[rstest]
    #[case(false, false, datetime!(2026-01-15 0:00 UTC), AgentStatus::Active)]
    #[case(true, false, datetime!(2026-01-15 0:00 UTC), AgentStatus::Disabled)]
    #[case(false, false, datetime!(2026-02-01 0:00 UTC), AgentStatus::Expired)]
    #[case(true, true, datetime!(2026-03-01 0:00 UTC), AgentStatus::Deleted)]
    fn status_is_derived(
        #[case] disabled: bool,
        #[case] deleted: bool,
        #[case] now: OffsetDateTime,
        #[case] expected: AgentStatus,
    ) {
        let mut a = agent();
        a.disabled = disabled;
        a.deleted_at = deleted.then_some(now);
        assert_eq!(a.status(now), expected);
    }
}
