//! Admin API authorization: a bearer token of this server for `<base>/admin`; `admin` may do
//! everything, `reader` may only read.

use super::AppState;
use super::problem::Problem;
use crate::admin::{Actor, AdminError};
use crate::oauth::introspect::{ROLE_ADMIN, ROLE_READER};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};

pub struct AdminCaller(pub Actor);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned())
            .ok_or(AdminError::Unauthenticated)?;
        let now = state.oauth.clock.now();
        let (agent_id, roles) = state
            .oauth
            .admin_bearer(&token, now)
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?
            .ok_or(AdminError::InvalidToken)?;
        let is_admin = roles.iter().any(|r| r == ROLE_ADMIN);
        let reads = parts.method == Method::GET || parts.method == Method::HEAD;
        if !(is_admin || reads && roles.iter().any(|r| r == ROLE_READER)) {
            return Err(AdminError::Forbidden(if reads {
                "this needs the admin or reader role on the admin resource".into()
            } else {
                "this needs the admin role on the admin resource".into()
            })
            .into());
        }
        Ok(Self(Actor { agent_id }))
    }
}
