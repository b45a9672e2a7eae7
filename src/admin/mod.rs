//! Admin use-cases behind `/admin/v1` (SPEC §8). Each change is validated, applied, reflected
//! in the token endpoint's caches, and audited with who, before and after.

pub mod agents;
pub mod audit_log;
pub mod blueprints;
pub mod credentials;
pub mod error;
pub mod issuers;
pub mod keys;
pub mod resources;
pub mod views;

pub use error::AdminError;

use crate::audit::{self, AuditLog, EventExt};
use crate::cache::Directory;
use crate::clock::SharedClock;
use crate::domain::Outcome;
use crate::keys::KeyRing;
use crate::store::SharedStore;
use serde::Deserialize;
use serde::de::Deserializer;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who is calling the admin API.
#[derive(Debug, Clone)]
pub struct Actor {
    pub agent_id: Uuid,
}

pub struct AdminService {
    pub store: SharedStore,
    pub directory: Arc<Directory>,
    pub keys: Arc<KeyRing>,
    pub audit: AuditLog,
    pub clock: SharedClock,
    /// The admin resource identifier, which cannot be deleted.
    pub admin_resource: String,
}

impl AdminService {
    /// Now, to the second in UTC: the precision the store keeps, so an answer shows exactly
    /// what a later read returns.
    fn now(&self) -> OffsetDateTime {
        whole_seconds(self.clock.now())
    }

    /// Records an admin change with its before and after.
    async fn record_change(
        &self,
        actor: &Actor,
        action: &str,
        agent: Option<Uuid>,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), AdminError> {
        let mut e = audit::event(
            self.now(),
            &actor.agent_id.to_string(),
            action,
            Outcome::Success,
        );
        if let Some(a) = agent {
            e = e.agent(a);
        }
        e = e
            .with("before", before.unwrap_or(serde_json::Value::Null))
            .with("after", after.unwrap_or(serde_json::Value::Null));
        self.audit
            .record(e)
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))
    }
}

/// For PATCH bodies: absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// `t` in UTC without its fraction of a second.
pub fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(0).unwrap_or(t)
}

/// An RFC 3339 date-time, kept (like everything stored) to the second in UTC.
pub fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime, AdminError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(whole_seconds)
        .map_err(|_| {
            AdminError::invalid(
                field,
                format!("{field} must be an RFC 3339 date-time, such as 2030-01-31T12:00:00Z"),
            )
        })
}

pub fn format_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A name people type: 1 to 200 characters, no control characters.
pub fn check_name(field: &str, name: &str) -> Result<(), AdminError> {
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            field,
            format!("{field} must be 1 to 200 printable characters"),
        ));
    }
    Ok(())
}

/// Free text about an object: at most 1,024 characters, as Entra allows a description.
pub fn check_description(description: &str) -> Result<(), AdminError> {
    if description.chars().count() > 1024 {
        return Err(AdminError::invalid(
            "description",
            "description must be at most 1024 characters",
        ));
    }
    Ok(())
}

/// Owners and sponsors: at most 100 principals, each at most 256 printable characters (blank
/// entries are dropped by the caller).
pub fn check_principals(field: &str, principals: &[String]) -> Result<(), AdminError> {
    let bad = principals
        .iter()
        .find(|p| p.chars().count() > 256 || p.chars().any(char::is_control));
    if principals.len() > 100 || bad.is_some() {
        return Err(AdminError::invalid(
            field,
            format!("{field} takes at most 100 principals of 1 to 256 printable characters"),
        ));
    }
    Ok(())
}

/// Tags: at most 50, keys of 1 to 128 printable characters, values of at most 256.
pub fn check_tags(tags: &std::collections::BTreeMap<String, String>) -> Result<(), AdminError> {
    let printable = |s: &str| !s.chars().any(char::is_control);
    let bad = tags.iter().find(|(k, v)| {
        k.trim().is_empty()
            || k.chars().count() > 128
            || v.chars().count() > 256
            || !printable(k)
            || !printable(v)
    });
    if tags.len() > 50 || bad.is_some() {
        return Err(AdminError::invalid(
            "tags",
            "tags takes at most 50 pairs: keys of 1 to 128 printable characters, values of at most 256",
        ));
    }
    Ok(())
}

/// Role and scope names: RFC 6749 scope-token characters, no `/` (it separates the resource).
pub fn check_permission_names(field: &str, names: &[String]) -> Result<(), AdminError> {
    for n in names {
        let ok = !n.is_empty()
            && n.len() <= 200
            && n != ".default"
            && n.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            && !n.contains('/');
        if !ok {
            return Err(AdminError::invalid(
                field,
                format!("{n:?} is not a valid name in {field}"),
            ));
        }
    }
    Ok(())
}

pub fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

pub fn parse_id(what: &str, text: &str) -> Result<Uuid, AdminError> {
    Uuid::parse_str(text).map_err(|_| AdminError::NotFound(format!("no {what} has id {text:?}")))
}
