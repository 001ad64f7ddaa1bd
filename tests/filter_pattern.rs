//! The subscription's filter pattern: the templates' default is the one
//! derived from the default rules, it fits CloudWatch's limit, and it
//! forwards every event a rule matches in Panther's tests and the samples.

mod common;

use std::path::Path;

use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::net::CidrList;
use eks_audit_detector::rules::filter::{pattern, MAX_PATTERN_CHARS};
use eks_audit_detector::rules::{registry, Detector};
use eks_audit_detector::vocab::{EventContext, Verdict};
use serde_json::Value;

use common::filter::parse;

fn default_pattern() -> String {
    pattern(Detector::new(DetectorConfig::default()).rules())
}

/// The `Default:` of `FilterPattern` in a template.
fn template_default(file: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .expect("template");
    let at = text.find("  FilterPattern:\n").expect("parameter");
    let line = text[at..]
        .lines()
        .find(|l| l.trim_start().starts_with("Default: "))
        .expect("default");
    line.trim_start()
        .trim_start_matches("Default: ")
        .trim_matches('\'')
        .to_owned()
}

#[test]
fn the_templates_default_is_the_derived_pattern_and_fits() {
    let derived = default_pattern();
    assert!(
        derived.chars().count() <= MAX_PATTERN_CHARS,
        "{} characters",
        derived.chars().count()
    );
    assert_eq!(template_default("template.yaml"), derived, "template.yaml");
    assert_eq!(template_default("member.yaml"), derived, "member.yaml");
}

#[test]
fn every_rule_enabled_keeps_within_the_limit_and_a_rule_needing_all_makes_it_empty() {
    let all = DetectorConfig::from_lookup(|k| {
        (k == "ENABLED_RULES").then(|| {
            "Kubernetes.Pod.Exec,Kubernetes.BulkSecretAccess,Amazon.EKS.Audit.SystemNamespaceFromPublicIP"
                .to_owned()
        })
    })
    .expect("valid");
    let p = pattern(Detector::new(all).rules());
    assert!(p.chars().count() <= MAX_PATTERN_CHARS, "{p}");
    let ioc = DetectorConfig::from_lookup(|k| {
        (k == "RULE_SETTINGS")
            .then(|| r#"{"Kubernetes.API.IOC.Activity": {"ioc_cidrs": "198.51.100.0/24"}}"#.into())
    })
    .expect("valid");
    assert_eq!(pattern(Detector::new(ioc).rules()), "");
}

/// Every event a rule matches in Panther's EKS tests passes the default
/// pattern (with every rule enabled: the same pattern).
#[test]
fn every_panther_match_is_forwarded() {
    let filter = parse(&default_pattern());
    let rules = registry(&DetectorConfig::default());
    let allow = CidrList::default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/panther/catalog");
    let mut checked = 0;
    let mut missed = Vec::new();
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let id = doc["rule_id"].as_str().expect("id");
        let Some(rule) = rules.iter().find(|r| r.meta().id.as_str() == id) else {
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
            checked += 1;
            if !filter.passes(&test["log"]) {
                missed.push(format!("{id} / {}", test["name"]));
            }
        }
    }
    assert!(checked >= 50, "{checked}");
    assert!(missed.is_empty(), "not forwarded: {missed:#?}");
}

/// The bulk of a cluster's traffic is not forwarded: reads by nodes and
/// controllers, lease renewals, status updates.
#[test]
fn routine_traffic_is_not_forwarded() {
    let filter = parse(&default_pattern());
    let routine = [
        r#"{"verb":"update","user":{"username":"system:node:ip-10-0-1-2.ec2.internal"},"sourceIPs":["10.0.1.2"],"objectRef":{"resource":"leases","namespace":"kube-node-lease","name":"ip-10-0-1-2"},"responseStatus":{"code":200}}"#,
        r#"{"verb":"watch","user":{"username":"system:serviceaccount:kube-system:coredns"},"sourceIPs":["10.0.3.9"],"objectRef":{"resource":"endpointslices"},"responseStatus":{"code":200}}"#,
        r#"{"verb":"patch","user":{"username":"system:node:n1"},"sourceIPs":["172.31.4.4"],"objectRef":{"resource":"pods","subresource":"status","namespace":"web","name":"web-1"},"responseStatus":{"code":200}}"#,
        r#"{"verb":"update","user":{"username":"system:serviceaccount:kube-system:replicaset-controller"},"sourceIPs":["10.0.0.5"],"objectRef":{"resource":"replicasets","subresource":"status","namespace":"web","name":"web-abc"},"responseStatus":{"code":200}}"#,
        r#"{"verb":"get","user":{"username":"alice"},"sourceIPs":["203.0.113.5"],"objectRef":{"resource":"configmaps","namespace":"web","name":"app"},"responseStatus":{"code":200}}"#,
    ];
    for line in routine {
        let event: Value = serde_json::from_str(line).expect("json");
        assert!(!filter.passes(&event), "{line}");
    }
}
