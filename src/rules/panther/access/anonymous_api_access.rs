//! `Amazon.EKS.AnonymousAPIAccess`: a request to the API server as
//! `system:anonymous`, load balancer health checks from private addresses
//! and the node itself aside (MITRE TA0001 T1190).

use super::common::{ip_is_private, obj_ref_first_ip};
use crate::audit::{opt, AuditEvent};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Amazon.EKS.AnonymousAPIAccess"),
        source: Source::Panther,
        name: "EKS Anonymous API Access Detected",
        mitre: "TA0001:T1190",
        reference: "https://raesene.github.io/blog/2023/03/18/lets-talk-about-anonymous-access-to-Kubernetes/",
        runbook: "Someone reached the API server without credentials. If the request was \
                  allowed, find which path it read and which (Cluster)RoleBinding grants \
                  system:anonymous or system:unauthenticated anything beyond discovery, and \
                  remove that binding. Restrict the cluster's public endpoint to known CIDRs, \
                  and check what else the source address requested.",
    },
    severity: Severity::Low,
    max_severity: Severity::Low,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `user.username` is `system:anonymous`, looked for in any case as
    // PodScan's is (one search for both): from its `:ano`, not from the
    // `system:` every audit event is full of.
    anchor: Anchor::Letters("system:anonymous"),
    filter: Filter::Terms(&[terms::ANONYMOUS]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct EksAnonymousApiAccess;

impl EventRule for EksAnonymousApiAccess {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, cluster: &str) -> Option<Hit> {
        // The node talking to itself (`sourceIPs` is exactly `["127.0.0.1"]`).
        if matches!(ev.source_ips.list(), [only] if only.as_str() == "127.0.0.1") {
            return None;
        }
        let first = obj_ref_first_ip(ev);
        // The load balancer's health checks from inside the VPC (Python
        // raises on a `null` or empty `sourceIPs` here).
        if opt(&ev.user_agent) == Some("ELB-HealthChecker/2.0")
            && ip_is_private(first?) == Some(true)
        {
            return None;
        }
        // Only anonymous requests.
        if ev.username() != Some("system:anonymous") {
            return None;
        }
        let decision = ev.annotation("authorization.k8s.io/decision");
        let uri = opt(&ev.request_uri);
        // Refused requests and the version probe are grouped at INFO.
        if decision != Some("allow") {
            let title = "Failed Anonymous EKS Access Attempt(s) Detected".to_owned();
            return Some(
                Hit::new(title, "no dedup".into())
                    .severity(Severity::Info)
                    .with("decision", decision.unwrap_or("<none>")),
            );
        }
        if uri == Some("/version") {
            let title = "Anonymous EKS Access to /version Endpoint Detected".to_owned();
            return Some(
                Hit::new(title, "no dedup".into())
                    .severity(Severity::Info)
                    .with("decision", "allow"),
            );
        }
        // Python's title fails on a `null` or empty `sourceIPs`: Panther
        // then titles the alert with the rule's name.
        let title = match first {
            None => SPEC.meta.name.to_owned(),
            Some(ip) => format!(
                "Anonymous API access detected on Kubernetes API server from [{ip}] to [{}] on \
                 [{cluster}]",
                uri.unwrap_or("NO_URI")
            ),
        };
        let dedup = format!(
            "anonymous_access_{cluster}_{}",
            opt(&ev.user_agent).unwrap_or("None")
        );
        Some(Hit::new(title, dedup).with("decision", "allow"))
    }
}
