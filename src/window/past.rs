//! Earlier windows of a key, kept so that a late match (a batch retried
//! after a later one, a lagging shard) still counts in the window it
//! belongs to and can still raise that window's alert.
//!
//! A past window keeps what deciding needs (span, count, severity, whether
//! and at what severity it alerted) and, while it has not alerted, the
//! sample and title an alert would show. Windows are kept for a horizon
//! measured back from the open window's start, in event time; a match
//! older than that is *late*, and so is every match before
//! `late_before`, which only ever moves forward, so what once was late
//! stays late (a redelivery cannot count the second time what the first
//! time refused).

use serde::{Deserialize, Serialize};

use super::{Decision, WindowState};
use crate::time::Millis;
use crate::vocab::{Match, Sample, Severity, WindowParams};

/// Earlier windows a key keeps (bounds the record: about 150 bytes each,
/// plus a sample and title for the newest [`MAX_PAST_SAMPLES`] that have
/// not alerted; an alert completed in another shows the late match's). With 30-minute windows this covers 16 hours; with shorter ones
/// the horizon is shorter, see the README.
pub const MAX_PAST_WINDOWS: usize = 32;

/// Past windows that keep the sample of their first match.
pub const MAX_PAST_SAMPLES: usize = 2;

/// An earlier window of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastWindow {
    /// Its start (time of its first match).
    pub start: Millis,
    /// Its length.
    pub window_ms: Millis,
    /// Matches counted in it.
    pub count: u64,
    /// Earliest match time.
    pub first_seen: Millis,
    /// Latest match time.
    pub last_seen: Millis,
    /// Highest severity of its matches.
    pub severity: Severity,
    /// Severity of the last alert it raised, if any.
    pub alerted: Option<Severity>,
    /// Title of its first match, while it keeps its sample.
    #[serde(default)]
    pub title: String,
    /// Its first match's request, while it may still alert.
    #[serde(default)]
    pub sample: Option<std::sync::Arc<Sample>>,
    /// The distinct values (hashes) it counted, for a rule that counts
    /// distinct values: a late repeat counts no more than in the open
    /// window (at most [`super::MAX_DISTINCT_VALUES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct: Vec<String>,
    /// When its last counted step of a sequence happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_at: Option<Millis>,
}

impl PastWindow {
    /// End of the window.
    pub fn end(&self) -> Millis {
        self.start.saturating_add(self.window_ms)
    }

    /// Where its span begins: its start, or an earlier match it took in
    /// after it had alerted.
    pub fn covered_from(&self) -> Millis {
        self.start.min(self.first_seen)
    }

    /// True when `at_ms` falls in its span.
    pub fn holds(&self, at_ms: Millis) -> bool {
        self.covered_from() <= at_ms && at_ms < self.end()
    }

    /// True when a match of `severity` would change nothing in it.
    pub fn absorbs(&self, severity: Severity) -> bool {
        self.alerted.is_some_and(|a| severity <= a)
    }

    /// Counts a late match.
    pub fn add(&mut self, m: &Match) {
        match super::counts(m, self.count, self.step_at, |v| {
            self.distinct.iter().any(|d| d == v)
        }) {
            super::Counting::Step(at) => {
                self.count += 1;
                self.step_at = Some(at);
            }
            super::Counting::Counts(Some(value)) => {
                if self.distinct.len() < super::MAX_DISTINCT_VALUES {
                    self.distinct.push(value.to_owned());
                }
                self.count += 1;
            }
            super::Counting::Counts(None) => self.count += 1,
            super::Counting::Not => {}
        }
        self.first_seen = self.first_seen.min(m.at_ms);
        self.last_seen = self.last_seen.max(m.at_ms);
        self.severity = self.severity.max(m.severity);
    }

    /// The alert it owes now, if any.
    pub fn decide(&self, params: WindowParams) -> Option<Decision> {
        super::decide_on(self.count, self.severity, self.alerted, params)
    }

    fn new_at(m: &Match, window_ms: Millis) -> Self {
        Self {
            start: m.at_ms,
            window_ms,
            count: 0,
            first_seen: m.at_ms,
            last_seen: m.at_ms,
            severity: m.severity,
            alerted: None,
            title: m.event.title.clone(),
            sample: Some(m.event.sample.clone()),
            distinct: Vec::new(),
            step_at: None,
        }
    }
}

/// Where a match goes in a key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// Too old: not counted.
    Late,
    /// Into a window that alerted at its severity or higher: changes nothing.
    Absorbed,
    /// Taken in by a window that alerted, before its first match: changes
    /// nothing but the window's span, which is stored (with the batch) so
    /// that a redelivery decides the same way whatever came since.
    Extended,
    /// Into the open window.
    Open,
    /// Into this past window.
    Past(usize),
}

impl WindowState {
    /// Moves the open window into the past and opens a new one at `m`.
    pub(super) fn close_and_open(
        &mut self,
        m: &Match,
        params: WindowParams,
        horizon_ms: Millis,
        cluster: (&str, &str, &str),
    ) {
        let closed = PastWindow {
            start: self.window_start,
            window_ms: self.window_ms,
            count: self.count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            severity: self.severity,
            alerted: self.alerted,
            title: std::mem::take(&mut self.title),
            sample: Some(std::mem::take(&mut self.sample)),
            distinct: self
                .tallied(super::UNIQUE_FIELD)
                .into_iter()
                .cloned()
                .collect(),
            step_at: self.step_at,
        };
        self.past.push(closed);
        self.start_window(m, params, cluster);
        self.raise_late_before(m.at_ms.saturating_sub(horizon_ms));
        self.trim_past();
    }

    /// Decides where a match before the open window's start goes, opening
    /// a past window for it when it falls in none.
    pub(super) fn place_early(&mut self, m: &Match) -> Place {
        let t = m.at_ms;
        if let Some(i) = self.past.iter().position(|w| w.holds(t)) {
            return if self.past[i].absorbs(m.severity) {
                Place::Absorbed
            } else {
                Place::Past(i)
            };
        }
        // The first window after `t`, and the end of the one before it.
        let next = self.past.iter().position(|w| w.covered_from() > t);
        let prev_end = match next {
            Some(0) => Millis::MIN,
            Some(i) => self.past[i - 1].end(),
            None => self.past.last().map_or(Millis::MIN, PastWindow::end),
        };
        if t >= prev_end {
            // Had this match come in order, the next window would have
            // started at it. When all that window's matches fit in a
            // window from `t`, it is the same window: the match joins it,
            // and its start moves back if nothing was decided on it yet
            // (a decided window keeps its start: its alert id is out).
            match next {
                Some(i) => {
                    let w = &mut self.past[i];
                    if w.last_seen < t.saturating_add(w.window_ms) {
                        if w.alerted.is_none() {
                            w.start = t;
                        }
                        if w.absorbs(m.severity) {
                            w.first_seen = w.first_seen.min(t);
                            return Place::Extended;
                        }
                        return Place::Past(i);
                    }
                }
                None => {
                    let fits = self.last_seen < t.saturating_add(self.window_ms);
                    if fits && self.alerted.is_none() {
                        self.window_start = t;
                    }
                    // The tolerance is for a window that has alerted: one
                    // that has not must not count matches more than its
                    // span apart.
                    let tolerated = self.alerted.is_some()
                        && self.window_start.saturating_sub(t) <= super::LATE_TOLERANCE_MS;
                    if fits || tolerated {
                        if self.absorbs(m.severity) {
                            self.first_seen = self.first_seen.min(t);
                            return Place::Extended;
                        }
                        return Place::Open;
                    }
                }
            }
        }
        // A gap no window covers: a window of its own, up to the next one.
        let next = next.unwrap_or(self.past.len());
        // Windows never overlap: this one ends where the next one's span
        // (with any earlier match it took in) begins.
        let next_start = self.past.get(next).map_or(
            self.window_start.min(self.first_seen),
            PastWindow::covered_from,
        );
        let window_ms = self.window_ms.min(next_start.saturating_sub(t)).max(1);
        self.past.insert(next, PastWindow::new_at(m, window_ms));
        self.trim_past();
        // Dropped at once when older than every window a full past keeps.
        match self.past.iter().position(|w| w.holds(t)) {
            Some(i) => Place::Past(i),
            None => Place::Late,
        }
    }

    /// Keeps at most [`MAX_PAST_WINDOWS`] past windows (dropping the
    /// oldest, whose matches are late from then on) and samples only where
    /// they may still be shown.
    pub(super) fn trim_past(&mut self) {
        let late_before = self.late_before;
        self.past.retain(|w| w.end() > late_before);
        while self.past.len() > MAX_PAST_WINDOWS {
            let w = self.past.remove(0);
            self.late_before = self.late_before.max(w.end());
        }
        let mut samples = 0;
        for w in self.past.iter_mut().rev() {
            if w.alerted.is_some() || samples >= MAX_PAST_SAMPLES {
                w.sample = None;
                w.title = String::new();
            } else if w.sample.is_some() {
                samples += 1;
            }
        }
    }

    /// Matches before `at_ms` are late from now on.
    pub(super) fn raise_late_before(&mut self, at_ms: Millis) {
        if at_ms > self.late_before {
            self.late_before = at_ms;
            self.trim_past();
        }
    }

    /// The state as it would stand if past window `i` were open, with `m`
    /// (the match that made it alert) as its request when it kept none:
    /// what the alert of a late match is rendered from.
    pub(super) fn past_view(&self, i: usize, m: &Match, escalation: bool) -> WindowState {
        let w = &self.past[i];
        let mut view = WindowState {
            window_start: w.start,
            window_ms: w.window_ms,
            count: w.count,
            first_seen: w.first_seen,
            last_seen: w.last_seen,
            severity: w.severity,
            alerted: w.alerted,
            title: if w.title.is_empty() {
                m.event.title.clone()
            } else {
                w.title.clone()
            },
            sample: w.sample.clone().unwrap_or_else(|| m.event.sample.clone()),
            escalation_sample: escalation.then(|| m.event.sample.clone()),
            tallies: Default::default(),
            overflow: 0,
            fanout_dropped: m.event.dropped,
            past: Vec::new(),
            applied: Vec::new(),
            outbox: Vec::new(),
            ..self.identity()
        };
        view.tally_facts(m);
        view
    }
}
