//! `Amazon.EKS.Audit.Multiple403` (Panther): one public source IP receiving
//! many HTTP 403s from the Kubernetes API, a sign of discovery (MITRE T1613).
//!
//! Semantics follow Panther's rule exactly: `stage == "ResponseComplete"`,
//! `responseStatus.code == 403`, `requestURI` under `/api/` or `/apis/`, and
//! `sourceIPs[0]` global per CPython's `ipaddress`. A missing `sourceIPs`
//! counts as `["0.0.0.0"]` (never global); an empty, null or unparsable list
//! is where Panther's rule raises, which we count as a rule error.
//!
//! Two departures, both because the first entries of `sourceIPs` are the
//! client's `X-Forwarded-For`: the allowlist only looks at the connection
//! address (the last entry), and the hardened setting
//! (`MULTIPLE_403_SOURCE=first-or-last`) keys every 403 on that address, so
//! rotating forged first entries cannot keep each key under the threshold.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{
    connection_address, connection_allowlisted, first_and_last, minutes, Anchor, OptionKind, Rule,
    RuleOption,
};
use crate::audit::{opt, AuditEvent, SourceIps};
use crate::bounded::{cap, key_part};
use crate::config::{DetectorConfig, SourceAddress};
use crate::net::{self, CidrList};
use crate::vocab::{
    Condition, EventContext, Match, MatchedEvent, RuleId, RuleMeta, Severity, Source, Verdict,
    WindowParams,
};
use crate::window::WindowState;

/// Rule metadata.
pub static META: RuleMeta = RuleMeta {
    id: RuleId::new("Amazon.EKS.Audit.Multiple403"),
    source: Source::Panther,
    name: "EKS Audit Log based single sourceIP is generating multiple 403s",
    mitre: "TA0007:T1613",
    reference: "https://aws.github.io/aws-eks-best-practices/security/docs/detective/",
    runbook:
        "Check whether the source IP belongs to you (CI, VPN egress, a scanner you run). If not, \
              look at what it tried (the verbs, resources and user below) and whether any request \
              from it succeeded; consider making the cluster endpoint private or restricting \
              publicAccessCidrs.",
};

/// Severity of every alert of this rule (Panther: `Info`).
pub const SEVERITY: Severity = Severity::Info;

/// Summary fields, named as in Panther's `SummaryAttributes`.
pub const SUMMARY_FIELDS: [&str; 3] = ["user:username", "p_any_ip_addresses", "p_source_label"];

/// Panther's `eks_panther_obj_ref` default when `sourceIPs` is missing.
const MISSING_SOURCE_IP: &str = "0.0.0.0";

/// Distinct addresses of one event tallied in `p_any_ip_addresses` (the
/// first ones, plus the connection's address, the last).
pub const MAX_SUMMARY_ADDRESSES: usize = 4;

/// The rule.
#[derive(Debug, Clone)]
pub struct Multiple403 {
    source: SourceAddress,
    window: WindowParams,
}

impl Multiple403 {
    /// Builds the rule with its threshold, window and source-address choice.
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            source: source_setting(config, META.id),
            window: WindowParams {
                threshold: config.multiple_403_threshold,
                window_ms: minutes(config.multiple_403_window_minutes),
                max_severity: SEVERITY,
            },
        }
    }

    fn to_match(&self, ev: &AuditEvent<'_>, ctx: EventContext<'_>, ip: &str) -> Match {
        let mut facts = Vec::with_capacity(MAX_SUMMARY_ADDRESSES + 3);
        if let Some(user) = ev.username() {
            facts.push((SUMMARY_FIELDS[0], cap(user)));
        }
        // p_any_ip_addresses is a set per event; a forwarded chain of
        // thousands of entries adds a bounded number of values.
        let (addresses, dropped) = first_and_last(ev.source_ips.list(), MAX_SUMMARY_ADDRESSES - 1);
        for other in &addresses {
            facts.push((SUMMARY_FIELDS[1], cap(other)));
        }
        if addresses.is_empty() {
            facts.push((SUMMARY_FIELDS[1], cap(ip)));
        }
        facts.push((SUMMARY_FIELDS[2], cap(ctx.cluster)));
        Match {
            rule: META.id,
            dedup: dedup_key(ctx.cluster, ip),
            at_ms: ctx.at_ms,
            source_ip: cap(ip),
            severity: SEVERITY,
            event: Arc::new(MatchedEvent {
                title: title(ev, ctx.cluster, ip),
                sample: ev.sample(),
                facts,
                dropped: dropped as u64,
            }),
            facts: Vec::new(),
        }
    }
}

/// `{cluster}_403_{ip as written}`: Panther's `dedup()` with `sourceIPs[0]`,
/// or the connection address under the hardened setting.
pub fn dedup_key(cluster: &str, ip: &str) -> String {
    format!("{}_403_{}", key_part(cluster), key_part(ip))
}

/// Panther's title, with `eks_panther_obj_ref`'s placeholders.
pub fn title(ev: &AuditEvent<'_>, cluster: &str, ip: &str) -> String {
    let oref = ev.object_ref.as_ref();
    let (cluster, ip) = (cap(cluster), cap(ip));
    let verb = cap(opt(&ev.verb).unwrap_or("<NO_VERB>"));
    let ns = cap(oref
        .and_then(|o| opt(&o.namespace))
        .unwrap_or("<NO_OBJECT_NAMESPACE>"));
    let resource = cap(oref
        .and_then(|o| opt(&o.resource))
        .unwrap_or("<NO_OBJECT_RESOURCE>"));
    let resource = match oref
        .and_then(|o| opt(&o.subresource))
        .filter(|s| !s.is_empty())
    {
        Some(sub) => format!("{resource}/{}", cap(sub)),
        None => resource,
    };
    let user = cap(ev.username().unwrap_or("<NO_USERNAME>"));
    format!(
        "[{ip}] received [403] when executing [{verb}] for resource [{resource}] in ns [{ns}] on [{cluster}] as [{user}]"
    )
}

/// The `source` option of a rule's settings, else `MULTIPLE_403_SOURCE`.
pub fn source_setting(config: &DetectorConfig, id: RuleId) -> SourceAddress {
    match super::option(config, id, "source").map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("first-or-last") => SourceAddress::FirstOrLast,
        Some(v) if v.eq_ignore_ascii_case("first") => SourceAddress::First,
        _ => config.multiple_403_source,
    }
}

/// The `source` option (Multiple403 and PodScan).
pub static SOURCE_OPTION: RuleOption = RuleOption {
    name: "source",
    kind: OptionKind::OneOf(&["first", "first-or-last"]),
    doc: "which address of sourceIPs the rule keys on: the first (as the original) or, \
          hardened, the connection's (default: MULTIPLE_403_SOURCE, else first)",
};

impl Rule for Multiple403 {
    fn filter(&self) -> super::filter::Filter {
        super::filter::Filter::Terms(&[r#"$.responseStatus.code = 403"#])
    }

    fn options(&self) -> &'static [RuleOption] {
        std::slice::from_ref(&SOURCE_OPTION)
    }

    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn window(&self) -> WindowParams {
        self.window
    }

    /// `responseStatus.code == 403` as a JSON integer.
    fn anchor(&self) -> Anchor {
        Anchor::MemberValue403
    }

    fn headline(&self, _severity: Severity) -> &'static str {
        "EKS 403 burst"
    }

    fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        allow: &CidrList,
        out: &mut Vec<Match>,
    ) -> Verdict {
        // Only finished requests: a watch's ResponseStarted is not its outcome.
        if opt(&ev.stage) != Some("ResponseComplete") {
            return Verdict::NoMatch;
        }
        // Only refusals by authorization.
        if ev.status_code() != Some(403) {
            return Verdict::NoMatch;
        }
        // Only what looks like a Kubernetes API call, not scanners' /.env probes.
        let uri = opt(&ev.request_uri).unwrap_or("");
        if !(uri.starts_with("/api/") || uri.starts_with("/apis/")) {
            return Verdict::NoMatch;
        }
        // The first source IP as Panther reads it.
        let first = match &ev.source_ips {
            SourceIps::Missing => MISSING_SOURCE_IP,
            SourceIps::Invalid => return Verdict::RuleError,
            SourceIps::List(ips) => match ips.first() {
                Some(ip) => ip.as_str(),
                None => return Verdict::RuleError,
            },
        };
        let Some(first_ip) = net::parse_ip(first) else {
            return Verdict::RuleError;
        };
        let key_ip = match self.source {
            // Panther: a public first address, keyed as written.
            SourceAddress::First => {
                if !net::is_global(first_ip) {
                    return Verdict::NoMatch;
                }
                first
            }
            // Hardened: keyed on the connection, which the client cannot
            // choose; counted when Panther would count it or when the
            // connection is public (a forged private first entry hides
            // nothing).
            SourceAddress::FirstOrLast => {
                // Only a missing list (Panther's 0.0.0.0) has no connection.
                let Some(last) = connection_address(ev) else {
                    return Verdict::NoMatch;
                };
                let Some(last_ip) = net::parse_ip(last) else {
                    return Verdict::RuleError;
                };
                if !(net::is_global(first_ip) || net::is_global(last_ip)) {
                    return Verdict::NoMatch;
                }
                last
            }
        };
        // The user's own allowlist, on the connection address only.
        if connection_allowlisted(ev, allow) {
            return Verdict::NoMatch;
        }
        out.push(self.to_match(ev, ctx, key_ip));
        Verdict::matched(1)
    }
    /// The first match's title, like Panther's alert title.
    fn title(&self, state: &WindowState, _severity: Severity) -> String {
        state.title.clone()
    }

    /// What the rule counted: the 403s from the window's address.
    fn investigate(&self, state: &WindowState) -> Vec<Condition> {
        let mut out = Vec::with_capacity(2);
        if net::parse_ip(&state.source_ip).is_some() {
            out.push(Condition::Mentions(state.source_ip.clone()));
        }
        out.push(Condition::OneOfNumbers("responseStatus.code", vec![403]));
        out
    }

    /// Top 5 values with counts of each summary field.
    fn summary(&self, state: &WindowState) -> Value {
        let mut out = serde_json::Map::new();
        for field in SUMMARY_FIELDS {
            let mut top: Vec<(&String, &u64)> = state
                .tallies
                .get(field)
                .map(|m| m.iter().collect())
                .unwrap_or_default();
            // Most frequent first; ties by value for a stable order.
            top.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            top.truncate(5);
            let list: Vec<Value> = top
                .into_iter()
                .map(|(value, count)| json!({"value": value, "count": count}))
                .collect();
            out.insert(field.to_owned(), Value::Array(list));
        }
        Value::Object(out)
    }
}
