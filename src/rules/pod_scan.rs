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

use std::sync::Arc;

use serde_json::{json, Value};

use super::multiple_403::minutes;
use super::{first_and_last, Anchor, Rule};
use crate::audit::{opt, AuditEvent, SourceIps};
use crate::bounded::cap;
use crate::config::{DetectorConfig, PodScanMatch};
use crate::net::CidrList;
use crate::time::format_rfc3339;
use crate::vocab::{
    EventContext, Match, MatchedEvent, RuleId, RuleMeta, Sample, Severity, Verdict, WindowParams,
};
use crate::window::WindowState;

/// Rule metadata.
pub static META: RuleMeta = RuleMeta {
    id: RuleId::new("Amazon.EKS.Audit.PodScan"),
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
    window: WindowParams,
}

impl PodScan {
    /// Builds the rule with its URI comparison mode and window.
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            uri_match: config.pod_scan_match,
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

/// What every match of the event shares: its sample and summary values.
fn matched_event(ev: &AuditEvent<'_>, dropped: usize) -> MatchedEvent {
    let mut facts = Vec::with_capacity(5);
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
    MatchedEvent {
        title: String::new(),
        sample: Sample::of(ev),
        facts,
        dropped: dropped as u64,
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
        cap(cluster),
        cap(ip),
        cap(username),
        cap(group)
    )
}

impl Rule for PodScan {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn window(&self) -> WindowParams {
        self.window
    }

    /// `user.username == "system:anonymous"`, compared case-insensitively.
    fn anchor(&self) -> Anchor {
        Anchor::Letters("anonymous")
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
        // Bounded fan-out: a few addresses and groups per event, see
        // MAX_ADDRESSES_PER_EVENT.
        let (ips, dropped_ips) = first_and_last(ips, MAX_ADDRESSES_PER_EVENT - 1);
        let groups = ev.groups();
        let (groups, dropped_groups) = first_and_last(groups, MAX_GROUPS_PER_EVENT - 1);
        let dropped = dropped_ips + dropped_groups;
        let severity = severity_of(ev.status_code());
        let before = out.len();
        let mut event: Option<Arc<MatchedEvent>> = None;
        for ip in ips {
            // The user's own allowlist.
            if allow.contains_text(ip) {
                continue;
            }
            for group in &groups {
                let shared = event.get_or_insert_with(|| Arc::new(matched_event(ev, dropped)));
                out.push(Match {
                    rule: META.id,
                    dedup: dedup_key(ctx.cluster, ip, username, group),
                    at_ms: ctx.at_ms,
                    source_ip: cap(ip),
                    severity,
                    event: Arc::clone(shared),
                    facts: vec![(GROUP_FIELD, cap(group))],
                });
            }
        }
        match out.len() - before {
            0 => Verdict::NoMatch,
            matches => Verdict::Matched { matches, dropped },
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

    /// Splunk's columns: count, firstTime, lastTime and `values(...)`.
    fn summary(&self, state: &WindowState) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("count".into(), json!(state.count));
        out.insert("firstTime".into(), json!(format_rfc3339(state.first_seen)));
        out.insert("lastTime".into(), json!(format_rfc3339(state.last_seen)));
        for field in SUMMARY_FIELDS {
            // BTreeMap keys: distinct and sorted, as Splunk's values().
            let values: Vec<&String> = state
                .tallies
                .get(field)
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            out.insert(format!("values({field})"), json!(values));
        }
        Value::Object(out)
    }
}
