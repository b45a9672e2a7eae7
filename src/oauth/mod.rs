//! Protocol logic: no axum, no SQL. One file per grant and endpoint.

pub mod access_token;
pub mod activity;
pub mod assertion;
pub mod blueprint_leg;
pub mod claims;
pub mod client_auth;
pub mod client_credentials;
pub mod delegation;
pub mod error;
pub mod introspect;
pub mod on_behalf_of;
pub mod params;
pub mod refusal;
pub mod replay_guard;
pub mod revoke;
pub mod throttle;
pub mod token;
pub mod token_exchange;

pub use error::{Challenge, ErrorCode, OAuthError};
pub use params::Params;
pub use refusal::Endpoint;

use crate::audit::AuditLog;
use crate::cache::Directory;
use crate::clock::SharedClock;
use crate::crypto::digest::KeyedHasher;
use crate::keys::KeyRing;
use crate::store::SharedStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Settings the protocol logic needs.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// The issuer: this server's public base URL, no trailing slash.
    pub issuer: String,
    pub tenant_id: String,
    /// Token lifetime when the agent sets none (seconds).
    pub default_token_ttl: i64,
    /// The longest any token lives (seconds): how long a retired key stays published, so no
    /// token outlives the key that verifies it (SPEC §7), whatever an agent's `token_ttl`.
    pub max_token_ttl: i64,
    /// The admin resource identifier, `<base>/admin`.
    pub admin_resource: String,
    /// Another name for the tenant on the Entra routes.
    pub tenant_alias: Option<String>,
    /// How far ahead a client assertion's `exp` may be (seconds).
    pub assertion_max_lifetime: i64,
    /// The longest delegation chain (`act` nesting) a token may carry.
    pub max_delegation_depth: usize,
    /// Throttled clients get 429 with `Retry-After` (else `invalid_client`).
    pub throttle_with_429: bool,
    /// How long resource servers may cache the JWKS: always shorter than the pre-publication
    /// window of new keys, so a cache never meets a `kid` it has not seen.
    pub jwks_max_age: u64,
}

impl OAuthSettings {
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/token", self.issuer)
    }

    /// The issuer of `entra`-profile tokens: `<base>/<tenant>/v2.0`.
    pub fn entra_issuer(&self) -> String {
        format!("{}/{}/v2.0", self.issuer, self.tenant_id)
    }

    /// What a client assertion's `aud` may name: the token endpoint on either route, or the
    /// issuer (RFC 7523 §3).
    pub fn assertion_audiences(&self) -> Vec<String> {
        let mut out = vec![
            self.issuer.clone(),
            self.token_endpoint(),
            self.entra_issuer(),
        ];
        for tenant in std::iter::once(&self.tenant_id).chain(self.tenant_alias.iter()) {
            out.push(format!("{}/{tenant}/oauth2/v2.0/token", self.issuer));
            out.push(format!("{}/{tenant}/v2.0", self.issuer));
        }
        out
    }
}

/// What the OAuth service is built from.
pub struct OAuthParts {
    pub settings: OAuthSettings,
    pub store: SharedStore,
    pub directory: Arc<Directory>,
    pub keys: Arc<KeyRing>,
    pub audit: AuditLog,
    pub clock: SharedClock,
    pub federation: Arc<crate::federation::Federation>,
    pub throttle: throttle::ThrottlePolicy,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Everything the OAuth endpoints share.
pub struct OAuthService {
    pub settings: OAuthSettings,
    pub store: SharedStore,
    pub directory: Arc<Directory>,
    pub keys: Arc<KeyRing>,
    pub audit: AuditLog,
    pub clock: SharedClock,
    pub federation: Arc<crate::federation::Federation>,
    pub activity: activity::ActivityTracker,
    pub throttle: throttle::FailureThrottle,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub replay_guard: replay_guard::ReplayGuard,
    /// Caps concurrent argon2 checks so a flood of wrong secrets cannot starve the runtime.
    argon2_permits: Semaphore,
    /// Credential id → keyed hash of the secret that verified against it.
    verified_secrets: Mutex<HashMap<Uuid, [u8; 32]>>,
    secret_tagger: KeyedHasher,
}

impl OAuthService {
    pub fn new(parts: OAuthParts) -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let replay_guard = replay_guard::ReplayGuard::start(parts.store.clone());
        Self {
            settings: parts.settings,
            store: parts.store,
            directory: parts.directory,
            keys: parts.keys,
            audit: parts.audit,
            clock: parts.clock,
            federation: parts.federation,
            activity: activity::ActivityTracker::default(),
            throttle: throttle::FailureThrottle::new(parts.throttle),
            metrics: parts.metrics,
            replay_guard,
            argon2_permits: Semaphore::new(cpus),
            verified_secrets: Mutex::new(HashMap::new()),
            secret_tagger: KeyedHasher::random(),
        }
    }
}
