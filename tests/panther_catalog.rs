//! Panther's own tests for its EKS and Kubernetes rules, as data: every test
//! whose log is an EKS audit event must give the same result here, and a
//! match the same title, dedup key and severity Panther's functions compute
//! (`tests/fixtures/panther/catalog/`, see its README).

use std::path::Path;

use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::net::CidrList;
use eks_audit_detector::rules::registry;
use eks_audit_detector::vocab::{EventContext, Severity, Verdict};
use serde_json::Value;

/// Rules of Panther's catalog whose tests are compared only on whether
/// they match: their alerts are built by hand-written rules with windows
/// of their own (titles name the window, not one event).
const RESULT_ONLY: [&str; 1] = ["Amazon.EKS.Audit.Multiple403"];

fn fixtures() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/panther/catalog");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures directory") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let doc: Value = serde_json::from_str(&text).expect("fixture is JSON");
        out.push((path.display().to_string(), doc));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn severity(name: &str) -> Severity {
    eks_audit_detector::config::rule_settings::severity_named(name).expect("severity name")
}

/// Every rule of the fixtures is in the registry, with Panther's settings.
#[test]
fn every_panther_rule_is_registered_with_its_settings() {
    let rules = registry(&DetectorConfig::default());
    let fixtures = fixtures();
    assert!(fixtures.len() >= 33, "{} fixture files", fixtures.len());
    let mut missing = Vec::new();
    for (path, doc) in &fixtures {
        let id = doc["rule_id"].as_str().expect("rule_id");
        let Some(rule) = rules.iter().find(|r| r.meta().id.as_str() == id) else {
            missing.push(id.to_owned());
            continue;
        };
        // A rule that makes only a signal in Panther (`CreateAlert: false`)
        // is off here until enabled: this detector only makes alerts.
        let panther_alerts =
            doc["enabled"].as_bool().expect("enabled") && doc["create_alert"] != false;
        assert_eq!(rule.enabled_by_default(), panther_alerts, "{path}: enabled");
        let w = rule.window();
        assert_eq!(
            w.threshold,
            doc["threshold"].as_u64().expect("threshold"),
            "{path}: threshold"
        );
        assert_eq!(
            w.window_ms,
            i64::try_from(doc["dedup_minutes"].as_u64().expect("dedup")).expect("fits") * 60_000,
            "{path}: dedup period"
        );
    }
    assert!(missing.is_empty(), "not registered: {missing:?}");
}

/// Each EKS test of Panther's gives Panther's answer.
#[test]
fn panthers_eks_tests_agree() {
    let rules = registry(&DetectorConfig::default());
    let allow = CidrList::default();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (path, doc) in fixtures() {
        let id = doc["rule_id"].as_str().expect("rule_id");
        let Some(rule) = rules.iter().find(|r| r.meta().id.as_str() == id) else {
            continue;
        };
        let default_severity = severity(doc["severity"].as_str().expect("severity"));
        for test in doc["tests"].as_array().expect("tests") {
            let name = test["name"].as_str().unwrap_or("?");
            // Tests that depend on Panther's enrichment are adapted in
            // `tests/panther_enrichment.rs`.
            if test["enrichment"] == true {
                continue;
            }
            let expected = test["expected"].as_bool().expect("expected");
            let text = test["log"].to_string();
            let ev = AuditEvent::parse(&text).expect("Panther's log parses");
            let cluster = test["log"]["p_source_label"]
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
            if matched != expected {
                failures.push(format!(
                    "{id} / {name}: matched {matched}, Panther {expected}"
                ));
                continue;
            }
            if !expected || RESULT_ONLY.contains(&id) {
                continue;
            }
            let m = &out[0];
            let want_sev = test["severity"].as_str().map_or(default_severity, severity);
            let want = (
                test["title"].as_str().unwrap_or_default(),
                test["dedup"].as_str().unwrap_or_default(),
                want_sev,
            );
            let got = (m.event.title.as_str(), m.dedup.as_str(), m.severity);
            if got != want {
                failures.push(format!(
                    "{id} / {name} ({path}):\n  got  {got:?}\n  want {want:?}"
                ));
            }
        }
    }
    assert!(checked > 100, "only {checked} tests checked");
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Rules that Panther ships off are off here, and `ENABLED_RULES` turns
/// them on.
#[test]
fn rules_panther_ships_off_are_off_until_enabled() {
    let off = ["Kubernetes.Pod.Exec", "Kubernetes.BulkSecretAccess"];
    let detector = eks_audit_detector::rules::Detector::new(DetectorConfig::default());
    for id in off {
        assert!(
            detector.rules().all(|r| r.meta().id.as_str() != id),
            "{id} runs by default"
        );
    }
    let config = DetectorConfig::from_lookup(|k| {
        (k == "ENABLED_RULES").then(|| "kubernetes.pod.exec, Kubernetes.BulkSecretAccess".into())
    })
    .expect("valid");
    eks_audit_detector::rules::check_rules(&config).expect("known ids");
    let detector = eks_audit_detector::rules::Detector::new(config);
    for id in off {
        assert!(
            detector.rules().any(|r| r.meta().id.as_str() == id),
            "{id} not enabled"
        );
    }
}

/// The prefilter never skips a line a rule matches: every event of
/// Panther's tests that a rule matches passes it, as written and as it
/// stands inside the subscription's envelope (escaped once more), with
/// every rule enabled, and again with SigmaHQ's rules too (then the
/// prefilter takes another path).
#[test]
fn the_prefilter_keeps_every_line_a_rule_matches() {
    let config = DetectorConfig::from_lookup(|k| {
        (k == "ENABLED_RULES").then(|| {
            "Kubernetes.Pod.Exec,Kubernetes.BulkSecretAccess,\
             Amazon.EKS.Audit.SystemNamespaceFromPublicIP"
                .to_owned()
        })
    })
    .expect("valid");
    let sigma = eks_audit_detector::sigma::load(&eks_audit_detector::sigma::bundled());
    assert!(sigma.problems.is_empty(), "{:?}", sigma.problems);
    let mut with_sigma = config.clone();
    with_sigma
        .enabled_rules
        .extend(sigma.rules.iter().map(|r| r.id.clone()));
    with_sigma.sigma = eks_audit_detector::sigma::SigmaRules(std::sync::Arc::new(sigma));
    for config in [config, with_sigma] {
        assert!(prefilter_keeps_what_rules_match(config) >= 50);
    }
}

/// How many matching lines the prefilter of `config` kept (it fails on
/// one it skips).
fn prefilter_keeps_what_rules_match(config: DetectorConfig) -> usize {
    let detector = eks_audit_detector::rules::Detector::new(config);
    let prefilter = eks_audit_detector::prefilter::Prefilter::new(&detector);
    let allow = CidrList::default();
    let mut kept = 0;
    for (path, doc) in fixtures() {
        let id = doc["rule_id"].as_str().expect("rule_id");
        let Some(rule) = detector.rules().find(|r| r.meta().id.as_str() == id) else {
            continue;
        };
        for test in doc["tests"].as_array().expect("tests") {
            let text = test["log"].to_string();
            let ev = AuditEvent::parse(&text).expect("parses");
            let ctx = EventContext {
                cluster: "c",
                at_ms: 0,
            };
            let mut out = Vec::new();
            if !matches!(
                rule.evaluate(&ev, ctx, &allow, &mut out),
                Verdict::Matched { .. }
            ) {
                continue;
            }
            let escaped = serde_json::to_string(&text).expect("string");
            assert!(
                prefilter.may_match(text.as_bytes()),
                "{path}: {}",
                test["name"]
            );
            assert!(
                prefilter.may_match(escaped.as_bytes()),
                "{path}: {} escaped",
                test["name"]
            );
            kept += 1;
        }
    }
    kept
}
