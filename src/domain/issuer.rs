//! Trusted external issuers (SPEC §1).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssuerUse {
    SubjectTokens,
    FederatedCredentials,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrustedIssuer {
    pub id: Uuid,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub subject_claim: String,
    pub audiences: Vec<String>,
    pub uses: Vec<IssuerUse>,
    pub created_at: OffsetDateTime,
}

impl TrustedIssuer {
    pub fn allows(&self, use_: IssuerUse) -> bool {
        self.uses.contains(&use_)
    }
}
