//! Both rules, condition by condition, on realistic audit events; Panther's
//! own test cases; and the reference corpus verdicts.

mod common;

use std::collections::BTreeSet;

use common::{event, fixture, run, run_with};
use eks_audit_detector::config::{DetectorConfig, PodScanMatch};
use eks_audit_detector::decode::{extract_data, inflate, Batch};
use eks_audit_detector::net::CidrList;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::scan::{ScanStats, Scanner};
use eks_audit_detector::vocab::{RuleId, Severity, Verdict};
use serde_json::{json, Value};

// ---------------------------------------------------------------- Panther cases

#[test]
fn panther_test_cases_give_panthers_expected_results() {
    for case in [
        "not_403.json",
        "403_and_private_ip.json",
        "403_and_public_ip.json",
    ] {
        let doc: Value = serde_json::from_str(&fixture(&format!("panther/{case}"))).expect("JSON");
        let expected = doc["expected"].as_bool().expect("expected is a bool");
        let (a, _, _) = run(&doc["log"], "example-cluster-eks-logs");
        assert_eq!(a == Verdict::matched(1), expected, "{}", doc["name"]);
    }
}

#[test]
fn panther_public_ip_case_has_panthers_title_and_dedup() {
    let doc: Value =
        serde_json::from_str(&fixture("panther/403_and_public_ip.json")).expect("JSON");
    let (_, _, matches) = run(&doc["log"], "example-cluster-eks-logs");
    assert_eq!(matches.len(), 1);
    let m = &matches[0];
    assert_eq!(m.dedup, "example-cluster-eks-logs_403_5.5.5.5");
    assert_eq!(
        m.event.title,
        "[5.5.5.5] received [403] when executing [watch] for resource [endpointslices] in ns \
         [<NO_OBJECT_NAMESPACE>] on [example-cluster-eks-logs] as [system:serviceaccount:kube-system:coredns]"
    );
    assert_eq!(m.severity, Severity::Info);
}

// ---------------------------------------------------------------- Multiple403

fn forbidden() -> Value {
    event("forbidden_public.json")
}

fn a_verdict(ev: &Value) -> Verdict {
    run(ev, "prod").0
}

#[test]
fn multiple403_matches_a_refused_api_call_from_a_public_ip() {
    let (a, b, matches) = run(&forbidden(), "prod");
    assert_eq!(a, Verdict::matched(1));
    assert_eq!(b, Verdict::NoMatch);
    assert_eq!(matches[0].dedup, "prod_403_185.220.101.47");
    assert_eq!(
        matches[0].event.title,
        "[185.220.101.47] received [403] when executing [list] for resource [secrets] in ns [kube-system] \
         on [prod] as [system:serviceaccount:default:default]"
    );
    assert_eq!(
        matches[0].event.sample.request_uri.as_deref(),
        Some("/api/v1/namespaces/kube-system/secrets?limit=500&resourceVersion=0")
    );
}

#[test]
fn multiple403_needs_response_complete() {
    for stage in [
        "ResponseStarted",
        "RequestReceived",
        "Panic",
        "responsecomplete",
    ] {
        let mut ev = forbidden();
        ev["stage"] = json!(stage);
        assert_eq!(a_verdict(&ev), Verdict::NoMatch, "{stage}");
    }
    let mut ev = forbidden();
    ev.as_object_mut().expect("object").remove("stage");
    assert_eq!(a_verdict(&ev), Verdict::NoMatch);
}

#[test]
fn multiple403_needs_integer_403() {
    for code in [
        json!(401),
        json!(404),
        json!(200),
        json!("403"),
        json!(403.5),
        json!(null),
    ] {
        let mut ev = forbidden();
        ev["responseStatus"]["code"] = code.clone();
        assert_eq!(a_verdict(&ev), Verdict::NoMatch, "{code}");
    }
    let mut ev = forbidden();
    ev.as_object_mut().expect("object").remove("responseStatus");
    assert_eq!(a_verdict(&ev), Verdict::NoMatch);
}

#[test]
fn multiple403_needs_an_api_path() {
    for (uri, expected) in [
        ("/apis/apps/v1/deployments", Verdict::matched(1)),
        ("/api/", Verdict::matched(1)),
        ("/api", Verdict::NoMatch),
        ("/apis", Verdict::NoMatch),
        ("/healthz", Verdict::NoMatch),
        ("/.env", Verdict::NoMatch),
        ("/apiv1/pods", Verdict::NoMatch),
        ("/API/v1/pods", Verdict::NoMatch),
        ("api/v1/pods", Verdict::NoMatch),
    ] {
        let mut ev = forbidden();
        ev["requestURI"] = json!(uri);
        assert_eq!(a_verdict(&ev), expected, "{uri}");
    }
}

#[test]
fn multiple403_needs_a_global_first_source_ip() {
    for (ips, expected) in [
        (json!(["10.0.27.115"]), Verdict::NoMatch),
        (json!(["100.64.3.7"]), Verdict::NoMatch),
        (json!(["192.0.2.10"]), Verdict::NoMatch),
        (json!(["fd00::1"]), Verdict::NoMatch),
        (json!(["2a03:b0c0:1d73::1"]), Verdict::matched(1)),
        (json!(["::ffff:5.5.5.5"]), Verdict::matched(1)),
        // X-Forwarded-For: only the first entry counts.
        (json!(["5.5.5.5", "10.0.0.1"]), Verdict::matched(1)),
        (json!(["10.0.0.1", "5.5.5.5"]), Verdict::NoMatch),
    ] {
        let mut ev = forbidden();
        ev["sourceIPs"] = ips.clone();
        assert_eq!(a_verdict(&ev), expected, "{ips}");
    }
}

#[test]
fn multiple403_hardened_source_keys_a_forged_private_first_entry_on_the_connection() {
    let hardened = DetectorConfig {
        multiple_403_source: eks_audit_detector::config::SourceAddress::FirstOrLast,
        ..DetectorConfig::default()
    };
    for (ips, expected) in [
        // a private first entry no longer hides a public connection...
        (json!(["10.0.0.1", "5.5.5.5"]), Some("prod_403_5.5.5.5")),
        // ...while Panther's matches are kept as they were
        (json!(["5.5.5.5", "10.0.0.1"]), Some("prod_403_5.5.5.5")),
        (json!(["6.6.6.6", "5.5.5.5"]), Some("prod_403_6.6.6.6")),
        // and private traffic stays out
        (json!(["10.0.0.1", "10.0.0.2"]), None),
        (json!(["10.0.0.1"]), None),
    ] {
        let mut ev = forbidden();
        ev["sourceIPs"] = ips.clone();
        let (_, _, matches) = run_with(hardened.clone(), &ev, "prod");
        assert_eq!(matches.first().map(|m| m.dedup.as_str()), expected, "{ips}");
    }
    // the allowlist applies to the address keyed on
    let allowed = DetectorConfig {
        allow_source_cidrs: CidrList::parse("5.5.5.0/24").expect("cidr"),
        ..hardened
    };
    let mut ev = forbidden();
    ev["sourceIPs"] = json!(["10.0.0.1", "5.5.5.5"]);
    assert!(run_with(allowed, &ev, "prod").2.is_empty());
}

#[test]
fn pod_scan_fan_out_is_bounded_per_event_and_counted() {
    let mut ev = refused();
    let ips: Vec<String> = (1..=50).map(|i| format!("203.0.113.{i}")).collect();
    ev["sourceIPs"] = json!(ips);
    ev["user"]["groups"] = json!(["g1", "g2", "g3", "g4", "g5", "g6"]);
    let (_, b, matches) = run(&ev, "prod");
    // 3 first addresses + the last, times 3 first groups + the last
    assert_eq!(
        b,
        Verdict::Matched {
            matches: 16,
            dropped: 46 + 2
        }
    );
    let mut ips: Vec<&str> = matches.iter().map(|m| m.source_ip.as_str()).collect();
    ips.dedup();
    assert_eq!(
        ips,
        ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.50"]
    );
    // a long chain of one repeated address is one key, nothing dropped
    ev["sourceIPs"] = json!(vec!["203.0.113.9"; 5000]);
    ev["user"]["groups"] = json!(["system:unauthenticated"]);
    assert_eq!(run(&ev, "prod").1, Verdict::matched(1));
}

#[test]
fn multiple403_missing_source_ips_is_no_match_but_unusable_ones_are_rule_errors() {
    let mut ev = forbidden();
    ev.as_object_mut().expect("object").remove("sourceIPs");
    assert_eq!(a_verdict(&ev), Verdict::NoMatch);
    for ips in [
        json!([]),
        json!(null),
        json!(["not-an-ip"]),
        json!(["1.2.3.4:443"]),
        json!([""]),
        json!([5]),
    ] {
        let mut ev = forbidden();
        ev["sourceIPs"] = ips.clone();
        assert_eq!(a_verdict(&ev), Verdict::RuleError, "{ips}");
    }
}

#[test]
fn multiple403_title_uses_panther_placeholders() {
    let mut ev = forbidden();
    ev.as_object_mut().expect("object").remove("objectRef");
    ev.as_object_mut().expect("object").remove("verb");
    ev["user"] = json!({});
    let (_, _, m) = run(&ev, "prod");
    assert_eq!(
        m[0].event.title,
        "[185.220.101.47] received [403] when executing [<NO_VERB>] for resource [<NO_OBJECT_RESOURCE>] in ns \
         [<NO_OBJECT_NAMESPACE>] on [prod] as [<NO_USERNAME>]"
    );
    let mut ev = forbidden();
    ev["objectRef"]["subresource"] = json!("exec");
    let (_, _, m) = run(&ev, "prod");
    assert!(
        m[0].event.title.contains("for resource [secrets/exec]"),
        "{}",
        m[0].event.title
    );
}

#[test]
fn allowlisted_source_never_matches() {
    let cfg = DetectorConfig {
        allow_source_cidrs: CidrList::parse("185.220.101.0/24,139.59.77.101").expect("valid"),
        ..DetectorConfig::default()
    };
    assert_eq!(
        run_with(cfg.clone(), &forbidden(), "prod").0,
        Verdict::NoMatch
    );
    let pods = event("anonymous_pod_list_allowed.json");
    assert_eq!(run_with(cfg, &pods, "prod").1, Verdict::NoMatch);
}

#[test]
fn disabled_rules_do_not_run() {
    let cfg = DetectorConfig {
        disabled_rules: vec!["Amazon.EKS.Audit.Multiple403".into()],
        ..DetectorConfig::default()
    };
    assert_eq!(run_with(cfg, &forbidden(), "prod").0, Verdict::NoMatch);
}

// ---------------------------------------------------------------- PodScan

fn refused() -> Value {
    event("anonymous_pod_list_refused.json")
}

fn b_verdict_with(cfg: DetectorConfig, ev: &Value) -> Verdict {
    run_with(cfg, ev, "prod").1
}

fn b_verdict(ev: &Value) -> Verdict {
    b_verdict_with(DetectorConfig::default(), ev)
}

#[test]
fn pod_scan_matches_anonymous_list_of_all_pods() {
    let (a, b, matches) = run(&refused(), "prod-web");
    assert_eq!(b, Verdict::matched(1));
    // The refused listing from a public IP is also a Multiple403 match.
    assert_eq!(a, Verdict::matched(1));
    let m = matches
        .iter()
        .find(|m| m.rule == eks_audit_detector::rules::pod_scan::META.id)
        .expect("pod scan match");
    assert_eq!(
        m.dedup,
        "prod-web_186.96.216.108_system:anonymous_system:unauthenticated"
    );
    assert_eq!(m.severity, Severity::Low);
}

#[test]
fn pod_scan_that_succeeds_is_high() {
    let (_, b, matches) = run(&event("anonymous_pod_list_allowed.json"), "prod-web");
    assert_eq!(b, Verdict::matched(1));
    assert_eq!(matches[0].severity, Severity::High);
}

#[test]
fn pod_scan_compares_values_case_insensitively_and_exactly() {
    for (field, value, expected) in [
        ("username", "SYSTEM:Anonymous", Verdict::matched(1)),
        ("username", "system:anonymous2", Verdict::NoMatch),
        ("username", "kubernetes-admin", Verdict::NoMatch),
        ("verb", "LIST", Verdict::matched(1)),
        ("verb", "watch", Verdict::NoMatch),
        ("verb", "get", Verdict::NoMatch),
        ("resource", "Pods", Verdict::matched(1)),
        ("resource", "pods/log", Verdict::NoMatch),
        ("resource", "secrets", Verdict::NoMatch),
        ("uri", "/API/V1/PODS", Verdict::matched(1)),
        ("uri", "/api/v1/pods?limit=500", Verdict::NoMatch),
        ("uri", "/api/v1/pods/", Verdict::NoMatch),
        ("uri", "/api/v1/namespaces/default/pods", Verdict::NoMatch),
    ] {
        let mut ev = refused();
        match field {
            "username" => ev["user"]["username"] = json!(value),
            "verb" => ev["verb"] = json!(value),
            "resource" => ev["objectRef"]["resource"] = json!(value),
            _ => ev["requestURI"] = json!(value),
        }
        assert_eq!(b_verdict(&ev), expected, "{field}={value}");
    }
}

#[test]
fn pod_scan_has_no_stage_status_or_ip_condition() {
    let mut ev = refused();
    ev["stage"] = json!("ResponseStarted");
    ev["responseStatus"]["code"] = json!(500);
    ev["sourceIPs"] = json!(["10.0.0.5"]);
    assert_eq!(b_verdict(&ev), Verdict::matched(1));
}

#[test]
fn pod_scan_broad_mode_also_matches_queries_and_namespaced_lists() {
    let broad = DetectorConfig {
        pod_scan_match: PodScanMatch::Broad,
        ..DetectorConfig::default()
    };
    for (uri, expected) in [
        ("/api/v1/pods?limit=500", Verdict::matched(1)),
        ("/api/v1/namespaces/default/pods", Verdict::matched(1)),
        (
            "/api/v1/namespaces/kube-system/pods?limit=500",
            Verdict::matched(1),
        ),
        ("/api/v1/namespaces//pods", Verdict::NoMatch),
        ("/api/v1/namespaces/default/pods/web-1", Verdict::NoMatch),
        ("/api/v1/podsx", Verdict::NoMatch),
    ] {
        let mut ev = refused();
        ev["requestURI"] = json!(uri);
        assert_eq!(b_verdict_with(broad.clone(), &ev), expected, "{uri}");
    }
}

#[test]
fn pod_scan_groups_like_splunk_multivalue_stats() {
    // GIVEN two distinct source IPs (one repeated) and two groups (one repeated)
    let mut ev = refused();
    ev["sourceIPs"] = json!(["186.96.216.108", "10.0.1.9", "186.96.216.108"]);
    ev["user"]["groups"] = json!(["system:unauthenticated", "system:public", "system:public"]);
    // WHEN the rule runs
    let (_, b, matches) = run(&ev, "prod");
    // THEN one match per distinct (IP, group)
    assert_eq!(b, Verdict::matched(4));
    let keys: BTreeSet<&str> = matches
        .iter()
        .filter(|m| m.rule == eks_audit_detector::rules::pod_scan::META.id)
        .map(|m| m.dedup.as_str())
        .collect();
    let expected: BTreeSet<&str> = [
        "prod_186.96.216.108_system:anonymous_system:unauthenticated",
        "prod_186.96.216.108_system:anonymous_system:public",
        "prod_10.0.1.9_system:anonymous_system:unauthenticated",
        "prod_10.0.1.9_system:anonymous_system:public",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected);
}

#[test]
fn pod_scan_drops_events_without_ip_or_group() {
    for remove in ["sourceIPs", "groups"] {
        let mut ev = refused();
        if remove == "groups" {
            ev["user"].as_object_mut().expect("object").remove("groups");
        } else {
            ev.as_object_mut().expect("object").remove("sourceIPs");
        }
        assert_eq!(b_verdict(&ev), Verdict::NoMatch, "without {remove}");
    }
    let mut ev = refused();
    ev["sourceIPs"] = json!([]);
    assert_eq!(b_verdict(&ev), Verdict::NoMatch);
    let mut ev = refused();
    ev["user"]["groups"] = json!([]);
    assert_eq!(b_verdict(&ev), Verdict::NoMatch);
}

#[test]
fn normal_traffic_matches_nothing() {
    let (a, b, m) = run(&event("kubelet_lease_update.json"), "prod");
    assert_eq!((a, b), (Verdict::NoMatch, Verdict::NoMatch));
    assert!(m.is_empty());
}

// ---------------------------------------------------------------- reference corpus

/// Per-event verdicts on ~1,700 generated events (every match, rule error and
/// near miss of a 26,572-event corpus, plus normal traffic) agree with an
/// independent Python implementation of both originals.
#[test]
fn corpus_verdicts_match_the_reference_implementation() {
    let expected: Value = serde_json::from_str(&fixture("corpus/expected.json")).expect("JSON");
    let want = |k: &str| -> BTreeSet<String> {
        expected[k]
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v.as_str().expect("str").to_owned())
            .collect()
    };
    let detector = Detector::new(DetectorConfig::default());
    let scanner = Scanner::new(&detector);
    let mut stats = ScanStats::default();
    let mut matches = Vec::new();
    for name in ["corpus/prod-payments.json", "corpus/prod-web.json"] {
        let body = fixture(name);
        let data = extract_data(body.as_bytes()).expect("envelope");
        let json = inflate(&data, 64 << 20).expect("inflates");
        let batch = Batch::parse(&json).expect("batch");
        scanner.scan_batch(&batch, &mut matches, &mut stats);
    }
    let got = |rule: RuleId| -> BTreeSet<String> {
        matches
            .iter()
            .filter(|m| m.rule == rule)
            .filter_map(|m| m.event.sample.audit_id.clone())
            .collect()
    };
    assert_eq!(
        got(eks_audit_detector::rules::multiple_403::META.id),
        want("A")
    );
    assert_eq!(got(eks_audit_detector::rules::pod_scan::META.id), want("B"));
    assert_eq!(
        stats
            .rule_errors
            .get(&eks_audit_detector::rules::multiple_403::META.id)
            .copied()
            .unwrap_or(0),
        expected["A_errors"].as_u64().expect("count")
    );
    assert_eq!(
        stats
            .matched_events
            .get(&eks_audit_detector::rules::multiple_403::META.id)
            .copied(),
        Some(want("A").len() as u64)
    );
}
