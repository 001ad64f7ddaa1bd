//! In-memory state store: `replay` and tests. Same compare-and-set contract
//! as DynamoDB, so the handler behaves identically on both; tests can also
//! make it unavailable on purpose.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::{Loaded, SaveOutcome, StateStore, StoreError, Versioned};
use crate::window::{PendingAlert, WindowState};

/// States in a map behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, Versioned>>,
    unavailable: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every stored state (for tests and reports).
    pub fn snapshot(&self) -> HashMap<String, Versioned> {
        self.items.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Every undelivered alert (for tests and reports).
    pub fn undelivered(&self) -> Vec<PendingAlert> {
        self.snapshot()
            .into_values()
            .flat_map(|v| v.state.outbox)
            .collect()
    }

    /// Makes every request fail as DynamoDB does when it is unreachable.
    pub fn set_unavailable(&self, on: bool) {
        self.unavailable.store(on, Ordering::SeqCst);
    }

    fn items(&self) -> Result<MutexGuard<'_, HashMap<String, Versioned>>, StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Transient("memory store set unavailable".into()));
        }
        self.items
            .lock()
            .map_err(|_| StoreError::Transient("memory store lock poisoned".into()))
    }
}

impl StateStore for MemoryStore {
    async fn load_many(&self, pks: &[String]) -> Result<HashMap<String, Loaded>, StoreError> {
        let items = self.items()?;
        Ok(pks
            .iter()
            .filter_map(|pk| Some((pk.clone(), Loaded::Found(items.get(pk)?.clone()))))
            .collect())
    }

    async fn load(&self, pk: &str) -> Result<Option<Loaded>, StoreError> {
        Ok(self.items()?.get(pk).cloned().map(Loaded::Found))
    }

    async fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
    ) -> Result<SaveOutcome, StoreError> {
        let mut items = self.items()?;
        let current = items.get(pk).map(|v| v.version);
        if current != expected {
            return Ok(SaveOutcome::Conflict);
        }
        let version = current.unwrap_or(0) + 1;
        items.insert(
            pk.to_owned(),
            Versioned {
                state: state.clone(),
                version,
            },
        );
        Ok(SaveOutcome::Saved(version))
    }

    async fn with_outbox(&self, limit: usize) -> Result<Vec<(String, Versioned)>, StoreError> {
        let items = self.items()?;
        let mut found: Vec<(String, Versioned)> = items
            .iter()
            .filter(|(_, v)| !v.state.outbox.is_empty())
            .map(|(pk, v)| (pk.clone(), v.clone()))
            .collect();
        found.sort_by_key(|(pk, v)| (v.state.outbox_since(), pk.clone()));
        found.truncate(limit);
        Ok(found)
    }
}
