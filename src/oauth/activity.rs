//! `last_active_at`, kept off the hot path: issuing a token notes the agent here, and a
//! background task writes the notes in one batch each second.

use crate::store::SharedStore;
use std::collections::HashMap;
use std::sync::Mutex;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Default)]
pub struct ActivityTracker {
    seen: Mutex<HashMap<Uuid, OffsetDateTime>>,
}

impl ActivityTracker {
    pub fn note(&self, agent: Uuid, at: OffsetDateTime) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(agent, at);
        }
    }

    /// Writes what was noted since the last flush.
    pub async fn flush(&self, store: &SharedStore) {
        let batch: Vec<_> = match self.seen.lock() {
            Ok(mut seen) => seen.drain().collect(),
            Err(_) => return,
        };
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.touch_agents(&batch).await {
            tracing::warn!(error = %e, "could not record last_active_at");
        }
    }
}
