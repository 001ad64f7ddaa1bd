//! `Kubernetes.BulkSecretAccess`: one non-system identity reading,
//! listing or watching many distinct secrets, fifteen in half an hour
//! (MITRE TA0006 T1552.007). Panther ships it off.

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
        id: RuleId::new("Kubernetes.BulkSecretAccess"),
        source: Source::Panther,
        name: "Kubernetes Secret Enumeration by a User",
        mitre: "TA0006:T1552.007",
        reference: "https://kubernetes.io/docs/concepts/security/secrets-good-practices/",
        runbook: "One identity touched many different secrets in a short time. List the \
                  secrets and namespaces it read and whether the reads succeeded (HIGH means at \
                  least one did). Unless it is a known backup, sync or operator tool, revoke the \
                  identity's credentials and rotate every secret it read successfully.",
    },
    severity: Severity::Medium,
    max_severity: Severity::High,
    threshold: 15,
    dedup_minutes: 30,
    enabled: false,
    // `objectRef.resource` is `secrets` and `verb` is `get`, `list` or
    // `watch`.
    // System principals are ignored: their requests are not parsed.
    anchor: Anchor::AnyOfByPerson(&[
        &["secrets", "get"],
        &["secrets", "list"],
        &["secrets", "watch"],
    ]),
    filter: Filter::Terms(&[terms::SECRETS]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretEnumeration;

/// Panther's `unique()`: the secret's name, else for a list or watch the
/// namespace or path it covered.
fn unique(ev: &AuditEvent<'_>, verb: &str) -> Option<String> {
    if let Some(name) = ev.name().filter(|n| !n.is_empty()) {
        return Some(name.to_owned());
    }
    if verb != "list" && verb != "watch" {
        return None;
    }
    if let Some(ns) = ev.namespace().filter(|n| !n.is_empty()) {
        return Some(format!("{verb}:{ns}"));
    }
    if let Some(uri) = opt(&ev.request_uri).filter(|u| !u.is_empty()) {
        return Some(format!("{verb}:{uri}"));
    }
    Some(verb.to_owned())
}

impl EventRule for SecretEnumeration {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn max_threshold(&self) -> Option<u64> {
        Some(crate::window::MAX_DISTINCT_VALUES as u64)
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        let verb = opt(&ev.verb)?;
        // Only reads.
        if !matches!(verb, "list" | "get" | "watch") {
            return None;
        }
        // Of secrets.
        if ev.resource() != Some("secrets") {
            return None;
        }
        // Not by system identities.
        if is_system_principal(ev.username()) {
            return None;
        }
        let username = or(ev.username(), "<UNKNOWN_USER>");
        let title = format!("Kubernetes Secret Enumeration by [{username}]");
        let mut hit = Hit::new(title, username.to_owned());
        // A read that succeeded is worse than a refused one.
        if !is_failed_request(ev.status_code()) {
            hit = hit.severity(Severity::High);
        }
        hit.unique = unique(ev, verb);
        if let Some(name) = ev.name().filter(|n| !n.is_empty()) {
            hit = hit.with("secret_name", name);
        }
        Some(hit)
    }
}
