//! `Kubernetes.System.Principal.PublicIP`: a service account, node or EKS
//! identity whose request came only from public addresses that are not the
//! cloud's own (MITRE TA0001 T1190, TA0006 T1528, TA0008 T1021.007).

use super::common::{all_inside, cidr_option, ip_is_global, or, TRUSTED_CIDRS};
use crate::audit::{opt, AuditEvent};
use crate::config::DetectorConfig;
use crate::net::CidrList;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::{Anchor, RuleOption};
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.System.Principal.PublicIP"),
        source: Source::Panther,
        name: "Kubernetes System Principal Accessed from Non-Cloud Public IP",
        mitre: "TA0001:T1190, TA0006:T1528, TA0008:T1021.007",
        reference: "https://kubernetes.io/docs/concepts/security/rbac-good-practices/",
        runbook: "A service account, node or EKS identity was used from a public address. \
                  Workloads and nodes normally reach the API server from the VPC: if the \
                  address is your NAT gateway's, add it to this rule's trusted_cidrs. \
                  Otherwise its token was probably copied out of the cluster: delete the \
                  token's secret or restart the pod to rotate it, and review everything the \
                  identity did from that address.",
    },
    severity: Severity::High,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `user.username` starts with one of the system prefixes.
    anchor: Anchor::AnyOfFromGlobal(&[
        &["system:serviceaccount:"],
        &["system:node:"],
        &["eks:"],
        &["aks:"],
    ]),
    filter: Filter::Terms(&[terms::PUBLIC_SYSTEM]),
};

/// EKS's own managers, run as Lambdas from AWS's public addresses (Panther
/// also checks their `AWSWesleyClusterManagerLambda` role ARN, which this
/// event model does not carry).
const AWS_MANAGED_PRINCIPALS: [&str; 2] = ["eks:addon-manager", "eks:node-manager"];

/// Prefixes of real system principals (not `system:anonymous`).
const SYSTEM_PREFIXES: [&str; 4] = ["system:serviceaccount:", "system:node:", "eks:", "aks:"];

/// The rule, with the addresses it trusts as the cloud's.
#[derive(Debug, Clone, Default)]
pub struct SystemPrincipalPublicIp {
    trusted: CidrList,
}

impl SystemPrincipalPublicIp {
    /// Reads `trusted_cidrs` from the rule's settings.
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            trusted: cidr_option(config, SPEC.meta.id, TRUSTED_CIDRS[0].name),
        }
    }
}

impl EventRule for SystemPrincipalPublicIp {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn options(&self) -> &'static [RuleOption] {
        &TRUSTED_CIDRS
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only the final stage, when there is a stage.
        if opt(&ev.stage).is_some_and(|s| !s.is_empty() && s != "ResponseComplete") {
            return None;
        }
        // Refusals are Multiple403.PublicIP's.
        if ev.status_code() == Some(403) {
            return None;
        }
        // Only real system principals.
        let username = ev.username().unwrap_or("");
        if !SYSTEM_PREFIXES.iter().any(|p| username.starts_with(p)) {
            return None;
        }
        // Only public addresses: one private address means a pod on a node
        // (addresses that do not parse are skipped).
        let ips = ev.source_ips.list();
        if ips.is_empty()
            || ips
                .iter()
                .any(|ip| ip_is_global(ip.as_str()) == Some(false))
        {
            return None;
        }
        // EKS's own managers.
        if AWS_MANAGED_PRINCIPALS.contains(&username) {
            return None;
        }
        // A node from addresses the user trusts as AWS's (Panther: ipinfo
        // ASN AS16509, absent here without the option).
        let in_group = |g: &str| ev.groups().iter().any(|x| x.as_str() == g);
        if username.starts_with("system:node:")
            && in_group("system:nodes")
            && in_group("system:authenticated")
            && all_inside(ips, &self.trusted)
        {
            return None;
        }
        let ip = ips.first()?.as_str();
        let scope = match ev.namespace().filter(|n| !n.is_empty()) {
            Some(ns) => format!("in namespace [{ns}] "),
            None => "(cluster-scoped) ".to_owned(),
        };
        let title = format!(
            "System principal [{}] executed [{}] for resource [{}] {scope}from non-cloud public \
             IP [{ip}]",
            or(Some(username), "<UNKNOWN_USER>"),
            or(opt(&ev.verb), "<UNKNOWN_VERB>"),
            or(ev.resource(), "<UNKNOWN_RESOURCE>"),
        );
        Some(Hit::new(title, format!("k8s_system_principal_{ip}")).with("source_ip", ip))
    }
}
