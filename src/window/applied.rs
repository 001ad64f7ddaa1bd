//! The batches a key has counted, so that a redelivered batch changes
//! nothing: kept while their matches are inside the horizon, whatever the
//! wall clock says, and bounded.

use serde::{Deserialize, Serialize};

use super::WindowState;
use crate::time::Millis;

/// Hard cap on remembered batch ids per key (bounds the record size). A
/// batch is remembered only when it changed the key, and only while its
/// matches are inside the horizon; past the cap the ids counted earliest
/// go and the horizon shrinks to match, so a redelivery never counts twice
/// (it is late instead).
///
/// A batch stamped in the future is kept until its stamps are late (a
/// later redelivery no longer needs the clamp), but goes in the order of
/// the time it was counted at, and the horizon shrinks only to that: stamps
/// a writer forged must not make a key's real matches late. Such a batch,
/// redelivered after it went, counts again at its new arrival.
pub const MAX_REMEMBERED_BATCHES: usize = 256;

/// Characters of a batch id kept in the record (64 bits).
pub const REMEMBERED_ID_CHARS: usize = 16;

/// A batch id remembered by a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedBatch {
    /// Batch id (its first [`REMEMBERED_ID_CHARS`] characters).
    pub id: String,
    /// Event time of the latest match it counted in the key, or the
    /// latest time its events were stamped with when later (stored as
    /// `at`): once that is late, so is all of the batch, and its id can go.
    #[serde(rename = "at")]
    pub at_ms: Millis,
    /// The latest match time it counted at, when its stamps were later
    /// (clamped to its arrival; stored as `c`, absent when the same as
    /// `at`): the order in which ids go past the cap, and how far the
    /// horizon then moves.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub counted_ms: Option<Millis>,
}

impl AppliedBatch {
    /// The latest time it counted a match at.
    fn counted(&self) -> Millis {
        self.counted_ms.unwrap_or(self.at_ms)
    }
}

impl WindowState {
    /// True when the batch was applied to this key before.
    pub fn has_applied(&self, batch_id: &str) -> bool {
        let id = remembered_id(batch_id);
        self.applied.iter().any(|b| b.id == id)
    }

    /// Remembers a batch that counted matches up to `counted_ms` and whose
    /// events were stamped up to `stamped_ms` (0 when none was clamped),
    /// and forgets the batches whose matches are all late now.
    pub(super) fn remember(&mut self, batch_id: &str, counted_ms: Millis, stamped_ms: Millis) {
        self.applied.push(AppliedBatch {
            id: remembered_id(batch_id).to_owned(),
            at_ms: counted_ms.max(stamped_ms),
            counted_ms: (stamped_ms > counted_ms).then_some(counted_ms),
        });
        if self.applied.len() > MAX_REMEMBERED_BATCHES {
            // Forgetting a batch makes what it counted late first.
            self.applied.sort_by_key(AppliedBatch::counted);
            let excess = self.applied.len() - MAX_REMEMBERED_BATCHES;
            let newest_forgotten = self.applied[excess - 1].counted();
            self.raise_late_before(newest_forgotten.saturating_add(1));
            self.applied.drain(..excess);
        }
        let late_before = self.late_before;
        self.applied.retain(|b| b.at_ms >= late_before);
    }
}

/// The part of a batch id a key remembers.
fn remembered_id(id: &str) -> &str {
    id.get(..REMEMBERED_ID_CHARS).unwrap_or(id)
}
