//! Audit events (SPEC §10): what happened, to whom, the outcome and why.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// An event before it joins the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: uuid::Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who acted: an agent id, `anonymous`, or `system`.
    pub actor: String,
    /// What: `client.authenticate`, `token.issue`, `agent.create`…
    pub action: String,
    pub outcome: Outcome,
    /// The agent concerned, for filtering.
    pub agent_id: Option<String>,
    /// A machine-readable reason code for refusals.
    pub reason: Option<String>,
    /// Everything else: explanation, grant, audience, scopes, jti, before/after.
    pub detail: serde_json::Value,
}

/// An event serialized once, when it was recorded (`audit::prepare`): the canonical JSON its
/// chain hash covers, and the JSON of its detail, which the store keeps.
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    pub event: AuditEvent,
    pub canonical_json: Vec<u8>,
    pub detail_json: String,
}

/// A stored event with its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}
