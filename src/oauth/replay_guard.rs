//! Single use of assertion `jti`s (RFC 7523 §3), enforced by a unique key in the store so that
//! replicas share it — with group commit: concurrent requests are claimed in one statement.

use crate::store::SharedStore;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

/// Keys claimed together, and where to send, for each, whether it was new.
type Claim = (
    Vec<(String, OffsetDateTime)>,
    oneshot::Sender<Result<Vec<bool>, String>>,
);

#[derive(Clone)]
pub struct ReplayGuard {
    tx: mpsc::Sender<Claim>,
    store: SharedStore,
}

impl ReplayGuard {
    pub fn start(store: SharedStore) -> Self {
        let (tx, rx) = mpsc::channel(8192);
        tokio::spawn(run(store.clone(), rx));
        Self { tx, store }
    }

    /// True when `key` had not been claimed before (it is claimed now, until `expires_at`).
    pub async fn claim(&self, key: String, expires_at: OffsetDateTime) -> Result<bool, String> {
        Ok(self
            .claim_together(vec![(key, expires_at)])
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// Claims several keys in the same write (one transaction on SQLite, one statement on
    /// PostgreSQL): for each, in order, whether it was new.
    pub async fn claim_together(
        &self,
        keys: Vec<(String, OffsetDateTime)>,
    ) -> Result<Vec<bool>, String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((keys, ack))
            .await
            .map_err(|_| "the replay guard is closed".to_owned())?;
        done.await
            .map_err(|_| "the replay guard is closed".to_owned())?
    }

    /// Whether `key` has been claimed, without claiming it.
    pub async fn was_claimed(&self, key: &str) -> Result<bool, String> {
        self.store.is_claimed(key).await.map_err(|e| e.to_string())
    }
}

async fn run(store: SharedStore, mut rx: mpsc::Receiver<Claim>) {
    let store: Arc<dyn crate::store::Store> = store;
    let mut batch = Vec::with_capacity(512);
    while rx.recv_many(&mut batch, 512).await > 0 {
        let mut keys = Vec::with_capacity(batch.len());
        let mut acks = Vec::with_capacity(batch.len());
        for (claimed, ack) in batch.drain(..) {
            acks.push((claimed.len(), ack));
            keys.extend(claimed);
        }
        match store.claim_many(&keys).await {
            Ok(fresh) => {
                let mut fresh = fresh.into_iter();
                for (n, ack) in acks {
                    let _ = ack.send(Ok(fresh.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                for (_, ack) in acks {
                    let _ = ack.send(Err(e.to_string()));
                }
            }
        }
    }
}
