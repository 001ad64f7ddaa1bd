//! Runs the detector over the messages of a batch (or of NDJSON lines):
//! prefilter, parse, evaluate, and count why lines were skipped.
//!
//! One bad line never fails a batch: it is skipped and counted by reason.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::AuditEvent;
use crate::decode::Batch;
use crate::prefilter::Prefilter;
use crate::rules::Detector;
use crate::time::Millis;
use crate::vocab::{EventContext, Match, RuleId, Verdict};

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// CloudWatch cut the line at 256 KB (`...[Truncated...]`).
    Truncated,
    /// Not a JSON object.
    NotJson,
    /// JSON, but not an `audit.k8s.io` Event (another control-plane stream)
    /// or with fields of the wrong type.
    NotAuditEvent,
    /// A log event without a message or timestamp.
    BadLogEvent,
}

impl SkipReason {
    /// Every reason, for stable reporting.
    pub const ALL: [SkipReason; 4] = [
        SkipReason::Truncated,
        SkipReason::NotJson,
        SkipReason::NotAuditEvent,
        SkipReason::BadLogEvent,
    ];

    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Truncated => "truncated",
            SkipReason::NotJson => "not_json",
            SkipReason::NotAuditEvent => "not_audit_event",
            SkipReason::BadLogEvent => "bad_log_event",
        }
    }
}

/// Counters of one scan (summed over batches by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    /// Log events (lines) seen.
    pub events: u64,
    /// Bytes of messages seen (as in the envelope).
    pub message_bytes: u64,
    /// Lines the prefilter proved irrelevant without parsing.
    pub prefiltered: u64,
    /// Lines parsed as audit events.
    pub parsed: u64,
    /// Lines skipped, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Events matched, by rule.
    pub matched_events: BTreeMap<RuleId, u64>,
    /// Matches (groups) produced, by rule.
    pub matches: BTreeMap<RuleId, u64>,
    /// Events a rule could not evaluate, by rule.
    pub rule_errors: BTreeMap<RuleId, u64>,
    /// Addresses or groups of matching events that got no key of their own
    /// (bounded fan-out), by rule.
    pub fanout_dropped: BTreeMap<RuleId, u64>,
}

impl ScanStats {
    fn skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    /// Total skipped lines.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Adds another scan's counters.
    pub fn merge(&mut self, other: &ScanStats) {
        self.events += other.events;
        self.message_bytes += other.message_bytes;
        self.prefiltered += other.prefiltered;
        self.parsed += other.parsed;
        for (k, v) in &other.skipped {
            *self.skipped.entry(*k).or_default() += v;
        }
        for (dst, src) in [
            (&mut self.matched_events, &other.matched_events),
            (&mut self.matches, &other.matches),
            (&mut self.rule_errors, &other.rule_errors),
            (&mut self.fanout_dropped, &other.fanout_dropped),
        ] {
            for (k, v) in src {
                *dst.entry(*k).or_default() += v;
            }
        }
    }

    fn record(&mut self, rule: RuleId, verdict: Verdict) {
        match verdict {
            Verdict::NoMatch => {}
            Verdict::Matched { matches, dropped } => {
                *self.matched_events.entry(rule).or_default() += 1;
                *self.matches.entry(rule).or_default() += matches as u64;
                if dropped > 0 {
                    *self.fanout_dropped.entry(rule).or_default() += dropped as u64;
                }
            }
            Verdict::RuleError => *self.rule_errors.entry(rule).or_default() += 1,
        }
    }
}

/// A per-rule counter, 0 when the rule never counted.
pub fn per_rule(map: &BTreeMap<RuleId, u64>, rule: RuleId) -> u64 {
    map.get(&rule).copied().unwrap_or(0)
}

/// Marker CloudWatch appends to a line it cut.
const TRUNCATED: &[u8] = b"[Truncated...]";

/// Scans messages with a detector.
#[derive(Debug)]
pub struct Scanner<'d> {
    detector: &'d Detector,
    prefilter: &'d Prefilter,
}

impl<'d> Scanner<'d> {
    /// A scanner for `detector`.
    pub fn new(detector: &'d Detector) -> Self {
        Self {
            detector,
            prefilter: detector.prefilter(),
        }
    }

    /// Scans a decoded CloudWatch batch, appending matches to `out`.
    pub fn scan_batch(&self, batch: &Batch<'_>, out: &mut Vec<Match>, stats: &mut ScanStats) {
        let label = batch.label(self.detector.config().organization_mode);
        self.scan_events(&label, &batch.log_events, out, stats);
    }

    /// Scans some of a batch's log events (the handler takes a large batch
    /// a slice at a time, so its matches never all sit in memory at once).
    pub fn scan_events(
        &self,
        cluster: &str,
        events: &[crate::decode::LogEvent<'_>],
        out: &mut Vec<Match>,
        stats: &mut ScanStats,
    ) {
        for le in events {
            stats.events += 1;
            let (Some(raw), Some(at_ms)) = (le.message, le.timestamp) else {
                stats.skip(SkipReason::BadLogEvent);
                continue;
            };
            let token = raw;
            let raw = raw.as_bytes();
            stats.message_bytes += raw.len() as u64;
            // The message must be a JSON string holding a JSON object.
            let inner = match raw {
                [b'"', inner @ .., b'"'] => inner,
                _ => {
                    stats.skip(SkipReason::NotJson);
                    continue;
                }
            };
            if let Some(reason) = quick_reject(inner) {
                stats.skip(reason);
                continue;
            }
            let candidate = self.prefilter.candidate(inner);
            if !candidate.keep {
                stats.prefiltered += 1;
                continue;
            }
            // Only candidates pay for unescaping.
            let Some(text) = crate::decode::message_text(token) else {
                stats.skip(SkipReason::NotJson);
                continue;
            };
            self.evaluate(&text, candidate.sigma, cluster, Some(at_ms), out, stats);
        }
    }

    /// Scans one plain message (an NDJSON line). Event time is `at_ms` or,
    /// when `None`, the event's `stageTimestamp` (then
    /// `requestReceivedTimestamp`).
    pub fn scan_message(
        &self,
        text: &str,
        at_ms: Option<Millis>,
        cluster: &str,
        out: &mut Vec<Match>,
        stats: &mut ScanStats,
    ) {
        stats.events += 1;
        stats.message_bytes += text.len() as u64;
        let bytes = text.trim().as_bytes();
        if let Some(reason) = quick_reject(bytes) {
            stats.skip(reason);
            return;
        }
        let candidate = self.prefilter.candidate(bytes);
        if !candidate.keep {
            stats.prefiltered += 1;
            return;
        }
        self.evaluate(text, candidate.sigma, cluster, at_ms, out, stats);
    }

    /// Parses a candidate once and runs the rules; without `at_ms` the
    /// event's own timestamps give its time.
    fn evaluate(
        &self,
        text: &str,
        sigma: Option<crate::prefilter::SigmaHits>,
        cluster: &str,
        at_ms: Option<Millis>,
        out: &mut Vec<Match>,
        stats: &mut ScanStats,
    ) {
        let mut ev = match AuditEvent::parse(text) {
            Ok(ev) => ev,
            Err(e) if e.is_syntax() || e.is_eof() => {
                stats.skip(SkipReason::NotJson);
                return;
            }
            Err(_) => {
                stats.skip(SkipReason::NotAuditEvent);
                return;
            }
        };
        if !ev.is_audit_event() {
            stats.skip(SkipReason::NotAuditEvent);
            return;
        }
        ev.sigma_hits = sigma;
        let Some(at_ms) = at_ms.or_else(|| ev.event_time()) else {
            stats.skip(SkipReason::BadLogEvent);
            return;
        };
        stats.parsed += 1;
        self.detector.evaluate(
            &ev,
            EventContext { cluster, at_ms },
            out,
            |rule, verdict| {
                stats.record(rule, verdict);
            },
        );
    }
}

/// Cheap checks on the (possibly still escaped) message bytes.
fn quick_reject(msg: &[u8]) -> Option<SkipReason> {
    if msg.ends_with(TRUNCATED) {
        return Some(SkipReason::Truncated);
    }
    match msg.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => None,
        _ => Some(SkipReason::NotJson),
    }
}
