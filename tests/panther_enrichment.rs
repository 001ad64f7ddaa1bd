//! Panther's EKS tests that depend on its enrichment (`"enrichment": true`
//! in `tests/fixtures/panther/catalog/`, skipped by `panther_catalog.rs`).
//! The function has no ipinfo, MISP or Tor data: each rule reads address
//! lists from its settings instead. Each test here builds the rule with
//! `RULE_SETTINGS` listing the addresses the test's `p_enrichment` says
//! are AWS's (`trusted_cidrs`) or Tor exit nodes (`ioc_cidrs`), and expects
//! Panther's result, title, dedup key and severity.

use std::path::Path;

use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::rule_settings::severity_named;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::net::CidrList;
use eks_audit_detector::prefilter::Prefilter;
use eks_audit_detector::rules::{check_rules, registry, Detector};
use eks_audit_detector::vocab::{EventContext, Verdict};
use serde_json::{json, Value};

/// An address in no test's enrichment: a list that is set but does not
/// hold the event's address.
const UNRELATED: &str = "192.0.2.255";

/// Every fixture file.
fn fixtures() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/panther/catalog");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures directory") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        out.push(serde_json::from_str(&text).expect("fixture is JSON"));
    }
    out
}

/// The addresses ipinfo places in Amazon's AS16509 (and, with `domain`,
/// also requires `amazon.com`, as the EKS rule does).
fn ipinfo_aws(enrichment: &Value, need_domain: bool) -> Vec<String> {
    let matches = enrichment["ipinfo_asn"]["sourceIPs"].as_array();
    matches
        .into_iter()
        .flatten()
        .filter(|m| m["asn"] == "AS16509" && (!need_domain || m["domain"] == "amazon.com"))
        .filter_map(|m| m["p_match"].as_str().map(str::to_owned))
        .collect()
}

/// The addresses MISP's `amazon-aws` warning list holds.
fn misp_aws(enrichment: &Value) -> Vec<String> {
    let matches = enrichment["MISP Warning Lists"]["p_any_ip_addresses"].as_array();
    matches
        .into_iter()
        .flatten()
        .filter(|m| {
            m["warning_lists"]
                .as_array()
                .is_some_and(|l| l.iter().any(|w| w["id"] == "amazon-aws"))
        })
        .filter_map(|m| m["p_match"].as_str().map(str::to_owned))
        .collect()
}

/// The rule's option and its addresses, from what Panther's enrichment of
/// this event says (the enrichment each rule's Python reads).
fn option_for(rule_id: &str, enrichment: &Value) -> (&'static str, Vec<String>) {
    match rule_id {
        // `is_aws_infrastructure_ip`: MISP amazon-aws, or ipinfo
        // AS16509 with domain amazon.com.
        "Amazon.EKS.Audit.SystemNamespaceFromPublicIP" => {
            let mut ips = misp_aws(enrichment);
            ips.extend(ipinfo_aws(enrichment, true));
            ("trusted_cidrs", ips)
        }
        // `is_cloud_infrastructure_ip(event, "aws")`: ipinfo AS16509.
        "Kubernetes.System.Principal.PublicIP" => ("trusted_cidrs", ipinfo_aws(enrichment, false)),
        // `p_enrichment.tor_exit_nodes`.
        "Kubernetes.API.IOC.Activity" => {
            let ips = enrichment["tor_exit_nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            ("ioc_cidrs", ips)
        }
        other => panic!("{other}: a rule with enrichment tests and no option for them"),
    }
}

/// Settings that enable the rule and set its option to `ips` (or to an
/// unrelated address when the enrichment names none).
fn config_for(rule_id: &str, option: &str, ips: &[String]) -> DetectorConfig {
    let list = if ips.is_empty() {
        UNRELATED.to_owned()
    } else {
        ips.join(",")
    };
    let settings = json!({ rule_id: { "enabled": true, option: list } }).to_string();
    let config = DetectorConfig::from_lookup(|k| (k == "RULE_SETTINGS").then(|| settings.clone()))
        .expect("valid settings");
    check_rules(&config).expect("the rule has this option");
    config
}

#[test]
fn panthers_enrichment_tests_agree_with_the_address_options() {
    let allow = CidrList::default();
    let mut failures = Vec::new();
    let mut checked = 0;
    for doc in fixtures() {
        let id = doc["rule_id"].as_str().expect("rule_id");
        let default_severity =
            severity_named(doc["severity"].as_str().expect("severity")).expect("severity name");
        for test in doc["tests"].as_array().expect("tests") {
            if test["enrichment"] != true {
                continue;
            }
            let name = test["name"].as_str().unwrap_or("?");
            let log = &test["log"];
            let (option, ips) = option_for(id, &log["p_enrichment"]);
            let config = config_for(id, option, &ips);
            let rules = registry(&config);
            let rule = rules
                .iter()
                .find(|r| r.meta().id.as_str() == id)
                .unwrap_or_else(|| panic!("{id} is registered"));
            let text = log.to_string();
            let ev = AuditEvent::parse(&text).expect("Panther's log parses");
            let cluster = log["p_source_label"]
                .as_str()
                .unwrap_or("<NO_P_SOURCE_LABEL>");
            let ctx = EventContext {
                cluster,
                at_ms: 1_700_000_000_000,
            };
            let mut out = Vec::new();
            let verdict = rule.evaluate(&ev, ctx, &allow, &mut out);
            checked += 1;
            let matched = matches!(verdict, Verdict::Matched { .. });
            let expected = test["expected"].as_bool().expect("expected");
            if matched != expected {
                failures.push(format!(
                    "{id} / {name} ({option}={ips:?}): matched {matched}, Panther {expected}"
                ));
                continue;
            }
            if !expected {
                continue;
            }
            // A line the rule matches gets past the prefilter of a detector
            // with these settings.
            let prefilter = Prefilter::new(&Detector::new(config.clone()));
            if !prefilter.may_match(text.as_bytes()) {
                failures.push(format!("{id} / {name}: skipped by the prefilter"));
            }
            let m = &out[0];
            let want_sev = test["severity"]
                .as_str()
                .map_or(default_severity, |s| severity_named(s).expect("severity"));
            let want = (
                test["title"].as_str().unwrap_or_default(),
                test["dedup"].as_str().unwrap_or_default(),
                want_sev,
            );
            let got = (m.event.title.as_str(), m.dedup.as_str(), m.severity);
            if got != want {
                failures.push(format!("{id} / {name}:\n  got  {got:?}\n  want {want:?}"));
            }
        }
    }
    assert_eq!(checked, 7, "enrichment tests found");
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Without the options the rules behave as Panther without enrichment:
/// no AWS address is known (nodes are reported) and no Tor node is
/// (the IOC rule never matches).
#[test]
fn without_the_options_the_rules_behave_as_panther_without_enrichment() {
    let rules = registry(&DetectorConfig::default());
    let allow = CidrList::default();
    for doc in fixtures() {
        let id = doc["rule_id"].as_str().expect("rule_id");
        for test in doc["tests"].as_array().expect("tests") {
            if test["enrichment"] != true {
                continue;
            }
            let name = test["name"].as_str().unwrap_or("?");
            let mut log = test["log"].clone();
            log.as_object_mut()
                .expect("log is an object")
                .remove("p_enrichment");
            let text = log.to_string();
            let ev = AuditEvent::parse(&text).expect("parses");
            let ctx = EventContext {
                cluster: "prod",
                at_ms: 0,
            };
            let rule = rules
                .iter()
                .find(|r| r.meta().id.as_str() == id)
                .expect("registered");
            let matched = matches!(
                rule.evaluate(&ev, ctx, &allow, &mut Vec::new()),
                Verdict::Matched { .. }
            );
            // Panther: no Tor data, no match; no ASN data, every system
            // principal from a public address is reported.
            let want = id != "Kubernetes.API.IOC.Activity";
            assert_eq!(matched, want, "{id} / {name} without enrichment");
        }
    }
}
