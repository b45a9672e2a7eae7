//! Token revocation (RFC 7009): an agent revokes its own tokens.

use super::client_auth::{BasicCredentials, Presented};
use super::{OAuthError, OAuthService, Params};
use crate::audit::{self, EventExt};
use crate::clock::from_unix_seconds;
use crate::domain::Outcome;

impl OAuthService {
    /// RFC 7009 §2.2: an unknown, invalid or already-expired token is not an error. Every
    /// refusal is audited.
    pub async fn revoke(
        &self,
        params: Params,
        basic: Option<BasicCredentials>,
        source: Option<std::net::IpAddr>,
    ) -> Result<(), OAuthError> {
        let claimed = super::refusal::claimed_client(Some(&params), basic.as_ref());
        let result = self.revoke_for(params, basic, source).await;
        self.audited(super::Endpoint::Revoke, claimed, result).await
    }

    async fn revoke_for(
        &self,
        params: Params,
        basic: Option<BasicCredentials>,
        source: Option<std::net::IpAddr>,
    ) -> Result<(), OAuthError> {
        let now = self.clock.now();
        let presented = Presented::from_request(&params, basic)?;
        let client = self.authenticate(presented, source, now).await?;
        let token = params.require("token")?;
        let Some(verified) = self.verify_own_token(token, now) else {
            let event = audit::agent_event(now, client.agent.id, "token.revoke", Outcome::Success)
                .with("result", "not a live token of this server; nothing to do");
            self.audit.record(event).await?;
            return Ok(());
        };
        if verified.client_id != client.agent.id {
            let event = audit::agent_event(now, client.agent.id, "token.revoke", Outcome::Failure)
                .reason("not_owner", "the token was issued to another client")
                .with("jti", verified.jti.clone());
            self.audit.record(event).await?;
            return Err(
                OAuthError::unauthorized_client("the token was not issued to this client")
                    .audited(),
            );
        }
        self.store
            .revoke_token(&verified.jti, from_unix_seconds(verified.expires_at))
            .await?;
        let event = audit::agent_event(now, client.agent.id, "token.revoke", Outcome::Success)
            .with("jti", verified.jti);
        self.audit.record(event).await?;
        Ok(())
    }
}
