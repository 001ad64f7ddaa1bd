//! `Kubernetes.API.IOC.Activity`: any API request from an address the user
//! lists as hostile (Panther: a Tor exit node, from its enrichment) (MITRE
//! TA0011 T1573.002).

use super::common::cidr_option;
use crate::audit::AuditEvent;
use crate::config::DetectorConfig;
use crate::net::CidrList;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::Filter;
use crate::rules::{Anchor, OptionKind, RuleOption};
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares when `ioc_cidrs` is set: any request may come
/// from a listed address.
pub static SPEC: Spec = DECLARED;

/// [`SPEC`] as a constant, for [`SPEC_WITHOUT_LIST`].
const DECLARED: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.API.IOC.Activity"),
        source: Source::Panther,
        name: "Kubernetes API Activity from Tor Exit Node",
        mitre: "TA0011:T1573.002",
        reference: "https://medium.com/snowflake/from-logs-to-detection-using-snowflake-and-panther-to-detect-k8s-threats-d72f70a504d7",
        runbook: "A request reached the API server from an address on your ioc_cidrs list. \
                  Find every request from that address and the identity it used; an \
                  authenticated identity there means its credentials are probably in someone \
                  else's hands, so revoke them (token, kubeconfig, IAM keys). Block the address \
                  at the endpoint's allowed CIDRs and review what was read or changed.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Medium,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // Any request may come from a listed address.
    anchor: Anchor::Always,
    filter: Filter::All,
};

/// The same without `ioc_cidrs`: the rule cannot match (as Panther without
/// Tor enrichment), so it asks the prefilter for no line.
pub static SPEC_WITHOUT_LIST: Spec = Spec {
    anchor: Anchor::AnyOf(&[]),
    filter: Filter::Terms(&[]),
    ..DECLARED
};

/// The rule's option.
static OPTIONS: [RuleOption; 1] = [RuleOption {
    name: "ioc_cidrs",
    kind: OptionKind::Cidrs,
    doc: "addresses you consider hostile, e.g. a Tor exit node list you maintain: any request \
          with one of them in its sourceIPs is reported (replaces Panther's tor_exit_nodes \
          enrichment; unset, the rule reports nothing)",
}];

/// The rule, with the hostile addresses.
#[derive(Debug, Clone, Default)]
pub struct IocActivity {
    ioc: CidrList,
}

impl IocActivity {
    /// Reads `ioc_cidrs` from the rule's settings.
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            ioc: cidr_option(config, SPEC.meta.id, OPTIONS[0].name),
        }
    }
}

impl EventRule for IocActivity {
    fn spec(&self) -> &'static Spec {
        if self.ioc == CidrList::default() {
            &SPEC_WITHOUT_LIST
        } else {
            &SPEC
        }
    }

    fn options(&self) -> &'static [RuleOption] {
        &OPTIONS
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // A source address on the list (Panther: Tor enrichment present).
        let ip = ev
            .source_ips
            .list()
            .iter()
            .map(|ip| ip.as_str())
            .find(|ip| self.ioc.contains_text(ip))?;
        let username = ev
            .username()
            .filter(|u| !u.is_empty())
            .unwrap_or("<UNKNOWN_USER>");
        let title =
            format!("Kubernetes API activity from Tor exit node [{ip}] by user [{username}]");
        Some(Hit::new(title, format!("k8s_tor_{ip}")).with("ioc_address", ip))
    }
}
