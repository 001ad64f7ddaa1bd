//! What a Sigma detection means on an EKS audit event: field paths into
//! nested objects and arrays, value comparison, modifiers and conditions.

use eks_audit_detector::sigma::{self, LoadedText};
use serde_json::{json, Value};

/// The audit event a pod creation writes, privileged second container.
fn pod_create() -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "a-1",
        "stage": "ResponseComplete", "verb": "create",
        "requestURI": "/api/v1/namespaces/prod/pods?fieldManager=kubectl-client-side-apply",
        "user": {"username": "alice@example.com", "groups": ["system:authenticated", "devs"]},
        "sourceIPs": ["203.0.113.9", "10.0.0.7"],
        "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/39683505",
        "objectRef": {"resource": "pods", "namespace": "prod", "name": "web", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {"kind": "Pod", "spec": {"containers": [
            {"name": "app", "image": "nginx:1.27"},
            {"name": "debug", "image": "busybox", "securityContext": {"privileged": true}}
        ]}},
    })
}

/// Whether a rule with this `detection:` body matches `event`.
fn matches(detection: &str, event: &Value) -> bool {
    let text = format!(
        "title: t\nid: t\nlogsource: {{product: kubernetes, service: audit}}\ndetection:\n{detection}"
    );
    let set = sigma::load(&[LoadedText {
        name: "t.yml".into(),
        text,
    }]);
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    // read as the detector reads a message
    let text = event.to_string();
    set.rules[0].matches(&sigma::event::SigmaEvent::new(&text))
}

fn sel(items: &str) -> String {
    format!("  sel:\n{items}  condition: sel\n")
}

#[test]
fn a_dotted_path_reaches_into_objects_and_searches_arrays() {
    let ev = pod_create();
    assert!(matches(
        &sel("    requestObject.spec.containers.securityContext.privileged: true\n"),
        &ev
    ));
    assert!(matches(
        &sel("    requestObject.spec.containers.image: busybox\n"),
        &ev
    ));
    assert!(matches(&sel("    user.groups: devs\n"), &ev));
    assert!(!matches(
        &sel("    requestObject.spec.containers.image: alpine\n"),
        &ev
    ));
    let mut unprivileged = ev.clone();
    unprivileged["requestObject"]["spec"]["containers"][1]["securityContext"]["privileged"] =
        json!(false);
    assert!(!matches(
        &sel("    requestObject.spec.containers.securityContext.privileged: true\n"),
        &unprivileged
    ));
}

#[test]
fn strings_compare_case_insensitively_with_wildcards_and_numbers_as_numbers() {
    let ev = pod_create();
    assert!(matches(&sel("    verb: CREATE\n"), &ev));
    assert!(matches(&sel("    user.username: 'ALICE@*'\n"), &ev));
    assert!(matches(&sel("    objectRef.name: 'w?b'\n"), &ev));
    assert!(!matches(&sel("    objectRef.name: 'w?'\n"), &ev));
    assert!(matches(&sel("    responseStatus.code: 201\n"), &ev));
    assert!(!matches(&sel("    responseStatus.code: 200\n"), &ev));
}

#[test]
fn every_required_modifier_works_on_audit_fields() {
    let ev = pod_create();
    let yes = [
        "    requestURI|contains: fieldManager\n",
        "    userAgent|startswith: kubectl/\n",
        "    user.username|endswith: '@example.com'\n",
        "    userAgent|contains|all: [kubectl, linux]\n",
        "    requestURI|re: '^/api/v1/namespaces/[a-z]+/pods'\n",
        "    sourceIPs|cidr: 203.0.113.0/24\n",
        "    requestObject|exists: true\n",
        "    responseStatus.code|gt: 200\n",
        "    responseStatus.code|gte: 201\n",
        "    responseStatus.code|lt: 300\n",
        "    responseStatus.code|lte: 201\n",
    ];
    for item in yes {
        assert!(matches(&sel(item), &ev), "{item}");
    }
    let no = [
        "    userAgent|contains|all: [kubectl, windows]\n",
        "    sourceIPs|cidr: 198.51.100.0/24\n",
        "    responseObject|exists: true\n",
        "    responseStatus.code|gt: 201\n",
        "    requestURI|re: '^/apis/'\n",
    ];
    for item in no {
        assert!(!matches(&sel(item), &ev), "{item}");
    }
}

#[test]
fn conditions_combine_selections() {
    let ev = pod_create();
    let body = |condition: &str| {
        format!(
            "  sel_pod:\n    objectRef.resource: pods\n  sel_secret:\n    objectRef.resource: secrets\n  \
             filter_ns:\n    objectRef.namespace: kube-system\n  condition: {condition}\n"
        )
    };
    for (condition, want) in [
        ("sel_pod and not filter_ns", true),
        ("sel_pod and sel_secret", false),
        ("(sel_pod or sel_secret) and not filter_ns", true),
        ("1 of sel_*", true),
        ("all of sel_*", false),
        ("1 of them", true),
        ("all of them", false),
        ("not 1 of sel_*", false),
    ] {
        assert_eq!(matches(&body(condition), &ev), want, "{condition}");
    }
}

#[test]
fn an_unknown_modifier_is_refused_with_its_line() {
    let text = "title: t\nid: t\nlogsource: {product: kubernetes}\ndetection:\n  sel:\n    verb|sounds_like: get\n  condition: sel\n";
    let set = sigma::load(&[LoadedText {
        name: "t.yml".into(),
        text: text.into(),
    }]);
    assert!(set.rules.is_empty());
    let p = set.problems[0].to_string();
    assert!(p.starts_with("t.yml:6: "), "{p}");
    assert!(p.contains("sounds_like"), "{p}");
}
