//! Where window states live between invocations: a small compare-and-set
//! port, with a DynamoDB adapter for the Lambda and an in-memory one for
//! `replay` and tests.
//!
//! Every write is conditional on the version that was read, so two
//! invocations racing on one key cannot both win: the loser re-reads and
//! re-applies its batch (see [`crate::handler`]). A key's undelivered alerts
//! live in its record (see [`crate::window`]); the store can list the keys
//! that have any without scanning the others.

pub mod dynamodb;
pub mod memory;

use std::collections::HashMap;
use std::future::Future;

use crate::time::Millis;
use crate::vocab::{strong_hash, RuleId};
use crate::window::{PendingAlert, WindowState};

/// A window state and the version it was stored at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The state.
    pub state: WindowState,
    /// Monotonic version, starting at 1.
    pub version: u64,
}

/// A stored item as read.
#[derive(Debug, Clone, PartialEq, Eq)]
// Items are read once per key and batch; boxing the common case would only
// add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Loaded {
    /// A readable state.
    Found(Versioned),
    /// An item that cannot be read back (written by an incompatible version,
    /// or edited by hand). The key starts afresh, overwriting it
    /// conditionally, instead of failing every batch that touches it.
    Corrupt {
        /// Its version, for the conditional overwrite (0 when it has none:
        /// the overwrite is then conditional on there being none).
        version: u64,
        /// What is wrong.
        reason: String,
        /// The undelivered alerts that could still be read out of it: the
        /// key starts afresh with them, so they are still delivered.
        outbox: Vec<PendingAlert>,
        /// The item as stored (capped), for the operator: the handler
        /// writes it to the function's log before overwriting it.
        raw: String,
    },
}

/// Outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Written; the item is now at this version.
    Saved(u64),
    /// Someone else wrote first: re-read and retry.
    Conflict,
}

/// A store request failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A retry can fix it: throttling, network, timeouts, a missing table or
    /// permission (the invocation fails and Lambda retries it).
    #[error("state store unavailable: {0}")]
    Transient(String),
    /// This request can never succeed as it is (DynamoDB refused the item
    /// or the key itself); retrying the batch would fail the same way.
    #[error("state store refused {pk}: {reason}")]
    Permanent {
        /// The item's key.
        pk: String,
        /// What DynamoDB said.
        reason: String,
    },
}

impl StoreError {
    /// True when retrying the invocation may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

/// Longest partition key written as it is; a longer one (dedup keys hold
/// request values) is replaced by a hash. DynamoDB allows 2,048 bytes.
pub const MAX_PLAIN_KEY_BYTES: usize = 1024;

/// The partition key of a (rule, dedup key): readable when it is short,
/// `rule#h:<hash>` when the dedup key is long.
pub fn state_key(rule: RuleId, dedup: &str) -> String {
    let plain = format!("{}#{}", rule.as_str(), dedup);
    if plain.len() <= MAX_PLAIN_KEY_BYTES {
        return plain;
    }
    format!("{}#h:{:032x}", rule.as_str(), strong_hash(&[dedup]))
}

/// Where the next page of keys with undelivered alerts starts: after this
/// key, in the order of the time its first alert became due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxCursor {
    /// When the last key's first alert became due.
    pub due_ms: Millis,
    /// The last key.
    pub pk: String,
}

/// A page of keys with undelivered alerts.
#[derive(Debug, Default)]
pub struct OutboxPage {
    /// Keys and their states, earliest due first.
    pub keys: Vec<(String, Versioned)>,
    /// Where the next page starts; `None` when there is no more.
    pub next: Option<OutboxCursor>,
}

/// Writes an unreadable item to the function's log, in parts a log event
/// can hold, before its key starts afresh (with the `salvaged` undelivered
/// alerts that could be read out of it).
pub fn log_corrupt(pk: &str, reason: &str, raw: &str, salvaged: usize) {
    let parts = crate::bounded::pieces(raw, LOG_PART_BYTES);
    tracing::error!(pk = %crate::bounded::cap(pk), %reason, salvaged, parts = parts.len(), "stored state unreadable; set aside in this log, the key starts afresh with the alerts it still had");
    for (part, chunk) in parts.iter().enumerate() {
        tracing::error!(pk = %crate::bounded::cap(pk), part, item = *chunk, "unreadable state item");
    }
}

/// Bytes of data per log line when data is logged in parts (a CloudWatch
/// Logs event holds 256 KB).
pub const LOG_PART_BYTES: usize = 200 * 1024;

/// Compare-and-set storage of window states.
pub trait StateStore: Send + Sync {
    /// Reads many keys (strongly consistent); absent keys are left out.
    fn load_many(
        &self,
        pks: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Loaded>, StoreError>> + Send;

    /// Reads one key (strongly consistent).
    fn load(&self, pk: &str) -> impl Future<Output = Result<Option<Loaded>, StoreError>> + Send;

    /// Writes `state` if the item is still at `expected` (`None`: must not
    /// exist yet).
    fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;

    /// Up to `limit` keys holding an alert due by `due_by` (undelivered and
    /// not held by a live claim, see [`WindowState::outbox_due`]), earliest
    /// due first, after `after`; found without scanning the other keys. An
    /// unreadable key is returned afresh with the alerts that could be
    /// read out of it.
    fn with_outbox(
        &self,
        due_by: Millis,
        after: Option<&OutboxCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<OutboxPage, StoreError>> + Send;
}

/// A shared store is a store (several processors over one table in tests,
/// as several Lambda instances share one in production).
impl<T: StateStore> StateStore for std::sync::Arc<T> {
    fn load_many(
        &self,
        pks: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Loaded>, StoreError>> + Send {
        (**self).load_many(pks)
    }

    fn load(&self, pk: &str) -> impl Future<Output = Result<Option<Loaded>, StoreError>> + Send {
        (**self).load(pk)
    }

    fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send {
        (**self).save(pk, state, expected)
    }

    fn with_outbox(
        &self,
        due_by: Millis,
        after: Option<&OutboxCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<OutboxPage, StoreError>> + Send {
        (**self).with_outbox(due_by, after, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_any_length_fit_dynamodb() {
        let short = state_key(crate::rules::multiple_403::META.id, "prod_403_5.5.5.5");
        assert_eq!(short, "Amazon.EKS.Audit.Multiple403#prod_403_5.5.5.5");
        let dedup = "x".repeat(5000);
        let long = state_key(crate::rules::pod_scan::META.id, &dedup);
        assert!(long.len() <= MAX_PLAIN_KEY_BYTES, "{long}");
        assert!(long.starts_with("Amazon.EKS.Audit.PodScan#h:"));
        assert_eq!(
            long,
            state_key(crate::rules::pod_scan::META.id, &dedup),
            "stable"
        );
        assert_ne!(
            long,
            state_key(crate::rules::pod_scan::META.id, &"y".repeat(5000))
        );
    }
}
