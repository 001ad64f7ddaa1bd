//! `Amazon.EKS.Audit.PodScan`: Splunk's "Amazon EKS Kubernetes Pod scan
//! detection" (id dbfca1dd-b8e5-4ba4-be0e-e565e5d62002), an unauthenticated
//! `system:anonymous` listing of every pod in the cluster (MITRE T1526).
//!
//! Splunk's search filters on `user.username="system:anonymous" verb=list
//! objectRef.resource=pods requestURI="/api/v1/pods"` (field values compared
//! case-insensitively and exactly) and then groups with `stats ... by src_ip
//! cluster_name user.username user.groups{}`: one row per distinct source IP
//! and per distinct group of the event, and an event missing either field
//! falls out of the `stats`. There is no stage, status or IP condition.
//!
//! The first entries of `sourceIPs` are the client's `X-Forwarded-For`, so
//! the allowlist only looks at the connection address (the last entry), and
//! under the hardened setting (`MULTIPLE_403_SOURCE=first-or-last`) a request
//! makes one key, on its connection address, whatever it forwards.

use std::sync::Arc;

use serde_json::{json, Value};

use super::minutes;
use super::{connection_allowlisted, first_and_last, Anchor, OptionKind, Rule, RuleOption};
use crate::audit::{opt, AuditEvent, SourceIps, Str};
use crate::bounded::{cap, key_part};
use crate::config::{DetectorConfig, PodScanMatch, SourceAddress};
use crate::net::CidrList;
use crate::time::format_rfc3339;
use crate::vocab::{
    Condition, EventContext, Match, MatchedEvent, RuleId, RuleMeta, Severity, Source, Verdict,
    WindowParams,
};
use crate::window::{TallyMap as Tallies, WindowState};

/// Rule metadata.
pub static META: RuleMeta = RuleMeta {
    id: RuleId::new("Amazon.EKS.Audit.PodScan"),
    source: Source::Splunk,
    name: "Amazon EKS Kubernetes Pod scan detection",
    mitre: "T1526",
    reference: "https://research.splunk.com/cloud/dbfca1dd-b8e5-4ba4-be0e-e565e5d62002/",
    runbook:
        "An unauthenticated client asked for every pod in the cluster. At HIGH the API server \
              answered: anonymous users can read pods, so review ClusterRoleBindings that name \
              system:anonymous or system:unauthenticated and remove them. At LOW it was refused: \
              check who owns the source IP and whether the endpoint should be public.",
};

/// One anonymous pod listing is enough (Splunk alerts on any result row).
pub const THRESHOLD: u64 = 1;

/// Summary columns, named as Splunk's `stats` output.
pub const SUMMARY_FIELDS: [&str; 5] = [
    "responseStatus.reason",
    "responseStatus.code",
    "userAgent",
    "verb",
    "requestURI",
];

/// The `user.groups{}` value of the group, tallied to render the title.
pub const GROUP_FIELD: &str = "user.groups{}";

/// The addresses a request claimed, tallied under the hardened setting
/// (where they are not part of the key) and shown as `values(sourceIPs{})`.
pub const CLAIMED_FIELD: &str = "sourceIPs{}";

const ANONYMOUS: &str = "system:anonymous";

/// Keys one event can make: its first distinct source addresses plus the
/// last one (the connection's), times its first distinct groups. Splunk makes
/// one row per address and group; a forwarded chain of thousands of entries
/// would make thousands of alerts from one request.
pub const MAX_ADDRESSES_PER_EVENT: usize = 4;

/// Distinct groups of one event that get a key (anonymous requests carry one,
/// `system:unauthenticated`).
pub const MAX_GROUPS_PER_EVENT: usize = 4;

/// The rule.
#[derive(Debug, Clone)]
pub struct PodScan {
    uri_match: PodScanMatch,
    source: SourceAddress,
    window: WindowParams,
}

impl PodScan {
    /// Builds the rule with its URI comparison mode, source-address choice
    /// and window.
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            uri_match: match super::option(config, META.id, "match").map(str::trim) {
                Some(v) if v.eq_ignore_ascii_case("broad") => PodScanMatch::Broad,
                Some(v) if v.eq_ignore_ascii_case("exact") => PodScanMatch::Exact,
                _ => config.pod_scan_match,
            },
            source: super::multiple_403::source_setting(config, META.id),
            window: WindowParams {
                threshold: THRESHOLD,
                window_ms: minutes(config.pod_scan_window_minutes),
                // A listing that succeeded is as bad as it gets.
                max_severity: Severity::High,
            },
        }
    }

    fn uri_matches(&self, uri: &str) -> bool {
        if uri.eq_ignore_ascii_case("/api/v1/pods") {
            return true;
        }
        if self.uri_match == PodScanMatch::Exact {
            return false;
        }
        // Broad: any query string, and namespaced pod lists.
        let path = uri.split_once('?').map_or(uri, |(p, _)| p);
        if path.eq_ignore_ascii_case("/api/v1/pods") {
            return true;
        }
        let lower = path.to_ascii_lowercase();
        match lower
            .strip_prefix("/api/v1/namespaces/")
            .and_then(|rest| rest.strip_suffix("/pods"))
        {
            Some(ns) => !ns.is_empty() && !ns.contains('/'),
            None => false,
        }
    }
}

/// What every match of the event shares: its sample and summary values
/// (with the `claimed` addresses when they are not in the key).
fn matched_event(ev: &AuditEvent<'_>, claimed: &[&str], dropped: usize) -> MatchedEvent {
    let mut facts = Vec::with_capacity(SUMMARY_FIELDS.len() + claimed.len());
    let mut fact = |field: &'static str, value: Option<&str>| {
        if let Some(v) = value {
            facts.push((field, cap(v)));
        }
    };
    fact(SUMMARY_FIELDS[0], ev.status_reason());
    fact(
        SUMMARY_FIELDS[1],
        ev.status_code().map(|c| c.to_string()).as_deref(),
    );
    fact(SUMMARY_FIELDS[2], opt(&ev.user_agent));
    fact(SUMMARY_FIELDS[3], opt(&ev.verb));
    fact(SUMMARY_FIELDS[4], opt(&ev.request_uri));
    for ip in claimed {
        fact(CLAIMED_FIELD, Some(ip));
    }
    MatchedEvent {
        title: String::new(),
        sample: ev.sample(),
        facts,
        dropped: dropped as u64,
    }
}

/// A listing that passed the guards, ready to be keyed.
struct Found<'e, 'a> {
    /// `sourceIPs`, not empty: the forwarded entries, then the connection's.
    ips: &'e [Str<'a>],
    /// `user.groups`, not empty.
    groups: &'e [Str<'a>],
    /// `user.username` as written (it matched `system:anonymous`).
    username: &'e str,
    /// LOW or HIGH, from the response code.
    severity: Severity,
}

impl Found<'_, '_> {
    /// Splunk's rows: one key per address and group, bounded (see
    /// [`MAX_ADDRESSES_PER_EVENT`]).
    fn per_address_and_group(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        out: &mut Vec<Match>,
    ) -> Verdict {
        let (ips, dropped_ips) = first_and_last(self.ips, MAX_ADDRESSES_PER_EVENT - 1);
        let (groups, dropped_groups) = first_and_last(self.groups, MAX_GROUPS_PER_EVENT - 1);
        let dropped = dropped_ips + dropped_groups;
        let shared = Arc::new(matched_event(ev, &[], dropped));
        for ip in &ips {
            for group in &groups {
                out.push(self.to_match(ctx, ip, group, &shared));
            }
        }
        Verdict::Matched {
            matches: ips.len() * groups.len(),
            dropped,
        }
    }

    /// Hardened: one key, on the connection address (the last entry) and the
    /// first group; the claimed addresses are tallied, not keyed.
    fn on_the_connection(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        out: &mut Vec<Match>,
    ) -> Verdict {
        let (Some(connection), Some(group)) = (self.ips.last(), self.groups.first()) else {
            return Verdict::NoMatch;
        };
        let (claimed, dropped_ips) = first_and_last(self.ips, MAX_ADDRESSES_PER_EVENT - 1);
        // Other groups get no key of their own (anonymous requests have one).
        let dropped_groups = self.groups.iter().filter(|g| *g != group).count();
        let dropped = dropped_ips + dropped_groups;
        let shared = Arc::new(matched_event(ev, &claimed, dropped));
        out.push(self.to_match(ctx, connection.as_str(), group.as_str(), &shared));
        Verdict::Matched {
            matches: 1,
            dropped,
        }
    }

    fn to_match(
        &self,
        ctx: EventContext<'_>,
        ip: &str,
        group: &str,
        shared: &Arc<MatchedEvent>,
    ) -> Match {
        Match {
            rule: META.id,
            dedup: dedup_key(ctx.cluster, ip, self.username, group),
            at_ms: ctx.at_ms,
            source_ip: cap(ip),
            severity: self.severity,
            event: Arc::clone(shared),
            facts: vec![(GROUP_FIELD, cap(group))],
        }
    }
}

/// HIGH when the API server answered 2xx (anonymous users can list all
/// pods), LOW when it refused.
pub fn severity_of(code: Option<i64>) -> Severity {
    match code {
        Some(200..=299) => Severity::High,
        _ => Severity::Low,
    }
}

/// `{cluster}_{src_ip}_{username}_{group}`, Splunk's `by` clause.
pub fn dedup_key(cluster: &str, ip: &str, username: &str, group: &str) -> String {
    format!(
        "{}_{}_{}_{}",
        key_part(cluster),
        key_part(ip),
        key_part(username),
        key_part(group)
    )
}

/// PodScan's own settings.
static OPTIONS: [RuleOption; 2] = [
    RuleOption {
        name: "match",
        kind: OptionKind::OneOf(&["exact", "broad"]),
        doc: "exact: only /api/v1/pods, as Splunk's search; broad: also queries and \
              namespaced lists (default: POD_SCAN_MATCH, else exact)",
    },
    super::multiple_403::SOURCE_OPTION,
];

impl Rule for PodScan {
    fn filter(&self) -> super::filter::Filter {
        super::filter::Filter::Terms(&[r#"$.user.username = "system:anonymous""#])
    }

    fn options(&self) -> &'static [RuleOption] {
        &OPTIONS
    }

    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn window(&self) -> WindowParams {
        self.window
    }

    /// `user.username == "system:anonymous"`, compared case-insensitively.
    fn anchor(&self) -> Anchor {
        Anchor::Letters("system:anonymous")
    }

    fn headline(&self, severity: Severity) -> &'static str {
        if severity >= Severity::High {
            "EKS anonymous pod listing ALLOWED"
        } else {
            "EKS anonymous pod scan"
        }
    }

    fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        allow: &CidrList,
        out: &mut Vec<Match>,
    ) -> Verdict {
        // Only unauthenticated requests.
        let Some(username) = ev.username().filter(|u| u.eq_ignore_ascii_case(ANONYMOUS)) else {
            return Verdict::NoMatch;
        };
        // Only listing...
        if !opt(&ev.verb).is_some_and(|v| v.eq_ignore_ascii_case("list")) {
            return Verdict::NoMatch;
        }
        // ...of pods...
        if !ev
            .resource()
            .is_some_and(|r| r.eq_ignore_ascii_case("pods"))
        {
            return Verdict::NoMatch;
        }
        // ...across the whole cluster.
        if !opt(&ev.request_uri).is_some_and(|u| self.uri_matches(u)) {
            return Verdict::NoMatch;
        }
        // Splunk's stats drops events without a src_ip or a group.
        let SourceIps::List(ips) = &ev.source_ips else {
            return Verdict::NoMatch;
        };
        let groups = ev.groups();
        if ips.is_empty() || groups.is_empty() {
            return Verdict::NoMatch;
        }
        // The user's own allowlist, on the connection address only.
        if connection_allowlisted(ev, allow) {
            return Verdict::NoMatch;
        }
        let found = Found {
            ips,
            groups,
            username,
            severity: severity_of(ev.status_code()),
        };
        match self.source {
            SourceAddress::First => found.per_address_and_group(ev, ctx, out),
            SourceAddress::FirstOrLast => found.on_the_connection(ev, ctx, out),
        }
    }
    fn title(&self, state: &WindowState, severity: Severity) -> String {
        let group = state
            .tallies
            .get(GROUP_FIELD)
            .and_then(|m| m.keys().next())
            .map_or("<NO_GROUP>", String::as_str);
        let user = state.sample.username.as_deref().unwrap_or(ANONYMOUS);
        if severity >= Severity::High {
            format!(
                "[{}] listed all pods on [{}] as [{user}] in group [{group}] and the API server allowed it",
                state.source_ip, state.cluster
            )
        } else {
            format!(
                "[{}] tried to list all pods on [{}] as [{user}] in group [{group}] and was refused",
                state.source_ip, state.cluster
            )
        }
    }

    /// The anonymous pod listings from the window's address, compared as
    /// the rule compares them (case-insensitively; the URI as configured).
    fn investigate(&self, state: &WindowState) -> Vec<Condition> {
        let mut out = Vec::with_capacity(5);
        if crate::net::parse_ip(&state.source_ip).is_some() {
            out.push(Condition::Mentions(state.source_ip.clone()));
        }
        out.extend([
            Condition::Fixed(r"user.username like /(?i)^system:anonymous$/"),
            Condition::Fixed(r"verb like /(?i)^list$/"),
            Condition::Fixed(r"objectRef.resource like /(?i)^pods$/"),
            Condition::Fixed(match self.uri_match {
                PodScanMatch::Exact => r"requestURI like /(?i)^\/api\/v1\/pods$/",
                PodScanMatch::Broad => {
                    r"requestURI like /(?i)^\/api\/v1\/(namespaces\/[^\/?]+\/)?pods(\?|$)/"
                }
            }),
        ]);
        out
    }

    /// Splunk's columns: count, firstTime, lastTime and `values(...)`.
    fn summary(&self, state: &WindowState) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("count".into(), json!(state.count));
        out.insert("firstTime".into(), json!(format_rfc3339(state.first_seen)));
        out.insert("lastTime".into(), json!(format_rfc3339(state.last_seen)));
        values_columns(&state.tallies, &mut out);
        Value::Object(out)
    }
}

/// Splunk's `values(...)` columns from a window's tallies (BTreeMap keys:
/// distinct and sorted, as `values()`), plus, under the hardened setting
/// only, the addresses the requests claimed.
fn values_columns(tallies: &Tallies, out: &mut serde_json::Map<String, Value>) {
    for field in SUMMARY_FIELDS {
        let values: Vec<&String> = tallies
            .get(field)
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        out.insert(format!("values({field})"), json!(values));
    }
    if let Some(claimed) = tallies.get(CLAIMED_FIELD) {
        let values: Vec<&String> = claimed.keys().collect();
        out.insert(format!("values({CLAIMED_FIELD})"), json!(values));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tallies(fields: &[(&str, &str)]) -> Tallies {
        let mut t = Tallies::new();
        for (field, value) in fields {
            *t.entry((*field).to_owned())
                .or_default()
                .entry((*value).to_owned())
                .or_default() += 1;
        }
        t
    }

    #[test]
    fn claimed_addresses_are_a_column_only_when_tallied() {
        // GIVEN a default-mode window: its address is in the key
        let mut out = serde_json::Map::new();
        values_columns(&tallies(&[("verb", "list")]), &mut out);
        assert!(!out.contains_key("values(sourceIPs{})"));
        assert_eq!(out["values(verb)"], json!(["list"]));
        // GIVEN a hardened window: the forwarded addresses are shown
        let mut out = serde_json::Map::new();
        values_columns(
            &tallies(&[
                (CLAIMED_FIELD, "52.94.133.7"),
                (CLAIMED_FIELD, "186.96.216.108"),
            ]),
            &mut out,
        );
        assert_eq!(
            out["values(sourceIPs{})"],
            json!(["186.96.216.108", "52.94.133.7"])
        );
    }
}
