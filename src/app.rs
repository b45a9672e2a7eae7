//! Wiring only: open the store, load keys, build the services and the router, serve, shut down.

use crate::admin::AdminService;
use crate::audit::AuditLog;
use crate::cache::Directory;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::http::{AppState, router};
use crate::keys::{KeyPolicy, KeyRing};
use crate::oauth::{OAuthParts, OAuthService, OAuthSettings};
use crate::store::{SharedStore, redact_url};
use axum::http::HeaderName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] crate::admin::AdminError),
    #[error("{0}")]
    Io(String),
}

/// A started server: where it listens, and how to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub base_url: String,
    pub tenant_id: String,
    pub admin_credentials: crate::bootstrap::AdminCredentials,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight requests, flushes activity and the audit log.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.done.await;
    }

    /// Waits until the server stops by itself (a signal).
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

pub async fn open_store(config: &Config) -> Result<SharedStore, AppError> {
    let url = config.database_url();
    tracing::info!(database = %redact_url(&url), "opening the store");
    Ok(crate::store::open(&url).await?)
}

/// Starts the server; `stop_on_signal` also stops it on SIGTERM or Ctrl-C.
pub async fn start(
    config: Config,
    clock: SharedClock,
    stop_on_signal: bool,
) -> Result<RunningServer, AppError> {
    config.validate()?;
    tokio::fs::create_dir_all(&config.data_dir)
        .await
        .map_err(|e| AppError::Io(format!("creating {}: {e}", config.data_dir.display())))?;
    let store = open_store(&config).await?;
    let listener = TcpListener::bind(config.bind_addr()?)
        .await
        .map_err(|e| AppError::Io(format!("binding {}: {e}", config.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| AppError::Io(e.to_string()))?;
    let base_url = config.base_url_for(addr);
    let tls = crate::tls::load(&config).await.map_err(AppError::Io)?;
    let tenant_id = crate::bootstrap::tenant_id(&store, config.tenant_id.as_deref()).await?;

    let policy = KeyPolicy {
        algorithm: config.signing_algorithm()?,
        prepublish: time::Duration::seconds(config.keys.prepublish_seconds),
        // A retired key stays published until the longest-lived token it signed has expired.
        retire_after: time::Duration::seconds(config.keys.retire_after_seconds),
        rotate_every: config
            .keys
            .rotate_every_seconds
            .map(time::Duration::seconds),
    };
    let key_store = crate::keys::open_store(&config, store.clone()).await?;
    let keys = Arc::new(KeyRing::open(key_store, policy, clock.now()).await?);

    let metrics = Arc::new(crate::metrics::Metrics::new());
    let (audit, audit_writer) = AuditLog::start(store.clone(), metrics.clone());
    let directory = Arc::new(Directory::new(
        store.clone(),
        Duration::from_millis(config.cache_ttl_ms),
        metrics.clone(),
    ));
    let admin_resource = format!("{base_url}/admin");
    let oauth = Arc::new(OAuthService::new(OAuthParts {
        settings: OAuthSettings {
            issuer: base_url.clone(),
            tenant_id: tenant_id.clone(),
            default_token_ttl: config.default_token_ttl_seconds,
            max_token_ttl: config.keys.retire_after_seconds,
            admin_resource: admin_resource.clone(),
            tenant_alias: config.tenant_alias.clone(),
            assertion_max_lifetime: config.assertion_max_lifetime_seconds,
            max_delegation_depth: config.max_delegation_depth,
            throttle_with_429: config.limits.throttle_with_429,
            jwks_max_age: crate::http::JWKS_MAX_AGE_SECONDS
                .min(config.keys.prepublish_seconds.max(0) as u64 / 2),
        },
        store: store.clone(),
        directory: directory.clone(),
        keys: keys.clone(),
        audit: audit.clone(),
        clock: clock.clone(),
        federation: Arc::new(crate::federation::Federation::new(
            crate::federation::fetch::Fetcher::new(Vec::new()),
        )),
        throttle: crate::oauth::throttle::ThrottlePolicy {
            burst: f64::from(config.limits.auth_failure_burst),
            refill_per_second: f64::from(config.limits.auth_failures_per_minute) / 60.0,
            limit_loopback: config.limits.throttle_loopback,
        },
        metrics,
    }));

    let admin = Arc::new(AdminService {
        store: store.clone(),
        directory: directory.clone(),
        keys: keys.clone(),
        audit: audit.clone(),
        clock: clock.clone(),
        admin_resource,
    });
    let admin_credentials =
        crate::bootstrap::ensure_admin(&admin, &config.data_dir, &base_url, &tenant_id).await?;
    if let Some(file) = &config.apply {
        crate::apply::apply_file(&admin, file)
            .await
            .map_err(|e| AppError::Io(format!("applying {}: {e}", file.display())))?;
    }
    drop(audit);

    let (stop, mut stopped) = watch::channel(false);
    let header_timeout = Duration::from_secs(config.limits.header_timeout_seconds);
    let background = spawn_background(
        oauth.clone(),
        stopped.clone(),
        config.keys.check_interval_seconds,
    );
    let time_limit = Duration::from_secs(config.limits.request_timeout_seconds);
    let app = router(AppState { oauth: oauth.clone(), admin }, time_limit)
        .layer(tower::limit::ConcurrencyLimitLayer::new(config.limits.max_concurrent_requests))
        .layer(PropagateRequestIdLayer::new(HeaderName::from_static("x-request-id")))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(HeaderName::from_static("x-request-id"), MakeRequestUuid));

    tracing::info!(%addr, base_url = %base_url, tenant_id = %tenant_id, tls = tls.is_some(), "agentauth is listening");
    let done = tokio::spawn(async move {
        let shutdown = async move {
            if stop_on_signal {
                tokio::select! {
                    _ = stopped.changed() => {}
                    _ = signal() => {}
                }
            } else {
                let _ = stopped.changed().await;
            }
            tracing::info!("shutting down: finishing in-flight requests");
        };
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = serve(listener, tls, header_timeout, service, shutdown).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "server error");
        }
        background.abort();
        let _ = background.await;
        oauth.activity.flush(&oauth.store).await;
        drop(oauth);
        // Every audit handle is gone now: the writer drains its queue and ends.
        if tokio::time::timeout(Duration::from_secs(10), audit_writer)
            .await
            .is_err()
        {
            tracing::error!("the audit writer did not finish in time");
        }
        tracing::info!("stopped");
    });
    Ok(RunningServer {
        addr,
        base_url,
        tenant_id,
        admin_credentials,
        stop,
        done,
    })
}

type Service =
    axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>;

/// HTTP, or HTTPS with HTTP/1.1 and HTTP/2 (ALPN); drains in-flight requests on shutdown.
async fn serve(
    listener: TcpListener,
    tls: Option<crate::tls::TlsMaterial>,
    header_timeout: Duration,
    service: Service,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let std_listener = listener.into_std().map_err(|e| e.to_string())?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    let plain = axum_server::from_tcp(std_listener).map_err(|e| e.to_string())?;
    match tls {
        None => {
            bounded(plain, header_timeout)
                .handle(handle)
                .serve(service)
                .await
        }
        Some(tls) => {
            let config =
                axum_server::tls_rustls::RustlsConfig::from_pem(tls.cert_chain_pem, tls.key_pem)
                    .await
                    .map_err(|e| format!("the TLS certificate or key is unusable: {e}"))?;
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config);
            bounded(plain.acceptor(acceptor), header_timeout)
                .handle(handle)
                .serve(service)
                .await
        }
    }
    .map_err(|e| e.to_string())
}

/// A client gets `timeout` to send a request's headers, and a new connection its first
/// request: a slow client cannot hold connections open (the request timeout only starts once
/// the headers are in).
fn bounded<A>(
    mut server: axum_server::Server<SocketAddr, A>,
    timeout: Duration,
) -> axum_server::Server<SocketAddr, A> {
    server.http_builder().http1().header_read_timeout(timeout);
    server.first_request_timeout(timeout)
}

/// Periodic work: `last_active_at` batches, key lifecycle, expired revocation entries.
fn spawn_background(
    oauth: Arc<OAuthService>,
    mut stopped: watch::Receiver<bool>,
    key_check_every: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => return,
            }
            n += 1;
            oauth.activity.flush(&oauth.store).await;
            if let Err(e) = oauth.store.maintain().await {
                tracing::warn!(error = %e, "store maintenance failed");
            }
            let now = oauth.clock.now();
            // Every 10 s: a rotation made through another replica is published here long before
            // it signs (the pre-publication window is minutes).
            if n.is_multiple_of(key_check_every)
                && let Err(e) = oauth.keys.tick(now).await
            {
                tracing::warn!(error = %e, "key lifecycle tick failed");
            }
            if n.is_multiple_of(3600)
                && let Err(e) = oauth.store.purge_expired(now).await
            {
                tracing::warn!(error = %e, "purging expired revocations failed");
            }
        }
    })
}

async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
