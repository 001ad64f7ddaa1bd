//! `Kubernetes.CronJob.CreatedOrModified`: a CronJob created, replaced or
//! patched (MITRE TA0003:T1053.003).

use crate::audit::{opt, AuditEvent};
use crate::rules::catalog::k8s::{is_failed_request, is_system_namespace, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{name_or, namespace_or_unknown, username_or_unknown, verb_in, with_some};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.CronJob.CreatedOrModified"),
        source: Source::Panther,
        name: "Kubernetes CronJob Created or Modified",
        mitre: "TA0003:T1053.003",
        reference: "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/",
        runbook: "A CronJob was created or its definition changed, so some code will now run \
                  on a schedule in the cluster. Read its schedule, image, command and service \
                  account (kubectl get cronjob -o yaml) and compare them with the team's \
                  deployments. If the job or the change is unknown, suspend it \
                  (spec.suspend: true), keep its spec for review and ask the user who made it.",
    },
    severity: Severity::Info,
    max_severity: Severity::Info,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `cronjobs` and `verb` one of the three.
    anchor: Anchor::AnyOf(&[
        &["cronjobs", "create"],
        &["cronjobs", "update"],
        &["cronjobs", "patch"],
    ]),
    filter: Filter::Terms(&[terms::WRITE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct CronJobCreatedOrModified;

impl EventRule for CronJobCreatedOrModified {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only CronJob creation, update and patch.
        if !verb_in(ev, &["create", "update", "patch"]) || ev.resource() != Some("cronjobs") {
            return None;
        }
        // Refused requests changed nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // Status updates record runs, not changes to the job.
        if ev.subresource() == Some("status") {
            return None;
        }
        // Platform components manage CronJobs in system namespaces.
        if is_system_namespace(ev.namespace()) && is_system_principal(ev.username()) {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let action = if opt(&ev.verb) == Some("create") {
            "created"
        } else {
            "modified"
        };
        let title = format!(
            "[{username}] {action} CronJob [{namespace}/{}]",
            name_or(ev, "<UNKNOWN>")
        );
        let dedup = format!("k8s_cronjob_{username}_{namespace}");
        Some(with_some(Hit::new(title, dedup), "cronjob_name", ev.name()))
    }
}
