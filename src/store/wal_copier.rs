//! Copies a SQLite file's WAL back into the database from a connection of its own, a few
//! milliseconds after each commit of the hot path's writer, while the writer goes on committing.
//!
//! Only a checkpoint with no commit racing it lets the WAL be reused from its start, and only
//! the writer can run one (`sqlite_writer.rs`, every 50 ms): batches wait for it. With this
//! copier keeping up, that checkpoint finds only the last few commits left to copy, so it is
//! short. (Without it, the writer's checkpoint copied the whole WAL while batches queued: 3–13
//! ms. With this copier alone, the WAL grew to 800 MB in two minutes of load.)

use sqlx::{Pool, Sqlite};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long the copier lets commits pile up before a pass: each pass copies a page once
/// however often it changed meanwhile.
const PACE: Duration = Duration::from_millis(10);

pub(crate) struct WalCopier {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl WalCopier {
    pub(crate) fn start(pool: Pool<Sqlite>) -> Self {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(copy_loop(pool, wake.clone()));
        Self { wake, task }
    }

    /// Something was committed: copy it soon.
    pub(crate) fn nudge(&self) {
        self.wake.notify_one();
    }
}

impl Drop for WalCopier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn copy_loop(pool: Pool<Sqlite>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        tokio::time::sleep(PACE).await;
        // PASSIVE: copies what no reader still needs, never waits for a lock, never blocks
        // the writer.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "background WAL copy failed");
        }
    }
}
