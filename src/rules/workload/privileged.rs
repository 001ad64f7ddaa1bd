//! `EksAuditDetector.Workload.Privileged`: a workload whose pod template
//! runs a privileged container or one allowed to run as root (MITRE
//! TA0004:T1611 Escape to Host, TA0004:T1548).

use super::{workload, workload_anchor, FILTER};
use crate::audit::AuditEvent;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::panther::pods::common::is_privileged;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("EksAuditDetector.Workload.Privileged"),
        source: Source::Project,
        name: "Workload with privileged pod template",
        mitre: "TA0004:T1611, TA0004:T1548",
        reference:
            "https://kubernetes.io/docs/concepts/security/pod-security-standards/#privileged",
        runbook: "A Deployment, DaemonSet, StatefulSet, ReplicaSet, Job or CronJob now makes \
                  pods with a privileged container (or one that may run as root): each such \
                  pod controls its node. Ask the named user why, read the template (kubectl get \
                  <kind> <name> -o yaml) and its image. If it is not expected, scale it to zero \
                  or delete it, then look at the nodes its pods ran on.",
    },
    severity: Severity::High,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    anchor: workload_anchor!("securityContext"),
    filter: FILTER,
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkloadPrivileged;

impl EventRule for WorkloadPrivileged {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, cluster: &str) -> Option<Hit> {
        let w = workload(ev)?;
        // Some container of the template is privileged or may run as root.
        if !is_privileged(Some(w.spec))? {
            return None;
        }
        Some(w.hit(
            "workload_privileged",
            cluster,
            "runs privileged or root containers",
        ))
    }
}
