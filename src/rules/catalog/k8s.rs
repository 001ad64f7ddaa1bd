//! What Panther's Kubernetes rules share (its
//! `panther_kubernetes_helpers`), for the EKS audit event: system
//! namespaces and principals, failed requests, and the pod spec of a
//! request.

use serde_json::Value;

use crate::audit::{at, str_at, AuditEvent};

/// Namespaces where privileged workloads are expected.
pub const SYSTEM_NAMESPACES: [&str; 4] = [
    "kube-system",
    "gke-system",
    "kube-node-lease",
    "kube-public",
];

/// Host paths whose mounting gives a pod the node.
pub const SENSITIVE_HOSTPATHS: [&str; 12] = [
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/etc/kubernetes",
    "/etc/",
    "/",
    "/proc",
    "/sys",
    "/root",
    "/home/admin",
    "/var/run/docker.sock",
    "/var/run/crio/crio.sock",
    "/run/containerd/containerd.sock",
];

/// Username prefixes of cloud providers' and Kubernetes' own identities
/// (Panther matches them with `startswith`, the first included).
pub const SYSTEM_IDENTITY_PREFIXES: [&str; 6] = [
    ".iam.gserviceaccount.com",
    "system:serviceaccount:kube-system:",
    "eks:",
    "masterclient",
    "gke-",
    "azure-",
];

/// Panther's `is_system_namespace`.
pub fn is_system_namespace(namespace: Option<&str>) -> bool {
    namespace.is_some_and(|n| SYSTEM_NAMESPACES.contains(&n))
}

/// Panther's `is_system_principal`: a provider's or Kubernetes' own
/// identity, not a service account outside `kube-system`.
pub fn is_system_principal(username: Option<&str>) -> bool {
    let Some(u) = username.filter(|u| !u.is_empty()) else {
        return false;
    };
    SYSTEM_IDENTITY_PREFIXES.iter().any(|p| u.starts_with(p))
        || u == "masterclient"
        || u == "aksService"
        || (u.starts_with("system:") && !u.contains("serviceaccount"))
}

/// Panther's `is_failed_request`: an HTTP code of 400 or more, or a gRPC
/// error code (1 to 16); no code is not a failure.
pub fn is_failed_request(code: Option<i64>) -> bool {
    code.is_some_and(|c| c >= 400 || (1..=16).contains(&c))
}

/// `requestObject.spec`, the pod spec of a pod request.
pub fn pod_spec<'v>(ev: &'v AuditEvent<'_>) -> Option<&'v Value> {
    at(ev.request_object(), &["spec"])
}

/// The list at `key` of a spec (`containers`, `volumes`), empty when
/// missing or not a list.
pub fn list_in<'v>(spec: Option<&'v Value>, key: &str) -> &'v [Value] {
    at(spec, &[key])
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `requestObject.spec.containers`.
pub fn containers<'v>(ev: &'v AuditEvent<'_>) -> &'v [Value] {
    list_in(pod_spec(ev), "containers")
}

/// `requestObject.spec.volumes`.
pub fn volumes<'v>(ev: &'v AuditEvent<'_>) -> &'v [Value] {
    list_in(pod_spec(ev), "volumes")
}

/// Panther's `get_pod_name`: `objectRef.name`, else the name the API
/// server gave (`responseObject.metadata.name`), else the requested one.
pub fn pod_name<'e>(ev: &'e AuditEvent<'_>) -> &'e str {
    ev.name()
        .filter(|n| !n.is_empty())
        .or_else(|| str_at(ev.response_object(), &["metadata", "name"]).filter(|n| !n.is_empty()))
        .or_else(|| str_at(ev.request_object(), &["metadata", "name"]).filter(|n| !n.is_empty()))
        .unwrap_or("<UNKNOWN_POD>")
}

/// Panther's `is_privileged_container`: privileged, or allowed to run as
/// root, in any container's security context.
pub fn is_privileged_container(containers: &[Value]) -> bool {
    containers.iter().any(|c| {
        let sc = at(Some(c), &["securityContext"]);
        at(sc, &["privileged"]) == Some(&Value::Bool(true))
            || at(sc, &["runAsNonRoot"]) == Some(&Value::Bool(false))
            || at(sc, &["runAsUser"]).and_then(Value::as_i64) == Some(0)
    })
}

/// Panther's `has_hostpath_volume`.
pub fn has_hostpath_volume(volumes: &[Value]) -> bool {
    volumes.iter().any(|v| v.get("hostPath").is_some())
}

/// Panther's `get_hostpath_paths`: the non-empty `hostPath.path` values.
pub fn hostpath_paths(volumes: &[Value]) -> Vec<&str> {
    volumes
        .iter()
        .filter_map(|v| str_at(Some(v), &["hostPath", "path"]))
        .filter(|p| !p.is_empty())
        .collect()
}

/// Panther's `is_sensitive_hostpath`: one of [`SENSITIVE_HOSTPATHS`] or
/// below it.
pub fn is_sensitive_hostpath(path: &str) -> bool {
    !path.is_empty()
        && SENSITIVE_HOSTPATHS.iter().any(|s| {
            path == *s || (path.starts_with(s) && path.as_bytes().get(s.len()) == Some(&b'/'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_principals_follow_panthers_list() {
        for u in [
            "system:kube-controller-manager",
            "system:node:ip-10-0-0-1.ec2.internal",
            "system:serviceaccount:kube-system:coredns",
            "eks:addon-manager",
            "aksService",
        ] {
            assert!(is_system_principal(Some(u)), "{u}");
        }
        for u in [
            "system:serviceaccount:default:app",
            "alice@example.com",
            "kubernetes-admin",
            "",
        ] {
            assert!(!is_system_principal(Some(u)), "{u}");
        }
        assert!(!is_system_principal(None));
    }

    #[test]
    fn sensitive_paths_include_their_subdirectories_only() {
        assert!(is_sensitive_hostpath("/"));
        assert!(is_sensitive_hostpath("/etc/kubernetes/pki"));
        assert!(is_sensitive_hostpath("/proc"));
        assert!(!is_sensitive_hostpath("/procfs"));
        assert!(!is_sensitive_hostpath(""));
        // As in Panther, a listed path matches itself and `<path>/...`:
        // "/" and "/etc/" only themselves (and "//...", "/etc//...").
        assert!(!is_sensitive_hostpath("/data/app"));
        assert!(!is_sensitive_hostpath("/etc/passwd"));
        assert!(is_sensitive_hostpath("/etc/"));
    }

    #[test]
    fn failed_requests_are_http_errors_or_grpc_codes() {
        assert!(is_failed_request(Some(403)));
        assert!(is_failed_request(Some(7)));
        assert!(!is_failed_request(Some(201)));
        assert!(!is_failed_request(Some(0)));
        assert!(!is_failed_request(None));
    }
}
