//! `Kubernetes.Secrets.DumpAllNamespaces`: a successful cluster-wide list
//! of secrets (`GET /api/v1/secrets`) by a non-system identity (MITRE
//! TA0006 T1552.007, TA0009 T1530).

use super::common::or;
use crate::audit::{opt, AuditEvent};
use crate::rules::catalog::k8s::{is_failed_request, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Secrets.DumpAllNamespaces"),
        source: Source::Panther,
        name: "Kubernetes All Secrets Dumped Across Namespaces",
        mitre: "TA0006:T1552.007, TA0009:T1530",
        reference: "https://stratus-red-team.cloud/attack-techniques/kubernetes/k8s.credential-access.dump-secrets/",
        runbook: "An identity read every secret of the cluster in one request. Unless it is a \
                  tool you know does this, assume all of them are exposed: revoke the \
                  identity's credentials, rotate the secrets (service account tokens, registry \
                  and database passwords, cloud keys), and remove the ClusterRole binding that \
                  lets it list secrets cluster-wide.",
    },
    severity: Severity::Critical,
    max_severity: Severity::Critical,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `secrets` and `verb` is `list`.
    // System principals are ignored: their requests are not parsed.
    anchor: Anchor::AnyOfByPerson(&[&["secrets", "list"], &["secrets", "watch"]]),
    filter: Filter::Terms(&[terms::SECRETS]),
};

/// System components that list every secret by design.
const ALLOWED_SECRET_LISTERS: [&str; 3] = [
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:kube-state-metrics",
    "system:apiserver",
];

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretsDumpAllNamespaces;

impl EventRule for SecretsDumpAllNamespaces {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only successful lists of secrets (a watch from the start sends
        // every secret too: reported here, unlike in Panther).
        if !matches!(opt(&ev.verb), Some("list" | "watch"))
            || ev.resource() != Some("secrets")
            || is_failed_request(ev.status_code())
        {
            return None;
        }
        // Cluster-wide: no namespace, and none in the path (the query is
        // the client's to fill: `?x=/namespaces/` must not hide a dump).
        let uri = opt(&ev.request_uri).unwrap_or("");
        let path = uri.split('?').next().unwrap_or(uri);
        if ev.namespace().is_some_and(|n| !n.is_empty()) || path.contains("/namespaces/") {
            return None;
        }
        // Not by system identities or the listed components.
        let username = ev.username().unwrap_or("");
        if is_system_principal(Some(username)) || ALLOWED_SECRET_LISTERS.contains(&username) {
            return None;
        }
        let username = or(Some(username), "<UNKNOWN_USER>");
        let title = format!("[{username}] dumped all secrets across all namespaces (URI: {uri})");
        let dedup = format!("k8s_secrets_dump_{username}");
        Some(Hit::new(title, dedup).with("operation", "list_all_secrets"))
    }
}
