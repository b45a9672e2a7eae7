//! Single use of assertion `jti`s (RFC 7523 §3), enforced by a unique key in the store so that
//! replicas share it — with group commit: concurrent requests are claimed in one statement.

use crate::store::SharedStore;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

type Claim = (
    (String, OffsetDateTime),
    oneshot::Sender<Result<bool, String>>,
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

    /// Whether `key` has been claimed, without claiming it.
    pub async fn was_claimed(&self, key: &str) -> Result<bool, String> {
        self.store.is_claimed(key).await.map_err(|e| e.to_string())
    }

    /// True when `key` had not been claimed before (it is claimed now, until `expires_at`).
    pub async fn claim(&self, key: String, expires_at: OffsetDateTime) -> Result<bool, String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(((key, expires_at), ack))
            .await
            .map_err(|_| "the replay guard is closed".to_owned())?;
        done.await
            .map_err(|_| "the replay guard is closed".to_owned())?
    }
}

async fn run(store: SharedStore, mut rx: mpsc::Receiver<Claim>) {
    let store: Arc<dyn crate::store::Store> = store;
    let mut batch = Vec::with_capacity(512);
    while rx.recv_many(&mut batch, 512).await > 0 {
        let (keys, acks): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        match store.claim_many(&keys).await {
            Ok(fresh) => {
                for (ack, new) in acks.into_iter().zip(fresh) {
                    let _ = ack.send(Ok(new));
                }
            }
            Err(e) => {
                for ack in acks {
                    let _ = ack.send(Err(e.to_string()));
                }
            }
        }
    }
}
