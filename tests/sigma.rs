//! Sigma rules: SigmaHQ's Kubernetes audit rules unchanged on EKS events,
//! `rules check`'s reasons, and correlations counted in the detector's own
//! windows (in memory here; against DynamoDB in `sigma_aws.rs`).

mod common;

use std::sync::Arc;

use common::{invoke_body, RecordingSink};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::{sigma as sigma_rules, Detector};
use eks_audit_detector::sigma::{self, LoadedText, SigmaRules, SigmaSet};
use eks_audit_detector::store::memory::MemoryStore;
use serde_json::{json, Value};

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";

fn files(list: &[(&str, &str)]) -> Vec<LoadedText> {
    list.iter()
        .map(|(name, text)| LoadedText {
            name: (*name).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

fn loaded(list: &[(&str, &str)]) -> SigmaSet {
    sigma::load(&files(list))
}

/// A detector running only `set`'s rules, every one of them on.
fn detector_of(set: SigmaSet) -> Detector {
    let ids: Vec<String> = set.rules.iter().map(|r| r.id.clone()).collect();
    let config = DetectorConfig {
        sigma: SigmaRules(Arc::new(set)),
        enabled_rules: ids,
        ..DetectorConfig::default()
    };
    let rules = sigma_rules::rules(&config);
    Detector::with_rules(config, rules)
}

/// An EKS audit event (ResponseComplete) with `fields` merged in.
fn audit(n: usize, fields: Value) -> String {
    let mut ev = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": format!("a-{n}"),
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods",
        "verb": "get",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "sourceIPs": ["52.1.2.3"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-14T00:00:00.000000Z",
        "stageTimestamp": "2024-05-14T00:00:00.100000Z",
    });
    merge(&mut ev, fields);
    ev.to_string()
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Runs `messages` (one batch) through `p`, returning the alerts' rule ids.
fn run(p: &Processor<MemoryStore, RecordingSink>, stream: &str, messages: &[(i64, String)]) {
    let body = invoke_body(GROUP, stream, messages);
    common::block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
}

fn processor(set: SigmaSet) -> Processor<MemoryStore, RecordingSink> {
    Processor::new(
        detector_of(set),
        MemoryStore::new(),
        RecordingSink::default(),
    )
}

fn bundled() -> SigmaSet {
    sigma::load(&sigma::bundled())
}

/// The bundled SigmaHQ rule whose file name contains `file`.
fn sigmahq(file: &str) -> SigmaSet {
    let all = sigma::bundled();
    let mine: Vec<LoadedText> = all.into_iter().filter(|f| f.name.contains(file)).collect();
    assert_eq!(mine.len(), 1, "{file}");
    sigma::load(&mine)
}

fn fires(set: SigmaSet, event: &str) -> usize {
    let p = processor(set);
    run(&p, "s", &[(T0, event.to_owned())]);
    p.sink().published().len()
}

#[test]
fn every_sigmahq_kubernetes_rule_loads_unchanged_and_ships_off() {
    let set = bundled();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    assert_eq!(set.rules.len(), 16);
    assert!(set.rules.iter().all(|r| !r.enabled_by_default));
    // ...and the default detector does not run them
    let d = Detector::new(DetectorConfig {
        sigma: SigmaRules(Arc::new(bundled())),
        ..DetectorConfig::default()
    });
    assert!(d.rules().all(|r| r.meta().source.as_str() != "SigmaHQ"));
}

/// (file, an event it fires on, a near miss it must not fire on)
fn sigmahq_cases() -> Vec<(&'static str, Value, Value)> {
    let write = |verb: &str, resource: &str, group: &str| json!({"verb": verb, "objectRef": {"resource": resource, "apiGroup": group}});
    vec![
        (
            "change_admission_controller",
            write(
                "create",
                "mutatingwebhookconfigurations",
                "admissionregistration.k8s.io",
            ),
            write(
                "get",
                "mutatingwebhookconfigurations",
                "admissionregistration.k8s.io",
            ),
        ),
        (
            "cronjob_modification",
            write("patch", "cronjobs", "batch"),
            write("list", "cronjobs", "batch"),
        ),
        (
            "deployment_deleted",
            write("delete", "deployments", "apps"),
            write("delete", "replicasets", "apps"),
        ),
        (
            "events_deleted",
            write("delete", "events", ""),
            write("create", "events", ""),
        ),
        (
            "exec_into_container",
            json!({"verb": "create", "objectRef": {"resource": "pods", "subresource": "exec"}}),
            json!({"verb": "create", "objectRef": {"resource": "pods", "subresource": "log"}}),
        ),
        (
            "hostpath_mount",
            json!({"verb": "create", "requestObject": {"spec": {"volumes": [
                {"name": "data", "emptyDir": {}},
                {"name": "root", "hostPath": {"path": "/"}}]}}}),
            json!({"verb": "create", "requestObject": {"spec": {"volumes": [
                {"name": "data", "emptyDir": {}}]}}}),
        ),
        (
            "pod_in_system_namespace",
            json!({"verb": "create", "objectRef": {"resource": "pods", "namespace": "kube-system"}}),
            json!({"verb": "create", "objectRef": {"resource": "pods", "namespace": "default"}}),
        ),
        (
            "privileged_pod_creation",
            json!({"verb": "create", "requestObject": {"spec": {"containers": [
                {"name": "a"},
                {"name": "b", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}}}),
            json!({"verb": "create", "requestObject": {"spec": {"containers": [
                {"name": "a", "securityContext": {"capabilities": {"drop": ["ALL"]}}}]}}}),
        ),
        (
            "rbac_permisions_listing",
            write("create", "selfsubjectrulesreviews", "authorization.k8s.io"),
            write("create", "selfsubjectaccessreviews", "authorization.k8s.io"),
        ),
        (
            "rolebinding_modification",
            write("update", "clusterrolebindings", "rbac.authorization.k8s.io"),
            write("get", "clusterrolebindings", "rbac.authorization.k8s.io"),
        ),
        (
            "secrets_enumeration",
            write("list", "secrets", ""),
            write("get", "secrets", ""),
        ),
        (
            "secrets_modified_or_deleted",
            write("delete", "secrets", ""),
            write("watch", "secrets", ""),
        ),
        (
            "serviceaccount_creation",
            write("create", "serviceaccounts", ""),
            write("create", "configmaps", ""),
        ),
        (
            "sidecar_injection",
            write("patch", "deployments", "apps"),
            write("patch", "statefulsets", "apps"),
        ),
        (
            "unauthorized_unauthenticated_actions",
            json!({"responseStatus": {"code": 403}}),
            json!({"responseStatus": {"code": 404}}),
        ),
    ]
}

#[test]
fn each_sigmahq_rule_fires_on_its_eks_event_and_not_on_a_near_miss() {
    for (file, hit, miss) in sigmahq_cases() {
        assert_eq!(
            fires(sigmahq(file), &audit(1, hit)),
            1,
            "{file} should fire"
        );
        assert_eq!(
            fires(sigmahq(file), &audit(2, miss)),
            0,
            "{file} should not fire"
        );
    }
}

#[test]
fn the_enumeration_rule_cannot_match_an_eks_event_as_written() {
    // It asks for responseStatus.code 'ALLOW', which an audit event never
    // has (the code is an HTTP status): README lists it.
    let ev = audit(
        1,
        json!({"requestURI": "/api/v1/namespaces/d/pods/p/exec?command=%2Fbin%2Fsh",
               "userAgent": "trufflehog", "responseStatus": {"code": 200}}),
    );
    assert_eq!(fires(sigmahq("potential_enumeration_activity"), &ev), 0);
    // ...so the prefilter never makes a line its candidate
    let d = detector_of(sigmahq("potential_enumeration_activity"));
    assert!(!d.prefilter().may_match(ev.as_bytes()));
}

#[test]
fn a_plain_rule_alerts_once_per_user_and_source_per_hour() {
    let p = processor(sigmahq("secrets_enumeration"));
    let list = |n: usize, user: &str, t: i64| {
        (
            T0 + t,
            audit(
                n,
                json!({"verb": "list", "objectRef": {"resource": "secrets"}, "user": {"username": user}}),
            ),
        )
    };
    run(
        &p,
        "s1",
        &[
            list(1, "alice", 0),
            list(2, "alice", 1000),
            list(3, "bob", 2000),
        ],
    );
    // alice twice (one alert), bob once
    assert_eq!(p.sink().published().len(), 2);
    // an hour later alice is new again
    run(&p, "s2", &[list(4, "alice", 3_600_001)]);
    assert_eq!(p.sink().published().len(), 3);
    let alert = &p.sink().published()[0];
    assert_eq!(
        alert.rule_id.as_str(),
        "eeb3e9e1-b685-44e4-9232-6bb701f925b5"
    );
    assert_eq!(alert.severity.as_str(), "LOW");
}

#[test]
fn a_rule_chooses_its_own_dedup_fields_and_period() {
    let rule = "title: Secret reads\nid: my-secret-reads\nlogsource: {product: kubernetes, service: audit}\n\
                detection:\n  sel:\n    verb: get\n    objectRef.resource: secrets\n  condition: sel\n\
                level: high\ndedup_fields: [objectRef.namespace]\ndedup_minutes: 5\n";
    let p = processor(loaded(&[("mine.yml", rule)]));
    let get = |n: usize, user: &str, ns: &str, t: i64| {
        (
            T0 + t,
            audit(
                n,
                json!({"objectRef": {"resource": "secrets", "namespace": ns}, "user": {"username": user}}),
            ),
        )
    };
    // two users, one namespace: one alert; another namespace: another
    run(
        &p,
        "s1",
        &[
            get(1, "alice", "a", 0),
            get(2, "bob", "a", 1),
            get(3, "bob", "b", 2),
        ],
    );
    assert_eq!(p.sink().published().len(), 2);
    // five minutes later the namespace alerts again
    run(&p, "s2", &[get(4, "carol", "a", 300_001)]);
    assert_eq!(p.sink().published().len(), 3);
    assert_eq!(p.sink().published()[0].severity.as_str(), "HIGH");
}

const BASE: &str = "\
title: Secret read
id: secret-read
logsource: {product: kubernetes, service: audit}
detection:
  sel:
    verb: get
    objectRef.resource: secrets
  condition: sel
---
title: Pod exec
name: pod-exec
id: pod-exec
logsource: {product: kubernetes, service: audit}
detection:
  sel:
    verb: create
    objectRef.subresource: exec
  condition: sel
";

fn secret(n: usize, user: &str, name: &str) -> String {
    audit(
        n,
        json!({"objectRef": {"resource": "secrets", "name": name}, "user": {"username": user}}),
    )
}

fn exec(n: usize, user: &str) -> String {
    audit(
        n,
        json!({"verb": "create", "objectRef": {"resource": "pods", "subresource": "exec"}, "user": {"username": user}}),
    )
}

fn correlation(kind: &str, condition: &str) -> String {
    format!(
        "title: Correlated\nid: corr\ncorrelation:\n  type: {kind}\n  rules: [secret-read, pod-exec]\n  \
         group-by: [user.username]\n  timespan: 10m\n  condition:\n{condition}\nlevel: high\n"
    )
}

#[test]
fn event_count_alerts_when_the_group_reaches_the_count_within_the_timespan() {
    let corr = "title: Many secret reads\nid: many\ncorrelation:\n  type: event_count\n  rules: [secret-read]\n  \
                group-by: [user.username]\n  timespan: 10m\n  condition:\n    gte: 3\nlevel: high\n";
    let p = processor(loaded(&[("base.yml", BASE), ("corr.yml", corr)]));
    // two reads by alice, two by bob: nothing yet; secret-read does not alert
    run(
        &p,
        "s1",
        &[
            (T0, secret(1, "alice", "a")),
            (T0 + 1, secret(2, "alice", "b")),
            (T0 + 2, secret(3, "bob", "a")),
            (T0 + 3, secret(4, "bob", "a")),
        ],
    );
    assert!(p.sink().published().is_empty());
    // the third by alice within 10 minutes
    run(&p, "s2", &[(T0 + 60_000, secret(5, "alice", "c"))]);
    let alerts = p.sink().published();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule_id.as_str(), "many");
    assert!(
        alerts[0].title.contains("user.username=alice"),
        "{}",
        alerts[0].title
    );
    // a redelivered batch counts nothing twice
    run(&p, "s2", &[(T0 + 60_000, secret(5, "alice", "c"))]);
    run(
        &p,
        "s1",
        &[
            (T0, secret(1, "alice", "a")),
            (T0 + 1, secret(2, "alice", "b")),
            (T0 + 2, secret(3, "bob", "a")),
            (T0 + 3, secret(4, "bob", "a")),
        ],
    );
    assert_eq!(p.sink().published().len(), 1);
    // bob's third read falls outside his window's 10 minutes: no alert
    run(&p, "s3", &[(T0 + 700_000, secret(6, "bob", "z"))]);
    assert_eq!(p.sink().published().len(), 1);
}

#[test]
fn value_count_counts_distinct_values_only() {
    let corr = "title: Many secrets\nid: many\ncorrelation:\n  type: value_count\n  rules: [secret-read]\n  \
                group-by: [user.username]\n  timespan: 10m\n  condition:\n    gte: 3\n    field: objectRef.name\n";
    let p = processor(loaded(&[("base.yml", BASE), ("corr.yml", corr)]));
    run(
        &p,
        "s1",
        &[
            (T0, secret(1, "alice", "a")),
            (T0 + 1, secret(2, "alice", "a")),
            (T0 + 2, secret(3, "alice", "b")),
            (T0 + 3, secret(4, "alice", "b")),
        ],
    );
    assert!(p.sink().published().is_empty(), "two distinct names");
    run(&p, "s2", &[(T0 + 5, secret(5, "alice", "c"))]);
    assert_eq!(p.sink().published().len(), 1);
}

#[test]
fn temporal_needs_every_rule_in_the_group_in_any_order() {
    let p = processor(loaded(&[
        ("base.yml", BASE),
        ("corr.yml", &correlation("temporal", "    gte: 2")),
    ]));
    run(
        &p,
        "s1",
        &[
            (T0, exec(1, "alice")),
            (T0 + 1, exec(2, "alice")),
            (T0 + 2, secret(3, "bob", "x")),
        ],
    );
    assert!(p.sink().published().is_empty());
    run(&p, "s2", &[(T0 + 3, secret(4, "alice", "x"))]);
    assert_eq!(p.sink().published().len(), 1);
}

#[test]
fn temporal_ordered_needs_the_rules_in_their_order() {
    let p = processor(loaded(&[
        ("base.yml", BASE),
        ("corr.yml", &correlation("temporal_ordered", "    gte: 2")),
    ]));
    // exec before the secret read: out of order
    run(
        &p,
        "s1",
        &[(T0, exec(1, "alice")), (T0 + 1, secret(2, "alice", "x"))],
    );
    assert!(p.sink().published().is_empty());
    // a later exec completes the sequence (read, then exec)
    run(&p, "s2", &[(T0 + 2, exec(3, "alice"))]);
    assert_eq!(p.sink().published().len(), 1);
    // in one batch given in any order, event time decides
    let q = processor(loaded(&[
        ("base.yml", BASE),
        ("corr.yml", &correlation("temporal_ordered", "    gte: 2")),
    ]));
    run(
        &q,
        "s1",
        &[(T0 + 10, exec(1, "bob")), (T0, secret(2, "bob", "x"))],
    );
    assert_eq!(q.sink().published().len(), 1);
}

#[test]
fn generate_true_lets_the_named_rules_alert_too() {
    let corr = correlation("temporal", "    gte: 2").replace("level: high\n", "generate: true\n");
    let p = processor(loaded(&[("base.yml", BASE), ("corr.yml", &corr)]));
    run(&p, "s1", &[(T0, exec(1, "alice"))]);
    assert_eq!(p.sink().published().len(), 1);
    assert_eq!(p.sink().published()[0].rule_id.as_str(), "pod-exec");
}

fn problems(list: &[(&str, &str)]) -> Vec<String> {
    loaded(list)
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn rules_check_names_the_file_and_line_of_each_rule_that_cannot_run() {
    let bad = "title: ok\nid: ok\nlogsource: {product: kubernetes}\ndetection:\n  sel:\n    verb: get\n  condition: sel\n\
               ---\ntitle: typo\nid: typo\nlogsource: {product: kubernetes}\ndetection:\n  sel:\n    verb|contians: get\n  condition: sel\n";
    let p = problems(&[("bad.yml", bad)]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("bad.yml:14: "), "{p:?}");
    assert!(p[0].contains("contians"), "{p:?}");
    // the good rule of the same file still loads
    assert_eq!(loaded(&[("bad.yml", bad)]).rules.len(), 1);
}

#[test]
fn rules_check_refuses_what_a_correlation_cannot_do() {
    let cases = [
        (correlation("temporal", "    gte: 2").replace("pod-exec", "nope"), "does not exist"),
        (
            "title: c\nid: c\ncorrelation:\n  type: value_count\n  rules: [secret-read]\n  group-by: [user.username]\n  timespan: 5m\n  condition:\n    gte: 21\n    field: objectRef.name\n".to_owned(),
            "more than the 20",
        ),
        (
            "title: c\nid: c\ncorrelation:\n  type: event_count\n  rules: [secret-read]\n  group-by: [user.username]\n  timespan: 5m\n  condition:\n    lt: 3\n".to_owned(),
            "only a single `gte` or `gt`",
        ),
        (
            "title: c\nid: c\ncorrelation:\n  type: value_sum\n  rules: [secret-read]\n  group-by: [user.username]\n  timespan: 5m\n  condition:\n    gte: 3\n    field: x\n".to_owned(),
            "not supported",
        ),
        (
            format!("{}---\ntitle: d\nid: d\ncorrelation:\n  type: event_count\n  rules: [corr]\n  group-by: [user.username]\n  timespan: 5m\n  condition:\n    gte: 2\n", correlation("temporal", "    gte: 2")),
            "chained correlations are not supported",
        ),
    ];
    for (corr, reason) in cases {
        let p = problems(&[("base.yml", BASE), ("corr.yml", &corr)]);
        assert!(
            p.iter()
                .any(|p| p.starts_with("corr.yml:") && p.contains(reason)),
            "{reason}: {p:?}"
        );
    }
}

#[test]
fn a_rule_for_another_log_source_is_refused() {
    let win = "title: w\nid: w\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel:\n    Image|endswith: cmd.exe\n  condition: sel\n";
    let p = problems(&[("win.yml", win)]);
    assert!(p[0].contains("not Kubernetes audit"), "{p:?}");
}

#[test]
fn hostile_values_do_not_grow_keys_or_titles() {
    // a 200 KB user name in the dedup key and the correlation's group
    let corr =
        "title: Many\nid: many\ncorrelation:\n  type: event_count\n  rules: [secret-read]\n  \
                group-by: [user.username]\n  timespan: 10m\n  condition:\n    gte: 2\n";
    let p = processor(loaded(&[("base.yml", BASE), ("corr.yml", corr)]));
    let huge = "u".repeat(200_000);
    run(
        &p,
        "s1",
        &[(T0, secret(1, &huge, "a")), (T0 + 1, secret(2, &huge, "b"))],
    );
    let alerts = p.sink().published();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].title.len() < 2_000, "{}", alerts[0].title.len());
    assert!(serde_json::to_string(&alerts[0]).expect("json").len() < 64 * 1024);
}

#[test]
fn the_prefilter_keeps_every_line_a_sigma_rule_matches() {
    let set = bundled();
    let d = detector_of(set);
    let prefilter = d.prefilter();
    for (file, hit, _) in sigmahq_cases() {
        let line = audit(1, hit);
        assert!(prefilter.may_match(line.as_bytes()), "{file}");
        // ...also as the envelope carries it (escaped once more)
        let escaped = serde_json::to_string(&line).expect("json");
        assert!(prefilter.may_match(escaped.as_bytes()), "{file} escaped");
    }
    // and skips a line none can match
    // (not with a kubectl user agent: the enumeration rule looks for
    // `kubectl` in the URI; digits of a timestamp are no status code)
    let line = audit(
        1,
        json!({"verb": "watch", "objectRef": {"resource": "leases"},
               "userAgent": "kube-scheduler/v1.30.0",
               "stageTimestamp": "2024-05-14T00:00:00.401403Z"}),
    );
    assert!(!prefilter.may_match(line.as_bytes()));
    // ...but a refusal is kept, raw and escaped
    let refused = audit(
        2,
        json!({"userAgent": "x", "responseStatus": {"code": 403}}),
    );
    assert!(prefilter.may_match(refused.as_bytes()));
    let escaped = serde_json::to_string(&refused).expect("json");
    assert!(prefilter.may_match(escaped.as_bytes()));
}

#[test]
fn the_prefilter_finds_strings_that_overlap_and_numbers_that_stand_alone() {
    let rule = |id: &str, sel: &str| {
        format!("title: {id}\nid: {id}\nlogsource: {{product: kubernetes}}\ndetection:\n  sel:\n{sel}  condition: sel\n")
    };
    let a = rule("a", "    userAgent|contains: abcx\n    verb: zzzz\n");
    let b = rule("b", "    userAgent|contains: bcxy\n");
    let c = rule("c", "    responseStatus.code: 429\n");
    let d = detector_of(loaded(&[("a.yml", &a), ("b.yml", &b), ("c.yml", &c)]));
    let p = d.prefilter();
    // `abcx` is found first; `bcxy` starts inside it
    assert!(p.may_match(br#"{"userAgent":"ABCXY"}"#));
    assert!(p.may_match(br#"{"userAgent":"zbcxy"}"#));
    assert!(!p.may_match(br#"{"userAgent":"abcx","verb":"get"}"#));
    // a number's digits stand alone: not inside a timestamp or a longer number
    assert!(p.may_match(br#"{"responseStatus":{"code":429}}"#));
    assert!(p.may_match(br#"{\"responseStatus\":{\"code\":429}}"#));
    assert!(!p.may_match(br#"{"stageTimestamp":"2024-05-14T00:00:00.429000Z","rv":"14290"}"#));
}

#[test]
fn the_prefilter_compares_whole_a_string_it_searches_from_its_rare_end() {
    // `kube-` starts bytes in every event: the string is searched from
    // its rare part, and kept only where it is there whole
    let rule = "title: w\nid: w\nlogsource: {product: kubernetes}\ndetection:\n  sel:\n    objectRef.namespace: kube-dashboard\n  condition: sel\n";
    let d = detector_of(loaded(&[("w.yml", rule)]));
    let p = d.prefilter();
    assert!(p.may_match(br#"{"objectRef":{"namespace":"KUBE-Dashboard"}}"#));
    assert!(p.may_match(br#"{\"objectRef\":{\"namespace\":\"kube-dashboard\"}}"#));
    for miss in [
        &br#"{"objectRef":{"namespace":"my-dashboard"}}"#[..],
        br#"{"objectRef":{"namespace":"e-dashboard kube-"}}"#,
        br#"{"objectRef":{"namespace":"kube-dashboar"}}"#,
    ] {
        assert!(!p.may_match(miss), "{}", String::from_utf8_lossy(miss));
    }
}

#[test]
fn a_forged_forwarded_address_makes_keys_unless_the_connection_address_is_used() {
    // ten refusals of one anonymous client, each claiming another first
    // address in X-Forwarded-For; its connection address is the last entry
    let refusals: Vec<(i64, String)> = (0..10)
        .map(|n| {
            let forged = format!("198.51.100.{n}");
            (
                T0 + n as i64,
                audit(
                    n as usize,
                    json!({"user": {"username": "system:anonymous"}, "responseStatus": {"code": 403},
                           "sourceIPs": [forged, "203.0.113.7"]}),
                ),
            )
        })
        .collect();
    let alerts = |hardened: bool| {
        let set = sigmahq("unauthorized_unauthenticated_actions");
        let ids: Vec<String> = set.rules.iter().map(|r| r.id.clone()).collect();
        let config = DetectorConfig {
            sigma: SigmaRules(Arc::new(set)),
            enabled_rules: ids,
            multiple_403_source: if hardened {
                eks_audit_detector::config::SourceAddress::FirstOrLast
            } else {
                eks_audit_detector::config::SourceAddress::First
            },
            ..DetectorConfig::default()
        };
        let rules = sigma_rules::rules(&config);
        let p = Processor::new(
            Detector::with_rules(config, rules),
            MemoryStore::new(),
            RecordingSink::default(),
        );
        run(&p, "s", &refusals);
        p.sink().published().len()
    };
    // as specified (the first address): one key per claimed address
    assert_eq!(alerts(false), 10);
    // hardened (MULTIPLE_403_SOURCE=first-or-last): one key, one alert
    assert_eq!(alerts(true), 1);
}

#[test]
fn a_request_body_nested_too_deep_to_parse_does_not_hide_the_request() {
    // a pod whose body nests 300 levels (past the JSON parser's limit)
    let mut deep = json!("x");
    for _ in 0..300 {
        deep = json!({ "a": deep });
    }
    let ev = audit(
        1,
        json!({"verb": "create", "objectRef": {"resource": "pods", "namespace": "kube-system"},
               "requestObject": {"metadata": {"annotations": {"x": "y"}}, "spec": {"deep": deep}}}),
    );
    assert!(
        serde_json::from_str::<Value>(&ev).is_err(),
        "too deep for the parser"
    );
    assert_eq!(fires(sigmahq("pod_in_system_namespace"), &ev), 1);
}

#[test]
fn rules_that_read_a_body_and_rules_that_read_none_fire_on_one_event() {
    // each member is parsed only when a rule reads under it; one event
    // serves a rule on the body and a rule on the object reference alike
    let ev = json!({"verb": "create", "objectRef": {"resource": "pods", "namespace": "kube-system"},
                    "requestObject": {"spec": {"volumes": [{"hostPath": {"path": "/etc"}}]}}});
    assert_eq!(fires(sigmahq("hostpath_mount"), &audit(1, ev.clone())), 1);
    assert_eq!(fires(sigmahq("pod_in_system_namespace"), &audit(2, ev)), 1);
}
