//! Sigma rules in tests: the correlations fixture, a detector running only
//! loaded rules, and the audit events the fixture's rules read.

use std::sync::Arc;

use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::rules::{sigma as sigma_rules, Detector};
use eks_audit_detector::sigma::{self, LoadedText, SigmaRules};
use serde_json::{json, Value};

/// Two detections and a correlation of each type, 12 events or values to
/// reach the counting ones.
pub const CORRELATIONS: &str = include_str!("../fixtures/sigma/correlations.yml");

const T0: i64 = 1_715_644_800_000;

/// A detector running only the rules of `text` (which must all load),
/// with their default settings.
pub fn detector(text: &str) -> Detector {
    let set = sigma::load(&[LoadedText {
        name: "mine.yml".into(),
        text: text.into(),
    }]);
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    let config = DetectorConfig {
        sigma: SigmaRules(Arc::new(set)),
        ..DetectorConfig::default()
    };
    let rules = sigma_rules::rules(&config);
    Detector::with_rules(config, rules)
}

/// `T0 + ms` as an audit timestamp (what replay reads an event's time from).
pub fn stamp(ms: i64) -> String {
    let s = (ms - T0) / 1000;
    format!("2024-05-14T00:{:02}:{:02}.000000Z", s / 60, s % 60)
}

/// Secret `s{n}` read by mallory, `n` seconds after `T0`, with `fields`
/// replacing top-level members.
pub fn secret_read(n: usize, fields: Value) -> String {
    let mut ev = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": format!("a-{n}"),
        "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/d/secrets/x",
        "verb": "get", "user": {"username": "mallory"}, "sourceIPs": ["52.1.2.3"],
        "objectRef": {"resource": "secrets", "namespace": "d", "name": format!("s{n}")},
        "responseStatus": {"code": 200},
        "stageTimestamp": stamp(T0 + n as i64 * 1000),
    });
    if let (Some(ev), Some(f)) = (ev.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            ev.insert(k.clone(), v.clone());
        }
    }
    ev.to_string()
}

/// A shell opened in pod `web` by mallory.
pub fn exec(n: usize) -> String {
    secret_read(
        n,
        json!({"verb": "create", "objectRef": {"resource": "pods", "subresource": "exec", "name": "web"}}),
    )
}
