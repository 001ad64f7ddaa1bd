//! A state store for tests: the in-memory store behind a wrapper that
//! counts requests (what DynamoDB would bill), can refuse chosen keys for
//! good, as DynamoDB refuses an item it can never accept, and can throttle
//! one save of a key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use eks_audit_detector::store::memory::MemoryStore;
use eks_audit_detector::store::{
    Loaded, OutboxCursor, OutboxPage, SaveOutcome, StateStore, StoreError,
};
use eks_audit_detector::window::WindowState;

/// [`MemoryStore`] with request counters and a poisoned-key predicate.
#[derive(Default)]
pub struct CountingStore {
    pub inner: MemoryStore,
    pub requests: AtomicU64,
    /// Saves of a key containing this text fail permanently.
    pub refuse: Option<String>,
    /// The n-th save (from 1) of this key fails once, as DynamoDB fails a
    /// throttled request.
    pub throttle: Option<(String, u64)>,
    /// Saves of the throttled key so far.
    pub throttled_saves: AtomicU64,
}

impl CountingStore {
    pub fn refusing(text: &str) -> Self {
        Self {
            refuse: Some(text.to_owned()),
            ..Self::default()
        }
    }

    pub fn throttling(pk: &str, nth_save: u64) -> Self {
        Self {
            throttle: Some((pk.to_owned(), nth_save)),
            ..Self::default()
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }
}

impl StateStore for CountingStore {
    async fn load_many(&self, pks: &[String]) -> Result<HashMap<String, Loaded>, StoreError> {
        self.requests
            .fetch_add(pks.len().div_ceil(100) as u64, Ordering::SeqCst);
        self.inner.load_many(pks).await
    }

    async fn load(&self, pk: &str) -> Result<Option<Loaded>, StoreError> {
        self.count();
        self.inner.load(pk).await
    }

    async fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
    ) -> Result<SaveOutcome, StoreError> {
        self.count();
        if self.refuse.as_deref().is_some_and(|r| pk.contains(r)) {
            return Err(StoreError::Permanent {
                pk: pk.to_owned(),
                reason: "ValidationException: Item size has exceeded the maximum allowed size"
                    .into(),
            });
        }
        if let Some((key, nth)) = &self.throttle {
            if key == pk && self.throttled_saves.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
                return Err(StoreError::Transient("ThrottlingException (test)".into()));
            }
        }
        self.inner.save(pk, state, expected).await
    }

    async fn with_outbox(
        &self,
        due_by: i64,
        after: Option<&OutboxCursor>,
        limit: usize,
    ) -> Result<OutboxPage, StoreError> {
        self.count();
        self.inner.with_outbox(due_by, after, limit).await
    }
}
