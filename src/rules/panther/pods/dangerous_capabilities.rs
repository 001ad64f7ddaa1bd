//! `Kubernetes.Pod.Dangerous.Capabilities`: a pod created with Linux
//! capabilities that open the node (`SYS_ADMIN`, `NET_ADMIN`, `BPF`, ...)
//! (MITRE TA0004:T1611, TA0005:T1068).

use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::{
    is_failed_request, is_system_namespace, is_system_principal, pod_name, pod_spec,
};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{
    dangerous_capabilities, namespace_or_unknown, username_or_unknown, verb_in, with_images,
};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Pod.Dangerous.Capabilities"),
        source: Source::Panther,
        name: "Kubernetes Pod with Dangerous Linux Capabilities",
        mitre: "TA0004:T1611, TA0005:T1068",
        reference: "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/",
        runbook: "A pod was created whose containers add capabilities such as SYS_ADMIN, \
                  SYS_MODULE or BPF, enough to escape to the node. Read the pod's security \
                  context and image and ask its creator which capability it needs and why. \
                  If none is justified, delete the pod and check the node and the creator's \
                  other recent workloads.",
    },
    severity: Severity::High,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `pods`, `verb` is `create`, and the pod spec
    // has `securityContext.capabilities` (a member name, never escaped).
    anchor: Anchor::AnyOf(&[&["pods", "create", "capabilities"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct DangerousCapabilities;

impl EventRule for DangerousCapabilities {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only pod creation.
        if !verb_in(ev, &["create"]) || ev.resource() != Some("pods") {
            return None;
        }
        // Refused requests created nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // Nothing in system namespaces, nothing by platform components.
        if is_system_namespace(ev.namespace()) || is_system_principal(ev.username()) {
            return None;
        }
        // Some container adds a dangerous capability.
        let spec = pod_spec(ev);
        let caps = dangerous_capabilities(spec)?;
        if caps.is_empty() {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let name = pod_name(ev);
        let caps = caps.join(", ");
        let title = format!(
            "[{username}] created pod [{namespace}/{name}] with dangerous capabilities [{caps}]"
        );
        let hit = Hit::new(title, format!("k8s_dangerous_caps_{username}_{namespace}"))
            .with("pod_name", name)
            .with("dangerous_capabilities", &caps);
        Some(with_images(hit, spec))
    }
}
