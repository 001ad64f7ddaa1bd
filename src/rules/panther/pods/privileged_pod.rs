//! `Kubernetes.Pod.Privileged.Created`: a pod created with a privileged
//! container, or one allowed to run as root (MITRE TA0004:T1548.003).

use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::{pod_name, pod_spec};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{
    is_privileged, namespace_or_unknown, user_pod_creation, username_or_unknown, with_images,
};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Pod.Privileged.Created"),
        source: Source::Panther,
        name: "Kubernetes Privileged Pod Created",
        mitre: "TA0004:T1548.003",
        reference:
            "https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted",
        runbook: "A pod was created with a privileged container or one that may run as root, \
                  which gives it near-full control of its node. Look at the pod's image, owner \
                  and node (kubectl get pod -o yaml) and ask its creator why it needs this. If \
                  nobody expected it, delete the pod, cordon the node and review what the creator \
                  did in the audit log around that time.",
    },
    severity: Severity::High,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 360,
    enabled: true,
    // `objectRef.resource` is `pods`, `verb` is `create`, and the pod spec
    // has the containers' `securityContext` (a member name, never escaped).
    anchor: Anchor::AnyOf(&[&["pods", "create", "securityContext"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrivilegedPod;

impl EventRule for PrivilegedPod {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // A pod created and accepted, not by a platform component in a
        // system namespace.
        if !user_pod_creation(ev) {
            return None;
        }
        // Some container is privileged or may run as root.
        let spec = pod_spec(ev);
        if !is_privileged(spec)? {
            return None;
        }
        let username = username_or_unknown(ev);
        let name = pod_name(ev);
        let title = format!(
            "[{username}] created a privileged pod [{}/{name}]",
            namespace_or_unknown(ev)
        );
        let hit = Hit::new(title, format!("privileged_pod_{username}")).with("pod_name", name);
        Some(with_images(hit, spec))
    }
}
