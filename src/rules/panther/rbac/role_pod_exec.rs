//! `Kubernetes.Role.PodExec`: a Role or ClusterRole created with access to
//! `pods/exec` (MITRE TA0004:T1078.004, TA0008:T1021).

use super::common::{
    any, contains, or_default, or_empty, role_rules, role_type, title_namespace, user_role_creation,
};
use crate::audit::AuditEvent;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Role.PodExec"),
        source: Source::Panther,
        name: "Kubernetes Role With Pod Exec Permissions Created",
        mitre: "TA0004:T1078.004, TA0008:T1021",
        reference:
            "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources",
        runbook: "A role was created that lets its holders open a shell in pods. Check which \
                  bindings use it and whether its creator meant to give interactive access \
                  (a ClusterRole gives it in every namespace). Look for pods/exec requests by \
                  the bound subjects in the audit log. If the role is not expected, delete it \
                  and its bindings.",
    },
    severity: Severity::High,
    max_severity: Severity::Critical,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `roles` or `clusterroles`, `verb` is
    // `create`, and a rule names `pods/exec`.
    anchor: Anchor::AnyOf(&[&["roles", "create", "pods/exec"]]),
    filter: Filter::Terms(&[terms::WRITE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct RolePodExec;

impl EventRule for RolePodExec {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        let resource = ev.resource();
        // A Role or ClusterRole created and accepted, not by a platform
        // component.
        if !user_role_creation(ev) {
            return None;
        }
        // Some rule of the role names `pods/exec`.
        let granted = any(role_rules(ev).ok()?, |entry| {
            contains(or_empty(entry.object()?.get("resources")), "pods/exec")
        });
        if granted != Ok(true) {
            return None;
        }
        let username = or_default(ev.username(), "<UNKNOWN_USER>");
        let name = or_default(ev.name(), "<UNKNOWN_ROLE>");
        let role_type = role_type(resource);
        let title = match title_namespace(ev.namespace()) {
            Some(ns) => {
                format!("[{username}] created {role_type} [{ns}/{name}] with pods/exec permissions")
            }
            None => {
                format!("[{username}] created {role_type} [{name}] with pods/exec permissions ")
            }
        };
        let dedup = format!(
            "k8s_role_podexec_{username}_{}_{name}",
            or_default(resource, "<UNKNOWN_RESOURCE>")
        );
        // A ClusterRole gives it in every namespace.
        let severity = if resource == Some("clusterroles") {
            Severity::Critical
        } else {
            Severity::High
        };
        Some(
            Hit::new(title, dedup)
                .severity(severity)
                .with("role_name", name),
        )
    }
}
