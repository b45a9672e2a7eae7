//! RFC 9457 problem details for the admin API.

use crate::admin::AdminError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The `WWW-Authenticate` challenge (RFC 6750 §3) of a 401 or a 403.
    #[serde(skip)]
    pub challenge: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            challenge: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        res
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid { field, detail } => Self {
                field,
                ..Self::new(StatusCode::BAD_REQUEST, detail)
            },
            AdminError::NotFound(d) => Self::new(StatusCode::NOT_FOUND, d),
            AdminError::Conflict(d) => Self::new(StatusCode::CONFLICT, d),
            // RFC 6750 §3.1: no error code when no token came; `invalid_token` for a bad one;
            // `insufficient_scope` for a good one without the role.
            AdminError::Unauthenticated => Self {
                challenge: Some("Bearer realm=\"agentauth-admin\""),
                ..Self::new(
                    StatusCode::UNAUTHORIZED,
                    "a bearer token of this server for the admin resource is required",
                )
            },
            AdminError::InvalidToken => Self {
                challenge: Some("Bearer realm=\"agentauth-admin\", error=\"invalid_token\""),
                ..Self::new(
                    StatusCode::UNAUTHORIZED,
                    "the bearer token is not a live token of this server for the admin resource",
                )
            },
            AdminError::Forbidden(d) => Self {
                challenge: Some("Bearer realm=\"agentauth-admin\", error=\"insufficient_scope\""),
                ..Self::new(StatusCode::FORBIDDEN, d)
            },
            AdminError::Unavailable(d) => {
                tracing::error!(cause = %d, "admin request failed: unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server cannot complete the request now",
                )
            }
            AdminError::Internal(d) => {
                tracing::error!(cause = %d, "admin request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server could not complete the request",
                )
            }
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
