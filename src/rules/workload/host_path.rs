//! `EksAuditDetector.Workload.HostPath`: a workload whose pod template
//! mounts a directory of the node (MITRE TA0004:T1611 Escape to Host).

use super::{workload, workload_anchor, FILTER};
use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::is_sensitive_hostpath;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::panther::pods::common::{host_paths, MAX_JOINED};
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("EksAuditDetector.Workload.HostPath"),
        source: Source::Project,
        name: "Workload mounting a host path",
        mitre: "TA0004:T1611",
        reference: "https://kubernetes.io/docs/concepts/storage/volumes/#hostpath",
        runbook: "A workload's pods now mount a directory of their node. A sensitive one (/, \
                  /etc, /var/lib/kubelet, the container runtime's socket, ...) hands the node \
                  over. Ask the named user why the template needs it; if it is not a known node \
                  agent, delete or scale down the workload and check the nodes its pods ran on \
                  for changes.",
    },
    severity: Severity::Medium,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    anchor: workload_anchor!("hostPath"),
    filter: FILTER,
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkloadHostPath;

impl EventRule for WorkloadHostPath {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, cluster: &str) -> Option<Hit> {
        let w = workload(ev)?;
        // Some volume of the template is a `hostPath`.
        let mounts = host_paths(Some(w.spec))?;
        if !mounts.mounted {
            return None;
        }
        let shown = &mounts.paths[..mounts.paths.len().min(MAX_JOINED)];
        let paths = if shown.is_empty() {
            "unknown".to_owned()
        } else {
            shown.join(", ")
        };
        let hit = w
            .hit(
                "workload_hostpath",
                cluster,
                &format!("mounts host paths [{paths}]"),
            )
            .with("hostpath_paths", &paths);
        Some(if mounts.paths.iter().any(|p| is_sensitive_hostpath(p)) {
            hit.severity(Severity::High)
        } else {
            hit
        })
    }
}
