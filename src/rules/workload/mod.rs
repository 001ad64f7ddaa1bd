//! The pod-spec rules applied to workload templates (this project's).
//!
//! Panther's pod rules look at `create` on `pods`. A pod that a
//! controller creates (every pod of a Deployment, DaemonSet, StatefulSet,
//! ReplicaSet, ReplicationController, Job or CronJob) is logged under the controller's system
//! identity, which those rules leave out, and in the namespace of the
//! workload: a privileged DaemonSet applied by a person never shows as a
//! privileged pod created by that person. These rules look where the person
//! acted: the pod template of the workload they created, replaced or
//! patched (`spec.template.spec`, and `spec.jobTemplate.spec.template.spec`
//! for a CronJob). They keep ids of their own so Panther's keep their
//! meaning.
//!
//! | rule | the template | severity |
//! |---|---|---|
//! | `EksAuditDetector.Workload.Privileged` | runs a privileged container, or one allowed to run as root | HIGH |
//! | `EksAuditDetector.Workload.HostNamespaces` | shares the node's PID, IPC or network namespace | MEDIUM |
//! | `EksAuditDetector.Workload.HostPath` | mounts a directory of the node | MEDIUM, HIGH for a sensitive path |
//! | `EksAuditDetector.Workload.DangerousCapabilities` | adds `SYS_ADMIN`, `NET_ADMIN`, `BPF`, ... | HIGH |
//!
//! Writes by system identities (controllers, EKS) are left out: a
//! ReplicaSet that the Deployment controller makes from a Deployment
//! repeats what the person's Deployment already showed. A JSON patch (a
//! list of operations) is not read; a merge patch is read for what it sets.

pub mod capabilities;
pub mod host_namespaces;
pub mod host_path;
pub mod privileged;

use serde_json::Value;

use super::catalog::k8s::{is_failed_request, is_system_principal};
use super::catalog::Hit;
use super::filter::{terms, Filter};
use crate::audit::{at, opt, AuditEvent};

/// The workload resources and the path of their pod template.
const WORKLOADS: [(&str, &str, &[&str]); 7] = [
    ("deployments", "Deployment", &["spec", "template", "spec"]),
    (
        "replicationcontrollers",
        "ReplicationController",
        &["spec", "template", "spec"],
    ),
    ("daemonsets", "DaemonSet", &["spec", "template", "spec"]),
    ("statefulsets", "StatefulSet", &["spec", "template", "spec"]),
    ("replicasets", "ReplicaSet", &["spec", "template", "spec"]),
    ("jobs", "Job", &["spec", "template", "spec"]),
    (
        "cronjobs",
        "CronJob",
        &["spec", "jobTemplate", "spec", "template", "spec"],
    ),
];

/// What a workload rule's message must contain: the resource (`sets`
/// covers DaemonSets, StatefulSets and ReplicaSets, `jobs` Jobs and
/// CronJobs; ReplicationControllers, the older ReplicaSets, are named
/// whole), the pod template's member name, and the member the rule
/// looks for in it (`securityContext`, `hostPath`, ...; member names are
/// never escaped).
macro_rules! workload_anchor {
    ($($member:literal),+) => {
        $crate::rules::Anchor::AnyOf(&[$(
            &["deployments", "template", $member],
            &["sets", "template", $member],
            &["jobs", "template", $member],
            &["replicationcontrollers", "template", $member],
        )+])
    };
}
pub(crate) use workload_anchor;

/// What CloudWatch must forward for them. ReplicationControllers are not
/// in it: the default pattern is at CloudWatch's 1,024-character limit,
/// so their writes are read only where every audit event is forwarded
/// (`FilterPattern` empty, as with Sigma rules on); see the README.
pub const FILTER: Filter = Filter::Terms(&[terms::WRITE]);

/// A workload write whose pod template a rule looks at.
#[derive(Debug)]
pub struct Workload<'e> {
    /// `Deployment`, `DaemonSet`, ...
    pub kind: &'static str,
    /// `created`, `replaced`, `patched`.
    pub done: &'static str,
    /// Who wrote it.
    pub username: &'e str,
    /// Its namespace.
    pub namespace: &'e str,
    /// Its name.
    pub name: &'e str,
    /// The pod spec of its template (in a merge patch: what the patch sets).
    pub spec: &'e Value,
}

/// The workload write in `ev`, when it is one a person made and the API
/// server accepted.
pub fn workload<'e>(ev: &'e AuditEvent<'_>) -> Option<Workload<'e>> {
    // Only writes of the workload itself, not of its status or scale.
    let done = match opt(&ev.verb)? {
        "create" => "created",
        "update" => "replaced",
        "patch" => "patched",
        _ => return None,
    };
    if ev.subresource().is_some_and(|s| !s.is_empty()) {
        return None;
    }
    let resource = ev.resource()?;
    let (_, kind, path) = WORKLOADS.iter().find(|(r, _, _)| *r == resource)?;
    // Refused requests changed nothing.
    if is_failed_request(ev.status_code()) {
        return None;
    }
    // Controllers and EKS write workloads from what a person wrote.
    if is_system_principal(ev.username()) {
        return None;
    }
    // The template: a JSON patch (a list) has none to read.
    let spec = at(ev.request_object(), path).filter(|s| s.is_object())?;
    let name = ev
        .name()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            at(ev.request_object(), &["metadata", "name"])
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
        })
        .unwrap_or("<UNKNOWN_NAME>");
    Some(Workload {
        kind,
        done,
        username: ev
            .username()
            .filter(|u| !u.is_empty())
            .unwrap_or("<UNKNOWN_USER>"),
        namespace: ev
            .namespace()
            .filter(|n| !n.is_empty())
            .unwrap_or("<UNKNOWN_NAMESPACE>"),
        name,
        spec,
    })
}

impl Workload<'_> {
    /// `[user] created Deployment [ns/name] whose pod template <what>`.
    pub fn hit(&self, rule: &str, cluster: &str, what: &str) -> Hit {
        let title = format!(
            "[{}] {} {} [{}/{}] whose pod template {what}",
            self.username, self.done, self.kind, self.namespace, self.name
        );
        let dedup = format!(
            "{rule}_{cluster}_{}_{}_{}",
            self.namespace, self.kind, self.name
        );
        Hit::new(title, dedup)
            .with("workload_kind", self.kind)
            .with("workload_name", self.name)
    }
}
