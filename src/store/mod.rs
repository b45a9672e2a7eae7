//! Persistence: one trait per need, one generic SQL implementation stamped out for SQLite and
//! PostgreSQL, and the file key store. SQL lives only here.

mod audit_lookups;
mod rows;
mod sql;
mod sqlite_writer;
mod wal_copier;

pub mod key_store;
pub mod postgres;
pub mod sqlite;

use crate::domain::{
    Agent, AgentStatus, AuditRecord, Blueprint, Credential, DelegationGrant, PageRequest,
    PreparedEvent, Resource, RoleAssignment, TrustedIssuer, UserAssignment,
};
use async_trait::async_trait;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

pub use key_store::{KeyState, KeyStore, StoredKey};
pub use sql::SqlStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (duplicate name, identifier…).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("key store error: {0}")]
    Keys(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    pub status: Option<AgentStatus>,
    pub owner: Option<String>,
    pub sponsor: Option<String>,
    pub expiring_before: Option<OffsetDateTime>,
    pub blueprint_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub agent_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Fails with `Conflict` when the name is taken.
    async fn insert_agent(&self, agent: &Agent) -> StoreResult<()>;
    async fn get_agent(&self, id: Uuid) -> StoreResult<Option<Agent>>;
    async fn get_agent_by_name(&self, name: &str) -> StoreResult<Option<Agent>>;
    /// Replaces every column; fails with `Conflict` when the new name is taken.
    async fn update_agent(&self, agent: &Agent) -> StoreResult<()>;
    async fn list_agents(
        &self,
        filter: &AgentFilter,
        now: OffsetDateTime,
        page: &PageRequest,
    ) -> StoreResult<Vec<Agent>>;
    /// Records `last_active_at` for many agents at once (batched off the hot path).
    async fn touch_agents(&self, seen: &[(Uuid, OffsetDateTime)]) -> StoreResult<()>;
}

#[async_trait]
pub trait BlueprintStore: Send + Sync {
    async fn insert_blueprint(&self, blueprint: &Blueprint) -> StoreResult<()>;
    async fn get_blueprint(&self, id: Uuid) -> StoreResult<Option<Blueprint>>;
    async fn update_blueprint(&self, blueprint: &Blueprint) -> StoreResult<()>;
    /// Live blueprints, or (`deleted`) the soft-deleted ones.
    async fn list_blueprints(
        &self,
        page: &PageRequest,
        deleted: bool,
    ) -> StoreResult<Vec<Blueprint>>;
}

#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()>;
    async fn list_credentials(&self, owner_id: Uuid) -> StoreResult<Vec<Credential>>;
    /// True when a credential was removed.
    async fn delete_credential(&self, owner_id: Uuid, id: Uuid) -> StoreResult<bool>;
}

#[async_trait]
pub trait ResourceStore: Send + Sync {
    async fn insert_resource(&self, resource: &Resource) -> StoreResult<()>;
    async fn get_resource(&self, id: Uuid) -> StoreResult<Option<Resource>>;
    async fn get_resource_by_identifier(&self, identifier: &str) -> StoreResult<Option<Resource>>;
    async fn update_resource(&self, resource: &Resource) -> StoreResult<()>;
    /// Removes the resource and every assignment on it.
    async fn delete_resource(&self, id: Uuid) -> StoreResult<bool>;
    async fn list_resources(&self, page: &PageRequest) -> StoreResult<Vec<Resource>>;
}

#[async_trait]
pub trait AssignmentStore: Send + Sync {
    /// Replaces the roles of `agent` on `resource`; an empty set removes the assignment.
    async fn set_roles(&self, assignment: &RoleAssignment) -> StoreResult<()>;
    async fn roles_of(&self, agent_id: Uuid) -> StoreResult<Vec<RoleAssignment>>;
    async fn roles_on(&self, agent_id: Uuid, resource_id: Uuid) -> StoreResult<Vec<String>>;
    /// Every agent's roles on one resource.
    async fn role_assignments_on(&self, resource_id: Uuid) -> StoreResult<Vec<RoleAssignment>>;
    async fn set_delegation(&self, grant: &DelegationGrant) -> StoreResult<()>;
    async fn delegations_of(&self, agent_id: Uuid) -> StoreResult<Vec<DelegationGrant>>;
    async fn delegation_on(&self, agent_id: Uuid, resource_id: Uuid) -> StoreResult<Vec<String>>;
    /// Every agent's delegation grant on one resource.
    async fn delegations_on(&self, resource_id: Uuid) -> StoreResult<Vec<DelegationGrant>>;
    async fn set_user_assignment(&self, assignment: &UserAssignment) -> StoreResult<()>;
    async fn user_assignments(
        &self,
        principal: Option<&str>,
        resource_id: Option<Uuid>,
    ) -> StoreResult<Vec<UserAssignment>>;
}

#[async_trait]
pub trait IssuerStore: Send + Sync {
    async fn insert_issuer(&self, issuer: &TrustedIssuer) -> StoreResult<()>;
    async fn get_issuer(&self, id: Uuid) -> StoreResult<Option<TrustedIssuer>>;
    async fn get_issuer_by_name(&self, issuer: &str) -> StoreResult<Option<TrustedIssuer>>;
    async fn list_issuers(&self) -> StoreResult<Vec<TrustedIssuer>>;
    async fn delete_issuer(&self, id: Uuid) -> StoreResult<bool>;
}

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Revokes one token by `jti` until its own expiry (RFC 7009).
    async fn revoke_token(&self, jti: &str, expires_at: OffsetDateTime) -> StoreResult<()>;
    async fn is_token_revoked(&self, jti: &str) -> StoreResult<bool>;
    /// Records a single-use key (an assertion's issuer + `jti`); false when already used.
    async fn claim_once(&self, key: &str, expires_at: OffsetDateTime) -> StoreResult<bool> {
        Ok(self
            .claim_many(&[(key.to_owned(), expires_at)])
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }
    /// Records many single-use keys in one statement; for each, in order, whether it was new.
    /// A key given twice is new at most once.
    async fn claim_many(&self, keys: &[(String, OffsetDateTime)]) -> StoreResult<Vec<bool>>;
    /// Whether a single-use key has been claimed (and not yet forgotten).
    async fn is_claimed(&self, key: &str) -> StoreResult<bool>;
    /// Forgets entries past their expiry.
    async fn purge_expired(&self, now: OffsetDateTime) -> StoreResult<()>;
}

/// Computes an audit event's hash from the previous hash, its sequence number and its canonical
/// JSON.
pub type ChainLink = dyn for<'a, 'b> Fn(&'a str, i64, &'b [u8]) -> String + Send + Sync;

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends events to the hash chain in one transaction. `link(prev_hash, seq, json)`
    /// computes each event's hash; the store serialises writers (even across replicas).
    async fn append_audit(&self, events: &[PreparedEvent], link: &ChainLink) -> StoreResult<()>;
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<AuditRecord>>;
}

/// A signing key as the database keeps it: the private key sealed by the caller.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SealedKeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    /// Encrypted under the key-encryption key; never plaintext here.
    pub private_key: String,
    pub created_at: i64,
    pub activate_at: i64,
    pub retired_at: Option<i64>,
}

#[async_trait]
pub trait KeyRowStore: Send + Sync {
    async fn load_key_rows(&self) -> StoreResult<Vec<SealedKeyRow>>;
    /// Inserts or updates (by `kid`).
    async fn save_key_row(&self, row: &SealedKeyRow) -> StoreResult<()>;
    async fn remove_key_row(&self, kid: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Stores `value` unless the key exists; returns what is stored either way.
    async fn init_setting(&self, key: &str, value: &str) -> StoreResult<String>;
    async fn ping(&self) -> StoreResult<()>;
    /// Periodic housekeeping of the database itself (SQLite: a WAL checkpoint that does not
    /// block writers).
    async fn maintain(&self) -> StoreResult<()>;
}

/// Every store the server needs, behind one handle.
pub trait Store:
    AgentStore
    + BlueprintStore
    + CredentialStore
    + ResourceStore
    + AssignmentStore
    + IssuerStore
    + RevocationStore
    + AuditStore
    + SettingsStore
    + KeyRowStore
{
}

impl<T> Store for T where
    T: AgentStore
        + BlueprintStore
        + CredentialStore
        + ResourceStore
        + AssignmentStore
        + IssuerStore
        + RevocationStore
        + AuditStore
        + SettingsStore
        + KeyRowStore
{
}

pub type SharedStore = Arc<dyn Store>;

/// Opens (and migrates) the store named by a `sqlite:` or `postgres:` URL.
pub async fn open(url: &str) -> StoreResult<SharedStore> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::open(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::open(url).await?))
    } else {
        Err(StoreError::Database(format!(
            "unsupported database URL (use sqlite: or postgres:): {}",
            redact_url(url)
        )))
    }
}

/// Applies the migrations only.
pub async fn migrate(url: &str) -> StoreResult<()> {
    open(url).await.map(|_| ())
}

/// A URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}
