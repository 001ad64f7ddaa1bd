//! `Amazon.EKS.Audit.SystemNamespaceFromPublicIP`: a `system:` or `eks:`
//! identity whose request came from a public address (MITRE TA0001 T1190,
//! TA0008 T1201.007). Panther only records it as a signal, so it is off
//! until enabled.

use super::common::{all_inside, cidr_option, ip_is_global, obj_ref_first_ip, TRUSTED_CIDRS};
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
        id: RuleId::new("Amazon.EKS.Audit.SystemNamespaceFromPublicIP"),
        source: Source::Panther,
        name: "EKS Audit Log Reporting system Namespace is Used From A Public IP",
        mitre: "TA0001:T1190, TA0008:T1201.007",
        reference: "https://docs.aws.amazon.com/eks/latest/userguide/network_reqs.html",
        runbook: "A built-in identity (a node, a controller, a service account or an EKS \
                  component) sent a request from a public address. Check whether the address \
                  belongs to your VPC's NAT gateways or to AWS; if so, add it to this rule's \
                  trusted_cidrs. Otherwise treat the identity's credentials as stolen: rotate \
                  the service account token or node role, and review what else it did.",
    },
    severity: Severity::Info,
    max_severity: Severity::Info,
    threshold: 1,
    dedup_minutes: 1440,
    enabled: false,
    // `user.username` starts with `system:` or `eks:`, `stage` is
    // `ResponseComplete`.
    anchor: Anchor::AnyOfFromGlobal(&[
        &["system:", "ResponseComplete"],
        &["eks:", "ResponseComplete"],
    ]),
    filter: Filter::Terms(&[terms::PUBLIC_SYSTEM]),
};

/// EKS's own components, run as Lambdas from public addresses (Panther
/// also checks their `AWSWesleyClusterManagerLambda` role ARN, which this
/// event model does not carry).
const AMZ_PUBLICS: [&str; 2] = ["eks:addon-manager", "eks:node-manager"];

/// The rule, with the addresses it trusts as AWS's.
#[derive(Debug, Clone, Default)]
pub struct SystemNamespacePublicIp {
    trusted: CidrList,
}

impl SystemNamespacePublicIp {
    /// Reads `trusted_cidrs` from the rule's settings.
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            trusted: cidr_option(config, SPEC.meta.id, TRUSTED_CIDRS[0].name),
        }
    }

    /// A node (`system:node:...` in `system:nodes` and
    /// `system:authenticated`), Panther's `is_legitimate_eks_node`.
    fn is_node(ev: &AuditEvent<'_>, actor: &str) -> bool {
        let in_group = |g: &str| ev.groups().iter().any(|x| x.as_str() == g);
        actor.starts_with("system:node:")
            && in_group("system:nodes")
            && in_group("system:authenticated")
    }
}

impl EventRule for SystemNamespacePublicIp {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn options(&self) -> &'static [RuleOption] {
        &TRUSTED_CIDRS
    }

    fn check(&self, ev: &AuditEvent<'_>, cluster: &str) -> Option<Hit> {
        // Only the final stage of a request.
        if opt(&ev.stage) != Some("ResponseComplete") {
            return None;
        }
        // Refusals are Multiple403's.
        if ev.status_code() == Some(403) {
            return None;
        }
        let actor = ev.username().unwrap_or("<NO_USERNAME>");
        // EKS's own managers.
        if AMZ_PUBLICS.contains(&actor) {
            return None;
        }
        // A node from addresses the user trusts as AWS's (Panther: ipinfo
        // ASN or MISP's amazon-aws list, absent here without the option).
        if Self::is_node(ev, actor) && all_inside(ev.source_ips.list(), &self.trusted) {
            return None;
        }
        // A system or EKS identity from a public first address.
        if !(actor.starts_with("system:") || actor.starts_with("eks:")) {
            return None;
        }
        let ip = obj_ref_first_ip(ev)?;
        if !ip_is_global(ip)? {
            return None;
        }
        let verb = opt(&ev.verb).unwrap_or("<NO_VERB>");
        let ns = ev.namespace().unwrap_or("<NO_OBJECT_NAMESPACE>");
        let resource = ev.resource().unwrap_or("<NO_OBJECT_RESOURCE>");
        let resource = match ev.subresource().filter(|s| !s.is_empty()) {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_owned(),
        };
        let title = format!(
            "[{actor}] executed [{verb}] for resource [{resource}] in ns [{ns}] on [{cluster}] \
             from [{ip}]"
        );
        let dedup = format!("{cluster}_eks_system_namespace_{ip}");
        Some(Hit::new(title, dedup).with("source_ip", ip))
    }
}
