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
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
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
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"agentauth-admin\""),
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
            AdminError::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "a bearer token of this server for the admin resource is required",
            ),
            AdminError::Forbidden(d) => Self::new(StatusCode::FORBIDDEN, d),
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
