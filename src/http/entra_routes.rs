//! Entra-compatible routes (SPEC §2), so MSAL and azure-identity work unchanged against a
//! local authority: `/{tenant}/oauth2/v2.0/token`, `/{tenant}/v2.0/.well-known/openid-configuration`,
//! `/{tenant}/discovery/v2.0/keys`, `/common/discovery/instance`. Errors keep the RFC members
//! and add Entra's (`error_codes`, `timestamp`, `trace_id`, `correlation_id`).

use super::AppState;
use super::oauth_routes::{json_no_store, read_request, status_of};
use crate::oauth::token::{
    GRANT_CLIENT_CREDENTIALS, GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE, TokenRequest,
};
use crate::oauth::{Endpoint, ErrorCode, OAuthError};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/common/discovery/instance", get(instance_discovery))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize).post(authorize),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(metadata),
        )
        .route("/{tenant}/.well-known/openid-configuration", get(metadata))
        .route("/{tenant}/discovery/v2.0/keys", get(super::discovery::jwks))
        .layer(axum::middleware::from_fn(client_request_id))
}

/// Whether `path` is one of the Entra OAuth endpoints, whose errors carry Entra's fields.
pub fn is_entra_path(path: &str) -> bool {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let _tenant = segments.next();
    matches!(
        segments.next(),
        Some("oauth2/v2.0/token" | "oauth2/v2.0/authorize")
    )
}

tokio::task_local! {
    /// The caller's `client-request-id` (MSAL sends one per request), while its request runs.
    static CLIENT_REQUEST_ID: Option<uuid::Uuid>;
}

/// Entra's request correlation: an error's `correlation_id` is the caller's
/// `client-request-id`, and `return-client-request-id: true` has it echoed as a header.
async fn client_request_id(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let headers = req.headers();
    let id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v.trim()).ok());
    let echo = headers
        .get("return-client-request-id")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let mut res = CLIENT_REQUEST_ID.scope(id, next.run(req)).await;
    if let Some(id) = id.filter(|_| echo)
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        res.headers_mut().insert("client-request-id", value);
    }
    res
}

/// An AADSTS code for each RFC error, as Entra answers the common failures.
fn aadsts(code: ErrorCode, description: &str) -> u32 {
    match code {
        ErrorCode::InvalidClient => 7000215,
        ErrorCode::InvalidRequest if description.starts_with("Tenant '") => 90002,
        ErrorCode::InvalidRequest if description.contains("required") => 900144,
        ErrorCode::InvalidRequest => 90014,
        ErrorCode::InvalidGrant if description.contains("expire") => 500133,
        ErrorCode::InvalidGrant => 50013,
        ErrorCode::UnauthorizedClient => 700016,
        ErrorCode::UnsupportedGrantType => 70003,
        ErrorCode::InvalidScope => 70011,
        ErrorCode::InvalidTarget => 500011,
        ErrorCode::UnsupportedTokenType => 70003,
        ErrorCode::UnsupportedResponseType => 700054,
        ErrorCode::AccessDenied => 50105,
        ErrorCode::TooManyRequests(_) => 50196,
        ErrorCode::ServerError => 50000,
        ErrorCode::TemporarilyUnavailable => 90033,
    }
}

/// Entra's `timestamp` error member: `2026-11-30 15:04:05Z`.
const ENTRA_TIMESTAMP: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");

/// An OAuth error in Entra's shape: still RFC 6749 §5.2 JSON, with Entra's members beside.
pub fn entra_error(e: OAuthError, now: time::OffsetDateTime) -> Response {
    let code = aadsts(e.code, &e.description);
    let trace = uuid::Uuid::new_v4();
    let correlation = CLIENT_REQUEST_ID
        .try_with(|id| *id)
        .ok()
        .flatten()
        .unwrap_or_else(uuid::Uuid::new_v4);
    let timestamp = now
        .to_offset(time::UtcOffset::UTC)
        .format(ENTRA_TIMESTAMP)
        .unwrap_or_default();
    let body = json!({
        "error": e.code.as_str(),
        "error_description": format!("AADSTS{code}: {} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}", e.description),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace.to_string(),
        "correlation_id": correlation.to_string(),
        "error_uri": "https://login.microsoftonline.com/error?code=".to_owned() + &code.to_string(),
    });
    let mut res = (status_of(e.code), Json(body)).into_response();
    let h = res.headers_mut();
    super::oauth_routes::no_store(h);
    super::oauth_routes::challenge(h, &e);
    if let ErrorCode::TooManyRequests(secs) = e.code
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        h.insert(header::RETRY_AFTER, v);
    }
    res
}

/// The tenant in the path must be this server's tenant id or its alias.
fn check_tenant(state: &AppState, tenant: &str) -> Result<(), Box<Response>> {
    let s = &state.oauth.settings;
    // Entra matches tenant ids and domain names without regard to case.
    let named = |known: &str| known.eq_ignore_ascii_case(tenant);
    if named(&s.tenant_id) || s.tenant_alias.as_deref().is_some_and(named) {
        Ok(())
    } else {
        Err(Box::new(tenant_not_found(tenant, state.oauth.clock.now())))
    }
}

fn tenant_not_found(tenant: &str, now: time::OffsetDateTime) -> Response {
    let mut res = entra_error(
        OAuthError::invalid_request(format!(
            "Tenant '{}' not found.",
            tenant.chars().take(100).collect::<String>()
        )),
        now,
    );
    *res.status_mut() = StatusCode::BAD_REQUEST;
    res
}

async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = check_tenant(&state, &tenant) {
        return *r;
    }
    let (basic, params) = match read_request(&state, Endpoint::Token, &headers, body).await {
        Ok(request) => request,
        Err(e) => return entra_error(e, state.oauth.clock.now()),
    };
    let client_credentials = params.get("grant_type") == Some(GRANT_CLIENT_CREDENTIALS);
    match state
        .oauth
        .token(TokenRequest {
            params,
            basic,
            source: Some(peer.ip()),
            entra: true,
        })
        .await
    {
        Ok(answer) => {
            let mut v = serde_json::to_value(&answer).unwrap_or(Value::Null);
            // Entra answers ext_expires_in beside expires_in; azure-identity requires expires_in.
            v["ext_expires_in"] = json!(answer.expires_in);
            // Entra's client-credentials answer has no `scope`: MSAL then files the token under
            // the scope it asked for, and its cache hits next time.
            if client_credentials && let Some(o) = v.as_object_mut() {
                o.remove("scope");
            }
            json_no_store(&v)
        }
        Err(e) => entra_error(e, state.oauth.clock.now()),
    }
}

async fn authorize(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    if let Err(r) = check_tenant(&state, &tenant) {
        return *r;
    }
    entra_error(
        OAuthError::new(
            ErrorCode::UnsupportedResponseType,
            "this server issues tokens to agents only; user sign-in is not supported",
        ),
        state.oauth.clock.now(),
    )
}

/// OIDC metadata of the tenant, Entra v2.0-shaped.
async fn metadata(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    if let Err(r) = check_tenant(&state, &tenant) {
        return *r;
    }
    let s = &state.oauth.settings;
    let base = &s.issuer;
    let auth_methods = [
        "client_secret_post",
        "private_key_jwt",
        "client_secret_basic",
    ];
    let mut res = Json(json!({
        "issuer": s.entra_issuer(),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "revocation_endpoint": format!("{base}/oauth2/revoke"),
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
        "response_types_supported": [],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": state.oauth.keys.algorithms(),
        "grant_types_supported": [GRANT_CLIENT_CREDENTIALS, GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "azp", "azpacr", "idtyp", "roles", "scp", "uti", "ver", "act"],
        "tenant_region_scope": "WW",
        "cloud_instance_name": "agentauth.local",
        "cloud_graph_host_name": "graph.agentauth.local",
        "msgraph_host": "graph.agentauth.local",
        "request_uri_parameter_supported": false,
    }))
    .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

#[derive(Debug, Deserialize)]
struct InstanceQuery {
    authorization_endpoint: Option<String>,
}

/// MSAL's instance discovery. MSAL drops the port from the authority it asks about, so the
/// answer always points at this server's own base URL.
async fn instance_discovery(
    State(state): State<AppState>,
    Query(q): Query<InstanceQuery>,
) -> Response {
    let s = &state.oauth.settings;
    let tenant = q
        .authorization_endpoint
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut p| p.next().map(str::to_owned))
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| s.tenant_id.clone());
    let tenant = if tenant == "common" || tenant == "organizations" {
        s.tenant_id.clone()
    } else {
        tenant
    };
    let host = reqwest::Url::parse(&s.issuer)
        .ok()
        .map(|u| match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_owned(),
        })
        .unwrap_or_default();
    json_no_store(&json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", s.issuer),
        "api-version": "1.1",
        "metadata": [{ "preferred_network": host, "preferred_cache": host, "aliases": [host] }],
    }))
}
