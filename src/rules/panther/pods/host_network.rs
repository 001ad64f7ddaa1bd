//! `Kubernetes.Pod.Host.Network`: a pod created on the node's network
//! (`hostNetwork: true`) (MITRE TA0004:T1611).

use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::{pod_name, pod_spec};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{
    host_namespace, namespace_or_unknown, user_pod_creation, username_or_unknown, with_images,
};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Pod.Host.Network"),
        source: Source::Panther,
        name: "Kubernetes Pod Attached To Host Network",
        mitre: "TA0004:T1611",
        reference:
            "https://kubernetes.io/docs/concepts/security/pod-security-standards/#host-namespaces",
        runbook: "A pod was created on its node's network, where it can listen to the node's \
                  traffic, reach services bound to localhost and bypass network policies. \
                  Check the pod's image and owner and ask its creator what needs host \
                  networking. If nothing does, delete the pod and look for other pods and \
                  workloads this user created with host namespaces.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Medium,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `pods`, `verb` is `create`, and the pod spec
    // has `spec.hostNetwork` (a member name, never escaped).
    anchor: Anchor::AnyOf(&[&["pods", "create", "hostNetwork"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostNetwork;

impl EventRule for HostNetwork {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // A pod created and accepted, not by a platform component in a
        // system namespace.
        if !user_pod_creation(ev) {
            return None;
        }
        // `hostNetwork` is `true`.
        let spec = pod_spec(ev);
        if !host_namespace(spec, "hostNetwork") {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let name = pod_name(ev);
        let title =
            format!("[{username}] created pod [{namespace}/{name}] with host network access ");
        let hit = Hit::new(title, format!("k8s_host_network_{username}_{namespace}"))
            .with("pod_name", name);
        Some(with_images(hit, spec))
    }
}
