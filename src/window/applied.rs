//! The batches a key has counted, so that a redelivered batch changes
//! nothing: kept while their matches are inside the horizon, whatever the
//! wall clock says, and bounded.

use serde::{Deserialize, Serialize};

use super::WindowState;
use crate::time::Millis;

/// Hard cap on remembered batch ids per key (bounds the record size). A
/// batch is remembered only when it changed the key, which a window allows
/// at most its threshold plus the severities above its first alert times,
/// and only while its matches are inside the horizon; past the cap the
/// oldest ids go and the horizon shrinks to match, so a redelivery never
/// counts twice (it is late instead).
pub const MAX_REMEMBERED_BATCHES: usize = 256;

/// Characters of a batch id kept in the record (64 bits).
pub const REMEMBERED_ID_CHARS: usize = 16;

/// A batch id remembered by a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedBatch {
    /// Batch id (its first [`REMEMBERED_ID_CHARS`] characters).
    pub id: String,
    /// Event time of the latest match it counted in the key (stored as
    /// `at`): once that is late, so is all of the batch, and its id can go.
    #[serde(rename = "at")]
    pub at_ms: Millis,
}

impl WindowState {
    /// True when the batch was applied to this key before.
    pub fn has_applied(&self, batch_id: &str) -> bool {
        let id = remembered_id(batch_id);
        self.applied.iter().any(|b| b.id == id)
    }

    /// Remembers a batch that counted matches up to `at_ms`, and forgets
    /// the batches whose matches are all late now.
    pub(super) fn remember(&mut self, batch_id: &str, at_ms: Millis) {
        self.applied.push(AppliedBatch {
            id: remembered_id(batch_id).to_owned(),
            at_ms,
        });
        if self.applied.len() > MAX_REMEMBERED_BATCHES {
            // Forgetting a batch makes its matches late first.
            self.applied.sort_by_key(|b| b.at_ms);
            let excess = self.applied.len() - MAX_REMEMBERED_BATCHES;
            let newest_forgotten = self.applied[excess - 1].at_ms;
            self.raise_late_before(newest_forgotten.saturating_add(1));
        }
        let late_before = self.late_before;
        self.applied.retain(|b| b.at_ms >= late_before);
    }
}

/// The part of a batch id a key remembers.
fn remembered_id(id: &str) -> &str {
    id.get(..REMEMBERED_ID_CHARS).unwrap_or(id)
}
