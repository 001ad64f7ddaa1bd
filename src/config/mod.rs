//! Settings: environment variables → a validated [`DetectorConfig`].
//!
//! The same names serve the Lambda function and `replay`. Parsing takes a
//! lookup function instead of reading the process environment, so it is pure
//! and testable; every error names the variable that is wrong.

mod resources;
pub mod rule_settings;

use std::collections::BTreeMap;

pub use resources::{DetectorResources, SAMPLE_REGION, SAMPLE_STACK};
pub use rule_settings::RuleSettings;

use crate::net::CidrList;

/// How strictly the pod-scan rule compares `requestURI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodScanMatch {
    /// Exactly `/api/v1/pods`, as Splunk's search does.
    #[default]
    Exact,
    /// Also `/api/v1/pods?...` (what `kubectl get pods -A` sends) and
    /// namespaced lists `/api/v1/namespaces/<ns>/pods[?...]`.
    Broad,
}

/// Which address of `sourceIPs` the rules key on (`MULTIPLE_403_SOURCE`;
/// the name predates PodScan following it too). Either way the allowlist
/// looks at the connection address only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceAddress {
    /// As the originals: Multiple403 counts a 403 when `sourceIPs[0]` is
    /// global and keys it on that address (Panther); PodScan makes one key
    /// per address (Splunk). A client chooses its `X-Forwarded-For`, so it
    /// can hide behind a private first entry, or rotate forged public ones
    /// to keep every key under the threshold.
    #[default]
    First,
    /// Hardened (`first-or-last`): every rule keys a request on its
    /// connection address (the last entry, which a client cannot forge),
    /// one key per rule per request. Multiple403 counts a 403 when the first
    /// or the last address is global; the forwarded addresses are only
    /// tallied for the alert.
    FirstOrLast,
}

/// Everything the detection core needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Matches per window that raise a Multiple403 alert.
    pub multiple_403_threshold: u64,
    /// Length of a Multiple403 window, in minutes.
    pub multiple_403_window_minutes: u64,
    /// Length of a pod-scan window, in minutes.
    pub pod_scan_window_minutes: u64,
    /// Pod-scan URI comparison.
    pub pod_scan_match: PodScanMatch,
    /// Which source address the rules key on (Multiple403 and PodScan).
    pub multiple_403_source: SourceAddress,
    /// Organization mode (`ORGANIZATION_MODE=true`): cluster labels are
    /// `{account}/{cluster}`, for one detector fed by many accounts.
    pub organization_mode: bool,
    /// Clusters whose logging changes are reported (`EKS_CLUSTER_NAMES`);
    /// empty: every `/aws/eks/<cluster>/cluster` log group.
    pub watched_clusters: Vec<String>,
    /// Connection addresses (the last entry of `sourceIPs`) whose requests
    /// never match any rule (own scanners, VPN egress).
    pub allow_source_cidrs: CidrList,
    /// Ids of rules that do not run (checked against the registry by
    /// [`crate::rules::check_rules`]).
    pub disabled_rules: Vec<String>,
    /// Ids of rules that run although they are off by default
    /// (`ENABLED_RULES`).
    pub enabled_rules: Vec<String>,
    /// Per-rule settings by rule id (`RULE_SETTINGS` or
    /// `RULE_SETTINGS_FILE`), checked against the registry by
    /// [`crate::rules::check_rules`].
    pub rule_settings: BTreeMap<String, RuleSettings>,
    /// Largest decompressed payload accepted, in bytes.
    pub max_decompressed_bytes: usize,
    /// How far back a late match still counts in its own window, in
    /// minutes (`LATE_HORIZON_MINUTES`; at least the longest a batch can
    /// come back, which the default covers).
    pub late_horizon_minutes: u64,
    /// Minutes without an audit batch from a cluster before it is reported
    /// silent (`SILENT_MINUTES`).
    pub silent_minutes: u64,
    /// The detector's own resources, whose changes are reported as
    /// tampering (`DETECTOR_*`); nothing known by default.
    pub resources: DetectorResources,
    /// The function's AWS region (`AWS_REGION`, which Lambda sets): what
    /// alerts name, and build the cluster's ARN and console links from.
    pub region: Option<String>,
    /// Sigma rules loaded at start-up (bundled, `RULES_DIR`, `replay
    /// --rules`); the caller loads them, the registry lists them.
    pub sigma: crate::sigma::SigmaRules,
}

/// Default of `LATE_HORIZON_MINUTES`: 6 hours of Lambda's asynchronous
/// retries (and the stack's Kinesis `MaximumRecordAgeInSeconds`) plus the
/// longest timeout.
pub const DEFAULT_LATE_HORIZON_MINUTES: u64 = 375;

/// Largest decompressed batch when the function's memory is unknown (`replay`).
pub const DEFAULT_MAX_DECOMPRESSED_MB: u64 = 64;

/// Function memory reserved per MB of decompressed batch: the compressed and
/// decompressed copies, the parsed events, their matches, and the runtime.
/// 128 MB of memory accepts batches of up to 16 MB, far above what
/// CloudWatch Logs sends (about 1 MB).
pub const MEMORY_PER_DECOMPRESSED_MB: u64 = 8;

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            multiple_403_threshold: 10,
            multiple_403_window_minutes: 30,
            pod_scan_window_minutes: 60,
            pod_scan_match: PodScanMatch::Exact,
            multiple_403_source: SourceAddress::First,
            watched_clusters: Vec::new(),
            organization_mode: false,
            allow_source_cidrs: CidrList::default(),
            disabled_rules: Vec::new(),
            enabled_rules: Vec::new(),
            rule_settings: BTreeMap::new(),
            max_decompressed_bytes: 64 * 1024 * 1024,
            late_horizon_minutes: DEFAULT_LATE_HORIZON_MINUTES,
            silent_minutes: 60,
            resources: DetectorResources::default(),
            region: None,
            sigma: crate::sigma::SigmaRules::default(),
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: {reason}")]
pub struct ConfigError {
    /// The environment variable's name.
    pub variable: &'static str,
    /// What it was set to.
    pub value: String,
    /// Why it is rejected.
    pub reason: String,
}

fn err(variable: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn positive(variable: &'static str, value: &str, max: u64) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 && n <= max => Ok(n),
        _ => Err(err(
            variable,
            value,
            format!("expected a whole number from 1 to {max}"),
        )),
    }
}

impl DetectorConfig {
    /// [`Self::late_horizon_minutes`] in milliseconds.
    pub fn late_horizon_ms(&self) -> crate::time::Millis {
        i64::try_from(self.late_horizon_minutes).unwrap_or(i64::MAX / 60_000) * 60_000
    }

    /// Reads the settings through `lookup` (e.g. `|k| std::env::var(k).ok()`);
    /// unset or empty variables keep their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut cfg = Self::default();
        if let Some(v) = get("MULTIPLE_403_THRESHOLD") {
            cfg.multiple_403_threshold = positive("MULTIPLE_403_THRESHOLD", &v, 1_000_000)?;
        }
        if let Some(v) = get("MULTIPLE_403_WINDOW_MINUTES") {
            cfg.multiple_403_window_minutes = positive("MULTIPLE_403_WINDOW_MINUTES", &v, 10_080)?;
        }
        if let Some(v) = get("SILENT_MINUTES") {
            cfg.silent_minutes = positive("SILENT_MINUTES", &v, 1440)?;
        }
        if let Some(v) = get("LATE_HORIZON_MINUTES") {
            cfg.late_horizon_minutes = positive("LATE_HORIZON_MINUTES", &v, 20_160)?;
        }
        if let Some(v) = get("POD_SCAN_WINDOW_MINUTES") {
            cfg.pod_scan_window_minutes = positive("POD_SCAN_WINDOW_MINUTES", &v, 10_080)?;
        }
        if let Some(v) = get("POD_SCAN_MATCH") {
            cfg.pod_scan_match = match v.trim().to_ascii_lowercase().as_str() {
                "exact" => PodScanMatch::Exact,
                "broad" => PodScanMatch::Broad,
                _ => return Err(err("POD_SCAN_MATCH", &v, "expected 'exact' or 'broad'")),
            };
        }
        if let Some(v) = get("MULTIPLE_403_SOURCE") {
            cfg.multiple_403_source = match v.trim().to_ascii_lowercase().as_str() {
                "first" => SourceAddress::First,
                "first-or-last" => SourceAddress::FirstOrLast,
                _ => {
                    return Err(err(
                        "MULTIPLE_403_SOURCE",
                        &v,
                        "expected 'first' or 'first-or-last'",
                    ))
                }
            };
        }
        if let Some(v) = get("ORGANIZATION_MODE") {
            cfg.organization_mode = match v.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(err("ORGANIZATION_MODE", &v, "expected 'true' or 'false'")),
            };
        }
        if let Some(v) = get("EKS_CLUSTER_NAMES") {
            cfg.watched_clusters = v
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = get("ALLOW_SOURCE_CIDRS") {
            cfg.allow_source_cidrs =
                CidrList::parse(&v).map_err(|reason| err("ALLOW_SOURCE_CIDRS", &v, reason))?;
        }
        if let Some(v) = get("DISABLED_RULES") {
            cfg.disabled_rules = id_list(&v);
        }
        if let Some(v) = get("ENABLED_RULES") {
            cfg.enabled_rules = id_list(&v);
        }
        if let Some(v) = get("RULE_SETTINGS") {
            cfg.rule_settings = rule_settings::parse("RULE_SETTINGS", &v)?;
        }
        if let Some(path) = get("RULE_SETTINGS_FILE") {
            if !cfg.rule_settings.is_empty() {
                return Err(err(
                    "RULE_SETTINGS_FILE",
                    &path,
                    "RULE_SETTINGS is set too: use one or the other",
                ));
            }
            let text = std::fs::read_to_string(path.trim())
                .map_err(|e| err("RULE_SETTINGS_FILE", &path, format!("cannot read it: {e}")))?;
            cfg.rule_settings = rule_settings::parse("RULE_SETTINGS_FILE", &text)?;
        }
        // A batch must fit the function's memory: the decompressed text, the
        // parsed events and their matches take a few times its size.
        let memory_mb = match get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
            Some(v) => Some(positive("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &v, 1_000_000)?),
            None => None,
        };
        let mb = match get("MAX_DECOMPRESSED_MB") {
            Some(v) => {
                let mb = positive("MAX_DECOMPRESSED_MB", &v, 1024)?;
                if let Some(memory) = memory_mb {
                    if mb * MEMORY_PER_DECOMPRESSED_MB > memory {
                        return Err(err(
                            "MAX_DECOMPRESSED_MB",
                            &v,
                            format!(
                                "a batch that large does not fit the function's {memory} MB; \
                                 at most {} MB, or raise MemorySize",
                                (memory / MEMORY_PER_DECOMPRESSED_MB).max(1)
                            ),
                        ));
                    }
                }
                mb
            }
            None => memory_mb.map_or(DEFAULT_MAX_DECOMPRESSED_MB, |memory| {
                (memory / MEMORY_PER_DECOMPRESSED_MB).clamp(1, DEFAULT_MAX_DECOMPRESSED_MB)
            }),
        };
        cfg.max_decompressed_bytes = usize::try_from(mb * 1024 * 1024)
            .map_err(|_| err("MAX_DECOMPRESSED_MB", "", "too large for this platform"))?;
        cfg.region = get("AWS_REGION").map(|r| r.trim().to_owned());
        cfg.resources = DetectorResources::from_lookup(get);
        Ok(cfg)
    }

    /// Whether a rule runs: its `enabled` setting if it has one, else off
    /// when listed in `DISABLED_RULES`, on when listed in `ENABLED_RULES`,
    /// else its own default (ids compare case-insensitively).
    pub fn enabled(&self, rule_id: &str, by_default: bool) -> bool {
        let listed = |list: &[String]| list.iter().any(|d| d.eq_ignore_ascii_case(rule_id));
        if let Some(on) = self.settings(rule_id).and_then(|s| s.enabled) {
            return on;
        }
        if listed(&self.disabled_rules) {
            return false;
        }
        by_default || listed(&self.enabled_rules)
    }

    /// A rule's settings, if `RULE_SETTINGS` has any for it.
    pub fn settings(&self, rule_id: &str) -> Option<&RuleSettings> {
        self.rule_settings
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(rule_id))
            .map(|(_, s)| s)
    }
}

/// A comma-separated list of rule ids, without blanks or repeats.
fn id_list(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            out.push(name.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<DetectorConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DetectorConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_original_rules() {
        let cfg = from(&[]).expect("defaults are valid");
        assert_eq!(cfg, DetectorConfig::default());
        assert_eq!(cfg.multiple_403_threshold, 10);
        assert_eq!(cfg.multiple_403_window_minutes, 30);
        assert_eq!(cfg.pod_scan_window_minutes, 60);
        assert_eq!(cfg.pod_scan_match, PodScanMatch::Exact);
    }

    #[test]
    fn the_batch_cap_follows_the_functions_memory() {
        let mb = |c: DetectorConfig| c.max_decompressed_bytes / (1024 * 1024);
        // replay: no function memory, the default cap
        assert_eq!(mb(from(&[]).expect("replay")), 64);
        // the default 128 MB function takes batches up to 16 MB
        let lambda = from(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]).expect("128");
        assert_eq!(mb(lambda), 16);
        assert_eq!(
            mb(from(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")]).expect("1024")),
            64
        );
        // an explicit cap that does not fit the memory is refused at start-up
        let e = from(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("MAX_DECOMPRESSED_MB", "64"),
        ])
        .expect_err("64 MB does not fit 128 MB");
        assert_eq!(e.variable, "MAX_DECOMPRESSED_MB");
        assert!(e.reason.contains("at most 16 MB"), "{e}");
    }

    #[test]
    fn the_hardened_source_address_is_opt_in() {
        assert_eq!(
            from(&[]).expect("default").multiple_403_source,
            SourceAddress::First
        );
        let cfg = from(&[("MULTIPLE_403_SOURCE", "first-or-last")]).expect("set");
        assert_eq!(cfg.multiple_403_source, SourceAddress::FirstOrLast);
        let e = from(&[("MULTIPLE_403_SOURCE", "last")]).expect_err("unknown");
        assert_eq!(e.variable, "MULTIPLE_403_SOURCE");
    }

    #[test]
    fn reads_every_setting() {
        let cfg = from(&[
            ("MULTIPLE_403_THRESHOLD", "25"),
            ("MULTIPLE_403_WINDOW_MINUTES", "15"),
            ("POD_SCAN_WINDOW_MINUTES", "120"),
            ("POD_SCAN_MATCH", "Broad"),
            ("ALLOW_SOURCE_CIDRS", "198.51.100.0/24,5.5.5.5"),
            ("DISABLED_RULES", "Amazon.EKS.Audit.PodScan"),
            ("MAX_DECOMPRESSED_MB", "8"),
        ])
        .expect("valid");
        assert_eq!(cfg.multiple_403_threshold, 25);
        assert_eq!(cfg.multiple_403_window_minutes, 15);
        assert_eq!(cfg.pod_scan_window_minutes, 120);
        assert_eq!(cfg.pod_scan_match, PodScanMatch::Broad);
        assert!(cfg.allow_source_cidrs.contains_text("5.5.5.5"));
        assert!(!cfg.enabled("Amazon.EKS.Audit.PodScan", true));
        assert!(!cfg.enabled("amazon.eks.audit.podscan", true));
        assert!(cfg.enabled("Amazon.EKS.Audit.Multiple403", true));
        assert_eq!(cfg.max_decompressed_bytes, 8 * 1024 * 1024);
    }

    #[test]
    fn rule_settings_win_over_the_lists_and_the_lists_over_defaults() {
        let cfg = from(&[
            ("ENABLED_RULES", "Kubernetes.Pod.Exec, kubernetes.pod.exec"),
            ("DISABLED_RULES", "A.B"),
            (
                "RULE_SETTINGS",
                r#"{"A.B": {"enabled": true}, "C.D": {"enabled": false}}"#,
            ),
        ])
        .expect("valid");
        assert_eq!(cfg.enabled_rules, vec!["Kubernetes.Pod.Exec".to_owned()]);
        assert!(cfg.enabled("Kubernetes.Pod.Exec", false));
        assert!(!cfg.enabled("Other", false));
        assert!(cfg.enabled("Other", true));
        // `enabled` in RULE_SETTINGS beats DISABLED_RULES and the default.
        assert!(cfg.enabled("A.B", true));
        assert!(!cfg.enabled("c.d", true));
    }

    #[test]
    fn rule_settings_come_from_one_variable_or_one_file() {
        let dir = std::env::temp_dir().join(format!("rule-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("settings.json");
        std::fs::write(&path, r#"{"X.Y": {"threshold": 4}}"#).expect("write");
        let p = path.to_string_lossy().into_owned();
        let cfg = from(&[("RULE_SETTINGS_FILE", p.as_str())]).expect("valid");
        assert_eq!(cfg.settings("x.y").and_then(|s| s.threshold), Some(4));
        let both = from(&[("RULE_SETTINGS_FILE", p.as_str()), ("RULE_SETTINGS", "{}")]);
        // `{}` is empty: the file is still the only source.
        assert!(both.is_ok());
        let both = from(&[
            ("RULE_SETTINGS_FILE", p.as_str()),
            ("RULE_SETTINGS", r#"{"X.Y": {}}"#),
        ])
        .expect_err("two sources");
        assert_eq!(both.variable, "RULE_SETTINGS_FILE");
        let missing =
            from(&[("RULE_SETTINGS_FILE", "/nonexistent/settings.json")]).expect_err("unreadable");
        assert!(missing.reason.contains("cannot read"), "{}", missing.reason);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_region_is_the_functions_and_unknown_without_it() {
        assert_eq!(from(&[]).expect("default").region, None);
        assert_eq!(from(&[("AWS_REGION", " ")]).expect("blank").region, None);
        let cfg = from(&[("AWS_REGION", "eu-west-3")]).expect("valid");
        assert_eq!(cfg.region.as_deref(), Some("eu-west-3"));
    }

    #[test]
    fn the_detectors_own_resources_are_read_and_unknown_by_default() {
        assert!(!from(&[]).expect("default").resources.is_known());
        let cfg = from(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "stack-DetectorFunction-AbC"),
            ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:alerts"),
            (
                "DETECTOR_TOPIC_ARNS",
                "arn:aws:sns:us-east-1:1:alerts, arn:aws:sns:us-east-1:1:ops",
            ),
            ("DETECTOR_RULE_NAMES", "stack-DetectorFunction*,"),
            ("DETECTOR_STREAM_NAME", " "),
        ])
        .expect("valid");
        let r = &cfg.resources;
        assert_eq!(
            r.function_name.as_deref(),
            Some("stack-DetectorFunction-AbC")
        );
        assert_eq!(r.topic_arns.len(), 2, "{r:?}");
        assert_eq!(r.rule_names, ["stack-DetectorFunction*"]);
        assert_eq!(r.stream_name, None);
        assert!(r.is_known());
    }

    #[test]
    fn errors_name_the_variable() {
        for (var, value) in [
            ("MULTIPLE_403_THRESHOLD", "0"),
            ("MULTIPLE_403_THRESHOLD", "ten"),
            ("MULTIPLE_403_WINDOW_MINUTES", "-5"),
            ("POD_SCAN_WINDOW_MINUTES", "1.5"),
            ("POD_SCAN_MATCH", "fuzzy"),
            ("ALLOW_SOURCE_CIDRS", "10.0.0.0/33"),
            ("MAX_DECOMPRESSED_MB", "0"),
        ] {
            let e = from(&[(var, value)]).expect_err(var);
            assert_eq!(e.variable, var);
            assert!(e.to_string().contains(var), "{e}");
        }
    }
}
