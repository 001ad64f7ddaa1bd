//! `Kubernetes.Pod.SystemNamespace`: a pod created directly in a system
//! namespace (`kube-system`, `kube-public`, `kube-node-lease`,
//! `gke-system`) by someone other than a platform component (MITRE
//! TA0004:T1611, TA0003:T1525, TA0005:T1578.002).

use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::{
    is_failed_request, is_system_namespace, is_system_principal, pod_name, pod_spec,
};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{namespace_or_unknown, username_or_unknown, verb_in, with_images};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Pod.SystemNamespace"),
        source: Source::Panther,
        name: "Kubernetes Pod Created in System Namespace",
        mitre: "TA0004:T1611, TA0003:T1525, TA0005:T1578.002",
        reference: "https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/",
        runbook: "A person or workload created a pod by hand in a namespace reserved for the \
                  cluster's own components, where it blends in and may use their service \
                  accounts. Compare its image and service account with the namespace's usual \
                  pods and ask its creator. If it is not a known maintenance task, delete it \
                  and search the creator's other recent pods and RBAC changes.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Medium,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `pods`, `verb` is `create` and
    // `objectRef.namespace` one of the system namespaces.
    // System principals are ignored: their requests are not parsed.
    anchor: Anchor::AnyOfByPerson(&[
        &["pods", "create", "kube-system"],
        &["pods", "create", "gke-system"],
        &["pods", "create", "kube-node-lease"],
        &["pods", "create", "kube-public"],
    ]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemNamespace;

impl EventRule for SystemNamespace {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only pod creation.
        if !verb_in(ev, &["create"]) || ev.resource() != Some("pods") {
            return None;
        }
        // The pod itself, not a subresource such as an eviction or a binding.
        if ev.subresource().is_some_and(|s| !s.is_empty()) {
            return None;
        }
        // Refused requests created nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // Platform components create pods there all the time.
        if is_system_principal(ev.username()) {
            return None;
        }
        // The namespace is a system one.
        if !is_system_namespace(ev.namespace()) {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let name = pod_name(ev);
        let title = format!("[{username}] created pod [{namespace}/{name}] in system namespace");
        let dedup = format!("k8s_pod_system_ns_{username}_{namespace}_{name}");
        let hit = Hit::new(title, dedup).with("pod_name", name);
        Some(with_images(hit, pod_spec(ev)))
    }
}
