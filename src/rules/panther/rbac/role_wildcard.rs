//! `Kubernetes.Role.Wildcard`: a Role or ClusterRole created with `*` in
//! its resources or verbs (MITRE TA0004/TA0005 T1078.004).

use super::common::user_role_creation;
use crate::audit::{at, AuditEvent};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};
use serde_json::Value;

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Role.Wildcard"),
        source: Source::Panther,
        name: "Kubernetes Role With Wildcard Permissions Created",
        mitre: "TA0004:T1078.004, TA0005:T1078.004",
        reference: "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#privilege-escalation-prevention-and-bootstrapping",
        runbook: "A role that allows every verb or every resource was created. Read its rules \
                  and find the bindings that use it (kubectl get rolebindings,clusterrolebindings \
                  -A -o wide). Ask its creator why it needs a wildcard. If nobody expected it, \
                  delete the bindings and the role, and review what the creator and anyone bound \
                  to it did in the audit log since.",
    },
    severity: Severity::High,
    max_severity: Severity::Critical,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `roles` or `clusterroles` and `verb` is `create`.
    anchor: Anchor::AnyOf(&[&["roles", "create"]]),
    filter: Filter::Terms(&[terms::WRITE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoleWildcard;

/// True when a rule entry of the role grants `*` resources or verbs.
fn has_wildcard(entry: &Value) -> bool {
    ["resources", "verbs"].iter().any(|k| {
        entry
            .get(*k)
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|v| v.as_str() == Some("*")))
    })
}

impl EventRule for RoleWildcard {
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
        // Some rule of the role has a wildcard.
        let rules = at(ev.request_object(), &["rules"]).and_then(Value::as_array)?;
        if !rules.iter().any(has_wildcard) {
            return None;
        }
        let username = ev.username().unwrap_or("<UNKNOWN_USER>");
        let name = ev.name().unwrap_or("<UNKNOWN_ROLE>");
        let (role_type, severity) = if resource == Some("clusterroles") {
            ("ClusterRole", Severity::Critical)
        } else {
            ("Role", Severity::High)
        };
        let title = match ev.namespace() {
            Some(ns) if !ns.is_empty() => {
                format!("[{username}] created {role_type} [{ns}/{name}] with wildcard permissions")
            }
            _ => format!("[{username}] created {role_type} [{name}] with wildcard permissions "),
        };
        let dedup = format!(
            "k8s_role_wildcard_{username}_{}_{name}",
            resource.unwrap_or("<UNKNOWN_RESOURCE>")
        );
        Some(
            Hit::new(title, dedup)
                .severity(severity)
                .with("role_name", name),
        )
    }
}
