//! Checking this server's own access tokens: signature by a published key, issuer, time, and
//! then liveness — not revoked, every agent of its chain still active.

use super::OAuthService;
use super::claims::jti_from_uti;
use crate::domain::Agent;
use jsonwebtoken::Validation;
use serde_json::{Map, Value};
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// A token whose signature, issuer and lifetime check out.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub claims: Map<String, Value>,
    pub jti: String,
    pub client_id: Uuid,
    pub issued_ms: i64,
    pub expires_at: i64,
    /// The agents of the `act` chain, outermost first.
    pub actors: Vec<Uuid>,
}

impl VerifiedToken {
    pub fn audiences(&self) -> Vec<String> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn roles(&self) -> Vec<String> {
        match self.claims.get("roles") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn scopes(&self) -> Vec<String> {
        self.claims
            .get("scope")
            .or_else(|| self.claims.get("scp"))
            .and_then(Value::as_str)
            .map(|s| {
                s.split(' ')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }
}

/// The agents named in an `act` chain, outermost first (RFC 8693 §4.1).
pub fn actors_of(act: Option<&Value>) -> Vec<Uuid> {
    let mut out = Vec::new();
    let mut cur = act;
    while let Some(Value::Object(a)) = cur {
        if let Some(id) = a
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        {
            out.push(id);
        }
        cur = a.get("act");
    }
    out
}

impl OAuthService {
    /// Checks signature, issuer and lifetime of one of this server's tokens. `None` means
    /// "not a token of ours that is valid now", whatever the cause.
    pub fn verify_own_token(&self, token: &str, now: OffsetDateTime) -> Option<VerifiedToken> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let (key, alg) = self.keys.verifying_key(header.kid.as_deref()?)?;
        if header.alg != alg {
            return None;
        }
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).ok()?;
        let claims = data.claims;
        let iss = claims.get("iss")?.as_str()?;
        let entra_iss = format!("{}/{}/v2.0", self.settings.issuer, self.settings.tenant_id);
        if iss != self.settings.issuer && iss != entra_iss {
            return None;
        }
        let t = now.unix_timestamp();
        let exp = claims.get("exp")?.as_i64()?;
        if exp <= t {
            return None;
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > t)
        {
            return None;
        }
        let jti = match claims.get("jti").and_then(Value::as_str) {
            Some(j) => Uuid::parse_str(j).ok()?,
            None => jti_from_uti(claims.get("uti")?.as_str()?)?,
        };
        let client_id = claims
            .get("client_id")
            .or_else(|| claims.get("azp"))
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())?;
        let issued_ms = match jti.get_timestamp() {
            Some(ts) => {
                let (secs, nanos) = ts.to_unix();
                secs as i64 * 1000 + i64::from(nanos / 1_000_000)
            }
            None => claims.get("iat")?.as_i64()? * 1000,
        };
        let actors = actors_of(claims.get("act"));
        Some(VerifiedToken {
            claims,
            jti: jti.to_string(),
            client_id,
            issued_ms,
            expires_at: exp,
            actors,
        })
    }

    /// Whether a verified token is still live, read from the store (not the cache) so that a
    /// revocation on any replica shows at once. Returns the client agent when live.
    pub async fn check_live(
        &self,
        token: &VerifiedToken,
        now: OffsetDateTime,
    ) -> Result<Option<Arc<Agent>>, crate::store::StoreError> {
        if self.store.is_token_revoked(&token.jti).await? {
            return Ok(None);
        }
        let mut client = None;
        let mut chain = vec![token.client_id];
        chain.extend(token.actors.iter().copied());
        chain.dedup();
        for id in chain {
            let Some(agent) = self.store.get_agent(id).await? else {
                return Ok(None);
            };
            if !agent.is_active(now) || agent.revoked_token_issued_at(token.issued_ms) {
                return Ok(None);
            }
            if id == token.client_id {
                client = Some(Arc::new(agent));
            }
        }
        Ok(client)
    }
}
