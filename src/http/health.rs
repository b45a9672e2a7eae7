//! Liveness and readiness.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Prometheus text exposition; the gauges read at scrape time are set first.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let o = &state.oauth;
    let m = &o.metrics;
    m.audit_queue_depth.set(o.audit.queue_depth() as i64);
    m.outbound_fetches.set(o.federation.fetch_count() as i64);
    let now = o.clock.now().unix_timestamp();
    m.key_age_seconds.clear();
    for k in o.keys.published() {
        m.key_age_seconds
            .get_or_create(&crate::metrics::KeyLabels {
                kid: k.kid.clone(),
                state: k.state.as_str().to_owned(),
            })
            .set((now - k.created_at) as f64);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready when the store answers and a signing key is loaded.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.oauth.store.ping().await.is_ok();
    let key = !state.oauth.keys.signing_key().kid().is_empty();
    let status = if store && key {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(
            json!({ "status": if status == StatusCode::OK { "ready" } else { "not ready" }, "store": store, "signing_key": key }),
        ),
    )
}
