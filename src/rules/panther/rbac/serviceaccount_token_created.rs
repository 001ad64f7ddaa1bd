//! `Kubernetes.ServiceAccount.TokenCreated`: a token requested for a
//! service account through its `token` subresource, except by the platform
//! in its own namespaces (MITRE TA0003:T1098, TA0006:T1552).

use super::common::or_default;
use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::{is_failed_request, is_system_namespace, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.ServiceAccount.TokenCreated"),
        source: Source::Panther,
        name: "Kubernetes Long-Lived Service Account Token Created",
        mitre: "TA0003:T1098, TA0006:T1552",
        reference: "https://stratus-red-team.cloud/attack-techniques/kubernetes/k8s.persistence.create-token/",
        runbook: "A token was issued for a service account on request (kubectl create token or \
                  the TokenRequest API), handing its holder that account's permissions for the \
                  token's lifetime. Check what the account may do (its role bindings) and \
                  whether the requester normally works with it. If not, rotate the account \
                  (delete and recreate it, which voids its tokens) and review the requester's \
                  and the account's activity.",
    },
    severity: Severity::Info,
    max_severity: Severity::Info,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `serviceaccounts`, `objectRef.subresource`
    // is `token` and `verb` is `create`.
    anchor: Anchor::AnyOf(&[&["serviceaccounts", "token", "create"]]),
    filter: Filter::Terms(&[terms::TOKEN]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceAccountTokenCreated;

impl EventRule for ServiceAccountTokenCreated {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only token requests for a service account.
        if ev.verb.as_ref().map(|v| v.as_str()) != Some("create")
            || ev.resource() != Some("serviceaccounts")
            || ev.subresource() != Some("token")
        {
            return None;
        }
        // Refused requests issued nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // The platform issuing tokens in its own namespaces.
        if is_system_principal(ev.username()) && is_system_namespace(ev.namespace()) {
            return None;
        }
        let username = or_default(ev.username(), "<UNKNOWN_USER>");
        let namespace = or_default(ev.namespace(), "<UNKNOWN_NAMESPACE>");
        let name = or_default(ev.name(), "<UNKNOWN_SA>");
        let title = format!(
            "[{username}] created long-lived token for service account [{namespace}/{name}]"
        );
        let dedup = format!("k8s_token_created_{username}_{namespace}_{name}");
        Some(Hit::new(title, dedup).with("service_account", name))
    }
}
