//! `Kubernetes.Pod.HostPath.Volume`: a pod created with a `hostPath`
//! volume, HIGH when the path is one that gives the node away (MITRE
//! TA0010:T1041, TA0004:T1611).

use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::{is_sensitive_hostpath, pod_name, pod_spec};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{
    host_paths, namespace_or_unknown, user_pod_creation, username_or_unknown, with_images,
    MAX_JOINED,
};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Pod.HostPath.Volume"),
        source: Source::Panther,
        name: "Kubernetes Pod With HostPath Volume Mount",
        mitre: "TA0010:T1041, TA0004:T1611",
        reference:
            "https://kubernetes.io/docs/concepts/security/pod-security-standards/#host-namespaces",
        runbook: "A pod was created that mounts a directory of its node. Paths such as /, \
                  /etc, /var/lib/kubelet or a container runtime socket (HIGH) let it read \
                  node credentials or take over the node. Check the paths, the image and the \
                  owner with the pod's creator; if the mount is not needed, delete the pod and \
                  review the node and the creator's recent activity.",
    },
    severity: Severity::Medium,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 360,
    enabled: true,
    // `objectRef.resource` is `pods`, `verb` is `create`, and the pod spec
    // has a `hostPath` volume (a member name, never escaped).
    anchor: Anchor::AnyOf(&[&["pods", "create", "hostPath"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostPathVolume;

impl EventRule for HostPathVolume {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // A pod created and accepted, not by a platform component in a
        // system namespace.
        if !user_pod_creation(ev) {
            return None;
        }
        // Some volume is a `hostPath`.
        let spec = pod_spec(ev);
        let mounts = host_paths(spec)?;
        if !mounts.mounted {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let name = pod_name(ev);
        let paths = if mounts.paths.is_empty() {
            "unknown".to_owned()
        } else {
            mounts.paths.join(", ")
        };
        let title = format!(
            "[{username}] created pod [{namespace}/{name}] with hostPath volume mount [{paths}]"
        );
        let mut hit = Hit::new(title, format!("hostpath_volume_{username}_{namespace}"))
            .with("pod_name", name)
            .with(
                "hostpath_paths",
                &mounts.paths[..mounts.paths.len().min(MAX_JOINED)].join(", "),
            );
        hit = with_images(hit, spec);
        if mounts.paths.iter().any(|p| is_sensitive_hostpath(p)) {
            hit = hit.severity(Severity::High);
        }
        Some(hit)
    }
}
