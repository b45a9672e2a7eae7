//! SQLite's audit lookups, by agent and by time, kept in a file of their own beside the
//! database (`<database>-audit-lookups`) and filled in the background, every 100 ms, with the
//! rows committed since (migration 0004 says why they left the audit table).
//!
//! In the database file, filling them took its write lock: the batch of audit events behind a
//! fill waited while a page per agent seen was written. In a file of their own they take only
//! that file's lock; the audit rows are read from a snapshot, which waits for nobody.
//!
//! A listing filtered by agent or time reads the rows the lookups cover through them and the
//! rows committed since (`seq > upto`) directly. The two files are read in two snapshots, and
//! that is enough: the audit table only grows, so a row the lookups name is either in the
//! listing's snapshot of it or was committed after (and the join drops it), and a row past
//! `upto` is read where it is. The lookups are derived data: when the database no longer holds
//! the row they end at (a restored backup, rows cut off the end), they start over.

use super::sql::AuditColumns;
use super::{StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the lookups catch up. Each fill writes a page once per agent seen since the last
/// one, so longer is less work in all; listings then read up to this much of the newest audit
/// rows directly.
const FILL_EVERY: Duration = Duration::from_millis(100);

const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS audit_by_agent (
        agent_id TEXT NOT NULL,
        seq      INTEGER NOT NULL,
        PRIMARY KEY (agent_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS audit_by_time (
        at_ms BIGINT NOT NULL,
        seq   INTEGER NOT NULL,
        PRIMARY KEY (at_ms, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS audit_indexed (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        upto      INTEGER NOT NULL,
        upto_hash TEXT
    );
    INSERT OR IGNORE INTO audit_indexed (id, upto, upto_hash) VALUES (1, 0, NULL);";

/// Adds the rows committed since the last fill, all read in one snapshot of the audit table,
/// and moves `upto` to the last of them, in one transaction: a listing sees each row through
/// exactly one path.
const FILL: [&str; 3] = [
    "INSERT OR IGNORE INTO audit_by_agent (agent_id, seq) \
     SELECT agent_id, seq FROM audit.audit_events \
     WHERE seq > (SELECT upto FROM audit_indexed) AND agent_id IS NOT NULL \
     ORDER BY agent_id, seq",
    "INSERT OR IGNORE INTO audit_by_time (at_ms, seq) \
     SELECT at_ms, seq FROM audit.audit_events WHERE seq > (SELECT upto FROM audit_indexed)",
    "UPDATE audit_indexed SET (upto, upto_hash) = \
     (SELECT seq, hash FROM audit.audit_events ORDER BY seq DESC LIMIT 1) \
     WHERE EXISTS (SELECT 1 FROM audit.audit_events WHERE seq > audit_indexed.upto)",
];

/// Whether the row the lookups end at is still the one they were filled from.
const STILL_THERE: &str = "SELECT upto = 0 OR EXISTS (SELECT 1 FROM audit.audit_events e \
     WHERE e.seq = audit_indexed.upto AND e.hash = audit_indexed.upto_hash) FROM audit_indexed";

const START_OVER: &str = "DELETE FROM audit_by_agent; DELETE FROM audit_by_time; \
     UPDATE audit_indexed SET upto = 0, upto_hash = NULL;";

/// The task that fills the lookups; dropping it stops it.
pub(crate) struct AuditLookups {
    task: tokio::task::JoinHandle<()>,
}

impl AuditLookups {
    /// Creates the lookups' file beside `database` if it is not there (readable by its owner
    /// only, as the database is) and its tables, and returns its path: before the listing's
    /// connections attach it, so that a file there that is not a database is reported as such.
    pub(crate) fn create(database: &Path) -> StoreResult<PathBuf> {
        let file = file_of(database);
        super::sqlite::create_private(&file)?;
        connect(&file).map_err(|e| unusable(&file, e))?;
        Ok(file)
    }

    /// Opens the lookups that [`create`](Self::create) made, empties them if they do not
    /// match `database`, and starts filling them. The database must be migrated already.
    pub(crate) fn open(database: &Path) -> StoreResult<Self> {
        let file = file_of(database);
        let connection = connect(&file)
            .and_then(|c| {
                c.execute("ATTACH DATABASE ?1 AS audit", [database.to_string_lossy()])
                    .map_err(error)?;
                Ok(c)
            })
            .map_err(|e| unusable(&file, e))?;
        let connection = Arc::new(Mutex::new(connection));
        // Lookups that no longer match are emptied before any listing reads them; filling them
        // (all of an upgraded database's rows, the first time) is the background's work, and
        // listings read what is not filled yet directly meanwhile.
        in_transaction(&connection, |_| Ok(()))?;
        let task = tokio::spawn(fill_loop(connection.clone()));
        Ok(Self { task })
    }
}

impl Drop for AuditLookups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The lookups' file for a database file.
fn file_of(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push("-audit-lookups");
    database.with_file_name(name)
}

/// `ATTACH`es the lookups' file (bound: [`file_of`]) to a connection of the listing's pool.
pub(crate) const ATTACH: &str = "ATTACH DATABASE ?1 AS lookups";

/// A connection to the lookups' file, its tables created.
fn connect(file: &Path) -> StoreResult<Connection> {
    let connection = Connection::open(file).map_err(error)?;
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(error)?;
    connection
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(error)?;
    connection.execute_batch(CREATE).map_err(error)?;
    Ok(connection)
}

fn unusable(file: &Path, e: StoreError) -> StoreError {
    StoreError::Database(format!(
        "{e} ({} is derived from the database: remove it and it is filled again)",
        file.display()
    ))
}

async fn fill_loop(connection: Arc<Mutex<Connection>>) {
    let mut tick = tokio::time::interval(FILL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let connection = connection.clone();
        match tokio::task::spawn_blocking(move || fill(&connection)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "filling the audit lookups failed"),
            Err(e) => tracing::warn!(error = %e, "filling the audit lookups stopped"),
        }
    }
}

/// Adds the rows committed since the last fill.
fn fill(connection: &Mutex<Connection>) -> StoreResult<()> {
    in_transaction(connection, |tx| {
        for statement in FILL {
            tx.prepare_cached(statement)
                .and_then(|mut s| s.execute([]))
                .map_err(error)?;
        }
        Ok(())
    })
}

/// Runs `work` in a transaction on the lookups, after emptying them if the database no
/// longer holds the row they end at.
fn in_transaction(
    connection: &Mutex<Connection>,
    work: impl FnOnce(&rusqlite::Transaction) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut connection = connection
        .lock()
        .map_err(|_| StoreError::Database("the audit lookups' connection is poisoned".into()))?;
    // Deferred: the audit table is only read, in a snapshot; only the lookups' file is locked.
    let tx = connection.transaction().map_err(error)?;
    let still_there: bool = tx
        .prepare_cached(STILL_THERE)
        .and_then(|mut s| s.query_row([], |row| row.get(0)).optional())
        .map_err(error)?
        .unwrap_or(false);
    if !still_there {
        tracing::info!("the audit lookups do not match the database; filling them again");
        tx.execute_batch(START_OVER).map_err(error)?;
    }
    work(&tx)?;
    tx.commit().map_err(error)
}

fn error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(format!("audit lookups: {e}"))
}

/// A lookup table joined to the rows it points at.
pub(super) struct Lookup {
    pub from: &'static str,
    pub columns: AuditColumns,
}

pub(super) const BY_AGENT: Lookup = Lookup {
    from: "lookups.audit_by_agent l JOIN audit_events e ON e.seq = l.seq",
    columns: AuditColumns {
        seq: "l.seq",
        agent_id: "l.agent_id",
        at_ms: "e.at_ms",
    },
};

pub(super) const BY_TIME: Lookup = Lookup {
    from: "lookups.audit_by_time l JOIN audit_events e ON e.seq = l.seq",
    columns: AuditColumns {
        seq: "l.seq",
        agent_id: "e.agent_id",
        at_ms: "l.at_ms",
    },
};

/// The rows the lookups do not cover yet, the condition to add to a select of `audit_events e`.
pub(super) const NOT_YET_LOOKED_UP: &str = " AND e.seq > (SELECT upto FROM lookups.audit_indexed)";
