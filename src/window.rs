//! Windows, thresholds and dedup: a pure state machine per (rule, dedup key).
//!
//! One [`WindowState`] is the whole memory of a key: the open window, its
//! count and aggregates, whether it alerted and at what severity, the alerts
//! decided but not yet delivered, and the recent batches already applied (so
//! a redelivered batch changes nothing). It serializes to one small record,
//! which is what the state store keeps.
//!
//! Semantics: a match at `t` joins the open window if `t < start + period`,
//! otherwise it opens a new window at `t`. A late match (`t < start`) joins
//! the open window. A window alerts once, when its count reaches the
//! threshold; if a more severe match arrives after that (a pod scan that
//! succeeded after refused ones), it alerts once more at the higher severity.
//! Time only ever comes from the matches: no clock is read here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::rules::{tally, Match, RuleId, Sample, Severity};
use crate::time::Millis;

/// Distinct values kept per summary field; beyond it new values are counted
/// in `overflow` only, which bounds the record size.
pub const MAX_DISTINCT_VALUES: usize = 20;

/// How long a batch id is remembered, measured in event time from the newest
/// batch applied to the key. Lambda retries an asynchronous event for at most
/// 6 hours, so a day covers every redelivery.
pub const BATCH_MEMORY_MS: Millis = 24 * 3600 * 1000;

/// Hard cap on remembered batch ids per key (bounds the record size).
pub const MAX_REMEMBERED_BATCHES: usize = 1000;

/// After this long (wall clock) an undelivered alert is delivered by whichever
/// invocation touches its key next. Before that only the invocation of the
/// batch that raised it (or Lambda's retry of that batch) delivers it, so two
/// concurrent invocations never both publish one alert. 15 minutes is
/// Lambda's longest timeout: the invocation that raised it has surely ended.
pub const PENDING_GRACE_MS: Millis = 15 * 60 * 1000;

/// A rule's window settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowParams {
    /// Matches in one window that raise the alert.
    pub threshold: u64,
    /// Window length in ms.
    pub window_ms: Millis,
}

/// The batch whose matches are being applied.
#[derive(Debug, Clone, Copy)]
pub struct BatchInfo<'a> {
    /// Deterministic id of the batch (from its log event ids).
    pub id: &'a str,
    /// Newest event time in the batch.
    pub at_ms: Millis,
    /// Cluster label.
    pub cluster: &'a str,
    /// CloudWatch log group.
    pub log_group: &'a str,
    /// AWS account that owns the log group.
    pub account: &'a str,
    /// Wall-clock time of the invocation (only used to age pending alerts).
    pub now_ms: Millis,
}

/// An alert decided but not yet confirmed delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAlert {
    /// The alert.
    pub alert: Alert,
    /// The batch that raised it.
    pub batch: String,
    /// Wall-clock time it was raised.
    pub since_ms: Millis,
}

/// A batch id remembered by a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedBatch {
    /// Batch id.
    pub id: String,
    /// Newest event time of that batch.
    pub at: Millis,
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
    /// Recently applied batches, oldest first.
    pub applied: Vec<AppliedBatch>,
    /// Alerts decided but not yet confirmed delivered.
    pub pending: Vec<PendingAlert>,
}

/// The result of applying a batch to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The new state.
    pub state: WindowState,
    /// Alerts this batch raised (also appended to `state.pending`).
    pub alerts: Vec<Alert>,
    /// True when the batch had been applied before: nothing changed.
    pub duplicate: bool,
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
            cluster: batch.cluster.to_owned(),
            log_group: batch.log_group.to_owned(),
            account: batch.account.to_owned(),
            title: m.title.clone(),
            sample: m.sample.clone(),
            escalation_sample: None,
            tallies: BTreeMap::new(),
            overflow: 0,
            applied: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Start a new window at `m`, keeping what outlives windows.
    fn reopen(&mut self, m: &Match, params: WindowParams, batch: &BatchInfo<'_>) {
        let applied = std::mem::take(&mut self.applied);
        let pending = std::mem::take(&mut self.pending);
        *self = Self::open(m, params, batch);
        self.applied = applied;
        self.pending = pending;
    }

    /// End of the open window.
    pub fn window_end(&self) -> Millis {
        self.window_start.saturating_add(self.window_ms)
    }

    /// True when the batch was applied to this key before.
    pub fn has_applied(&self, batch_id: &str) -> bool {
        self.applied.iter().any(|b| b.id == batch_id)
    }

    fn remember(&mut self, batch: &BatchInfo<'_>) {
        self.applied.push(AppliedBatch {
            id: batch.id.to_owned(),
            at: batch.at_ms,
        });
        let newest = self
            .applied
            .iter()
            .map(|b| b.at)
            .max()
            .unwrap_or(batch.at_ms);
        self.applied
            .retain(|b| b.at >= newest.saturating_sub(BATCH_MEMORY_MS));
        if self.applied.len() > MAX_REMEMBERED_BATCHES {
            let excess = self.applied.len() - MAX_REMEMBERED_BATCHES;
            self.applied.drain(..excess);
        }
    }

    fn add(&mut self, m: &Match) {
        self.count += 1;
        self.first_seen = self.first_seen.min(m.at_ms);
        self.last_seen = self.last_seen.max(m.at_ms);
        if m.severity > self.severity {
            self.severity = m.severity;
            self.escalation_sample = Some(m.sample.clone());
        }
        for (field, value) in &m.facts {
            let map = self.tallies.entry((*field).to_owned()).or_default();
            if !tally(map, value, MAX_DISTINCT_VALUES) {
                self.overflow += 1;
            }
        }
    }

    /// Removes delivered alerts from `pending`.
    pub fn mark_sent(&mut self, alert_ids: &[String]) {
        self.pending
            .retain(|p| !alert_ids.contains(&p.alert.alert_id));
    }

    /// The pending alerts this invocation should deliver: those raised by its
    /// own batch (first attempt or Lambda's retry of it), and those left
    /// undelivered for longer than [`PENDING_GRACE_MS`].
    pub fn deliverable(&self, batch_id: &str, now_ms: Millis) -> Vec<Alert> {
        self.pending
            .iter()
            .filter(|p| {
                p.batch == batch_id || now_ms.saturating_sub(p.since_ms) >= PENDING_GRACE_MS
            })
            .map(|p| p.alert.clone())
            .collect()
    }
}

/// Applies one batch's matches for one key to its state.
///
/// `matches` must all share the rule and dedup key; they are applied in
/// timestamp order (ties keep their order). Returns the new state and the
/// alerts raised; a batch that was already applied returns the state as it
/// was, with `duplicate` set.
pub fn apply_batch(
    state: Option<WindowState>,
    params: WindowParams,
    batch: &BatchInfo<'_>,
    matches: &[&Match],
) -> Option<Applied> {
    let mut ordered: Vec<&Match> = matches.to_vec();
    ordered.sort_by_key(|m| m.at_ms);
    let first = *ordered.first()?;
    if let Some(s) = &state {
        if s.has_applied(batch.id) {
            return Some(Applied {
                state: s.clone(),
                alerts: Vec::new(),
                duplicate: true,
            });
        }
    }
    let mut st = state.unwrap_or_else(|| WindowState::open(first, params, batch));
    let mut alerts = Vec::new();
    for m in ordered {
        // Outside the open window (and not late): a new window starts here.
        if m.at_ms >= st.window_end() {
            st.reopen(m, params, batch);
        }
        st.add(m);
        if let Some(alert) = decide(&st, params) {
            st.alerted = Some(alert.severity);
            st.pending.push(PendingAlert {
                alert: alert.clone(),
                batch: batch.id.to_owned(),
                since_ms: batch.now_ms,
            });
            alerts.push(alert);
        }
    }
    st.remember(batch);
    Some(Applied {
        state: st,
        alerts,
        duplicate: false,
    })
}

/// The alert a window owes now, if any.
fn decide(st: &WindowState, params: WindowParams) -> Option<Alert> {
    if st.count < params.threshold {
        return None;
    }
    match st.alerted {
        None => Some(Alert::from_window(st, params, st.severity, false)),
        Some(prev) if st.severity > prev => Some(Alert::from_window(st, params, st.severity, true)),
        Some(_) => None,
    }
}
