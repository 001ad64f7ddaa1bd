//! `Kubernetes.Role.NodeProxyPermissions`: a Role or ClusterRole created
//! with access to `nodes/proxy` (the kubelet API through the API server)
//! (MITRE TA0004:T1078.004, TA0005:T1562.001).

use super::common::{
    any, contains, or_default, or_empty, role_rules, role_type, user_role_creation,
};
use crate::audit::AuditEvent;
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Role.NodeProxyPermissions"),
        source: Source::Panther,
        name: "Kubernetes Role With Node Proxy Permissions Created",
        mitre: "TA0004:T1078.004, TA0005:T1562.001",
        reference: "https://stratus-red-team.cloud/attack-techniques/kubernetes/k8s.privilege-escalation.nodes-proxy/",
        runbook: "A role was created that lets its holders reach the kubelet API of every node \
                  through the API server, and so run commands in any pod there. Find who is \
                  bound to it (kubectl get rolebindings,clusterrolebindings -A -o wide) and \
                  look for requests to nodes/proxy in the audit log. Unless a monitoring or \
                  debugging tool needs it and its owner confirms, delete the role and its \
                  bindings.",
    },
    severity: Severity::High,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `roles` or `clusterroles`, `verb` is
    // `create`, and a rule names `nodes` (`nodes/proxy`, `nodes/*`).
    anchor: Anchor::AnyOf(&[&["roles", "create", "nodes"]]),
    filter: Filter::Terms(&[terms::WRITE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoleNodeProxy;

impl EventRule for RoleNodeProxy {
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
        // Some rule of the role grants `nodes/proxy`, a verb on `nodes/*`,
        // or `nodes` alongside `*`.
        let granted = any(role_rules(ev).ok()?, |entry| {
            let entry = entry.object()?;
            let resources = or_empty(entry.get("resources"));
            // `verbs or []` is truthy.
            let verbs = or_empty(entry.get("verbs"));
            if contains(resources, "nodes/proxy")?
                || (contains(resources, "nodes/*")? && verbs.is_some())
            {
                return Ok(true);
            }
            Ok(contains(resources, "nodes")? && contains(resources, "*")?)
        });
        if granted != Ok(true) {
            return None;
        }
        let username = or_default(ev.username(), "<UNKNOWN_USER>");
        let name = or_default(ev.name(), "<UNKNOWN_ROLE>");
        let title = format!(
            "[{username}] created {} [{name}] with node proxy permissions",
            role_type(resource)
        );
        let dedup = format!("k8s_node_proxy_{username}_{name}");
        Some(Hit::new(title, dedup).with("role_name", name))
    }
}
