//! Prometheus metrics (`GET /metrics`): tokens issued and refused by grant, profile and reason;
//! client-authentication failures; request latency per route; the audit queue and its commits;
//! cache hit rates; signing-key ages. No label ever carries a secret, a token or a client id.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    pub grant: &'static str,
    pub profile: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub grant: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: &'static str,
    pub result: &'static str,
}

/// The hot path's caches, each with its hit and miss counters resolved once, so a lookup
/// counts with one atomic add instead of a labelled-family lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheName {
    Agents,
    Credentials,
    Resources,
    Roles,
    Delegations,
    Issuers,
}

impl CacheName {
    const ALL: [Self; 6] = [
        Self::Agents,
        Self::Credentials,
        Self::Resources,
        Self::Roles,
        Self::Delegations,
        Self::Issuers,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Agents => "agents",
            Self::Credentials => "credentials",
            Self::Resources => "resources",
            Self::Roles => "roles",
            Self::Delegations => "delegations",
            Self::Issuers => "issuers",
        }
    }
}

/// A cache's counters: `[miss, hit]`.
type HitMiss = [Counter; 2];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    pub kid: String,
    pub state: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub tokens_issued: Family<GrantLabels, Counter>,
    pub tokens_refused: Family<RefusalLabels, Counter>,
    pub client_auth_failures: Family<ReasonLabels, Counter>,
    pub requests: HistogramFamily<RouteLabels>,
    pub audit_queue_depth: Gauge,
    pub audit_commit_seconds: Histogram,
    pub audit_batch_events: Histogram,
    cache: Family<CacheLabels, Counter>,
    cache_counters: [HitMiss; CacheName::ALL.len()],
    pub key_age_seconds: Family<KeyLabels, Gauge<f64, AtomicU64>>,
    pub outbound_fetches: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let cache: Family<CacheLabels, Counter> = Family::default();
        let cache_counters = CacheName::ALL.map(|name| {
            ["miss", "hit"].map(|result| {
                cache
                    .get_or_create(&CacheLabels {
                        cache: name.label(),
                        result,
                    })
                    .clone()
            })
        });
        let m = Self {
            registry: Mutex::new(Registry::with_prefix("agentauth")),
            tokens_issued: Family::default(),
            tokens_refused: Family::default(),
            client_auth_failures: Family::default(),
            requests: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            audit_queue_depth: Gauge::default(),
            audit_commit_seconds: latency_histogram(),
            audit_batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            cache,
            cache_counters,
            key_age_seconds: Family::default(),
            outbound_fetches: Gauge::default(),
        };
        if let Ok(mut r) = m.registry.lock() {
            r.register(
                "tokens_issued",
                "Access tokens issued, by grant and token profile",
                m.tokens_issued.clone(),
            );
            r.register(
                "tokens_refused",
                "Token requests refused after client authentication, by grant and reason",
                m.tokens_refused.clone(),
            );
            r.register(
                "client_auth_failures",
                "Failed client authentications, by reason",
                m.client_auth_failures.clone(),
            );
            r.register(
                "http_request_duration_seconds",
                "Request latency by route and status",
                m.requests.clone(),
            );
            r.register(
                "audit_queue_depth",
                "Audit events waiting to be committed",
                m.audit_queue_depth.clone(),
            );
            r.register(
                "audit_commit_duration_seconds",
                "Time to commit one batch of audit events",
                m.audit_commit_seconds.clone(),
            );
            r.register(
                "audit_batch_events",
                "Audit events per committed batch",
                m.audit_batch_events.clone(),
            );
            r.register(
                "cache_lookups",
                "Hot-path cache lookups, by cache and hit or miss",
                m.cache.clone(),
            );
            r.register(
                "signing_key_age_seconds",
                "Age of each published signing key",
                m.key_age_seconds.clone(),
            );
            r.register(
                "federation_fetches",
                "Outbound JWKS and metadata fetches so far",
                m.outbound_fetches.clone(),
            );
        }
        m
    }

    pub fn cache_lookup(&self, cache: CacheName, hit: bool) {
        self.cache_counters[cache as usize][usize::from(hit)].inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }
}
