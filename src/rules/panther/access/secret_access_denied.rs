//! `Kubernetes.Secret.AccessDenied`: refused reads of a secret outside the
//! system namespaces by a non-system identity, alerting from twenty in a
//! quarter of an hour (MITRE TA0006 T1552.007, TA0007 T1613).

use super::common::or;
use crate::audit::{opt, AuditEvent};
use crate::rules::catalog::k8s::{is_failed_request, is_system_namespace, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Secret.AccessDenied"),
        source: Source::Panther,
        name: "Kubernetes Secret Access Denied",
        mitre: "TA0006:T1552.007, TA0007:T1613",
        reference: "https://kubernetes.io/docs/concepts/configuration/secret/",
        runbook: "One identity was refused many secrets in a namespace within minutes. Look at \
                  the secret names it asked for: guessed names mean someone is probing, one \
                  name repeated usually means a workload missing a RoleBinding. For probing, \
                  find where the identity's credentials are used from and revoke them; check \
                  whether any of its secret reads succeeded.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Medium,
    threshold: 20,
    dedup_minutes: 15,
    enabled: true,
    // `objectRef.resource` is `secrets` and `verb` is `get`.
    // System principals are ignored: their requests are not parsed.
    anchor: Anchor::AnyOfByPerson(&[&["secrets", "get"]]),
    filter: Filter::Terms(&[terms::SECRETS]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretAccessDenied;

impl EventRule for SecretAccessDenied {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only reads of one secret.
        if opt(&ev.verb) != Some("get") || ev.resource() != Some("secrets") {
            return None;
        }
        // Only refused ones.
        let code = ev.status_code();
        if !is_failed_request(code) {
            return None;
        }
        // Not in system namespaces, not by system identities.
        if is_system_namespace(ev.namespace()) || is_system_principal(ev.username()) {
            return None;
        }
        let username = or(ev.username(), "<UNKNOWN_USER>");
        let namespace = or(ev.namespace(), "<UNKNOWN_NAMESPACE>");
        let name = or(ev.name(), "<UNKNOWN_SECRET>");
        let code = code.map_or_else(|| "UNKNOWN".to_owned(), |c| c.to_string());
        let title = format!(
            "[{username}] failed secret enumeration attempt in [{namespace}/{name}] (response: \
             {code})"
        );
        let dedup = format!("k8s_secret_denied_{username}_{namespace}");
        Some(
            Hit::new(title, dedup)
                .with("secret_name", name)
                .with("response_code", &code),
        )
    }
}
