//! `Kubernetes.Ingress.NoTLS`: an Ingress created without a `tls` section
//! (MITRE TA0009:T1040, TA0006:T1552.004).

use serde_json::Value;

use super::common::{join_few, or_default, truthy};
use crate::audit::{at, str_at, AuditEvent};
use crate::rules::catalog::k8s::{is_failed_request, is_system_namespace, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares. Panther's `severity()` gives MEDIUM either way
/// (for an Ingress with an external-facing annotation and without), the
/// YAML severity, so the rule has no severity of its own.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Ingress.NoTLS"),
        source: Source::Panther,
        name: "Kubernetes Ingress Created Without TLS",
        mitre: "TA0009:T1040, TA0006:T1552.004",
        reference: "https://kubernetes.io/docs/concepts/services-networking/ingress/#tls",
        runbook: "An Ingress was created that serves plain HTTP. Check whether TLS ends in \
                  front of it (a load balancer with a certificate, e.g. ALB annotations) or the \
                  hosts are internal only. If traffic with credentials or personal data can \
                  reach it unencrypted, ask the owning team to add a tls section (for example \
                  with cert-manager) or remove the Ingress.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Medium,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `ingresses` and `verb` is `create`.
    // System principals are ignored: their requests are not parsed.
    anchor: Anchor::AnyOfByPerson(&[&["ingresses", "create"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngressWithoutTls;

impl EventRule for IngressWithoutTls {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only Ingress creation.
        if ev.verb.as_ref().map(|v| v.as_str()) != Some("create")
            || ev.resource() != Some("ingresses")
        {
            return None;
        }
        // Refused requests created nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // The platform's own namespaces and identities.
        if is_system_namespace(ev.namespace()) || is_system_principal(ev.username()) {
            return None;
        }
        // `spec.tls` is missing or empty (a body that cannot be read has
        // none either, as with Panther's `deep_get`).
        let spec = at(ev.request_object(), &["spec"]);
        if at(spec, &["tls"]).is_some_and(truthy) {
            return None;
        }
        let username = or_default(ev.username(), "<UNKNOWN_USER>");
        let namespace = or_default(ev.namespace(), "<UNKNOWN_NAMESPACE>");
        let name = or_default(ev.name(), "<UNKNOWN_INGRESS>");
        let title =
            format!("[{username}] created Ingress [{namespace}/{name}] without TLS certificate");
        let dedup = format!("k8s_ingress_no_tls_{namespace}_{name}");
        let mut hit = Hit::new(title, dedup).with("ingress_name", name);
        let rules = at(spec, &["rules"]).and_then(Value::as_array);
        let hosts = join_few(
            rules
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(|r| str_at(Some(r), &["host"]))
                .filter(|h| !h.is_empty()),
        );
        if !hosts.is_empty() {
            hit = hit.with("ingress_hosts", &hosts);
        }
        Some(hit)
    }
}
