//! `Kubernetes.DaemonSet.Created`: a DaemonSet created, a pod on every
//! node (MITRE TA0002:T1610, TA0003:T1543).

use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::{is_failed_request, is_system_namespace, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{name_or, namespace_or_unknown, username_or_unknown, verb_in, with_some};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.DaemonSet.Created"),
        source: Source::Panther,
        name: "Kubernetes DaemonSet Created",
        mitre: "TA0002:T1610, TA0003:T1543",
        reference: "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
        runbook: "A DaemonSet was created, so its pod now runs on every node (or every \
                  selected one). Usually this is an agent installed by the platform team. \
                  Check its image, host paths, host namespaces and privileges \
                  (kubectl get ds -o yaml) against what the creator meant to deploy; delete \
                  it and inspect the nodes if nobody recognises it.",
    },
    severity: Severity::Info,
    max_severity: Severity::Info,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `daemonsets` and `verb` is `create`.
    anchor: Anchor::AnyOf(&[&["daemonsets", "create"]]),
    filter: Filter::Terms(&[terms::WRITE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct DaemonSetCreated;

impl EventRule for DaemonSetCreated {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only DaemonSet creation.
        if !verb_in(ev, &["create"]) || ev.resource() != Some("daemonsets") {
            return None;
        }
        // Refused requests created nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // Platform components install DaemonSets in system namespaces.
        if is_system_namespace(ev.namespace()) && is_system_principal(ev.username()) {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let title = format!(
            "[{username}] created DaemonSet [{namespace}/{}]",
            name_or(ev, "<UNKNOWN>")
        );
        let dedup = format!("k8s_daemonset_{username}_{namespace}");
        Some(with_some(
            Hit::new(title, dedup),
            "daemonset_name",
            ev.name(),
        ))
    }
}
