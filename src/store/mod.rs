//! Where window states live between invocations: a small compare-and-set
//! port, with a DynamoDB adapter for the Lambda and an in-memory one for
//! `replay` and tests.
//!
//! Every write is conditional on the version that was read, so two
//! invocations racing on one key cannot both win: the loser re-reads and
//! re-applies its batch (see [`crate::handler`]).

pub mod dynamodb;
pub mod memory;

use std::future::Future;

use crate::rules::RuleId;
use crate::window::WindowState;

/// A window state and the version it was stored at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The state.
    pub state: WindowState,
    /// Monotonic version, starting at 1.
    pub version: u64,
}

/// Outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Written; the item is now at this version.
    Saved(u64),
    /// Someone else wrote first: re-read and retry.
    Conflict,
}

/// The store could not be reached or answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A request failed (network, throttling past the SDK's retries,
    /// permissions, missing table...).
    #[error("state store request failed: {0}")]
    Request(String),
    /// A stored item could not be read back.
    #[error("stored state for {pk} is corrupt: {reason}")]
    Corrupt {
        /// The item's key.
        pk: String,
        /// What is wrong.
        reason: String,
    },
    /// The same key kept changing under us.
    #[error("gave up on {pk} after {attempts} conflicting writes")]
    TooManyConflicts {
        /// The item's key.
        pk: String,
        /// Attempts made.
        attempts: u32,
    },
}

/// The partition key of a (rule, dedup key).
pub fn state_key(rule: RuleId, dedup: &str) -> String {
    format!("{}#{}", rule.as_str(), dedup)
}

/// Compare-and-set storage of window states.
pub trait StateStore: Send + Sync {
    /// Reads a key's state, if any.
    fn load(&self, pk: &str) -> impl Future<Output = Result<Option<Versioned>, StoreError>> + Send;

    /// Writes `state` if the item is still at `expected` (`None`: must not
    /// exist yet).
    fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;
}
