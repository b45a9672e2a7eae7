//! Every refusal at the token, introspection and revocation endpoints is audited once (SPEC
//! §10). The steps that know the client record their own refusals with what they know; a
//! request refused before any client was identified (a body that is not a form, a parameter
//! given twice, credentials given two ways, an unknown grant, a missing parameter) is recorded
//! here, under the client it claims to be, unverified.

use super::client_auth::BasicCredentials;
use super::{OAuthError, OAuthService, Params};
use crate::audit::{self, EventExt};
use crate::domain::{AuditEvent, Outcome};
use uuid::Uuid;

/// The endpoint a refusal happened at, named by its audit action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    Introspect,
    Revoke,
}

impl Endpoint {
    fn action(self) -> &'static str {
        match self {
            Self::Token => "token.issue",
            Self::Introspect => "token.introspect",
            Self::Revoke => "token.revoke",
        }
    }
}

/// The client a request says it comes from, before anything is verified.
pub fn claimed_client(params: Option<&Params>, basic: Option<&BasicCredentials>) -> Option<String> {
    basic
        .map(|b| b.client_id.clone())
        .or_else(|| params.and_then(|p| p.get("client_id")).map(str::to_owned))
}

/// Names, in an event about an unauthenticated caller, the client it claimed to be: only as
/// much of the claim as an id needs (it is the caller's text), and as the event's agent when it
/// is one's id.
pub(super) fn claimed_by(mut event: AuditEvent, claimed: Option<String>) -> AuditEvent {
    if let Some(id) = claimed {
        let id: String = id.chars().take(64).collect();
        if Uuid::parse_str(&id).is_ok() {
            event = event.agent(id.clone());
        }
        event = event.with("client_id", audit::elide_tokens(&id));
    }
    event
}

impl OAuthService {
    /// Records `error` unless a step already did, and hands it back.
    pub async fn refusal(
        &self,
        endpoint: Endpoint,
        claimed: Option<String>,
        error: OAuthError,
    ) -> OAuthError {
        if !error.needs_audit() {
            return error;
        }
        let mut event = audit::event(
            self.clock.now(),
            "anonymous",
            endpoint.action(),
            Outcome::Failure,
        )
        .reason(error.code.as_str(), error.description.clone());
        event = claimed_by(event, claimed);
        match self.audit.record(event).await {
            Ok(()) => error.audited(),
            Err(e) => e.into(),
        }
    }

    /// [`Self::refusal`] for the error of a whole endpoint call.
    pub(super) async fn audited<T>(
        &self,
        endpoint: Endpoint,
        claimed: Option<String>,
        result: Result<T, OAuthError>,
    ) -> Result<T, OAuthError> {
        match result {
            Ok(value) => Ok(value),
            Err(e) => Err(self.refusal(endpoint, claimed, e).await),
        }
    }
}
