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

/// Largest form body the OAuth endpoints read.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Largest JSON body the admin API reads.
pub use discovery::JWKS_MAX_AGE_SECONDS;

pub const MAX_JSON_BYTES: usize = 256 * 1024;

pub fn router(state: AppState) -> Router {
    let metrics = state.oauth.metrics.clone();
    Router::new()
        .merge(discovery::routes())
        .merge(oauth_routes::routes())
        .merge(health::routes())
        .merge(entra_routes::routes())
        .nest("/admin/v1", admin_routes::routes())
        .layer(axum::middleware::from_fn(move |req, next| {
            record_latency(metrics.clone(), req, next)
        }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BYTES))
        .with_state(state)
}

/// Request latency per route template (never the raw path: ids would explode the labels).
async fn record_latency(
    metrics: Arc<crate::metrics::Metrics>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    metrics
        .requests
        .get_or_create(&crate::metrics::RouteLabels {
            method,
            route,
            status: res.status().as_u16().to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    res
}
