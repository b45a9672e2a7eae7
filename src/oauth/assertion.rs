//! Client assertions (RFC 7523 §2.2, §3): the client proves who it is with a JWT, signed
//!  - by a key registered on the agent (private_key_jwt: `iss` = `sub` = the client),
//!  - by a trusted issuer, matching one of the agent's federated credentials (`iss`, `sub`, `aud`),
//!  - or by this server: a blueprint's T1 for this agent (the Entra `fmi_path` leg).

use super::OAuthService;
use super::client_auth::{AuthMethod, AuthenticatedClient, Failure};
use crate::crypto::digest::{b64url_decode, sha1, sha256};
use crate::crypto::signing_key::pem_body;
use crate::domain::{Agent, AgentStatus, Credential, CredentialKind, IssuerUse};
use crate::federation::jwt::{
    audiences, check_times, checked_header, unverified_claims, verify_signature, verify_with_set,
};
use crate::store::StoreError;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Header};
use serde_json::{Map, Value};
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// Seconds of clock skew tolerated on `nbf` and `iat`.
const LEEWAY: i64 = 60;
/// The audience of a blueprint's T1 (Entra's token-exchange audience).
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

impl OAuthService {
    pub(super) async fn check_assertion(
        &self,
        client_id: Option<&str>,
        assertion: &str,
        reusable: bool,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedClient, Failure> {
        let header = checked_header(assertion).map_err(|e| Failure::refused("assertion_alg", e))?;
        let claims =
            unverified_claims(assertion).map_err(|e| Failure::refused("assertion_malformed", e))?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::refused("assertion_malformed", "the assertion has no iss"))?;
        let sub = claims.get("sub").and_then(Value::as_str);
        let client = client_id.or(sub).ok_or_else(|| {
            Failure::refused(
                "assertion_malformed",
                "neither client_id nor sub names the client",
            )
        })?;
        if iss == client {
            return self
                .private_key_jwt(client, &header, assertion, &claims, reusable, now)
                .await;
        }
        if self.is_own_issuer(iss) {
            return self.blueprint_assertion(client, assertion, now).await;
        }
        match self.directory.issuer(iss).await.map_err(Failure::store)? {
            Some(issuer) if issuer.allows(IssuerUse::FederatedCredentials) => {
                let client = client_id.ok_or_else(|| {
                    Failure::refused(
                        "assertion_malformed",
                        "a federated assertion needs client_id",
                    )
                })?;
                self.federated_assertion(client, &issuer, &header, assertion, now)
                    .await
            }
            _ => Err(Failure::refused(
                "assertion_issuer",
                format!(
                    "the assertion's iss {iss:?} is neither the client nor a trusted issuer for federated credentials"
                ),
            )),
        }
    }

    pub fn is_own_issuer(&self, iss: &str) -> bool {
        iss == self.settings.issuer || iss == self.settings.entra_issuer()
    }

    async fn active_agent(&self, client: &str, now: OffsetDateTime) -> Result<Arc<Agent>, Failure> {
        let id = Uuid::parse_str(client)
            .map_err(|_| Failure::refused("unknown_client", "no agent has this client_id"))?;
        let agent = self
            .directory
            .agent(id)
            .await
            .map_err(Failure::store)?
            .ok_or_else(|| Failure::refused("unknown_client", "no agent has this client_id"))?;
        let status = agent.status(now);
        if status != AgentStatus::Active {
            return Err(Failure::refused(
                "agent_not_active",
                format!("the agent is {}", status.as_str()),
            ));
        }
        Ok(agent)
    }

    /// RFC 7523 §3: `aud` names this server's token endpoint (either route) or its issuer.
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), Failure> {
        let accepted = self.settings.assertion_audiences();
        // Without regard to case: hosts, and Entra's tenant ids, are matched that way.
        if audiences(claims).iter().any(|a| {
            accepted
                .iter()
                .any(|x| x.eq_ignore_ascii_case(a.trim_end_matches('/')))
        }) {
            Ok(())
        } else {
            Err(Failure::refused(
                "assertion_audience",
                format!(
                    "the assertion's aud {:?} is not this server's token endpoint or issuer",
                    audiences(claims)
                ),
            ))
        }
    }

    async fn private_key_jwt(
        &self,
        client: &str,
        header: &Header,
        assertion: &str,
        claims: &Map<String, Value>,
        reusable: bool,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedClient, Failure> {
        if claims.get("sub").and_then(Value::as_str) != Some(client) {
            return Err(Failure::refused(
                "assertion_subject",
                "the assertion's sub is not the client",
            ));
        }
        let agent = self.active_agent(client, now).await?;
        let credential_id = self
            .verify_key_assertion(agent.id, header, assertion, reusable, now)
            .await?;
        Ok(AuthenticatedClient {
            agent,
            method: AuthMethod::PrivateKeyJwt,
            credential_id,
            via: Some(client.to_owned()),
        })
    }

    /// RFC 7523 §3 for an assertion signed by one of `owner`'s registered keys: signature,
    /// audience, lifetime, and single use of its `jti`. Returns the matching credential.
    pub(super) async fn verify_key_assertion(
        &self,
        owner: Uuid,
        header: &Header,
        assertion: &str,
        reusable: bool,
        now: OffsetDateTime,
    ) -> Result<Uuid, Failure> {
        let credentials = self
            .directory
            .credentials(owner)
            .await
            .map_err(Failure::store)?;
        let mut verified = None;
        for c in credentials.iter().filter(|c| c.is_usable(now)) {
            if let CredentialKind::PublicKey { .. } = c.kind
                && let Some(claims) = self.verify_with_credential(c, header, assertion).await
            {
                verified = Some((c.id, claims));
                break;
            }
        }
        let Some((credential_id, claims)) = verified else {
            return Err(Failure::refused(
                "assertion_signature",
                "no key registered on the client verifies the assertion",
            ));
        };
        self.check_audience(&claims)?;
        let exp = check_times(&claims, now.unix_timestamp(), LEEWAY)
            .map_err(|e| Failure::refused("assertion_time", e))?;
        if exp > (now.unix_timestamp() + self.settings.assertion_max_lifetime) as f64 {
            return Err(Failure::refused(
                "assertion_lifetime",
                format!(
                    "the assertion's exp is more than {} seconds ahead",
                    self.settings.assertion_max_lifetime
                ),
            ));
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::refused("assertion_jti", "the assertion has no jti"))?;
        // Each route keeps its own mark: the RFC route's is single use; the Entra route's lets
        // MSAL present one assertion again until it expires, but takes none the RFC route has
        // spent, and spends its own for the RFC route.
        let spent_here = format!("pkj\n{owner}\n{jti}");
        let used_on_entra = format!("pkj-entra\n{owner}\n{jti}");
        let until = crate::clock::from_unix_seconds(exp.ceil() as i64);
        let store_failure = |e: String| Failure::store(StoreError::Database(e));
        let replayed = || {
            Failure::refused(
                "assertion_replayed",
                format!("the assertion's jti {jti:?} was already used"),
            )
        };
        if reusable {
            // Marked first, then checked: the RFC route claims both keys in one transaction,
            // so whichever way two routes' requests interleave, one of them is refused.
            self.replay_guard
                .claim(used_on_entra, until)
                .await
                .map_err(store_failure)?;
            if self
                .replay_guard
                .was_claimed(&spent_here)
                .await
                .map_err(store_failure)?
            {
                return Err(replayed());
            }
            return Ok(credential_id);
        }
        let fresh = self
            .replay_guard
            .claim_together(vec![(spent_here, until), (used_on_entra, until)])
            .await
            .map_err(store_failure)?;
        if fresh != [true, true] {
            return Err(replayed());
        }
        Ok(credential_id)
    }

    /// Verifies with one public-key credential, honouring `kid`, `x5t` and `x5t#S256` hints.
    async fn verify_with_credential(
        &self,
        c: &Credential,
        header: &Header,
        assertion: &str,
    ) -> Option<Map<String, Value>> {
        let CredentialKind::PublicKey {
            jwk,
            jwks_uri,
            certificate,
        } = &c.kind
        else {
            return None;
        };
        if let Some(jwk) = jwk {
            let jwk: Jwk = serde_json::from_value(jwk.clone()).ok()?;
            if header
                .kid
                .as_ref()
                .is_some_and(|k| jwk.common.key_id.as_ref().is_some_and(|j| j != k))
            {
                return None;
            }
            return verify_with_set(
                assertion,
                &Header {
                    kid: None,
                    ..header.clone()
                },
                &JwkSet { keys: vec![jwk] },
            );
        }
        if let Some(uri) = jwks_uri {
            let set = self
                .federation
                .keys_at(uri, header.kid.as_deref())
                .await
                .ok()?;
            return verify_with_set(assertion, header, &set);
        }
        let pem = certificate.as_ref()?;
        let der = pem_body(pem, "CERTIFICATE")?;
        let hinted_s1 = header.x5t.as_deref().and_then(b64url_decode);
        let hinted_s256 = header.x5t_s256.as_deref().and_then(b64url_decode);
        if hinted_s1.as_ref().is_some_and(|h| *h != sha1(&der))
            || hinted_s256
                .as_ref()
                .is_some_and(|h| h.as_slice() != sha256(&der))
        {
            return None;
        }
        let key = DecodingKey::from_rsa_pem(pem.as_bytes())
            .ok()
            .filter(|_| {
                matches!(
                    header.alg,
                    jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::PS256
                )
            })
            .or_else(|| {
                DecodingKey::from_ec_pem(pem.as_bytes()).ok().filter(|_| {
                    matches!(
                        header.alg,
                        jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::ES384
                    )
                })
            })
            .or_else(|| {
                DecodingKey::from_ed_pem(pem.as_bytes())
                    .ok()
                    .filter(|_| header.alg == jsonwebtoken::Algorithm::EdDSA)
            })?;
        verify_signature(assertion, &key, header.alg)
    }

    async fn federated_assertion(
        &self,
        client: &str,
        issuer: &crate::domain::TrustedIssuer,
        header: &Header,
        assertion: &str,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedClient, Failure> {
        let agent = self.active_agent(client, now).await?;
        let keys = self
            .federation
            .issuer_keys(issuer, header.kid.as_deref())
            .await
            .map_err(|e| Failure::refused("issuer_keys", e))?;
        let claims = self
            .federation
            .verified(assertion, || verify_with_set(assertion, header, &keys))
            .ok_or_else(|| {
                Failure::refused(
                    "assertion_signature",
                    format!("no key of {} verifies the assertion", issuer.issuer),
                )
            })?;
        check_times(&claims, now.unix_timestamp(), LEEWAY)
            .map_err(|e| Failure::refused("assertion_time", e))?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let auds = audiences(&claims);
        let credentials = self
            .directory
            .credentials(agent.id)
            .await
            .map_err(Failure::store)?;
        let matched = credentials.iter().filter(|c| c.is_usable(now)).find(|c| {
            matches!(&c.kind, CredentialKind::Federated { issuer: i, subject, audience }
                if *i == issuer.issuer && subject == sub && auds.iter().any(|a| a == audience))
        });
        let Some(credential) = matched else {
            return Err(Failure::refused(
                "federated_mismatch",
                format!(
                    "no federated credential of the agent matches iss {}, sub {sub:?}, aud {auds:?}",
                    issuer.issuer
                ),
            ));
        };
        Ok(AuthenticatedClient {
            agent,
            method: AuthMethod::PrivateKeyJwt,
            credential_id: credential.id,
            via: Some(issuer.issuer.clone()),
        })
    }

    /// A T1 from this server: issued to the agent's blueprint for this agent (`fmi_path`).
    async fn blueprint_assertion(
        &self,
        client: &str,
        assertion: &str,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedClient, Failure> {
        let agent = self.active_agent(client, now).await?;
        let token = self.verify_own_token(assertion, now).ok_or_else(|| {
            Failure::refused(
                "t1_invalid",
                "the T1 is not a valid, unexpired token of this server",
            )
        })?;
        if !token
            .audiences()
            .iter()
            .any(|a| a == TOKEN_EXCHANGE_AUDIENCE)
        {
            return Err(Failure::refused(
                "t1_audience",
                format!("the T1's aud is not {TOKEN_EXCHANGE_AUDIENCE}"),
            ));
        }
        if token.subject() != Some(client) {
            return Err(Failure::refused(
                "t1_subject",
                "the T1 was issued for another agent",
            ));
        }
        let Some(blueprint_id) = agent.blueprint_id else {
            return Err(Failure::refused(
                "t1_blueprint",
                "the agent has no blueprint",
            ));
        };
        if token.client_id != blueprint_id {
            return Err(Failure::refused(
                "t1_blueprint",
                "the T1 was issued to another blueprint",
            ));
        }
        let blueprint = self
            .store
            .get_blueprint(blueprint_id)
            .await
            .map_err(Failure::store)?;
        if !blueprint.as_ref().is_some_and(|b| b.is_active()) {
            return Err(Failure::refused(
                "t1_blueprint",
                "the agent's blueprint is disabled or deleted",
            ));
        }
        if self
            .store
            .is_token_revoked(&token.jti)
            .await
            .map_err(Failure::store)?
        {
            return Err(Failure::refused("t1_revoked", "the T1 was revoked"));
        }
        Ok(AuthenticatedClient {
            agent,
            method: AuthMethod::PrivateKeyJwt,
            credential_id: blueprint_id,
            via: Some(format!("blueprint:{blueprint_id}")),
        })
    }
}
