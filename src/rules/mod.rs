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
pub mod context;
pub mod detector;
pub mod filter;
pub mod impersonation;
pub mod listing;
pub mod multiple_403;
pub mod options;
pub mod panther;
pub mod pod_scan;
pub mod sigma;
pub mod workload;

use serde_json::Value;

use crate::audit::{AuditEvent, Str};
use crate::config::DetectorConfig;
use crate::net::CidrList;
use crate::vocab::{Condition, EventContext, Match, RuleMeta, Severity, Verdict, WindowParams};
use crate::window::WindowState;
use catalog::Catalog;
pub use configured::{check_rules, check_rules_against, minutes, Configured};
pub use context::window_conditions;
pub use detector::Detector;
pub use options::{option, OptionKind, RuleOption};

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
    rules.extend(sigma::rules(config));
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
    /// These ASCII letters (and hyphens or colons), in any case (e.g.
    /// `system:anonymous`, which PodScan compares case-insensitively).
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
    /// As [`Anchor::AnyOf`], and the request's user must be able to be a
    /// person: a message whose every `username` member names a system
    /// principal (Panther's `is_system_principal`) is skipped. For rules
    /// that ignore system principals' requests (kubelets and controllers
    /// read secrets all day).
    AnyOfByPerson(&'static [&'static [&'static str]]),
    /// Clauses that must all hold, each by one of its strings, found ASCII
    /// case-insensitively (a Sigma rule's, see [`crate::sigma::literals`]):
    /// every such string of every enabled rule is looked for in one pass.
    Folded(&'static [&'static [Needle]]),
    /// Any line: the rule needs every event parsed.
    Always,
}

/// A string a [`Anchor::Folded`] clause looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needle {
    /// Lower-case text.
    pub text: &'static str,
    /// Digits that must stand alone: no digit right before or after them,
    /// no `.` right before (an integer compared for equality).
    pub number: bool,
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

    /// The highest threshold it can count to, when it counts distinct
    /// values: a window keeps [`crate::window::MAX_DISTINCT_VALUES`] of
    /// them, and a value it did not keep would count again every time.
    fn max_threshold(&self) -> Option<u64> {
        None
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
