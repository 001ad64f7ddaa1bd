//! Per-rule settings (`RULE_SETTINGS`, or the file `RULE_SETTINGS_FILE`
//! names): one JSON object keyed by rule id, read the same way for every
//! rule, so a new rule needs no new variable.
//!
//! ```json
//! {
//!   "Kubernetes.Pod.Exec": {"enabled": true, "severity": "HIGH"},
//!   "Amazon.EKS.Audit.Multiple403": {"threshold": 20, "dedup_minutes": 60, "source": "first-or-last"}
//! }
//! ```
//!
//! `enabled`, `threshold`, `dedup_minutes` and `severity` apply to every
//! rule; any other member is a rule-specific option, kept as text for the
//! rule to read. Which ids and options exist is the registry's business:
//! [`crate::rules::check_rules`] refuses unknown ones at start-up.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ConfigError;
use crate::vocab::Severity;

/// Longest dedup period a rule may be given, in minutes (a week).
pub const MAX_DEDUP_MINUTES: u64 = 10_080;

/// Highest threshold a rule may be given.
pub const MAX_THRESHOLD: u64 = 1_000_000;

/// Longest settings document accepted (a Lambda's whole environment is
/// limited to 4 KB; a file may be larger).
pub const MAX_SETTINGS_BYTES: usize = 256 * 1024;

/// One rule's settings; `None` keeps the rule's own default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSettings {
    /// Runs or not, whatever the rule's default.
    pub enabled: Option<bool>,
    /// Matches in one window that raise the alert.
    pub threshold: Option<u64>,
    /// Window (dedup period) length, in minutes.
    pub dedup_minutes: Option<u64>,
    /// Replaces every severity the rule would give.
    pub severity: Option<Severity>,
    /// Rule-specific options, as text (e.g. Multiple403's `source`).
    pub options: BTreeMap<String, String>,
}

/// Reads a settings document; `variable` names where it came from in errors.
pub fn parse(
    variable: &'static str,
    text: &str,
) -> Result<BTreeMap<String, RuleSettings>, ConfigError> {
    let fail = |reason: String| ConfigError {
        variable,
        value: crate::bounded::cap(text),
        reason,
    };
    if text.len() > MAX_SETTINGS_BYTES {
        return Err(fail(format!(
            "longer than {MAX_SETTINGS_BYTES} bytes ({})",
            text.len()
        )));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| fail(format!("not JSON: {e}")))?;
    let Value::Object(rules) = doc else {
        return Err(fail("expected an object keyed by rule id".into()));
    };
    let mut out = BTreeMap::new();
    for (id, body) in rules {
        let Value::Object(members) = body else {
            return Err(fail(format!("rule '{id}': expected an object of settings")));
        };
        let mut s = RuleSettings::default();
        for (key, value) in members {
            let bad = |what: &str| fail(format!("rule '{id}': '{key}' {what}"));
            match key.as_str() {
                "enabled" => {
                    s.enabled = Some(
                        value
                            .as_bool()
                            .ok_or_else(|| bad("expects true or false"))?,
                    )
                }
                "threshold" => {
                    s.threshold = Some(
                        value
                            .as_u64()
                            .filter(|n| (1..=MAX_THRESHOLD).contains(n))
                            .ok_or_else(|| {
                                bad(&format!("expects a whole number from 1 to {MAX_THRESHOLD}"))
                            })?,
                    )
                }
                "dedup_minutes" => {
                    s.dedup_minutes = Some(
                        value
                            .as_u64()
                            .filter(|n| (1..=MAX_DEDUP_MINUTES).contains(n))
                            .ok_or_else(|| {
                                bad(&format!(
                                    "expects a whole number from 1 to {MAX_DEDUP_MINUTES}"
                                ))
                            })?,
                    )
                }
                "severity" => {
                    s.severity = Some(
                        value
                            .as_str()
                            .and_then(severity_named)
                            .ok_or_else(|| bad("expects INFO, LOW, MEDIUM, HIGH or CRITICAL"))?,
                    )
                }
                _ => {
                    let text = match value {
                        Value::String(v) => v,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(bad("expects a string, a number or true/false")),
                    };
                    s.options.insert(key, text);
                }
            }
        }
        out.insert(id, s);
    }
    Ok(out)
}

/// `HIGH`, `high`, ... → the severity.
pub fn severity_named(name: &str) -> Option<Severity> {
    Some(match name.trim().to_ascii_uppercase().as_str() {
        "INFO" => Severity::Info,
        "LOW" => Severity::Low,
        "MEDIUM" => Severity::Medium,
        "HIGH" => Severity::High,
        "CRITICAL" => Severity::Critical,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_common_settings_and_options() {
        let s = parse(
            "RULE_SETTINGS",
            r#"{"A.B": {"enabled": false, "threshold": 3, "dedup_minutes": 15, "severity": "high", "source": "first-or-last", "n": 5}}"#,
        )
        .expect("valid");
        let a = &s["A.B"];
        assert_eq!(a.enabled, Some(false));
        assert_eq!(a.threshold, Some(3));
        assert_eq!(a.dedup_minutes, Some(15));
        assert_eq!(a.severity, Some(Severity::High));
        assert_eq!(a.options["source"], "first-or-last");
        assert_eq!(a.options["n"], "5");
    }

    #[test]
    fn refuses_bad_values_naming_the_rule_and_setting() {
        for (text, needle) in [
            ("[]", "object keyed by rule id"),
            (r#"{"A": 1}"#, "rule 'A'"),
            (r#"{"A": {"threshold": 0}}"#, "'threshold'"),
            (r#"{"A": {"threshold": -2}}"#, "'threshold'"),
            (r#"{"A": {"dedup_minutes": 99999}}"#, "'dedup_minutes'"),
            (r#"{"A": {"severity": "urgent"}}"#, "'severity'"),
            (r#"{"A": {"enabled": "yes"}}"#, "'enabled'"),
            (r#"{"A": {"x": [1]}}"#, "'x'"),
            ("{", "not JSON"),
        ] {
            let e = parse("RULE_SETTINGS", text).expect_err(text);
            assert_eq!(e.variable, "RULE_SETTINGS");
            assert!(e.reason.contains(needle), "{text}: {}", e.reason);
        }
    }
}
