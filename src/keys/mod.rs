//! The key ring (SPEC §7): which key signs now, which keys the JWKS publishes, and the
//! lifecycle `next` → `active` → `retired` → removed, driven by `tick`.

pub mod database_store;

/// Opens the key store the configuration names: files in `<data dir>/keys/`, or the database
/// with private keys sealed under the key-encryption key (from `keys.kek_file` or `AGENTAUTH_KEK`).
pub async fn open_store(
    config: &crate::config::Config,
    rows: Arc<dyn crate::store::KeyRowStore>,
) -> Result<Arc<dyn KeyStore>, KeyError> {
    if config.keys.store != "database" {
        return Ok(Arc::new(crate::store::key_store::FileKeyStore::new(
            config.data_dir.join("keys"),
        )));
    }
    let text = match (&config.keys.kek_file, std::env::var("AGENTAUTH_KEK")) {
        (Some(path), _) => tokio::fs::read_to_string(path).await.map_err(|e| {
            KeyError::Store(StoreError::Keys(format!(
                "reading the key-encryption key {}: {e}",
                path.display()
            )))
        })?,
        (None, Ok(text)) => text,
        (None, Err(_)) => {
            return Err(KeyError::Store(StoreError::Keys(
                "keys.store = database needs a key-encryption key: set keys.kek_file or AGENTAUTH_KEK".into(),
            )));
        }
    };
    let kek = crate::crypto::seal::Kek::from_base64(&text)?;
    Ok(Arc::new(database_store::DatabaseKeyStore::new(rows, kek)))
}

use crate::crypto::{SigningAlgorithm, SigningKey};
use crate::store::{KeyState, KeyStore, StoreError, StoredKey};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("no key is active")]
    NoActiveKey,
}

/// Timing of the lifecycle.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    pub algorithm: SigningAlgorithm,
    /// How long a new key is published before it signs: longer than the JWKS cache lifetime.
    pub prepublish: time::Duration,
    /// How long a retired key stays published: at least the longest token lifetime.
    pub retire_after: time::Duration,
    /// Rotate automatically this often, if set.
    pub rotate_every: Option<time::Duration>,
}

/// One published key, public half only.
#[derive(Debug, Clone)]
pub struct PublishedKey {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pub state: KeyState,
    pub created_at: i64,
    pub activate_at: i64,
    pub retired_at: Option<i64>,
    pub jwk: Jwk,
}

struct KeySet {
    signing: Arc<SigningKey>,
    published: Vec<PublishedKey>,
    verifying: HashMap<String, (DecodingKey, Algorithm)>,
}

pub struct KeyRing {
    store: Arc<dyn KeyStore>,
    policy: KeyPolicy,
    current: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// Loads the keys, making the first one on an empty store, and applies due transitions.
    pub async fn open(
        store: Arc<dyn KeyStore>,
        policy: KeyPolicy,
        now: OffsetDateTime,
    ) -> Result<Self, KeyError> {
        let mut stored = store.load_keys().await?;
        if stored.is_empty() {
            let key = new_stored_key(policy.algorithm, KeyState::Active, now, now)?;
            store.save_key(&key).await?;
            stored.push(key);
        }
        let set = build(&stored)?;
        let ring = Self {
            store,
            policy,
            current: RwLock::new(Arc::new(set)),
        };
        ring.tick(now).await?;
        Ok(ring)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key that signs now.
    pub fn signing_key(&self) -> Arc<SigningKey> {
        self.snapshot().signing.clone()
    }

    pub fn published(&self) -> Vec<PublishedKey> {
        self.snapshot().published.clone()
    }

    /// The JWKS document: public members only.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .snapshot()
                .published
                .iter()
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// The verification key for `kid`, if published.
    pub fn verifying_key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.snapshot().verifying.get(kid).cloned()
    }

    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<_> = self
            .snapshot()
            .published
            .iter()
            .map(|k| k.alg.as_str())
            .collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }

    /// Publishes a new key now; it signs once the pre-publication window has passed.
    pub async fn rotate(&self, now: OffsetDateTime) -> Result<String, KeyError> {
        let key = new_stored_key(
            self.policy.algorithm,
            KeyState::Next,
            now,
            now + self.policy.prepublish,
        )?;
        self.store.save_key(&key).await?;
        let kid = key.kid.clone();
        self.reload(now).await?;
        Ok(kid)
    }

    /// Imports a PKCS#8 PEM private key as the next key.
    pub async fn import(&self, pem: &str, now: OffsetDateTime) -> Result<String, KeyError> {
        let key = SigningKey::from_pkcs8_pem(pem)?;
        let stored = StoredKey {
            kid: key.kid().to_owned(),
            alg: key.algorithm().as_str().to_owned(),
            state: KeyState::Next,
            private_pem: SecretString::from(key.to_pkcs8_pem()),
            created_at: now.unix_timestamp(),
            activate_at: (now + self.policy.prepublish).unix_timestamp(),
            retired_at: None,
        };
        self.store.save_key(&stored).await?;
        self.reload(now).await?;
        Ok(stored.kid)
    }

    /// Re-reads the store (another replica may have rotated) and applies due transitions.
    pub async fn reload(&self, now: OffsetDateTime) -> Result<(), KeyError> {
        self.tick(now).await
    }

    /// Applies the lifecycle: promote due `next` keys, retire the old active key, drop retired
    /// keys whose tokens have all expired, and rotate on schedule.
    pub async fn tick(&self, now: OffsetDateTime) -> Result<(), KeyError> {
        let mut stored = self.store.load_keys().await?;
        let t = now.unix_timestamp();
        let due_next = stored
            .iter()
            .filter(|k| k.state == KeyState::Next && k.activate_at <= t)
            .max_by_key(|k| k.activate_at)
            .map(|k| k.kid.clone());
        if let Some(kid) = due_next {
            for k in stored.iter_mut() {
                if k.kid == kid {
                    k.state = KeyState::Active;
                    self.store.save_key(k).await?;
                } else if k.state == KeyState::Active {
                    k.state = KeyState::Retired;
                    k.retired_at = Some(t);
                    self.store.save_key(k).await?;
                }
            }
        }
        // Two replicas starting on an empty database may each make a first key: keep the
        // newest active one (the same on every replica) and retire the others.
        let newest_active = stored
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .map(|k| (k.created_at, k.kid.clone()))
            .max();
        if let Some((_, keep)) = newest_active {
            for k in stored.iter_mut() {
                if k.state == KeyState::Active && k.kid != keep {
                    k.state = KeyState::Retired;
                    k.retired_at = Some(t);
                    self.store.save_key(k).await?;
                }
            }
        }
        let retire_after = self.policy.retire_after.whole_seconds();
        let mut kept = Vec::with_capacity(stored.len());
        for k in stored {
            if k.state == KeyState::Retired && k.retired_at.is_some_and(|r| r + retire_after < t) {
                self.store.remove_key(&k.kid).await?;
            } else {
                kept.push(k);
            }
        }
        if let Some(every) = self.policy.rotate_every {
            let newest = kept.iter().map(|k| k.created_at).max().unwrap_or(0);
            if newest + every.whole_seconds() <= t {
                let key = new_stored_key(
                    self.policy.algorithm,
                    KeyState::Next,
                    now,
                    now + self.policy.prepublish,
                )?;
                self.store.save_key(&key).await?;
                kept.push(key);
            }
        }
        let set = build(&kept)?;
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        Ok(())
    }
}

fn new_stored_key(
    alg: SigningAlgorithm,
    state: KeyState,
    now: OffsetDateTime,
    activate_at: OffsetDateTime,
) -> Result<StoredKey, KeyError> {
    let key = SigningKey::generate(alg)?;
    Ok(StoredKey {
        kid: key.kid().to_owned(),
        alg: alg.as_str().to_owned(),
        state,
        private_pem: SecretString::from(key.to_pkcs8_pem()),
        created_at: now.unix_timestamp(),
        activate_at: activate_at.unix_timestamp(),
        retired_at: None,
    })
}

fn build(stored: &[StoredKey]) -> Result<KeySet, KeyError> {
    let mut signing = None;
    let mut published = Vec::new();
    let mut verifying = HashMap::new();
    for k in stored {
        let key = SigningKey::from_pkcs8_pem(k.private_pem.expose_secret())?;
        let jwk = key.public_jwk().clone();
        let alg = key.algorithm();
        if let Ok(dk) = DecodingKey::from_jwk(&jwk) {
            verifying.insert(k.kid.clone(), (dk, alg.jwt_algorithm()));
        }
        published.push(PublishedKey {
            kid: k.kid.clone(),
            alg,
            state: k.state,
            created_at: k.created_at,
            activate_at: k.activate_at,
            retired_at: k.retired_at,
            jwk,
        });
        if k.state == KeyState::Active {
            // The newest active key wins if a crash left two.
            signing = Some(Arc::new(key));
        }
    }
    let signing = signing.ok_or(KeyError::NoActiveKey)?;
    Ok(KeySet {
        signing,
        published,
        verifying,
    })
}
