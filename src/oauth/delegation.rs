//! The one decision for every grant that delegates (token exchange, on-behalf-of): may this
//! agent act for this subject on this resource, with which scopes, in which chain. No route can
//! skip a check because every route calls this.

use super::access_token::actors_of;
use super::claims::TokenContent;
use super::client_auth::AuthenticatedClient;
use super::client_credentials::RoleRequest;
use super::token::Decision;
use super::{OAuthError, OAuthService};
use crate::domain::{IssuerUse, ScopeSet};
use crate::federation::jwt::{
    audiences, check_times, checked_header, unverified_claims, verify_with_set,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

const LEEWAY: i64 = 60;

/// A delegation request, whatever grant carried it.
pub struct DelegationRequest<'a> {
    pub subject_token: &'a str,
    pub actor_token: Option<&'a str>,
    pub target: RoleRequest,
    pub issued_token_type: Option<&'static str>,
}

/// The subject token, checked.
struct Subject {
    sub: String,
    issuer: String,
    jti: Option<String>,
    exp: i64,
    /// Our own delegated token: its scopes, audience and chain count.
    own: Option<OwnSubject>,
    groups: Vec<String>,
}

struct OwnSubject {
    audiences: Vec<String>,
    scopes: Vec<String>,
    act: Option<Value>,
}

impl OAuthService {
    pub(super) async fn delegate(
        &self,
        client: &AuthenticatedClient,
        req: DelegationRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<Decision, OAuthError> {
        let subject = self.check_subject(client, req.subject_token, now).await?;
        // A refusal from here on knows whom it was for: its audit event says so.
        let named = [
            ("subject", json!(subject.sub)),
            ("subject_issuer", json!(subject.issuer)),
        ];
        self.decide_for(client, req, subject, now)
            .await
            .map_err(|e| e.with_detail(named))
    }

    /// The decision once the subject token is accepted: the actor, the chain's depth, the
    /// target and the scopes.
    async fn decide_for(
        &self,
        client: &AuthenticatedClient,
        req: DelegationRequest<'_>,
        subject: Subject,
        now: OffsetDateTime,
    ) -> Result<Decision, OAuthError> {
        let agent = &client.agent;
        if let Some(actor) = req.actor_token {
            let v = self.verify_own_token(actor, now);
            let names_agent = v.as_ref().is_some_and(|v| {
                v.client_id == agent.id
                    && v.subject() == Some(&agent.id.to_string())
                    && v.actors.is_empty()
            });
            let live = match &v {
                Some(v) if names_agent => self.check_live(v, now).await?.is_some(),
                _ => false,
            };
            if !live {
                return Err(OAuthError::invalid_grant(
                    "actor_token is not a live token of this server naming the authenticated agent",
                ));
            }
        }
        let prior_act = subject.own.as_ref().and_then(|o| o.act.clone());
        let depth = actors_of(prior_act.as_ref()).len() + 1;
        if depth > self.settings.max_delegation_depth {
            return Err(OAuthError::invalid_grant(format!(
                "the delegation chain would be {depth} agents deep; the limit is {}",
                self.settings.max_delegation_depth
            )));
        }
        let resource = self
            .directory
            .resource(&req.target.resource)
            .await?
            .ok_or_else(|| {
                OAuthError::invalid_target(format!(
                    "no resource is registered as {}",
                    req.target.resource
                ))
            })?;
        let delegated = self.directory.delegation_on(agent.id, resource.id).await?;
        if delegated.is_empty() {
            return Err(OAuthError::invalid_scope(format!(
                "no scope on {} is delegated to {}",
                resource.identifier, agent.name
            )));
        }
        let defined = ScopeSet::from_iter(resource.scopes.iter().cloned());
        let requested = match &req.target.roles {
            Some(names) => ScopeSet::from_iter(names.iter().cloned()),
            None => defined.clone(),
        };
        let mut allowed = requested
            .intersection(&ScopeSet::from_iter(delegated.iter().cloned()))
            .intersection(&defined);
        let why_not = |scope: &str, allowed: &ScopeSet| -> Option<String> {
            (!allowed.contains(scope)).then(|| {
                if !defined.contains(scope) {
                    format!("scope {scope} is not defined on {}", resource.identifier)
                } else {
                    format!(
                        "scope {scope} is not delegated to {} on {}",
                        agent.name, resource.identifier
                    )
                }
            })
        };
        // The explanation of an empty result: the first scope refused, unless a later step is
        // the one that left nothing (then that step says why).
        let mut first_refusal = requested.iter().find_map(|s| why_not(s, &allowed));
        if resource.user_assignment_required {
            let mut held = ScopeSet::default();
            for principal in std::iter::once(&subject.sub).chain(subject.groups.iter()) {
                for u in self
                    .store
                    .user_assignments(Some(principal), Some(resource.id))
                    .await?
                {
                    held = ScopeSet::from_iter(held.iter().cloned().chain(u.scopes));
                }
            }
            let before = allowed.clone();
            allowed = allowed.intersection(&held);
            let emptied = !before.is_empty() && allowed.is_empty();
            if first_refusal.is_none() || emptied {
                first_refusal = if held.is_empty() {
                    Some(format!(
                        "user {} is not assigned any scope on {}",
                        subject.sub, resource.identifier
                    ))
                } else {
                    before.difference(&allowed).iter().next().map(|s| {
                        format!(
                            "user {} is not assigned scope {s} on {}",
                            subject.sub, resource.identifier
                        )
                    })
                };
            }
        }
        if let Some(own) = &subject.own
            && own.audiences.iter().any(|a| a == &resource.identifier)
            && !own.scopes.is_empty()
        {
            let before = allowed.clone();
            allowed = allowed.intersection(&ScopeSet::from_iter(own.scopes.iter().cloned()));
            if first_refusal.is_none() || (!before.is_empty() && allowed.is_empty()) {
                first_refusal = before
                    .difference(&allowed)
                    .iter()
                    .next()
                    .map(|s| format!("scope {s} is not in the subject token"));
            }
        }
        let refused = requested.difference(&allowed);
        if allowed.is_empty() {
            return Err(OAuthError::invalid_scope(first_refusal.unwrap_or_else(
                || format!("no scope on {} can be delegated", resource.identifier),
            )));
        }
        let expires_at = self.token_expiry(agent, now)?.min(subject.exp);
        let subject_groups = subject.groups.clone();
        if expires_at <= now.unix_timestamp() {
            return Err(OAuthError::invalid_grant("the subject token expires now"));
        }
        let mut act = Map::new();
        act.insert("sub".into(), Value::String(agent.id.to_string()));
        if let Some(prior) = prior_act {
            act.insert("act".into(), prior);
        }
        let act = Value::Object(act);
        let granted = allowed.to_vec();
        let response_scope = if req.target.qualified {
            granted
                .iter()
                .map(|s| format!("{}/{s}", resource.identifier))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            granted.join(" ")
        };
        let mut audit_detail = Map::new();
        audit_detail.insert("subject_issuer".into(), json!(subject.issuer));
        if let Some(jti) = &subject.jti {
            audit_detail.insert("subject_jti".into(), json!(jti));
        }
        audit_detail.insert(
            "actor_chain".into(),
            json!(
                actors_of(Some(&act))
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
            ),
        );
        audit_detail.insert("requested_scopes".into(), json!(requested.to_vec()));
        audit_detail.insert("refused_scopes".into(), json!(refused.to_vec()));
        Ok(Decision {
            content: TokenContent {
                profile: resource.token_profile,
                issuer: self.settings.issuer.clone(),
                tenant_id: self.settings.tenant_id.clone(),
                subject: subject.sub,
                audience: resource.identifier.clone(),
                client_id: agent.id,
                roles: Vec::new(),
                scopes: granted,
                act: Some(act),
                groups: subject_groups,
                delegated: true,
                azpacr: client.method.azpacr(),
                blueprint_id: agent.blueprint_id,
                issued_at: now.unix_timestamp(),
                expires_at,
                jti: super::client_credentials::new_jti(now),
            },
            response_scope: Some(response_scope),
            issued_token_type: req.issued_token_type,
            audit_detail,
        })
    }

    /// Checks the subject token: ours (valid and live) or a trusted issuer's, addressed to this
    /// agent, and admitting it through `may_act` if present.
    async fn check_subject(
        &self,
        client: &AuthenticatedClient,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Subject, OAuthError> {
        let agent_id = client.agent.id.to_string();
        let names_agent = |auds: &[String]| {
            auds.iter()
                .any(|a| *a == agent_id || *a == format!("api://{agent_id}"))
        };
        let claims = unverified_claims(token)
            .map_err(|e| OAuthError::invalid_grant(format!("subject token: {e}")))?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (subject, claims) = if self.is_own_issuer(&iss) {
            let v = self.verify_own_token(token, now).ok_or_else(|| {
                OAuthError::invalid_grant(
                    "the subject token is not a valid, unexpired token of this server",
                )
            })?;
            let auds = v.audiences();
            // Addressed elsewhere (a blueprint's T1 is addressed to the exchange audience) is
            // the first thing wrong with it, whatever its liveness.
            if !names_agent(&auds) {
                return Err(not_addressed_to_agent(&auds));
            }
            if self.check_live(&v, now).await?.is_none() {
                return Err(OAuthError::invalid_grant(
                    "the subject token was revoked, or an agent of its chain is no longer active",
                ));
            }
            let sub = v.subject().unwrap_or_default().to_owned();
            let subject = Subject {
                sub,
                issuer: iss.clone(),
                jti: Some(v.jti.clone()),
                exp: v.expires_at,
                own: Some(OwnSubject {
                    audiences: auds,
                    scopes: v.scopes(),
                    act: v.claims.get("act").cloned(),
                }),
                // Our delegated tokens carry the user's groups on, so group assignments hold
                // along a chain.
                groups: string_list(v.claims.get("groups")),
            };
            (subject, v.claims)
        } else {
            let issuer = self
                .directory
                .issuer(&iss)
                .await?
                .filter(|i| i.allows(IssuerUse::SubjectTokens))
                .ok_or_else(|| {
                    OAuthError::invalid_grant(format!(
                        "the subject token's issuer {iss:?} is not trusted for subject tokens"
                    ))
                })?;
            let header = checked_header(token)
                .map_err(|e| OAuthError::invalid_grant(format!("subject token: {e}")))?;
            let keys = self.federation.issuer_keys(&issuer, header.kid.as_deref()).await.map_err(|e| {
                tracing::warn!(issuer = %issuer.issuer, error = %e, "cannot get the keys of a trusted issuer");
                OAuthError::invalid_grant(format!("the keys of {} are unavailable", issuer.issuer))
            })?;
            let claims = self
                .federation
                .verified(token, || verify_with_set(token, &header, &keys))
                .ok_or_else(|| {
                    OAuthError::invalid_grant(format!(
                        "no key of {} verifies the subject token",
                        issuer.issuer
                    ))
                })?;
            let exp = check_times(&claims, now.unix_timestamp(), LEEWAY)
                .map_err(|e| OAuthError::invalid_grant(format!("subject token: {e}")))?;
            // A blank subject names no user: tokens for it would all act for one "user".
            let sub = claims
                .get(&issuer.subject_claim)
                .and_then(Value::as_str)
                .filter(|sub| !sub.trim().is_empty())
                .ok_or_else(|| {
                    OAuthError::invalid_grant(format!(
                        "the subject token has no {} claim, or it is blank",
                        issuer.subject_claim
                    ))
                })?
                .to_owned();
            let auds = audiences(&claims);
            if !names_agent(&auds) && !auds.iter().any(|a| issuer.audiences.contains(a)) {
                return Err(not_addressed_to_agent(&auds));
            }
            let groups = claims
                .get("groups")
                .and_then(Value::as_array)
                .map(|g| {
                    g.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let subject = Subject {
                sub,
                issuer: iss.clone(),
                jti: claims.get("jti").and_then(Value::as_str).map(str::to_owned),
                exp: exp.floor() as i64,
                own: None,
                groups,
            };
            (subject, claims)
        };
        if let Some(may_act) = claims.get("may_act")
            && !self.may_act_admits(may_act, &agent_id)
        {
            return Err(OAuthError::invalid_grant(
                "the subject token's may_act does not admit this agent",
            ));
        }
        Ok(subject)
    }

    /// RFC 8693 §4.4: `may_act`'s members together name the one party allowed to act. It admits
    /// the agent when every member names it: `sub`, `client_id` and `azp` its id, `iss` this
    /// server. A member this server does not know could name someone else, so it admits nobody.
    fn may_act_admits(&self, may_act: &Value, agent_id: &str) -> bool {
        let Some(members) = may_act.as_object() else {
            return false;
        };
        let names_agent = |k: &str| members.get(k).is_some_and(|v| v.as_str() == Some(agent_id));
        members.keys().all(|k| match k.as_str() {
            "sub" | "client_id" | "azp" => names_agent(k),
            "iss" => members[k]
                .as_str()
                .is_some_and(|iss| self.is_own_issuer(iss)),
            _ => false,
        }) && ["sub", "client_id", "azp"]
            .iter()
            .any(|k| members.contains_key(*k))
    }
}

fn not_addressed_to_agent(auds: &[String]) -> OAuthError {
    OAuthError::invalid_grant(if auds.is_empty() {
        "the subject token has no aud: it must name this agent".to_owned()
    } else {
        format!(
            "the subject token's aud is {}, not this agent",
            auds.join(" ")
        )
    })
}

/// A JSON array of strings (anything else counts as empty).
fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
