//! The `rbac` group of Panther's catalog (roles and bindings, admission
//! webhooks, certificates and tokens, NodePort services and Ingresses):
//! one field away from a match, Python's handling of odd bodies, hostile
//! input, and the anchors of every match.

use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::net::CidrList;
use eks_audit_detector::prefilter::Prefilter;
use eks_audit_detector::rules::{registry, Anchor, Detector, Rule};
use eks_audit_detector::vocab::{EventContext, Match, Severity, Verdict};
use serde_json::{json, Value};

const CRB: &str = "Kubernetes.ClusterRoleBinding.Privileged";
const NODE_PROXY: &str = "Kubernetes.Role.NodeProxyPermissions";
const POD_EXEC: &str = "Kubernetes.Role.PodExec";
const WRITE: &str = "Kubernetes.Role.WritePermissions";
const SYSTEM_ROLE: &str = "Kubernetes.SystemRole.Modified";
const WEBHOOK: &str = "Kubernetes.AdmissionController.Created";
const CSR: &str = "Kubernetes.ClientCertificate.Created";
const TOKEN: &str = "Kubernetes.ServiceAccount.TokenCreated";
const INGRESS: &str = "Kubernetes.Ingress.NoTLS";
const NODEPORT: &str = "Kubernetes.Service.NodePort.Deployed";

const GROUP: [&str; 10] = [
    CRB,
    NODE_PROXY,
    POD_EXEC,
    WRITE,
    SYSTEM_ROLE,
    WEBHOOK,
    CSR,
    TOKEN,
    INGRESS,
    NODEPORT,
];

fn rule(id: &str) -> Box<dyn Rule> {
    registry(&DetectorConfig::default())
        .into_iter()
        .find(|r| r.meta().id.as_str() == id)
        .unwrap_or_else(|| panic!("{id} is registered"))
}

/// The rule's match on the event, if any; also checks that a match's
/// message holds every string of one of the rule's anchor groups.
fn eval(id: &str, ev: &Value) -> Option<Match> {
    let rule = rule(id);
    let text = ev.to_string();
    let parsed = AuditEvent::parse(&text).expect("event parses");
    let mut out = Vec::new();
    let ctx = EventContext {
        cluster: "prod",
        at_ms: 0,
    };
    let verdict = rule.evaluate(&parsed, ctx, &CidrList::default(), &mut out);
    if verdict == Verdict::NoMatch {
        assert!(out.is_empty());
        return None;
    }
    assert!(anchored(rule.anchor(), &text), "{id}: anchor misses {text}");
    assert_eq!(out.len(), 1);
    out.pop()
}

fn anchored(anchor: Anchor, text: &str) -> bool {
    match anchor {
        Anchor::AnyOf(groups) => groups.iter().any(|g| g.iter().all(|s| text.contains(s))),
        // The strings, and the prefilter reads the user as one who may be
        // a person.
        Anchor::AnyOfByPerson(groups) => {
            groups.iter().any(|g| g.iter().all(|s| text.contains(s)))
                && Prefilter::new(&Detector::new(DetectorConfig::default()))
                    .may_match(text.as_bytes())
        }
        Anchor::Always => true,
        other => panic!("unexpected anchor {other:?}"),
    }
}

fn matches(id: &str, ev: &Value) -> bool {
    eval(id, ev).is_some()
}

/// An audit event with these parts; `body` is the `requestObject`.
fn audit(verb: &str, resource: &str, namespace: Option<&str>, name: &str, body: Value) -> Value {
    let mut object_ref = json!({"resource": resource, "name": name, "apiVersion": "v1"});
    if let Some(ns) = namespace {
        object_ref["namespace"] = json!(ns);
    }
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "4f7f8c1e-0000-4000-8000-000000000001",
        "stage": "ResponseComplete",
        "requestURI": format!("/apis/x/{resource}"),
        "verb": verb,
        "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["198.51.100.7"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": object_ref,
        "responseStatus": {"code": 201},
        "requestObject": body,
    })
}

/// The event with the value at `path` (object keys, or list indices)
/// replaced or added.
fn set(mut ev: Value, path: &[&str], v: Value) -> Value {
    let mut cur = &mut ev;
    for k in path {
        cur = match k.parse::<usize>() {
            Ok(i) if cur.is_array() => &mut cur[i],
            _ => &mut cur[*k],
        };
    }
    *cur = v;
    ev
}

fn refused(ev: Value) -> Value {
    set(ev, &["responseStatus", "code"], json!(403))
}

fn by(ev: Value, user: &str) -> Value {
    set(ev, &["user", "username"], json!(user))
}

fn verb(ev: Value, verb: &str) -> Value {
    set(ev, &["verb"], json!(verb))
}

fn assert_hit(m: &Match, title: &str, dedup: &str, severity: Severity) {
    assert_eq!(
        (m.event.title.as_str(), m.dedup.as_str(), m.severity),
        (title, dedup, severity)
    );
}

// ---------------------------------------------------------------- bindings

fn admin_binding() -> Value {
    audit(
        "create",
        "clusterrolebindings",
        None,
        "backdoor",
        json!({
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [
                {"kind": "User", "name": "eve"},
                {"kind": "Group"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}
            ]
        }),
    )
}

#[test]
fn a_binding_to_cluster_admin_names_its_subjects() {
    let m = eval(CRB, &admin_binding()).expect("match");
    assert_hit(
        &m,
        "[mallory@example.com] created ClusterRoleBinding [backdoor] granting [cluster-admin] to [User:eve, ServiceAccount:sa]",
        "k8s_clusterrolebinding_mallory@example.com_backdoor",
        Severity::High,
    );
    assert!(m
        .event
        .facts
        .contains(&("subjects", "User:eve, ServiceAccount:sa".into())));
}

#[test]
fn a_binding_one_field_away_does_not_match() {
    let ev = admin_binding();
    assert!(!matches(CRB, &refused(ev.clone())));
    assert!(!matches(CRB, &by(ev.clone(), "eks:addon-manager")));
    assert!(!matches(CRB, &verb(ev.clone(), "update")));
    assert!(!matches(
        CRB,
        &set(
            ev.clone(),
            &["requestObject", "roleRef", "name"],
            json!("view")
        )
    ));
    assert!(!matches(
        CRB,
        &set(ev, &["objectRef", "resource"], json!("rolebindings"))
    ));
}

#[test]
fn a_binding_to_admin_is_medium_and_odd_subjects_keep_the_alert() {
    let ev = set(
        admin_binding(),
        &["requestObject", "roleRef", "name"],
        json!("admin"),
    );
    assert_eq!(eval(CRB, &ev).expect("match").severity, Severity::Medium);
    // No subjects: Panther's placeholder.
    let none = set(ev.clone(), &["requestObject", "subjects"], json!([]));
    assert!(eval(CRB, &none)
        .expect("match")
        .event
        .title
        .ends_with("to [<UNKNOWN_SUBJECTS>]"));
    // Subjects Panther's title() cannot read: it falls back to the rule's name.
    for odd in [json!(null), json!(["User"]), json!(7)] {
        let m = eval(CRB, &set(ev.clone(), &["requestObject", "subjects"], odd)).expect("match");
        assert_eq!(
            m.event.title,
            "Kubernetes ClusterRoleBinding to Privileged Role"
        );
        assert_eq!(
            m.dedup,
            "k8s_clusterrolebinding_mallory@example.com_backdoor"
        );
    }
}

// ---------------------------------------------------------------- roles

fn role(resource: &str, namespace: Option<&str>, rules: Value) -> Value {
    audit("create", resource, namespace, "r1", json!({"rules": rules}))
}

#[test]
fn node_proxy_roles_match_as_panther_reads_them() {
    let ev = role(
        "clusterroles",
        None,
        json!([{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]),
    );
    assert_hit(
        &eval(NODE_PROXY, &ev).expect("match"),
        "[mallory@example.com] created ClusterRole [r1] with node proxy permissions",
        "k8s_node_proxy_mallory@example.com_r1",
        Severity::High,
    );
    // `nodes/*` needs a verb; `nodes` needs `*` beside it.
    let star = |verbs: Value| {
        role(
            "roles",
            Some("ns"),
            json!([{"resources": ["nodes/*"], "verbs": verbs}]),
        )
    };
    assert!(matches(NODE_PROXY, &star(json!(["get"]))));
    assert!(!matches(NODE_PROXY, &star(json!([]))));
    assert!(matches(
        NODE_PROXY,
        &role("roles", None, json!([{"resources": ["nodes", "*"]}]))
    ));
    assert!(!matches(
        NODE_PROXY,
        &role(
            "roles",
            None,
            json!([{"resources": ["nodes"], "verbs": ["*"]}])
        )
    ));
    // Python's `in` on a string is a substring test.
    assert!(matches(
        NODE_PROXY,
        &role("roles", None, json!([{"resources": "nodes/proxy"}]))
    ));
    // A rule Python cannot read before a match raises: no match.
    assert!(!matches(
        NODE_PROXY,
        &role("roles", None, json!(["x", {"resources": ["nodes/proxy"]}]))
    ));
    assert!(!matches(
        NODE_PROXY,
        &role(
            "roles",
            None,
            json!([{"resources": 5}, {"resources": ["nodes/proxy"]}])
        )
    ));
}

#[test]
fn a_node_proxy_role_one_field_away_does_not_match() {
    let ev = role(
        "clusterroles",
        None,
        json!([{"resources": ["nodes/proxy"], "verbs": ["get"]}]),
    );
    assert!(matches(NODE_PROXY, &ev));
    assert!(!matches(NODE_PROXY, &refused(ev.clone())));
    assert!(!matches(
        NODE_PROXY,
        &by(ev.clone(), "system:kube-controller-manager")
    ));
    assert!(!matches(NODE_PROXY, &verb(ev.clone(), "patch")));
    assert!(!matches(
        NODE_PROXY,
        &set(
            ev,
            &["requestObject", "rules", "0", "resources"],
            json!(["nodes/stats"])
        )
    ));
}

#[test]
fn pod_exec_roles_rate_cluster_roles_critical() {
    let rules = json!([{"resources": ["pods"], "verbs": ["get"]}, {"resources": ["pods/exec"], "verbs": ["create"]}]);
    assert_hit(
        &eval(POD_EXEC, &role("roles", Some("dev"), rules.clone())).expect("match"),
        "[mallory@example.com] created Role [dev/r1] with pods/exec permissions",
        "k8s_role_podexec_mallory@example.com_roles_r1",
        Severity::High,
    );
    assert_hit(
        &eval(POD_EXEC, &role("clusterroles", None, rules)).expect("match"),
        "[mallory@example.com] created ClusterRole [r1] with pods/exec permissions ",
        "k8s_role_podexec_mallory@example.com_clusterroles_r1",
        Severity::Critical,
    );
}

#[test]
fn a_pod_exec_role_one_field_away_does_not_match() {
    let ev = role(
        "roles",
        Some("dev"),
        json!([{"resources": ["pods/exec"], "verbs": ["create"]}]),
    );
    assert!(matches(POD_EXEC, &ev));
    assert!(!matches(POD_EXEC, &refused(ev.clone())));
    assert!(!matches(
        POD_EXEC,
        &by(ev.clone(), "system:node:ip-10-0-0-1")
    ));
    assert!(!matches(POD_EXEC, &verb(ev.clone(), "update")));
    assert!(!matches(
        POD_EXEC,
        &set(
            ev,
            &["requestObject", "rules", "0", "resources"],
            json!(["pods/log"])
        )
    ));
}

#[test]
fn write_roles_are_rated_by_what_they_may_write() {
    let one = |resource: &str, resources: Value, verbs: Value| {
        let ns = (resource == "roles").then_some("dev");
        eval(
            WRITE,
            &role(
                resource,
                ns,
                json!([{"resources": resources, "verbs": verbs}]),
            ),
        )
        .map(|m| m.severity)
    };
    assert_eq!(
        one("roles", json!(["secrets"]), json!(["patch"])),
        Some(Severity::Critical)
    );
    assert_eq!(
        one("clusterroles", json!(["nodes"]), json!(["delete"])),
        Some(Severity::High)
    );
    assert_eq!(
        one("roles", json!(["nodes"]), json!(["delete"])),
        Some(Severity::Low)
    );
    assert_eq!(
        one("clusterroles", json!(["configmaps"]), json!(["update"])),
        Some(Severity::Medium)
    );
    // `deletecollection` is a write verb but not one severity() weighs.
    assert_eq!(
        one(
            "clusterroles",
            json!(["secrets"]),
            json!(["deletecollection"])
        ),
        Some(Severity::Medium)
    );
    assert_eq!(
        one("roles", json!(["secrets"]), json!(["get", "list"])),
        None
    );
    // A severity() that raises on a later rule gives the default, LOW.
    let ev = role(
        "clusterroles",
        None,
        json!([{"resources": ["configmaps"], "verbs": ["update"]}, 42]),
    );
    assert_eq!(eval(WRITE, &ev).map(|m| m.severity), Some(Severity::Low));
}

#[test]
fn a_write_role_one_field_away_does_not_match() {
    let ev = role(
        "roles",
        Some("dev"),
        json!([{"resources": ["configmaps"], "verbs": ["update"]}]),
    );
    assert_hit(
        &eval(WRITE, &ev).expect("match"),
        "[mallory@example.com] created Role [dev/r1] with write permissions",
        "k8s_role_write_mallory@example.com_roles_r1",
        Severity::Low,
    );
    assert!(!matches(WRITE, &refused(ev.clone())));
    assert!(!matches(WRITE, &by(ev.clone(), "eks:rbac")));
    assert!(!matches(WRITE, &verb(ev.clone(), "update")));
    assert!(!matches(
        WRITE,
        &set(
            ev,
            &["requestObject", "rules", "0", "verbs"],
            json!(["watch"])
        )
    ));
}

fn system_role_patched() -> Value {
    audit("patch", "clusterroles", None, "system:node", json!({}))
}

#[test]
fn system_roles_changed_by_people_match() {
    assert_hit(
        &eval(SYSTEM_ROLE, &system_role_patched()).expect("match"),
        "[mallory@example.com] modified system ClusterRole [system:node]",
        "k8s_system_role_mallory@example.com_system:node",
        Severity::Critical,
    );
    let deleted = audit(
        "delete",
        "roles",
        Some("kube-system"),
        "eks:authenticator",
        json!(null),
    );
    assert_eq!(
        eval(SYSTEM_ROLE, &deleted).expect("match").event.title,
        "[mallory@example.com] deleted system Role [kube-system/eks:authenticator]"
    );
}

#[test]
fn a_system_role_change_one_field_away_does_not_match() {
    let ev = system_role_patched();
    assert!(!matches(SYSTEM_ROLE, &refused(ev.clone())));
    assert!(!matches(SYSTEM_ROLE, &by(ev.clone(), "system:apiserver")));
    assert!(!matches(SYSTEM_ROLE, &verb(ev.clone(), "get")));
    assert!(!matches(
        SYSTEM_ROLE,
        &set(ev.clone(), &["objectRef", "name"], json!("system:coredns"))
    ));
    assert!(!matches(
        SYSTEM_ROLE,
        &set(ev, &["objectRef", "name"], json!("app-reader"))
    ));
}

// ---------------------------------------------------------------- webhooks

fn webhook(resource: &str, rules: Value) -> Value {
    audit(
        "create",
        resource,
        None,
        "hook",
        json!({"webhooks": [{"name": "w.example.com", "clientConfig": {"url": "https://evil.example.net/h"}, "rules": rules}]}),
    )
}

#[test]
fn webhooks_are_high_when_they_see_everything() {
    let narrow = webhook(
        "validatingwebhookconfigurations",
        json!([{"apiGroups": [""], "resources": ["pods"]}]),
    );
    let m = eval(WEBHOOK, &narrow).expect("match");
    assert_hit(
        &m,
        "[mallory@example.com] created Validating admission controller webhook [hook] ",
        "k8s_admission_webhook_mallory@example.com",
        Severity::Medium,
    );
    assert!(m
        .event
        .facts
        .contains(&("webhook_targets", "https://evil.example.net/h".into())));
    let wide = webhook(
        "mutatingwebhookconfigurations",
        json!([{"apiGroups": ["*"], "resources": ["pods"]}]),
    );
    assert_eq!(
        eval(WEBHOOK, &wide).expect("match").severity,
        Severity::High
    );
    // A severity() that raises (null resources) gives MEDIUM.
    let odd = webhook(
        "mutatingwebhookconfigurations",
        json!([{"resources": null, "apiGroups": ["*"]}]),
    );
    assert_eq!(
        eval(WEBHOOK, &odd).expect("match").severity,
        Severity::Medium
    );
}

#[test]
fn a_webhook_one_field_away_does_not_match() {
    let ev = webhook("mutatingwebhookconfigurations", json!([]));
    assert!(matches(WEBHOOK, &ev));
    assert!(!matches(WEBHOOK, &refused(ev.clone())));
    assert!(!matches(WEBHOOK, &by(ev.clone(), "eks:addon-manager")));
    assert!(!matches(WEBHOOK, &verb(ev.clone(), "update")));
    assert!(!matches(
        WEBHOOK,
        &set(
            ev,
            &["objectRef", "resource"],
            json!("validatingadmissionpolicies")
        )
    ));
}

// ---------------------------------------------------------------- credentials

fn csr(spec: Value) -> Value {
    audit(
        "create",
        "certificatesigningrequests",
        None,
        "csr-1",
        json!({"spec": spec}),
    )
}

#[test]
fn client_certificate_requests_match_by_usage_or_signer() {
    let ev = csr(json!({"usages": ["digital signature", "client auth"]}));
    assert_hit(
        &eval(CSR, &ev).expect("match"),
        "[mallory@example.com] created client certificate signing request [csr-1]",
        "k8s_client_cert_mallory@example.com_csr-1",
        Severity::Info,
    );
    assert!(matches(
        CSR,
        &csr(json!({"signerName": "kubernetes.io/kube-apiserver-client"}))
    ));
    assert!(!matches(
        CSR,
        &csr(json!({"signerName": "kubernetes.io/kubelet-serving", "usages": ["server auth"]}))
    ));
    // A spec Python cannot read raises: no match.
    assert!(!matches(CSR, &csr(json!(null))));
    assert!(!matches(
        CSR,
        &csr(json!({"usages": null, "signerName": "kubernetes.io/kube-apiserver-client"}))
    ));
}

#[test]
fn a_client_certificate_request_one_field_away_does_not_match() {
    let ev = csr(json!({"usages": ["client auth"]}));
    assert!(!matches(CSR, &refused(ev.clone())));
    assert!(!matches(CSR, &by(ev.clone(), "system:node:ip-10-0-0-1")));
    assert!(!matches(CSR, &by(ev.clone(), "kubelet-nodepool-bootstrap")));
    assert!(!matches(CSR, &verb(ev.clone(), "get")));
    assert!(!matches(
        CSR,
        &set(
            ev,
            &["requestObject", "spec", "usages"],
            json!(["server auth"])
        )
    ));
}

fn token(namespace: &str) -> Value {
    let ev = audit(
        "create",
        "serviceaccounts",
        Some(namespace),
        "builder",
        json!({"spec": {}}),
    );
    set(ev, &["objectRef", "subresource"], json!("token"))
}

#[test]
fn service_account_tokens_match_unless_the_platform_asks_in_its_namespaces() {
    assert_hit(
        &eval(TOKEN, &token("ci")).expect("match"),
        "[mallory@example.com] created long-lived token for service account [ci/builder]",
        "k8s_token_created_mallory@example.com_ci_builder",
        Severity::Info,
    );
    let platform = by(token("kube-system"), "system:kube-controller-manager");
    assert!(!matches(TOKEN, &platform));
    assert!(matches(
        TOKEN,
        &by(token("ci"), "system:kube-controller-manager")
    ));
    assert!(!matches(TOKEN, &refused(token("ci"))));
    assert!(!matches(
        TOKEN,
        &set(token("ci"), &["objectRef", "subresource"], json!("status"))
    ));
    assert!(!matches(TOKEN, &verb(token("ci"), "get")));
}

// ---------------------------------------------------------------- exposure

fn ingress(spec: Value) -> Value {
    audit(
        "create",
        "ingresses",
        Some("web"),
        "shop",
        json!({"spec": spec}),
    )
}

#[test]
fn ingresses_without_tls_match() {
    let ev = ingress(json!({"rules": [{"host": "shop.example.com"}, {"http": {}}]}));
    let m = eval(INGRESS, &ev).expect("match");
    assert_hit(
        &m,
        "[mallory@example.com] created Ingress [web/shop] without TLS certificate",
        "k8s_ingress_no_tls_web_shop",
        Severity::Medium,
    );
    assert!(m
        .event
        .facts
        .contains(&("ingress_hosts", "shop.example.com".into())));
    assert!(matches(INGRESS, &ingress(json!({"tls": []}))));
    assert!(!matches(
        INGRESS,
        &ingress(json!({"tls": [{"secretName": "shop-tls"}]}))
    ));
}

#[test]
fn an_ingress_one_field_away_does_not_match() {
    let ev = ingress(json!({}));
    assert!(!matches(INGRESS, &refused(ev.clone())));
    assert!(!matches(INGRESS, &by(ev.clone(), "eks:ingress-controller")));
    assert!(!matches(
        INGRESS,
        &set(
            ev.clone(),
            &["objectRef", "namespace"],
            json!("kube-system")
        )
    ));
    assert!(!matches(INGRESS, &verb(ev, "update")));
}

fn service(kind: &str) -> Value {
    audit(
        "create",
        "services",
        Some("web"),
        "shop",
        json!({"spec": {"type": kind, "ports": [{"port": 80}]}}),
    )
}

#[test]
fn nodeport_services_match_whoever_creates_them() {
    let title = "[mallory@example.com] deployed NodePort service [web/shop]";
    assert_hit(
        &eval(NODEPORT, &service("NodePort")).expect("match"),
        title,
        title,
        Severity::High,
    );
    assert!(matches(
        NODEPORT,
        &by(service("NodePort"), "system:serviceaccount:kube-system:x")
    ));
}

#[test]
fn a_nodeport_service_one_field_away_does_not_match() {
    assert!(!matches(NODEPORT, &service("LoadBalancer")));
    assert!(!matches(NODEPORT, &refused(service("NodePort"))));
    assert!(!matches(NODEPORT, &verb(service("NodePort"), "update")));
}

// ---------------------------------------------------------------- hostile input

/// An event that matches the rule.
fn matching(id: &str) -> Value {
    match id {
        CRB => admin_binding(),
        NODE_PROXY => role(
            "clusterroles",
            None,
            json!([{"resources": ["nodes/proxy"], "verbs": ["get"]}]),
        ),
        POD_EXEC => role("roles", Some("dev"), json!([{"resources": ["pods/exec"]}])),
        WRITE => role(
            "roles",
            Some("dev"),
            json!([{"resources": ["secrets"], "verbs": ["create"]}]),
        ),
        SYSTEM_ROLE => system_role_patched(),
        WEBHOOK => webhook(
            "mutatingwebhookconfigurations",
            json!([{"resources": ["*"]}]),
        ),
        CSR => csr(json!({"usages": ["client auth"]})),
        TOKEN => token("ci"),
        INGRESS => ingress(json!({})),
        NODEPORT => service("NodePort"),
        other => panic!("{other}"),
    }
}

#[test]
fn huge_strings_give_bounded_titles_and_keys() {
    let huge = "x".repeat(200 * 1024);
    for id in GROUP {
        let base = matching(id);
        assert!(matches(id, &base), "{id}");
        let mut evs = vec![
            by(base.clone(), &huge),
            set(base.clone(), &["userAgent"], json!(huge)),
            set(base.clone(), &["objectRef", "namespace"], json!(huge)),
        ];
        if id != SYSTEM_ROLE {
            evs.push(set(base.clone(), &["objectRef", "name"], json!(huge)));
        } else {
            evs.push(set(
                base.clone(),
                &["objectRef", "name"],
                json!(format!("system:{huge}")),
            ));
        }
        for ev in evs {
            if let Some(m) = eval(id, &ev) {
                assert!(m.event.title.len() <= 1100, "{id}: {}", m.event.title.len());
                assert!(m.dedup.len() <= 1100, "{id}: {}", m.dedup.len());
                assert!(m.event.facts.iter().all(|(_, v)| v.len() <= 2048), "{id}");
            }
        }
    }
    // A binding with a huge subject list.
    let subjects: Vec<Value> = (0..5000)
        .map(|i| json!({"kind": "User", "name": format!("u{i}")}))
        .collect();
    let ev = set(
        admin_binding(),
        &["requestObject", "subjects"],
        json!(subjects),
    );
    let m = eval(CRB, &ev).expect("match");
    assert!(m.event.title.len() <= 1100);
    let listed = m
        .event
        .facts
        .iter()
        .find(|(k, _)| *k == "subjects")
        .expect("subjects");
    assert_eq!(listed.1.split(", ").count(), 10);
}

/// `requestObject` 200 levels deep.
fn deep() -> Value {
    let mut v = json!({"spec": {"type": "NodePort"}});
    for _ in 0..200 {
        v = json!({"rules": v});
    }
    v
}

#[test]
fn odd_request_bodies_never_panic_and_match_only_where_panther_would() {
    let bodies = [
        json!("NodePort nodes/proxy pods/exec"),
        json!([{"rules": []}]),
        json!(null),
        deep(),
    ];
    for id in GROUP {
        for body in &bodies {
            let ev = set(matching(id), &["requestObject"], body.clone());
            let got = eval(id, &ev);
            match id {
                // These do not read the body to decide.
                SYSTEM_ROLE | TOKEN | WEBHOOK => assert!(got.is_some(), "{id} {body}"),
                // Panther's `deep_get` finds no `spec.tls` in such a body,
                // and an Ingress without TLS is what the rule reports.
                INGRESS => assert!(got.is_some(), "{id} {body}"),
                _ => assert!(got.is_none(), "{id} {body}"),
            }
            if id == WEBHOOK {
                assert_eq!(got.map(|m| m.severity), Some(Severity::Medium));
            }
        }
    }
}

#[test]
fn every_rule_of_the_group_is_registered_and_anchored() {
    for id in GROUP {
        let r = rule(id);
        assert!(r.enabled_by_default(), "{id}");
        assert!(
            matches!(r.anchor(), Anchor::AnyOf(_) | Anchor::AnyOfByPerson(_)),
            "{id}"
        );
    }
}

/// Panther's own EKS tests of the group's rules give Panther's result,
/// title, dedup key and severity (as `tests/panther_catalog.rs` checks for
/// the whole catalog).
#[test]
fn panthers_tests_of_the_group_agree() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/panther/catalog");
    let mut failures = Vec::new();
    let mut checked = 0;
    for id in GROUP {
        let text = std::fs::read_to_string(dir.join(format!("{id}.json"))).expect("fixture");
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        let default = severity_named(doc["severity"].as_str().expect("severity"));
        for test in doc["tests"].as_array().expect("tests") {
            let name = test["name"].as_str().unwrap_or("?");
            let expected = test["expected"].as_bool().expect("expected");
            let got = eval(id, &test["log"]);
            checked += 1;
            if got.is_some() != expected {
                failures.push(format!("{id} / {name}: matched {}", got.is_some()));
                continue;
            }
            let Some(m) = got else { continue };
            let want_severity = test["severity"].as_str().map_or(default, severity_named);
            let want = (
                test["title"].as_str().unwrap_or_default(),
                test["dedup"].as_str().unwrap_or_default(),
                want_severity,
            );
            let got = (m.event.title.as_str(), m.dedup.as_str(), m.severity);
            if got != want {
                failures.push(format!("{id} / {name}:\n  got  {got:?}\n  want {want:?}"));
            }
        }
    }
    assert_eq!(checked, 60, "Panther's EKS tests of the group");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn severity_named(name: &str) -> Severity {
    eks_audit_detector::config::rule_settings::severity_named(name).expect("severity name")
}

#[test]
fn a_slash_written_as_an_escape_does_not_hide_a_pod_exec_role() {
    // JSON may write `pods/exec` as `pods\/exec`; kube-apiserver never
    // does, a request body may. The message stays a candidate for the rule
    // even when no other rule keeps it.
    let others: Vec<String> = registry(&DetectorConfig::default())
        .iter()
        .map(|r| r.meta().id.as_str().to_owned())
        .filter(|id| id != POD_EXEC)
        .collect();
    let detector = Detector::new(DetectorConfig {
        disabled_rules: others,
        ..DetectorConfig::default()
    });
    let prefilter = Prefilter::new(&detector);
    let ev = role(
        "roles",
        Some("default"),
        json!([{"resources": ["pods/exec"], "verbs": ["create"]}]),
    );
    let text = ev.to_string().replace("pods/exec", r"pods\/exec");
    let parsed = AuditEvent::parse(&text).expect("parses");
    let mut out = Vec::new();
    detector.evaluate(
        &parsed,
        EventContext {
            cluster: "c",
            at_ms: 0,
        },
        &mut out,
        |_, _| {},
    );
    assert_eq!(out.len(), 1, "the rule matches the escaped slash");
    assert!(prefilter.may_match(text.as_bytes()));
    let escaped = serde_json::to_string(&text).expect("string");
    assert!(prefilter.may_match(escaped.as_bytes()));
    // control: without the rule's strings it is skipped
    let other = ev.to_string().replace("pods/exec", "pods/log");
    assert!(!prefilter.may_match(other.as_bytes()));
}
