//! PostgreSQL, for production and several replicas.

use super::sql::{impl_sql_store, migration_failed};
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

impl_sql_store!(sqlx::Postgres);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl SqlStore<sqlx::Postgres> {
    /// PostgreSQL looks after itself (autovacuum, checkpoints).
    async fn maintain_dialect(&self) -> StoreResult<()> {
        Ok(())
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
