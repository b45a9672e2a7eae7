//! Signing keys: public part and state only.

use super::views::KeyView;
use super::{Actor, AdminError, AdminService, format_time};
use crate::clock::from_unix_seconds;

impl AdminService {
    pub fn list_keys(&self) -> Vec<KeyView> {
        self.keys
            .published()
            .into_iter()
            .map(|k| KeyView {
                kid: k.kid,
                alg: k.alg.as_str().to_owned(),
                state: k.state.as_str().to_owned(),
                created_at: format_time(from_unix_seconds(k.created_at)),
                activate_at: format_time(from_unix_seconds(k.activate_at)),
                retired_at: k.retired_at.map(|t| format_time(from_unix_seconds(t))),
                jwk: serde_json::to_value(&k.jwk).unwrap_or_default(),
            })
            .collect()
    }

    pub async fn rotate_keys(&self, actor: &Actor) -> Result<KeyView, AdminError> {
        let kid = self
            .keys
            .rotate(self.now())
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        self.record_change(
            actor,
            "key.rotate",
            None,
            None,
            Some(serde_json::json!({ "kid": kid })),
        )
        .await?;
        self.published(&kid)
    }

    /// Adds a PKCS#8 key as the next signing key (`agentauth keys import`), audited as a
    /// rotation is: a key that will sign tokens is an admin change like any other.
    pub async fn import_key(&self, actor: &Actor, pem: &str) -> Result<KeyView, AdminError> {
        let kid = self
            .keys
            .import(pem, self.now())
            .await
            .map_err(|e| AdminError::invalid("file", e.to_string()))?;
        let view = self.published(&kid)?;
        self.record_change(
            actor,
            "key.import",
            None,
            None,
            Some(serde_json::json!({ "kid": kid, "alg": view.alg })),
        )
        .await?;
        Ok(view)
    }

    fn published(&self, kid: &str) -> Result<KeyView, AdminError> {
        self.list_keys()
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| AdminError::Internal("the new key is not published".into()))
    }
}
