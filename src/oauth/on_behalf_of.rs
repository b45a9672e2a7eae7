//! On-behalf-of, Entra style: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with
//! `requested_token_use=on_behalf_of`, the user's token as `assertion`, and `scope`. The same
//! decision as token exchange; the OIDC scopes MSAL always adds are ignored.

use super::client_auth::AuthenticatedClient;
use super::client_credentials::parse_role_request;
use super::delegation::DelegationRequest;
use super::token::Decision;
use super::{OAuthError, OAuthService, Params};
use time::OffsetDateTime;

const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

impl OAuthService {
    pub(super) async fn on_behalf_of(
        &self,
        client: &AuthenticatedClient,
        params: &Params,
        now: OffsetDateTime,
    ) -> Result<Decision, OAuthError> {
        if params.get("requested_token_use") != Some("on_behalf_of") {
            return Err(OAuthError::invalid_request(
                "the jwt-bearer grant is supported only with requested_token_use=on_behalf_of",
            ));
        }
        let assertion = params.require("assertion")?;
        let scope: Vec<&str> = params
            .get("scope")
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty() && !OIDC_SCOPES.contains(s))
            .collect();
        let scope = scope.join(" ");
        let mut pairs: Vec<(&str, &str)> = vec![("scope", scope.as_str())];
        for name in ["resource", "audience"] {
            if let Some(v) = params.get(name) {
                pairs.push((name, v));
            }
        }
        let target = parse_role_request(&Params::from_pairs(pairs))?;
        self.delegate(
            client,
            DelegationRequest {
                subject_token: assertion,
                actor_token: None,
                target,
                issued_token_type: None,
            },
            now,
        )
        .await
    }
}
