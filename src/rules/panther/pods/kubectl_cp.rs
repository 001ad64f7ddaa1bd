//! `Kubernetes.Kubectl.CP.Operation`: `kubectl cp` out of a pod, seen as
//! an exec of `tar cf -` (MITRE TA0010:T1530, TA0006:T1552).

use std::borrow::Cow;

use serde_json::Value;

use crate::audit::{opt, AuditEvent};
use crate::rules::catalog::k8s::{is_failed_request, is_system_namespace, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{
    name_or, namespace_or_unknown, query_values, truthy, username_or_unknown, verb_in, with_some,
    MAX_JOINED,
};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Kubectl.CP.Operation"),
        source: Source::Panther,
        name: "Kubernetes Data Copy via kubectl cp",
        mitre: "TA0010:T1530, TA0006:T1552",
        reference: "https://kubernetes.io/docs/reference/generated/kubectl/kubectl-commands#cp",
        runbook: "Files were copied out of a pod with kubectl cp (an exec of tar writing to \
                  stdout); CRITICAL when the path looks like keys, tokens or credentials, HIGH \
                  for system directories. Ask the user what they copied and why. If it was not \
                  expected, rotate whatever secrets the path held and review the user's other \
                  exec and secret requests around that time.",
    },
    severity: Severity::Medium,
    max_severity: Severity::Critical,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `pods` and `objectRef.subresource` is `exec`.
    anchor: Anchor::AnyOf(&[&["pods", "exec"]]),
    filter: Filter::Terms(&[terms::EXEC]),
};

/// Command fragments that make a copy CRITICAL.
const CRITICAL_PATTERNS: [&str; 10] = [
    "/root",
    ".ssh",
    "id_rsa",
    "id_ecdsa",
    "id_ed25519",
    "credentials",
    "secrets",
    "token",
    ".kube",
    "serviceaccount",
];

/// Command fragments that make a copy HIGH.
const SENSITIVE_PATTERNS: [&str; 6] = ["/etc", "/var/run", "/proc", "config", "password", "shadow"];

/// Panther's `get_exec_command`: `requestObject.command` when set, else
/// the `command` parameters of `requestURI` (EKS). `None` where Python
/// raises (a `requestObject` that is not a mapping) and for a command that
/// is not a list of strings, which the API server never records.
fn exec_command<'e>(ev: &'e AuditEvent<'_>) -> Option<Vec<Cow<'e, str>>> {
    if let Some(request) = ev.request_object().filter(|r| truthy(r)) {
        if let Some(command) = request.as_object()?.get("command").filter(|c| truthy(c)) {
            return command
                .as_array()?
                .iter()
                .map(|arg| arg.as_str().map(Cow::Borrowed))
                .collect();
        }
    }
    // Panther looks for `command=` first; the API server decodes a
    // parameter's name (`comm%61nd=`), so every decoded name is looked at.
    let uri = opt(&ev.request_uri).unwrap_or("");
    Some(
        query_values(uri, "command")
            .into_iter()
            .map(Cow::Owned)
            .collect(),
    )
}

/// `tar`, then a `cf` flag, then `-` (the archive on stdout): a copy out
/// of the pod. Arguments are lower-cased as Python's `str.lower` does.
fn is_copy_out(lowered: &[String]) -> bool {
    let (mut tar, mut cf, mut dash) = (false, false, false);
    for (i, arg) in lowered.iter().enumerate() {
        if arg.contains("tar") {
            tar = true;
        }
        if arg.contains("cf") && arg != "-c" {
            cf = true;
        }
        if arg == "-" && i > 0 && cf {
            dash = true;
        }
    }
    tar && cf && dash
}

/// Panther's `severity()`. Its patterns hold no space, so looking in each
/// argument is looking in the arguments joined with spaces.
fn severity(lowered: &[String]) -> Severity {
    let any = |patterns: &[&str]| {
        lowered
            .iter()
            .any(|arg| patterns.iter().any(|p| arg.contains(p)))
    };
    if any(&CRITICAL_PATTERNS) {
        Severity::Critical
    } else if any(&SENSITIVE_PATTERNS) {
        Severity::High
    } else {
        Severity::Medium
    }
}

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct KubectlCp;

impl EventRule for KubectlCp {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only exec into a pod.
        if !verb_in(ev, &["create", "get"])
            || ev.resource() != Some("pods")
            || ev.subresource() != Some("exec")
        {
            return None;
        }
        // Refused requests ran nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // Platform components exec into their own system pods.
        if is_system_principal(ev.username()) && is_system_namespace(ev.namespace()) {
            return None;
        }
        // The exec has a command.
        let command = exec_command(ev)?;
        if command.is_empty() {
            return None;
        }
        // The command writes a tar archive to stdout.
        let lowered: Vec<String> = command.iter().map(|a| a.to_lowercase()).collect();
        if !is_copy_out(&lowered) {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let name = name_or(ev, "<UNKNOWN_POD>");
        // The argument after the first `-`, when there are four or more.
        let path = if command.len() >= 4 {
            command
                .iter()
                .zip(command.iter().skip(1))
                .find(|(arg, _)| *arg == "-")
                .map(|(_, next)| next.as_ref())
        } else {
            None
        };
        let path = path.unwrap_or("<UNKNOWN_PATH>");
        let title = format!(
            "[{username}] copied data from pod [{namespace}/{name}] path [{path}] via kubectl cp"
        );
        let dedup = format!("k8s_kubectl_cp_{username}_{namespace}_{name}");
        let shown: Vec<&str> = command.iter().take(MAX_JOINED).map(AsRef::as_ref).collect();
        let container = ev
            .request_object()
            .and_then(|r| r.get("container"))
            .and_then(Value::as_str);
        let hit = Hit::new(title, dedup)
            .severity(severity(&lowered))
            .with("command", &shown.join(" "));
        let hit = with_some(hit, "pod_name", ev.name());
        Some(with_some(hit, "container", container))
    }
}
