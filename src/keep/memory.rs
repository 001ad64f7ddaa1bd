//! In-memory keeper for tests: what was kept, by key, and a switch that
//! makes every write fail as S3 does when it is unreachable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use super::{KeepError, KeptRecord, RecordKeeper};

/// One kept object: its body and why it was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The invoke body.
    pub body: String,
    /// The `reason` metadata.
    pub reason: String,
    /// The `event-id` metadata.
    pub event_id: String,
}

/// Kept records in a map.
#[derive(Debug, Default)]
pub struct MemoryKeeper {
    objects: Mutex<BTreeMap<String, Kept>>,
    unavailable: AtomicBool,
}

impl MemoryKeeper {
    /// An empty keeper.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every write fail.
    pub fn set_unavailable(&self, on: bool) {
        self.unavailable.store(on, Ordering::SeqCst);
    }

    /// What was kept so far, by key.
    pub fn objects(&self) -> BTreeMap<String, Kept> {
        self.objects.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl RecordKeeper for MemoryKeeper {
    fn keep<'a>(&'a self, record: &'a KeptRecord<'a>) -> BoxFuture<'a, Result<String, KeepError>> {
        Box::pin(async move {
            let fail = |reason: &str| KeepError {
                key: record.key.clone(),
                reason: reason.into(),
            };
            if self.unavailable.load(Ordering::SeqCst) {
                return Err(fail("memory keeper set unavailable"));
            }
            let mut objects = self.objects.lock().map_err(|_| fail("lock poisoned"))?;
            objects.insert(
                record.key.clone(),
                Kept {
                    body: record.body.clone(),
                    reason: record.reason.as_str().into(),
                    event_id: record.event_id.into(),
                },
            );
            Ok(format!("memory:{}", record.key))
        })
    }
}
