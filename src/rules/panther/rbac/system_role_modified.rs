//! `Kubernetes.SystemRole.Modified`: a built-in `system:` or `eks:` Role or
//! ClusterRole updated, patched or deleted by someone other than the
//! platform (MITRE TA0004:T1078.004, TA0005:T1222, TA0003:T1098).

use super::common::{or_default, role_type, title_namespace};
use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::{is_failed_request, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.SystemRole.Modified"),
        source: Source::Panther,
        name: "Kubernetes System Role Modified or Deleted",
        mitre: "TA0004:T1078.004, TA0005:T1222, TA0003:T1098",
        reference: "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#default-roles-and-role-bindings",
        runbook: "A role that Kubernetes or EKS manages was changed or removed by a person or \
                  workload. Compare it with the same role on a cluster of the same version \
                  (kubectl get clusterrole <name> -o yaml) and ask whether an upgrade or add-on \
                  did this. If not, restore it, suspend the \
                  account that changed it and review that account's other changes.",
    },
    severity: Severity::Critical,
    max_severity: Severity::Critical,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `roles` or `clusterroles`, `verb` is
    // `update`, `patch` or `delete`, and `objectRef.name` starts with
    // `system:` or `eks:`.
    // System principals are ignored: their requests are not parsed.
    anchor: Anchor::AnyOfByPerson(&[
        &["roles", "update", "system:"],
        &["roles", "patch", "system:"],
        &["roles", "delete", "system:"],
        &["roles", "update", "eks:"],
        &["roles", "patch", "eks:"],
        &["roles", "delete", "eks:"],
    ]),
    filter: Filter::Terms(&[terms::WRITE]),
};

/// System roles that are expected to change.
const ALLOWED_SYSTEM_ROLE_MODIFICATIONS: [&str; 2] =
    ["system:coredns", "system:managed-certificate-controller"];

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRoleModified;

impl EventRule for SystemRoleModified {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        let verb = ev.verb.as_ref().map(|v| v.as_str());
        let resource = ev.resource();
        let name = ev.name().unwrap_or("");
        // Only changes to and deletions of Roles and ClusterRoles.
        if !matches!(verb, Some("update" | "patch" | "delete"))
            || !matches!(resource, Some("roles" | "clusterroles"))
        {
            return None;
        }
        // Refused requests changed nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // The platform maintains its own roles.
        if is_system_principal(ev.username()) {
            return None;
        }
        // Only the platform's roles.
        if !(name.starts_with("system:") || name.starts_with("eks:")) {
            return None;
        }
        // Roles that are expected to change.
        if ALLOWED_SYSTEM_ROLE_MODIFICATIONS.contains(&name) {
            return None;
        }
        let username = or_default(ev.username(), "<UNKNOWN_USER>");
        let role_type = role_type(resource);
        let action = if verb == Some("delete") {
            "deleted"
        } else {
            "modified"
        };
        let title = match title_namespace(ev.namespace()) {
            Some(ns) => format!("[{username}] {action} system {role_type} [{ns}/{name}]"),
            None => format!("[{username}] {action} system {role_type} [{name}]"),
        };
        let dedup = format!("k8s_system_role_{username}_{name}");
        Some(
            Hit::new(title, dedup)
                .with("role_name", name)
                .with("modification_type", verb.unwrap_or_default()),
        )
    }
}
