//! Group commit: callers hand events to one writer task and wait for the commit; the writer
//! drains whatever has queued up and commits it in one transaction, so awaiting durability per
//! token does not cap throughput.

use super::{link, prepare};
use crate::domain::{AuditEvent, PreparedEvent};
use crate::store::SharedStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 1024;
/// Scheduler turns the writer waits for more events before it commits.
const GATHER_TURNS: usize = 4;
const QUEUE: usize = 16 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log is closed")]
    Closed,
    #[error("the audit log could not commit: {0}")]
    Commit(String),
}

type Ack = oneshot::Sender<Result<(), AuditError>>;

/// A handle to the audit writer. Cloning is cheap.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<(PreparedEvent, Ack)>,
    depth: Arc<AtomicUsize>,
}

impl AuditLog {
    /// Starts the writer task; it ends when every handle is dropped, after draining the queue.
    pub fn start(
        store: SharedStore,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let depth = Arc::new(AtomicUsize::new(0));
        let handle = tokio::spawn(run(store, rx, depth.clone(), metrics));
        (Self { tx, depth }, handle)
    }

    /// Records an event and waits until it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        self.submit(event).await?.committed().await
    }

    /// Hands an event to the writer without waiting for its commit: the caller does its own
    /// work meanwhile, then awaits [`Pending::committed`].
    pub async fn submit(&self, event: AuditEvent) -> Result<Pending, AuditError> {
        let event = prepare(event);
        let (ack, done) = oneshot::channel();
        self.depth.fetch_add(1, Ordering::Relaxed);
        if self.tx.send((event, ack)).await.is_err() {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            return Err(AuditError::Closed);
        }
        Ok(Pending { done })
    }

    /// Events waiting to be committed.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }
}

/// An event handed to the writer, not yet known to be committed.
#[must_use = "an event is durable only once `committed` says so"]
pub struct Pending {
    done: oneshot::Receiver<Result<(), AuditError>>,
}

impl Pending {
    /// Waits until the event is committed.
    pub async fn committed(self) -> Result<(), AuditError> {
        self.done.await.map_err(|_| AuditError::Closed)?
    }
}

async fn run(
    store: SharedStore,
    mut rx: mpsc::Receiver<(PreparedEvent, Ack)>,
    depth: Arc<AtomicUsize>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A commit costs the same for one event as for many: give the requests being handled
        // right now a moment to add theirs (a few scheduler turns, not a timer).
        for _ in 0..GATHER_TURNS {
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
        }
        let (events, acks): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        depth.fetch_sub(events.len(), Ordering::Relaxed);
        let started = std::time::Instant::now();
        let result = commit(&store, &events).await;
        metrics
            .audit_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.audit_batch_events.observe(events.len() as f64);
        if let Err(e) = &result {
            tracing::error!(error = %e, events = events.len(), "audit commit failed");
        }
        for ack in acks {
            let _ = ack.send(result.clone());
        }
    }
}

async fn commit(store: &SharedStore, events: &[PreparedEvent]) -> Result<(), AuditError> {
    let mut last = None;
    // A transient failure (a busy database) gets a few retries before the callers hear of it.
    for attempt in 0..3 {
        match store.append_audit(events, &link).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                last = Some(e.to_string());
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
        }
    }
    Err(AuditError::Commit(last.unwrap_or_default()))
}
