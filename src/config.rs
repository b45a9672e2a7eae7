//! Configuration: flags over `AGENTAUTH_*` environment variables over `agentauth.toml` over
//! defaults (SPEC §11), merged by figment into one validated `Config`.

use crate::crypto::SigningAlgorithm;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Holds the SQLite file, `keys/`, `admin-credentials.json` and `tls/`.
    pub data_dir: PathBuf,
    pub bind: String,
    /// `sqlite:…` or `postgres:…`; default `sqlite:<data dir>/agentauth.db`.
    pub database_url: Option<String>,
    /// The public base URL (the issuer); default derived from the bind address and scheme.
    pub base_url: Option<String>,
    /// A fixed tenant id; default: a UUID made at first start.
    pub tenant_id: Option<String>,
    /// Another name for the tenant on the Entra routes.
    pub tenant_alias: Option<String>,
    pub default_token_ttl_seconds: i64,
    /// How far ahead a client assertion's `exp` may be (seconds).
    pub assertion_max_lifetime_seconds: i64,
    /// The longest delegation chain a token may carry.
    pub max_delegation_depth: usize,
    /// How long cached agents, credentials and resources may be served (milliseconds).
    pub cache_ttl_ms: u64,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: bool,
    /// `pretty` or `json`.
    pub log_format: String,
    pub log_level: String,
    /// A declarative file applied at start.
    pub apply: Option<PathBuf>,
    pub keys: KeysConfig,
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct KeysConfig {
    /// ES256 (default), EdDSA or RS256.
    pub algorithm: String,
    /// How long a new key is published before it signs (seconds).
    pub prepublish_seconds: i64,
    /// Rotate automatically this often (seconds), if set.
    pub rotate_every_seconds: Option<i64>,
    /// `file` (`<data dir>/keys/`, one process) or `database` (shared by replicas, private keys
    /// encrypted under the key-encryption key).
    pub store: String,
    /// A file holding the key-encryption key (32 bytes, base64). `AGENTAUTH_KEK` may hold the
    /// same text instead.
    pub kek_file: Option<PathBuf>,
    /// How long a retired key stays published: at least the longest token lifetime.
    pub retire_after_seconds: i64,
    /// How often the key lifecycle is applied (and other replicas' rotations picked up).
    pub check_interval_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Seconds a request may take before it is answered 408.
    pub request_timeout_seconds: u64,
    /// Seconds a client may take to send a request's headers (and a new connection its first
    /// request) before the connection is closed.
    pub header_timeout_seconds: u64,
    /// Requests handled at once; more wait.
    pub max_concurrent_requests: usize,
    /// Failed client authentications allowed in a burst, per client id and per address.
    pub auth_failure_burst: u32,
    /// Failed authentications forgiven per minute, per client id and per address.
    pub auth_failures_per_minute: u32,
    /// Answer throttled clients `429` with `Retry-After` (true) or `invalid_client` (false).
    pub throttle_with_429: bool,
    /// Limit loopback addresses per address too (client ids are always limited).
    pub throttle_loopback: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("."),
            bind: "127.0.0.1:8080".into(),
            database_url: None,
            base_url: None,
            tenant_id: None,
            tenant_alias: None,
            default_token_ttl_seconds: 3600,
            assertion_max_lifetime_seconds: 3600,
            max_delegation_depth: 4,
            cache_ttl_ms: 1000,
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            log_format: "pretty".into(),
            log_level: "info".into(),
            apply: None,
            keys: KeysConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            algorithm: "ES256".into(),
            prepublish_seconds: 2 * crate::http::JWKS_MAX_AGE_SECONDS as i64,
            rotate_every_seconds: None,
            store: "file".into(),
            kek_file: None,
            retire_after_seconds: crate::admin::agents::MAX_TOKEN_TTL + 60,
            check_interval_seconds: 10,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            request_timeout_seconds: 30,
            header_timeout_seconds: 10,
            max_concurrent_requests: 4096,
            auth_failure_burst: 20,
            auth_failures_per_minute: 20,
            throttle_with_429: true,
            throttle_loopback: false,
        }
    }
}

impl Config {
    /// Merges defaults, the TOML file (if present), `AGENTAUTH_*` variables, then `flags`
    /// (only the flags that were given).
    pub fn load(
        file: Option<PathBuf>,
        flags: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ConfigError> {
        let file = file
            .or_else(|| std::env::var_os("AGENTAUTH_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("agentauth.toml"));
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&file))
            .merge(
                Env::prefixed("AGENTAUTH_")
                    .split("__")
                    .ignore(&["config", "test_postgres_url"]),
            )
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        self.signing_algorithm()?;
        if !(1..=86_400).contains(&self.default_token_ttl_seconds) {
            return Err(ConfigError::Invalid(
                "default_token_ttl_seconds must be between 1 and 86400".into(),
            ));
        }
        if !matches!(self.log_format.as_str(), "pretty" | "json") {
            return Err(ConfigError::Invalid(
                "log_format must be pretty or json".into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "--tls-cert and --tls-key go together".into(),
            ));
        }
        if self.tls_self_signed && self.tls_cert.is_some() {
            return Err(ConfigError::Invalid(
                "use --tls-self-signed or --tls-cert/--tls-key, not both".into(),
            ));
        }
        if let Some(base) = &self.base_url {
            let url = reqwest::Url::parse(base)
                .map_err(|_| ConfigError::Invalid(format!("base_url {base:?} is not a URL")))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(ConfigError::Invalid(
                    "base_url must be an http(s) URL without query or fragment".into(),
                ));
            }
        }
        if self.limits.header_timeout_seconds == 0 {
            return Err(ConfigError::Invalid(
                "limits.header_timeout_seconds must be at least 1".into(),
            ));
        }
        if self.limits.auth_failure_burst == 0 || self.limits.auth_failures_per_minute == 0 {
            return Err(ConfigError::Invalid(
                "limits.auth_failure_burst and limits.auth_failures_per_minute must be at least 1"
                    .into(),
            ));
        }
        if !matches!(self.keys.store.as_str(), "file" | "database") {
            return Err(ConfigError::Invalid(
                "keys.store must be file or database".into(),
            ));
        }
        if self.keys.retire_after_seconds < self.default_token_ttl_seconds {
            return Err(ConfigError::Invalid(
                "keys.retire_after_seconds must be at least the token lifetime".into(),
            ));
        }
        if self.keys.check_interval_seconds == 0 {
            return Err(ConfigError::Invalid(
                "keys.check_interval_seconds must be at least 1".into(),
            ));
        }
        if self.keys.prepublish_seconds < 0 {
            return Err(ConfigError::Invalid(
                "keys.prepublish_seconds must not be negative".into(),
            ));
        }
        Ok(())
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.bind.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "bind {:?} is not an address such as 127.0.0.1:8080",
                self.bind
            ))
        })
    }

    pub fn signing_algorithm(&self) -> Result<SigningAlgorithm, ConfigError> {
        self.keys.algorithm.parse().map_err(ConfigError::Invalid)
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("agentauth.db").display()))
    }

    pub fn uses_tls(&self) -> bool {
        self.tls_self_signed || self.tls_cert.is_some()
    }

    /// The base URL: configured, or derived from the address actually bound.
    pub fn base_url_for(&self, bound: SocketAddr) -> String {
        if let Some(b) = &self.base_url {
            return b.trim_end_matches('/').to_owned();
        }
        let scheme = if self.uses_tls() { "https" } else { "http" };
        let host = if bound.ip().is_unspecified() {
            "localhost".to_owned()
        } else if bound.is_ipv6() {
            format!("[{}]", bound.ip())
        } else {
            bound.ip().to_string()
        };
        format!("{scheme}://{host}:{}", bound.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let mut flags = serde_json::Map::new();
        flags.insert("bind".into(), "127.0.0.1:9999".into());
        let c = Config::load(Some(PathBuf::from("/nonexistent.toml")), flags).unwrap();
        assert_eq!(c.bind, "127.0.0.1:9999");
        assert_eq!(c.default_token_ttl_seconds, 3600);
    }

    #[test]
    fn base_url_is_derived_from_the_bound_address() {
        let c = Config::default();
        assert_eq!(
            c.base_url_for("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        let tls = Config {
            tls_self_signed: true,
            ..Config::default()
        };
        assert_eq!(
            tls.base_url_for("127.0.0.1:8443".parse().unwrap()),
            "https://127.0.0.1:8443"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let c = Config {
            bind: "nowhere".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            keys: KeysConfig {
                algorithm: "HS256".into(),
                ..KeysConfig::default()
            },
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            limits: LimitsConfig {
                header_timeout_seconds: 0,
                ..LimitsConfig::default()
            },
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
