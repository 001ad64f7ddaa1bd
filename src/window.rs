//! Windows, thresholds and dedup: a pure state machine per (rule, dedup key).
//!
//! One [`WindowState`] is what a key remembers, in three parts: the open
//! window (its count, aggregates, and whether it alerted and at what
//! severity), the recent batches already applied (so a redelivered batch
//! changes nothing), and the outbox of alerts decided but not yet delivered,
//! each with the claim of the invocation publishing it. All three live in one
//! record, written atomically, so deciding an alert and queueing it for
//! delivery can never be separated.
//!
//! Semantics, in event time: a match at `t` joins the open window if
//! `start <= t < start + period`; a match at or after the end opens a new
//! window at `t`. A match before the start joins too when it is at most
//! [`LATE_TOLERANCE_MS`] earlier and after the previous window's end (log
//! streams of one cluster arrive out of order by seconds); any older match is
//! *late* and is not counted: it belongs to a window that is gone, and
//! counting it in the new one would let a retry hours later add to it. A
//! window alerts once, when
//! its count reaches the threshold; if a more severe match arrives after that
//! (a pod scan that succeeded after refused ones), it alerts once more at the
//! higher severity. Once a window has alerted at the highest severity its
//! rule can reach it is *saturated*: further matches in it change nothing,
//! so a sustained scanner costs no writes. Time only ever comes from the
//! matches and the caller: no clock is read here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Millis;
use crate::vocab::{Alert, Match, RuleId, Sample, Severity, WindowParams};

/// Distinct values kept per summary field; beyond it new values are counted
/// in `overflow` only, which bounds the record size.
pub const MAX_DISTINCT_VALUES: usize = 20;

/// Bytes (as JSON) of distinct values kept per summary field (values are
/// capped at 256 bytes each, so this is what bounds a field of long user
/// agents).
pub const MAX_TALLY_BYTES: usize = 1024;

/// How long (wall clock) a batch id is remembered. Lambda retries an
/// asynchronous event for at most 6 hours, plus the 15-minute longest timeout.
pub const BATCH_MEMORY_MS: Millis = (6 * 60 + 30) * 60 * 1000;

/// Hard cap on remembered batch ids per key (bounds the record size). Only
/// batches that changed the key are remembered, at most a threshold's worth
/// per window, so this covers 6 hours of any key with the default settings.
pub const MAX_REMEMBERED_BATCHES: usize = 256;

/// How much earlier than the open window's start a match may be and still
/// join it (different API servers' log streams arrive out of order).
pub const LATE_TOLERANCE_MS: Millis = 5 * 60 * 1000;

/// Undelivered alerts a key keeps, and their bytes as JSON. Past the bytes,
/// the oldest alerts are kept without their request sample and summary;
/// past both, the oldest is dropped from the record and written whole to the
/// function's log. Only an SNS outage long enough for one key to raise many
/// alerts gets there (see the README).
pub const MAX_PENDING_ALERTS: usize = 32;

/// See [`MAX_PENDING_ALERTS`]; with the window and the remembered batches,
/// a record stays under [`MAX_RECORD_BYTES`].
pub const MAX_OUTBOX_BYTES: usize = 24 * 1024;

/// The most a key's record can take as JSON, whatever the requests and SNS
/// do (checked by a test with the worst inputs).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Characters of a batch id kept in the record (64 bits).
pub const REMEMBERED_ID_CHARS: usize = 16;
/// The batch whose matches are being applied.
#[derive(Debug, Clone, Copy)]
pub struct BatchInfo<'a> {
    /// Deterministic id of the batch (from its log event ids).
    pub id: &'a str,
    /// Cluster label.
    pub cluster: &'a str,
    /// CloudWatch log group.
    pub log_group: &'a str,
    /// AWS account that owns the log group.
    pub account: &'a str,
    /// Wall-clock time of the invocation (ages remembered batches).
    pub now_ms: Millis,
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
    /// The alert.
    pub alert: Alert,
    /// Wall-clock time it was decided.
    pub since_ms: Millis,
    /// The live or expired lease, if any.
    #[serde(default)]
    pub claim: Option<Claim>,
}

impl PendingAlert {
    /// True when nobody holds a live lease at `now_ms`.
    pub fn claimable(&self, now_ms: Millis) -> bool {
        self.claim.as_ref().is_none_or(|c| c.until_ms <= now_ms)
    }
}

/// A batch id remembered by a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedBatch {
    /// Batch id (its first [`REMEMBERED_ID_CHARS`] characters).
    pub id: String,
    /// Wall-clock time it was applied (stored as `at`).
    #[serde(rename = "at")]
    pub at_ms: Millis,
}

/// Everything known about one (rule, dedup key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    /// The rule.
    pub rule: RuleId,
    /// The dedup key.
    pub dedup: String,
    /// Start of the open window (time of its first match).
    pub window_start: Millis,
    /// Length of the open window, as configured when it opened.
    pub window_ms: Millis,
    /// Matches in the open window.
    pub count: u64,
    /// Earliest match time in the window.
    pub first_seen: Millis,
    /// Latest match time in the window.
    pub last_seen: Millis,
    /// Highest severity of the window's matches.
    pub severity: Severity,
    /// Severity of the last alert the window raised, if any.
    pub alerted: Option<Severity>,
    /// Source IP of the key.
    pub source_ip: String,
    /// Cluster label.
    pub cluster: String,
    /// Log group of the first match.
    pub log_group: String,
    /// Account of the first match.
    pub account: String,
    /// Title of the window's first match.
    pub title: String,
    /// The window's first matching event.
    pub sample: Sample,
    /// The first event that raised the window's severity above its first
    /// match's (what an escalation alert shows).
    #[serde(default)]
    pub escalation_sample: Option<Sample>,
    /// Summary tallies: field → value → count.
    pub tallies: BTreeMap<String, BTreeMap<String, u64>>,
    /// Values not tallied because a field had too many distinct values.
    pub overflow: u64,
    /// Addresses or groups of the window's events that got no key of their
    /// own (bounded fan-out).
    #[serde(default)]
    pub fanout_dropped: u64,
    /// End of the previous window: matches before it belong to a window
    /// that is gone.
    #[serde(default)]
    pub closed_until: Millis,
    /// Recently applied batches, oldest first.
    pub applied: Vec<AppliedBatch>,
    /// Alerts decided but not yet delivered, oldest first.
    #[serde(default)]
    pub outbox: Vec<PendingAlert>,
    /// Wall-clock time of the last change.
    #[serde(default)]
    pub updated_ms: Millis,
}

/// A window owes an alert: what the alert is rendered from, with the
/// window as it stands at that match (see [`crate::alert::Alert::render`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The alert's severity.
    pub severity: Severity,
    /// True for a window's second alert, at a higher severity.
    pub escalation: bool,
    /// The threshold the window reached.
    pub threshold: u64,
}

/// What applying a batch did to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The batch had been applied before: nothing to store.
    Duplicate,
    /// Every match was late or fell in a saturated window: nothing to store.
    Unchanged,
    /// The state changed and must be stored (with the alerts it raised).
    Changed,
}

/// The result of applying a batch to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The new state.
    pub state: WindowState,
    /// Alerts this batch raised.
    pub alerts: Vec<Alert>,
    /// Whether anything is to be stored.
    pub outcome: Outcome,
    /// Matches older than the open window, not counted.
    pub late: u64,
}

impl WindowState {
    fn open(m: &Match, params: WindowParams, batch: &BatchInfo<'_>) -> Self {
        Self {
            rule: m.rule,
            dedup: m.dedup.clone(),
            window_start: m.at_ms,
            window_ms: params.window_ms,
            count: 0,
            first_seen: m.at_ms,
            last_seen: m.at_ms,
            severity: m.severity,
            alerted: None,
            source_ip: m.source_ip.clone(),
            cluster: crate::bounded::cap(batch.cluster),
            log_group: crate::bounded::cap(batch.log_group),
            account: crate::bounded::cap(batch.account),
            title: m.event.title.clone(),
            sample: m.event.sample.clone(),
            escalation_sample: None,
            tallies: BTreeMap::new(),
            overflow: 0,
            fanout_dropped: 0,
            closed_until: 0,
            applied: Vec::new(),
            outbox: Vec::new(),
            updated_ms: batch.now_ms,
        }
    }

    /// Start a new window at `m`, keeping what outlives windows.
    fn reopen(&mut self, m: &Match, params: WindowParams, batch: &BatchInfo<'_>) {
        let applied = std::mem::take(&mut self.applied);
        let outbox = std::mem::take(&mut self.outbox);
        let closed_until = self.window_end();
        *self = Self::open(m, params, batch);
        self.applied = applied;
        self.outbox = outbox;
        self.closed_until = closed_until;
    }

    /// Queues newly decided alerts for delivery, within the outbox budget
    /// (see [`MAX_PENDING_ALERTS`]). Returns the alerts pushed out of a full
    /// outbox (oldest first), for the caller to log.
    pub fn enqueue(&mut self, alerts: &[Alert], now_ms: Millis) -> Vec<Alert> {
        for alert in alerts {
            self.outbox.push(PendingAlert {
                alert: alert.clone(),
                since_ms: now_ms,
                claim: None,
            });
        }
        let size = |p: &PendingAlert| p.alert.to_json().len();
        let mut bytes: usize = self.outbox.iter().map(size).sum();
        // First shrink the oldest alerts, then drop them.
        for p in &mut self.outbox {
            if bytes <= MAX_OUTBOX_BYTES {
                break;
            }
            let before = size(p);
            p.alert = p.alert.minimal();
            bytes = bytes - before + size(p);
        }
        let mut dropped = Vec::new();
        while !self.outbox.is_empty()
            && (bytes > MAX_OUTBOX_BYTES || self.outbox.len() > MAX_PENDING_ALERTS)
        {
            let p = self.outbox.remove(0);
            bytes -= size(&p);
            dropped.push(p.alert);
        }
        dropped
    }

    /// Takes the lease on every undelivered alert nobody holds at `now_ms`
    /// and returns them.
    pub fn claim_due(&mut self, claim: &Claim, now_ms: Millis) -> Vec<Alert> {
        self.outbox
            .iter_mut()
            .filter(|p| p.claimable(now_ms))
            .map(|p| {
                p.claim = Some(claim.clone());
                p.alert.clone()
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

    /// True when a match at `at_ms` is too old for the open window.
    pub fn is_late(&self, at_ms: Millis) -> bool {
        at_ms < self.window_start
            && (at_ms < self.window_start.saturating_sub(LATE_TOLERANCE_MS)
                || at_ms < self.closed_until)
    }

    /// True once the window alerted at the highest severity its rule can
    /// give: nothing in it can change what is or will be published.
    pub fn saturated(&self, params: WindowParams) -> bool {
        self.alerted.is_some_and(|s| s >= params.max_severity)
    }

    /// End of the open window.
    pub fn window_end(&self) -> Millis {
        self.window_start.saturating_add(self.window_ms)
    }

    /// True when the batch was applied to this key before.
    pub fn has_applied(&self, batch_id: &str) -> bool {
        let id = remembered_id(batch_id);
        self.applied.iter().any(|b| b.id == id)
    }

    fn remember(&mut self, batch: &BatchInfo<'_>) {
        self.applied.push(AppliedBatch {
            id: remembered_id(batch.id).to_owned(),
            at_ms: batch.now_ms,
        });
        let oldest = batch.now_ms.saturating_sub(BATCH_MEMORY_MS);
        self.applied.retain(|b| b.at_ms >= oldest);
        if self.applied.len() > MAX_REMEMBERED_BATCHES {
            let excess = self.applied.len() - MAX_REMEMBERED_BATCHES;
            self.applied.drain(..excess);
        }
    }

    fn add(&mut self, m: &Match) {
        self.count += 1;
        self.first_seen = self.first_seen.min(m.at_ms);
        self.last_seen = self.last_seen.max(m.at_ms);
        self.fanout_dropped += m.event.dropped;
        if m.severity > self.severity {
            self.severity = m.severity;
            self.escalation_sample = Some(m.event.sample.clone());
        }
        for (field, value) in m.event.facts.iter().chain(&m.facts) {
            let map = self.tallies.entry((*field).to_owned()).or_default();
            if !tally(map, value, MAX_DISTINCT_VALUES, MAX_TALLY_BYTES) {
                self.overflow += 1;
            }
        }
    }
}

/// The part of a batch id a key remembers.
fn remembered_id(id: &str) -> &str {
    id.get(..REMEMBERED_ID_CHARS).unwrap_or(id)
}

/// Applies one batch's matches for one key to its state.
///
/// `matches` must all share the rule and dedup key; they are applied in
/// timestamp order (ties keep their order). Returns the new state, the
/// alerts raised and whether anything is to be stored; `None` without
/// matches.
pub fn apply_batch(
    state: Option<WindowState>,
    params: WindowParams,
    batch: &BatchInfo<'_>,
    matches: &[&Match],
    render: &dyn Fn(&WindowState, Decision) -> Alert,
) -> Option<Applied> {
    let mut ordered: Vec<&Match> = matches.to_vec();
    ordered.sort_by_key(|m| m.at_ms);
    let first = *ordered.first()?;
    if let Some(s) = &state {
        if s.has_applied(batch.id) {
            return Some(Applied {
                state: s.clone(),
                alerts: Vec::new(),
                outcome: Outcome::Duplicate,
                late: 0,
            });
        }
    }
    let mut changed = state.is_none();
    let mut st = state.unwrap_or_else(|| WindowState::open(first, params, batch));
    let mut alerts = Vec::new();
    let mut late = 0;
    for m in ordered {
        if st.is_late(m.at_ms) {
            late += 1;
            continue;
        }
        if m.at_ms >= st.window_end() {
            st.reopen(m, params, batch);
            changed = true;
        }
        if st.saturated(params) {
            continue;
        }
        st.add(m);
        changed = true;
        if let Some(decision) = decide(&st, params) {
            st.alerted = Some(decision.severity);
            alerts.push(render(&st, decision));
        }
    }
    let outcome = if changed {
        st.remember(batch);
        st.updated_ms = batch.now_ms;
        Outcome::Changed
    } else {
        Outcome::Unchanged
    };
    Some(Applied {
        state: st,
        alerts,
        outcome,
        late,
    })
}

/// The alert a window owes now, if any.
fn decide(st: &WindowState, params: WindowParams) -> Option<Decision> {
    if st.count < params.threshold {
        return None;
    }
    let escalation = match st.alerted {
        None => false,
        Some(prev) if st.severity > prev => true,
        Some(_) => return None,
    };
    Some(Decision {
        severity: st.severity,
        escalation,
        threshold: params.threshold,
    })
}

/// Adds `value` to a bounded distinct-value tally: at most `max_distinct`
/// values and `max_bytes` of them as JSON.
fn tally(
    map: &mut BTreeMap<String, u64>,
    value: &str,
    max_distinct: usize,
    max_bytes: usize,
) -> bool {
    if let Some(n) = map.get_mut(value) {
        *n += 1;
        true
    } else if map.len() < max_distinct
        && map
            .keys()
            .map(|k| crate::bounded::json_len(k))
            .sum::<usize>()
            + crate::bounded::json_len(value)
            <= max_bytes
    {
        map.insert(value.to_owned(), 1);
        true
    } else {
        false
    }
}
