//! The `access` group of Panther's catalog beyond Panther's own tests: per
//! rule, a match and a near miss that differs from it in one field; the
//! address options that replace Panther's enrichment; and hostile input
//! (huge strings, odd request bodies).

use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::net::CidrList;
use eks_audit_detector::rules::{check_rules, registry, Anchor};
use eks_audit_detector::vocab::{EventContext, Match, Severity, Verdict};
use serde_json::{json, Value};

const EKS_ANON: &str = "Amazon.EKS.AnonymousAPIAccess";
const SYS_NS: &str = "Amazon.EKS.Audit.SystemNamespaceFromPublicIP";
const K8S_ANON: &str = "Kubernetes.API.AnonymousAccess";
const IOC: &str = "Kubernetes.API.IOC.Activity";
const M403: &str = "Kubernetes.API.Multiple403.PublicIP";
const DENIED: &str = "Kubernetes.Secret.AccessDenied";
const BULK: &str = "Kubernetes.BulkSecretAccess";
const DUMP: &str = "Kubernetes.Secrets.DumpAllNamespaces";
const SYS_PRIN: &str = "Kubernetes.System.Principal.PublicIP";

const ALL: [&str; 9] = [
    EKS_ANON, SYS_NS, K8S_ANON, IOC, M403, DENIED, BULK, DUMP, SYS_PRIN,
];

/// Settings from a `RULE_SETTINGS` document.
fn settings(doc: Value) -> DetectorConfig {
    let text = doc.to_string();
    let config = DetectorConfig::from_lookup(|k| (k == "RULE_SETTINGS").then(|| text.clone()))
        .expect("valid settings");
    check_rules(&config).expect("known rules and options");
    config
}

/// The rule's match on `ev`, if any.
fn run_with(config: &DetectorConfig, id: &str, ev: &Value) -> Option<Match> {
    let text = ev.to_string();
    let parsed = AuditEvent::parse(&text).expect("event parses");
    let rules = registry(config);
    let rule = rules
        .iter()
        .find(|r| r.meta().id.as_str() == id)
        .expect("registered");
    let ctx = EventContext {
        cluster: "prod",
        at_ms: 0,
    };
    let mut out = Vec::new();
    match rule.evaluate(&parsed, ctx, &CidrList::default(), &mut out) {
        Verdict::Matched { .. } => Some(out.remove(0)),
        _ => {
            assert!(out.is_empty());
            None
        }
    }
}

fn run(id: &str, ev: &Value) -> Option<Match> {
    run_with(&DetectorConfig::default(), id, ev)
}

/// `ev` with `path` (dot-separated) set to `value`.
fn with(ev: &Value, path: &str, value: Value) -> Value {
    let mut out = ev.clone();
    let mut at = &mut out;
    let keys: Vec<&str> = path.split('.').collect();
    for k in &keys[..keys.len() - 1] {
        at = &mut at[*k];
    }
    at[keys[keys.len() - 1]] = value;
    out
}

/// An audit event with the given parts.
#[allow(clippy::too_many_arguments)]
fn event(
    user: &str,
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
    uri: &str,
    code: i64,
    ips: &[&str],
) -> Value {
    let mut object_ref = json!({ "resource": resource, "apiVersion": "v1" });
    if let Some(ns) = namespace {
        object_ref["namespace"] = json!(ns);
    }
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "stage": "ResponseComplete",
        "user": { "username": user, "groups": ["system:authenticated"] },
        "verb": verb,
        "objectRef": object_ref,
        "requestURI": uri,
        "responseStatus": { "code": code },
        "sourceIPs": ips,
        "userAgent": "kubectl/v1.30.0",
        "annotations": { "authorization.k8s.io/decision": if code == 403 { "forbid" } else { "allow" } },
    })
}

// ---- Amazon.EKS.AnonymousAPIAccess ----

#[test]
fn eks_anonymous_access_and_its_near_misses() {
    let base = event(
        "system:anonymous",
        "get",
        "pods",
        Some("default"),
        "/api/v1/namespaces/default/pods",
        200,
        &["203.0.114.9"],
    );
    let m = run(EKS_ANON, &base).expect("anonymous pod listing");
    assert_eq!(
        m.event.title,
        "Anonymous API access detected on Kubernetes API server from [203.0.114.9] to \
         [/api/v1/namespaces/default/pods] on [prod]"
    );
    assert_eq!(m.dedup, "anonymous_access_prod_kubectl/v1.30.0");
    assert_eq!(m.severity, Severity::Low);
    // Another user.
    assert!(run(EKS_ANON, &with(&base, "user.username", json!("alice"))).is_none());
    // The load balancer from a private address; from the shared address
    // space (100.64/10), which CPython does not call private, it is reported.
    let elb = with(&base, "userAgent", json!("ELB-HealthChecker/2.0"));
    for (ip, private) in [
        ("10.1.2.3", true),
        ("172.16.0.1", true),
        ("192.168.1.1", true),
        ("fd00::1", true),
        ("::ffff:10.0.0.1", true),
        ("100.64.0.1", false),
        ("::ffff:100.64.0.1", false),
        ("8.8.8.8", false),
        ("not-an-ip", false),
    ] {
        let ev = with(&elb, "sourceIPs", json!([ip]));
        assert_eq!(run(EKS_ANON, &ev).is_none(), private, "{ip}");
    }
    // Python raises on an empty list there: no match.
    assert!(run(EKS_ANON, &with(&elb, "sourceIPs", json!([]))).is_none());
    // An empty list elsewhere: the title fails, Panther uses the name.
    let m = run(EKS_ANON, &with(&base, "sourceIPs", json!([]))).expect("match");
    assert_eq!(m.event.title, "EKS Anonymous API Access Detected");
    // A refused one is grouped at INFO.
    let m = run(
        EKS_ANON,
        &with(
            &base,
            "annotations",
            json!({"authorization.k8s.io/decision": "forbid"}),
        ),
    )
    .expect("refused anonymous request");
    assert_eq!(m.severity, Severity::Info);
    assert_eq!(m.dedup, "no dedup");
}

// ---- Amazon.EKS.Audit.SystemNamespaceFromPublicIP ----

#[test]
fn system_namespace_from_public_ip_and_its_near_misses() {
    let base = event(
        "system:serviceaccount:default:app",
        "get",
        "configmaps",
        Some("default"),
        "/api/v1/namespaces/default/configmaps/x",
        200,
        &["5.5.5.5"],
    );
    let m = run(SYS_NS, &base).expect("system identity from a public address");
    assert_eq!(
        m.event.title,
        "[system:serviceaccount:default:app] executed [get] for resource [configmaps] in ns \
         [default] on [prod] from [5.5.5.5]"
    );
    assert_eq!(m.dedup, "prod_eks_system_namespace_5.5.5.5");
    // Not the final stage.
    assert!(run(SYS_NS, &with(&base, "stage", json!("ResponseStarted"))).is_none());
    // A private address.
    assert!(run(SYS_NS, &with(&base, "sourceIPs", json!(["10.0.0.5"]))).is_none());
    // EKS's own manager.
    assert!(run(
        SYS_NS,
        &with(&base, "user.username", json!("eks:addon-manager"))
    )
    .is_none());
}

/// A node from a trusted address is spared; a forged `X-Forwarded-For`
/// entry naming one does not spare an outside connection.
#[test]
fn trusted_cidrs_spare_nodes_only_when_every_address_is_trusted() {
    let node = with(
        &event(
            "system:node:ip-10-0-0-1.ec2.internal",
            "create",
            "serviceaccounts",
            Some("kube-system"),
            "/api/v1/namespaces/kube-system/serviceaccounts/kube-proxy/token",
            201,
            &["54.212.83.236"],
        ),
        "user.groups",
        json!(["system:nodes", "system:authenticated"]),
    );
    let forged = with(&node, "sourceIPs", json!(["54.212.83.236", "1.2.3.4"]));
    for id in [SYS_NS, SYS_PRIN] {
        assert!(run(id, &node).is_some(), "{id}: no list, reported");
        let config = settings(json!({ id: { "trusted_cidrs": "54.212.0.0/16" } }));
        assert!(run_with(&config, id, &node).is_none(), "{id}: trusted");
        assert!(run_with(&config, id, &forged).is_some(), "{id}: forged");
        // Only nodes are spared.
        let pod = with(
            &node,
            "user.username",
            json!("system:serviceaccount:default:app"),
        );
        assert!(run_with(&config, id, &pod).is_some(), "{id}: not a node");
    }
}

// ---- Kubernetes.API.AnonymousAccess ----

#[test]
fn k8s_anonymous_access_and_its_near_misses() {
    let base = event(
        "system:anonymous",
        "get",
        "secrets",
        Some("default"),
        "/api/v1/namespaces/default/secrets",
        200,
        &["203.0.114.9"],
    );
    let m = run(K8S_ANON, &base).expect("anonymous request");
    assert_eq!(
        m.event.title,
        "Anonymous API access detected on Kubernetes API server from [203.0.114.9] to \
         [/api/v1/namespaces/default/secrets]"
    );
    assert_eq!(m.dedup, "anonymous_access_kubectl/v1.30.0");
    // A health endpoint.
    assert!(run(K8S_ANON, &with(&base, "requestURI", json!("/livez"))).is_none());
    // A kubelet probe.
    assert!(run(
        K8S_ANON,
        &with(&base, "userAgent", json!("kube-probe/1.30"))
    )
    .is_none());
    // Annotations that are not a mapping: Python's title fails.
    let m = run(K8S_ANON, &with(&base, "annotations", json!(["x"]))).expect("match");
    assert_eq!(m.event.title, "Kubernetes Anonymous API Access Detected");
}

// ---- Kubernetes.API.IOC.Activity ----

#[test]
fn ioc_activity_needs_its_list() {
    let base = event(
        "alice@example.com",
        "list",
        "pods",
        Some("default"),
        "/api/v1/namespaces/default/pods",
        200,
        &["10.0.0.1", "198.51.100.7"],
    );
    // No list: nothing is hostile, and the prefilter is asked for nothing.
    assert!(run(IOC, &base).is_none());
    let find_anchor = |config: &DetectorConfig| {
        registry(config)
            .iter()
            .find(|r| r.meta().id.as_str() == IOC)
            .expect("registered")
            .anchor()
    };
    assert_eq!(find_anchor(&DetectorConfig::default()), Anchor::AnyOf(&[]));
    let config = settings(json!({ IOC: { "ioc_cidrs": "198.51.100.0/24" } }));
    assert_eq!(find_anchor(&config), Anchor::Always);
    let m = run_with(&config, IOC, &base).expect("a listed address");
    assert_eq!(
        m.event.title,
        "Kubernetes API activity from Tor exit node [198.51.100.7] by user [alice@example.com]"
    );
    assert_eq!(m.dedup, "k8s_tor_198.51.100.7");
    assert_eq!(m.severity, Severity::Medium);
    // An address off the list.
    let other = with(&base, "sourceIPs", json!(["203.0.113.1"]));
    assert!(run_with(&config, IOC, &other).is_none());
    // A list that is not addresses is refused at start-up.
    let bad = json!({ IOC: { "ioc_cidrs": "tor-exit-nodes" } }).to_string();
    let config = DetectorConfig::from_lookup(|k| (k == "RULE_SETTINGS").then(|| bad.clone()))
        .expect("parses");
    assert!(check_rules(&config).is_err());
}

// ---- Kubernetes.API.Multiple403.PublicIP ----

#[test]
fn multiple_403_public_ip_and_its_near_misses() {
    let base = event(
        "alice",
        "get",
        "secrets",
        Some("default"),
        "/api/v1/namespaces/default/secrets",
        403,
        &["5.5.5.5"],
    );
    let m = run(M403, &base).expect("refused from a public address");
    assert_eq!(
        m.event.title,
        "Multiple 403 responses from public IP [5.5.5.5]"
    );
    assert_eq!(m.dedup, "k8s_403_5.5.5.5");
    // Another code (gRPC's 7 included: EKS never writes it).
    assert!(run(M403, &with(&base, "responseStatus.code", json!(401))).is_none());
    assert!(run(M403, &with(&base, "responseStatus.code", json!(7))).is_none());
    // A private first address.
    assert!(run(
        M403,
        &with(&base, "sourceIPs", json!(["10.0.0.1", "5.5.5.5"]))
    )
    .is_none());
}

// ---- Kubernetes.Secret.AccessDenied ----

#[test]
fn secret_access_denied_and_its_near_misses() {
    let base = with(
        &event(
            "alice",
            "get",
            "secrets",
            Some("production"),
            "/api/v1/namespaces/production/secrets/db",
            403,
            &["10.0.0.1"],
        ),
        "objectRef.name",
        json!("db"),
    );
    let m = run(DENIED, &base).expect("refused secret read");
    assert_eq!(
        m.event.title,
        "[alice] failed secret enumeration attempt in [production/db] (response: 403)"
    );
    assert_eq!(m.dedup, "k8s_secret_denied_alice_production");
    // A system namespace.
    assert!(run(
        DENIED,
        &with(&base, "objectRef.namespace", json!("kube-system"))
    )
    .is_none());
    // Allowed.
    assert!(run(DENIED, &with(&base, "responseStatus.code", json!(200))).is_none());
    // A system identity.
    let sys = with(
        &base,
        "user.username",
        json!("system:kube-controller-manager"),
    );
    assert!(run(DENIED, &sys).is_none());
}

// ---- Kubernetes.BulkSecretAccess ----

#[test]
fn bulk_secret_access_counts_distinct_secrets() {
    let base = event(
        "alice",
        "list",
        "secrets",
        Some("production"),
        "/api/v1/namespaces/production/secrets",
        200,
        &["10.0.0.1"],
    );
    let m = run(BULK, &base).expect("secret listing");
    assert_eq!(m.event.title, "Kubernetes Secret Enumeration by [alice]");
    assert_eq!(m.dedup, "alice");
    assert_eq!(m.severity, Severity::High);
    // The distinct value is kept (as a hash) for the window to count.
    assert_eq!(m.facts.len(), 1);
    let other_ns = run(BULK, &with(&base, "objectRef.namespace", json!("staging"))).expect("m");
    assert_ne!(m.facts, other_ns.facts);
    // Refused: the default severity.
    let refused = run(BULK, &with(&base, "responseStatus.code", json!(403))).expect("match");
    assert_eq!(refused.severity, Severity::Medium);
    // A write.
    assert!(run(BULK, &with(&base, "verb", json!("delete"))).is_none());
    // A system identity.
    let sys = with(&base, "user.username", json!("system:kube-scheduler"));
    assert!(run(BULK, &sys).is_none());
    // Off by default, as in Panther.
    let rules = registry(&DetectorConfig::default());
    let rule = rules.iter().find(|r| r.meta().id.as_str() == BULK);
    assert!(!rule.expect("registered").enabled_by_default());
}

// ---- Kubernetes.Secrets.DumpAllNamespaces ----

#[test]
fn secrets_dump_and_its_near_misses() {
    let base = event(
        "alice",
        "list",
        "secrets",
        None,
        "/api/v1/secrets?limit=500",
        200,
        &["10.0.0.1"],
    );
    let m = run(DUMP, &base).expect("cluster-wide secret list");
    assert_eq!(
        m.event.title,
        "[alice] dumped all secrets across all namespaces (URI: /api/v1/secrets?limit=500)"
    );
    assert_eq!(m.dedup, "k8s_secrets_dump_alice");
    assert_eq!(m.severity, Severity::Critical);
    // One namespace.
    let ns = with(
        &base,
        "requestURI",
        json!("/api/v1/namespaces/default/secrets"),
    );
    assert!(run(DUMP, &ns).is_none());
    // A listed component.
    let ksm = with(
        &base,
        "user.username",
        json!("system:serviceaccount:kube-system:kube-state-metrics"),
    );
    assert!(run(DUMP, &ksm).is_none());
    // Refused.
    assert!(run(DUMP, &with(&base, "responseStatus.code", json!(403))).is_none());
}

// ---- Kubernetes.System.Principal.PublicIP ----

#[test]
fn system_principal_public_ip_and_its_near_misses() {
    let base = event(
        "system:serviceaccount:default:app",
        "list",
        "secrets",
        None,
        "/api/v1/secrets",
        200,
        &["1.2.3.4"],
    );
    let m = run(SYS_PRIN, &base).expect("service account from a public address");
    assert_eq!(
        m.event.title,
        "System principal [system:serviceaccount:default:app] executed [list] for resource \
         [secrets] (cluster-scoped) from non-cloud public IP [1.2.3.4]"
    );
    assert_eq!(m.dedup, "k8s_system_principal_1.2.3.4");
    // One private address among them.
    let mixed = with(&base, "sourceIPs", json!(["1.2.3.4", "10.0.0.5"]));
    assert!(run(SYS_PRIN, &mixed).is_none());
    // Not a real principal.
    let anon = with(&base, "user.username", json!("system:anonymous"));
    assert!(run(SYS_PRIN, &anon).is_none());
    // Not the final stage; no stage at all is fine.
    assert!(run(SYS_PRIN, &with(&base, "stage", json!("ResponseStarted"))).is_none());
    assert!(run(SYS_PRIN, &with(&base, "stage", json!(""))).is_some());
}

// ---- Hostile input ----

/// 200 KB usernames, names, user agents and paths: titles stay short,
/// nothing panics.
#[test]
fn huge_strings_give_short_titles() {
    let huge = "x".repeat(200 * 1024);
    let config = settings(json!({ IOC: { "ioc_cidrs": "1.2.3.4" } }));
    let base = |user: &str| {
        let mut ev = event(
            user,
            "list",
            "secrets",
            None,
            "/api/v1/secrets",
            200,
            &["1.2.3.4"],
        );
        ev["objectRef"]["name"] = json!(huge);
        ev["userAgent"] = json!(huge);
        ev
    };
    let events = [
        base(&format!("system:serviceaccount:default:{huge}")),
        base(&huge),
        base("system:anonymous"),
        with(
            &base(&huge),
            "requestURI",
            json!(format!("/api/v1/secrets?{huge}")),
        ),
        with(&base(&huge), "responseStatus.code", json!(403)),
        with(
            &with(&base(&huge), "verb", json!("get")),
            "responseStatus.code",
            json!(403),
        ),
        with(&base(&huge), "sourceIPs", json!([huge])),
    ];
    let mut matched = 0;
    for ev in &events {
        for id in ALL {
            if let Some(m) = run_with(&config, id, ev) {
                matched += 1;
                assert!(m.event.title.len() <= 1100, "{id}: {}", m.event.title.len());
                assert!(m.dedup.len() <= 1100, "{id}: {}", m.dedup.len());
            }
        }
    }
    assert!(matched >= 10, "only {matched} matches");
}

/// Request bodies that are a string, a list, `null` or 200 levels deep:
/// no rule of the group reads them, nothing matches, nothing panics.
#[test]
fn odd_request_objects_match_nothing() {
    let mut deep = json!({});
    for _ in 0..200 {
        deep = json!({ "spec": deep });
    }
    let config = settings(json!({ IOC: { "ioc_cidrs": "203.0.113.0/24" } }));
    for body in [json!("a string"), json!([1, 2, 3]), Value::Null, deep] {
        let mut ev = event(
            "alice",
            "create",
            "pods",
            Some("default"),
            "/api/v1/namespaces/default/pods",
            201,
            &["10.0.0.1"],
        );
        ev["requestObject"] = body;
        let text = ev.to_string();
        // The parser may refuse a body nested past its limit: then no
        // rule sees the event at all.
        let Ok(parsed) = AuditEvent::parse(&text) else {
            continue;
        };
        let _ = parsed.request_object();
        for id in ALL {
            assert!(run_with(&config, id, &ev).is_none(), "{id}");
        }
    }
}

/// A cluster-wide dump is reported whether it is a list or a watch, and a
/// query string naming `/namespaces/` does not hide it.
#[test]
fn secrets_dumped_by_watch_or_behind_a_query_are_reported() {
    use eks_audit_detector::audit::AuditEvent;
    use eks_audit_detector::config::DetectorConfig;
    use eks_audit_detector::net::CidrList;
    use eks_audit_detector::rules::registry;
    use eks_audit_detector::vocab::{EventContext, Verdict};
    let rules = registry(&DetectorConfig::default());
    let rule = rules
        .iter()
        .find(|r| r.meta().id.as_str() == "Kubernetes.Secrets.DumpAllNamespaces")
        .expect("registered");
    let run = |verb: &str, uri: &str| {
        let ev = serde_json::json!({"verb": verb, "requestURI": uri,
            "user": {"username": "mallory"}, "sourceIPs": ["52.94.76.10"],
            "objectRef": {"resource": "secrets"}, "responseStatus": {"code": 200}})
        .to_string();
        let ev = AuditEvent::parse(&ev).expect("parses");
        let mut out = Vec::new();
        let ctx = EventContext {
            cluster: "c",
            at_ms: 0,
        };
        matches!(
            rule.evaluate(&ev, ctx, &CidrList::default(), &mut out),
            Verdict::Matched { .. }
        )
    };
    assert!(run("watch", "/api/v1/secrets?watch=true"));
    assert!(run("list", "/api/v1/secrets?x=/namespaces/"));
    assert!(!run("list", "/api/v1/namespaces/prod/secrets"));
    assert!(!run("get", "/api/v1/secrets"));
}
