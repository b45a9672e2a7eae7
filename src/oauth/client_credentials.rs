//! Client credentials (RFC 6749 §4.4, SPEC §3): an agent asks for its application roles on
//! one resource, named by `<identifier>/.default`, `<identifier>/<role>`, or bare roles with
//! `resource=` (RFC 8707) or `audience=`.

use super::claims::TokenContent;
use super::client_auth::AuthenticatedClient;
use super::token::Decision;
use super::{OAuthError, OAuthService, Params};
use crate::domain::ScopeSet;
use time::OffsetDateTime;

const DEFAULT_SUFFIX: &str = "/.default";

/// What the client asked for, before looking anything up.
#[derive(Debug, PartialEq, Eq)]
pub struct RoleRequest {
    pub resource: String,
    /// `None`: every role held (`.default`, or a target with no scope).
    pub roles: Option<Vec<String>>,
    /// Whether the client used qualified `<identifier>/<role>` names.
    pub qualified: bool,
}

/// Parses `scope`, `resource` and `audience` into one resource and its roles.
pub fn parse_role_request(params: &Params) -> Result<RoleRequest, OAuthError> {
    let scope =
        ScopeSet::parse(params.get("scope").unwrap_or("")).map_err(OAuthError::invalid_scope)?;
    let target = match (params.get("resource"), params.get("audience")) {
        (Some(r), Some(a)) if r != a => {
            return Err(OAuthError::invalid_target(
                "resource and audience name different targets",
            ));
        }
        (r, a) => r.or(a),
    };
    let mut resource: Option<String> = target.map(str::to_owned);
    let mut roles = Vec::new();
    let mut all = false;
    let mut qualified = false;
    for s in scope.iter() {
        let (res, role) = if let Some(res) = s.strip_suffix(DEFAULT_SUFFIX) {
            (Some(res), None)
        } else if let Some(t) = target.filter(|t| s.starts_with(&format!("{t}/"))) {
            (Some(t), Some(&s[t.len() + 1..]))
        } else if target.is_some() && !s.contains('/') {
            (None, Some(s.as_str()))
        } else if let Some((res, role)) = s.rsplit_once('/') {
            (Some(res), Some(role))
        } else {
            return Err(OAuthError::invalid_scope(format!(
                "scope {s} names no resource: use <identifier>/<role>, <identifier>/.default, or resource="
            )));
        };
        if let Some(res) = res {
            qualified = true;
            match &resource {
                Some(known) if known != res => {
                    return Err(OAuthError::invalid_scope(
                        "the scopes name more than one resource",
                    ));
                }
                _ => resource = Some(res.to_owned()),
            }
        }
        match role {
            Some(r) if !r.is_empty() => roles.push(r.to_owned()),
            Some(_) => {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {s} names no role"
                )));
            }
            None => all = true,
        }
    }
    let resource = resource.ok_or_else(|| {
        OAuthError::invalid_scope("name a resource: scope=<identifier>/.default, or resource=")
    })?;
    let roles = if all || roles.is_empty() {
        None
    } else {
        Some(roles)
    };
    Ok(RoleRequest {
        resource,
        roles,
        qualified,
    })
}

/// A UUIDv7 token id whose timestamp is the issue instant, so revocation "before T" can be
/// decided to the millisecond.
pub fn new_jti(now: OffsetDateTime) -> uuid::Uuid {
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        now.unix_timestamp() as u64,
        now.nanosecond(),
    ))
}

impl OAuthService {
    pub(super) async fn client_credentials(
        &self,
        client: &AuthenticatedClient,
        params: &Params,
        now: OffsetDateTime,
    ) -> Result<Decision, OAuthError> {
        let request = parse_role_request(params)?;
        let resource = self
            .directory
            .resource(&request.resource)
            .await?
            .ok_or_else(|| {
                OAuthError::invalid_target(format!(
                    "no resource is registered as {}",
                    request.resource
                ))
            })?;
        let held = self
            .directory
            .roles_on(client.agent.id, resource.id)
            .await?;
        let held: Vec<String> = held
            .iter()
            .filter(|r| resource.roles.contains(r))
            .cloned()
            .collect();
        if held.is_empty() {
            return Err(OAuthError::invalid_scope(format!(
                "agent {} holds no role on {}",
                client.agent.name, resource.identifier
            )));
        }
        let granted = match request.roles {
            None => held,
            Some(wanted) => {
                if let Some(missing) = wanted.iter().find(|r| !held.contains(r)) {
                    return Err(OAuthError::invalid_scope(format!(
                        "role {missing} on {} is not assigned to agent {}",
                        resource.identifier, client.agent.name
                    )));
                }
                let mut wanted = wanted;
                wanted.sort();
                wanted.dedup();
                wanted
            }
        };
        let expires_at = self.token_expiry(&client.agent, now)?;
        let response_scope = if request.qualified {
            granted
                .iter()
                .map(|r| format!("{}/{r}", resource.identifier))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            granted.join(" ")
        };
        Ok(Decision {
            content: TokenContent {
                profile: resource.token_profile,
                issuer: self.settings.issuer.clone(),
                tenant_id: self.settings.tenant_id.clone(),
                subject: client.agent.id.to_string(),
                audience: resource.identifier.clone(),
                client_id: client.agent.id,
                roles: granted,
                scopes: Vec::new(),
                act: None,
                groups: Vec::new(),
                delegated: false,
                azpacr: client.method.azpacr(),
                blueprint_id: client.agent.blueprint_id,
                issued_at: now.unix_timestamp(),
                expires_at,
                jti: new_jti(now),
            },
            response_scope: Some(response_scope),
            issued_token_type: None,
            audit_detail: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn req(pairs: &[(&str, &str)]) -> Result<RoleRequest, OAuthError> {
        parse_role_request(&Params::from_pairs(pairs.iter().copied()))
    }

    #[rstest]
    #[case(&[("scope", "api://hotel/.default")], "api://hotel", None, true)]
    #[case(&[("scope", "api://hotel/book")], "api://hotel", Some(vec!["book"]), true)]
    #[case(&[("scope", "https://h.example/api/read https://h.example/api/write")], "https://h.example/api", Some(vec!["read", "write"]), true)]
    #[case(&[("scope", "book"), ("resource", "api://hotel")], "api://hotel", Some(vec!["book"]), false)]
    #[case(&[("scope", "book"), ("audience", "api://hotel")], "api://hotel", Some(vec!["book"]), false)]
    #[case(&[("resource", "api://hotel")], "api://hotel", None, false)]
    #[case(&[("scope", "api://hotel/book"), ("resource", "api://hotel")], "api://hotel", Some(vec!["book"]), true)]
    fn accepted_forms(
        #[case] pairs: &[(&str, &str)],
        #[case] resource: &str,
        #[case] roles: Option<Vec<&str>>,
        #[case] qualified: bool,
    ) {
        let r = req(pairs).unwrap();
        assert_eq!(r.resource, resource);
        assert_eq!(
            r.roles,
            roles.map(|v| v.into_iter().map(String::from).collect())
        );
        assert_eq!(r.qualified, qualified);
    }

    #[rstest]
    #[case(&[("scope", "book")], "invalid_scope")]
    #[case(&[], "invalid_scope")]
    #[case(&[("scope", "api://a/x api://b/y")], "invalid_scope")]
    #[case(&[("resource", "api://a"), ("audience", "api://b")], "invalid_target")]
    #[case(&[("scope", "api://other/x"), ("resource", "api://a")], "invalid_scope")]
    fn refused_forms(#[case] pairs: &[(&str, &str)], #[case] code: &str) {
        assert_eq!(req(pairs).unwrap_err().code.as_str(), code);
    }
}
