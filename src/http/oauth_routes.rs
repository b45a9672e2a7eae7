//! `/oauth2/token`, `/oauth2/introspect`, `/oauth2/revoke`, `/oauth2/authorize`: form bodies
//! in, RFC 6749 §5.2 JSON errors out, never cached.

use super::{AppState, MAX_FORM_BYTES};
use crate::oauth::client_auth::BasicCredentials;
use crate::oauth::token::TokenRequest;
use crate::oauth::{Endpoint, ErrorCode, OAuthError, Params};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use secrecy::SecretString;
use std::net::SocketAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth2/token", post(token).fallback(post_only))
        .route("/oauth2/introspect", post(introspect).fallback(post_only))
        .route("/oauth2/revoke", post(revoke).fallback(post_only))
        .route("/oauth2/authorize", get(authorize).post(authorize))
}

/// RFC 6749 §5.2 rendering: status by error, `WWW-Authenticate` on every 401, `Retry-After`
/// when throttled, and `no-store` always.
pub struct OAuthErrorResponse(pub OAuthError);

impl From<OAuthError> for OAuthErrorResponse {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        ErrorCode::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for OAuthErrorResponse {
    fn into_response(self) -> Response {
        let e = self.0;
        let body =
            serde_json::json!({ "error": e.code.as_str(), "error_description": e.description });
        let mut res = (status_of(e.code), Json(body)).into_response();
        let h = res.headers_mut();
        no_store(h);
        challenge(h, &e);
        if let ErrorCode::TooManyRequests(secs) = e.code
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// A 401 challenges the caller (RFC 9110 §15.5.2; RFC 6749 §5.2 for a failed Basic login):
/// with Basic, the scheme these endpoints take, or with Bearer when a bearer token failed; a
/// 403 for a bearer token without the permission says so too (RFC 6750 §3.1).
pub fn challenge(h: &mut HeaderMap, e: &OAuthError) {
    if status_of(e.code) == StatusCode::UNAUTHORIZED
        || e.challenge == crate::oauth::Challenge::InsufficientScope
    {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(e.challenge.header_value()),
        );
    }
}

pub fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub fn json_no_store<T: serde::Serialize>(value: &T) -> Response {
    let mut res = Json(value).into_response();
    no_store(res.headers_mut());
    res
}

/// The form body: `application/x-www-form-urlencoded` only, bounded, each parameter once.
pub async fn read_form(headers: &HeaderMap, body: Body) -> Result<Params, OAuthError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if media_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            OAuthError::invalid_request(format!("the body is larger than {MAX_FORM_BYTES} bytes"))
        })?;
    Params::parse(&bytes)
}

/// Parses `Authorization: Basic` (RFC 6749 §2.3.1: id and secret are form-encoded first).
/// `Ok(None)` when the header is absent or uses another scheme.
/// The Basic credentials and form of a request to an OAuth endpoint; a request refused here is
/// audited like every other refusal.
pub async fn read_request(
    state: &AppState,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Option<BasicCredentials>, Params), OAuthError> {
    let basic = basic_credentials(headers);
    let claimed = match &basic {
        Ok(Some(b)) => Some(b.client_id.clone()),
        _ => None,
    };
    let read = match basic {
        Ok(basic) => read_form(headers, body).await.map(|params| (basic, params)),
        Err(e) => Err(e),
    };
    match read {
        Ok(request) => Ok(request),
        Err(e) => Err(state.oauth.refusal(endpoint, claimed, e).await),
    }
}

pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<BasicCredentials>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = OAuthError::invalid_client;
    let text = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = text.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let client_id = form_unescape(id);
    if client_id.is_empty() {
        return Err(bad());
    }
    Ok(Some(BasicCredentials {
        client_id,
        secret: SecretString::from(form_unescape(secret)),
    }))
}

/// Undoes the form encoding RFC 6749 §2.3.1 asks of a client id and secret in Basic
/// credentials: `+` is a space, `%XX` a byte.
fn form_unescape(text: &str) -> String {
    if !text.contains(['%', '+']) {
        return text.to_owned();
    }
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let text = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthErrorResponse> {
    let (basic, params) = read_request(&state, Endpoint::Token, &headers, body).await?;
    let answer = state
        .oauth
        .token(TokenRequest {
            params,
            basic,
            source: Some(peer.ip()),
            entra: false,
        })
        .await?;
    Ok(json_no_store(&answer))
}

async fn introspect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthErrorResponse> {
    let bearer = bearer_token(&headers);
    let (basic, params) = read_request(&state, Endpoint::Introspect, &headers, body).await?;
    let answer = state
        .oauth
        .introspect(params, basic, bearer, Some(peer.ip()))
        .await?;
    Ok(json_no_store(&answer))
}

async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthErrorResponse> {
    let (basic, params) = read_request(&state, Endpoint::Revoke, &headers, body).await?;
    state.oauth.revoke(params, basic, Some(peer.ip())).await?;
    let mut res = StatusCode::OK.into_response();
    no_store(res.headers_mut());
    Ok(res)
}

/// Until user sign-in exists, every authorization request is refused as RFC 6749 §4.1.2.1
/// would: there is no redirect URI registered to send the error to, so it is answered here.
async fn authorize() -> OAuthErrorResponse {
    OAuthErrorResponse(OAuthError::new(
        ErrorCode::UnsupportedResponseType,
        "this server issues tokens to agents only; no response_type is supported at the authorization endpoint",
    ))
}

async fn post_only() -> Response {
    let mut res = OAuthErrorResponse(OAuthError::invalid_request("use POST")).into_response();
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use secrecy::ExposeSecret;

    fn basic(user_pass: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let got = basic_credentials(&basic("a%2Bb%3Ac:p%20q+r%zz&s"))
            .unwrap()
            .unwrap();
        assert_eq!(got.client_id, "a+b:c");
        assert_eq!(got.secret.expose_secret(), "p q r%zz&s");
        let plain = basic_credentials(&basic("agent:s3cr-et_"))
            .unwrap()
            .unwrap();
        assert_eq!(plain.client_id, "agent");
        assert_eq!(plain.secret.expose_secret(), "s3cr-et_");
    }

    #[test]
    fn an_empty_client_id_is_refused() {
        assert!(basic_credentials(&basic(":secret")).is_err());
    }
}
