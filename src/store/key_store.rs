//! Where signing keys live (SPEC §7). The file store keeps each key as `<kid>.pem` (mode 0600)
//! beside a `<kid>.json` of public metadata, in `<data dir>/keys/`.

use super::{StoreError, StoreResult};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A key's place in its lifecycle: published before it signs, kept after it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
}

/// A signing key as stored.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub private_pem: SecretString,
    /// Unix seconds.
    pub created_at: i64,
    /// When it starts (or started) to sign.
    pub activate_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("private_pem", &"<hidden>")
            .finish()
    }
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn load_keys(&self) -> StoreResult<Vec<StoredKey>>;
    async fn save_key(&self, key: &StoredKey) -> StoreResult<()>;
    async fn remove_key(&self, kid: &str) -> StoreResult<()>;
}

#[derive(Serialize, Deserialize)]
struct KeyMetadata {
    kid: String,
    alg: String,
    state: KeyState,
    created_at: i64,
    activate_at: i64,
    retired_at: Option<i64>,
}

/// Keys as files in one directory.
#[derive(Debug, Clone)]
pub struct FileKeyStore {
    dir: PathBuf,
}

impl FileKeyStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn io(e: std::io::Error, what: &str) -> StoreError {
        StoreError::Keys(format!("{what}: {e}"))
    }
}

fn is_safe_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[async_trait]
impl KeyStore for FileKeyStore {
    async fn load_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let mut keys = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(Self::io(e, "reading the key directory")),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| Self::io(e, "listing keys"))?
        {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = tokio::fs::read_to_string(&path)
                .await
                .map_err(|e| Self::io(e, "reading key metadata"))?;
            let meta: KeyMetadata = serde_json::from_str(&text)
                .map_err(|e| StoreError::Keys(format!("{}: {e}", path.display())))?;
            let pem = tokio::fs::read_to_string(self.dir.join(format!("{}.pem", meta.kid)))
                .await
                .map_err(|e| Self::io(e, "reading a private key"))?;
            keys.push(StoredKey {
                kid: meta.kid,
                alg: meta.alg,
                state: meta.state,
                private_pem: SecretString::from(pem),
                created_at: meta.created_at,
                activate_at: meta.activate_at,
                retired_at: meta.retired_at,
            });
        }
        keys.sort_by_key(|k| k.created_at);
        Ok(keys)
    }

    async fn save_key(&self, key: &StoredKey) -> StoreResult<()> {
        if !is_safe_kid(&key.kid) {
            return Err(StoreError::Keys(format!("unsafe kid {:?}", key.kid)));
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| Self::io(e, "creating the key directory"))?;
        let pem_path = self.dir.join(format!("{}.pem", key.kid));
        if tokio::fs::metadata(&pem_path).await.is_err() {
            write_private(&pem_path, key.private_pem.expose_secret()).await?;
        }
        let meta = KeyMetadata {
            kid: key.kid.clone(),
            alg: key.alg.clone(),
            state: key.state,
            created_at: key.created_at,
            activate_at: key.activate_at,
            retired_at: key.retired_at,
        };
        let text =
            serde_json::to_string_pretty(&meta).map_err(|e| StoreError::Keys(e.to_string()))?;
        let tmp = self.dir.join(format!("{}.json.tmp", key.kid));
        tokio::fs::write(&tmp, text)
            .await
            .map_err(|e| Self::io(e, "writing key metadata"))?;
        tokio::fs::rename(&tmp, self.dir.join(format!("{}.json", key.kid)))
            .await
            .map_err(|e| Self::io(e, "writing key metadata"))
    }

    async fn remove_key(&self, kid: &str) -> StoreResult<()> {
        if !is_safe_kid(kid) {
            return Err(StoreError::Keys(format!("unsafe kid {kid:?}")));
        }
        for ext in ["json", "pem"] {
            match tokio::fs::remove_file(self.dir.join(format!("{kid}.{ext}"))).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Self::io(e, "removing a key")),
            }
        }
        Ok(())
    }
}

/// Writes a file readable by its owner only (0600), created that way rather than chmod-ed after.
pub async fn write_private(path: &std::path::Path, contents: &str) -> StoreResult<()> {
    let path = path.to_owned();
    let contents = contents.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    })
    .await
    .map_err(|e| StoreError::Keys(e.to_string()))?
    .map_err(|e| StoreError::Keys(format!("writing {}: {e}", "a private file")))
}
