//! `EksAuditDetector.Workload.DangerousCapabilities`: a workload whose pod
//! template adds Linux capabilities that allow escaping the container
//! (MITRE TA0004:T1611 Escape to Host).

use super::{workload, workload_anchor, FILTER};
use crate::audit::AuditEvent;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::panther::pods::common::dangerous_capabilities;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("EksAuditDetector.Workload.DangerousCapabilities"),
        source: Source::Project,
        name: "Workload adding dangerous capabilities",
        mitre: "TA0004:T1611",
        reference: "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/#set-capabilities-for-a-container",
        runbook: "A workload's containers now add Linux capabilities such as SYS_ADMIN, \
                  NET_ADMIN or BPF, enough to break out of the container or take over the \
                  node's network. Ask the named user which capability the workload really \
                  needs; if none is expected, remove them or delete the workload, and review \
                  the nodes its pods ran on.",
    },
    severity: Severity::High,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    anchor: workload_anchor!("capabilities"),
    filter: FILTER,
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkloadDangerousCapabilities;

impl EventRule for WorkloadDangerousCapabilities {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, cluster: &str) -> Option<Hit> {
        let w = workload(ev)?;
        // Some container of the template adds a dangerous capability.
        let caps = dangerous_capabilities(Some(w.spec))?;
        if caps.is_empty() {
            return None;
        }
        let list = caps.join(", ");
        Some(
            w.hit(
                "workload_dangerous_caps",
                cluster,
                &format!("adds dangerous capabilities [{list}]"),
            )
            .with("dangerous_capabilities", &list),
        )
    }
}
