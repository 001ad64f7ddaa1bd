//! The hot-key memory of a warm instance: windows it saw alerted, so a
//! sustained scanner's next batches on the key cost no read and no write.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::time::Millis;
use crate::vocab::{Match, Severity};
use crate::window::WindowState;

/// Alerted windows a warm instance remembers (then it starts over).
pub const HOT_KEYS: usize = 4096;

/// An alerted window: its span and the severity it alerted at.
#[derive(Debug, Clone, Copy)]
struct Hot {
    start: Millis,
    end: Millis,
    alerted: Severity,
}

/// pk → the key's open window, when it has alerted and has nothing left to
/// deliver.
#[derive(Debug, Default)]
pub(super) struct HotKeys {
    map: Mutex<HashMap<String, Hot>>,
}

impl HotKeys {
    /// True when every match falls in a window this instance saw alerted at
    /// the match's severity or higher: applying them would change nothing,
    /// so nothing is read or written. Safe even if another instance moved
    /// the key on: the window's matches would still be absorbed there.
    pub(super) fn covers(&self, pk: &str, matches: &[&Match]) -> bool {
        let Ok(map) = self.map.lock() else {
            return false;
        };
        map.get(pk).is_some_and(|h| {
            matches
                .iter()
                .all(|m| h.start <= m.at_ms && m.at_ms < h.end && m.severity <= h.alerted)
        })
    }

    /// Remembers a key's open window once it has alerted and has nothing
    /// left to deliver (a key with undelivered alerts must be read, so a
    /// retry can deliver them); forgets it otherwise.
    pub(super) fn remember(&self, pk: &str, state: &WindowState) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        match state.alerted {
            Some(alerted) if state.outbox.is_empty() => {
                if map.len() >= HOT_KEYS && !map.contains_key(pk) {
                    map.clear();
                }
                map.insert(
                    pk.to_owned(),
                    Hot {
                        start: state.window_start,
                        end: state.window_end(),
                        alerted,
                    },
                );
            }
            _ => {
                map.remove(pk);
            }
        }
    }
}
