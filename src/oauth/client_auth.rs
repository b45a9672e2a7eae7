//! Client authentication (SPEC §5, RFC 6749 §2.3): finds out which agent is calling.
//! Every failed login answers the same `invalid_client`; the audit log keeps the real reason.
//! Right credentials presented for the wrong request are not a failed login.

use super::refusal::claimed_by;
use super::{ErrorCode, OAuthError, OAuthService, Params};
use crate::audit::{self, EventExt};
use crate::crypto::digest::constant_time_eq;
use crate::crypto::secret;
use crate::domain::{Agent, CredentialKind, Outcome};
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, OnceLock};
use time::OffsetDateTime;
use uuid::Uuid;

pub const ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Credentials from the `Authorization: Basic` header, already form-decoded (RFC 6749 §2.3.1).
pub struct BasicCredentials {
    pub client_id: String,
    pub secret: SecretString,
}

/// What the client presented, after refusing credentials given two ways.
pub enum Presented {
    Secret {
        client_id: String,
        secret: SecretString,
        basic: bool,
    },
    Assertion {
        client_id: Option<String>,
        assertion: String,
        /// Entra semantics: the same assertion may be presented again until it expires (MSAL
        /// reuses one for up to ten minutes). Otherwise each `jti` is single use.
        reusable: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Entra's `azpacr`: 1 for a secret, 2 for a certificate or assertion.
    pub fn azpacr(self) -> &'static str {
        match self {
            Self::ClientSecretBasic | Self::ClientSecretPost => "1",
            Self::PrivateKeyJwt => "2",
        }
    }
}

/// An authenticated agent.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub agent: Arc<Agent>,
    pub method: AuthMethod,
    /// The credential that matched (for a T1: the blueprint).
    pub credential_id: Uuid,
    /// Who vouched, for assertions: the client itself, a trusted issuer, or a blueprint.
    pub via: Option<String>,
}

impl Presented {
    /// Sorts out how the client authenticates. Two ways at once is `invalid_request`; a
    /// `client_id` beside them is not a second way but must name the same client.
    pub fn from_request(
        params: &Params,
        basic: Option<BasicCredentials>,
    ) -> Result<Self, OAuthError> {
        let body_id = params.get("client_id");
        let body_secret = params.get("client_secret");
        let assertion = params.get("client_assertion");
        let two_ways =
            || OAuthError::invalid_request("client credentials are given more than one way");
        if let Some(b) = basic {
            if body_secret.is_some() || assertion.is_some() {
                return Err(two_ways());
            }
            if body_id.is_some_and(|id| id != b.client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the Authorization header",
                ));
            }
            return Ok(Self::Secret {
                client_id: b.client_id,
                secret: b.secret,
                basic: true,
            });
        }
        match (body_secret, assertion) {
            (Some(_), Some(_)) => Err(two_ways()),
            (Some(secret), None) => {
                let client_id = body_id
                    .ok_or_else(|| OAuthError::invalid_request("client_secret needs client_id"))?;
                Ok(Self::Secret {
                    client_id: client_id.to_owned(),
                    secret: SecretString::from(secret.to_owned()),
                    basic: false,
                })
            }
            (None, Some(assertion)) => {
                if params.get("client_assertion_type") != Some(ASSERTION_TYPE_JWT_BEARER) {
                    return Err(OAuthError::invalid_request(format!(
                        "client_assertion_type must be {ASSERTION_TYPE_JWT_BEARER}"
                    )));
                }
                Ok(Self::Assertion {
                    client_id: body_id.map(str::to_owned),
                    assertion: assertion.to_owned(),
                    reusable: false,
                })
            }
            (None, None) => Err(OAuthError::invalid_client()),
        }
    }

    /// Lets an assertion be presented again until it expires (the Entra routes).
    pub fn allowing_reuse(mut self) -> Self {
        if let Self::Assertion { reusable, .. } = &mut self {
            *reusable = true;
        }
        self
    }
}

/// A hash of a random secret, checked for unknown clients so timing does not reveal them.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| secret::hash_secret(&secret::generate_secret()).unwrap_or_default())
}

impl OAuthService {
    /// Authenticates the client, recording a failure in the audit log. A success is recorded
    /// in the event of the request it authenticated.
    pub async fn authenticate(
        &self,
        presented: Presented,
        source: Option<std::net::IpAddr>,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let claimed = match &presented {
            Presented::Secret { client_id, .. } => Some(client_id.clone()),
            Presented::Assertion { client_id, .. } => client_id.clone(),
        };
        if let Some(wait) = self.throttle.blocked(claimed.as_deref(), source) {
            return Err(self.throttled(wait, claimed, now).await);
        }
        match self.try_authenticate(presented, now).await {
            Ok(client) => Ok(client),
            Err(failure) => {
                if matches!(failure, Failure::Refused { .. }) {
                    self.throttle.failed(claimed.as_deref(), source);
                }
                Err(self.refuse_client(failure, claimed, now).await)
            }
        }
    }

    async fn try_authenticate(
        &self,
        presented: Presented,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedClient, Failure> {
        match presented {
            Presented::Secret {
                client_id,
                secret,
                basic,
            } => {
                let method = if basic {
                    AuthMethod::ClientSecretBasic
                } else {
                    AuthMethod::ClientSecretPost
                };
                self.check_secret(&client_id, &secret, now, method).await
            }
            Presented::Assertion {
                client_id,
                assertion,
                reusable,
            } => {
                self.check_assertion(client_id.as_deref(), &assertion, reusable, now)
                    .await
            }
        }
    }

    async fn check_secret(
        &self,
        client_id: &str,
        secret: &SecretString,
        now: OffsetDateTime,
        method: AuthMethod,
    ) -> Result<AuthenticatedClient, Failure> {
        let agent = match Uuid::parse_str(client_id) {
            Ok(id) => self.directory.agent(id).await.map_err(Failure::store)?,
            Err(_) => None,
        };
        let Some(agent) = agent else {
            if let Some(blueprint) = self.blueprint_named(client_id).await? {
                self.match_secret(blueprint, secret, now).await?;
                return Err(Failure::WrongRequest(OAuthError::unauthorized_client(
                    format!(
                        "a blueprint gets tokens only for its agents: add fmi_path=<agent id> and \
                     scope={}/.default",
                        super::assertion::TOKEN_EXCHANGE_AUDIENCE
                    ),
                )));
            }
            self.argon2(secret.clone(), dummy_hash().to_owned()).await;
            return Err(Failure::refused(
                "unknown_client",
                "no agent has this client_id",
            ));
        };
        let credential = self.match_secret(agent.id, secret, now).await?;
        let status = agent.status(now);
        if status != crate::domain::AgentStatus::Active {
            return Err(Failure::refused(
                "agent_not_active",
                format!("the agent is {}", status.as_str()),
            ));
        }
        Ok(AuthenticatedClient {
            agent,
            method,
            credential_id: credential,
            via: None,
        })
    }

    /// The id of the live blueprint `client_id` names, if it names one (a disabled or deleted
    /// one is refused like any unknown client).
    async fn blueprint_named(&self, client_id: &str) -> Result<Option<Uuid>, Failure> {
        let Ok(id) = Uuid::parse_str(client_id) else {
            return Ok(None);
        };
        let blueprint = self.store.get_blueprint(id).await.map_err(Failure::store)?;
        Ok(blueprint.filter(|b| b.is_active()).map(|b| b.id))
    }

    /// Finds the owner's client secret that `secret` matches: from the verified-secret cache,
    /// else by argon2. Returns the credential id.
    pub(super) async fn match_secret(
        &self,
        owner: Uuid,
        secret: &SecretString,
        now: OffsetDateTime,
    ) -> Result<Uuid, Failure> {
        let credentials = self
            .directory
            .credentials(owner)
            .await
            .map_err(Failure::store)?;
        let secrets: Vec<_> = credentials
            .iter()
            .filter_map(|c| match &c.kind {
                CredentialKind::ClientSecret { hash, .. } => Some((c, hash)),
                _ => None,
            })
            .collect();
        if secrets.is_empty() {
            self.argon2(secret.clone(), dummy_hash().to_owned()).await;
            return Err(Failure::refused(
                "no_secret",
                "the client has no client secret",
            ));
        }
        let tag = self.secret_tagger.tag(&[secret.expose_secret().as_bytes()]);
        let mut matched = secrets
            .iter()
            .find(|(c, _)| self.is_verified(c.id, &tag))
            .map(|(c, _)| *c);
        if matched.is_none() {
            for (c, hash) in &secrets {
                if self.argon2(secret.clone(), (*hash).clone()).await {
                    self.remember_verified(c.id, tag);
                    matched = Some(*c);
                    break;
                }
            }
        }
        let Some(credential) = matched else {
            return Err(Failure::refused(
                "wrong_secret",
                "the secret matches none of the client's secrets",
            ));
        };
        if !credential.is_usable(now) {
            return Err(Failure::refused(
                "credential_expired",
                "the secret has expired",
            ));
        }
        Ok(credential.id)
    }

    /// Too many failures from this client id or address: 429 with `Retry-After`, or the plain
    /// `invalid_client`, as configured.
    pub(super) async fn throttled(
        &self,
        wait: u64,
        claimed: Option<String>,
        now: OffsetDateTime,
    ) -> OAuthError {
        let refusal = Failure::refused(
            "throttled",
            format!("too many failed authentications; retry in {wait} s"),
        );
        let e = self.refuse_client(refusal, claimed, now).await;
        if e.code == ErrorCode::InvalidClient && self.settings.throttle_with_429 {
            OAuthError::new(
                ErrorCode::TooManyRequests(wait),
                "too many failed client authentications; retry later",
            )
            .audited()
        } else {
            e
        }
    }

    /// Runs a refusal through the audit log and turns it into the uniform `invalid_client`
    /// (or, for right credentials on the wrong request, its own answer).
    pub(super) async fn refuse_client(
        &self,
        failure: Failure,
        claimed: Option<String>,
        now: OffsetDateTime,
    ) -> OAuthError {
        match failure {
            Failure::Internal(e) => e,
            Failure::WrongRequest(e) => {
                let event = audit::event(now, "anonymous", "client.authenticate", Outcome::Failure)
                    .reason(e.code.as_str(), e.description.clone());
                match self.audit.record(claimed_by(event, claimed)).await {
                    Ok(()) => e.audited(),
                    Err(a) => a.into(),
                }
            }
            Failure::Refused { code, explanation } => {
                self.metrics
                    .client_auth_failures
                    .get_or_create(&crate::metrics::ReasonLabels {
                        reason: code.to_owned(),
                    })
                    .inc();
                let event = audit::event(now, "anonymous", "client.authenticate", Outcome::Failure)
                    .reason(code, explanation);
                if let Err(e) = self.audit.record(claimed_by(event, claimed)).await {
                    return e.into();
                }
                OAuthError::invalid_client().audited()
            }
        }
    }

    fn is_verified(&self, credential: Uuid, tag: &[u8; 32]) -> bool {
        self.verified_secrets
            .lock()
            .ok()
            .and_then(|m| m.get(&credential).map(|known| constant_time_eq(known, tag)))
            .unwrap_or(false)
    }

    fn remember_verified(&self, credential: Uuid, tag: [u8; 32]) {
        if let Ok(mut m) = self.verified_secrets.lock() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(credential, tag);
        }
    }

    /// Runs argon2 off the async threads, a few at a time.
    async fn argon2(&self, secret: SecretString, hash: String) -> bool {
        let Ok(_permit) = self.argon2_permits.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || secret::verify_secret(secret.expose_secret(), &hash))
            .await
            .unwrap_or(false)
    }
}

/// Why authentication failed, for the audit log only.
pub(super) enum Failure {
    Refused {
        code: &'static str,
        explanation: String,
    },
    /// The credential is right, but for another kind of request (a blueprint without
    /// `fmi_path`, an agent with one): not a failed login, so neither `invalid_client` nor
    /// counted against the client.
    WrongRequest(OAuthError),
    Internal(OAuthError),
}

impl Failure {
    pub(super) fn refused(code: &'static str, explanation: impl Into<String>) -> Self {
        Self::Refused {
            code,
            explanation: explanation.into(),
        }
    }

    pub(super) fn store(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}
