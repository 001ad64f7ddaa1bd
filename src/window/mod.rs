//! Windows, thresholds and dedup: a pure state machine per (rule, dedup key).
//!
//! One [`WindowState`] is what a key remembers, in four parts: the open
//! window (its count, aggregates, and whether it alerted and at what
//! severity), the earlier windows a late match may still belong to
//! ([`past`]), the batches already applied (so a redelivered batch changes
//! nothing), and the outbox of alerts decided but not yet delivered, each
//! with the claim of the invocation publishing it ([`outbox`]). All of it
//! lives in one record, written atomically, so deciding an alert and
//! queueing it for delivery can never be separated.
//!
//! Semantics, in event time: a match at `t` joins the open window if
//! `start <= t < start + period`; a match at or after the end closes it and
//! opens a new window at `t`. A match before the open window's start counts
//! in the past window that holds it; one in no window opens the window it
//! would have opened had it come in order (moving the open window's start
//! back when nothing was decided on it yet). Only a match older than the
//! horizon (see [`BatchInfo::horizon_ms`]) is *late* and not counted. A
//! window alerts once, when its count reaches the threshold; if a more
//! severe match arrives after that (a pod scan that succeeded after refused
//! ones), it alerts once more at the higher severity. A window that has
//! alerted absorbs matches no more severe than its alert: they change
//! nothing, so a sustained scanner costs no writes. Time only ever comes
//! from the matches and the caller: no clock is read here.

mod applied;
mod counting;
mod outbox;
mod past;
mod tallies;

pub use applied::{AppliedBatch, MAX_REMEMBERED_BATCHES, REMEMBERED_ID_CHARS};
pub use outbox::{salvage_outbox, Claim, PendingAlert, Room, MAX_OUTBOX_BYTES, MAX_PENDING_ALERTS};
pub use past::{PastWindow, MAX_PAST_SAMPLES, MAX_PAST_WINDOWS};
pub use tallies::{Tallies, TallyMap};

use past::Place;

pub(crate) use counting::{counts, Counting};

use std::collections::BTreeMap;
use std::sync::Arc;

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

/// The tally of a window that holds the distinct values (as hashes) a
/// rule with a distinct-value threshold has seen; it holds up to
/// [`MAX_DISTINCT_VALUES`], which bounds such a rule's threshold.
pub const UNIQUE_FIELD: &str = "#unique";

/// The tally of a window that holds the steps of an ordered sequence (a
/// Sigma `temporal_ordered` correlation): a match that is step `i` counts
/// only when the window has counted `i` steps and it is not earlier than
/// the step counted before it, so the count is how far the sequence has
/// got in event time. A step applied before the one that precedes it (its
/// batch arrived first) is not counted.
pub const STEP_FIELD: &str = "#step";

/// How far back (event time, from the open window's start) a late match
/// still counts, unless configured otherwise (`LATE_HORIZON_MINUTES`): the
/// longest a batch can come back, Lambda's 6 hours of asynchronous retries
/// and Kinesis' `MaximumRecordAgeInSeconds` of 6 hours, plus the 15-minute
/// longest timeout.
pub const DEFAULT_HORIZON_MS: Millis = (6 * 60 + 15) * 60 * 1000;

/// How much earlier than the open window's start a match may be and still
/// join it when the window has alerted (different API servers' log streams
/// arrive out of order by seconds).
pub const LATE_TOLERANCE_MS: Millis = 5 * 60 * 1000;

/// The most a key's record can take as JSON, whatever the requests and SNS
/// do (checked by a test with the worst inputs: about 63 KB for a rule
/// that tallies fields, 72 KB for one that counts distinct values, whose
/// every past window keeps the values it counted).
pub const MAX_RECORD_BYTES: usize = 96 * 1024;

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
    /// Wall-clock time of the invocation.
    pub now_ms: Millis,
    /// How far back from the open window's start a late match still
    /// counts (event time; [`DEFAULT_HORIZON_MS`] unless configured).
    pub horizon_ms: Millis,
    /// The latest event time of the batch's matches as stamped, when later
    /// than the time they were counted at (clamped to their arrival; 0
    /// otherwise): the batch is remembered until that time is late too, so
    /// a replay that no longer needs the clamp is still recognised.
    pub stamped_until: Millis,
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
    pub sample: Arc<Sample>,
    /// The first event that raised the window's severity above its first
    /// match's (what an escalation alert shows).
    #[serde(default)]
    pub escalation_sample: Option<Arc<Sample>>,
    /// Summary tallies: field → value → count.
    pub tallies: Tallies,
    /// Values not tallied because a field had too many distinct values.
    pub overflow: u64,
    /// Addresses or groups of the window's events that got no key of their
    /// own (bounded fan-out).
    #[serde(default)]
    pub fanout_dropped: u64,
    /// Earlier windows a late match may still count in, oldest first.
    #[serde(default)]
    pub past: Vec<PastWindow>,
    /// Matches before this time are late; it only moves forward.
    #[serde(default)]
    pub late_before: Millis,
    /// Batches applied, while their matches are inside the horizon.
    pub applied: Vec<AppliedBatch>,
    /// Alerts decided but not yet delivered, oldest first.
    #[serde(default)]
    pub outbox: Vec<PendingAlert>,
    /// Wall-clock time of the last change.
    #[serde(default)]
    pub updated_ms: Millis,
    /// The clusters the detector has heard from (only on the one record of
    /// [`crate::silence`]; empty, and not stored, everywhere else).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watch: BTreeMap<String, crate::silence::Heard>,
    /// When the open window's last counted step of a sequence happened: a
    /// later step counts only if it is not earlier (see [`STEP_FIELD`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_at: Option<Millis>,
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
        let mut st = Self {
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
            cluster: String::new(),
            log_group: String::new(),
            account: String::new(),
            title: String::new(),
            sample: Default::default(),
            escalation_sample: None,
            tallies: Tallies::default(),
            overflow: 0,
            fanout_dropped: 0,
            past: Vec::new(),
            late_before: 0,
            applied: Vec::new(),
            outbox: Vec::new(),
            updated_ms: batch.now_ms,
            watch: BTreeMap::new(),
            step_at: None,
        };
        st.start_window(m, params, (batch.cluster, batch.log_group, batch.account));
        st.late_before = m.at_ms.saturating_sub(batch.horizon_ms);
        st
    }

    /// Makes the open window a fresh one starting at `m`.
    fn start_window(&mut self, m: &Match, params: WindowParams, origin: (&str, &str, &str)) {
        let (cluster, log_group, account) = origin;
        self.window_start = m.at_ms;
        self.window_ms = params.window_ms;
        self.count = 0;
        self.first_seen = m.at_ms;
        self.last_seen = m.at_ms;
        self.severity = m.severity;
        self.alerted = None;
        self.source_ip.clone_from(&m.source_ip);
        self.cluster = crate::bounded::cap(cluster);
        self.log_group = crate::bounded::cap(log_group);
        self.account = crate::bounded::cap(account);
        self.title.clone_from(&m.event.title);
        self.sample = Arc::clone(&m.event.sample);
        self.escalation_sample = None;
        self.tallies = Tallies::default();
        self.overflow = 0;
        self.fanout_dropped = 0;
        self.step_at = None;
    }

    /// The key's identity and origin, with an empty window: the base of a
    /// view on a past window.
    fn identity(&self) -> Self {
        Self {
            rule: self.rule,
            dedup: self.dedup.clone(),
            window_start: 0,
            window_ms: 0,
            count: 0,
            first_seen: 0,
            last_seen: 0,
            severity: self.severity,
            alerted: None,
            source_ip: self.source_ip.clone(),
            cluster: self.cluster.clone(),
            log_group: self.log_group.clone(),
            account: self.account.clone(),
            title: String::new(),
            sample: Default::default(),
            escalation_sample: None,
            tallies: Tallies::default(),
            overflow: 0,
            fanout_dropped: 0,
            past: Vec::new(),
            late_before: self.late_before,
            applied: Vec::new(),
            outbox: Vec::new(),
            updated_ms: self.updated_ms,
            watch: BTreeMap::new(),
            step_at: None,
        }
    }

    /// The distinct values tallied for `field` in the open window, in order.
    pub fn tallied(&self, field: &str) -> Vec<&String> {
        self.tallies
            .get(field)
            .map(|m| m.keys().collect())
            .unwrap_or_default()
    }

    /// True when a match at `at_ms` is too old to count anywhere.
    pub fn is_late(&self, at_ms: Millis) -> bool {
        at_ms < self.late_before
    }

    /// True when the open window has alerted at `severity` or higher: a
    /// match of that severity would change nothing.
    pub fn absorbs(&self, severity: Severity) -> bool {
        self.alerted.is_some_and(|a| severity <= a)
    }

    /// True once the open window alerted at the highest severity its rule
    /// can give: nothing in it can change what is or will be published.
    pub fn saturated(&self, params: WindowParams) -> bool {
        self.absorbs(params.max_severity)
    }

    /// End of the open window.
    pub fn window_end(&self) -> Millis {
        self.window_start.saturating_add(self.window_ms)
    }

    fn add(&mut self, m: &Match) {
        // A rule that counts distinct values (Panther's `unique()`) counts a
        // value seen before in this window only once; a sequence counts
        // its next step only.
        let seen = self.tallies.get(UNIQUE_FIELD);
        match counts(m, self.count, self.step_at, |v| {
            seen.is_some_and(|s| s.contains_key(v))
        }) {
            Counting::Not => {}
            Counting::Step(at) => {
                self.count += 1;
                self.step_at = Some(at);
            }
            Counting::Counts(_) => self.count += 1,
        }
        self.first_seen = self.first_seen.min(m.at_ms);
        self.last_seen = self.last_seen.max(m.at_ms);
        self.fanout_dropped += m.event.dropped;
        if m.severity > self.severity {
            self.severity = m.severity;
            self.escalation_sample = Some(Arc::clone(&m.event.sample));
        }
        self.tally_facts(m);
    }

    fn tally_facts(&mut self, m: &Match) {
        for (field, value) in m.event.facts.iter().chain(&m.facts) {
            // The field's name is copied only the first time it is seen.
            let map = match self.tallies.get_mut(*field) {
                Some(map) => map,
                None => self.tallies.entry((*field).to_owned()).or_default(),
            };
            if !tally(map, value, MAX_DISTINCT_VALUES, MAX_TALLY_BYTES) {
                self.overflow += 1;
            }
        }
    }
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
    let mut st = match state {
        None => WindowState::open(first, params, batch),
        // A record that only held alerts (see `WindowState::holding`): its
        // first window opens now, its outbox stays.
        Some(mut s) if s.window_ms == 0 => {
            s.start_window(
                first,
                params,
                (batch.cluster, batch.log_group, batch.account),
            );
            s.raise_late_before(first.at_ms.saturating_sub(batch.horizon_ms));
            changed = true;
            s
        }
        Some(s) => s,
    };
    let mut alerts = Vec::new();
    let mut late = 0;
    let mut counted_up_to: Option<Millis> = None;
    for m in ordered {
        match place(&mut st, m, params, batch) {
            Place::Late => late += 1,
            Place::Absorbed => {}
            Place::Extended => {
                changed = true;
                counted_up_to = counted_up_to.max(Some(m.at_ms));
            }
            Place::Open => {
                st.add(m);
                if let Some(decision) = decide(&st, params) {
                    st.alerted = Some(decision.severity);
                    alerts.push(render(&st, decision));
                }
                changed = true;
                counted_up_to = counted_up_to.max(Some(m.at_ms));
            }
            Place::Past(i) => {
                st.past[i].add(m);
                if let Some(decision) = st.past[i].decide(params) {
                    st.past[i].alerted = Some(decision.severity);
                    alerts.push(render(&st.past_view(i, m, decision.escalation), decision));
                    st.trim_past();
                }
                changed = true;
                counted_up_to = counted_up_to.max(Some(m.at_ms));
            }
        }
    }
    let outcome = if changed {
        if let Some(at) = counted_up_to {
            st.remember(batch.id, at, batch.stamped_until);
        }
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

/// Where match `m` goes, opening a new window for it when it is past the
/// open one.
fn place(st: &mut WindowState, m: &Match, params: WindowParams, batch: &BatchInfo<'_>) -> Place {
    if st.is_late(m.at_ms) {
        return Place::Late;
    }
    // Before the open window (and before any earlier match it took in).
    if m.at_ms < st.window_start.min(st.first_seen) {
        return st.place_early(m);
    }
    if m.at_ms >= st.window_end() {
        st.close_and_open(
            m,
            params,
            batch.horizon_ms,
            (batch.cluster, batch.log_group, batch.account),
        );
    }
    if st.absorbs(m.severity) {
        Place::Absorbed
    } else {
        Place::Open
    }
}

/// The alert the open window owes now, if any.
fn decide(st: &WindowState, params: WindowParams) -> Option<Decision> {
    decide_on(st.count, st.severity, st.alerted, params)
}

/// The alert a window with `count` matches of up to `severity`, which last
/// alerted at `alerted`, owes now.
fn decide_on(
    count: u64,
    severity: Severity,
    alerted: Option<Severity>,
    params: WindowParams,
) -> Option<Decision> {
    if count < params.threshold {
        return None;
    }
    let escalation = match alerted {
        None => false,
        Some(prev) if severity > prev => true,
        Some(_) => return None,
    };
    Some(Decision {
        severity,
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
