//! The workload rules ported from Panther (pods with privileges, host
//! namespaces, capabilities or host paths, pods in system namespaces, exec
//! and copy into pods, DaemonSets, CronJobs), beyond Panther's own tests
//! (`tests/panther_catalog.rs`): for each rule a match and near misses that
//! differ from it in one field, the prefilter anchors on every match, and
//! hostile input (huge strings, odd or deep `requestObject`s).

use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::net::CidrList;
use eks_audit_detector::prefilter::Prefilter;
use eks_audit_detector::rules::{registry, Anchor, Detector, Rule};
use eks_audit_detector::vocab::{EventContext, Match, Severity, Verdict};
use serde_json::{json, Value};

const PRIVILEGED: &str = "Kubernetes.Pod.Privileged.Created";
const CAPS: &str = "Kubernetes.Pod.Dangerous.Capabilities";
const IPC: &str = "Kubernetes.Pod.Host.IPC";
const NETWORK: &str = "Kubernetes.Pod.Host.Network";
const PID: &str = "Kubernetes.Pod.Host.PID";
const HOSTPATH: &str = "Kubernetes.Pod.HostPath.Volume";
const SYSTEM_NS: &str = "Kubernetes.Pod.SystemNamespace";
const TOKEN: &str = "Kubernetes.Pod.StealServiceAccountToken";
const EXEC: &str = "Kubernetes.Pod.Exec";
const CP: &str = "Kubernetes.Kubectl.CP.Operation";
const DAEMONSET: &str = "Kubernetes.DaemonSet.Created";
const CRONJOB: &str = "Kubernetes.CronJob.CreatedOrModified";

const ALL: [&str; 12] = [
    PRIVILEGED, CAPS, IPC, NETWORK, PID, HOSTPATH, SYSTEM_NS, TOKEN, EXEC, CP, DAEMONSET, CRONJOB,
];

fn rule(id: &str) -> Box<dyn Rule> {
    registry(&DetectorConfig::default())
        .into_iter()
        .find(|r| r.meta().id.as_str() == id)
        .unwrap_or_else(|| panic!("{id} registered"))
}

/// The rule's verdict on the event, `None` when the event does not parse.
fn try_eval(id: &str, ev: &Value) -> Option<Verdict> {
    let text = ev.to_string();
    let parsed = AuditEvent::parse(&text).ok()?;
    let ctx = EventContext {
        cluster: "prod",
        at_ms: 0,
    };
    Some(rule(id).evaluate(&parsed, ctx, &CidrList::default(), &mut Vec::new()))
}

/// The rule's match on the event, if any.
fn eval(id: &str, ev: &Value) -> Option<Match> {
    let text = ev.to_string();
    let parsed = AuditEvent::parse(&text).expect("event parses");
    let ctx = EventContext {
        cluster: "prod",
        at_ms: 0,
    };
    let mut out = Vec::new();
    let verdict = rule(id).evaluate(&parsed, ctx, &CidrList::default(), &mut out);
    match verdict {
        Verdict::NoMatch => {
            assert!(out.is_empty());
            None
        }
        Verdict::Matched { .. } => Some(out.remove(0)),
        Verdict::RuleError => panic!("{id}: rule error"),
    }
}

fn title(id: &str, ev: &Value) -> String {
    eval(id, ev)
        .unwrap_or_else(|| panic!("{id} matches {ev}"))
        .event
        .title
        .clone()
}

fn fact<'m>(m: &'m Match, field: &str) -> Option<&'m str> {
    m.event
        .facts
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, v)| v.as_str())
}

/// An audit event with these members over a plain accepted request.
fn event(verb: &str, object_ref: Value, extra: Value) -> Value {
    let mut ev = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "5d5b7a7e-2f4c-4a57-9a8e-1c1f0e6f9b10",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods",
        "verb": verb,
        "user": {"username": "alice@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.8"],
        "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": 201},
        "requestReceivedTimestamp": "2024-05-14T00:00:00.000000Z",
        "stageTimestamp": "2024-05-14T00:00:00.050000Z"
    });
    if let (Some(ev), Some(extra)) = (ev.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            ev.insert(k.clone(), v.clone());
        }
    }
    ev
}

/// A pod `web` created in `default` with this spec.
fn pod(spec: Value) -> Value {
    event(
        "create",
        json!({"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"}),
        json!({"requestObject": {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": spec
        }}),
    )
}

fn container(security_context: Value) -> Value {
    json!({"name": "app", "image": "nginx:1.27", "securityContext": security_context})
}

/// An exec into pod `web` of `default`.
fn exec(verb: &str, uri: &str, request_object: Value) -> Value {
    event(
        verb,
        json!({"resource": "pods", "namespace": "default", "name": "web",
               "subresource": "exec", "apiVersion": "v1"}),
        json!({"requestURI": uri, "requestObject": request_object,
               "responseStatus": {"metadata": {}, "code": 101}}),
    )
}

fn workload(resource: &str, verb: &str, name: &str) -> Value {
    event(
        verb,
        json!({"resource": resource, "namespace": "default", "name": name,
               "apiGroup": "apps", "apiVersion": "v1"}),
        json!({"requestObject": {"metadata": {"name": name}, "spec": {}}}),
    )
}

/// `ev` with the value at `path` replaced.
fn with(mut ev: Value, path: &[&str], value: Value) -> Value {
    let (last, parents) = path.split_last().expect("a path");
    let mut at = &mut ev;
    for key in parents {
        at = at
            .as_object_mut()
            .expect("object")
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
    }
    at.as_object_mut()
        .expect("object")
        .insert(last.to_string(), value);
    ev
}

const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const CP_URI: &str = "/api/v1/namespaces/default/pods/web/exec?command=tar&command=cf\
                      &command=-&command=/etc/nginx&container=app&stdout=true";

/// One matching event per rule.
fn positive(id: &str) -> Value {
    match id {
        PRIVILEGED => pod(json!({"containers": [container(json!({"privileged": true}))]})),
        CAPS => pod(json!({"containers": [container(
            json!({"capabilities": {"add": ["SYS_ADMIN", "NET_RAW", "BPF"]}})
        )]})),
        IPC => pod(json!({"hostIPC": true, "containers": [container(json!({}))]})),
        NETWORK => pod(json!({"hostNetwork": true, "containers": [container(json!({}))]})),
        PID => pod(json!({"hostPID": true, "containers": [container(json!({}))]})),
        HOSTPATH => pod(json!({
            "containers": [container(json!({}))],
            "volumes": [{"name": "data", "hostPath": {"path": "/data/app"}}]
        })),
        SYSTEM_NS => with(
            pod(json!({"containers": [container(json!({}))]})),
            &["objectRef", "namespace"],
            json!("kube-system"),
        ),
        TOKEN => exec(
            "create",
            "/api/v1/namespaces/default/pods/web/exec?command=sh&container=app",
            json!({"command": ["cat", TOKEN_PATH], "container": "app"}),
        ),
        EXEC => exec(
            "create",
            "/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true",
            Value::Null,
        ),
        CP => exec("create", CP_URI, Value::Null),
        DAEMONSET => workload("daemonsets", "create", "node-agent"),
        CRONJOB => workload("cronjobs", "create", "backup"),
        _ => unreachable!("{id}"),
    }
}

// ------------------------------------------------------------- every rule

#[test]
fn each_rule_matches_its_example_and_its_anchor_is_in_the_message() {
    for id in ALL {
        let ev = positive(id);
        assert!(eval(id, &ev).is_some(), "{id} matches");
        let text = ev.to_string();
        let groups = match rule(id).anchor() {
            Anchor::AnyOf(groups) => groups,
            Anchor::AnyOfByPerson(groups) => {
                // the prefilter reads the user as one who may be a person
                let detector = Detector::new(DetectorConfig {
                    enabled_rules: vec![id.to_owned()],
                    ..DetectorConfig::default()
                });
                assert!(
                    Prefilter::new(&detector).may_match(text.as_bytes()),
                    "{id}: prefilter"
                );
                groups
            }
            other => panic!("{id}: anchor groups, not {other:?}"),
        };
        assert!(
            groups.iter().any(|g| g.iter().all(|s| text.contains(s))),
            "{id}: anchor not in its match"
        );
    }
}

#[test]
fn refused_requests_match_nothing_but_the_exec_rule() {
    for id in ALL {
        let ev = with(positive(id), &["responseStatus", "code"], json!(403));
        assert_eq!(eval(id, &ev).is_some(), id == EXEC, "{id}");
    }
}

#[test]
fn only_the_exec_rule_is_off_by_default() {
    for id in ALL {
        assert_eq!(rule(id).enabled_by_default(), id != EXEC, "{id}");
    }
}

// ------------------------------------------------------- pod specifications

#[test]
fn privileged_pod_title_dedup_and_near_misses() {
    let m = eval(PRIVILEGED, &positive(PRIVILEGED)).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] created a privileged pod [default/web]"
    );
    assert_eq!(m.dedup, "privileged_pod_alice@example.com");
    assert_eq!(m.severity, Severity::High);
    assert_eq!(fact(&m, "images"), Some("nginx:1.27"));
    for sc in [
        json!({"privileged": false}),
        json!({"privileged": "true"}),
        json!({"runAsUser": 1000}),
        json!({"runAsNonRoot": true}),
    ] {
        let ev = pod(json!({"containers": [container(sc.clone())]}));
        assert!(eval(PRIVILEGED, &ev).is_none(), "{sc}");
    }
    // Python's `runAsUser == 0` holds for 0.0 and False too.
    for sc in [
        json!({"runAsUser": 0}),
        json!({"runAsUser": 0.0}),
        json!({"runAsNonRoot": false}),
    ] {
        let ev = pod(json!({"containers": [container(sc.clone())]}));
        assert!(eval(PRIVILEGED, &ev).is_some(), "{sc}");
    }
    // A platform identity in a user namespace still alerts; in kube-system
    // it does not.
    let system = with(
        positive(PRIVILEGED),
        &["user", "username"],
        json!("system:serviceaccount:kube-system:replicaset-controller"),
    );
    assert!(eval(PRIVILEGED, &system).is_some());
    let system = with(system, &["objectRef", "namespace"], json!("kube-system"));
    assert!(eval(PRIVILEGED, &system).is_none());
}

#[test]
fn a_generated_pod_name_comes_from_the_response() {
    let ev = with(positive(PRIVILEGED), &["objectRef", "name"], json!(""));
    let ev = with(
        ev,
        &["requestObject", "metadata"],
        json!({"generateName": "web-"}),
    );
    let ev = with(
        ev,
        &["responseObject"],
        json!({"metadata": {"name": "web-7d4b9"}}),
    );
    assert_eq!(
        title(PRIVILEGED, &ev),
        "[alice@example.com] created a privileged pod [default/web-7d4b9]"
    );
    let ev = with(ev, &["responseObject"], Value::Null);
    assert_eq!(
        title(PRIVILEGED, &ev),
        "[alice@example.com] created a privileged pod [default/<UNKNOWN_POD>]"
    );
}

#[test]
fn dangerous_capabilities_sorted_and_near_misses() {
    let m = eval(CAPS, &positive(CAPS)).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] created pod [default/web] with dangerous capabilities [BPF, SYS_ADMIN]"
    );
    assert_eq!(m.dedup, "k8s_dangerous_caps_alice@example.com_default");
    assert_eq!(fact(&m, "dangerous_capabilities"), Some("BPF, SYS_ADMIN"));
    // Safe capabilities only.
    let safe = pod(json!({"containers": [container(
        json!({"capabilities": {"add": ["NET_RAW", "CHOWN"], "drop": ["SYS_ADMIN"]}})
    )]}));
    assert!(eval(CAPS, &safe).is_none());
    // Unlike the other pod rules, any creator in a system namespace is
    // left out.
    let system_ns = with(
        positive(CAPS),
        &["objectRef", "namespace"],
        json!("kube-system"),
    );
    assert!(eval(CAPS, &system_ns).is_none());
}

#[test]
fn host_namespaces_need_true_and_pod_creation() {
    assert_eq!(
        title(IPC, &positive(IPC)),
        "[alice@example.com] created pod [default/web] with host IPC enabled "
    );
    assert_eq!(
        title(NETWORK, &positive(NETWORK)),
        "[alice@example.com] created pod [default/web] with host network access "
    );
    let m = eval(PID, &positive(PID)).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] created pod [default/web] using host PID namespace"
    );
    // No dedup() in Panther: the title is the key.
    assert_eq!(m.dedup, m.event.title);
    assert_eq!(
        eval(IPC, &positive(IPC)).expect("match").dedup,
        "k8s_host_ipc_alice@example.com_default"
    );
    // A string, not a boolean.
    let ev = with(
        positive(IPC),
        &["requestObject", "spec", "hostIPC"],
        json!("true"),
    );
    assert!(eval(IPC, &ev).is_none());
    // An update, not a creation.
    let ev = with(positive(NETWORK), &["verb"], json!("update"));
    assert!(eval(NETWORK, &ev).is_none());
    // A Deployment, not a pod.
    let ev = with(
        positive(PID),
        &["objectRef", "resource"],
        json!("deployments"),
    );
    assert!(eval(PID, &ev).is_none());
    // Missing user and namespace fall back to Panther's placeholders.
    let ev = with(positive(NETWORK), &["user", "username"], json!(""));
    let ev = with(ev, &["objectRef", "namespace"], Value::Null);
    assert_eq!(
        title(NETWORK, &ev),
        "[<UNKNOWN_USER>] created pod [<UNKNOWN_NAMESPACE>/web] with host network access "
    );
}

#[test]
fn host_paths_severity_by_path() {
    let m = eval(HOSTPATH, &positive(HOSTPATH)).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] created pod [default/web] with hostPath volume mount [/data/app]"
    );
    assert_eq!(m.dedup, "hostpath_volume_alice@example.com_default");
    assert_eq!(m.severity, Severity::Medium);
    assert_eq!(fact(&m, "hostpath_paths"), Some("/data/app"));
    let volumes = json!([
        {"name": "a", "hostPath": {"path": "/etc/passwd"}},
        {"name": "b", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
    ]);
    let ev = with(
        positive(HOSTPATH),
        &["requestObject", "spec", "volumes"],
        volumes,
    );
    let m = eval(HOSTPATH, &ev).expect("match");
    assert_eq!(m.severity, Severity::High);
    assert!(m
        .event
        .title
        .ends_with("[/etc/passwd, /var/run/docker.sock]"));
    // No path at all: "unknown".
    let ev = with(
        positive(HOSTPATH),
        &["requestObject", "spec", "volumes"],
        json!([{"name": "a", "hostPath": {}}]),
    );
    assert!(title(HOSTPATH, &ev).ends_with("with hostPath volume mount [unknown]"));
    // An emptyDir is no host path.
    let ev = with(
        positive(HOSTPATH),
        &["requestObject", "spec", "volumes"],
        json!([{"name": "a", "emptyDir": {}}]),
    );
    assert!(eval(HOSTPATH, &ev).is_none());
}

#[test]
fn system_namespace_pods_by_people_only() {
    let m = eval(SYSTEM_NS, &positive(SYSTEM_NS)).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] created pod [kube-system/web] in system namespace"
    );
    assert_eq!(
        m.dedup,
        "k8s_pod_system_ns_alice@example.com_kube-system_web"
    );
    // A subresource (a binding by the scheduler, an eviction) is no new pod.
    let ev = with(
        positive(SYSTEM_NS),
        &["objectRef", "subresource"],
        json!("binding"),
    );
    assert!(eval(SYSTEM_NS, &ev).is_none());
    // A platform identity.
    let ev = with(
        positive(SYSTEM_NS),
        &["user", "username"],
        json!("eks:addon-manager"),
    );
    assert!(eval(SYSTEM_NS, &ev).is_none());
    // A user namespace.
    let ev = with(
        positive(SYSTEM_NS),
        &["objectRef", "namespace"],
        json!("kube-systems"),
    );
    assert!(eval(SYSTEM_NS, &ev).is_none());
}

// ------------------------------------------------------------------ exec

#[test]
fn token_theft_in_the_command_or_the_encoded_url() {
    let m = eval(TOKEN, &positive(TOKEN)).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] attempted to steal service account token from pod [default/web]"
    );
    assert_eq!(m.dedup, "k8s_steal_token_alice@example.com_default_web");
    assert_eq!(fact(&m, "container"), Some("app"));
    // A harmless command.
    let ev = with(
        positive(TOKEN),
        &["requestObject", "command"],
        json!(["cat", "/etc/hostname"]),
    );
    assert!(eval(TOKEN, &ev).is_none());
    // EKS: the command only in the URL, percent-encoded, in any case.
    let uri = "/api/v1/namespaces/default/pods/web/exec?command=cat\
               &command=%2FVAR%2Frun%2Fsecrets%2Feks.amazonaws.com%2Fserviceaccount%2Ftoken";
    let ev = exec("create", uri, Value::Null);
    assert!(eval(TOKEN, &ev).is_some());
    // The same exec over WebSocket (`get`): Panther does not look at it,
    // this rule does (see README, "fidelity and differences").
    let ev = with(ev, &["verb"], json!("get"));
    assert!(eval(TOKEN, &ev).is_some());
    // A token path nested in an argument still counts (Python prints it).
    let ev = with(
        positive(TOKEN),
        &["requestObject", "command"],
        json!(["sh", ["-c", "cat /var/run/secrets/tokens/gcp-ksa/token"]]),
    );
    assert!(eval(TOKEN, &ev).is_some());
    // A command Python cannot iterate: no match.
    let ev = with(positive(TOKEN), &["requestObject", "command"], Value::Null);
    assert!(eval(TOKEN, &ev).is_none());
}

#[test]
fn exec_counts_both_verbs_and_only_exec() {
    let m = eval(EXEC, &positive(EXEC)).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] executed into pod [default/web]"
    );
    assert_eq!(m.dedup, "k8s_exec_alice@example.com_default_web");
    assert!(eval(EXEC, &with(positive(EXEC), &["verb"], json!("get"))).is_some());
    let attach = with(
        positive(EXEC),
        &["objectRef", "subresource"],
        json!("attach"),
    );
    assert!(eval(EXEC, &attach).is_none());
    let unnamed = with(positive(EXEC), &["objectRef", "name"], Value::Null);
    let m = eval(EXEC, &unnamed).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] executed into pod [default/<UNKNOWN>]"
    );
    assert_eq!(m.dedup, "k8s_exec_alice@example.com_default_<UNKNOWN_POD>");
}

#[test]
fn kubectl_cp_out_of_a_pod() {
    let m = eval(CP, &positive(CP)).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] copied data from pod [default/web] path [/etc/nginx] via kubectl cp"
    );
    assert_eq!(m.dedup, "k8s_kubectl_cp_alice@example.com_default_web");
    assert_eq!(m.severity, Severity::High);
    assert_eq!(fact(&m, "command"), Some("tar cf - /etc/nginx"));
    // Plain data: MEDIUM; keys: CRITICAL.
    let ev = exec(
        "get",
        &CP_URI.replace("/etc/nginx", "/data/app"),
        Value::Null,
    );
    assert_eq!(eval(CP, &ev).expect("match").severity, Severity::Medium);
    let ev = exec(
        "create",
        &CP_URI.replace("/etc/nginx", "/Root/.SSH"),
        Value::Null,
    );
    assert_eq!(eval(CP, &ev).expect("match").severity, Severity::Critical);
    // Three arguments: Panther names no path.
    let ev = exec(
        "create",
        &CP_URI.replace("&command=/etc/nginx", ""),
        Value::Null,
    );
    assert!(title(CP, &ev).contains("path [<UNKNOWN_PATH>]"));
    // An archive written to a file, not to stdout.
    let ev = exec(
        "create",
        &CP_URI.replace("command=-&", "command=/tmp/x.tar&"),
        Value::Null,
    );
    assert!(eval(CP, &ev).is_none());
    // A copy into the pod.
    let ev = exec(
        "create",
        &CP_URI.replace("command=cf", "command=xf"),
        Value::Null,
    );
    assert!(eval(CP, &ev).is_none());
    // A platform identity in kube-system.
    let ev = with(
        positive(CP),
        &["user", "username"],
        json!("system:node:ip-10-0-0-1"),
    );
    let ev = with(ev, &["objectRef", "namespace"], json!("kube-system"));
    assert!(eval(CP, &ev).is_none());
    // The command in the request object wins over the URL.
    let ev = with(
        positive(CP),
        &["requestObject"],
        json!({"command": ["ls", "-la"]}),
    );
    assert!(eval(CP, &ev).is_none());
}

// ------------------------------------------------------------- workloads

#[test]
fn daemonset_creation_only() {
    let m = eval(DAEMONSET, &positive(DAEMONSET)).expect("match");
    assert_eq!(
        m.event.title,
        "[alice@example.com] created DaemonSet [default/node-agent]"
    );
    assert_eq!(m.dedup, "k8s_daemonset_alice@example.com_default");
    assert_eq!(m.severity, Severity::Info);
    assert_eq!(fact(&m, "daemonset_name"), Some("node-agent"));
    let patched = with(positive(DAEMONSET), &["verb"], json!("patch"));
    assert!(eval(DAEMONSET, &patched).is_none());
    let system = with(
        positive(DAEMONSET),
        &["objectRef", "namespace"],
        json!("kube-system"),
    );
    assert!(eval(DAEMONSET, &system).is_some());
    let system = with(system, &["user", "username"], json!("eks:addon-manager"));
    assert!(eval(DAEMONSET, &system).is_none());
}

#[test]
fn cronjob_created_or_modified_but_not_its_status() {
    assert_eq!(
        title(CRONJOB, &positive(CRONJOB)),
        "[alice@example.com] created CronJob [default/backup]"
    );
    for verb in ["update", "patch"] {
        let ev = with(positive(CRONJOB), &["verb"], json!(verb));
        let m = eval(CRONJOB, &ev).expect("match");
        assert_eq!(
            m.event.title,
            "[alice@example.com] modified CronJob [default/backup]"
        );
        assert_eq!(m.dedup, "k8s_cronjob_alice@example.com_default");
    }
    let status = with(positive(CRONJOB), &["verb"], json!("update"));
    let status = with(status, &["objectRef", "subresource"], json!("status"));
    assert!(eval(CRONJOB, &status).is_none());
    let deleted = with(positive(CRONJOB), &["verb"], json!("delete"));
    assert!(eval(CRONJOB, &deleted).is_none());
}

// ---------------------------------------------------------- hostile input

/// Rules whose decision reads the request object; the exec rules get one
/// with their command in it and a URL without.
fn reads_request_object(id: &str) -> Option<Value> {
    match id {
        SYSTEM_NS | EXEC | DAEMONSET | CRONJOB => None,
        TOKEN => Some(positive(TOKEN)),
        CP => Some(exec(
            "create",
            "/api/v1/namespaces/default/pods/web/exec?container=app",
            json!({"command": ["tar", "cf", "-", "/etc"]}),
        )),
        _ => Some(positive(id)),
    }
}

fn deep(levels: usize) -> Value {
    let mut v = json!({"containers": [{"securityContext": {"privileged": true}}]});
    for i in 0..levels {
        v = if i % 2 == 0 {
            json!([v])
        } else {
            json!({"spec": v})
        };
    }
    v
}

#[test]
fn huge_strings_give_bounded_titles() {
    let huge = "a".repeat(200 * 1024);
    for id in ALL {
        for path in [
            &["user", "username"][..],
            &["objectRef", "name"][..],
            &["userAgent"][..],
        ] {
            let ev = with(positive(id), path, json!(huge));
            let m = eval(id, &ev).unwrap_or_else(|| panic!("{id} with a huge {path:?}"));
            assert!(m.event.title.len() <= 1100, "{id}: {}", m.event.title.len());
            assert!(m.dedup.len() <= 1100, "{id}: {}", m.dedup.len());
        }
    }
    // Huge values inside the pod spec and the URL.
    let volumes: Vec<Value> = (0..2)
        .map(|i| json!({"name": "v", "hostPath": {"path": format!("/data/{i}/{huge}")}}))
        .chain((0..5000).map(|i| json!({"name": "v", "hostPath": {"path": format!("/d{i}")}})))
        .collect();
    let ev = with(
        positive(HOSTPATH),
        &["requestObject", "spec", "volumes"],
        json!(volumes),
    );
    let m = eval(HOSTPATH, &ev).expect("match");
    assert!(m.event.title.len() <= 1100);
    assert!(fact(&m, "hostpath_paths").is_some_and(|p| p.len() <= 1100));
    let uri = format!("{CP_URI}&command={huge}");
    let m = eval(CP, &exec("create", &uri, Value::Null)).expect("match");
    assert!(m.event.title.len() <= 1100);
    let uri = format!(
        "/api/v1/namespaces/default/pods/web/exec?command={}",
        "%2F".repeat(60_000)
    );
    assert!(eval(TOKEN, &exec("create", &uri, Value::Null)).is_none());
}

#[test]
fn odd_request_objects_match_nothing_and_do_not_panic() {
    let odd = [
        json!("a string"),
        json!(["a", "list"]),
        Value::Null,
        json!(42),
        json!({"spec": "a string", "command": "tar cf - /etc"}),
        json!({"spec": {"containers": "x", "volumes": 7, "hostPID": "true"}, "command": 7}),
        json!({"spec": {"containers": [null, 1, "x"], "volumes": [null, "hostPath"]}}),
    ];
    for id in ALL {
        let Some(base) = reads_request_object(id) else {
            // The others never read it: they still match, without panicking.
            for v in odd.iter().cloned().chain([deep(100)]) {
                let ev = with(positive(id), &["requestObject"], v);
                assert!(eval(id, &ev).is_some(), "{id}");
            }
            let ev = with(positive(id), &["requestObject"], deep(200));
            assert!(!matches!(try_eval(id, &ev), Some(Verdict::NoMatch)), "{id}");
            continue;
        };
        for v in &odd {
            let ev = with(base.clone(), &["requestObject"], v.clone());
            assert!(eval(id, &ev).is_none(), "{id} with requestObject {v}");
        }
        // 200 levels: past serde_json's depth limit, so the event may not
        // even parse; either way no match and no panic.
        let ev = with(base.clone(), &["requestObject"], deep(200));
        assert!(
            !matches!(try_eval(id, &ev), Some(Verdict::Matched { .. })),
            "{id} with a deep requestObject"
        );
        // 100 levels parse: a deep spec is still no pod spec.
        let ev = with(base, &["requestObject"], deep(100));
        assert!(eval(id, &ev).is_none(), "{id} with 100 levels");
    }
}

/// A body is logged as its sender wrote it. A surrogate escape without its
/// pair (`\ud800`, which Go's decoder reads as U+FFFD) or a number too
/// large for a float anywhere in it must not hide the rest of the body:
/// every rule that reads the body still matches.
#[test]
fn an_odd_value_anywhere_in_the_body_does_not_hide_it() {
    for id in ALL {
        let Some(ev) = reads_request_object(id) else {
            continue;
        };
        let ev = with(
            ev,
            &["requestObject", "metadata", "annotations", "odd"],
            json!("ODD"),
        );
        let ev = with(
            ev,
            &["requestObject", "metadata", "annotations", "big"],
            json!(7),
        );
        let text = ev.to_string();
        for (find, odd) in [(r#""ODD""#, r#""x\ud800""#), ("\"big\":7", "\"big\":1e400")] {
            assert!(text.contains(find));
            let odd_text = text.replace(find, odd);
            let parsed = AuditEvent::parse(&odd_text).expect("the event parses");
            let ctx = EventContext {
                cluster: "prod",
                at_ms: 0,
            };
            let verdict = rule(id).evaluate(&parsed, ctx, &CidrList::default(), &mut Vec::new());
            assert!(
                matches!(verdict, Verdict::Matched { .. }),
                "{id} with {odd}: {verdict:?}"
            );
        }
    }
}

/// Two ways to exec that the API server accepts and Panther's rules do not
/// read: over WebSocket (kubectl's default since 1.30, logged as `get`)
/// and with the `command` parameter's name percent-encoded.
#[test]
fn token_theft_over_websocket_and_a_copy_with_an_encoded_name_are_read() {
    let token_uri = "/api/v1/namespaces/payments/pods/api-0/exec?command=cat&command=%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken&container=api&stdout=true";
    for verb in ["create", "get"] {
        assert!(
            eval(TOKEN, &exec(verb, token_uri, Value::Null)).is_some(),
            "{verb}"
        );
    }
    // a `get` of something else is not an exec
    let mut listed = exec("get", token_uri, Value::Null);
    listed["objectRef"]["subresource"] = Value::Null;
    assert!(eval(TOKEN, &listed).is_none());
    let encoded = "/api/v1/namespaces/payments/pods/api-0/exec?comm%61nd=tar&comm%61nd=cf&comm%61nd=-&comm%61nd=%2Froot%2F.ssh&container=api&stdout=true";
    let m = eval(CP, &exec("create", encoded, Value::Null)).expect("a copy");
    assert_eq!(m.severity, Severity::Critical);
    // a parameter that only looks like one is not the command
    let other = encoded.replace("comm%61nd", "comm%61nds");
    assert!(eval(CP, &exec("create", &other, Value::Null)).is_none());
    // And the prefilter keeps both.
    let detector = Detector::new(DetectorConfig::default());
    let prefilter = Prefilter::new(&detector);
    for ev in [
        exec("get", token_uri, Value::Null),
        exec("create", encoded, Value::Null),
    ] {
        assert!(prefilter.may_match(ev.to_string().as_bytes()));
    }
}
