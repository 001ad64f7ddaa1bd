//! The shared vocabulary of the detector, with no logic of its own: rule
//! ids and metadata, severities, matches and verdicts, window settings, and
//! the alert document. Every other core module builds on these, so the core
//! reads top-down: `vocab` ← `config`, `window` ← `rules` ← `alert`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Millis;

/// A rule's public id, e.g. `Amazon.EKS.Audit.Multiple403`. Open-ended, so
/// a new rule needs no change here; cheap to copy and compare.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(&'static str);

impl RuleId {
    /// The id of a rule defined in code.
    pub const fn new(id: &'static str) -> Self {
        Self(id)
    }

    /// The public rule id.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// An id read back from storage: kept once for the life of the process
    /// (there are as many as rules), so records stay `Copy`-cheap.
    fn intern(id: &str) -> Self {
        static SEEN: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
        let mut seen = match SEEN.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(known) = seen.get(id) {
            return Self(known);
        }
        let leaked: &'static str = Box::leak(id.to_owned().into_boxed_str());
        seen.insert(leaked);
        Self(leaked)
    }
}

impl std::fmt::Debug for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::intern(&id))
    }
}

/// Alert severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Worth a look when convenient (Panther's Multiple403 is INFO: 403s
    /// alone are often misconfigured clients).
    Info,
    /// Someone tried something and was refused.
    Low,
    /// Panther's and Splunk's scale has it; no shipped rule gives it yet, a
    /// rule of your own may.
    Medium,
    /// Something that should not succeed did (an anonymous pod listing).
    High,
    /// The top of the scale for rules of your own; subscribers can filter
    /// on it (`{"severity": ["HIGH", "CRITICAL"]}`).
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

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    /// Panther's catalog (`panther-labs/panther-analysis`), ported.
    Panther,
    /// Splunk's security content, ported.
    Splunk,
    /// This project's own.
    Project,
    /// Written by the user.
    User,
    /// A Sigma rule of the user's.
    Sigma,
    /// A rule of SigmaHQ's catalog, bundled.
    SigmaHq,
}

impl Source {
    /// `Panther`, `Splunk`, `eks-audit-detector`, `user`, `Sigma`, `SigmaHQ`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Panther => "Panther",
            Source::Splunk => "Splunk",
            Source::Project => "eks-audit-detector",
            Source::User => "user",
            Source::Sigma => "Sigma",
            Source::SigmaHq => "SigmaHQ",
        }
    }
}

/// What a rule is, independent of any event: what the alert tells people.
#[derive(Debug)]
pub struct RuleMeta {
    /// Public rule id.
    pub id: RuleId,
    /// Where it comes from.
    pub source: Source,
    /// Human-readable name, as in the original catalog.
    pub name: &'static str,
    /// MITRE ATT&CK technique(s).
    pub mitre: &'static str,
    /// Where to read more.
    pub reference: &'static str,
    /// What to check when the alert arrives.
    pub runbook: &'static str,
}

/// A rule's window settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowParams {
    /// Matches in one window that raise the alert.
    pub threshold: u64,
    /// Window length in ms.
    pub window_ms: Millis,
    /// The highest severity the rule can give a window: once alerted at it,
    /// the window is saturated.
    pub max_severity: Severity,
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
    /// `objectRef.namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `objectRef.resource`.
    #[serde(default)]
    pub resource: Option<String>,
    /// `objectRef.name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `sourceIPs`, bounded: the first 3 distinct entries and the last (the
    /// connection's), each capped.
    #[serde(default, rename = "sourceIPs")]
    pub source_ips: Vec<String>,
}

/// `responseStatus` of the sample event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleStatus {
    /// HTTP status code.
    pub code: Option<i64>,
    /// Kubernetes reason, e.g. `Forbidden`.
    pub reason: Option<String>,
}

/// The request fields Panther's `k8s_alert_context` lists, as the window saw
/// them: for each, the distinct values the rule tallied in the window, else
/// the value of the alert's sample request. Empty lists for alerts that are
/// not about requests (tampering, silence).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertContext {
    /// `user.username`.
    pub username: Vec<String>,
    /// `sourceIPs` entries.
    #[serde(rename = "sourceIPs")]
    pub source_ips: Vec<String>,
    /// `userAgent`.
    #[serde(rename = "userAgent")]
    pub user_agent: Vec<String>,
    /// `objectRef.namespace`.
    pub namespace: Vec<String>,
    /// `verb`.
    pub verb: Vec<String>,
    /// `objectRef.resource`.
    pub resource: Vec<String>,
    /// `requestURI`.
    #[serde(rename = "requestURI")]
    pub request_uri: Vec<String>,
    /// `responseStatus.code`.
    #[serde(rename = "responseStatus")]
    pub response_status: Vec<i64>,
}

impl AlertContext {
    /// True when no field has a value.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Where to look next: a CloudWatch Logs Insights query over the alert's
/// log group that lists the window's matching requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Investigate {
    /// The query, to run on the window's time range.
    pub query: String,
    /// A console link that opens the query on the window's time range and
    /// log group; null when the region or the log group is unknown.
    pub console_url: Option<String>,
}

/// One condition of an investigation query (see
/// [`crate::rules::Rule::investigate`]), kept as data so that rendering it
/// (escaping every value, leaving out the unusable ones) is done in one
/// place, [`crate::alert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The raw event contains this text: `@message like "<text>"`.
    Mentions(String),
    /// A field is one of these strings: `<field> = "<v>"` or
    /// `<field> in ["<v>", ...]`.
    OneOf(&'static str, Vec<String>),
    /// A field is one of these numbers.
    OneOfNumbers(&'static str, Vec<i64>),
    /// Text the rule writes itself, with no request data in it (e.g. a
    /// case-insensitive regular expression: `verb like /(?i)^list$/`).
    Fixed(&'static str),
}

/// What every match of one event shares, built once per event and capped,
/// so a request that fans out into several keys costs its text only once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchedEvent {
    /// Title of the event's matches (the window's first one is kept).
    pub title: String,
    /// Sample fields of the event, shared with the windows it opens.
    pub sample: Arc<Sample>,
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

/// One alert, as published. Rendered by [`crate::alert`]; kept here as
/// plain data because undelivered alerts wait in a key's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic: the same window (and escalation) always gets the same
    /// id, so subscribers can drop a duplicate delivery.
    pub alert_id: String,
    /// Public rule id.
    pub rule_id: RuleId,
    /// Rule name from the original catalog.
    pub rule_name: String,
    /// What happened in a few words, for subject lines (e.g. `EKS 403 burst`).
    #[serde(default)]
    pub headline: String,
    /// `INFO` … `CRITICAL`.
    pub severity: Severity,
    /// True for a second alert of a window whose severity went up.
    pub escalation: bool,
    /// One-line description.
    pub title: String,
    /// Dedup key of the window.
    pub dedup: String,
    /// Cluster label.
    pub cluster: String,
    /// Source IP the alert is about.
    pub source_ip: String,
    /// Matches in the window when the alert was raised.
    pub event_count: u64,
    /// The rule's threshold.
    pub threshold: u64,
    /// Window start, RFC3339 UTC.
    pub window_start: String,
    /// Window end, RFC3339 UTC.
    pub window_end: String,
    /// Earliest match, RFC3339 UTC.
    pub first_seen: String,
    /// Latest match so far, RFC3339 UTC.
    pub last_seen: String,
    /// MITRE ATT&CK technique(s).
    pub mitre: String,
    /// Where to read more.
    pub reference: String,
    /// What to check next.
    pub runbook: String,
    /// Panther summary attributes or Splunk's columns.
    pub summary: serde_json::Value,
    /// CloudWatch log group.
    pub log_group: String,
    /// AWS account that owns the log group.
    pub account: String,
    /// The window's first matching event (for an escalation: the first
    /// event at the higher severity).
    pub sample: Sample,
    /// Addresses or groups of the window's requests that got no key of
    /// their own (a long `X-Forwarded-For` chain): see the README.
    #[serde(default)]
    pub fanout_dropped: u64,
    /// The function's AWS region (filled when the alert is published).
    #[serde(default)]
    pub region: Option<String>,
    /// `arn:<partition>:eks:<region>:<account>:cluster/<name>`, from the
    /// log group; null when the region, the account or a well-formed log
    /// group is missing (filled when the alert is published).
    #[serde(default)]
    pub cluster_arn: Option<String>,
    /// The request fields of the window (see [`AlertContext`]).
    #[serde(default)]
    pub context: AlertContext,
    /// The query that lists the window's requests, and its console link;
    /// null for alerts that are not about requests in the log group.
    #[serde(default)]
    pub investigate: Option<Investigate>,
}

/// The first 128 bits of the SHA-256 of `parts` (each length-prefixed):
/// for values an attacker names, where two chosen to collide must not
/// count as one (FNV's collisions can be computed in minutes).
pub fn strong_hash(parts: &[&str]) -> u128 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

/// 128-bit FNV-1a: stable across versions and platforms, unlike `Hash`.
/// Not for values chosen to collide (see [`strong_hash`]).
pub fn stable_hash(parts: &[&str]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    for part in parts {
        for b in part.as_bytes().iter().chain(std::iter::once(&0xff)) {
            h ^= u128::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

impl Alert {
    /// The alert as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data to a string cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
