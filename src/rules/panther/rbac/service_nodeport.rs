//! `Kubernetes.Service.NodePort.Deployed`: a Service of type `NodePort`
//! created, opening a port on every node (MITRE TA0001:T1190).

use super::common::or_default;
use crate::audit::{str_at, AuditEvent};
use crate::rules::catalog::k8s::is_failed_request;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Service.NodePort.Deployed"),
        source: Source::Panther,
        name: "Kubernetes NodePort Service Deployed",
        mitre: "TA0001:T1190",
        reference: "https://kubernetes.io/docs/tutorials/kubernetes-basics/expose/expose-intro/",
        runbook: "A Service of type NodePort was created: its port is now open on every node, \
                  reachable by anything that can reach the nodes. Check which pods it selects \
                  and whether the nodes' security groups let that port in from outside. If the \
                  exposure is not intended, change it to ClusterIP or delete it, and ask the \
                  creator what it was for.",
    },
    severity: Severity::High,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `services`, `verb` is `create` and
    // `requestObject.spec.type` is `NodePort`.
    anchor: Anchor::AnyOf(&[&["services", "create", "NodePort"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceNodePort;

impl EventRule for ServiceNodePort {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only Service creation.
        if ev.verb.as_ref().map(|v| v.as_str()) != Some("create")
            || ev.resource() != Some("services")
        {
            return None;
        }
        // Refused requests created nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // A NodePort Service (`requestObject.spec.type`).
        if str_at(ev.request_object(), &["spec", "type"]) != Some("NodePort") {
            return None;
        }
        let username = or_default(ev.username(), "<UNKNOWN_USER>");
        let namespace = or_default(ev.namespace(), "<UNKNOWN_NAMESPACE>");
        let name = or_default(ev.name(), "<UNKNOWN>");
        // Panther has no `dedup()`: the key is the title.
        let title = format!("[{username}] deployed NodePort service [{namespace}/{name}]");
        Some(Hit::titled(title).with("service_name", name))
    }
}
