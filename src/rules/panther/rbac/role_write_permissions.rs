//! `Kubernetes.Role.WritePermissions`: a Role or ClusterRole created with a
//! write verb (create, update, patch, delete, deletecollection), rated by
//! what it may write (MITRE TA0005:T1222).

use serde_json::Value;

use super::common::{
    any, find_map, or_default, or_empty, role_rules, role_type, title_namespace,
    user_role_creation, Py,
};
use crate::audit::AuditEvent;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Role.WritePermissions"),
        source: Source::Panther,
        name: "Kubernetes Role With Write Permissions Created",
        mitre: "TA0005:T1222",
        reference:
            "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#role-and-clusterrole",
        runbook: "A role that can change objects was created. Most are routine; the severity \
                  rises when it may write secrets or RBAC objects (CRITICAL) or, cluster-wide, \
                  pods, nodes or volumes (HIGH). Read its rules, check who it is bound to and \
                  whether the creator's team expects it, and narrow or delete it if it grants \
                  more than the workload needs.",
    },
    severity: Severity::Low,
    max_severity: Severity::Critical,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `roles` or `clusterroles` and `verb` is `create`.
    anchor: Anchor::AnyOf(&[&["roles", "create"]]),
    filter: Filter::Terms(&[terms::WRITE]),
};

/// Verbs that change the cluster.
const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The write verbs `severity()` looks at.
const SEVERE_VERBS: [&str; 4] = ["create", "update", "patch", "delete"];

/// Resources whose write access is CRITICAL.
const SENSITIVE_RESOURCES: [&str; 5] = [
    "secrets",
    "clusterroles",
    "clusterrolebindings",
    "roles",
    "rolebindings",
];

/// Resources whose cluster-wide write access is HIGH.
const NODE_RESOURCES: [&str; 3] = ["pods", "nodes", "persistentvolumes"];

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoleWritePermissions;

/// Panther's `severity()`: the first rule that may write sensitive
/// resources (CRITICAL) or, in a ClusterRole, pods, nodes or volumes
/// (HIGH); else MEDIUM for a ClusterRole and LOW for a Role.
fn severity(rules: Option<&Value>, cluster_role: bool) -> Py<Severity> {
    let found = find_map(rules, |entry| {
        let entry = entry.object()?;
        let resources = or_empty(entry.get("resources"));
        let verbs = or_empty(entry.get("verbs"));
        if any(resources, |r| r.in_set(&SENSITIVE_RESOURCES))?
            && any(verbs, |v| v.in_set(&SEVERE_VERBS))?
        {
            return Ok(Some(Severity::Critical));
        }
        if cluster_role
            && any(resources, |r| r.in_set(&NODE_RESOURCES))?
            && any(verbs, |v| v.in_set(&SEVERE_VERBS))?
        {
            return Ok(Some(Severity::High));
        }
        Ok(None)
    })?;
    Ok(found.unwrap_or(if cluster_role {
        Severity::Medium
    } else {
        Severity::Low
    }))
}

impl EventRule for RoleWritePermissions {
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
        // Some rule of the role has a write verb.
        let rules = role_rules(ev).ok()?;
        let writes = any(rules, |entry| {
            any(or_empty(entry.object()?.get("verbs")), |v| {
                v.in_set(&WRITE_VERBS)
            })
        });
        if writes != Ok(true) {
            return None;
        }
        let username = or_default(ev.username(), "<UNKNOWN_USER>");
        let name = or_default(ev.name(), "<UNKNOWN_ROLE>");
        let role_type = role_type(resource);
        let title = match title_namespace(ev.namespace()) {
            Some(ns) => {
                format!("[{username}] created {role_type} [{ns}/{name}] with write permissions")
            }
            None => format!("[{username}] created {role_type} [{name}] with write permissions "),
        };
        let dedup = format!(
            "k8s_role_write_{username}_{}_{name}",
            or_default(resource, "<UNKNOWN_RESOURCE>")
        );
        // A `severity()` that raises gives the rule's default.
        let severity = severity(rules, resource == Some("clusterroles")).unwrap_or(SPEC.severity);
        Some(
            Hit::new(title, dedup)
                .severity(severity)
                .with("role_name", name),
        )
    }
}
