//! The token endpoint (RFC 6749 §3.2): parse the grant, authenticate the client, run the
//! grant, sign, audit. Every grant ends in `issue`, so every token is audited the same way.

use super::claims::TokenContent;
use super::client_auth::{AuthenticatedClient, BasicCredentials, Presented};
use super::{ErrorCode, OAuthError, OAuthService, Params};
use crate::audit::{self, EventExt};
use crate::domain::{Agent, Outcome};
use serde::Serialize;
use time::OffsetDateTime;

pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The grants this server knows, parsed once at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    ClientCredentials,
    TokenExchange,
    JwtBearer,
}

impl Grant {
    pub fn parse(value: &str) -> Result<Self, OAuthError> {
        match value {
            GRANT_CLIENT_CREDENTIALS => Ok(Self::ClientCredentials),
            GRANT_TOKEN_EXCHANGE => Ok(Self::TokenExchange),
            GRANT_JWT_BEARER => Ok(Self::JwtBearer),
            other => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type {:?} is not supported",
                    other.chars().take(100).collect::<String>()
                ),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => GRANT_CLIENT_CREDENTIALS,
            Self::TokenExchange => GRANT_TOKEN_EXCHANGE,
            Self::JwtBearer => GRANT_JWT_BEARER,
        }
    }

    /// A short label for metrics.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => "token_exchange",
            Self::JwtBearer => "on_behalf_of",
        }
    }

    pub const ALL: [&'static str; 3] = [
        GRANT_CLIENT_CREDENTIALS,
        GRANT_TOKEN_EXCHANGE,
        GRANT_JWT_BEARER,
    ];
}

/// A token request as the HTTP layer hands it over.
pub struct TokenRequest {
    pub params: Params,
    pub basic: Option<BasicCredentials>,
    /// The caller's address, for throttling failed authentications.
    pub source: Option<std::net::IpAddr>,
    /// Arrived on an Entra route: Entra's semantics where they differ (assertion reuse).
    pub entra: bool,
}

/// RFC 6749 §5.1 (and RFC 8693 §2.2.1 `issued_token_type`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// What a grant decided, ready to be signed.
pub struct Decision {
    pub content: TokenContent,
    /// The `scope` member of the response.
    pub response_scope: Option<String>,
    pub issued_token_type: Option<&'static str>,
    /// Extra audit detail (subject, refused scopes…).
    pub audit_detail: serde_json::Map<String, serde_json::Value>,
}

impl OAuthService {
    /// Answers a token request; every refusal is audited.
    pub async fn token(&self, request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let claimed = super::refusal::claimed_client(Some(&request.params), request.basic.as_ref());
        let result = self.decide_token(request).await;
        self.audited(super::Endpoint::Token, claimed, result).await
    }

    async fn decide_token(&self, request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let now = self.clock.now();
        let params = request.params;
        let grant = Grant::parse(params.require("grant_type")?)?;
        let mut presented = Presented::from_request(&params, request.basic)?;
        if request.entra {
            presented = presented.allowing_reuse();
        }
        if grant == Grant::ClientCredentials && params.get("fmi_path").is_some() {
            return self
                .blueprint_leg(presented, &params, request.source, now)
                .await;
        }
        let client = self.authenticate(presented, request.source, now).await?;
        let decided = match grant {
            Grant::ClientCredentials => self.client_credentials(&client, &params, now).await,
            Grant::TokenExchange => self.token_exchange(&client, &params, now).await,
            Grant::JwtBearer => self.on_behalf_of(&client, &params, now).await,
        };
        match decided {
            Ok(decision) => self.issue(&client, grant, decision, now).await,
            Err(e) => {
                self.metrics
                    .tokens_refused
                    .get_or_create(&crate::metrics::RefusalLabels {
                        grant: grant.short_name(),
                        reason: e.code.as_str(),
                    })
                    .inc();
                if e.code != ErrorCode::ServerError {
                    let event = with_request(refusal(&client, grant, &e, now), &params);
                    self.audit.record(event).await?;
                }
                Err(e.audited())
            }
        }
    }

    /// Records the decided token's audit event, signs the token while the event commits, and
    /// returns it only once the event is committed.
    async fn issue(
        &self,
        client: &AuthenticatedClient,
        grant: Grant,
        decision: Decision,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OAuthError> {
        let content = decision.content;
        let mut event = audit::agent_event(now, client.agent.id, "token.issue", Outcome::Success)
            .with("grant_type", grant.as_str())
            .with("client_auth", client.method.as_str())
            .with("credential_id", client.credential_id.to_string())
            .with("subject", content.subject.clone())
            .with("audience", content.audience.clone())
            .with("jti", content.jti.to_string())
            .with("expires_at", content.expires_at)
            .with("profile", content.profile.as_str());
        if !content.roles.is_empty() {
            event = event.with("roles", content.roles.clone());
        }
        if !content.scopes.is_empty() {
            event = event.with("scopes", content.scopes.clone());
        }
        for (k, v) in decision.audit_detail {
            event = event.with(&k, v);
        }
        // The event goes to the writer first and the token is signed while the batch commits;
        // the token leaves only once the event is committed.
        let pending = self.audit.submit(event).await?;
        let token = self.sign(&content);
        pending.committed().await?;
        let token = match token {
            Ok(token) => token,
            Err(e) => return Err(self.signing_failed(client, grant, e, now).await),
        };
        self.activity.note(client.agent.id, now);
        self.metrics
            .tokens_issued
            .get_or_create(&crate::metrics::GrantLabels {
                grant: grant.short_name(),
                profile: content.profile.as_str(),
            })
            .inc();
        Ok(TokenResponse {
            access_token: token,
            token_type: "Bearer",
            expires_in: content.expires_at - now.unix_timestamp(),
            scope: decision.response_scope,
            issued_token_type: decision.issued_token_type,
        })
    }

    fn sign(&self, content: &TokenContent) -> Result<String, crate::crypto::CryptoError> {
        self.keys.signing_key().sign(content.typ(), content)
    }

    /// The issue was recorded but no token could be signed (a key that cannot sign): the
    /// record is corrected by a refusal, and the client gets `server_error`.
    async fn signing_failed(
        &self,
        client: &AuthenticatedClient,
        grant: Grant,
        error: crate::crypto::CryptoError,
        now: OffsetDateTime,
    ) -> OAuthError {
        tracing::error!(error = %error, "signing failed");
        let refused = OAuthError::new(
            ErrorCode::ServerError,
            "the token could not be signed; none was returned",
        );
        if let Err(e) = self
            .audit
            .record(refusal(client, grant, &refused, now))
            .await
        {
            return e.into();
        }
        OAuthError::server_error()
    }

    /// The lifetime rule (SPEC §3): the agent's TTL or the default, never past its expiry, and
    /// never longer than a retired key stays published.
    pub fn token_expiry(&self, agent: &Agent, now: OffsetDateTime) -> Result<i64, OAuthError> {
        let ttl = agent
            .token_ttl_seconds
            .unwrap_or(self.settings.default_token_ttl)
            .min(self.settings.max_token_ttl)
            .max(1);
        let exp = (now.unix_timestamp() + ttl).min(agent.expires_at.unix_timestamp());
        if exp <= now.unix_timestamp() {
            return Err(OAuthError::invalid_grant("the agent has expired"));
        }
        Ok(exp)
    }
}

/// The audit event of a refused token request.
fn refusal(
    client: &AuthenticatedClient,
    grant: Grant,
    error: &OAuthError,
    now: OffsetDateTime,
) -> crate::domain::AuditEvent {
    let mut event = audit::agent_event(now, client.agent.id, "token.issue", Outcome::Failure)
        .reason(error.code.as_str(), error.description.clone())
        .with("grant_type", grant.as_str())
        .with("client_auth", client.method.as_str())
        .with("credential_id", client.credential_id.to_string());
    for (key, value) in &error.audit_detail {
        event = event.with(key, value.clone());
    }
    event
}

/// What a refused request asked for (the target, the scopes), as it asked: SPEC §10 wants a
/// refusal's audience and scopes too. The caller's text, so bounded and never a token.
fn with_request(
    mut event: crate::domain::AuditEvent,
    params: &Params,
) -> crate::domain::AuditEvent {
    for name in [
        "scope",
        "resource",
        "audience",
        "requested_token_type",
        "subject_token_type",
    ] {
        if let Some(value) = params.get(name) {
            let value: String = value.chars().take(512).collect();
            event = event.with(&format!("requested_{name}"), audit::elide_tokens(&value));
        }
    }
    event
}
