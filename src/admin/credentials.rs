//! Credentials of agents and blueprints: client secrets (shown once), public keys, federated.

use super::views::{CredentialView, NewSecretView};
use super::{Actor, AdminError, AdminService, format_time, parse_time};
use crate::crypto::secret;
use crate::domain::{Credential, CredentialKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateCredential {
    ClientSecret {
        #[serde(default)]
        expires_at: Option<String>,
    },
    PublicKey {
        #[serde(default)]
        jwk: Option<serde_json::Value>,
        #[serde(default)]
        jwks_uri: Option<String>,
        #[serde(default)]
        certificate: Option<String>,
        #[serde(default)]
        expires_at: Option<String>,
    },
    Federated {
        issuer: String,
        subject: String,
        audience: String,
        #[serde(default)]
        expires_at: Option<String>,
    },
}

/// What creating a credential answers: a secret once, or the stored public view.
pub enum CreatedCredential {
    Secret(NewSecretView),
    Other(CredentialView),
}

/// The JWK members that only a private key has.
const PRIVATE_JWK_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

fn check_jwk(jwk: &serde_json::Value) -> Result<(), AdminError> {
    if PRIVATE_JWK_MEMBERS.iter().any(|m| jwk.get(m).is_some()) {
        return Err(AdminError::invalid(
            "jwk",
            "jwk must be a public key: it has private or symmetric members",
        ));
    }
    // RFC 7518 §3.3: RS256 and PS256 keys have at least 2048 bits; a shorter one could never
    // authenticate, so it is refused here rather than at every assertion.
    if let Some(n) = jwk.get("n").and_then(serde_json::Value::as_str) {
        let bits = crate::crypto::digest::b64url_decode(n)
            .map_or(0, |n| n.iter().skip_while(|b| **b == 0).count() * 8);
        if bits < 2048 {
            return Err(AdminError::invalid(
                "jwk",
                "an RSA key needs a modulus of at least 2048 bits",
            ));
        }
    }
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone())
        .map_err(|e| AdminError::invalid("jwk", format!("jwk is not a usable public JWK: {e}")))?;
    jsonwebtoken::DecodingKey::from_jwk(&parsed)
        .map_err(|e| AdminError::invalid("jwk", format!("jwk is not a usable public key: {e}")))?;
    Ok(())
}

/// Why `new` repeats an existing credential, if it does: a federated credential names one
/// (issuer, subject, audience) per owner, as in Entra, and a `kid`, a `jwks_uri` or a
/// certificate picks one key.
fn repeats(existing: &CredentialKind, new: &CredentialKind) -> Option<String> {
    match (existing, new) {
        (
            CredentialKind::Federated {
                issuer,
                subject,
                audience,
            },
            CredentialKind::Federated {
                issuer: i,
                subject: s,
                audience: a,
            },
        ) if issuer == i && subject == s && audience == a => Some(
            "a federated credential with this issuer, subject and audience is already registered"
                .into(),
        ),
        (
            CredentialKind::PublicKey {
                jwk,
                jwks_uri,
                certificate,
            },
            CredentialKind::PublicKey {
                jwk: j,
                jwks_uri: u,
                certificate: c,
            },
        ) => {
            let kid = |jwk: &Option<serde_json::Value>| {
                jwk.as_ref()
                    .and_then(|k| k.get("kid"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            if let Some(k) = kid(j).filter(|k| kid(jwk).as_ref() == Some(k)) {
                Some(format!("a key with kid {k:?} is already registered"))
            } else if u.is_some() && jwks_uri == u {
                Some("this jwks_uri is already registered".into())
            } else if c.is_some()
                && certificate.as_deref().map(str::trim) == c.as_deref().map(str::trim)
            {
                Some("this certificate is already registered".into())
            } else {
                None
            }
        }
        _ => None,
    }
}

pub fn check_url(field: &str, url: &str) -> Result<(), AdminError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| AdminError::invalid(field, format!("{field} must be an absolute URL")))?;
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        return Err(AdminError::invalid(
            field,
            format!("{field} must use https (http only for loopback addresses)"),
        ));
    }
    Ok(())
}

/// The certificate must parse and be valid now; its `notAfter` bounds the credential.
fn check_certificate(
    pem: &str,
    now: time::OffsetDateTime,
) -> Result<time::OffsetDateTime, AdminError> {
    let (not_before, not_after) = crate::crypto::certificate::validity(pem).map_err(|_| {
        AdminError::invalid(
            "certificate",
            "certificate must be an X.509 certificate in PEM",
        )
    })?;
    if not_after <= now {
        return Err(AdminError::invalid(
            "certificate",
            "the certificate has expired",
        ));
    }
    if not_before > now {
        return Err(AdminError::invalid(
            "certificate",
            "the certificate is not valid yet",
        ));
    }
    if crate::crypto::certificate::rsa_key_bits(pem)
        .is_ok_and(|bits| bits.is_some_and(|b| b < 2048))
    {
        return Err(AdminError::invalid(
            "certificate",
            "the certificate's RSA key needs a modulus of at least 2048 bits",
        ));
    }
    Ok(not_after)
}

impl AdminService {
    /// Adds a credential to an agent or blueprint (`owner_id`).
    pub async fn add_credential(
        &self,
        actor: &Actor,
        owner_id: Uuid,
        agent_for_audit: Option<Uuid>,
        req: CreateCredential,
        fixed_secret: Option<SecretString>,
    ) -> Result<CreatedCredential, AdminError> {
        if let Some(agent) = agent_for_audit {
            // Through the API or `apply`: a deleted agent takes no new credential.
            self.load_live_agent(&agent.to_string()).await?;
        }
        let now = self.now();
        let future = |field: &str, t: &Option<String>| -> Result<_, AdminError> {
            let parsed = t.as_deref().map(|t| parse_time(field, t)).transpose()?;
            if parsed.is_some_and(|p| p <= now) {
                return Err(AdminError::invalid(
                    field,
                    "expires_at must be in the future",
                ));
            }
            Ok(parsed)
        };
        let (kind, expires_at, shown) = match req {
            CreateCredential::ClientSecret { expires_at } => {
                let expires_at = future("expires_at", &expires_at)?;
                let secret = fixed_secret.unwrap_or_else(secret::generate_secret);
                if secret.expose_secret().len() < 32 {
                    return Err(AdminError::invalid(
                        "client_secret",
                        "a client secret needs at least 32 characters",
                    ));
                }
                let to_hash = secret.clone();
                let hash = tokio::task::spawn_blocking(move || secret::hash_secret(&to_hash))
                    .await
                    .map_err(|e| AdminError::Internal(e.to_string()))?
                    .map_err(|e| AdminError::Internal(e.to_string()))?;
                let hint = secret::hint(secret.expose_secret());
                (
                    CredentialKind::ClientSecret { hash, hint },
                    expires_at,
                    Some(secret),
                )
            }
            CreateCredential::PublicKey {
                jwk,
                jwks_uri,
                certificate,
                expires_at,
            } => {
                let given = [jwk.is_some(), jwks_uri.is_some(), certificate.is_some()]
                    .iter()
                    .filter(|x| **x)
                    .count();
                if given != 1 {
                    return Err(AdminError::bad_request(
                        "give exactly one of jwk, jwks_uri, certificate",
                    ));
                }
                if let Some(j) = &jwk {
                    check_jwk(j)?;
                }
                if let Some(u) = &jwks_uri {
                    check_url("jwks_uri", u)?;
                }
                let mut expires_at = future("expires_at", &expires_at)?;
                if let Some(c) = &certificate {
                    let not_after = check_certificate(c, now)?;
                    expires_at = Some(expires_at.map_or(not_after, |e| e.min(not_after)));
                }
                (
                    CredentialKind::PublicKey {
                        jwk,
                        jwks_uri,
                        certificate,
                    },
                    expires_at,
                    None,
                )
            }
            CreateCredential::Federated {
                issuer,
                subject,
                audience,
                expires_at,
            } => {
                for (field, v) in [
                    ("issuer", &issuer),
                    ("subject", &subject),
                    ("audience", &audience),
                ] {
                    if v.trim().is_empty() {
                        return Err(AdminError::invalid(field, format!("{field} is required")));
                    }
                }
                (
                    CredentialKind::Federated {
                        issuer,
                        subject,
                        audience,
                    },
                    future("expires_at", &expires_at)?,
                    None,
                )
            }
        };
        let existing = self.store.list_credentials(owner_id).await?;
        if let Some(why) = existing
            .iter()
            .filter(|c| c.is_usable(now))
            .find_map(|c| repeats(&c.kind, &kind))
        {
            return Err(AdminError::Conflict(why));
        }
        let credential = Credential {
            id: Uuid::now_v7(),
            owner_id,
            kind,
            expires_at,
            created_at: now,
        };
        self.store.insert_credential(&credential).await?;
        self.directory.invalidate_agent(owner_id);
        let view = CredentialView::of(&credential);
        self.record_change(
            actor,
            "credential.create",
            agent_for_audit,
            None,
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        Ok(match shown {
            Some(secret) => CreatedCredential::Secret(NewSecretView {
                id: credential.id.to_string(),
                kind: "client_secret".into(),
                hint: view.hint.clone().unwrap_or_default(),
                secret: secret.expose_secret().to_owned(),
                expires_at: credential.expires_at.map(format_time),
                created_at: format_time(credential.created_at),
            }),
            None => CreatedCredential::Other(view),
        })
    }

    pub async fn list_credentials(
        &self,
        owner_id: Uuid,
    ) -> Result<Vec<CredentialView>, AdminError> {
        Ok(self
            .store
            .list_credentials(owner_id)
            .await?
            .iter()
            .map(CredentialView::of)
            .collect())
    }

    pub async fn remove_credential(
        &self,
        actor: &Actor,
        owner_id: Uuid,
        agent_for_audit: Option<Uuid>,
        credential: &str,
    ) -> Result<(), AdminError> {
        let cid = super::parse_id("credential", credential)?;
        let before = self
            .store
            .list_credentials(owner_id)
            .await?
            .into_iter()
            .find(|c| c.id == cid);
        let Some(before) = before else {
            return Err(AdminError::NotFound(format!("no credential has id {cid}")));
        };
        self.store.delete_credential(owner_id, cid).await?;
        self.directory.invalidate_agent(owner_id);
        self.record_change(
            actor,
            "credential.delete",
            agent_for_audit,
            Some(serde_json::to_value(CredentialView::of(&before)).unwrap_or_default()),
            None,
        )
        .await
    }

    pub async fn agent_id_of(&self, id: &str) -> Result<Uuid, AdminError> {
        Ok(self.load_agent(id).await?.id)
    }
}
