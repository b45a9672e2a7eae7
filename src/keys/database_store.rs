//! Keys shared by replicas: signing keys in the database, each private key sealed with
//! AES-256-GCM under the key-encryption key (SPEC §7). Every replica loads the same keys and so
//! signs with the same active key.

use crate::crypto::seal::Kek;
use crate::store::{
    KeyRowStore, KeyState, KeyStore, SealedKeyRow, StoreError, StoreResult, StoredKey,
};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

pub struct DatabaseKeyStore {
    rows: Arc<dyn KeyRowStore>,
    kek: Kek,
}

impl DatabaseKeyStore {
    pub fn new(rows: Arc<dyn KeyRowStore>, kek: Kek) -> Self {
        Self { rows, kek }
    }
}

fn state_of(text: &str) -> StoreResult<KeyState> {
    match text {
        "next" => Ok(KeyState::Next),
        "active" => Ok(KeyState::Active),
        "retired" => Ok(KeyState::Retired),
        other => Err(StoreError::Corrupt(format!("key state {other:?}"))),
    }
}

#[async_trait]
impl KeyStore for DatabaseKeyStore {
    async fn load_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let mut out = Vec::new();
        for r in self.rows.load_key_rows().await? {
            let pem = self
                .kek
                .open(&r.private_key, &r.kid)
                .map_err(|e| StoreError::Keys(e.to_string()))?;
            let pem = String::from_utf8(pem)
                .map_err(|_| StoreError::Keys(format!("key {} is not PEM", r.kid)))?;
            out.push(StoredKey {
                state: state_of(&r.state)?,
                kid: r.kid,
                alg: r.alg,
                private_pem: SecretString::from(pem),
                created_at: r.created_at,
                activate_at: r.activate_at,
                retired_at: r.retired_at,
            });
        }
        Ok(out)
    }

    async fn save_key(&self, key: &StoredKey) -> StoreResult<()> {
        let sealed = self
            .kek
            .seal(key.private_pem.expose_secret().as_bytes(), &key.kid)
            .map_err(|e| StoreError::Keys(e.to_string()))?;
        self.rows
            .save_key_row(&SealedKeyRow {
                kid: key.kid.clone(),
                alg: key.alg.clone(),
                state: key.state.as_str().to_owned(),
                private_key: sealed,
                created_at: key.created_at,
                activate_at: key.activate_at,
                retired_at: key.retired_at,
            })
            .await
    }

    async fn remove_key(&self, kid: &str) -> StoreResult<()> {
        self.rows.remove_key_row(kid).await
    }
}
