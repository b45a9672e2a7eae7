//! The SQL store. The statements are written once, in the subset of SQL that SQLite and
//! PostgreSQL share (`$n` placeholders, `ON CONFLICT`, `RETURNING`); `impl_sql_store!` stamps
//! the implementation out for each driver. The one part that differs: on a SQLite file, the hot
//! path's group commits go to `sqlite_writer.rs` instead of the pool.

use sqlx::Pool;

/// A store over a sqlx pool of database `DB`.
pub struct SqlStore<DB: sqlx::Database> {
    pub(super) pool: Pool<DB>,
    /// The audit chain's head as this process last wrote it through the pool: (last seq, last
    /// hash). `None` means "read it from the database" (at start, and after another writer
    /// moved it). The SQLite writer needs none: it reads the head under the file's write lock.
    pub(super) audit_head: tokio::sync::Mutex<Option<(i64, String)>>,
    /// SQLite files only: where the hot path's group commits go instead of the pool (audit
    /// batches, single-use assertion keys), on a connection of their own.
    pub(super) sqlite_writer: Option<super::sqlite_writer::SqliteWriter>,
    /// SQLite files only: the audit lookups by agent and by time, in a file of their own.
    pub(super) audit_lookups: Option<super::audit_lookups::AuditLookups>,
}

impl<DB: sqlx::Database> SqlStore<DB> {
    /// One pool for everything.
    pub(super) fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            audit_head: tokio::sync::Mutex::new(None),
            sqlite_writer: None,
            audit_lookups: None,
        }
    }

    /// A SQLite file: the pool, the writer that takes the group commits, and the audit lookups.
    pub(super) fn with_sqlite_writer(
        pool: Pool<DB>,
        writer: super::sqlite_writer::SqliteWriter,
        audit_lookups: super::audit_lookups::AuditLookups,
    ) -> Self {
        Self {
            sqlite_writer: Some(writer),
            audit_lookups: Some(audit_lookups),
            ..Self::new(pool)
        }
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(super) fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A pattern matching a JSON array (stored as text) that contains `value`.
pub(super) fn json_array_contains(value: &str) -> String {
    format!("%{}%", like_escape(&super::rows::json(&value)))
}

/// Marks a statement assembled only from this file's constant table and column names.
pub(super) fn trusted(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}

pub(super) fn db_error(e: sqlx::Error) -> super::StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            super::StoreError::Conflict(d.message().to_owned())
        }
        _ => super::StoreError::Database(e.to_string()),
    }
}

/// A failed migration, as the store reports it.
pub(super) fn migration_failed(e: sqlx::migrate::MigrateError) -> super::StoreError {
    super::StoreError::Database(format!("migration failed: {e}"))
}

/// The audit chain's head: the last row's `seq` and `hash`.
pub(super) const LAST_AUDIT_ROW: &str =
    "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1";

/// The columns an audit listing's conditions apply to: `audit_events e`'s own, or a lookup
/// table's where the query joins one.
pub(super) struct AuditColumns {
    pub seq: &'static str,
    pub agent_id: &'static str,
    pub at_ms: &'static str,
}

/// The conditions on `audit_events e` itself.
pub(super) const AUDIT_EVENTS: AuditColumns = AuditColumns {
    seq: "e.seq",
    agent_id: "e.agent_id",
    at_ms: "e.at_ms",
};

/// Moves an agent's `last_active_at` forward, never back.
pub(super) const TOUCH_AGENT: &str = "UPDATE agents SET last_active_at = $2 \
     WHERE id = $1 AND (last_active_at IS NULL OR last_active_at < $2)";

/// The start of an audit row's INSERT, in the column order both writers bind (this file's
/// and `sqlite_writer.rs`).
pub(super) const INSERT_AUDIT_ROW: &str = "INSERT INTO audit_events \
     (seq, id, at_ms, actor, action, outcome, agent_id, reason, detail, prev_hash, hash)";

/// A random pause of up to 2^attempt ms (at most 256 ms) after losing an append race.
pub(super) fn collision_backoff(attempt: u32) -> std::time::Duration {
    let mut random = [0u8; 2];
    let _ = aws_lc_rs::rand::fill(&mut random);
    let ceiling_us = 1000u64 << attempt.min(8);
    std::time::Duration::from_micros(u64::from(u16::from_le_bytes(random)) * ceiling_us / 65536)
}

macro_rules! impl_sql_store {
    ($db:ty) => {
        use $crate::domain::{
            Agent, AgentStatus, AuditRecord, PreparedEvent, Blueprint, Credential, DelegationGrant,
            PageRequest, Resource, RoleAssignment, TrustedIssuer, UserAssignment,
        };
        use $crate::store::rows::{
            json, secs, uuid, AgentRow, AuditRow, BlueprintRow, CredentialRow, IssuerRow,
            ResourceRow, ScopedRow,
        };
        use $crate::store::sql::{collision_backoff, db_error, json_array_contains, trusted, SqlStore};
        use $crate::store::{
            AgentFilter, AgentStore, ChainLink, KeyRowStore, SealedKeyRow, AssignmentStore, AuditFilter, AuditStore, BlueprintStore,
            CredentialStore, IssuerStore, ResourceStore, RevocationStore, SettingsStore,
            StoreError, StoreResult,
        };
        use async_trait::async_trait;
        use sqlx::QueryBuilder;
        use time::OffsetDateTime;
        use uuid::Uuid;

        const AGENT_COLUMNS: &str = "id, name, description, owners, sponsors, disabled, deleted_at, expires_at, token_ttl_seconds, tags, blueprint_id, last_active_at, tokens_revoked_before_ms, created_at, updated_at";

        /// Rows per INSERT: 11 parameters a row stays below both databases' limits
        /// (SQLite 32766, PostgreSQL 65535).
        const AUDIT_ROWS_PER_INSERT: usize = 1024;

        fn page_limit(page: &PageRequest) -> i64 {
            i64::from(page.limit.clamp(1, $crate::domain::page::MAX_LIMIT))
        }

        /// Pushes `SELECT` of the audit rows `e` in `from` that come after `after` and match
        /// `filter`, each condition on the column `on` names for it (a lookup table's, where
        /// `from` joins one).
        fn push_audit_select(
            q: &mut QueryBuilder<$db>,
            from: &str,
            on: &$crate::store::sql::AuditColumns,
            filter: &AuditFilter,
            after: i64,
        ) {
            q.push(format_args!(
                "SELECT {} AS seq, e.id, e.at_ms, e.actor, e.action, e.outcome, e.agent_id, e.reason, e.detail, e.prev_hash, e.hash FROM {from} WHERE {} > ",
                on.seq, on.seq
            ))
            .push_bind(after);
            if let Some(agent) = &filter.agent_id {
                q.push(format_args!(" AND {} = ", on.agent_id)).push_bind(agent.clone());
            }
            if let Some(action) = &filter.action {
                q.push(" AND e.action = ").push_bind(action.clone());
            }
            if let Some(outcome) = &filter.outcome {
                q.push(" AND e.outcome = ").push_bind(outcome.clone());
            }
            if let Some(since) = filter.since {
                q.push(format_args!(" AND {} >= ", on.at_ms))
                    .push_bind($crate::clock::unix_millis(since));
            }
            if let Some(until) = filter.until {
                q.push(format_args!(" AND {} < ", on.at_ms))
                    .push_bind($crate::clock::unix_millis(until));
            }
        }

        #[async_trait]
        impl AgentStore for SqlStore<$db> {
            async fn insert_agent(&self, a: &Agent) -> StoreResult<()> {
                sqlx::query(trusted(format!(
                    "INSERT INTO agents ({AGENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                )))
                .bind(a.id.to_string())
                .bind(&a.name)
                .bind(&a.description)
                .bind(json(&a.owners))
                .bind(json(&a.sponsors))
                .bind(a.disabled)
                .bind(a.deleted_at.map(secs))
                .bind(secs(a.expires_at))
                .bind(a.token_ttl_seconds)
                .bind(json(&a.tags))
                .bind(a.blueprint_id.map(|b| b.to_string()))
                .bind(a.last_active_at.map(secs))
                .bind(a.tokens_revoked_before_ms)
                .bind(secs(a.created_at))
                .bind(secs(a.updated_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn get_agent(&self, id: Uuid) -> StoreResult<Option<Agent>> {
                let row: Option<AgentRow> =
                    sqlx::query_as(trusted(format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1")))
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_error)?;
                row.map(AgentRow::into_agent).transpose()
            }

            async fn get_agent_by_name(&self, name: &str) -> StoreResult<Option<Agent>> {
                let row: Option<AgentRow> = sqlx::query_as(trusted(format!(
                    "SELECT {AGENT_COLUMNS} FROM agents WHERE name = $1"
                )))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(AgentRow::into_agent).transpose()
            }

            async fn update_agent(&self, a: &Agent) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE agents SET name = $2, description = $3, owners = $4, sponsors = $5, disabled = $6, deleted_at = $7, expires_at = $8, token_ttl_seconds = $9, tags = $10, blueprint_id = $11, tokens_revoked_before_ms = $12, updated_at = $13 WHERE id = $1",
                )
                .bind(a.id.to_string())
                .bind(&a.name)
                .bind(&a.description)
                .bind(json(&a.owners))
                .bind(json(&a.sponsors))
                .bind(a.disabled)
                .bind(a.deleted_at.map(secs))
                .bind(secs(a.expires_at))
                .bind(a.token_ttl_seconds)
                .bind(json(&a.tags))
                .bind(a.blueprint_id.map(|b| b.to_string()))
                .bind(a.tokens_revoked_before_ms)
                .bind(secs(a.updated_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn list_agents(
                &self,
                filter: &AgentFilter,
                now: OffsetDateTime,
                page: &PageRequest,
            ) -> StoreResult<Vec<Agent>> {
                let mut q: QueryBuilder<$db> =
                    QueryBuilder::new(format!("SELECT {AGENT_COLUMNS} FROM agents WHERE 1 = 1"));
                match filter.status {
                    None => {
                        q.push(" AND deleted_at IS NULL");
                    }
                    Some(AgentStatus::Deleted) => {
                        q.push(" AND deleted_at IS NOT NULL");
                    }
                    Some(AgentStatus::Disabled) => {
                        q.push(" AND deleted_at IS NULL AND disabled = TRUE");
                    }
                    Some(AgentStatus::Expired) => {
                        q.push(" AND deleted_at IS NULL AND disabled = FALSE AND expires_at <= ")
                            .push_bind(secs(now));
                    }
                    Some(AgentStatus::Active) => {
                        q.push(" AND deleted_at IS NULL AND disabled = FALSE AND expires_at > ")
                            .push_bind(secs(now));
                    }
                }
                if let Some(owner) = &filter.owner {
                    q.push(" AND owners LIKE ")
                        .push_bind(json_array_contains(owner))
                        .push(" ESCAPE '\\'");
                }
                if let Some(sponsor) = &filter.sponsor {
                    q.push(" AND sponsors LIKE ")
                        .push_bind(json_array_contains(sponsor))
                        .push(" ESCAPE '\\'");
                }
                if let Some(before) = filter.expiring_before {
                    q.push(" AND expires_at < ").push_bind(secs(before));
                }
                if let Some(bp) = filter.blueprint_id {
                    q.push(" AND blueprint_id = ").push_bind(bp.to_string());
                }
                if let Some(after) = &page.after {
                    q.push(" AND id > ").push_bind(after.clone());
                }
                q.push(" ORDER BY id LIMIT ").push_bind(page_limit(page));
                let rows: Vec<AgentRow> =
                    q.build_query_as().fetch_all(&self.pool).await.map_err(db_error)?;
                rows.into_iter().map(AgentRow::into_agent).collect()
            }

            async fn touch_agents(&self, seen: &[(Uuid, OffsetDateTime)]) -> StoreResult<()> {
                if let Some(writer) = &self.sqlite_writer {
                    return writer.touch_agents(seen).await;
                }
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                for (id, at) in seen {
                    sqlx::query(super::sql::TOUCH_AGENT)
                    .bind(id.to_string())
                    .bind(secs(*at))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)
            }
        }

        const BLUEPRINT_COLUMNS: &str = "id, name, description, owners, sponsors, disabled, deleted_at, default_roles, default_delegations, created_at, updated_at";

        #[async_trait]
        impl BlueprintStore for SqlStore<$db> {
            async fn insert_blueprint(&self, b: &Blueprint) -> StoreResult<()> {
                sqlx::query(trusted(format!(
                    "INSERT INTO blueprints ({BLUEPRINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                )))
                .bind(b.id.to_string())
                .bind(&b.name)
                .bind(&b.description)
                .bind(json(&b.owners))
                .bind(json(&b.sponsors))
                .bind(b.disabled)
                .bind(b.deleted_at.map(secs))
                .bind(json(&b.default_roles))
                .bind(json(&b.default_delegations))
                .bind(secs(b.created_at))
                .bind(secs(b.updated_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn get_blueprint(&self, id: Uuid) -> StoreResult<Option<Blueprint>> {
                let row: Option<BlueprintRow> = sqlx::query_as(trusted(format!(
                    "SELECT {BLUEPRINT_COLUMNS} FROM blueprints WHERE id = $1"
                )))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(BlueprintRow::into_blueprint).transpose()
            }

            async fn update_blueprint(&self, b: &Blueprint) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE blueprints SET name = $2, description = $3, owners = $4, sponsors = $5, disabled = $6, deleted_at = $7, default_roles = $8, default_delegations = $9, updated_at = $10 WHERE id = $1",
                )
                .bind(b.id.to_string())
                .bind(&b.name)
                .bind(&b.description)
                .bind(json(&b.owners))
                .bind(json(&b.sponsors))
                .bind(b.disabled)
                .bind(b.deleted_at.map(secs))
                .bind(json(&b.default_roles))
                .bind(json(&b.default_delegations))
                .bind(secs(b.updated_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn list_blueprints(&self, page: &PageRequest, deleted: bool) -> StoreResult<Vec<Blueprint>> {
                let which = if deleted { "IS NOT NULL" } else { "IS NULL" };
                let rows: Vec<BlueprintRow> = sqlx::query_as(trusted(format!(
                    "SELECT {BLUEPRINT_COLUMNS} FROM blueprints WHERE id > $1 AND deleted_at {which} ORDER BY id LIMIT $2"
                )))
                .bind(page.after.clone().unwrap_or_default())
                .bind(page_limit(page))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(BlueprintRow::into_blueprint).collect()
            }
        }

        const CREDENTIAL_COLUMNS: &str = "id, owner_id, kind, secret_hash, hint, jwk, jwks_uri, certificate, issuer, subject, audience, expires_at, created_at";

        #[async_trait]
        impl CredentialStore for SqlStore<$db> {
            async fn insert_credential(&self, c: &Credential) -> StoreResult<()> {
                let r = CredentialRow::from_credential(c);
                sqlx::query(trusted(format!(
                    "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                )))
                .bind(r.id)
                .bind(r.owner_id)
                .bind(r.kind)
                .bind(r.secret_hash)
                .bind(r.hint)
                .bind(r.jwk)
                .bind(r.jwks_uri)
                .bind(r.certificate)
                .bind(r.issuer)
                .bind(r.subject)
                .bind(r.audience)
                .bind(r.expires_at)
                .bind(r.created_at)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn list_credentials(&self, owner_id: Uuid) -> StoreResult<Vec<Credential>> {
                let rows: Vec<CredentialRow> = sqlx::query_as(trusted(format!(
                    "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE owner_id = $1 ORDER BY created_at, id"
                )))
                .bind(owner_id.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(CredentialRow::into_credential).collect()
            }

            async fn delete_credential(&self, owner_id: Uuid, id: Uuid) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM credentials WHERE owner_id = $1 AND id = $2")
                    .bind(owner_id.to_string())
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() > 0)
            }
        }

        const RESOURCE_COLUMNS: &str = "id, identifier, name, scopes, roles, user_assignment_required, token_profile, created_at, updated_at";

        #[async_trait]
        impl ResourceStore for SqlStore<$db> {
            async fn insert_resource(&self, r: &Resource) -> StoreResult<()> {
                sqlx::query(trusted(format!(
                    "INSERT INTO resources ({RESOURCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                )))
                .bind(r.id.to_string())
                .bind(&r.identifier)
                .bind(&r.name)
                .bind(json(&r.scopes))
                .bind(json(&r.roles))
                .bind(r.user_assignment_required)
                .bind(r.token_profile.as_str())
                .bind(secs(r.created_at))
                .bind(secs(r.updated_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn get_resource(&self, id: Uuid) -> StoreResult<Option<Resource>> {
                let row: Option<ResourceRow> = sqlx::query_as(trusted(format!(
                    "SELECT {RESOURCE_COLUMNS} FROM resources WHERE id = $1"
                )))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(ResourceRow::into_resource).transpose()
            }

            async fn get_resource_by_identifier(
                &self,
                identifier: &str,
            ) -> StoreResult<Option<Resource>> {
                let row: Option<ResourceRow> = sqlx::query_as(trusted(format!(
                    "SELECT {RESOURCE_COLUMNS} FROM resources WHERE identifier = $1"
                )))
                .bind(identifier)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(ResourceRow::into_resource).transpose()
            }

            async fn update_resource(&self, r: &Resource) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE resources SET identifier = $2, name = $3, scopes = $4, roles = $5, user_assignment_required = $6, token_profile = $7, updated_at = $8 WHERE id = $1",
                )
                .bind(r.id.to_string())
                .bind(&r.identifier)
                .bind(&r.name)
                .bind(json(&r.scopes))
                .bind(json(&r.roles))
                .bind(r.user_assignment_required)
                .bind(r.token_profile.as_str())
                .bind(secs(r.updated_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn delete_resource(&self, id: Uuid) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                for table in ["role_assignments", "delegation_grants", "user_assignments"] {
                    sqlx::query(trusted(format!("DELETE FROM {table} WHERE resource_id = $1")))
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                let done = sqlx::query("DELETE FROM resources WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_resources(&self, page: &PageRequest) -> StoreResult<Vec<Resource>> {
                let rows: Vec<ResourceRow> = sqlx::query_as(trusted(format!(
                    "SELECT {RESOURCE_COLUMNS} FROM resources WHERE id > $1 ORDER BY id LIMIT $2"
                )))
                .bind(page.after.clone().unwrap_or_default())
                .bind(page_limit(page))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(ResourceRow::into_resource).collect()
            }
        }

        impl SqlStore<$db> {
            /// Upserts (or, for an empty set, deletes) one row of an assignment table whose
            /// key is (`owner_column`, resource_id) and whose set lives in `items_column`.
            async fn put_scoped(
                &self,
                table: &str,
                owner_column: &str,
                items_column: &str,
                owner: &str,
                resource_id: Uuid,
                items: &[String],
            ) -> StoreResult<()> {
                if items.is_empty() {
                    sqlx::query(trusted(format!(
                        "DELETE FROM {table} WHERE {owner_column} = $1 AND resource_id = $2"
                    )))
                    .bind(owner)
                    .bind(resource_id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                } else {
                    sqlx::query(trusted(format!(
                        "INSERT INTO {table} ({owner_column}, resource_id, {items_column}) VALUES ($1, $2, $3) ON CONFLICT ({owner_column}, resource_id) DO UPDATE SET {items_column} = excluded.{items_column}"
                    )))
                    .bind(owner)
                    .bind(resource_id.to_string())
                    .bind(json(&items))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                }
                Ok(())
            }

            async fn get_scoped(
                &self,
                table: &str,
                owner_column: &str,
                items_column: &str,
                owner: Option<&str>,
                resource_id: Option<Uuid>,
            ) -> StoreResult<Vec<ScopedRow>> {
                let mut q: QueryBuilder<$db> = QueryBuilder::new(format!(
                    "SELECT {owner_column} AS owner, resource_id, {items_column} AS items FROM {table} WHERE 1 = 1"
                ));
                if let Some(owner) = owner {
                    q.push(format!(" AND {owner_column} = ")).push_bind(owner.to_owned());
                }
                if let Some(resource_id) = resource_id {
                    q.push(" AND resource_id = ").push_bind(resource_id.to_string());
                }
                q.push(format!(" ORDER BY {owner_column}, resource_id"));
                q.build_query_as().fetch_all(&self.pool).await.map_err(db_error)
            }
        }

        #[async_trait]
        impl AssignmentStore for SqlStore<$db> {
            async fn set_roles(&self, a: &RoleAssignment) -> StoreResult<()> {
                self.put_scoped("role_assignments", "agent_id", "roles", &a.agent_id.to_string(), a.resource_id, &a.roles).await
            }

            async fn roles_of(&self, agent_id: Uuid) -> StoreResult<Vec<RoleAssignment>> {
                let rows = self.get_scoped("role_assignments", "agent_id", "roles", Some(&agent_id.to_string()), None).await?;
                rows.into_iter()
                    .map(|r| Ok(RoleAssignment { agent_id, resource_id: uuid(&r.resource_id)?, roles: r.items()? }))
                    .collect()
            }

            async fn roles_on(&self, agent_id: Uuid, resource_id: Uuid) -> StoreResult<Vec<String>> {
                let rows = self.get_scoped("role_assignments", "agent_id", "roles", Some(&agent_id.to_string()), Some(resource_id)).await?;
                Ok(match rows.first() { Some(r) => r.items()?, None => Vec::new() })
            }

            async fn role_assignments_on(&self, resource_id: Uuid) -> StoreResult<Vec<RoleAssignment>> {
                let rows = self.get_scoped("role_assignments", "agent_id", "roles", None, Some(resource_id)).await?;
                rows.into_iter()
                    .map(|r| Ok(RoleAssignment { agent_id: uuid(&r.owner)?, resource_id, roles: r.items()? }))
                    .collect()
            }

            async fn set_delegation(&self, g: &DelegationGrant) -> StoreResult<()> {
                self.put_scoped("delegation_grants", "agent_id", "scopes", &g.agent_id.to_string(), g.resource_id, &g.scopes).await
            }

            async fn delegations_of(&self, agent_id: Uuid) -> StoreResult<Vec<DelegationGrant>> {
                let rows = self.get_scoped("delegation_grants", "agent_id", "scopes", Some(&agent_id.to_string()), None).await?;
                rows.into_iter()
                    .map(|r| Ok(DelegationGrant { agent_id, resource_id: uuid(&r.resource_id)?, scopes: r.items()? }))
                    .collect()
            }

            async fn delegation_on(&self, agent_id: Uuid, resource_id: Uuid) -> StoreResult<Vec<String>> {
                let rows = self.get_scoped("delegation_grants", "agent_id", "scopes", Some(&agent_id.to_string()), Some(resource_id)).await?;
                Ok(match rows.first() { Some(r) => r.items()?, None => Vec::new() })
            }

            async fn delegations_on(&self, resource_id: Uuid) -> StoreResult<Vec<DelegationGrant>> {
                let rows = self.get_scoped("delegation_grants", "agent_id", "scopes", None, Some(resource_id)).await?;
                rows.into_iter()
                    .map(|r| Ok(DelegationGrant { agent_id: uuid(&r.owner)?, resource_id, scopes: r.items()? }))
                    .collect()
            }

            async fn set_user_assignment(&self, u: &UserAssignment) -> StoreResult<()> {
                self.put_scoped("user_assignments", "principal", "scopes", &u.principal, u.resource_id, &u.scopes).await
            }

            async fn user_assignments(
                &self,
                principal: Option<&str>,
                resource_id: Option<Uuid>,
            ) -> StoreResult<Vec<UserAssignment>> {
                let rows = self.get_scoped("user_assignments", "principal", "scopes", principal, resource_id).await?;
                rows.into_iter()
                    .map(|r| Ok(UserAssignment { scopes: r.items()?, resource_id: uuid(&r.resource_id)?, principal: r.owner }))
                    .collect()
            }
        }

        const ISSUER_COLUMNS: &str = "id, issuer, jwks_uri, jwks, subject_claim, audiences, uses, created_at";

        #[async_trait]
        impl IssuerStore for SqlStore<$db> {
            async fn insert_issuer(&self, i: &TrustedIssuer) -> StoreResult<()> {
                sqlx::query(trusted(format!(
                    "INSERT INTO trusted_issuers ({ISSUER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                )))
                .bind(i.id.to_string())
                .bind(&i.issuer)
                .bind(&i.jwks_uri)
                .bind(i.jwks.as_ref().map(json))
                .bind(&i.subject_claim)
                .bind(json(&i.audiences))
                .bind(json(&i.uses))
                .bind(secs(i.created_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn get_issuer(&self, id: Uuid) -> StoreResult<Option<TrustedIssuer>> {
                let row: Option<IssuerRow> = sqlx::query_as(trusted(format!(
                    "SELECT {ISSUER_COLUMNS} FROM trusted_issuers WHERE id = $1"
                )))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(IssuerRow::into_issuer).transpose()
            }

            async fn get_issuer_by_name(&self, issuer: &str) -> StoreResult<Option<TrustedIssuer>> {
                let row: Option<IssuerRow> = sqlx::query_as(trusted(format!(
                    "SELECT {ISSUER_COLUMNS} FROM trusted_issuers WHERE issuer = $1"
                )))
                .bind(issuer)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(IssuerRow::into_issuer).transpose()
            }

            async fn list_issuers(&self) -> StoreResult<Vec<TrustedIssuer>> {
                let rows: Vec<IssuerRow> = sqlx::query_as(trusted(format!(
                    "SELECT {ISSUER_COLUMNS} FROM trusted_issuers ORDER BY issuer"
                )))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(IssuerRow::into_issuer).collect()
            }

            async fn delete_issuer(&self, id: Uuid) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM trusted_issuers WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl RevocationStore for SqlStore<$db> {
            async fn revoke_token(&self, jti: &str, expires_at: OffsetDateTime) -> StoreResult<()> {
                sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
                    .bind(jti)
                    .bind(secs(expires_at))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn is_token_revoked(&self, jti: &str) -> StoreResult<bool> {
                let row: Option<(String,)> = sqlx::query_as("SELECT jti FROM revoked_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(row.is_some())
            }

            async fn claim_many(&self, keys: &[(String, OffsetDateTime)]) -> StoreResult<Vec<bool>> {
                if let Some(writer) = &self.sqlite_writer {
                    return writer.claim_many(keys).await;
                }
                let mut unique: Vec<&(String, OffsetDateTime)> = Vec::with_capacity(keys.len());
                for k in keys {
                    if !unique.iter().any(|u| u.0 == k.0) {
                        unique.push(k);
                    }
                }
                let mut inserted = std::collections::HashSet::new();
                // One statement for any batch the replay guard sends (at most 512 requests of
                // two keys), so keys claimed together are decided together; two binds a key
                // stay far below PostgreSQL's 65,535.
                for chunk in unique.chunks(8192) {
                    let mut q: QueryBuilder<$db> = QueryBuilder::new("INSERT INTO used_assertions (key, expires_at) ");
                    q.push_values(chunk, |mut b, (key, exp)| {
                        b.push_bind(key.clone()).push_bind(secs(*exp));
                    });
                    q.push(" ON CONFLICT (key) DO NOTHING RETURNING key");
                    let rows: Vec<(String,)> = q.build_query_as().fetch_all(&self.pool).await.map_err(db_error)?;
                    inserted.extend(rows.into_iter().map(|r| r.0));
                }
                // The first occurrence of a new key takes it; any repeat is a replay.
                Ok(keys.iter().map(|(k, _)| inserted.remove(k)).collect())
            }

            async fn is_claimed(&self, key: &str) -> StoreResult<bool> {
                let row: Option<(String,)> = sqlx::query_as("SELECT key FROM used_assertions WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(row.is_some())
            }

            async fn purge_expired(&self, now: OffsetDateTime) -> StoreResult<()> {
                for table in ["revoked_tokens", "used_assertions"] {
                    sqlx::query(trusted(format!("DELETE FROM {table} WHERE expires_at < $1")))
                        .bind(secs(now))
                        .execute(&self.pool)
                        .await
                        .map_err(db_error)?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl AuditStore for SqlStore<$db> {
            async fn append_audit(
                &self,
                events: &[PreparedEvent],
                link: &ChainLink,
            ) -> StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                if let Some(writer) = &self.sqlite_writer {
                    return writer.append_audit(events, link).await;
                }
                let mut head = self.audit_head.lock().await;
                for batch in events.chunks(AUDIT_ROWS_PER_INSERT) {
                    let mut attempt: u32 = 0;
                    loop {
                        let (seq0, prev0) = match head.as_ref() {
                            Some(h) => h.clone(),
                            None => sqlx::query_as::<_, (i64, String)>(super::sql::LAST_AUDIT_ROW)
                                .fetch_optional(&self.pool)
                                .await
                                .map_err(db_error)?
                                .unwrap_or_else(|| (0, crate::audit::GENESIS.to_owned())),
                        };
                        // Chain the batch on the last row, then insert it in one statement. A
                        // stale head (another writer appended meanwhile) reuses a taken `seq`,
                        // so the primary key refuses the whole statement.
                        let (mut seq, mut prev) = (seq0, prev0);
                        let mut rows = Vec::with_capacity(batch.len());
                        for e in batch {
                            seq += 1;
                            let hash = link(&prev, seq, &e.canonical_json);
                            rows.push((seq, e, std::mem::replace(&mut prev, hash.clone()), hash));
                        }
                        let mut q: QueryBuilder<$db> = QueryBuilder::new(super::sql::INSERT_AUDIT_ROW);
                        q.push(" ");
                        q.push_values(&rows, |mut b, (seq, prepared, prev_hash, hash)| {
                            let e = &prepared.event;
                            b.push_bind(*seq)
                                .push_bind(e.id.to_string())
                                .push_bind($crate::clock::unix_millis(e.at))
                                .push_bind(e.actor.clone())
                                .push_bind(e.action.clone())
                                .push_bind(e.outcome.as_str())
                                .push_bind(e.agent_id.clone())
                                .push_bind(e.reason.clone())
                                .push_bind(prepared.detail_json.clone())
                                .push_bind(prev_hash.clone())
                                .push_bind(hash.clone());
                        });
                        match q.build().execute(&self.pool).await {
                            Ok(_) => {
                                *head = Some((seq, prev));
                                break;
                            }
                            Err(e) => {
                                *head = None;
                                let e = db_error(e);
                                attempt += 1;
                                if !matches!(e, StoreError::Conflict(_)) || attempt >= 12 {
                                    return Err(e);
                                }
                                // Another writer (a replica) appended: read the last row and chain
                                // again, after a random pause so that a writer that keeps winning
                                // leaves a gap.
                                tokio::time::sleep(collision_backoff(attempt)).await;
                            }
                        }
                    }
                }
                Ok(())
            }

            async fn list_audit(
                &self,
                filter: &AuditFilter,
                page: &PageRequest,
            ) -> StoreResult<Vec<AuditRecord>> {
                let after: i64 = match &page.after {
                    Some(after) => after
                        .parse()
                        .map_err(|_| StoreError::Corrupt("audit cursor".into()))?,
                    None => 0,
                };
                let mut q: QueryBuilder<$db> = QueryBuilder::new("");
                self.push_audit_selection(&mut q, filter, after);
                q.push(" ORDER BY seq LIMIT ").push_bind(page_limit(page));
                let rows: Vec<AuditRow> =
                    q.build_query_as().fetch_all(&self.pool).await.map_err(db_error)?;
                rows.into_iter().map(AuditRow::into_record).collect()
            }
        }

        #[async_trait]
        impl KeyRowStore for SqlStore<$db> {
            async fn load_key_rows(&self) -> StoreResult<Vec<SealedKeyRow>> {
                sqlx::query_as("SELECT kid, alg, state, private_key, created_at, activate_at, retired_at FROM signing_keys ORDER BY created_at, kid")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)
            }

            async fn save_key_row(&self, r: &SealedKeyRow) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, state, private_key, created_at, activate_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kid) DO UPDATE SET state = excluded.state, activate_at = excluded.activate_at, retired_at = excluded.retired_at",
                )
                .bind(&r.kid)
                .bind(&r.alg)
                .bind(&r.state)
                .bind(&r.private_key)
                .bind(r.created_at)
                .bind(r.activate_at)
                .bind(r.retired_at)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn remove_key_row(&self, kid: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                    .bind(kid)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }
        }

        #[async_trait]
        impl SettingsStore for SqlStore<$db> {
            async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
                let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(row.map(|r| r.0))
            }

            async fn init_setting(&self, key: &str, value: &str) -> StoreResult<String> {
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                self.get_setting(key)
                    .await?
                    .ok_or_else(|| StoreError::Database(format!("setting {key} vanished")))
            }

            async fn maintain(&self) -> StoreResult<()> {
                self.maintain_dialect().await
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_error)?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_sql_store;
