//! `Kubernetes.ClientCertificate.Created`: a CertificateSigningRequest for a
//! client-authentication certificate created (MITRE TA0003:T1098,
//! TA0006:T1552).

use serde_json::{Map, Value};

use super::common::{contains, join_few, or_default, request_dict, Py, Raised};
use crate::audit::AuditEvent;
use crate::rules::catalog::k8s::{is_failed_request, is_system_principal};
use crate::rules::catalog::{EventRule, Hit, Spec};
use crate::rules::filter::{terms, Filter};
use crate::rules::Anchor;
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// What the rule declares.
pub static SPEC: Spec = Spec {
    meta: RuleMeta {
        id: RuleId::new("Kubernetes.ClientCertificate.Created"),
        source: Source::Panther,
        name: "Kubernetes Client Certificate Credential Created",
        mitre: "TA0003:T1098, TA0006:T1552",
        reference: "https://stratus-red-team.cloud/attack-techniques/kubernetes/k8s.persistence.create-client-certificate/",
        runbook: "Someone asked the cluster to sign a client certificate, a credential that \
                  outlives tokens and cannot be revoked short of rotating the CA. Read the \
                  request (kubectl get csr <name> -o yaml): its subject and groups are the \
                  identity it would carry. Check whether it was approved and by whom; deny or \
                  delete an unexpected one, and review what its requester did.",
    },
    severity: Severity::Info,
    max_severity: Severity::Info,
    threshold: 1,
    dedup_minutes: 60,
    enabled: true,
    // `objectRef.resource` is `certificatesigningrequests` and `verb` is
    // `create`.
    // System principals are ignored: their requests are not parsed.
    anchor: Anchor::AnyOfByPerson(&[&["certificatesigningrequests", "create"]]),
    filter: Filter::Terms(&[terms::CREATE]),
};

/// The node bootstrap identity, which requests certificates routinely.
const NODE_BOOTSTRAP_USER: &str = "kubelet-nodepool-bootstrap";

/// The rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCertificateCreated;

/// `requestObject.spec` (`{}` when missing); anything but a dict raises.
fn spec(request: Option<&Map<String, Value>>) -> Py<Option<&Map<String, Value>>> {
    match request.and_then(|r| r.get("spec")) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(Raised),
    }
}

/// The usages asked for, or the signer that issues client certificates
/// (its name contained in `signerName`).
fn asks_client_auth(spec: Option<&Map<String, Value>>) -> Py<bool> {
    let usages = spec.and_then(|s| s.get("usages"));
    let signer = spec.and_then(|s| s.get("signerName"));
    Ok(
        contains(usages, "client auth")?
            || contains(signer, "kubernetes.io/kube-apiserver-client")?,
    )
}

impl EventRule for ClientCertificateCreated {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn check(&self, ev: &AuditEvent<'_>, _cluster: &str) -> Option<Hit> {
        let username = ev.username();
        // Only CertificateSigningRequest creation.
        if ev.verb.as_ref().map(|v| v.as_str()) != Some("create")
            || ev.resource() != Some("certificatesigningrequests")
        {
            return None;
        }
        // Refused requests created nothing.
        if is_failed_request(ev.status_code()) {
            return None;
        }
        // Nodes and controllers request certificates routinely.
        if is_system_principal(username) {
            return None;
        }
        // Node bootstrap requests certificates routinely.
        if username == Some(NODE_BOOTSTRAP_USER) {
            return None;
        }
        // A certificate for client authentication.
        let spec = spec(request_dict(ev).ok()?).ok()?;
        if asks_client_auth(spec) != Ok(true) {
            return None;
        }
        let username = or_default(username, "<UNKNOWN_USER>");
        let name = or_default(ev.name(), "<UNKNOWN_CSR>");
        let title = format!("[{username}] created client certificate signing request [{name}]");
        let dedup = format!("k8s_client_cert_{username}_{name}");
        let mut hit = Hit::new(title, dedup).with("csr_name", name);
        if let Some(signer) = spec
            .and_then(|s| s.get("signerName"))
            .and_then(Value::as_str)
        {
            hit = hit.with("signer_name", signer);
        }
        if let Some(usages) = spec.and_then(|s| s.get("usages")).and_then(Value::as_array) {
            hit = hit.with("usages", &join_few(usages.iter().filter_map(Value::as_str)));
        }
        Some(hit)
    }
}
