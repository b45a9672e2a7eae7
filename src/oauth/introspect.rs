//! Token introspection (RFC 7662) for callers holding `introspect` or `admin` on the admin
//! resource. Anything not valid and live now answers only `{"active": false}`.

use super::client_auth::{BasicCredentials, Presented};
use super::{Challenge, ErrorCode, OAuthError, OAuthService, Params};
use crate::audit::{self, EventExt};
use crate::domain::Outcome;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_READER: &str = "reader";
pub const ROLE_INTROSPECT: &str = "introspect";

impl OAuthService {
    /// Answers an introspection request; every refusal is audited.
    pub async fn introspect(
        &self,
        params: Params,
        basic: Option<BasicCredentials>,
        bearer: Option<String>,
        source: Option<std::net::IpAddr>,
    ) -> Result<Value, OAuthError> {
        let claimed = super::refusal::claimed_client(Some(&params), basic.as_ref());
        let result = self
            .answer_introspection(params, basic, bearer, source)
            .await;
        self.audited(super::Endpoint::Introspect, claimed, result)
            .await
    }

    async fn answer_introspection(
        &self,
        params: Params,
        basic: Option<BasicCredentials>,
        bearer: Option<String>,
        source: Option<std::net::IpAddr>,
    ) -> Result<Value, OAuthError> {
        let now = self.clock.now();
        let caller = self
            .introspection_caller(&params, basic, bearer, source, now)
            .await?;
        let token = params.require("token")?;
        let verified = self.verify_own_token(token, now);
        let live = match &verified {
            Some(v) => self.check_live(v, now).await?.is_some(),
            None => false,
        };
        let mut event = audit::agent_event(now, caller, "token.introspect", Outcome::Success)
            .with("active", live);
        if let Some(v) = &verified {
            event = event.with("jti", v.jti.clone());
        }
        self.audit.record(event).await?;
        match verified {
            Some(v) if live => Ok(active_answer(v.claims)),
            _ => Ok(json!({ "active": false })),
        }
    }

    /// Who is asking, if they may: a client holding the permission, or a bearer token of ours
    /// for the admin resource carrying it.
    async fn introspection_caller(
        &self,
        params: &Params,
        basic: Option<BasicCredentials>,
        bearer: Option<String>,
        source: Option<std::net::IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Uuid, OAuthError> {
        let forbidden = || {
            OAuthError::new(
                ErrorCode::AccessDenied,
                "the caller may not introspect tokens",
            )
        };
        if let Some(bearer) = bearer {
            if basic.is_some()
                || params.get("client_secret").is_some()
                || params.get("client_assertion").is_some()
            {
                return Err(OAuthError::invalid_request(
                    "client credentials are given more than one way",
                ));
            }
            let Some(agent) = self.admin_bearer(&bearer, now).await? else {
                return Err(
                    OAuthError::invalid_client().with_challenge(Challenge::InvalidBearerToken)
                );
            };
            if !agent
                .1
                .iter()
                .any(|r| r == ROLE_INTROSPECT || r == ROLE_ADMIN)
            {
                return Err(forbidden().with_challenge(Challenge::InsufficientScope));
            }
            return Ok(agent.0);
        }
        let client = self
            .authenticate(Presented::from_request(params, basic)?, source, now)
            .await
            // A blueprint's right secret is no permission to introspect (SPEC §6: 401/403).
            .map_err(|e| {
                if e.code == ErrorCode::UnauthorizedClient {
                    forbidden()
                } else {
                    e
                }
            })?;
        let admin = self
            .directory
            .resource(&self.settings.admin_resource)
            .await?;
        let roles = match admin {
            Some(r) => self.directory.roles_on(client.agent.id, r.id).await?,
            None => Arc::new(Vec::new()),
        };
        if roles
            .iter()
            .any(|r| r == ROLE_INTROSPECT || r == ROLE_ADMIN)
        {
            Ok(client.agent.id)
        } else {
            let event =
                audit::agent_event(now, client.agent.id, "token.introspect", Outcome::Failure)
                    .reason(
                        "not_permitted",
                        "the caller holds neither introspect nor admin on the admin resource",
                    );
            self.audit.record(event).await?;
            Err(forbidden().audited())
        }
    }

    /// Checks a bearer token for the admin resource: returns the agent and its roles there.
    pub async fn admin_bearer(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Uuid, Vec<String>)>, OAuthError> {
        let Some(v) = self.verify_own_token(token, now) else {
            return Ok(None);
        };
        if !v
            .audiences()
            .iter()
            .any(|a| a == &self.settings.admin_resource)
            || !v.actors.is_empty()
        {
            return Ok(None);
        }
        let Some(agent) = self.check_live(&v, now).await? else {
            return Ok(None);
        };
        Ok(Some((agent.id, v.roles())))
    }
}

/// RFC 7662 §2.2 members from the token's claims.
fn active_answer(claims: Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("active".into(), Value::Bool(true));
    out.insert("token_type".into(), Value::String("Bearer".into()));
    for name in [
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "nbf",
        "jti",
        "act",
        "roles",
    ] {
        if let Some(v) = claims.get(name) {
            out.insert(name.into(), v.clone());
        }
    }
    if !out.contains_key("client_id")
        && let Some(azp) = claims.get("azp")
    {
        out.insert("client_id".into(), azp.clone());
    }
    if !out.contains_key("jti")
        && let Some(uti) = claims.get("uti")
    {
        out.insert("jti".into(), uti.clone());
    }
    let scope = claims
        .get("scope")
        .or_else(|| claims.get("scp"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            // An application token's permissions are its roles; RFC 7662 clients read `scope`.
            claims.get("roles").and_then(Value::as_array).map(|roles| {
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        });
    if let Some(scope) = scope {
        out.insert("scope".into(), Value::String(scope));
    }
    Value::Object(out)
}
