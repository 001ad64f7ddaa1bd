//! `Kubernetes.API.AnonymousAccess`: a request as `system:anonymous` that
//! is neither a probe, a health check nor the node itself (MITRE TA0001
//! T1190).

use serde_json::Value;

use crate::audit::{opt, AuditEvent};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.API.AnonymousAccess"),
        source: Source::Panther,
        name: "Kubernetes Anonymous API Access Detected",
        mitre: "TA0001:T1190",
        reference: "https://raesene.github.io/blog/2023/03/18/lets-talk-about-anonymous-access-to-Kubernetes/",
        runbook: "An unauthenticated client called the API server. List everything \
                  system:anonymous did from the same address around this time and whether the \
                  authorizer allowed it. If anything beyond discovery was allowed, remove the \
                  bindings that grant it and limit the public endpoint to the networks that \
                  need it.",
    },
    severity: Severity::Info,
    max_severity: Severity::Info,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `user.username` is `system:anonymous`, looked for in any case as
    // PodScan's is (one search for both): from its `:ano`, not from the
    // `system:` every audit event is full of.
    anchor: Anchor::Letters("system:anonymous"),
    filter: Filter::Terms(&[terms::ANONYMOUS]),
};

/// User agents of probes and cloud health checks.
const SYSTEM_USER_AGENTS: [&str; 2] = ["kube-probe/", "GoogleHC/"];

/// Health endpoints.
const HEALTH_PATTERNS: [&str; 6] = [
    "/healthz",
    "/readyz",
    "/livez",
    "/apis/healthz",
    "/apis/readyz",
    "/apis/livez",
];

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnonymousAccess;

/// Python's truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `(event.udm("annotations") or {}).get("authorization.k8s.io/decision")`;
/// `Err` where Python raises (annotations that are not a mapping).
fn decision<'e>(ev: &'e AuditEvent<'_>) -> Result<Option<&'e str>, ()> {
    match ev.annotations() {
        Some(Value::Object(m)) => Ok(m
            .get("authorization.k8s.io/decision")
            .and_then(Value::as_str)),
        Some(v) if truthy(v) => Err(()),
        _ => Ok(None),
    }
}

impl EventRule for AnonymousAccess {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only anonymous requests.
        if ev.username() != Some("system:anonymous") {
            return None;
        }
        let ips = ev.source_ips.list();
        let ua = opt(&ev.user_agent).unwrap_or("");
        // The node itself.
        if matches!(ips, [only] if only.as_str() == "127.0.0.1") {
            return None;
        }
        // The load balancer's health checks from 10.0.x.x.
        if ua == "ELB-HealthChecker/2.0" && ips.first().is_some_and(|ip| ip.0.starts_with("10.0."))
        {
            return None;
        }
        // Liveness probes and cloud health checks.
        if SYSTEM_USER_AGENTS.iter().any(|p| ua.starts_with(p)) {
            return None;
        }
        // Health endpoints.
        let uri = opt(&ev.request_uri).unwrap_or("");
        if HEALTH_PATTERNS.iter().any(|p| uri.starts_with(p)) {
            return None;
        }
        let dedup = format!(
            "anonymous_access_{}",
            Some(ua)
                .filter(|u| !u.is_empty())
                .unwrap_or("<UNKNOWN_USER_AGENT>")
        );
        let title = match decision(ev) {
            // Python's title fails: Panther titles the alert with the
            // rule's name.
            Err(()) => SPEC.meta.name.to_owned(),
            Ok(d) if d != Some("allow") => {
                "Failed Anonymous Kubernetes API Access Attempt(s) Detected".to_owned()
            }
            Ok(_) if uri == "/version" => {
                "Anonymous Kubernetes API Access to /version Endpoint Detected".to_owned()
            }
            Ok(_) => format!(
                "Anonymous API access detected on Kubernetes API server from [{}] to [{}]",
                ips.first().map_or("<UNKNOWN_IP>", |ip| ip.as_str()),
                Some(uri)
                    .filter(|u| !u.is_empty())
                    .unwrap_or("<UNKNOWN_URI>")
            ),
        };
        let decision = decision(ev).ok().flatten().unwrap_or("<none>");
        Some(Hit::new(title, dedup).with("decision", decision))
    }
}
