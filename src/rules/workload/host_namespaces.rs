//! `EksAuditDetector.Workload.HostNamespaces`: a workload whose pod
//! template shares the node's PID, IPC or network namespace (MITRE
//! TA0004:T1611 Escape to Host).

use super::{workload, workload_anchor, FILTER};
use crate::audit::AuditEvent;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::panther::pods::common::host_namespace;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("EksAuditDetector.Workload.HostNamespaces"),
        source: Source::Project,
        name: "Workload sharing the node's namespaces",
        mitre: "TA0004:T1611",
        reference: "https://kubernetes.io/docs/concepts/security/pod-security-standards/#baseline",
        runbook: "A workload's pods now share the node's process, IPC or network namespace: they \
                  can see and signal the node's processes or sniff its traffic. Ask the named \
                  user why the template sets hostPID, hostIPC or hostNetwork. If it is not a \
                  known node agent, delete or scale down the workload and review its pods' \
                  activity on their nodes.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Medium,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    anchor: workload_anchor!("hostPID", "hostIPC", "hostNetwork"),
    filter: FILTER,
};

/// The host namespaces a pod spec can share.
const FLAGS: [&str; 3] = ["hostPID", "hostIPC", "hostNetwork"];

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkloadHostNamespaces;

impl EventRule for WorkloadHostNamespaces {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, cluster: &str) -> Option<Hit> {
        let w = workload(ev)?;
        // The template sets one of the host namespace flags.
        let shared: Vec<&str> = FLAGS
            .iter()
            .copied()
            .filter(|f| host_namespace(Some(w.spec), f))
            .collect();
        if shared.is_empty() {
            return None;
        }
        let list = shared.join(", ");
        Some(
            w.hit(
                "workload_host_namespaces",
                cluster,
                &format!("shares the node's namespaces [{list}]"),
            )
            .with("host_namespaces", &list),
        )
    }
}
