//! The detections: what a rule is, the registry, and the [`Detector`] that
//! runs every enabled rule on one audit event.
//!
//! A rule is a small unit in the Panther mould, one file each: its metadata,
//! the window it counts in, the bytes a matching line must contain (for the
//! prefilter), `evaluate()` made of early-return guards, and its title,
//! summary and headline. Adding a rule is one new file and one line in
//! [`registry`]; counters, metrics and log fields are keyed by rule id.
//! Rules only look at one event; counting and windows are
//! [`crate::window`]'s job.

pub mod access_entry;
pub mod aws_auth;
pub mod catalog;
pub mod configured;
pub mod filter;
pub mod impersonation;
pub mod listing;
pub mod multiple_403;
pub mod panther;
pub mod pod_scan;
pub mod workload;

use serde_json::Value;

use crate::audit::{opt, AuditEvent, Str};
use crate::bounded::cap;
use crate::config::DetectorConfig;

use crate::net::CidrList;
use crate::vocab::{
    AlertContext, Condition, EventContext, Match, RuleId, RuleMeta, Sample, SampleStatus, Severity,
    Verdict, WindowParams,
};
use crate::window::{WindowState, UNIQUE_FIELD};
use catalog::Catalog;
pub use configured::{check_rules, check_rules_against, minutes, Configured};

/// Every rule there is, built from the settings. One line per rule.
pub fn registry(config: &DetectorConfig) -> Vec<Box<dyn Rule>> {
    let mut rules: Vec<Box<dyn Rule>> = vec![
        Box::new(multiple_403::Multiple403::new(config)),
        Box::new(pod_scan::PodScan::new(config)),
        Box::new(aws_auth::AwsAuthChanged::new()),
        Box::new(impersonation::Impersonation::new()),
    ];
    rules.extend(panther::rules(config));
    rules.extend([
        Box::new(Catalog::new(workload::privileged::WorkloadPrivileged)) as Box<dyn Rule>,
        Box::new(Catalog::new(
            workload::host_namespaces::WorkloadHostNamespaces,
        )),
        Box::new(Catalog::new(workload::host_path::WorkloadHostPath)),
        Box::new(Catalog::new(
            workload::capabilities::WorkloadDangerousCapabilities,
        )),
    ]);
    rules
}

/// The rules that read CloudTrail, not the audit log: listed and turned
/// on or off like the others, but run by the CloudTrail handler. Each with
/// its highest severity and whether `DISABLED_RULES` can turn it off.
pub fn cloudtrail_rules() -> [(&'static RuleMeta, Severity, bool); 1] {
    [(&access_entry::META, access_entry::MAX_SEVERITY, true)]
}

/// What a line's raw bytes must contain for a rule to possibly match it:
/// the prefilter skips a line only when no enabled rule's anchor is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The JSON integer `403` as some member's value (JSON numbers cannot be
    /// escaped, so this survives any encoding of the message).
    MemberValue403,
    /// These ASCII letters (and hyphens), in any case (e.g. `anonymous`
    /// for `system:anonymous`, which the rule compares case-insensitively).
    Letters(&'static str),
    /// These bytes exactly (a member name, or a value the rule compares
    /// exactly, e.g. `aws-auth`): found with a vectorised search.
    Exact(&'static str),
    /// Any of these groups, each of whose strings must all appear exactly
    /// (e.g. `[["create", "pods"]]` for a rule on pod creation, or
    /// `[["roles"], ["rolebindings"]]`): every group of every enabled rule
    /// is looked for in the same pass.
    AnyOf(&'static [&'static [&'static str]]),
    /// As [`Anchor::AnyOf`], and the first address of `sourceIPs` must be
    /// able to be a global one: a message whose every `sourceIPs` member
    /// starts with a private, loopback or link-local address literal (or
    /// that has none) is skipped. For rules about requests from public
    /// addresses.
    AnyOfFromGlobal(&'static [&'static [&'static str]]),
    /// Any line: the rule needs every event parsed.
    Always,
}

/// A detection: one file per rule, the same shape each time.
pub trait Rule: std::fmt::Debug + Send + Sync {
    /// What the rule is.
    fn meta(&self) -> &'static RuleMeta;

    /// The window it counts in: threshold, length, highest severity.
    fn window(&self) -> WindowParams;

    /// What a line it can match must contain.
    fn anchor(&self) -> Anchor;

    /// Evaluates one event (early-return guards, one comment each); on a
    /// match appends one [`Match`] per group to `out`. A request whose
    /// connection address is inside `allow` never matches (see
    /// [`connection_allowlisted`]).
    fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        allow: &CidrList,
        out: &mut Vec<Match>,
    ) -> Verdict;

    /// The alert title for a window at a severity.
    fn title(&self, state: &WindowState, severity: Severity) -> String;

    /// The alert's `summary` object.
    fn summary(&self, state: &WindowState) -> Value;

    /// What happened in a few words, for the subject line.
    fn headline(&self, severity: Severity) -> &'static str;

    /// What CloudWatch must forward for it to see every event it can
    /// match (see [`filter`]); by default everything.
    fn filter(&self) -> filter::Filter {
        filter::Filter::All
    }

    /// Whether it runs when no setting says otherwise (Panther ships some
    /// rules off; `ENABLED_RULES` turns them on).
    fn enabled_by_default(&self) -> bool {
        true
    }

    /// Its own settings beyond the common ones (see
    /// [`crate::config::rule_settings`]): each name with the values it
    /// takes (none listed: any text).
    fn options(&self) -> &'static [RuleOption] {
        &[]
    }

    /// The conditions, joined with `and`, of the CloudWatch Logs Insights
    /// query that lists the window's matching requests (the alert's
    /// `investigate.query`). The default, [`window_conditions`], narrows by
    /// what the window is known to hold; a rule that knows what it matched
    /// says so more precisely. Values are escaped, and unusable ones left
    /// out, when the query is written ([`crate::alert::query_text`]).
    fn investigate(&self, state: &WindowState) -> Vec<Condition> {
        window_conditions(state)
    }
}

/// A rule-specific setting: its name and the values it accepts.
#[derive(Debug, Clone, Copy)]
pub struct RuleOption {
    /// The member name in `RULE_SETTINGS`.
    pub name: &'static str,
    /// What it takes.
    pub kind: OptionKind,
    /// What it does.
    pub doc: &'static str,
}

/// The values a rule-specific setting takes.
#[derive(Debug, Clone, Copy)]
pub enum OptionKind {
    /// One of these words (compared case-insensitively).
    OneOf(&'static [&'static str]),
    /// A comma-separated list of addresses and CIDR ranges.
    Cidrs,
    /// A comma-separated list of words.
    Words,
}

impl OptionKind {
    /// Why `text` is not a value of this kind, if it is not.
    pub fn check(self, text: &str) -> Result<(), String> {
        match self {
            OptionKind::OneOf(values) => {
                if values.iter().any(|v| v.eq_ignore_ascii_case(text.trim())) {
                    Ok(())
                } else {
                    Err(format!("expects one of {}", values.join(", ")))
                }
            }
            OptionKind::Cidrs => CidrList::parse(text).map(|_| ()),
            OptionKind::Words => Ok(()),
        }
    }
}

/// A rule's option from the settings, read as `kind` (already checked at
/// start-up by [`check_rules`]).
pub fn option<'c>(config: &'c DetectorConfig, id: RuleId, name: &str) -> Option<&'c str> {
    config
        .settings(id.as_str())?
        .options
        .get(name)
        .map(String::as_str)
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
            namespace: own(ev.namespace()),
            resource: own(ev.resource()),
            name: own(ev.name()),
            source_ips: first_and_last(ev.source_ips.list(), SAMPLE_ADDRESSES)
                .0
                .into_iter()
                .map(cap)
                .collect(),
        }
    }
}

/// Distinct first entries of `sourceIPs` a sample keeps (plus the last).
pub const SAMPLE_ADDRESSES: usize = 3;

/// Values a default query condition lists at most: a window with more
/// verbs (or resources, or response codes) than this is not narrowed by
/// them.
pub const MAX_LISTED_VALUES: usize = 5;

/// The tallies a window may hold each context field in: the catalog's name
/// ([`catalog::CONTEXT_FIELDS`]) first, then the name Multiple403 keeps
/// from Panther's summary for the same field.
const USERNAME_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[0], multiple_403::SUMMARY_FIELDS[0]];
const SOURCE_IP_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[1], multiple_403::SUMMARY_FIELDS[1]];
const USER_AGENT_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[2]];
const NAMESPACE_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[3]];
const VERB_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[4]];
const RESOURCE_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[5]];
const URI_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[6]];
const CODE_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[7]];

/// A window's tallies: field → value → count.
type Tallies = std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>;

impl AlertContext {
    /// The context of a window: each field's distinct values as the rule
    /// tallied them, else the value of `sample` (the alert's request).
    pub fn of(state: &WindowState, sample: &Sample) -> Self {
        Self::from_parts(Some(&state.tallies), sample)
    }

    /// The context one request gives (an alert stored before alerts had
    /// one).
    pub fn of_sample(sample: &Sample) -> Self {
        Self::from_parts(None, sample)
    }

    fn from_parts(tallies: Option<&Tallies>, sample: &Sample) -> Self {
        let tallied = |names: &[&str]| -> Option<Vec<String>> {
            let t = tallies?;
            names
                .iter()
                .find_map(|n| t.get(*n))
                .map(|m| m.keys().cloned().collect())
        };
        let or = |names: &[&str], value: &Option<String>| {
            tallied(names).unwrap_or_else(|| value.iter().cloned().collect())
        };
        Self {
            username: or(USERNAME_TALLIES, &sample.username),
            source_ips: tallied(SOURCE_IP_TALLIES).unwrap_or_else(|| sample.source_ips.clone()),
            user_agent: or(USER_AGENT_TALLIES, &sample.user_agent),
            namespace: or(NAMESPACE_TALLIES, &sample.namespace),
            verb: or(VERB_TALLIES, &sample.verb),
            resource: or(RESOURCE_TALLIES, &sample.resource),
            request_uri: or(URI_TALLIES, &sample.request_uri),
            response_status: match tallied(CODE_TALLIES) {
                Some(codes) => codes.iter().filter_map(|c| c.parse().ok()).collect(),
                None => sample.response_status.code.into_iter().collect(),
            },
        }
    }
}

/// Every distinct value a context field took in the window, when that is
/// known: a tally that counted the field once per match, with nothing left
/// out (its counts add up to the window's), or the sample's value when the
/// window holds that one request. `None` otherwise: a condition on part of
/// the values would hide requests.
fn all_values(state: &WindowState, names: &[&str], sample: Option<String>) -> Option<Vec<String>> {
    match names.iter().find_map(|n| state.tallies.get(*n)) {
        Some(m) => {
            let counted: u64 = m.values().sum();
            // A distinct-value rule counts a repeated value once in `count`
            // but tallies it every time, so only an overflow-free window of
            // such a rule can be trusted.
            let whole = counted == state.count
                && (state.overflow == 0 || !state.tallies.contains_key(UNIQUE_FIELD));
            whole.then(|| m.keys().cloned().collect())
        }
        None => (state.count == 1).then(|| sample.into_iter().collect()),
    }
}

/// The default query conditions of a window ([`Rule::investigate`]): the
/// source address the alert is about, when it is an address; the username,
/// when the window saw only one; the verbs, resources and response codes,
/// when it saw at most [`MAX_LISTED_VALUES`] of each.
pub fn window_conditions(state: &WindowState) -> Vec<Condition> {
    let mut out = Vec::new();
    if crate::net::parse_ip(&state.source_ip).is_some() {
        out.push(Condition::Mentions(state.source_ip.clone()));
    }
    let s = &state.sample;
    if let Some(users) = all_values(state, USERNAME_TALLIES, s.username.clone()) {
        if users.len() == 1 {
            out.push(Condition::OneOf("user.username", users));
        }
    }
    let listed = |v: &Vec<String>| (1..=MAX_LISTED_VALUES).contains(&v.len());
    for (names, field, value) in [
        (VERB_TALLIES, "verb", &s.verb),
        (RESOURCE_TALLIES, "objectRef.resource", &s.resource),
    ] {
        if let Some(values) = all_values(state, names, value.clone()).filter(listed) {
            out.push(Condition::OneOf(field, values));
        }
    }
    let code = s.response_status.code.map(|c| c.to_string());
    if let Some(codes) = all_values(state, CODE_TALLIES, code).filter(listed) {
        let numbers: Vec<i64> = codes.iter().filter_map(|c| c.parse().ok()).collect();
        if numbers.len() == codes.len() {
            out.push(Condition::OneOfNumbers("responseStatus.code", numbers));
        }
    }
    out
}

/// True for the API server's and EKS's own identities (`system:...`,
/// `eks:...`): nodes, controllers, service accounts and EKS's operators.
pub fn is_system_principal(username: &str) -> bool {
    username.starts_with("system:") || username.starts_with("eks:")
}

/// True when the API server answered 2xx: the request was carried out.
pub fn is_success(code: Option<i64>) -> bool {
    code.is_some_and(|c| (200..300).contains(&c))
}

/// The address that connected to the API server: the last entry of
/// `sourceIPs`. The API server lists the `X-Forwarded-For` and `X-Real-Ip`
/// entries a client sent first and appends the connection's address, so the
/// last entry is the only one a client cannot choose. `None` when the list is
/// missing, unusable or empty.
pub fn connection_address<'e>(ev: &'e AuditEvent<'_>) -> Option<&'e str> {
    ev.source_ips.list().last().map(Str::as_str)
}

/// True when the request's connection address is inside the user's
/// allowlist. Only that address may suppress a request: a forged
/// `X-Forwarded-For` entry naming an allowlisted address hides nothing.
pub fn connection_allowlisted(ev: &AuditEvent<'_>, allow: &CidrList) -> bool {
    connection_address(ev).is_some_and(|ip| allow.contains_text(ip))
}

/// At most `first` distinct values of `items` plus the last one: the bounded
/// fan-out of one event. Returns the values kept and how many distinct-or-not
/// entries were left out. The last entry of `sourceIPs` is the address the
/// API server saw on the connection, which a client cannot forge; the first
/// ones are what Panther and Splunk look at.
pub fn first_and_last<'s>(items: &'s [Str<'_>], first: usize) -> (Vec<&'s str>, usize) {
    let mut kept: Vec<&str> = Vec::with_capacity(first + 1);
    let mut seen = 0;
    for item in items.iter().map(Str::as_str) {
        if kept.len() == first {
            break;
        }
        seen += 1;
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    if let Some(last) = items.last().map(Str::as_str) {
        if seen < items.len() && !kept.contains(&last) {
            kept.push(last);
            seen += 1;
        }
    }
    let dropped = items.len().saturating_sub(seen);
    (kept, dropped)
}

/// Runs every enabled rule on an event.
#[derive(Debug)]
pub struct Detector {
    config: DetectorConfig,
    rules: Vec<Box<dyn Rule>>,
    /// Built on first use, once per detector (not per batch).
    prefilter: std::sync::OnceLock<crate::prefilter::Prefilter>,
}

impl Detector {
    /// Builds the enabled rules of the registry.
    pub fn new(config: DetectorConfig) -> Self {
        let rules = registry(&config);
        Self::with_rules(config, rules)
    }

    /// Builds a detector from the given rules, those that are enabled
    /// (see [`DetectorConfig::enabled`]), each with its settings applied:
    /// how a rule of your own is tried.
    pub fn with_rules(config: DetectorConfig, rules: Vec<Box<dyn Rule>>) -> Self {
        let rules = rules
            .into_iter()
            .filter(|r| config.enabled(r.meta().id.as_str(), r.enabled_by_default()))
            .map(|r| Box::new(Configured::new(r, &config)) as Box<dyn Rule>)
            .collect();
        Self {
            config,
            rules,
            prefilter: std::sync::OnceLock::new(),
        }
    }

    /// The prefilter of the enabled rules' anchors.
    pub fn prefilter(&self) -> &crate::prefilter::Prefilter {
        self.prefilter
            .get_or_init(|| crate::prefilter::Prefilter::new(self))
    }

    /// The configuration the detector was built from.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The enabled rules, in registry order.
    pub fn rules(&self) -> impl Iterator<Item = &dyn Rule> {
        self.rules.iter().map(|r| r.as_ref())
    }

    /// An enabled rule by id.
    pub fn rule(&self, id: RuleId) -> Option<&dyn Rule> {
        self.rules().find(|r| r.meta().id == id)
    }

    /// Evaluates every enabled rule, appending matches to `out` and handing
    /// each rule's verdict to `record`.
    pub fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        out: &mut Vec<Match>,
        mut record: impl FnMut(RuleId, Verdict),
    ) {
        let allow = &self.config.allow_source_cidrs;
        for rule in &self.rules {
            record(rule.meta().id, rule.evaluate(ev, ctx, allow, out));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of `count` matches with these tallies and first request.
    fn window(count: u64, tallies: &[(&str, &str, u64)], sample: Sample) -> WindowState {
        let mut st = WindowState::empty(RuleId::new("T"), "d", 0);
        st.count = count;
        st.source_ip = "203.0.113.9".into();
        st.sample = sample;
        for (field, value, n) in tallies {
            st.tallies
                .entry((*field).to_owned())
                .or_default()
                .insert((*value).to_owned(), *n);
        }
        st
    }

    fn sample() -> Sample {
        Sample {
            verb: Some("get".into()),
            username: Some("alice".into()),
            namespace: Some("prod".into()),
            source_ips: vec!["203.0.113.9".into()],
            response_status: SampleStatus {
                code: Some(403),
                reason: None,
            },
            ..Sample::default()
        }
    }

    #[test]
    fn the_context_lists_tallied_values_else_the_sample() {
        let st = window(
            3,
            &[
                ("verb", "get", 2),
                ("verb", "list", 1),
                ("user:username", "bob", 3),
                ("responseStatus.code", "403", 3),
            ],
            sample(),
        );
        let c = AlertContext::of(&st, &st.sample);
        assert_eq!(c.verb, ["get", "list"]);
        // Multiple403's name for the username
        assert_eq!(c.username, ["bob"]);
        assert_eq!(c.response_status, [403]);
        // not tallied: the sample's
        assert_eq!(c.namespace, ["prod"]);
        assert_eq!(c.source_ips, ["203.0.113.9"]);
        assert!(c.user_agent.is_empty());
    }

    #[test]
    fn default_conditions_narrow_only_by_what_the_whole_window_holds() {
        // GIVEN a window whose tallies count every match
        let st = window(
            3,
            &[
                ("verb", "get", 2),
                ("verb", "list", 1),
                ("username", "bob", 3),
                ("responseStatus.code", "403", 3),
                // a resource only some requests had
                ("resource", "pods", 2),
            ],
            sample(),
        );
        assert_eq!(
            window_conditions(&st),
            [
                Condition::Mentions("203.0.113.9".into()),
                Condition::OneOf("user.username", vec!["bob".into()]),
                Condition::OneOf("verb", vec!["get".into(), "list".into()]),
                Condition::OneOfNumbers("responseStatus.code", vec![403]),
            ]
        );
        // GIVEN more verbs than are listed, and two users: not narrowed by them
        let verbs: Vec<(String, u64)> = (0..6).map(|i| (format!("v{i}"), 1)).collect();
        let mut st = window(6, &[("username", "a", 3), ("username", "b", 3)], sample());
        for (v, n) in &verbs {
            st.tallies
                .entry("verb".into())
                .or_default()
                .insert(v.clone(), *n);
        }
        st.source_ip = "<NO_SOURCE_IP>".into();
        assert_eq!(window_conditions(&st), []);
        // GIVEN nothing tallied: the sample speaks for a one-request window only
        let one = window(1, &[], sample());
        assert_eq!(
            window_conditions(&one)[1..],
            [
                Condition::OneOf("user.username", vec!["alice".into()]),
                Condition::OneOf("verb", vec!["get".into()]),
                Condition::OneOfNumbers("responseStatus.code", vec![403]),
            ]
        );
        assert_eq!(window_conditions(&window(2, &[], sample())).len(), 1);
    }
}
