//! Admin errors; `http/` renders them as RFC 9457 problems.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A bad request body or query; `field` names what was wrong.
    #[error("{detail}")]
    Invalid {
        field: Option<String>,
        detail: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// No bearer token.
    #[error("authentication required")]
    Unauthenticated,
    /// A bearer token that is not a live token of this server for the admin resource.
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("{0}")]
    Forbidden(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl AdminError {
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: Some(field.to_owned()),
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: None,
            detail: detail.into(),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(d) => Self::Conflict(format!("already exists ({d})")),
            other => Self::Internal(other.to_string()),
        }
    }
}
