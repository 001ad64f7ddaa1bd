//! `Kubernetes.AdmissionController.Created`: a mutating or validating
//! admission webhook configuration created (MITRE TA0003:T1546,
//! TA0006:T1552, TA0009:T1530).

use serde_json::Value;

use super::common::{any, contains, join_few, or_default, or_empty, Py};
use crate::audit::{at, str_at, AuditEvent};
use crate::rules::catalog::k8s::{is_failed_request, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.AdmissionController.Created"),
        source: Source::Panther,
        name: "Kubernetes Admission Controller Webhook Created",
        mitre: "TA0003:T1546, TA0006:T1552, TA0009:T1530",
        reference: "https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/",
        runbook: "A webhook that sees (and, if mutating, may rewrite) API requests was \
                  registered. Look at where it sends them (clientConfig url or service), which \
                  resources its rules cover and its failure policy, and ask the creator which \
                  tool installed it. A webhook nobody owns, or one pointing outside the \
                  cluster, should be deleted and the creator's other actions reviewed.",
    },
    severity: Severity::Medium,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `mutatingwebhookconfigurations` or
    // `validatingwebhookconfigurations`, and `verb` is `create`.
    // System principals are ignored: their requests are not parsed.
    anchor: Anchor::AnyOfByPerson(&[&["webhookconfigurations", "create"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The webhook configuration resources.
const WEBHOOK_RESOURCES: [&str; 2] = [
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
];

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdmissionControllerCreated;

/// Panther's `severity()`: HIGH when a webhook has a rule on `*`
/// resources or API groups.
fn intercepts_everything(webhooks: Option<&Value>) -> Py<bool> {
    any(webhooks, |webhook| {
        any(webhook.object()?.get("rules"), |rule| {
            let rule = rule.object()?;
            Ok(contains(rule.get("resources"), "*")? || contains(rule.get("apiGroups"), "*")?)
        })
    })
}

/// Where the webhooks send requests: each `clientConfig.url`, or the name
/// of its in-cluster service.
fn targets(webhooks: Option<&Value>) -> String {
    let list = webhooks
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    join_few(list.iter().filter_map(|w| {
        let config = at(Some(w), &["clientConfig"]);
        str_at(config, &["url"]).or_else(|| str_at(config, &["service", "name"]))
    }))
}

impl EventRule for AdmissionControllerCreated {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only creation.
        if ev.verb.as_ref().map(|v| v.as_str()) != Some("create") {
            return None;
        }
        // Only webhook configurations.
        let resource = ev.resource()?;
        if !WEBHOOK_RESOURCES.contains(&resource) {
            return None;
        }
        // Refused requests created nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // Platform components install webhooks on purpose.
        if is_system_principal(ev.username()) {
            return None;
        }
        let username = or_default(ev.username(), "<UNKNOWN_USER>");
        let name = or_default(ev.name(), "<UNKNOWN_NAME>");
        let webhook_type = if resource.starts_with("mutating") {
            "Mutating"
        } else {
            "Validating"
        };
        let title =
            format!("[{username}] created {webhook_type} admission controller webhook [{name}] ");
        let dedup = format!("k8s_admission_webhook_{username}");
        // `udm("webhooks") or []`; a `severity()` that raises gives MEDIUM.
        let webhooks = or_empty(at(ev.request_object(), &["webhooks"]));
        let severity = if intercepts_everything(webhooks) == Ok(true) {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut hit = Hit::new(title, dedup)
            .severity(severity)
            .with("webhook_name", name);
        let targets = targets(webhooks);
        if !targets.is_empty() {
            hit = hit.with("webhook_targets", &targets);
        }
        Some(hit)
    }
}
