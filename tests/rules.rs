//! Both rules, condition by condition, on realistic audit events; Panther's
//! own test cases; and the reference corpus verdicts.

mod common;

use std::collections::BTreeSet;

use common::{event, fixture, run, run_with};
use eks_audit_detector::config::{DetectorConfig, PodScanMatch, SourceAddress};
use eks_audit_detector::decode::{extract_data, inflate, Batch};
use eks_audit_detector::net::CidrList;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::rules::{multiple_403, pod_scan};
use eks_audit_detector::scan::{ScanStats, Scanner};
use eks_audit_detector::vocab::{Match, RuleId, Severity, Verdict};
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
    // (the first-four detector runs: Panther's Kubernetes twin matches too,
    // see tests/panther_catalog.rs)
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
fn multiple403_hardened_source_keys_every_403_on_the_connection() {
    for (ips, expected) in [
        // a private first entry no longer hides a public connection
        (json!(["10.0.0.1", "5.5.5.5"]), Some("prod_403_5.5.5.5")),
        // a 403 Panther counts is still counted, under the connection's key
        (json!(["5.5.5.5", "10.0.0.1"]), Some("prod_403_10.0.0.1")),
        (json!(["6.6.6.6", "5.5.5.5"]), Some("prod_403_5.5.5.5")),
        // one entry: first and connection are the same, Panther's key
        (json!(["5.5.5.5"]), Some("prod_403_5.5.5.5")),
        // private traffic stays out
        (json!(["10.0.0.1", "10.0.0.2"]), None),
        (json!(["10.0.0.1"]), None),
    ] {
        let mut ev = forbidden();
        ev["sourceIPs"] = ips.clone();
        let (_, _, matches) = run_with(hardened(), &ev, "prod");
        assert_eq!(matches.first().map(|m| m.dedup.as_str()), expected, "{ips}");
    }
    // a missing list stays Panther's 0.0.0.0 (no match); an unusable
    // connection address is a rule error, as an unusable first one is
    let mut ev = forbidden();
    ev.as_object_mut().expect("object").remove("sourceIPs");
    assert_eq!(run_with(hardened(), &ev, "prod").0, Verdict::NoMatch);
    ev["sourceIPs"] = json!(["5.5.5.5", "not-an-ip"]);
    assert_eq!(run_with(hardened(), &ev, "prod").0, Verdict::RuleError);
    // the allowlist applies to the connection
    let allowed = DetectorConfig {
        allow_source_cidrs: CidrList::parse("5.5.5.0/24").expect("cidr"),
        ..hardened()
    };
    let mut ev = forbidden();
    ev["sourceIPs"] = json!(["10.0.0.1", "5.5.5.5"]);
    assert!(run_with(allowed, &ev, "prod").2.is_empty());
}

// ------------------------------------------------- forged X-Forwarded-For chains

/// The hardened source-address setting (`MULTIPLE_403_SOURCE=first-or-last`).
fn hardened() -> DetectorConfig {
    DetectorConfig {
        multiple_403_source: SourceAddress::FirstOrLast,
        ..common::seed_config()
    }
}

/// `config` with our CI runners' egress range allowlisted.
fn allowing_ci(config: DetectorConfig) -> DetectorConfig {
    DetectorConfig {
        allow_source_cidrs: CidrList::parse(CI_EGRESS).expect("valid"),
        ..config
    }
}

const CI_EGRESS: &str = "52.94.133.0/24";
const CI_RUNNER: &str = "52.94.133.7";
/// The connection addresses of the fixtures' attackers.
const ATTACKER_403: &str = "185.220.101.47";
const ATTACKER_PODS: &str = "186.96.216.108";

/// `n` distinct public addresses an attacker might put in X-Forwarded-For.
fn forged(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("45.{}.{}.{}", 80 + i / 65_536, (i / 256) % 256, i % 256))
        .collect()
}

/// The fixture with its `sourceIPs` (forwarded entries, then the connection).
fn from_chain(mut ev: Value, chain: &[&str]) -> Value {
    ev["sourceIPs"] = json!(chain);
    ev
}

fn of_rule(matches: &[Match], rule: RuleId) -> Vec<&Match> {
    matches.iter().filter(|m| m.rule == rule).collect()
}

fn keys(matches: &[Match], rule: RuleId) -> BTreeSet<String> {
    of_rule(matches, rule)
        .iter()
        .map(|m| m.dedup.clone())
        .collect()
}

/// Values an event's matches tally under `field` for the alert summary.
fn tallied<'m>(m: &'m Match, field: &str) -> Vec<&'m str> {
    m.event
        .facts
        .iter()
        .chain(&m.facts)
        .filter(|(f, _)| *f == field)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn a_forged_allowlisted_first_address_does_not_hide_the_connection() {
    for config in [common::seed_config(), hardened()] {
        let mode = config.multiple_403_source;
        // GIVEN an attacker who puts our CI runner first in X-Forwarded-For
        let ev = from_chain(forbidden(), &[CI_RUNNER, ATTACKER_403]);
        // WHEN the rules run with the CI range allowlisted
        let (a, _, matches) = run_with(allowing_ci(config.clone()), &ev, "prod");
        // THEN the 403 still counts: Panther's key (the first address as
        // written) by default, the connection's when hardened; either way
        // the alert shows both addresses
        assert_eq!(a, Verdict::matched(1), "{mode:?}");
        let m = of_rule(&matches, multiple_403::META.id)[0];
        let key_ip = match mode {
            SourceAddress::First => CI_RUNNER,
            SourceAddress::FirstOrLast => ATTACKER_403,
        };
        assert_eq!(m.dedup, format!("prod_403_{key_ip}"), "{mode:?}");
        assert_eq!(
            tallied(m, "p_any_ip_addresses"),
            [CI_RUNNER, ATTACKER_403],
            "{mode:?}"
        );

        // and the same for an anonymous pod listing
        let ev = from_chain(refused(), &[CI_RUNNER, ATTACKER_PODS]);
        let (_, b, matches) = run_with(allowing_ci(config), &ev, "prod");
        let connection_key =
            format!("prod_{ATTACKER_PODS}_system:anonymous_system:unauthenticated");
        let got = keys(&matches, pod_scan::META.id);
        assert!(got.contains(&connection_key), "{mode:?}: {got:?}");
        let expected_keys = match mode {
            // Splunk's rows: one per address, the forged one included
            SourceAddress::First => 2,
            SourceAddress::FirstOrLast => 1,
        };
        assert_eq!(b, Verdict::matched(expected_keys), "{mode:?}");
    }
}

#[test]
fn an_allowlisted_connection_is_suppressed_whatever_it_forwards() {
    let long: Vec<String> = forged(5_000);
    let mut long_chain: Vec<&str> = long.iter().map(String::as_str).collect();
    long_chain.push(CI_RUNNER);
    for config in [common::seed_config(), hardened()] {
        let mode = config.multiple_403_source;
        for chain in [
            // our runner, directly
            vec![CI_RUNNER],
            // our runner relaying a request that claims a public client
            vec![ATTACKER_403, CI_RUNNER],
            // or thousands of them
            long_chain.clone(),
        ] {
            let (a, _, matches) = run_with(
                allowing_ci(config.clone()),
                &from_chain(forbidden(), &chain),
                "prod",
            );
            assert_eq!(a, Verdict::NoMatch, "{mode:?} {}", chain.len());
            assert!(matches.is_empty());
            let (_, b, _) = run_with(
                allowing_ci(config.clone()),
                &from_chain(refused(), &chain),
                "prod",
            );
            assert_eq!(b, Verdict::NoMatch, "{mode:?} {}", chain.len());
        }
    }
    // and without the allowlist the same requests match
    let (a, b, _) = run_with(
        hardened(),
        &from_chain(refused(), &[ATTACKER_403, CI_RUNNER]),
        "prod",
    );
    assert_eq!((a, b), (Verdict::matched(1), Verdict::matched(1)));
}

#[test]
fn rotating_forged_first_addresses_share_the_connections_key_when_hardened() {
    // GIVEN ten 403s from one connection, each claiming another public client
    let claimed = forged(10);
    let events: Vec<Value> = claimed
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let mut ev = from_chain(forbidden(), &[ip, ATTACKER_403]);
            ev["auditID"] = json!(format!("8f2c1e77-0b4a-4c59-a3a5-5d1f0e6b2c{i:02}"));
            ev
        })
        .collect();
    let run_all = |config: &DetectorConfig| -> Vec<Match> {
        events
            .iter()
            .flat_map(|ev| run_with(config.clone(), ev, "prod").2)
            .collect()
    };
    // WHEN Panther's keying is used THEN each 403 is alone under its key,
    // so no key reaches the threshold (the evasion)
    let threshold = common::seed_config().multiple_403_threshold;
    assert_eq!(threshold, 10);
    let panther = run_all(&common::seed_config());
    assert_eq!(keys(&panther, multiple_403::META.id).len(), 10);
    // WHEN hardened THEN all ten share the connection's key: the threshold
    // is reached, and the alert's tallies show what each request claimed
    let matches = run_all(&hardened());
    let ours = of_rule(&matches, multiple_403::META.id);
    assert_eq!(ours.len() as u64, threshold);
    assert_eq!(
        keys(&matches, multiple_403::META.id),
        BTreeSet::from([format!("prod_403_{ATTACKER_403}")])
    );
    for (m, ip) in ours.iter().zip(&claimed) {
        assert_eq!(m.source_ip, ATTACKER_403);
        assert!(m
            .event
            .title
            .starts_with(&format!("[{ATTACKER_403}] received [403]")));
        assert_eq!(
            tallied(m, "p_any_ip_addresses"),
            [ip.as_str(), ATTACKER_403]
        );
    }
}

#[test]
fn a_5000_entry_forwarded_chain_makes_one_key_per_rule_when_hardened() {
    // GIVEN one refused anonymous pod listing (also a 403 on /api/) whose
    // X-Forwarded-For names 5,000 public addresses
    let claimed = forged(5_000);
    let mut chain: Vec<&str> = claimed.iter().map(String::as_str).collect();
    chain.push(ATTACKER_PODS);
    let ev = from_chain(refused(), &chain);

    // WHEN Splunk's keying is used THEN it fans out (bounded) over the chain
    let (a, b, matches) = run(&ev, "prod");
    assert_eq!(a, Verdict::matched(1));
    assert_eq!(
        b,
        Verdict::Matched {
            matches: 4,
            dropped: 4_997
        }
    );
    assert_eq!(keys(&matches, pod_scan::META.id).len(), 4);

    // WHEN hardened THEN exactly one key per rule, on the connection
    let (a, b, matches) = run_with(hardened(), &ev, "prod");
    assert_eq!(a, Verdict::matched(1));
    assert_eq!(
        b,
        Verdict::Matched {
            matches: 1,
            dropped: 4_997
        }
    );
    assert_eq!(matches.len(), 2);
    assert_eq!(
        keys(&matches, multiple_403::META.id),
        BTreeSet::from([format!("prod_403_{ATTACKER_PODS}")])
    );
    assert_eq!(
        keys(&matches, pod_scan::META.id),
        BTreeSet::from([format!(
            "prod_{ATTACKER_PODS}_system:anonymous_system:unauthenticated"
        )])
    );
    // AND the alert shows a bounded sample of what it claimed
    let pods = of_rule(&matches, pod_scan::META.id)[0];
    assert_eq!(pods.source_ip, ATTACKER_PODS);
    assert_eq!(
        tallied(pods, pod_scan::CLAIMED_FIELD),
        [chain[0], chain[1], chain[2], ATTACKER_PODS]
    );
    assert_eq!(pods.event.dropped, 4_997);
}

#[test]
fn hardened_pod_scan_makes_one_key_per_request_whatever_the_groups() {
    // GIVEN a listing with several addresses and groups
    let mut ev = from_chain(refused(), &["10.0.1.9", "45.80.0.1", ATTACKER_PODS]);
    ev["user"]["groups"] = json!(["system:unauthenticated", "g2", "g3", "g4", "g5"]);
    // WHEN hardened THEN one key: the connection and the first group, the
    // other groups counted as left without a key
    let (_, b, matches) = run_with(hardened(), &ev, "prod");
    assert_eq!(
        b,
        Verdict::Matched {
            matches: 1,
            dropped: 4
        }
    );
    let m = of_rule(&matches, pod_scan::META.id)[0];
    assert_eq!(
        m.dedup,
        format!("prod_{ATTACKER_PODS}_system:anonymous_system:unauthenticated")
    );
    assert_eq!(
        tallied(m, pod_scan::GROUP_FIELD),
        ["system:unauthenticated"]
    );
    // AND Splunk's conditions still hold: no key without a group, for a
    // signed-in user, or for a missing or empty address list
    for change in ["no groups", "signed in", "no sourceIPs", "empty sourceIPs"] {
        let mut ev = refused();
        match change {
            "no groups" => ev["user"]["groups"] = json!([]),
            "signed in" => ev["user"]["username"] = json!("kubernetes-admin"),
            "no sourceIPs" => {
                ev.as_object_mut().expect("object").remove("sourceIPs");
            }
            _ => ev["sourceIPs"] = json!([]),
        }
        assert_eq!(
            run_with(hardened(), &ev, "prod").1,
            Verdict::NoMatch,
            "{change}"
        );
    }
}

#[test]
fn default_mode_keys_on_the_first_address_as_panther_does() {
    // a private first entry hides the 403 from Panther's rule (README: the
    // hardened setting is what closes it)...
    let ev = from_chain(forbidden(), &["10.0.0.1", ATTACKER_403]);
    assert_eq!(run(&ev, "prod").0, Verdict::NoMatch);
    // ...and a public one is the key, as written, with the connection shown
    let ev = from_chain(forbidden(), &["45.80.0.1", ATTACKER_403]);
    let (_, _, matches) = run(&ev, "prod");
    let m = of_rule(&matches, multiple_403::META.id)[0];
    assert_eq!(m.dedup, "prod_403_45.80.0.1");
    assert_eq!(
        tallied(m, "p_any_ip_addresses"),
        ["45.80.0.1", ATTACKER_403]
    );
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
        ..common::seed_config()
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
        ..common::seed_config()
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
    b_verdict_with(common::seed_config(), ev)
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
        ..common::seed_config()
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
    let detector = Detector::new(common::seed_config());
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

/// A request's sender chooses the identity it impersonates, and long names
/// are cut: two names that share their first 256 bytes must still be two
/// keys (two alerts), in every built-in key made of request values.
#[test]
fn long_values_that_differ_past_the_cut_are_two_keys() {
    use eks_audit_detector::rules::{aws_auth, impersonation};
    let long = |end: &str| format!("{}{end}", "u".repeat(256));
    let (a, b) = (long("-attacker-1"), long("-attacker-2"));
    let pairs = [
        (
            impersonation::dedup_key("prod", "alice", &a),
            impersonation::dedup_key("prod", "alice", &b),
        ),
        (
            aws_auth::dedup_key("prod", &a),
            aws_auth::dedup_key("prod", &b),
        ),
        (
            multiple_403::dedup_key("prod", &a),
            multiple_403::dedup_key("prod", &b),
        ),
        (
            pod_scan::dedup_key("prod", "1.2.3.4", &a, "g"),
            pod_scan::dedup_key("prod", "1.2.3.4", &b, "g"),
        ),
    ];
    for (x, y) in pairs {
        assert_ne!(x, y);
        assert!(x.len() < 600, "{}", x.len());
    }
    // Short values keep Panther's form.
    assert_eq!(
        impersonation::dedup_key("prod", "alice", "bob"),
        "prod_alice_as_bob"
    );
}
