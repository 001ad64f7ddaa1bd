//! In-memory state store: `replay` and tests. Same compare-and-set and
//! outbox contract as DynamoDB, so the handler behaves identically on both;
//! tests can also make it fail on purpose.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::{Claim, Loaded, Outboxed, SaveOutcome, StateStore, StoreError, Versioned};
use crate::time::Millis;
use crate::window::WindowState;

#[derive(Debug, Default)]
struct Items {
    states: HashMap<String, Versioned>,
    outbox: BTreeMap<String, Outboxed>,
}

/// States and outbox in maps behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<Items>,
    unavailable: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every stored state (for tests and reports).
    pub fn snapshot(&self) -> HashMap<String, Versioned> {
        self.items
            .lock()
            .map(|m| m.states.clone())
            .unwrap_or_default()
    }

    /// Every undelivered alert (for tests and reports).
    pub fn undelivered(&self) -> Vec<Outboxed> {
        self.items
            .lock()
            .map(|m| m.outbox.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Makes every request fail as DynamoDB does when it is unreachable.
    pub fn set_unavailable(&self, on: bool) {
        self.unavailable.store(on, Ordering::SeqCst);
    }

    fn items(&self) -> Result<MutexGuard<'_, Items>, StoreError> {
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
            .filter_map(|pk| {
                let v = items.states.get(pk)?;
                Some((pk.clone(), Loaded::Found(v.clone())))
            })
            .collect())
    }

    async fn load(&self, pk: &str) -> Result<Option<Loaded>, StoreError> {
        let items = self.items()?;
        Ok(items.states.get(pk).cloned().map(Loaded::Found))
    }

    async fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
        outbox: &[Outboxed],
    ) -> Result<SaveOutcome, StoreError> {
        let mut items = self.items()?;
        let current = items.states.get(pk).map(|v| v.version);
        if current != expected {
            return Ok(SaveOutcome::Conflict);
        }
        let version = current.unwrap_or(0) + 1;
        items.states.insert(
            pk.to_owned(),
            Versioned {
                state: state.clone(),
                version,
            },
        );
        for entry in outbox {
            items
                .outbox
                .insert(entry.alert.alert_id.clone(), entry.clone());
        }
        Ok(SaveOutcome::Saved(version))
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<Outboxed>, StoreError> {
        let items = self.items()?;
        let mut all: Vec<Outboxed> = items.outbox.values().cloned().collect();
        all.sort_by_key(|o| o.since_ms);
        all.truncate(limit);
        Ok(all)
    }

    async fn claim(
        &self,
        alert_id: &str,
        claim: &Claim,
        now_ms: Millis,
    ) -> Result<bool, StoreError> {
        let mut items = self.items()?;
        match items.outbox.get_mut(alert_id) {
            Some(entry) if entry.claimable(now_ms) => {
                entry.claim = Some(claim.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, alert_id: &str, token: &str) -> Result<(), StoreError> {
        let mut items = self.items()?;
        if let Some(entry) = items.outbox.get_mut(alert_id) {
            if entry.claim.as_ref().is_some_and(|c| c.token == token) {
                entry.claim = None;
            }
        }
        Ok(())
    }

    async fn delivered(&self, alert_id: &str) -> Result<(), StoreError> {
        self.items()?.outbox.remove(alert_id);
        Ok(())
    }
}
