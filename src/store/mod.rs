//! Where window states and undelivered alerts live between invocations: a
//! small compare-and-set port with an outbox, a DynamoDB adapter for the
//! Lambda and an in-memory one for `replay` and tests.
//!
//! Every state write is conditional on the version that was read, so two
//! invocations racing on one key cannot both win: the loser re-reads and
//! re-applies its batch (see [`crate::handler`]). An alert is written to the
//! outbox in the same atomic write that decides it, already claimed by the
//! deciding invocation; it leaves the outbox only once published. A claim is
//! a lease: whoever holds a live one is the only one to publish, and a failed
//! publish gives it up, so the next scheduled sweep delivers the alert.

pub mod dynamodb;
pub mod memory;

use std::collections::HashMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::alert::{stable_hash, Alert};
use crate::rules::RuleId;
use crate::time::Millis;
use crate::window::WindowState;

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
        /// Its version, for the conditional overwrite.
        version: u64,
        /// What is wrong.
        reason: String,
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

/// A lease on an undelivered alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Who holds it (one value per function instance and invocation).
    pub token: String,
    /// Wall-clock time the lease ends.
    pub until_ms: Millis,
}

/// An alert decided but not yet confirmed delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outboxed {
    /// The alert.
    pub alert: Alert,
    /// Wall-clock time it was decided.
    pub since_ms: Millis,
    /// The live or expired lease, if any.
    pub claim: Option<Claim>,
}

impl Outboxed {
    /// True when nobody holds a live lease at `now_ms`.
    pub fn claimable(&self, now_ms: Millis) -> bool {
        self.claim.as_ref().is_none_or(|c| c.until_ms <= now_ms)
    }
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
    format!("{}#h:{:032x}", rule.as_str(), stable_hash(&[dedup]))
}

/// Compare-and-set storage of window states, plus the outbox.
pub trait StateStore: Send + Sync {
    /// Reads many keys (strongly consistent); absent keys are left out.
    fn load_many(
        &self,
        pks: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Loaded>, StoreError>> + Send;

    /// Reads one key (strongly consistent).
    fn load(&self, pk: &str) -> impl Future<Output = Result<Option<Loaded>, StoreError>> + Send;

    /// Writes `state` if the item is still at `expected` (`None`: must not
    /// exist yet), and in the same atomic write puts `outbox` alerts.
    fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
        outbox: &[Outboxed],
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;

    /// Up to `limit` undelivered alerts, oldest first, without scanning the
    /// states.
    fn outbox(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Outboxed>, StoreError>> + Send;

    /// Takes the lease on an alert if nobody holds a live one at `now_ms`.
    /// `false`: someone else holds it, or it was delivered meanwhile.
    fn claim(
        &self,
        alert_id: &str,
        claim: &Claim,
        now_ms: Millis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives a lease up (the publish failed), if it is still `token`'s.
    fn release(
        &self,
        alert_id: &str,
        token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes a published alert from the outbox.
    fn delivered(&self, alert_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
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
        outbox: &[Outboxed],
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send {
        (**self).save(pk, state, expected, outbox)
    }

    fn outbox(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Outboxed>, StoreError>> + Send {
        (**self).outbox(limit)
    }

    fn claim(
        &self,
        alert_id: &str,
        claim: &Claim,
        now_ms: Millis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).claim(alert_id, claim, now_ms)
    }

    fn release(
        &self,
        alert_id: &str,
        token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(alert_id, token)
    }

    fn delivered(&self, alert_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delivered(alert_id)
    }
}
