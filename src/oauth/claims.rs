//! Token profiles (SPEC §4): the claims of an access token, shaped by the resource.

use crate::domain::TokenProfile;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// What a token says, before a profile shapes it.
#[derive(Debug, Clone)]
pub struct TokenContent {
    pub profile: TokenProfile,
    pub issuer: String,
    pub tenant_id: String,
    /// The agent for its own tokens; the user for delegated ones.
    pub subject: String,
    pub audience: String,
    /// The agent the token was issued to.
    pub client_id: Uuid,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// RFC 8693 §4.1 delegation chain, innermost actor nested last.
    pub act: Option<Value>,
    /// The user's groups, for delegated tokens (RFC 9068 §2.2.3.1).
    pub groups: Vec<String>,
    pub delegated: bool,
    pub azpacr: &'static str,
    pub blueprint_id: Option<Uuid>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub jti: Uuid,
}

/// RFC 9068 §2.2.
#[derive(Serialize)]
struct Rfc9068Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
}

impl TokenContent {
    /// The JOSE `typ` of the profile.
    pub fn typ(&self) -> &'static str {
        match self.profile {
            TokenProfile::Rfc9068 => "at+jwt",
            TokenProfile::Entra => "JWT",
        }
    }

    fn rfc9068_claims(&self) -> Rfc9068Claims<'_> {
        Rfc9068Claims {
            iss: &self.issuer,
            sub: &self.subject,
            aud: &self.audience,
            exp: self.expires_at,
            iat: self.issued_at,
            nbf: self.issued_at,
            jti: self.jti.to_string(),
            client_id: self.client_id.to_string(),
            scope: (!self.scopes.is_empty()).then(|| self.scopes.join(" ")),
            roles: &self.roles,
            act: self.act.as_ref(),
            groups: &self.groups,
        }
    }

    /// Entra ID v2.0 access-token claims, with the Agent ID facets.
    fn entra_claims(&self) -> Value {
        let mut c = serde_json::json!({
            "aud": self.audience,
            "iss": format!("{}/{}/v2.0", self.issuer, self.tenant_id),
            "iat": self.issued_at,
            "nbf": self.issued_at,
            "exp": self.expires_at,
            "ver": "2.0",
            "tid": self.tenant_id,
            "sub": self.subject,
            "oid": self.subject,
            "azp": self.client_id.to_string(),
            "azpacr": self.azpacr,
            "idtyp": if self.delegated { "user" } else { "app" },
            "uti": entra_uti(self.jti),
        });
        if !self.roles.is_empty() {
            c["roles"] = serde_json::json!(self.roles);
        }
        if !self.scopes.is_empty() {
            c["scp"] = Value::String(self.scopes.join(" "));
        }
        if let Some(act) = &self.act {
            c["act"] = act.clone();
        }
        if !self.groups.is_empty() {
            c["groups"] = serde_json::json!(self.groups);
        }
        // Entra Agent ID facets, as its token reference shows them: the acting agent identity is
        // "3 9 11"; app-only, the subject is that same agent identity; on behalf of a user, the
        // subject is the user ("1").
        c["xms_act_fct"] = Value::String("3 9 11".into());
        c["xms_sub_fct"] = Value::String(if self.delegated { "1" } else { "3 9 11" }.into());
        if let Some(bp) = self.blueprint_id {
            c["xms_par_app_azp"] = Value::String(bp.to_string());
        }
        c
    }
}

/// The claims set the profile shapes, serialized straight into the token.
impl Serialize for TokenContent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.profile {
            TokenProfile::Rfc9068 => self.rfc9068_claims().serialize(serializer),
            TokenProfile::Entra => self.entra_claims().serialize(serializer),
        }
    }
}

/// Entra's `uti` is a 22-character base64url token id; ours encodes the UUIDv7 jti, so the
/// issue instant stays recoverable.
pub fn entra_uti(jti: Uuid) -> String {
    crate::crypto::digest::b64url(jti.as_bytes())
}

/// The jti back from a `uti`.
pub fn jti_from_uti(uti: &str) -> Option<Uuid> {
    let bytes = crate::crypto::digest::b64url_decode(uti)?;
    Uuid::from_slice(&bytes).ok()
}
