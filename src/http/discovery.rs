//! Authorization server metadata (RFC 8414, OIDC Discovery) and the JWKS (RFC 7517).

use super::AppState;
use crate::oauth::token::{GRANT_CLIENT_CREDENTIALS, GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The longest JWKS cache lifetime advertised; the actual one is also kept under half the
/// pre-publication window of new keys (SPEC §7).
pub const JWKS_MAX_AGE_SECONDS: u64 = 300;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/oauth2/jwks", get(jwks))
        .route("/.well-known/jwks.json", get(jwks))
}

pub fn metadata_document(state: &AppState) -> Value {
    let base = &state.oauth.settings.issuer;
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    let algs = state.oauth.keys.algorithms();
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth2/authorize"),
        "token_endpoint": format!("{base}/oauth2/token"),
        "jwks_uri": format!("{base}/oauth2/jwks"),
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "revocation_endpoint": format!("{base}/oauth2/revoke"),
        "grant_types_supported": supported_grants(),
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
        "scopes_supported": [],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "access_token_signing_alg_values_supported": algs,
        "introspection_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
        "revocation_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "roles", "act"],
        "tenant_id": state.oauth.settings.tenant_id,
    })
}

pub fn supported_grants() -> Vec<&'static str> {
    vec![
        GRANT_CLIENT_CREDENTIALS,
        GRANT_TOKEN_EXCHANGE,
        GRANT_JWT_BEARER,
    ]
}

async fn metadata(State(state): State<AppState>) -> Response {
    let mut res = Json(metadata_document(&state)).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = Json(state.oauth.keys.jwks()).into_response();
    let max_age = state.oauth.settings.jwks_max_age;
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}
