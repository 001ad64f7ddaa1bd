//! The two rules of our own on who can reach the cluster: changes to the
//! `aws-auth` ConfigMap and impersonation, condition by condition on
//! realistic audit events, then through the whole pipeline (title, dedup,
//! summary), and past the prefilter.

mod common;

use common::{event, invoke_body, RecordingSink};
use eks_audit_detector::alert::Alert;
use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::net::CidrList;
use eks_audit_detector::prefilter::Prefilter;
use eks_audit_detector::rules::{aws_auth, impersonation, Detector};
use eks_audit_detector::store::memory::MemoryStore;
use eks_audit_detector::vocab::{EventContext, Match, RuleId, Severity, Verdict};
use serde_json::{json, Value};

const GROUP: &str = "/aws/eks/prod/cluster";
const T0: i64 = 1_715_644_800_000;
const MINUTE: i64 = 60_000;

/// One rule's verdict and matches on one event, default settings.
fn run_rule(id: RuleId, ev: &Value) -> (Verdict, Vec<Match>) {
    run_rule_with(DetectorConfig::default(), id, ev)
}

fn run_rule_with(config: DetectorConfig, id: RuleId, ev: &Value) -> (Verdict, Vec<Match>) {
    let text = ev.to_string();
    let parsed = AuditEvent::parse(&text).expect("event parses");
    let detector = Detector::new(config);
    let mut out = Vec::new();
    let mut verdict = Verdict::NoMatch;
    let ctx = EventContext {
        cluster: "prod",
        at_ms: T0,
    };
    detector.evaluate(&parsed, ctx, &mut out, |rule, v| {
        if rule == id {
            verdict = v;
        }
    });
    out.retain(|m| m.rule == id);
    (verdict, out)
}

/// Alerts published for these (minute offset, event) pairs, in one batch.
fn alerts_for(events: &[(i64, Value)]) -> Vec<Alert> {
    let p = Processor::new(
        Detector::new(DetectorConfig::default()),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    let messages: Vec<(i64, String)> = events
        .iter()
        .map(|(min, ev)| (T0 + min * MINUTE, ev.to_string()))
        .collect();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(p.handle_invoke_body(invoke_body(GROUP, "s1", &messages).as_bytes()))
        .expect("handled");
    p.sink().published()
}

fn of_rule(alerts: Vec<Alert>, id: RuleId) -> Vec<Alert> {
    alerts.into_iter().filter(|a| a.rule_id == id).collect()
}

// ---------------------------------------------------------------- AwsAuthChanged

const AWS_AUTH: RuleId = aws_auth::META.id;
const JANE: &str = "arn:aws:sts::111122223333:assumed-role/PlatformAdmin/jane.doe";

fn aws_auth_patched() -> Value {
    event("aws_auth_patched.json")
}

#[test]
fn an_accepted_aws_auth_patch_alerts_high_naming_cluster_user_and_verb() {
    // GIVEN an IAM-mapped admin patching aws-auth, and the API server agreeing
    let alerts = of_rule(alerts_for(&[(0, aws_auth_patched())]), AWS_AUTH);
    // THEN one HIGH alert that says who, what and where
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.severity, Severity::High);
    assert_eq!(
        a.title,
        format!("[{JANE}] (user) ran [patch] on ConfigMap [kube-system/aws-auth] on [prod]")
    );
    assert_eq!(a.dedup, format!("prod_aws-auth_{JANE}"));
    assert_eq!(a.source_ip, "203.0.113.45");
    assert_eq!(a.mitre, "TA0003:T1098, TA0004:T1098");
    assert_eq!(a.summary["verbs"], json!(["patch"]));
    assert_eq!(
        a.summary["userAgents"],
        json!(["kubectl/v1.30.1 (darwin/arm64) kubernetes/6911225"])
    );
    assert_eq!(a.summary["sourceIPs"], json!(["203.0.113.45"]));
    assert_eq!(a.summary["count"], json!(1));
    assert!(
        a.subject()
            .starts_with("[HIGH] EKS aws-auth ConfigMap changed from 203.0.113.45 on "),
        "{}",
        a.subject()
    );
}

#[test]
fn every_changing_verb_matches_and_reading_does_not() {
    for verb in ["create", "update", "patch", "delete"] {
        let mut ev = aws_auth_patched();
        ev["verb"] = json!(verb);
        assert_eq!(run_rule(AWS_AUTH, &ev).0, Verdict::matched(1), "{verb}");
    }
    for verb in ["get", "list", "watch", "PATCH", "deletecollection"] {
        let mut ev = aws_auth_patched();
        ev["verb"] = json!(verb);
        assert_eq!(run_rule(AWS_AUTH, &ev).0, Verdict::NoMatch, "{verb}");
    }
}

#[test]
fn a_refused_aws_auth_patch_does_not_match() {
    let (v, m) = run_rule(AWS_AUTH, &event("aws_auth_patch_refused.json"));
    assert_eq!(v, Verdict::NoMatch);
    assert!(m.is_empty());
    // nor any other non-2xx answer, or none at all
    for code in [
        json!(409),
        json!(500),
        json!(199),
        json!("200"),
        Value::Null,
    ] {
        let mut ev = aws_auth_patched();
        ev["responseStatus"]["code"] = code.clone();
        assert_eq!(run_rule(AWS_AUTH, &ev).0, Verdict::NoMatch, "{code}");
    }
    let mut ev = aws_auth_patched();
    ev["responseStatus"]["code"] = json!(201);
    assert_eq!(run_rule(AWS_AUTH, &ev).0, Verdict::matched(1));
}

#[test]
fn only_the_kube_system_aws_auth_configmap_matches() {
    assert_eq!(
        run_rule(AWS_AUTH, &event("coredns_configmap_updated.json")).0,
        Verdict::NoMatch
    );
    for (field, value) in [
        ("namespace", json!("default")),
        ("resource", json!("secrets")),
        ("name", json!("AWS-AUTH")),
        ("name", json!("aws-auth-backup")),
        ("subresource", json!("status")),
    ] {
        let mut ev = aws_auth_patched();
        ev["objectRef"][field] = value.clone();
        assert_eq!(
            run_rule(AWS_AUTH, &ev).0,
            Verdict::NoMatch,
            "{field}={value}"
        );
    }
    let mut ev = aws_auth_patched();
    ev.as_object_mut().expect("object").remove("objectRef");
    assert_eq!(run_rule(AWS_AUTH, &ev).0, Verdict::NoMatch);
}

#[test]
fn only_finished_requests_count() {
    for stage in ["RequestReceived", "ResponseStarted", "Panic"] {
        let mut ev = aws_auth_patched();
        ev["stage"] = json!(stage);
        assert_eq!(run_rule(AWS_AUTH, &ev).0, Verdict::NoMatch, "{stage}");
    }
}

#[test]
fn a_change_by_an_eks_system_component_still_alerts_and_says_so() {
    for user in [
        "eks:node-manager",
        "system:serviceaccount:kube-system:eks-node-controller",
    ] {
        let mut ev = aws_auth_patched();
        ev["user"]["username"] = json!(user);
        let alerts = of_rule(alerts_for(&[(0, ev)]), AWS_AUTH);
        assert_eq!(alerts.len(), 1, "{user}");
        assert_eq!(alerts[0].severity, Severity::High);
        assert_eq!(
            alerts[0].title,
            format!("[{user}] (EKS system component) ran [patch] on ConfigMap [kube-system/aws-auth] on [prod]")
        );
    }
}

#[test]
fn one_alert_per_cluster_and_user_per_hour() {
    // GIVEN jane patches, then deletes, then recreates aws-auth within the hour,
    // and another user changes it too
    let mut delete = aws_auth_patched();
    delete["verb"] = json!("delete");
    let mut create = aws_auth_patched();
    create["verb"] = json!("create");
    let mut other = aws_auth_patched();
    other["user"]["username"] = json!("kubernetes-admin");
    let mut next_hour = aws_auth_patched();
    next_hour["auditID"] = json!("next-hour");
    let alerts = of_rule(
        alerts_for(&[
            (0, aws_auth_patched()),
            (5, delete),
            (6, create),
            (10, other),
            (61, next_hour),
        ]),
        AWS_AUTH,
    );
    // THEN jane's first window alerts once, the other user once, and jane's
    // next hour once more
    let mut got: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| (a.window_start.as_str(), a.dedup.as_str()))
        .collect();
    got.sort();
    let got: Vec<&str> = got.into_iter().map(|(_, d)| d).collect();
    assert_eq!(
        got,
        [
            format!("prod_aws-auth_{JANE}").as_str(),
            "prod_aws-auth_kubernetes-admin",
            format!("prod_aws-auth_{JANE}").as_str(),
        ],
        "{alerts:?}"
    );
}

#[test]
fn an_allowlisted_connection_is_not_reported() {
    let config = DetectorConfig {
        allow_source_cidrs: CidrList::parse("203.0.113.0/24").expect("cidr"),
        ..DetectorConfig::default()
    };
    assert_eq!(
        run_rule_with(config.clone(), AWS_AUTH, &aws_auth_patched()).0,
        Verdict::NoMatch
    );
    // a forged allowlisted X-Forwarded-For entry hides nothing
    let mut ev = aws_auth_patched();
    ev["sourceIPs"] = json!(["203.0.113.9", "185.220.101.47"]);
    let (v, m) = run_rule_with(config, AWS_AUTH, &ev);
    assert_eq!(v, Verdict::matched(1));
    assert_eq!(m[0].source_ip, "185.220.101.47");
}

#[test]
fn attacker_chosen_strings_are_capped() {
    // GIVEN a 100 KB user name, user agent and forwarded chain
    let huge = "a".repeat(100_000);
    let mut ev = aws_auth_patched();
    ev["user"]["username"] = json!(huge);
    ev["userAgent"] = json!(huge);
    ev["sourceIPs"] = json!((0..5000)
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
        .chain(std::iter::once("185.220.101.47".to_owned()))
        .collect::<Vec<_>>());
    let (v, m) = run_rule(AWS_AUTH, &ev);
    // THEN the match is bounded and says what it left out
    assert!(
        matches!(v, Verdict::Matched { matches: 1, dropped } if dropped > 0),
        "{v:?}"
    );
    let m = &m[0];
    assert!(m.dedup.len() < 1_000, "{}", m.dedup.len());
    assert!(m.event.title.len() < 1_000, "{}", m.event.title.len());
    assert!(m.event.facts.len() <= 8, "{:?}", m.event.facts.len());
    assert!(m.event.facts.iter().all(|(_, v)| v.len() < 400));
}

// ---------------------------------------------------------------- Impersonation

const IMPERSONATION: RuleId = impersonation::META.id;
const ALEX: &str = "arn:aws:sts::111122223333:assumed-role/SupportEngineer/alex.kim";

fn impersonating_admin() -> Value {
    event("impersonation_admin.json")
}

fn impersonating(user: &str, groups: &[&str]) -> Value {
    let mut ev = impersonating_admin();
    ev["impersonatedUser"] = json!({"username": user, "groups": groups});
    ev
}

#[test]
fn impersonating_system_admin_alerts_high() {
    let alerts = of_rule(alerts_for(&[(0, impersonating_admin())]), IMPERSONATION);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.severity, Severity::High);
    assert_eq!(
        a.title,
        format!("[{ALEX}] acted as [system:admin] (cluster administrator) on [prod] and the API server allowed it")
    );
    assert_eq!(a.dedup, format!("prod_{ALEX}_as_system:admin"));
    assert_eq!(a.mitre, "TA0004:T1078");
    assert_eq!(a.source_ip, "198.51.100.23");
    assert_eq!(
        a.summary["impersonatedGroups"],
        json!(["system:authenticated", "system:masters"])
    );
    assert_eq!(a.summary["verbs"], json!(["list"]));
    assert_eq!(
        a.subject(),
        "[HIGH] EKS impersonation of a cluster admin from 198.51.100.23 on prod"
    );
}

#[test]
fn severity_is_high_only_for_cluster_administrators() {
    for (user, groups, want) in [
        (
            "kubernetes-admin",
            vec!["system:authenticated"],
            Severity::High,
        ),
        ("ops-bot", vec!["system:masters"], Severity::High),
        (
            "dev-readonly",
            vec!["readonly", "system:authenticated"],
            Severity::Medium,
        ),
        ("System:Admin", vec![], Severity::Medium),
    ] {
        let (v, m) = run_rule(IMPERSONATION, &impersonating(user, &groups));
        assert_eq!(v, Verdict::matched(1), "{user}");
        assert_eq!(m[0].severity, want, "{user} {groups:?}");
    }
    let alerts = of_rule(
        alerts_for(&[(0, impersonating("dev-readonly", &["readonly"]))]),
        IMPERSONATION,
    );
    assert_eq!(alerts[0].severity, Severity::Medium);
    assert_eq!(
        alerts[0].title,
        format!("[{ALEX}] acted as [dev-readonly] on [prod] and the API server allowed it")
    );
    assert!(alerts[0]
        .subject()
        .starts_with("[MEDIUM] EKS user impersonation from "));
}

#[test]
fn system_components_impersonating_do_not_match() {
    // Flux's kustomize-controller acting as a tenant's service account
    assert_eq!(
        run_rule(IMPERSONATION, &event("impersonation_by_flux.json")).0,
        Verdict::NoMatch
    );
    for user in ["eks:addon-manager", "system:kube-controller-manager"] {
        let mut ev = impersonating_admin();
        ev["user"]["username"] = json!(user);
        assert_eq!(run_rule(IMPERSONATION, &ev).0, Verdict::NoMatch, "{user}");
    }
    // a prefix elsewhere in the name is not one
    let mut ev = impersonating_admin();
    ev["user"]["username"] = json!("jane-system:admin");
    assert_eq!(run_rule(IMPERSONATION, &ev).0, Verdict::matched(1));
}

#[test]
fn a_refused_impersonated_request_does_not_match() {
    assert_eq!(
        run_rule(IMPERSONATION, &event("impersonation_refused.json")).0,
        Verdict::NoMatch
    );
    let mut ev = impersonating_admin();
    ev["stage"] = json!("ResponseStarted");
    assert_eq!(run_rule(IMPERSONATION, &ev).0, Verdict::NoMatch);
}

#[test]
fn requests_without_impersonation_do_not_match() {
    for name in [
        "aws_auth_patched.json",
        "forbidden_public.json",
        "kubelet_lease_update.json",
        "anonymous_pod_list_allowed.json",
    ] {
        assert_eq!(
            run_rule(IMPERSONATION, &event(name)).0,
            Verdict::NoMatch,
            "{name}"
        );
    }
}

#[test]
fn one_alert_per_user_and_identity_acted_as_per_hour() {
    let alerts = of_rule(
        alerts_for(&[
            (0, impersonating_admin()),
            (3, impersonating_admin()),
            (4, impersonating("dev-readonly", &["readonly"])),
            (30, impersonating_admin()),
        ]),
        IMPERSONATION,
    );
    let mut got: Vec<(&str, Severity, u64)> = alerts
        .iter()
        .map(|a| (a.dedup.as_str(), a.severity, a.event_count))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                format!("prod_{ALEX}_as_dev-readonly").as_str(),
                Severity::Medium,
                1
            ),
            (
                format!("prod_{ALEX}_as_system:admin").as_str(),
                Severity::High,
                1
            ),
        ]
    );
}

#[test]
fn impersonation_strings_are_capped_and_masters_is_always_shown() {
    // GIVEN a huge identity acted as, with system:masters after 1,000 groups
    let huge = "x".repeat(100_000);
    let mut groups: Vec<String> = (0..1000).map(|i| format!("g{i}")).collect();
    groups.push("system:masters".into());
    groups.push("last".into());
    let mut ev = impersonating_admin();
    ev["impersonatedUser"] = json!({"username": huge, "groups": groups});
    let (v, m) = run_rule(IMPERSONATION, &ev);
    assert!(
        matches!(v, Verdict::Matched { matches: 1, dropped } if dropped > 0),
        "{v:?}"
    );
    let m = &m[0];
    assert_eq!(m.severity, Severity::High);
    assert!(m.dedup.len() < 1_000 && m.event.title.len() < 1_000);
    assert!(m.event.facts.iter().all(|(_, v)| v.len() < 400));
    assert!(m
        .event
        .facts
        .iter()
        .any(|(f, v)| *f == "impersonatedUser.groups{}" && v == "system:masters"));
    assert!(m.event.facts.len() <= 16, "{}", m.event.facts.len());
}

// ---------------------------------------------------------------- prefilter

#[test]
fn the_prefilter_keeps_every_match_of_the_new_rules_escaped_or_not() {
    let detector = Detector::new(DetectorConfig::default());
    let p = Prefilter::new(&detector);
    let mut matching = vec![
        aws_auth_patched().to_string(),
        impersonating_admin().to_string(),
        impersonating("dev-readonly", &[]).to_string(),
    ];
    // kube-apiserver never escapes a hyphen or a letter, but JSON may
    matching.push(
        aws_auth_patched()
            .to_string()
            .replace("\"name\":\"aws-auth\"", "\"name\":\"aws\\u002dauth\""),
    );
    matching.push(
        impersonating_admin()
            .to_string()
            .replace("\"impersonatedUser\"", "\"\\u0069mpersonatedUser\""),
    );
    for msg in &matching {
        let ev = AuditEvent::parse(msg).expect("parses");
        let mut out = Vec::new();
        detector.evaluate(
            &ev,
            EventContext {
                cluster: "c",
                at_ms: 0,
            },
            &mut out,
            |_, _| {},
        );
        assert!(
            out.iter()
                .any(|m| m.rule == AWS_AUTH || m.rule == IMPERSONATION),
            "{msg}"
        );
        assert!(p.may_match(msg.as_bytes()), "{msg}");
        let escaped = serde_json::to_string(msg).expect("string");
        assert!(p.may_match(escaped.as_bytes()), "{escaped}");
    }
    // and it still drops an unrelated ConfigMap update
    assert!(!p.may_match(
        event("coredns_configmap_updated.json")
            .to_string()
            .as_bytes()
    ));
}
