//! OAuth errors by their RFC names (RFC 6749 §5.2, RFC 8693 §2.2.2, RFC 8707 §2, RFC 7009 §2.2.1).
//! Only `http/` turns them into status codes and bodies.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    /// RFC 8707 §2 / RFC 8693 §2.2.2.
    InvalidTarget,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
    UnsupportedResponseType,
    /// The caller is authenticated but lacks the permission (introspection).
    AccessDenied,
    /// Too many failed attempts; carries the seconds to wait.
    TooManyRequests(u64),
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::AccessDenied => "access_denied",
            Self::TooManyRequests(_) => "invalid_client",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// The `WWW-Authenticate` challenge of a 401 (RFC 9110 §15.5.2: every 401 carries one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Challenge {
    /// The client authentication these endpoints take (RFC 6749 §2.3.1).
    #[default]
    Basic,
    /// The caller presented a bearer token that does not authenticate it (RFC 6750 §3.1).
    InvalidBearerToken,
    /// A valid bearer token without the permission needed: sent with the 403.
    InsufficientScope,
}

impl Challenge {
    pub fn header_value(self) -> &'static str {
        match self {
            Self::Basic => "Basic realm=\"agentauth\", charset=\"UTF-8\"",
            Self::InvalidBearerToken => "Bearer realm=\"agentauth\", error=\"invalid_token\"",
            Self::InsufficientScope => "Bearer realm=\"agentauth\", error=\"insufficient_scope\"",
        }
    }
}

/// An OAuth error answer: the RFC code, a human explanation, and the challenge a 401 carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Never a whole token or secret: what a request echoes into it is elided.
    pub description: String,
    pub challenge: Challenge,
    /// Its audit event is recorded (or the audit log failed): the endpoint records no other.
    pub audited: bool,
    /// What the refusing step knew that its audit event should say (the subject, say).
    pub audit_detail: serde_json::Map<String, serde_json::Value>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: crate::audit::elide_tokens(&description.into()),
            challenge: Challenge::Basic,
            audited: false,
            audit_detail: serde_json::Map::new(),
        }
    }

    /// Adds what the refusal's audit event should say.
    pub fn with_detail<const N: usize>(mut self, detail: [(&str, serde_json::Value); N]) -> Self {
        for (key, value) in detail {
            self.audit_detail.insert(key.to_owned(), value);
        }
        self
    }

    /// Marks the refusal as audited.
    pub fn audited(mut self) -> Self {
        self.audited = true;
        self
    }

    /// Whether the endpoint still owes this refusal an audit event: an internal failure (a
    /// store or audit outage) is logged instead.
    pub fn needs_audit(&self) -> bool {
        !self.audited
            && !matches!(
                self.code,
                ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
            )
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    /// The one answer for every failed client authentication: it must not tell an unknown
    /// client from a wrong secret.
    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }

    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }

    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, d)
    }

    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }

    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    /// The challenge for a caller that came with a bearer token.
    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = challenge;
        self
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure on an OAuth endpoint");
        Self::server_error()
    }
}

impl From<crate::audit::AuditError> for OAuthError {
    fn from(e: crate::audit::AuditError) -> Self {
        tracing::error!(error = %e, "audit failure on an OAuth endpoint");
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the audit log is unavailable",
        )
    }
}
