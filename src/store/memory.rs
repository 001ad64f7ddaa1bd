//! In-memory state store: `replay` and tests. Same compare-and-set contract
//! as DynamoDB, so the handler behaves identically on both.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{SaveOutcome, StateStore, StoreError, Versioned};
use crate::window::WindowState;

/// States in a map behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, Versioned>>,
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
}

impl StateStore for MemoryStore {
    async fn load(&self, pk: &str) -> Result<Option<Versioned>, StoreError> {
        let items = self
            .items
            .lock()
            .map_err(|_| StoreError::Request("memory store lock poisoned".into()))?;
        Ok(items.get(pk).cloned())
    }

    async fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
    ) -> Result<SaveOutcome, StoreError> {
        let mut items = self
            .items
            .lock()
            .map_err(|_| StoreError::Request("memory store lock poisoned".into()))?;
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
}
