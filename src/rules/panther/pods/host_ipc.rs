//! `Kubernetes.Pod.Host.IPC`: a pod created in the node's IPC namespace
//! (`hostIPC: true`) (MITRE TA0004:T1611, TA0005:T1562).

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
        id: RuleId::new("Kubernetes.Pod.Host.IPC"),
        source: Source::Panther,
        name: "Kubernetes Pod Using Host IPC Namespace",
        mitre: "TA0004:T1611, TA0005:T1562",
        reference: "https://kubernetes.io/docs/concepts/security/pod-security-standards/",
        runbook: "A pod was created sharing its node's IPC namespace, so it can read and \
                  disturb the shared memory and message queues of the node's other processes. \
                  Check the pod's image and owner and ask its creator what needs host IPC. \
                  If nothing does, delete the pod and look for other pods and workloads this \
                  user created with host namespaces.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Medium,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `pods`, `verb` is `create`, and the pod spec
    // has `spec.hostIPC` (a member name, never escaped).
    anchor: Anchor::AnyOf(&[&["pods", "create", "hostIPC"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostIpc;

impl EventRule for HostIpc {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // A pod created and accepted, not by a platform component in a
        // system namespace.
        if !user_pod_creation(ev) {
            return None;
        }
        // `hostIPC` is `true`.
        let spec = pod_spec(ev);
        if !host_namespace(spec, "hostIPC") {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let name = pod_name(ev);
        let title = format!("[{username}] created pod [{namespace}/{name}] with host IPC enabled ");
        let hit =
            Hit::new(title, format!("k8s_host_ipc_{username}_{namespace}")).with("pod_name", name);
        Some(with_images(hit, spec))
    }
}
