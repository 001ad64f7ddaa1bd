//! The outbox of a key: alerts decided but not yet confirmed delivered,
//! each with the claim of the invocation publishing it, kept in the same
//! record as the window that decided them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::WindowState;
use crate::time::Millis;
use crate::vocab::Alert;

/// Undelivered alerts a key keeps, and their bytes as JSON. Past the bytes,
/// the oldest alerts are kept without their request sample and summary;
/// past both, the oldest is dropped from the record and written whole to the
/// function's log. Only an SNS outage long enough for one key to raise many
/// alerts gets there (see the README).
pub const MAX_PENDING_ALERTS: usize = 32;

/// See [`MAX_PENDING_ALERTS`]; with the window and the remembered batches,
/// a record stays under [`MAX_RECORD_BYTES`](super::MAX_RECORD_BYTES).
pub const MAX_OUTBOX_BYTES: usize = 24 * 1024;

/// What an outbox can still take (see [`WindowState::room`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    bytes: usize,
    alerts: usize,
}

impl Room {
    /// Whether `alert` fits in what is left; if so, the room it takes is
    /// counted as taken.
    pub fn take(&mut self, alert: &Alert) -> bool {
        let size = crate::bounded::json_size(alert);
        if self.alerts == 0 || size > self.bytes {
            return false;
        }
        self.alerts -= 1;
        self.bytes -= size;
        true
    }
}

/// A lease on an undelivered alert: whoever holds a live one is the only
/// one to publish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Who holds it (one value per function instance and invocation).
    pub token: String,
    /// Wall-clock time the lease ends.
    pub until_ms: Millis,
}

/// An alert decided but not yet confirmed delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAlert {
    /// The alert, shared: a key's state is copied for every write, and
    /// the alerts claimed from it go on to be published.
    pub alert: Arc<Alert>,
    /// Wall-clock time it was decided.
    pub since_ms: Millis,
    /// The live or expired lease, if any.
    #[serde(default)]
    pub claim: Option<Claim>,
}

impl PendingAlert {
    /// An alert decided at `now_ms`, nobody's yet.
    pub fn new(alert: Alert, now_ms: Millis) -> Self {
        Self {
            alert: Arc::new(alert),
            since_ms: now_ms,
            claim: None,
        }
    }

    /// True when nobody holds a live lease at `now_ms`.
    pub fn claimable(&self, now_ms: Millis) -> bool {
        self.claim.as_ref().is_none_or(|c| c.until_ms <= now_ms)
    }

    /// When it is due for delivery: at once, or when the lease on it ends.
    pub fn due_ms(&self) -> Millis {
        match &self.claim {
            Some(c) => c.until_ms.max(self.since_ms),
            None => self.since_ms,
        }
    }
}

impl WindowState {
    /// A record that only holds undelivered alerts (an alert that belongs to
    /// no window, such as a tamper alert, or the alerts read out of an
    /// unreadable record), with no window yet (`window_ms` 0: the next
    /// match opens its first); `None` without alerts.
    pub fn holding(outbox: Vec<PendingAlert>, now_ms: Millis) -> Option<Self> {
        let first = Arc::clone(&outbox.first()?.alert);
        Some(Self {
            outbox,
            source_ip: first.source_ip.clone(),
            cluster: first.cluster.clone(),
            log_group: first.log_group.clone(),
            account: first.account.clone(),
            title: first.title.clone(),
            severity: first.severity,
            alerted: Some(first.severity),
            ..Self::empty(first.rule_id, &first.dedup, now_ms)
        })
    }

    /// A record of `rule` and `dedup` with no window and nothing in it.
    pub fn empty(rule: crate::vocab::RuleId, dedup: &str, now_ms: Millis) -> Self {
        Self {
            rule,
            dedup: dedup.to_owned(),
            window_start: now_ms,
            window_ms: 0,
            count: 0,
            first_seen: now_ms,
            last_seen: now_ms,
            severity: crate::vocab::Severity::Info,
            alerted: None,
            source_ip: String::new(),
            cluster: String::new(),
            log_group: String::new(),
            account: String::new(),
            title: String::new(),
            sample: Default::default(),
            escalation_sample: None,
            tallies: Default::default(),
            overflow: 0,
            fanout_dropped: 0,
            past: Vec::new(),
            late_before: 0,
            applied: Vec::new(),
            outbox: Vec::new(),
            updated_ms: now_ms,
            watch: Default::default(),
            step_at: None,
        }
    }

    /// Queues newly decided alerts for delivery, within the outbox budget
    /// (see [`MAX_PENDING_ALERTS`]). Returns the alerts pushed out of a full
    /// outbox (oldest first), for the caller to log.
    pub fn enqueue<A: Into<Arc<Alert>>>(
        &mut self,
        alerts: impl IntoIterator<Item = A>,
        now_ms: Millis,
    ) -> Vec<Alert> {
        for alert in alerts {
            self.outbox.push(PendingAlert {
                alert: alert.into(),
                since_ms: now_ms,
                claim: None,
            });
        }
        let size = |p: &PendingAlert| crate::bounded::json_size(&*p.alert);
        let mut bytes: usize = self.outbox.iter().map(size).sum();
        // First shrink the oldest alerts, then drop them.
        for p in &mut self.outbox {
            if bytes <= MAX_OUTBOX_BYTES {
                break;
            }
            let before = size(p);
            p.alert = Arc::new(p.alert.minimal());
            bytes = bytes - before + size(p);
        }
        let mut dropped = Vec::new();
        while !self.outbox.is_empty()
            && (bytes > MAX_OUTBOX_BYTES || self.outbox.len() > MAX_PENDING_ALERTS)
        {
            let p = self.outbox.remove(0);
            bytes -= size(&p);
            dropped.push(Arc::unwrap_or_clone(p.alert));
        }
        dropped
    }

    /// What the outbox can still take without shrinking or pushing out an
    /// alert it holds.
    pub fn room(&self) -> Room {
        let held: usize = self
            .outbox
            .iter()
            .map(|p| crate::bounded::json_size(&*p.alert))
            .sum();
        Room {
            bytes: MAX_OUTBOX_BYTES.saturating_sub(held),
            alerts: MAX_PENDING_ALERTS.saturating_sub(self.outbox.len()),
        }
    }

    /// Takes the lease on every undelivered alert nobody holds at `now_ms`
    /// and returns them.
    pub fn claim_due(&mut self, claim: &Claim, now_ms: Millis) -> Vec<Arc<Alert>> {
        self.outbox
            .iter_mut()
            .filter(|p| p.claimable(now_ms))
            .map(|p| {
                p.claim = Some(claim.clone());
                Arc::clone(&p.alert)
            })
            .collect()
    }

    /// Records the outcome of publishing: `delivered` alerts leave the
    /// outbox; `token`'s claims on the others are given up. Returns whether
    /// anything changed.
    pub fn settle(&mut self, delivered: &[String], token: &str) -> bool {
        let before = self.outbox.len();
        self.outbox
            .retain(|p| !delivered.contains(&p.alert.alert_id));
        let mut changed = self.outbox.len() != before;
        for p in &mut self.outbox {
            if p.claim.as_ref().is_some_and(|c| c.token == token) {
                p.claim = None;
                changed = true;
            }
        }
        changed
    }

    /// Wall-clock time the oldest undelivered alert was decided.
    pub fn outbox_since(&self) -> Option<Millis> {
        self.outbox.iter().map(|p| p.since_ms).min()
    }

    /// When the first undelivered alert is due (see [`PendingAlert::due_ms`]):
    /// what the sweep's index orders keys by.
    pub fn outbox_due(&self) -> Option<Millis> {
        self.outbox.iter().map(PendingAlert::due_ms).min()
    }
}

/// The undelivered alerts that can still be read out of a stored state
/// that no longer reads as a whole.
pub fn salvage_outbox(json: &str) -> Vec<PendingAlert> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    value
        .get("outbox")
        .and_then(serde_json::Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|p| serde_json::from_value(p.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}
