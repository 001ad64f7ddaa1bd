//! In-memory state store: `replay` and tests. Same compare-and-set contract
//! as DynamoDB, so the handler behaves identically on both. Tests can make
//! it unavailable, and script another writer into the gap between a read and
//! a write, so races are reproduced exactly, without a server or sleeps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::{Loaded, OutboxCursor, OutboxPage, SaveOutcome, StateStore, StoreError, Versioned};
use crate::time::Millis;
use crate::window::{PendingAlert, WindowState};

/// What another writer does to the items, run once just before a save.
type Interleaving = Box<dyn FnOnce(&mut HashMap<String, Versioned>) + Send>;

/// States in a map behind a mutex.
#[derive(Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, Versioned>>,
    unavailable: AtomicBool,
    interleavings: Mutex<Vec<(String, Interleaving)>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
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

    /// Runs `other` on the items just before the next save of `pk`, as if
    /// another invocation wrote it between this one's read and its write.
    pub fn before_next_save(
        &self,
        pk: &str,
        other: impl FnOnce(&mut HashMap<String, Versioned>) + Send + 'static,
    ) {
        if let Ok(mut pending) = self.interleavings.lock() {
            pending.push((pk.to_owned(), Box::new(other)));
        }
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
        let scripted = self.interleavings.lock().ok().and_then(|mut pending| {
            let at = pending.iter().position(|(k, _)| k == pk)?;
            Some(pending.remove(at).1)
        });
        if let Some(other) = scripted {
            other(&mut items);
        }
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

    async fn with_outbox(
        &self,
        due_by: Millis,
        after: Option<&OutboxCursor>,
        limit: usize,
    ) -> Result<OutboxPage, StoreError> {
        let items = self.items()?;
        let mut found: Vec<(Millis, &String, &Versioned)> = items
            .iter()
            .filter_map(|(pk, v)| Some((v.state.outbox_due()?, pk, v)))
            .filter(|(due, pk, _)| {
                *due <= due_by
                    && after.is_none_or(|a| (*due, pk.as_str()) > (a.due_ms, a.pk.as_str()))
            })
            .collect();
        found.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        found.truncate(limit);
        let next = (found.len() == limit)
            .then(|| {
                found.last().map(|(due, pk, _)| OutboxCursor {
                    due_ms: *due,
                    pk: (*pk).clone(),
                })
            })
            .flatten();
        Ok(OutboxPage {
            keys: found
                .into_iter()
                .map(|(_, pk, v)| (pk.clone(), v.clone()))
                .collect(),
            next,
        })
    }
}
