//! `Kubernetes.Pod.Host.PID`: a pod created in the node's process
//! namespace (`hostPID: true`) (MITRE TA0004:T1611, TA0002:T1610).

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
        id: RuleId::new("Kubernetes.Pod.Host.PID"),
        source: Source::Panther,
        name: "Kubernetes Pod Using Host PID Namespace",
        mitre: "TA0004:T1611, TA0002:T1610",
        reference:
            "https://kubernetes.io/docs/concepts/security/pod-security-standards/#host-namespaces",
        runbook: "A pod was created that sees every process of its node, and with enough \
                  privilege can read their memory and environment or enter them (nsenter). \
                  Check the pod's image, command and owner and ask its creator why it needs \
                  the host's processes. If nobody expected it, delete the pod and review the \
                  node and what the creator did in the audit log since.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Medium,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `pods`, `verb` is `create`, and the pod spec
    // has `spec.hostPID` (a member name, never escaped).
    anchor: Anchor::AnyOf(&[&["pods", "create", "hostPID"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostPid;

impl EventRule for HostPid {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // A pod created and accepted, not by a platform component in a
        // system namespace.
        if !user_pod_creation(ev) {
            return None;
        }
        // `hostPID` is `true`.
        let spec = pod_spec(ev);
        if !host_namespace(spec, "hostPID") {
            return None;
        }
        let name = pod_name(ev);
        // Panther has no dedup() here: the title is the key.
        let title = format!(
            "[{}] created pod [{}/{name}] using host PID namespace",
            username_or_unknown(ev),
            namespace_or_unknown(ev)
        );
        let hit = Hit::titled(title).with("pod_name", name);
        Some(with_images(hit, spec))
    }
}
