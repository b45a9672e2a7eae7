//! PostgreSQL, for production and several replicas.

use super::sql::{AUDIT_EVENTS, impl_sql_store, migration_failed};
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

impl_sql_store!(sqlx::Postgres);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl SqlStore<sqlx::Postgres> {
    /// PostgreSQL looks after itself (autovacuum, checkpoints).
    async fn maintain_dialect(&self) -> StoreResult<()> {
        Ok(())
    }

    /// The audit rows a listing asks for: indexes on `audit_events` serve both lookups.
    fn push_audit_selection(
        &self,
        q: &mut QueryBuilder<sqlx::Postgres>,
        filter: &AuditFilter,
        after: i64,
    ) {
        push_audit_select(q, "audit_events e", &AUDIT_EVENTS, filter, after);
    }
}

/// Opens a `postgres:` URL and migrates the database.
pub async fn open(url: &str) -> StoreResult<SqlStore<sqlx::Postgres>> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(db_error)?;
    MIGRATOR.run(&pool).await.map_err(migration_failed)?;
    Ok(SqlStore::new(pool))
}
