//! The detections: what a rule is, the registry, and the [`Detector`] that
//! runs every enabled rule on one audit event.
//!
//! A rule is a small unit in the Panther mould: metadata (id, severity,
//! threshold, window) next to a `matches()` made of early-return guards, plus
//! its dedup key, title and summary. Each rule lives in its own file with the
//! same shape. Rules only look at one event; counting and windows are
//! [`crate::window`]'s job.

pub mod multiple_403;
pub mod pod_scan;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bounded::cap;

use crate::audit::{opt, AuditEvent};
use crate::config::DetectorConfig;
use crate::net::CidrList;
use crate::time::Millis;
use crate::window::{WindowParams, WindowState};

/// Which detection. The serialized name is the public rule id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RuleId {
    /// Panther `Amazon.EKS.Audit.Multiple403`.
    #[serde(rename = "Amazon.EKS.Audit.Multiple403")]
    Multiple403,
    /// Splunk "Amazon EKS Kubernetes Pod scan detection".
    #[serde(rename = "Amazon.EKS.Audit.PodScan")]
    PodScan,
}

impl RuleId {
    /// Every rule, in a stable order.
    pub const ALL: [RuleId; 2] = [RuleId::Multiple403, RuleId::PodScan];

    /// The public rule id.
    pub fn as_str(self) -> &'static str {
        self.meta().id
    }

    /// Static metadata of the rule.
    pub fn meta(self) -> &'static RuleMeta {
        match self {
            RuleId::Multiple403 => &multiple_403::META,
            RuleId::PodScan => &pod_scan::META,
        }
    }

    /// Looks a rule up by its id (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// The ids of every rule.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|r| r.as_str()).collect()
    }
}

/// Alert severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// `INFO`, `LOW`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// What a rule is, independent of any event.
#[derive(Debug)]
pub struct RuleMeta {
    /// Public rule id.
    pub id: &'static str,
    /// Human-readable name, as in the original catalog.
    pub name: &'static str,
    /// Where the rule comes from.
    pub origin: &'static str,
    /// MITRE ATT&CK technique(s).
    pub mitre: &'static str,
    /// Where to read more.
    pub reference: &'static str,
    /// What to check when the alert arrives.
    pub runbook: &'static str,
}

/// Where an event came from: the batch's context, not the event's content.
#[derive(Debug, Clone, Copy)]
pub struct EventContext<'a> {
    /// Cluster label (from the log group name).
    pub cluster: &'a str,
    /// Event time for windows (CloudWatch `timestamp`).
    pub at_ms: Millis,
}

/// The part of the first matching event an alert shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// `auditID`.
    #[serde(rename = "auditID")]
    pub audit_id: Option<String>,
    /// `requestURI`.
    #[serde(rename = "requestURI")]
    pub request_uri: Option<String>,
    /// `verb`.
    pub verb: Option<String>,
    /// `userAgent`.
    #[serde(rename = "userAgent")]
    pub user_agent: Option<String>,
    /// `user.username`.
    pub username: Option<String>,
    /// `responseStatus`, reduced to code and reason.
    #[serde(rename = "responseStatus")]
    pub response_status: SampleStatus,
    /// `stageTimestamp` as written.
    #[serde(rename = "stageTimestamp")]
    pub stage_timestamp: Option<String>,
}

/// `responseStatus` of the sample event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleStatus {
    /// HTTP status code.
    pub code: Option<i64>,
    /// Kubernetes reason, e.g. `Forbidden`.
    pub reason: Option<String>,
}

impl Sample {
    /// Copies the sample fields out of an event, each capped (they are
    /// attacker-controlled and end up in state and alerts).
    pub fn of(ev: &AuditEvent<'_>) -> Self {
        let own = |s: Option<&str>| s.map(cap);
        Self {
            audit_id: own(opt(&ev.audit_id)),
            request_uri: own(opt(&ev.request_uri)),
            verb: own(opt(&ev.verb)),
            user_agent: own(opt(&ev.user_agent)),
            username: own(ev.username()),
            response_status: SampleStatus {
                code: ev.status_code(),
                reason: own(ev.status_reason()),
            },
            stage_timestamp: own(opt(&ev.stage_timestamp)),
        }
    }
}

/// What every match of one event shares, built once per event and capped,
/// so a request that fans out into several keys costs its text only once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchedEvent {
    /// Title of the event's matches (the window's first one is kept).
    pub title: String,
    /// Sample fields of the event.
    pub sample: Sample,
    /// Values to tally for the alert summary: (summary field, value).
    pub facts: Vec<(&'static str, String)>,
    /// Addresses or groups of the event that got no key of their own
    /// (bounded fan-out).
    pub dropped: u64,
}

/// One rule matching one event (or one group of it): everything the window
/// engine and the alert need, owned, so the event's text can be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Which rule.
    pub rule: RuleId,
    /// Dedup key: one window state per (rule, key).
    pub dedup: String,
    /// Event time for windows.
    pub at_ms: Millis,
    /// The source address this match is about.
    pub source_ip: String,
    /// Severity this match alone deserves.
    pub severity: Severity,
    /// What the event's matches share.
    pub event: Arc<MatchedEvent>,
    /// Values to tally that belong to this match only (PodScan's group).
    pub facts: Vec<(&'static str, String)>,
}

/// The outcome of one rule on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The event does not match.
    NoMatch,
    /// The event matched, producing this many matches (groups); `dropped`
    /// addresses or groups got none (bounded fan-out).
    Matched {
        /// Matches produced.
        matches: usize,
        /// Addresses or groups left without a key.
        dropped: usize,
    },
    /// The rule could not be evaluated on this event (the original would
    /// have raised); counted, never a match.
    RuleError,
}

impl Verdict {
    /// `n` matches, nothing dropped.
    pub const fn matched(n: usize) -> Self {
        Verdict::Matched {
            matches: n,
            dropped: 0,
        }
    }
}

/// At most `first` distinct values of `items` plus the last one: the bounded
/// fan-out of one event. Returns the values kept and how many distinct-or-not
/// entries were left out. The last entry of `sourceIPs` is the address the
/// API server saw on the connection, which a client cannot forge; the first
/// ones are what Panther and Splunk look at.
pub fn first_and_last<'s>(
    items: &'s [crate::audit::Str<'_>],
    first: usize,
) -> (Vec<&'s str>, usize) {
    let mut kept: Vec<&str> = Vec::with_capacity(first + 1);
    let mut seen = 0;
    for item in items.iter().map(crate::audit::Str::as_str) {
        if kept.len() == first {
            break;
        }
        seen += 1;
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    if let Some(last) = items.last().map(crate::audit::Str::as_str) {
        if seen < items.len() && !kept.contains(&last) {
            kept.push(last);
            seen += 1;
        }
    }
    let dropped = items.len().saturating_sub(seen);
    (kept, dropped)
}

/// A detection: one file per rule, the same shape each time.
pub trait Rule {
    /// Which rule this is.
    const ID: RuleId;

    /// Evaluates one event (early-return guards, one comment each); on a
    /// match appends one [`Match`] per group to `out`. A source inside
    /// `allow` never matches.
    fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        allow: &CidrList,
        out: &mut Vec<Match>,
    ) -> Verdict;

    /// The alert title for a window at a severity.
    fn title(state: &WindowState, severity: Severity) -> String;

    /// The alert's `summary` object.
    fn summary(state: &WindowState) -> serde_json::Value;
}

/// Alert title of a window.
pub fn alert_title(state: &WindowState, severity: Severity) -> String {
    match state.rule {
        RuleId::Multiple403 => <multiple_403::Multiple403 as Rule>::title(state, severity),
        RuleId::PodScan => <pod_scan::PodScan as Rule>::title(state, severity),
    }
}

/// Alert summary of a window.
pub fn alert_summary(state: &WindowState) -> serde_json::Value {
    match state.rule {
        RuleId::Multiple403 => <multiple_403::Multiple403 as Rule>::summary(state),
        RuleId::PodScan => <pod_scan::PodScan as Rule>::summary(state),
    }
}

/// Runs every enabled rule on an event.
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    multiple_403: Option<multiple_403::Multiple403>,
    pod_scan: Option<pod_scan::PodScan>,
}

/// Per-rule results of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventVerdicts {
    /// Multiple403's verdict (`NoMatch` when disabled).
    pub multiple_403: Verdict,
    /// PodScan's verdict (`NoMatch` when disabled).
    pub pod_scan: Verdict,
}

impl Detector {
    /// Builds the enabled rules from the configuration.
    pub fn new(config: DetectorConfig) -> Self {
        let multiple_403 = config
            .enabled(RuleId::Multiple403)
            .then(|| multiple_403::Multiple403::new(&config));
        let pod_scan = config
            .enabled(RuleId::PodScan)
            .then(|| pod_scan::PodScan::new(&config));
        Self {
            config,
            multiple_403,
            pod_scan,
        }
    }

    /// The configuration the detector was built from.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// True when the rule runs.
    pub fn enabled(&self, rule: RuleId) -> bool {
        match rule {
            RuleId::Multiple403 => self.multiple_403.is_some(),
            RuleId::PodScan => self.pod_scan.is_some(),
        }
    }

    /// Window parameters of a rule.
    pub fn window_params(&self, rule: RuleId) -> WindowParams {
        let minutes = |m: u64| i64::try_from(m).unwrap_or(i64::MAX / 60_000) * 60_000;
        match rule {
            RuleId::Multiple403 => WindowParams {
                threshold: self.config.multiple_403_threshold,
                window_ms: minutes(self.config.multiple_403_window_minutes),
                max_severity: multiple_403::SEVERITY,
            },
            RuleId::PodScan => WindowParams {
                threshold: pod_scan::THRESHOLD,
                window_ms: minutes(self.config.pod_scan_window_minutes),
                max_severity: Severity::High,
            },
        }
    }

    /// Evaluates every enabled rule, appending matches to `out`.
    pub fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        out: &mut Vec<Match>,
    ) -> EventVerdicts {
        let allow = &self.config.allow_source_cidrs;
        EventVerdicts {
            multiple_403: self
                .multiple_403
                .as_ref()
                .map_or(Verdict::NoMatch, |r| r.evaluate(ev, ctx, allow, out)),
            pod_scan: self
                .pod_scan
                .as_ref()
                .map_or(Verdict::NoMatch, |r| r.evaluate(ev, ctx, allow, out)),
        }
    }
}

/// Adds `value` to a bounded distinct-value tally: at most `max_distinct`
/// values and `max_bytes` of them as JSON.
pub(crate) fn tally(
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
