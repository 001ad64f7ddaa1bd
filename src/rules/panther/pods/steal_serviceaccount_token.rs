//! `Kubernetes.Pod.StealServiceAccountToken`: an exec into a pod whose
//! command or URL names a service-account token path (MITRE
//! TA0006:T1552.007, TA0004:T1078.004, TA0008:T1550.001).

use serde_json::Value;

use crate::audit::{opt, AuditEvent};
use crate::rules::catalog::k8s::{is_failed_request, is_system_namespace, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

use super::common::{
    name_or, namespace_or_unknown, truthy, unquote, username_or_unknown, verb_in, with_some,
};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.Pod.StealServiceAccountToken"),
        source: Source::Panther,
        name: "Kubernetes Service Account Token Theft from Pod",
        mitre: "TA0006:T1552.007, TA0004:T1078.004, TA0008:T1550.001",
        reference: "https://stratus-red-team.cloud/attack-techniques/kubernetes/k8s.credential-access.steal-serviceaccount-token/",
        runbook: "Someone ran a command in a pod that reads its service-account token (or the \
                  cloud identity token beside it), which lets them call the API, or the cloud, \
                  as that workload. Confirm with the person; if it was not a sanctioned test, \
                  delete the pod so its token is invalidated, and search the audit log for the \
                  service account's requests from new addresses since the exec.",
    },
    severity: Severity::High,
    max_severity: Severity::High,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `pods` and `objectRef.subresource` is `exec`.
    anchor: Anchor::AnyOf(&[&["pods", "exec"]]),
    filter: Filter::Terms(&[terms::EXEC]),
};

/// Where Kubernetes and the clouds mount workload tokens (lower case).
const TOKEN_PATHS: [&str; 9] = [
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/var/run/secrets/kubernetes.io/serviceaccount",
    "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    "/var/run/secrets/eks.amazonaws.com/serviceaccount",
    "/var/run/secrets/azure/tokens/azure-identity-token",
    "/var/run/secrets/azure/tokens",
    "/var/run/secrets/tokens/gcp-ksa/token",
    "/var/run/secrets/tokens/gcp-ksa",
    "serviceaccount/token",
];

/// The text, lower-cased as Python's `str.lower` does, names a token path.
fn names_token_path(text: &str) -> bool {
    let lower = text.to_lowercase();
    TOKEN_PATHS.iter().any(|p| lower.contains(p))
}

/// A command argument names a token path once Python has made it a
/// string: a nested list or mapping is printed with its strings inside.
/// The paths hold no space, so no match spans two arguments.
fn argument_names_token_path(arg: &Value) -> bool {
    match arg {
        Value::String(s) => names_token_path(s),
        Value::Array(items) => items.iter().any(argument_names_token_path),
        Value::Object(members) => members
            .iter()
            .any(|(k, v)| names_token_path(k) || argument_names_token_path(v)),
        _ => false,
    }
}

/// Whether `requestObject.command` names a token path; `None` where
/// Python raises (a `requestObject` that is not a mapping, a command that
/// is `null`, a number or a boolean).
fn command_names_token_path(ev: &AuditEvent<'_>) -> Option<bool> {
    let Some(request) = ev.request_object().filter(|r| truthy(r)) else {
        return Some(false);
    };
    Some(match request.as_object()?.get("command") {
        None => false,
        Some(Value::Array(args)) => args.iter().any(argument_names_token_path),
        // Iterating a mapping gives its keys.
        Some(Value::Object(args)) => args.keys().any(|k| names_token_path(k)),
        // A string's characters, joined with spaces, spell no path.
        Some(Value::String(_)) => false,
        Some(_) => return None,
    })
}

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct StealServiceAccountToken;

impl EventRule for StealServiceAccountToken {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        // Only exec into a pod: `create` over SPDY, and `get` over
        // WebSocket (kubectl's default from 1.30), which Panther leaves out.
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
        // The command, or the decoded request URL, names a token path.
        if !command_names_token_path(ev)?
            && !names_token_path(&unquote(opt(&ev.request_uri).unwrap_or("")))
        {
            return None;
        }
        let username = username_or_unknown(ev);
        let namespace = namespace_or_unknown(ev);
        let name = name_or(ev, "<UNKNOWN_POD>");
        let title = format!(
            "[{username}] attempted to steal service account token from pod [{namespace}/{name}]"
        );
        let dedup = format!("k8s_steal_token_{username}_{namespace}_{name}");
        let container = ev
            .request_object()
            .and_then(|r| r.get("container"))
            .and_then(Value::as_str);
        let hit = with_some(Hit::new(title, dedup), "pod_name", ev.name());
        Some(with_some(hit, "container", container))
    }
}
