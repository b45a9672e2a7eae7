//! Token exchange (RFC 8693 §2.1): an agent presents a user's token and asks for a token to act
//! for that user on a target. The decision is `delegate`'s.

use super::client_auth::AuthenticatedClient;
use super::client_credentials::parse_role_request;
use super::delegation::DelegationRequest;
use super::token::{Decision, TOKEN_TYPE_ACCESS_TOKEN};
use super::{OAuthError, OAuthService, Params};
use time::OffsetDateTime;

pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// RFC 8693 §3: the token types accepted as subject and actor tokens.
fn check_token_type(name: &str, value: &str) -> Result<(), OAuthError> {
    match value {
        TOKEN_TYPE_ACCESS_TOKEN | TOKEN_TYPE_JWT | TOKEN_TYPE_ID_TOKEN => Ok(()),
        other => Err(OAuthError::invalid_request(format!(
            "{name} {other:?} is not supported: use the access_token, jwt or id_token URN"
        ))),
    }
}

impl OAuthService {
    pub(super) async fn token_exchange(
        &self,
        client: &AuthenticatedClient,
        params: &Params,
        now: OffsetDateTime,
    ) -> Result<Decision, OAuthError> {
        let subject_token = params.require("subject_token")?;
        check_token_type("subject_token_type", params.require("subject_token_type")?)?;
        let actor_token = params.get("actor_token");
        match (actor_token, params.get("actor_token_type")) {
            (Some(_), Some(t)) => check_token_type("actor_token_type", t)?,
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type is required with actor_token",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type without actor_token",
                ));
            }
            (None, None) => {}
        }
        let issued_token_type = match params.get("requested_token_type") {
            None | Some(TOKEN_TYPE_ACCESS_TOKEN) => TOKEN_TYPE_ACCESS_TOKEN,
            Some(TOKEN_TYPE_JWT) => TOKEN_TYPE_JWT,
            Some(other) => {
                return Err(OAuthError::invalid_request(format!(
                    "requested_token_type {other:?} cannot be issued: use the access_token or jwt URN"
                )));
            }
        };
        let target = parse_role_request(params).map_err(|e| {
            if e.code == super::ErrorCode::InvalidScope
                && params.get("resource").is_none()
                && params.get("audience").is_none()
            {
                OAuthError::invalid_target(
                    "name the target with resource=, audience=, or <identifier>/<scope> scopes",
                )
            } else {
                e
            }
        })?;
        self.delegate(
            client,
            DelegationRequest {
                subject_token,
                actor_token,
                target,
                issued_token_type: Some(issued_token_type),
            },
            now,
        )
        .await
        .map_err(rfc8693_error)
    }
}

/// RFC 8693 §2.2.2: a subject or actor token that is invalid or unacceptable "for any reason"
/// is `invalid_request` here. The shared decision says `invalid_grant`, which is right for the
/// on-behalf-of grant (RFC 7523 §3.1, and what Entra answers); scope and target refusals keep
/// their own codes.
fn rfc8693_error(e: OAuthError) -> OAuthError {
    if e.code == super::ErrorCode::InvalidGrant {
        OAuthError {
            code: super::ErrorCode::InvalidRequest,
            ..e
        }
    } else {
        e
    }
}
