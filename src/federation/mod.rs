//! Trusted external issuers: their keys (inline, `jwks_uri`, or discovered from metadata),
//! cached with a TTL and refetched on an unknown `kid` at most once per interval, and the
//! verification of their JWTs.

pub mod fetch;
pub mod jwt;

use crate::domain::TrustedIssuer;
use fetch::Fetcher;
use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long fetched keys are trusted without asking again.
pub const KEYS_TTL: Duration = Duration::from_secs(300);
/// The shortest time between two fetches forced by an unknown `kid`.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

struct Cached {
    set: Arc<JwkSet>,
    fetched: Instant,
}

type Claims = serde_json::Map<String, serde_json::Value>;
/// A token's SHA-256 → its verified claims and when they were verified.
type VerifiedCache = HashMap<[u8; 32], (Arc<Claims>, Instant)>;

pub struct Federation {
    fetcher: Fetcher,
    /// SHA-256 of a token whose signature verified → its claims, kept no longer than the keys
    /// it was verified with: an agent presenting the same user token again costs no signature
    /// check.
    verified: Mutex<VerifiedCache>,
    jwks: Mutex<HashMap<String, Cached>>,
    discovered: Mutex<HashMap<String, (String, Instant)>>,
    /// Counts outbound fetches (for tests and metrics).
    fetches: std::sync::atomic::AtomicU64,
}

impl Federation {
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            fetcher,
            jwks: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
            discovered: Mutex::new(HashMap::new()),
            fetches: Default::default(),
        }
    }

    /// The claims of `token` if its signature verifies, from cache or by `verify`. Times,
    /// audience and issuer trust are the caller's to check every time.
    pub fn verified(&self, token: &str, verify: impl FnOnce() -> Option<Claims>) -> Option<Claims> {
        let key = crate::crypto::digest::sha256(token.as_bytes());
        if let Some((claims, at)) = self.verified.lock().ok().and_then(|m| m.get(&key).cloned())
            && at.elapsed() < KEYS_TTL
        {
            return Some((*claims).clone());
        }
        let claims = verify()?;
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= 10_000 {
                m.retain(|_, (_, at)| at.elapsed() < KEYS_TTL);
                if m.len() >= 10_000 {
                    m.clear();
                }
            }
            m.insert(key, (Arc::new(claims.clone()), Instant::now()));
        }
        Some(claims)
    }

    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key set at `url`, from cache when fresh and (if asked) holding `kid`.
    pub async fn keys_at(&self, url: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, String> {
        let cached = self
            .jwks
            .lock()
            .ok()
            .and_then(|m| m.get(url).map(|c| (c.set.clone(), c.fetched)));
        if let Some((set, fetched)) = &cached {
            let fresh = fetched.elapsed() < KEYS_TTL;
            let has_kid = kid.is_none_or(|k| set.find(k).is_some());
            if fresh && (has_kid || fetched.elapsed() < REFETCH_INTERVAL) {
                return Ok(set.clone());
            }
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fetched = self.fetcher.json(url).await.and_then(|v| {
            serde_json::from_value::<JwkSet>(strip_unusable(v))
                .map_err(|e| format!("{url} is not a JWK Set: {e}"))
        });
        match fetched {
            Ok(set) => {
                let set = Arc::new(set);
                if let Ok(mut m) = self.jwks.lock() {
                    m.insert(
                        url.to_owned(),
                        Cached {
                            set: set.clone(),
                            fetched: Instant::now(),
                        },
                    );
                }
                Ok(set)
            }
            // A failed refresh keeps serving what we had, if we had anything.
            Err(e) => cached.map(|(s, _)| s).ok_or(e),
        }
    }

    /// The keys of a trusted issuer.
    pub async fn issuer_keys(
        &self,
        issuer: &TrustedIssuer,
        kid: Option<&str>,
    ) -> Result<Arc<JwkSet>, String> {
        if let Some(inline) = &issuer.jwks {
            return serde_json::from_value::<JwkSet>(strip_unusable(inline.clone()))
                .map(Arc::new)
                .map_err(|e| format!("the stored JWKS of {} is unusable: {e}", issuer.issuer));
        }
        let uri = match &issuer.jwks_uri {
            Some(u) => u.clone(),
            None => self.discover_jwks_uri(&issuer.issuer).await?,
        };
        self.keys_at(&uri, kid).await
    }

    async fn discover_jwks_uri(&self, issuer: &str) -> Result<String, String> {
        if let Some((uri, at)) = self
            .discovered
            .lock()
            .ok()
            .and_then(|m| m.get(issuer).cloned())
            && at.elapsed() < Duration::from_secs(3600)
        {
            return Ok(uri);
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.fetcher.json(&url).await?;
        if doc["issuer"].as_str() != Some(issuer) {
            return Err(format!("the metadata at {url} names another issuer"));
        }
        let uri = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| format!("the metadata at {url} has no jwks_uri"))?
            .to_owned();
        if let Ok(mut m) = self.discovered.lock() {
            m.insert(issuer.to_owned(), (uri.clone(), Instant::now()));
        }
        Ok(uri)
    }
}

/// Drops keys jsonwebtoken cannot represent (say, an unknown `kty`) rather than failing the set.
fn strip_unusable(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(keys) = v.get_mut("keys").and_then(|k| k.as_array_mut()) {
        keys.retain(|k| serde_json::from_value::<jsonwebtoken::jwk::Jwk>(k.clone()).is_ok());
    }
    v
}
