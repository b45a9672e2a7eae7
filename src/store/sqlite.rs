//! The embedded default: SQLite in WAL mode (a file, or in-memory for tests).

use super::audit_lookups;
use super::sql::{AUDIT_EVENTS, impl_sql_store, migration_failed};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

impl_sql_store!(sqlx::Sqlite);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

impl SqlStore<sqlx::Sqlite> {
    /// Writes that no audit event followed reach the database file too.
    async fn maintain_dialect(&self) -> StoreResult<()> {
        if let Some(writer) = &self.sqlite_writer {
            writer.copy_soon();
        }
        Ok(())
    }

    /// The audit rows a listing asks for. Filtered by agent or by time, the rows the lookups
    /// cover are found through them and the few committed since among the rows themselves;
    /// both parts come in `seq` order and merge under the listing's `ORDER BY seq`. An
    /// in-memory database has no lookups: it is read straight through.
    fn push_audit_selection(
        &self,
        q: &mut QueryBuilder<sqlx::Sqlite>,
        filter: &AuditFilter,
        after: i64,
    ) {
        let lookup = if self.audit_lookups.is_none() {
            None
        } else if filter.agent_id.is_some() {
            Some(&audit_lookups::BY_AGENT)
        } else if filter.since.is_some() || filter.until.is_some() {
            Some(&audit_lookups::BY_TIME)
        } else {
            None
        };
        let Some(lookup) = lookup else {
            return push_audit_select(q, "audit_events e", &AUDIT_EVENTS, filter, after);
        };
        push_audit_select(q, lookup.from, &lookup.columns, filter, after);
        q.push(" UNION ALL ");
        push_audit_select(q, "audit_events e", &AUDIT_EVENTS, filter, after);
        q.push(audit_lookups::NOT_YET_LOOKED_UP);
    }
}

/// Opens a `sqlite:` URL, creating the file if needed, and migrates it.
pub async fn open(url: &str) -> StoreResult<SqlStore<sqlx::Sqlite>> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Database(e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        // These connections write little (admin changes, activity); SQLite's own checkpoint
        // after 1000 pages suits them. The hot path's writer (`sqlite_writer.rs`) checkpoints
        // on its own schedule, and the copier (`wal_copier.rs`) copies the WAL back beside it.
        // A WAL that grew anyway is cut back to 64 MiB when it is reset.
        .pragma("wal_autocheckpoint", "1000")
        .pragma("journal_size_limit", "67108864")
        .foreign_keys(true);
    if in_memory {
        // An in-memory database lives in one connection: keep exactly one.
        let pool = pool_options(true, 1)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        MIGRATOR.run(&pool).await.map_err(migration_failed)?;
        return Ok(SqlStore::new(pool));
    }
    let path = options.get_filename().to_owned();
    create_private(&path)?;
    let lookups_file = audit_lookups::AuditLookups::create(&path)?
        .to_string_lossy()
        .into_owned();
    let pool = pool_options(false, 8)
        // Listings by agent or time read the audit lookups' file beside the database.
        .after_connect(move |connection, _| {
            let file = lookups_file.clone();
            Box::pin(async move {
                sqlx::query(audit_lookups::ATTACH)
                    .bind(file)
                    .execute(connection)
                    .await
                    .map(|_| ())
            })
        })
        .connect_with(options.clone())
        .await
        .map_err(db_error)?;
    MIGRATOR.run(&pool).await.map_err(migration_failed)?;
    let copier_pool = pool_options(false, 1)
        .connect_with(options)
        .await
        .map_err(db_error)?;
    let copier = super::wal_copier::WalCopier::start(copier_pool);
    let writer = super::sqlite_writer::SqliteWriter::open(&path, copier)?;
    let lookups = audit_lookups::AuditLookups::open(&path)?;
    Ok(SqlStore::with_sqlite_writer(pool, writer, lookups))
}

/// Creates a new database file readable by its owner only: it holds secret hashes and the
/// audit trail, and SQLite gives the `-wal` and `-shm` files beside it the same mode.
pub(super) fn create_private(path: &std::path::Path) -> StoreResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Database(format!(
            "creating {}: {e}",
            path.display()
        ))),
    }
}

fn pool_options(in_memory: bool, connections: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        // An embedded file does not drop connections: skip the ping before every acquire,
        // a round trip to the connection's thread on each audit commit.
        .test_before_acquire(false)
        .max_connections(connections)
        .min_connections(if in_memory { 1 } else { 0 })
        .idle_timeout(if in_memory {
            None
        } else {
            Some(Duration::from_secs(600))
        })
        .max_lifetime(if in_memory {
            None
        } else {
            Some(Duration::from_secs(3600))
        })
}
