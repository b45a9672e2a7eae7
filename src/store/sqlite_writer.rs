//! The hot path's writes to a SQLite file (audit batches and single-use assertion keys) run on
//! one connection of their own, called from the task that commits the batch, not through sqlx.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every batch crossed to that
//! thread and back: two thread wake-ups per commit, which on a busy 2-core machine cost more
//! than the commit itself and left the runtime's workers idle meanwhile. Here the commit is the
//! few pages of one transaction copied into the OS cache (`synchronous = NORMAL` in WAL mode
//! syncs nothing on commit): work of the same order as signing the token, done inline. What
//! does sync, the checkpoint, runs on the blocking pool.

use super::wal_copier::WalCopier;
use super::{ChainLink, StoreError, StoreResult};
use crate::domain::PreparedEvent;
use rusqlite::{Connection, ErrorCode, ToSql};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

/// How often the writer checkpoints. The copier has copied nearly everything by then; the
/// writer's pass, with no commit racing it, is the one that lets the next commit start the WAL
/// again from its beginning, which bounds its size. Batches wait while it syncs (1–3 ms here):
/// at 50 ms, few waits went past 3.2 ms; at 100 and 250 ms there was more to copy each time, and
/// the p99 at 16 connections rose past 3 ms.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// How long a batch waits for another process's write lock before it fails.
const LOCK_WAIT: Duration = Duration::from_secs(10);

pub(crate) struct SqliteWriter {
    connection: Arc<Mutex<Writer>>,
    copier: WalCopier,
}

struct Writer {
    connection: Connection,
    last_checkpoint: Instant,
}

impl SqliteWriter {
    /// Opens a second connection to an already migrated database file.
    pub(crate) fn open(path: &std::path::Path, copier: WalCopier) -> StoreResult<Self> {
        let connection = Connection::open(path).map_err(error)?;
        // No busy handler: a batch that finds the write lock taken must not sleep on a
        // runtime thread; it waits asynchronously (`begin`). The writer checkpoints itself.
        connection.busy_timeout(Duration::ZERO).map_err(error)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; \
                 PRAGMA journal_size_limit = 67108864;",
            )
            .map_err(error)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(Writer {
                connection,
                last_checkpoint: Instant::now(),
            })),
            copier,
        })
    }

    /// Appends a batch to the audit chain, after the last row in the file: the head is read
    /// inside the write transaction, so another process appending to the same file cannot
    /// make it stale.
    pub(crate) async fn append_audit(
        &self,
        events: &[PreparedEvent],
        link: &ChainLink,
    ) -> StoreResult<()> {
        let mut writer = self.begin().await?;
        let result = append(&mut writer.connection, events, link);
        self.finish(writer, result)
    }

    /// Records single-use keys: for each, in order, whether it was new (a repeat is not).
    pub(crate) async fn claim_many(
        &self,
        keys: &[(String, OffsetDateTime)],
    ) -> StoreResult<Vec<bool>> {
        let mut writer = self.begin().await?;
        let result = claim(&mut writer.connection, keys);
        self.finish(writer, result)
    }

    /// Records when agents were last active (a batch a second, `activity.rs`). Here rather
    /// than through the pool: a pool connection holding the write lock for a few hundred
    /// updates, one thread hop each, made the batches behind it wait milliseconds.
    pub(crate) async fn touch_agents(&self, seen: &[(Uuid, OffsetDateTime)]) -> StoreResult<()> {
        let writer = self.begin().await?;
        let result = touch(&writer.connection, seen);
        self.finish(writer, result)
    }

    /// Something was written through another connection: copy it into the file soon.
    pub(crate) fn copy_soon(&self) {
        self.copier.nudge();
    }

    /// Takes the connection and the database's write lock, waiting for another process that
    /// holds it without blocking the thread.
    async fn begin(&self) -> StoreResult<OwnedMutexGuard<Writer>> {
        let writer = self.connection.clone().lock_owned().await;
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match run_cached(&writer.connection, "BEGIN IMMEDIATE") {
                Ok(()) => return Ok(writer),
                Err(e) if is_busy(&e) && started.elapsed() < LOCK_WAIT => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(error(e)),
            }
        }
    }

    /// Commits (or rolls back) the transaction `begin` opened, then checkpoints when due.
    fn finish<T>(
        &self,
        mut writer: OwnedMutexGuard<Writer>,
        result: StoreResult<T>,
    ) -> StoreResult<T> {
        let result = result.and_then(|value| {
            run_cached(&writer.connection, "COMMIT")
                .map_err(error)
                .map(|()| value)
        });
        if result.is_err() {
            // Nothing to undo when BEGIN's transaction already ended.
            let _ = writer.connection.execute_batch("ROLLBACK");
            return result;
        }
        self.copier.nudge();
        if writer.last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            writer.last_checkpoint = Instant::now();
            // The next batch waits for the connection; no runtime thread waits for the sync.
            tokio::task::spawn_blocking(move || checkpoint(&writer.connection));
        }
        result
    }
}

/// Rows per INSERT statement: a batch goes in as few statements as these sizes add up to
/// (13 = 8 + 4 + 1), each statement prepared once. One statement per row cost a program run
/// (cursors opened on the table and both indexes) per row.
const ROWS_PER_INSERT: [usize; 5] = [16, 8, 4, 2, 1];

/// The INSERT of `ROWS_PER_INSERT[i]` rows.
fn insert_sql(i: usize) -> Option<&'static str> {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        ROWS_PER_INSERT
            .iter()
            .map(|&rows| {
                let one = format!("({})", ["?"; AUDIT_COLUMNS].join(", "));
                format!(
                    "{} VALUES {}",
                    super::sql::INSERT_AUDIT_ROW,
                    vec![one; rows].join(", ")
                )
            })
            .collect()
    });
    all.get(i).map(String::as_str)
}

/// The columns of `INSERT_AUDIT_ROW`, bound by `AuditRow::params` in the same order.
const AUDIT_COLUMNS: usize = 11;

struct AuditRow<'a> {
    seq: i64,
    id: String,
    at_ms: i64,
    outcome: &'static str,
    prepared: &'a PreparedEvent,
    prev_hash: String,
    hash: String,
}

impl AuditRow<'_> {
    fn params(&self) -> [&dyn ToSql; AUDIT_COLUMNS] {
        let e = &self.prepared.event;
        [
            &self.seq,
            &self.id,
            &self.at_ms,
            &e.actor,
            &e.action,
            &self.outcome,
            &e.agent_id,
            &e.reason,
            &self.prepared.detail_json,
            &self.prev_hash,
            &self.hash,
        ]
    }
}

fn append(
    connection: &mut Connection,
    events: &[PreparedEvent],
    link: &ChainLink,
) -> StoreResult<()> {
    let (mut seq, mut prev) = connection
        .prepare_cached(super::sql::LAST_AUDIT_ROW)
        .and_then(|mut last| {
            last.query_row([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })
        })
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok((0, crate::audit::GENESIS.to_owned())),
            e => Err(e),
        })
        .map_err(error)?;
    let rows: Vec<AuditRow> = events
        .iter()
        .map(|prepared| {
            seq += 1;
            let hash = link(&prev, seq, &prepared.canonical_json);
            let e = &prepared.event;
            AuditRow {
                seq,
                id: e.id.to_string(),
                at_ms: crate::clock::unix_millis(e.at),
                outcome: e.outcome.as_str(),
                prepared,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect();
    let mut rest = rows.as_slice();
    while !rest.is_empty() {
        let (i, &size) = ROWS_PER_INSERT
            .iter()
            .enumerate()
            .find(|(_, size)| **size <= rest.len())
            .unwrap_or((ROWS_PER_INSERT.len() - 1, &1));
        let (chunk, tail) = rest.split_at(size);
        let params = chunk.iter().flat_map(|row| row.params());
        let sql = insert_sql(i)
            .ok_or_else(|| StoreError::Database(format!("no INSERT of {size} audit rows")))?;
        connection
            .prepare_cached(sql)
            .and_then(|mut insert| insert.execute(rusqlite::params_from_iter(params)))
            .map_err(error)?;
        rest = tail;
    }
    Ok(())
}

fn claim(connection: &mut Connection, keys: &[(String, OffsetDateTime)]) -> StoreResult<Vec<bool>> {
    let mut insert = connection
        .prepare_cached(
            "INSERT INTO used_assertions (key, expires_at) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        )
        .map_err(error)?;
    keys.iter()
        .map(|(key, expires_at)| {
            let inserted = insert
                .execute(rusqlite::params![key, super::rows::secs(*expires_at)])
                .map_err(error)?;
            Ok(inserted == 1)
        })
        .collect()
}

fn touch(connection: &Connection, seen: &[(Uuid, OffsetDateTime)]) -> StoreResult<()> {
    let mut update = connection
        .prepare_cached(super::sql::TOUCH_AGENT)
        .map_err(error)?;
    for (id, at) in seen {
        update
            // By name: SQLite numbers `$n` parameters in order of appearance, and `$2` comes
            // first in this statement.
            .execute(rusqlite::named_params! {"$1": id.to_string(), "$2": super::rows::secs(*at)})
            .map_err(error)?;
    }
    Ok(())
}

/// Runs a statement the writer runs every batch, parsed once.
fn run_cached(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn checkpoint(connection: &Connection) {
    // PASSIVE: copies what no reader still needs and waits for nobody.
    let outcome = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match outcome {
        Ok((frames, copied)) => tracing::trace!(frames, copied, "writer checkpoint"),
        Err(e) => tracing::debug!(error = %e, "writer checkpoint failed"),
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy))
}

fn error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
        _ => StoreError::Database(e.to_string()),
    }
}
