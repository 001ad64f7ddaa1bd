//! `Kubernetes.Pod.Exec`: any exec into a pod. Panther ships it off, to be
//! tuned to the people and service accounts that exec routinely; enable it
//! with `ENABLED_RULES`.

use crate::audit::AuditEvent;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{name_or, namespace_or_unknown, username_or_unknown, verb_in, with_some};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Pod.Exec"),
        source: Source::Panther,
        name: "Kubernetes Exec Into Pod",
        mitre: "",
        reference:
            "https://kubernetes.io/docs/tasks/debug/debug-application/get-shell-running-container/",
        runbook: "Someone opened a shell or ran a command inside a running pod, which gives \
                  them the pod's files, secrets and service-account token. Check that the \
                  person is one who debugs this workload and that the time fits a ticket or \
                  incident. If not, ask them, and review what else they did in the audit log \
                  and what the pod's service account did afterwards.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Medium,
    threshold: 1,
    dedup_minutes: 60,
    enabled: false,
    // `objectRef.resource` is `pods` and `objectRef.subresource` is `exec`.
    anchor: Anchor::AnyOf(&[&["pods", "exec"]]),
    filter: Filter::Terms(&[terms::EXEC]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecIntoPod;

impl EventRule for ExecIntoPod {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only exec into a pod (`create` over SPDY, `get` over WebSocket);
        // refused requests count too.
        if !verb_in(ev, &["create", "get"])
            || ev.resource() != Some("pods")
            || ev.subresource() != Some("exec")
        {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let title = format!(
            "[{username}] executed into pod [{namespace}/{}]",
            name_or(ev, "<UNKNOWN>")
        );
        let dedup = format!(
            "k8s_exec_{username}_{namespace}_{}",
            name_or(ev, "<UNKNOWN_POD>")
        );
        Some(with_some(Hit::new(title, dedup), "pod_name", ev.name()))
    }
}
