//! The detector set-ups the throughput benchmarks compare: every built-in
//! rule, the two rules the detector started with, and every rule with
//! SigmaHQ's rules and three correlations.
#![allow(dead_code)]

use eks_audit_detector::alert::Alert;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::sink::{AlertSink, PublishError};

/// Drops alerts: the benchmarks measure detection, not output.
pub struct Discard;

impl AlertSink for Discard {
    async fn publish(&self, _alert: &Alert) -> Result<(), PublishError> {
        Ok(())
    }
}

/// Every rule of the registry enabled, those off by default included.
pub fn every_rule() -> DetectorConfig {
    let config = DetectorConfig::default();
    let off: Vec<String> = eks_audit_detector::rules::registry(&config)
        .iter()
        .filter(|r| !r.enabled_by_default())
        .map(|r| r.meta().id.as_str().to_owned())
        .collect();
    DetectorConfig {
        enabled_rules: off,
        ..config
    }
}

/// Three correlations over two detections of one's own, beside SigmaHQ's
/// bundled rules.
const CORRELATIONS: &str = "\
title: Secret read
id: bench-secret-read
logsource: {product: kubernetes, service: audit}
detection:
  sel:
    verb: get
    objectRef.resource: secrets
  condition: sel
---
title: Pod exec
id: bench-pod-exec
logsource: {product: kubernetes, service: audit}
detection:
  sel:
    verb: create
    objectRef.subresource: exec
  condition: sel
---
title: Many secret reads
id: bench-many-reads
correlation:
  type: event_count
  rules: [bench-secret-read]
  group-by: [user.username]
  timespan: 10m
  condition:
    gte: 20
---
title: Many secrets
id: bench-many-secrets
correlation:
  type: value_count
  rules: [bench-secret-read]
  group-by: [user.username]
  timespan: 10m
  condition:
    gte: 10
    field: objectRef.name
---
title: Read then exec
id: bench-read-then-exec
correlation:
  type: temporal_ordered
  rules: [bench-secret-read, bench-pod-exec]
  group-by: [user.username]
  timespan: 30m
  generate: true
";

/// Every rule (as [`every_rule`]), SigmaHQ's 16 bundled rules turned on,
/// and [`CORRELATIONS`].
pub fn with_sigma() -> DetectorConfig {
    use eks_audit_detector::sigma;
    let mut files = sigma::bundled();
    files.push(sigma::LoadedText {
        name: "bench.yml".into(),
        text: CORRELATIONS.into(),
    });
    let set = sigma::load(&files);
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    let mut config = every_rule();
    config
        .enabled_rules
        .extend(set.rules.iter().map(|r| r.id.clone()));
    config.sigma = sigma::SigmaRules(std::sync::Arc::new(set));
    config
}

/// Only the two rules the detector started with.
pub fn two_original() -> DetectorConfig {
    const FIRST: [&str; 2] = ["Amazon.EKS.Audit.Multiple403", "Amazon.EKS.Audit.PodScan"];
    let config = DetectorConfig::default();
    let rest: Vec<String> = eks_audit_detector::rules::registry(&config)
        .iter()
        .map(|r| r.meta().id.as_str().to_owned())
        .filter(|id| !FIRST.contains(&id.as_str()))
        .collect();
    DetectorConfig {
        disabled_rules: rest,
        ..config
    }
}
