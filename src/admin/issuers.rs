//! Trusted issuers: external IdPs whose tokens may be subject tokens or federated credentials.

use super::credentials::check_url;
use super::views::IssuerView;
use super::{Actor, AdminError, AdminService};
use crate::domain::{IssuerUse, TrustedIssuer};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIssuer {
    pub issuer: String,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub subject_claim: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(rename = "use")]
    pub uses: Vec<IssuerUse>,
    #[serde(skip)]
    pub id: Option<Uuid>,
}

impl AdminService {
    /// Whether `issuer` is this server's `iss` in either profile (`<base>` or
    /// `<base>/<tenant>/v2.0`), compared as URLs are: without regard to case. Tokens naming
    /// this server are verified with its own keys only; trusting other keys for that name
    /// would let them mint "our" tokens.
    fn is_own_issuer(&self, issuer: &str) -> bool {
        let base = self
            .admin_resource
            .strip_suffix("/admin")
            .unwrap_or(&self.admin_resource)
            .to_ascii_lowercase();
        let issuer = issuer.trim_end_matches('/').to_ascii_lowercase();
        let entra_form = issuer
            .strip_prefix(&format!("{base}/"))
            .and_then(|rest| rest.strip_suffix("/v2.0"))
            .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'));
        issuer == base || entra_form
    }

    pub async fn create_issuer(
        &self,
        actor: &Actor,
        req: CreateIssuer,
    ) -> Result<IssuerView, AdminError> {
        check_url("issuer", &req.issuer)?;
        if self.is_own_issuer(&req.issuer) {
            return Err(AdminError::invalid(
                "issuer",
                "this server's own issuer cannot be a trusted issuer",
            ));
        }
        if let Some(u) = &req.jwks_uri {
            check_url("jwks_uri", u)?;
        }
        if req.jwks_uri.is_some() && req.jwks.is_some() {
            return Err(AdminError::bad_request("give jwks_uri or jwks, not both"));
        }
        if let Some(jwks) = &req.jwks {
            let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone())
                .map_err(|e| AdminError::invalid("jwks", format!("jwks must be a JWK Set: {e}")))?;
            if set.keys.is_empty() {
                return Err(AdminError::invalid("jwks", "jwks has no keys"));
            }
            let private = jwks["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k.get("d").is_some() || k.get("k").is_some());
            if private {
                return Err(AdminError::invalid(
                    "jwks",
                    "jwks must hold public keys only",
                ));
            }
        }
        if req.uses.is_empty() {
            return Err(AdminError::invalid(
                "use",
                "use must name subject_tokens, federated_credentials or both",
            ));
        }
        let issuer = TrustedIssuer {
            id: req.id.unwrap_or_else(Uuid::now_v7),
            issuer: req
                .issuer
                .trim_end_matches('/')
                .to_owned()
                .replace("\u{0}", ""),
            jwks_uri: req.jwks_uri,
            jwks: req.jwks,
            subject_claim: req
                .subject_claim
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "sub".into()),
            audiences: req.audiences,
            uses: {
                let mut u = req.uses;
                u.dedup();
                u
            },
            created_at: self.now(),
        };
        // Keep the issuer exactly as given (a trailing slash matters to `iss` comparison).
        let issuer = TrustedIssuer {
            issuer: req.issuer.clone(),
            ..issuer
        };
        self.store
            .insert_issuer(&issuer)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => {
                    AdminError::Conflict(format!("issuer {} is already trusted", issuer.issuer))
                }
                other => other.into(),
            })?;
        self.directory.invalidate_issuers();
        let view = IssuerView::of(&issuer);
        self.record_change(
            actor,
            "issuer.create",
            None,
            None,
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        Ok(view)
    }

    pub async fn list_issuers(&self) -> Result<Vec<IssuerView>, AdminError> {
        Ok(self
            .store
            .list_issuers()
            .await?
            .iter()
            .map(IssuerView::of)
            .collect())
    }

    pub async fn get_issuer(&self, id: &str) -> Result<IssuerView, AdminError> {
        let id = super::parse_id("trusted issuer", id)?;
        let i = self
            .store
            .get_issuer(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no trusted issuer has id {id}")))?;
        Ok(IssuerView::of(&i))
    }

    pub async fn delete_issuer(&self, actor: &Actor, id: &str) -> Result<(), AdminError> {
        let id = super::parse_id("trusted issuer", id)?;
        let Some(before) = self.store.get_issuer(id).await? else {
            return Err(AdminError::NotFound(format!(
                "no trusted issuer has id {id}"
            )));
        };
        self.store.delete_issuer(id).await?;
        self.directory.invalidate_issuers();
        self.record_change(
            actor,
            "issuer.delete",
            None,
            Some(serde_json::to_value(IssuerView::of(&before)).unwrap_or_default()),
            None,
        )
        .await
    }
}
