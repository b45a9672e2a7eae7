//! The blueprint leg, Entra style (SPEC §3): a blueprint authenticates with its own credential
//! and asks `client_credentials` with `scope=api://AzureADTokenExchange/.default` and
//! `fmi_path=<agent id>`; the answer, T1, is a short token that one of its agents then presents
//! as its `client_assertion`.

use super::assertion::TOKEN_EXCHANGE_AUDIENCE;
use super::client_auth::{AuthMethod, Failure, Presented};
use super::client_credentials::new_jti;
use super::token::TokenResponse;
use super::{OAuthError, OAuthService, Params};
use crate::audit::{self, EventExt};
use crate::domain::{Blueprint, Outcome};
use crate::federation::jwt::{checked_header, unverified_claims};
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// T1 lives at most this long (Entra's FMI tokens are short too).
const T1_LIFETIME: i64 = 600;

impl OAuthService {
    /// Authenticates a blueprint (secret or private_key_jwt) and issues T1 for `fmi_path`.
    pub(super) async fn blueprint_leg(
        &self,
        presented: Presented,
        params: &Params,
        source: Option<std::net::IpAddr>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OAuthError> {
        let claimed = match &presented {
            Presented::Secret { client_id, .. } => Some(client_id.clone()),
            Presented::Assertion { client_id, .. } => client_id.clone(),
        };
        if let Some(wait) = self.throttle.blocked(claimed.as_deref(), source) {
            return Err(self.throttled(wait, claimed, now).await);
        }
        let (blueprint, method) = match self.authenticate_blueprint(presented, now).await {
            Ok(b) => b,
            Err(f) => {
                if matches!(f, Failure::Refused { .. }) {
                    self.throttle.failed(claimed.as_deref(), source);
                }
                return Err(self.refuse_client(f, claimed, now).await);
            }
        };
        let actor = blueprint.id.to_string();
        let refuse = |e: OAuthError| async {
            let event = audit::event(now, &actor, "token.issue", Outcome::Failure)
                .reason(e.code.as_str(), e.description.clone())
                .with("grant_type", "client_credentials")
                .with("blueprint_id", actor.clone());
            match self.audit.record(event).await {
                Ok(()) => e.audited(),
                Err(a) => a.into(),
            }
        };
        if params.get("scope") != Some(&format!("{TOKEN_EXCHANGE_AUDIENCE}/.default")) {
            return Err(refuse(OAuthError::invalid_scope(format!(
                "with fmi_path the scope must be {TOKEN_EXCHANGE_AUDIENCE}/.default"
            )))
            .await);
        }
        let fmi_path = params.get("fmi_path").unwrap_or_default();
        let agent = match Uuid::parse_str(fmi_path) {
            Ok(id) => self.directory.agent(id).await?,
            Err(_) => None,
        };
        let Some(agent) = agent.filter(|a| a.blueprint_id == Some(blueprint.id)) else {
            return Err(refuse(OAuthError::unauthorized_client(
                "fmi_path names no agent of this blueprint",
            ))
            .await);
        };
        if !agent.is_active(now) {
            return Err(refuse(OAuthError::invalid_grant(format!(
                "the agent is {}",
                agent.status(now).as_str()
            )))
            .await);
        }
        let jti = new_jti(now);
        let exp = (now.unix_timestamp() + T1_LIFETIME).min(agent.expires_at.unix_timestamp());
        let claims = json!({
            "iss": self.settings.issuer,
            "sub": agent.id.to_string(),
            "aud": TOKEN_EXCHANGE_AUDIENCE,
            "client_id": blueprint.id.to_string(),
            "azp": blueprint.id.to_string(),
            "azpacr": method.azpacr(),
            "idtyp": "app",
            "tid": self.settings.tenant_id,
            "iat": now.unix_timestamp(),
            "nbf": now.unix_timestamp(),
            "exp": exp,
            "jti": jti.to_string(),
        });
        let token = self.keys.signing_key().sign("JWT", &claims).map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            OAuthError::server_error()
        })?;
        let event = audit::event(now, &actor, "token.issue", Outcome::Success)
            .agent(agent.id)
            .with("grant_type", "client_credentials")
            .with("blueprint_id", actor.clone())
            .with("fmi_path", agent.id.to_string())
            .with("client_auth", method.as_str())
            .with("audience", TOKEN_EXCHANGE_AUDIENCE)
            .with("jti", jti.to_string())
            .with("expires_at", exp);
        self.audit.record(event).await?;
        Ok(TokenResponse {
            access_token: token,
            token_type: "Bearer",
            expires_in: exp - now.unix_timestamp(),
            scope: None,
            issued_token_type: None,
        })
    }

    async fn authenticate_blueprint(
        &self,
        presented: Presented,
        now: OffsetDateTime,
    ) -> Result<(Arc<Blueprint>, AuthMethod), Failure> {
        let (client_id, method) = match &presented {
            Presented::Secret {
                client_id, basic, ..
            } => (
                client_id.clone(),
                if *basic {
                    AuthMethod::ClientSecretBasic
                } else {
                    AuthMethod::ClientSecretPost
                },
            ),
            Presented::Assertion {
                client_id,
                assertion,
                ..
            } => {
                let sub = unverified_claims(assertion)
                    .ok()
                    .and_then(|c| c.get("sub").and_then(Value::as_str).map(str::to_owned));
                (
                    client_id.clone().or(sub).unwrap_or_default(),
                    AuthMethod::PrivateKeyJwt,
                )
            }
        };
        let blueprint = match Uuid::parse_str(&client_id) {
            Ok(id) => self.store.get_blueprint(id).await.map_err(Failure::store)?,
            Err(_) => None,
        };
        let Some(blueprint) = blueprint else {
            if let Presented::Secret { secret, .. } = &presented {
                let agent = match Uuid::parse_str(&client_id) {
                    Ok(id) => self.directory.agent(id).await.map_err(Failure::store)?,
                    Err(_) => None,
                };
                match agent {
                    Some(agent) if agent.is_active(now) => {
                        self.match_secret(agent.id, secret, now).await?;
                        return Err(Failure::WrongRequest(OAuthError::unauthorized_client(
                            "fmi_path is for a blueprint asking for one of its agents; an agent \
                             asks for its own token without it",
                        )));
                    }
                    // Same cost as a wrong secret, so timing does not tell.
                    _ => {
                        let _ = self.match_secret(Uuid::nil(), secret, now).await;
                    }
                }
            }
            return Err(Failure::refused(
                "unknown_client",
                "no blueprint has this client_id",
            ));
        };
        match presented {
            Presented::Secret { secret, .. } => {
                self.match_secret(blueprint.id, &secret, now).await?;
            }
            Presented::Assertion {
                assertion,
                reusable,
                ..
            } => {
                let claims = unverified_claims(&assertion)
                    .map_err(|e| Failure::refused("assertion_malformed", e))?;
                let id = blueprint.id.to_string();
                if claims.get("iss").and_then(Value::as_str) != Some(&id)
                    || claims.get("sub").and_then(Value::as_str) != Some(&id)
                {
                    return Err(Failure::refused(
                        "assertion_subject",
                        "the assertion's iss and sub must be the blueprint",
                    ));
                }
                let header =
                    checked_header(&assertion).map_err(|e| Failure::refused("assertion_alg", e))?;
                self.verify_key_assertion(blueprint.id, &header, &assertion, reusable, now)
                    .await?;
            }
        }
        if !blueprint.is_active() {
            return Err(Failure::refused(
                "blueprint_not_active",
                "the blueprint is disabled or deleted",
            ));
        }
        Ok((Arc::new(blueprint), method))
    }
}
