//! Single-event rules in Panther's mould: a rule looks at one event and,
//! when it matches, says the alert's title, dedup key and severity exactly
//! as Panther's `title()`, `dedup()` and `severity()` compute them for an
//! EKS event. [`Catalog`] turns such a rule into a [`Rule`]: the sample,
//! the request's context fields (Panther's `k8s_alert_context`) tallied
//! per window, the window's title and summary. One file per rule under
//! [`crate::rules::panther`] (or beside it for this project's own).

pub mod k8s;

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::filter::Filter;
use super::{
    connection_address, connection_allowlisted, first_and_last, minutes, Anchor, Rule, RuleOption,
};
use crate::audit::{opt, AuditEvent};
use crate::bounded::cap;
use crate::net::CidrList;
use crate::time::format_rfc3339;
use crate::vocab::{
    strong_hash, EventContext, Match, MatchedEvent, RuleMeta, Severity, Verdict, WindowParams,
};
use crate::window::WindowState;

/// What a single-event rule declares besides its logic.
#[derive(Debug)]
pub struct Spec {
    /// Id, name, source, MITRE, reference, runbook.
    pub meta: RuleMeta,
    /// The severity when the rule gives no other (Panther's YAML
    /// `Severity`, what its `severity()` calls `DEFAULT`).
    pub severity: Severity,
    /// The highest severity the rule can give (its `severity()` may raise
    /// some events above the default).
    pub max_severity: Severity,
    /// Matches (or distinct `unique` values) in one dedup period that raise
    /// the alert (Panther's `Threshold`, 1 unless set).
    pub threshold: u64,
    /// Dedup period in minutes (Panther's `DedupPeriodMinutes`, 60 unless
    /// set).
    pub dedup_minutes: u64,
    /// Whether it runs unless a setting says otherwise (Panther's
    /// `Enabled`).
    pub enabled: bool,
    /// What a line it can match must contain (see [`Anchor`]).
    pub anchor: Anchor,
    /// What CloudWatch must forward for it (see [`crate::rules::filter`]).
    pub filter: Filter,
}

/// A match of a single-event rule: what Panther's functions return for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// `title()`.
    pub title: String,
    /// `dedup()` (Panther falls back to the title).
    pub dedup: String,
    /// `severity()`; `None` for the rule's default.
    pub severity: Option<Severity>,
    /// `unique()`: when set, the threshold counts distinct values.
    pub unique: Option<String>,
    /// The step of an ordered sequence this event is (Sigma's
    /// `temporal_ordered`): the window counts steps taken in order.
    pub step: Option<usize>,
    /// The rule's own context fields (its `alert_context` extras), tallied
    /// per window: (summary field, value).
    pub extra: Vec<(&'static str, String)>,
}

impl Hit {
    /// A hit whose dedup key is its title (Panther's default).
    pub fn titled(title: String) -> Self {
        Self {
            dedup: title.clone(),
            title,
            severity: None,
            unique: None,
            step: None,
            extra: Vec::new(),
        }
    }

    /// A hit with its own dedup key.
    pub fn new(title: String, dedup: String) -> Self {
        Self {
            title,
            dedup,
            severity: None,
            unique: None,
            step: None,
            extra: Vec::new(),
        }
    }

    /// With a severity other than the rule's default.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }

    /// With an extra context field.
    pub fn with(mut self, field: &'static str, value: &str) -> Self {
        self.extra.push((field, cap(value)));
        self
    }
}

/// A single-event rule: one file each, `check()` made of early-return
/// guards in the order of the original's.
pub trait EventRule: std::fmt::Debug + Send + Sync + 'static {
    /// What it declares.
    fn spec(&self) -> &'static Spec;

    /// The hit, if the event matches. `cluster` is the cluster label
    /// (Panther's `p_source_label`).
    fn check(&self, ev: &AuditEvent<'_>, cluster: &str) -> Option<Hit>;

    /// Its own settings (see [`Rule::options`]); read them in the rule's
    /// constructor with [`crate::rules::option`].
    fn options(&self) -> &'static [RuleOption] {
        &[]
    }

    /// See [`Rule::max_threshold`].
    fn max_threshold(&self) -> Option<u64> {
        None
    }
}

/// The context fields every catalog alert tallies, in the order of
/// Panther's `k8s_alert_context`.
pub const CONTEXT_FIELDS: [&str; 8] = [
    "username",
    "sourceIPs{}",
    "userAgent",
    "namespace",
    "verb",
    "resource",
    "requestURI",
    "responseStatus.code",
];

/// The tally that holds hashes of `unique()` values seen in the open
/// window (see [`crate::window`]).
pub const UNIQUE_FIELD: &str = crate::window::UNIQUE_FIELD;

/// The tally of the steps of an ordered sequence (see [`crate::window`]).
pub const STEP_FIELD: &str = crate::window::STEP_FIELD;

/// Distinct addresses of one event tallied (the first ones and the
/// connection's).
const MAX_CONTEXT_ADDRESSES: usize = 4;

/// A single-event rule as a [`Rule`].
#[derive(Debug)]
pub struct Catalog<R> {
    rule: R,
}

impl<R: EventRule> Catalog<R> {
    /// Wraps the rule; settings are applied by [`super::Configured`].
    pub fn new(rule: R) -> Self {
        Self { rule }
    }

    /// The wrapped rule.
    pub fn inner(&self) -> &R {
        &self.rule
    }
}

/// The request's context fields, capped, in [`CONTEXT_FIELDS`] order.
pub fn context_facts(ev: &AuditEvent<'_>) -> (Vec<(&'static str, String)>, usize) {
    let mut facts = Vec::with_capacity(CONTEXT_FIELDS.len() + 3);
    if let Some(u) = ev.username() {
        facts.push((CONTEXT_FIELDS[0], cap(u)));
    }
    let (addresses, dropped) = first_and_last(ev.source_ips.list(), MAX_CONTEXT_ADDRESSES - 1);
    for a in addresses {
        facts.push((CONTEXT_FIELDS[1], cap(a)));
    }
    let strings = [
        (CONTEXT_FIELDS[2], opt(&ev.user_agent)),
        (CONTEXT_FIELDS[3], ev.namespace()),
        (CONTEXT_FIELDS[4], opt(&ev.verb)),
        (CONTEXT_FIELDS[5], ev.resource()),
        (CONTEXT_FIELDS[6], opt(&ev.request_uri)),
    ];
    for (field, value) in strings {
        if let Some(v) = value {
            facts.push((field, cap(v)));
        }
    }
    if let Some(code) = ev.status_code() {
        facts.push((CONTEXT_FIELDS[7], code.to_string()));
    }
    (facts, dropped)
}

impl<R: EventRule> Rule for Catalog<R> {
    fn meta(&self) -> &'static RuleMeta {
        &self.rule.spec().meta
    }

    fn window(&self) -> WindowParams {
        let spec = self.rule.spec();
        WindowParams {
            threshold: spec.threshold,
            window_ms: minutes(spec.dedup_minutes),
            max_severity: spec.max_severity,
        }
    }

    fn anchor(&self) -> Anchor {
        self.rule.spec().anchor
    }

    fn enabled_by_default(&self) -> bool {
        self.rule.spec().enabled
    }

    fn headline(&self, _severity: Severity) -> &'static str {
        self.rule.spec().meta.name
    }

    fn options(&self) -> &'static [RuleOption] {
        self.rule.options()
    }

    fn max_threshold(&self) -> Option<u64> {
        self.rule.max_threshold()
    }

    fn filter(&self) -> Filter {
        self.rule.spec().filter
    }

    fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        allow: &CidrList,
        out: &mut Vec<Match>,
    ) -> Verdict {
        let Some(hit) = self.rule.check(ev, ctx.cluster) else {
            return Verdict::NoMatch;
        };
        // The user's own allowlist, on the connection address only.
        if connection_allowlisted(ev, allow) {
            return Verdict::NoMatch;
        }
        let spec = self.rule.spec();
        let (mut facts, dropped) = context_facts(ev);
        facts.extend(hit.extra);
        let mut own = Vec::new();
        if let Some(u) = hit.unique {
            // A hash bounds what a window keeps of each distinct value.
            own.push((UNIQUE_FIELD, format!("{:032x}", strong_hash(&[&u]))));
        }
        if let Some(step) = hit.step {
            own.push((STEP_FIELD, step.to_string()));
        }
        out.push(Match {
            rule: spec.meta.id,
            dedup: cap_key(&hit.dedup),
            at_ms: ctx.at_ms,
            source_ip: cap(connection_address(ev).unwrap_or("<NO_SOURCE_IP>")),
            severity: hit.severity.unwrap_or(spec.severity),
            event: Arc::new(MatchedEvent {
                title: crate::bounded::cap_to(&hit.title, MAX_TITLE_BYTES),
                sample: ev.sample(),
                facts,
                dropped: dropped as u64,
            }),
            facts: own,
        });
        Verdict::Matched {
            matches: 1,
            dropped,
        }
    }

    /// The title of the window's first match, as Panther titles an alert by
    /// its first event.
    fn title(&self, state: &WindowState, _severity: Severity) -> String {
        state.title.clone()
    }

    /// Count, first and last time, and the distinct context values of the
    /// window's requests.
    fn summary(&self, state: &WindowState) -> Value {
        let mut out = Map::new();
        out.insert("count".into(), json!(state.count));
        out.insert("firstTime".into(), json!(format_rfc3339(state.first_seen)));
        out.insert("lastTime".into(), json!(format_rfc3339(state.last_seen)));
        for (field, values) in &state.tallies {
            if field == UNIQUE_FIELD {
                out.insert("distinct".into(), json!(values.len()));
                continue;
            }
            if field == STEP_FIELD {
                continue;
            }
            let values: Vec<&String> = values.keys().collect();
            out.insert(field.clone(), json!(values));
        }
        Value::Object(out)
    }
}

/// Longest title kept (the parts of a title are the request's own
/// strings; the subject line is cut much shorter still).
pub const MAX_TITLE_BYTES: usize = 1024;

/// Longest dedup key kept (Panther truncates its dedup strings at 1,000
/// characters; a DynamoDB key takes 2,048 bytes).
pub const MAX_DEDUP_BYTES: usize = 1000;

/// A dedup key of at most [`MAX_DEDUP_BYTES`]: a longer one is cut, with
/// the hash of the whole key after the cut (two keys that differ only
/// past the cut stay two).
pub fn cap_key(key: &str) -> String {
    crate::bounded::cap_key_to(key, MAX_DEDUP_BYTES)
}
