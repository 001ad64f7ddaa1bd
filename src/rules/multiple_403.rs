//! `Amazon.EKS.Audit.Multiple403` (Panther): one public source IP receiving
//! many HTTP 403s from the Kubernetes API, a sign of discovery (MITRE T1613).
//!
//! Semantics follow Panther's rule exactly: `stage == "ResponseComplete"`,
//! `responseStatus.code == 403`, `requestURI` under `/api/` or `/apis/`, and
//! `sourceIPs[0]` global per CPython's `ipaddress`. A missing `sourceIPs`
//! counts as `["0.0.0.0"]` (never global); an empty, null or unparsable list
//! is where Panther's rule raises, which we count as a rule error.

use serde_json::{json, Value};

use super::{EventContext, Match, Rule, RuleId, RuleMeta, Sample, Severity, Verdict};
use crate::audit::{opt, AuditEvent, SourceIps};
use crate::config::DetectorConfig;
use crate::net::{self, CidrList};
use crate::window::WindowState;

/// Rule metadata.
pub static META: RuleMeta = RuleMeta {
    id: "Amazon.EKS.Audit.Multiple403",
    name: "EKS Audit Log based single sourceIP is generating multiple 403s",
    origin: "Panther",
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

/// The rule.
#[derive(Debug, Clone, Default)]
pub struct Multiple403;

impl Multiple403 {
    /// Builds the rule (it has no settings besides the shared ones).
    pub fn new(_config: &DetectorConfig) -> Self {
        Self
    }

    fn to_match(&self, ev: &AuditEvent<'_>, ctx: EventContext<'_>, ip: &str) -> Match {
        let mut facts = Vec::with_capacity(4);
        if let Some(user) = ev.username() {
            facts.push((SUMMARY_FIELDS[0], user.to_owned()));
        }
        let mut seen: Vec<&str> = Vec::new();
        for other in ev.source_ips.list() {
            // p_any_ip_addresses is a set per event.
            if !seen.contains(&other.as_str()) {
                seen.push(other.as_str());
                facts.push((SUMMARY_FIELDS[1], other.as_str().to_owned()));
            }
        }
        if seen.is_empty() {
            facts.push((SUMMARY_FIELDS[1], ip.to_owned()));
        }
        facts.push((SUMMARY_FIELDS[2], ctx.cluster.to_owned()));
        Match {
            rule: RuleId::Multiple403,
            dedup: dedup_key(ctx.cluster, ip),
            at_ms: ctx.at_ms,
            source_ip: ip.to_owned(),
            title: title(ev, ctx.cluster, ip),
            severity: SEVERITY,
            sample: Sample::of(ev),
            facts,
        }
    }
}

/// `{cluster}_403_{sourceIPs[0] as written}`, as Panther's `dedup()`.
pub fn dedup_key(cluster: &str, ip: &str) -> String {
    format!("{cluster}_403_{ip}")
}

/// Panther's title, with `eks_panther_obj_ref`'s placeholders.
pub fn title(ev: &AuditEvent<'_>, cluster: &str, ip: &str) -> String {
    let oref = ev.object_ref.as_ref();
    let verb = opt(&ev.verb).unwrap_or("<NO_VERB>");
    let ns = oref
        .and_then(|o| opt(&o.namespace))
        .unwrap_or("<NO_OBJECT_NAMESPACE>");
    let resource = oref
        .and_then(|o| opt(&o.resource))
        .unwrap_or("<NO_OBJECT_RESOURCE>");
    let resource = match oref
        .and_then(|o| opt(&o.subresource))
        .filter(|s| !s.is_empty())
    {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_owned(),
    };
    let user = ev.username().unwrap_or("<NO_USERNAME>");
    format!(
        "[{ip}] received [403] when executing [{verb}] for resource [{resource}] in ns [{ns}] on [{cluster}] as [{user}]"
    )
}

impl Rule for Multiple403 {
    const ID: RuleId = RuleId::Multiple403;

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
        // The first source IP must be a public address.
        let first = match &ev.source_ips {
            SourceIps::Missing => MISSING_SOURCE_IP,
            SourceIps::Invalid => return Verdict::RuleError,
            SourceIps::List(ips) => match ips.first() {
                Some(ip) => ip.as_str(),
                None => return Verdict::RuleError,
            },
        };
        let Some(ip) = net::parse_ip(first) else {
            return Verdict::RuleError;
        };
        if !net::is_global(ip) {
            return Verdict::NoMatch;
        }
        // The user's own allowlist.
        if allow.contains(ip) {
            return Verdict::NoMatch;
        }
        out.push(self.to_match(ev, ctx, first));
        Verdict::Matched(1)
    }
    /// The first match's title, like Panther's alert title.
    fn title(state: &WindowState, _severity: Severity) -> String {
        state.title.clone()
    }

    /// Top 5 values with counts of each summary field.
    fn summary(state: &WindowState) -> Value {
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
