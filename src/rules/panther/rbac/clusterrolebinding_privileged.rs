//! `Kubernetes.ClusterRoleBinding.Privileged`: a ClusterRoleBinding created
//! to `cluster-admin`, `system:masters`, `admin` or a control-plane role
//! (MITRE TA0004:T1078.004, TA0003:T1098).

use serde_json::Value;

use super::common::{any, or_default, request_dict, truthy, Item, Py, Raised, MAX_JOINED};
use crate::audit::{at, AuditEvent};
use crate::rules::catalog::k8s::{is_failed_request, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.ClusterRoleBinding.Privileged"),
        source: Source::Panther,
        name: "Kubernetes ClusterRoleBinding to Privileged Role",
        mitre: "TA0004:T1078.004, TA0003:T1098",
        reference: "https://kubernetes.io/docs/reference/access-authn-authz/rbac/",
        runbook: "Someone bound a cluster-wide privileged role to users, groups or service \
                  accounts. Check who the subjects are (kubectl get clusterrolebinding <name> \
                  -o yaml) and whether the creator had a change request for it. If not, delete \
                  the binding at once and go through what the creator and the subjects did in \
                  the audit log since.",
    },
    severity: Severity::Medium,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `clusterrolebindings` and `verb` is `create`.
    // System principals are ignored: their requests are not parsed.
    anchor: Anchor::AnyOfByPerson(&[&["clusterrolebindings", "create"]]),
    filter: Filter::Terms(&[terms::WRITE]),
};

/// Roles a binding to which is alerted on.
const PRIVILEGED_CLUSTER_ROLES: [&str; 5] = [
    "cluster-admin",
    "system:masters",
    "admin",
    "system:kube-controller-manager",
    "system:kube-scheduler",
];

/// Roles that give the whole cluster (the alert is HIGH).
const FULL_CONTROL_ROLES: [&str; 2] = ["cluster-admin", "system:masters"];

/// Longest subject list kept for the title (the title is cut at 1 KB).
const MAX_SUBJECTS_BYTES: usize = 1100;

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterRoleBindingPrivileged;

/// Python's `str()` of a subject's kind or name: strings as they are,
/// other scalars as Python prints them (containers approximately).
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

/// `kind:name` of each subject with both, joined with `, ` (Panther's
/// title), and the length of its first [`MAX_JOINED`] ones; raises like
/// Panther's loop on a subject that is not a dict.
fn subjects(request: &serde_json::Map<String, Value>) -> Py<(String, usize)> {
    let mut out = String::new();
    let mut count = 0;
    let mut few = 0;
    any(request.get("subjects"), |item: Item<'_>| {
        let subject = item.object()?;
        let kind = subject.get("kind").filter(|v| truthy(v));
        let name = subject.get("name").filter(|v| truthy(v));
        if let (Some(kind), Some(name)) = (kind, name) {
            if out.len() < MAX_SUBJECTS_BYTES {
                if !out.is_empty() {
                    out.push_str(", ");
                }
                out.push_str(&py_str(kind));
                out.push(':');
                out.push_str(&py_str(name));
                count += 1;
                if count <= MAX_JOINED {
                    few = out.len();
                }
            }
        }
        Ok(false)
    })?;
    if out.is_empty() {
        out.push_str("<UNKNOWN_SUBJECTS>");
        few = out.len();
    }
    Ok((out, few))
}

impl EventRule for ClusterRoleBindingPrivileged {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only ClusterRoleBinding creation.
        if ev.verb.as_ref().map(|v| v.as_str()) != Some("create")
            || ev.resource() != Some("clusterrolebindings")
        {
            return None;
        }
        // Refused requests created nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // Platform components bind these roles on purpose.
        if is_system_principal(ev.username()) {
            return None;
        }
        // The binding grants a privileged role (`roleRef.name`).
        let request = request_dict(ev).ok().flatten()?;
        let role = at(request.get("roleRef"), &["name"]).and_then(Value::as_str)?;
        if !PRIVILEGED_CLUSTER_ROLES.contains(&role) {
            return None;
        }
        let username = or_default(ev.username(), "<UNKNOWN_USER>");
        let name = or_default(ev.name(), "<UNKNOWN_BINDING>");
        let subjects = subjects(request);
        let title = match &subjects {
            Ok((subjects, _)) => format!(
                "[{username}] created ClusterRoleBinding [{name}] granting [{role}] to [{subjects}]"
            ),
            // Panther titles the alert with the rule's name when `title()` fails.
            Err(Raised) => SPEC.meta.name.to_owned(),
        };
        let dedup = format!("k8s_clusterrolebinding_{username}_{name}");
        let mut hit = Hit::new(title, dedup).with("role_name", role);
        if FULL_CONTROL_ROLES.contains(&role) {
            hit = hit.severity(Severity::High);
        }
        if let Ok((subjects, few)) = &subjects {
            hit = hit.with("subjects", subjects.get(..*few).unwrap_or(subjects));
        }
        Some(hit)
    }
}
