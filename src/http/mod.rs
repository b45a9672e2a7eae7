//! The HTTP edge (axum only): routes, extractors, and the rendering of OAuth errors
//! (RFC 6749 §5.2) and admin errors (RFC 9457).

mod admin_auth;
mod admin_routes;
mod discovery;
mod entra_routes;
mod extract;
mod health;
mod oauth_routes;
pub mod openapi;
mod problem;

use crate::admin::AdminService;
use crate::oauth::OAuthService;
use axum::Router;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub oauth: Arc<OAuthService>,
    pub admin: Arc<AdminService>,
}

pub use discovery::JWKS_MAX_AGE_SECONDS;

/// Largest form body the OAuth endpoints read.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Largest JSON body the admin API reads.
pub const MAX_JSON_BYTES: usize = 256 * 1024;
/// Largest total of request header names and values (a bearer token or client assertion is a
/// few KiB; certificate chains in `x5c` go in the body).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The whole API; a request that takes longer than `time_limit` ends in 408.
pub fn router(state: AppState, time_limit: std::time::Duration) -> Router {
    let metrics = state.oauth.metrics.clone();
    Router::new()
        .merge(discovery::routes())
        .merge(oauth_routes::routes())
        .merge(health::routes())
        .merge(entra_routes::routes())
        .nest("/admin/v1", admin_routes::routes())
        .layer(axum::middleware::from_fn(move |req, next| {
            edge(metrics.clone(), time_limit, req, next)
        }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BYTES))
        .with_state(state)
}

/// What every request goes through (one middleware, not one per concern: each costs a service
/// clone and a boxed future per request): the header limit, the time limit, then the latency
/// metric.
async fn edge(
    metrics: Arc<crate::metrics::Metrics>,
    time_limit: std::time::Duration,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let started = std::time::Instant::now();
    // A clone of the URI shares its bytes: no copy on the way in, for an error on the way out.
    let uri = req.uri().clone();
    let res = match refuse_large_headers(&req) {
        Some(refusal) => refusal,
        None => match tokio::time::timeout(time_limit, next.run(req)).await {
            Ok(res) => res,
            // A body that does not arrive in time (a slow or stalled client), most often.
            Err(_) => edge_error(
                uri.path(),
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "the request did not complete in time: its body arrived too slowly".into(),
            ),
        },
    };
    metrics
        .requests
        .get_or_create(&crate::metrics::RouteLabels {
            method,
            route,
            status: res.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    res
}

/// Refuses requests whose headers together exceed `MAX_HEADER_BYTES`: 431 (RFC 6585 §5), as an
/// RFC 9457 problem on the admin API and as RFC 6749 §5.2 JSON elsewhere.
fn refuse_large_headers(req: &axum::extract::Request) -> Option<axum::response::Response> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (size > MAX_HEADER_BYTES).then(|| {
        edge_error(
            req.uri().path(),
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers exceed {MAX_HEADER_BYTES} bytes"),
        )
    })
}

/// An error found at the edge, before any handler, in the shape of the errors of the endpoint
/// it was meant for: an RFC 9457 problem on the admin API, Entra's error on the Entra routes,
/// RFC 6749 §5.2 JSON elsewhere.
fn edge_error(
    path: &str,
    status: axum::http::StatusCode,
    detail: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if path.starts_with("/admin/") {
        return problem::Problem::new(status, detail).into_response();
    }
    let error = crate::oauth::OAuthError::invalid_request(detail);
    let mut res = if entra_routes::is_entra_path(path) {
        entra_routes::entra_error(error, time::OffsetDateTime::now_utc())
    } else {
        oauth_routes::OAuthErrorResponse(error).into_response()
    };
    *res.status_mut() = status;
    res
}

/// The method as a label; methods this server does not route are all "other".
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
