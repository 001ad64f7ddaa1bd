//! The pod-spec rules on workload templates: positive and negative cases
//! for each, what they leave to others (controllers, status, JSON patches),
//! and hostile bodies.

use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::net::CidrList;
use eks_audit_detector::prefilter::Prefilter;
use eks_audit_detector::rules::{registry, Detector};
use eks_audit_detector::vocab::{EventContext, Match, Severity, Verdict};
use serde_json::{json, Value};

const PRIVILEGED: &str = "EksAuditDetector.Workload.Privileged";
const HOST_NS: &str = "EksAuditDetector.Workload.HostNamespaces";
const HOST_PATH: &str = "EksAuditDetector.Workload.HostPath";
const CAPS: &str = "EksAuditDetector.Workload.DangerousCapabilities";

fn pod_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "nginx:1.27"}]})
}

/// A Deployment `verb` by `user`, whose template's pod spec is `spec`.
fn deployment(verb: &str, user: &str, spec: Value) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete",
        "verb": verb, "user": {"username": user},
        "sourceIPs": ["198.51.100.7"], "userAgent": "kubectl/v1.30.2",
        "objectRef": {"resource": "deployments", "namespace": "web", "name": "api", "apiGroup": "apps"},
        "responseStatus": {"code": 200},
        "requestObject": {"kind": "Deployment", "metadata": {"name": "api"},
            "spec": {"template": {"spec": spec}}}
    })
}

fn run(id: &str, event: &Value) -> Vec<Match> {
    let rules = registry(&DetectorConfig::default());
    let rule = rules
        .iter()
        .find(|r| r.meta().id.as_str() == id)
        .expect("registered");
    let text = event.to_string();
    let ev = AuditEvent::parse(&text).expect("parses");
    let mut out = Vec::new();
    let v = rule.evaluate(
        &ev,
        EventContext {
            cluster: "prod",
            at_ms: 0,
        },
        &CidrList::default(),
        &mut out,
    );
    assert_eq!(matches!(v, Verdict::Matched { .. }), !out.is_empty());
    out
}

fn privileged_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "x", "securityContext": {"privileged": true}}]})
}

#[test]
fn a_privileged_template_is_high_and_names_the_workload_and_user() {
    let m = run(
        PRIVILEGED,
        &deployment("create", "alice", privileged_spec()),
    );
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].severity, Severity::High);
    assert_eq!(
        m[0].event.title,
        "[alice] created Deployment [web/api] whose pod template runs privileged or root containers"
    );
    assert_eq!(m[0].dedup, "workload_privileged_prod_web_Deployment_api");
    // Running as root counts as in Panther's pod rule.
    let root = json!({"containers": [{"name": "a", "securityContext": {"runAsUser": 0}}]});
    assert_eq!(
        run(PRIVILEGED, &deployment("update", "alice", root)).len(),
        1
    );
    // An ordinary template does not.
    assert!(run(PRIVILEGED, &deployment("create", "alice", pod_spec())).is_empty());
}

#[test]
fn every_workload_kind_is_read_at_its_template_path() {
    for (resource, path) in [
        (
            "daemonsets",
            json!({"spec": {"template": {"spec": privileged_spec()}}}),
        ),
        (
            "statefulsets",
            json!({"spec": {"template": {"spec": privileged_spec()}}}),
        ),
        (
            "replicasets",
            json!({"spec": {"template": {"spec": privileged_spec()}}}),
        ),
        (
            "jobs",
            json!({"spec": {"template": {"spec": privileged_spec()}}}),
        ),
        (
            "replicationcontrollers",
            json!({"spec": {"template": {"spec": privileged_spec()}}}),
        ),
        (
            "cronjobs",
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": privileged_spec()}}}}}),
        ),
    ] {
        let mut ev = deployment("create", "alice", pod_spec());
        ev["objectRef"]["resource"] = json!(resource);
        ev["requestObject"] = path;
        assert_eq!(run(PRIVILEGED, &ev).len(), 1, "{resource}");
    }
    // Pods themselves are Panther's rule's.
    let mut pod = deployment("create", "alice", pod_spec());
    pod["objectRef"]["resource"] = json!("pods");
    pod["requestObject"] = json!({"spec": privileged_spec()});
    assert!(run(PRIVILEGED, &pod).is_empty());
}

#[test]
fn controllers_status_refusals_and_reads_are_left_out() {
    let ev = deployment(
        "create",
        "system:serviceaccount:kube-system:replicaset-controller",
        privileged_spec(),
    );
    assert!(run(PRIVILEGED, &ev).is_empty(), "a controller");
    assert!(run(
        PRIVILEGED,
        &deployment("create", "eks:addon-manager", privileged_spec())
    )
    .is_empty());
    // A GitOps controller outside kube-system is a person's proxy: reported.
    let argo = deployment(
        "patch",
        "system:serviceaccount:argocd:argocd-application-controller",
        privileged_spec(),
    );
    assert_eq!(run(PRIVILEGED, &argo).len(), 1);
    let mut status = deployment("update", "alice", privileged_spec());
    status["objectRef"]["subresource"] = json!("status");
    assert!(run(PRIVILEGED, &status).is_empty(), "status");
    let mut refused = deployment("create", "alice", privileged_spec());
    refused["responseStatus"] = json!({"code": 403});
    assert!(run(PRIVILEGED, &refused).is_empty(), "refused");
    assert!(run(PRIVILEGED, &deployment("get", "alice", privileged_spec())).is_empty());
    assert!(run(
        PRIVILEGED,
        &deployment("delete", "alice", privileged_spec())
    )
    .is_empty());
}

#[test]
fn a_merge_patch_is_read_for_what_it_sets_and_a_json_patch_is_not() {
    let ev = deployment("patch", "alice", privileged_spec());
    assert_eq!(run(PRIVILEGED, &ev).len(), 1);
    let mut json_patch = deployment("patch", "alice", pod_spec());
    json_patch["requestObject"] = json!([{"op": "add",
        "path": "/spec/template/spec/containers/0/securityContext", "value": {"privileged": true}}]);
    assert!(run(PRIVILEGED, &json_patch).is_empty());
}

#[test]
fn host_namespaces_are_listed() {
    let spec = json!({"hostPID": true, "hostNetwork": true, "containers": []});
    let m = run(HOST_NS, &deployment("create", "alice", spec));
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].severity, Severity::Medium);
    assert!(m[0]
        .event
        .title
        .ends_with("shares the node's namespaces [hostPID, hostNetwork]"));
    let off = json!({"hostPID": false, "hostIPC": "true", "containers": []});
    assert!(run(HOST_NS, &deployment("create", "alice", off)).is_empty());
}

#[test]
fn host_paths_are_high_when_sensitive() {
    let sensitive = json!({"containers": [], "volumes": [{"name": "s", "hostPath": {"path": "/var/run/docker.sock"}}]});
    let m = run(HOST_PATH, &deployment("create", "alice", sensitive));
    assert_eq!(m[0].severity, Severity::High);
    let plain =
        json!({"containers": [], "volumes": [{"name": "d", "hostPath": {"path": "/data/cache"}}]});
    let m = run(HOST_PATH, &deployment("create", "alice", plain));
    assert_eq!(m[0].severity, Severity::Medium);
    let none = json!({"containers": [], "volumes": [{"name": "e", "emptyDir": {}}]});
    assert!(run(HOST_PATH, &deployment("create", "alice", none)).is_empty());
}

#[test]
fn dangerous_capabilities_are_named_and_harmless_ones_are_not() {
    let spec = json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}}]});
    let m = run(CAPS, &deployment("create", "alice", spec));
    assert!(m[0]
        .event
        .title
        .ends_with("adds dangerous capabilities [SYS_ADMIN]"));
    let harmless = json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}]});
    assert!(run(CAPS, &deployment("create", "alice", harmless)).is_empty());
}

#[test]
fn hostile_bodies_cost_nothing_and_long_names_are_capped() {
    for body in [
        json!("x"),
        json!([1, 2]),
        Value::Null,
        json!({"spec": {"template": "s"}}),
    ] {
        let mut ev = deployment("create", "alice", pod_spec());
        ev["requestObject"] = body;
        for id in [PRIVILEGED, HOST_NS, HOST_PATH, CAPS] {
            assert!(run(id, &ev).is_empty(), "{id}");
        }
    }
    // 200 levels deep: beyond the parser's limit, read as absent.
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!({"a": deep});
    }
    let mut ev = deployment("create", "alice", pod_spec());
    ev["requestObject"] = deep;
    assert!(run(PRIVILEGED, &ev).is_empty());
    let long = "u".repeat(200_000);
    let mut ev = deployment("create", &long, privileged_spec());
    ev["objectRef"]["name"] = json!(long);
    let m = run(PRIVILEGED, &ev);
    assert!(
        m[0].event.title.len() <= 1_100,
        "{}",
        m[0].event.title.len()
    );
    assert!(m[0].dedup.len() <= 1_100, "{}", m[0].dedup.len());
}

#[test]
fn the_prefilter_keeps_every_match() {
    let detector = Detector::new(DetectorConfig::default());
    let prefilter = Prefilter::new(&detector);
    for kind in [
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "replicationcontrollers",
        "jobs",
        "cronjobs",
    ] {
        let mut ev = deployment("create", "alice", privileged_spec());
        ev["objectRef"]["resource"] = json!(kind);
        let text = ev.to_string();
        assert!(prefilter.may_match(text.as_bytes()), "{kind}");
        // And inside the envelope, escaped once more.
        let escaped = serde_json::to_string(&text).expect("string");
        assert!(prefilter.may_match(escaped.as_bytes()), "{kind} escaped");
    }
}
