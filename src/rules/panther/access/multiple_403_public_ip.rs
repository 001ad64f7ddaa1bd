//! `Kubernetes.API.Multiple403.PublicIP`: refused requests (403) from a
//! public address, alerting from ten in half an hour (MITRE TA0007 T1613).

use super::common::ip_is_global;
use crate::audit::AuditEvent;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.API.Multiple403.PublicIP"),
        source: Source::Panther,
        name: "Kubernetes API Multiple 403 Responses from Single Public IP",
        mitre: "TA0007:T1613",
        reference: "https://aws.github.io/aws-eks-best-practices/security/docs/detective/",
        runbook: "One public address was refused by the API server again and again. See which \
                  identities and paths it tried: many different resources suggest someone \
                  mapping their permissions, one path repeated suggests a broken client. If \
                  the address is not yours, remove it from the endpoint's allowed CIDRs and \
                  check whether any request from it succeeded.",
    },
    severity: Severity::Info,
    max_severity: Severity::Info,
    threshold: 10,
    dedup_minutes: 30,
    enabled: true,
    // `responseStatus.code` is 403.
    anchor: Anchor::MemberValue403,
    filter: Filter::Terms(&[terms::FORBIDDEN]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct Multiple403PublicIp;

impl EventRule for Multiple403PublicIp {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only refusals (Panther's gRPC code 7 is GKE's, never EKS's).
        if ev.status_code() != Some(403) {
            return None;
        }
        // From a public first address.
        let ip = ev.source_ips.list().first()?.as_str();
        if !ip_is_global(ip)? {
            return None;
        }
        let title = format!("Multiple 403 responses from public IP [{ip}]");
        Some(Hit::new(title, format!("k8s_403_{ip}")))
    }
}
