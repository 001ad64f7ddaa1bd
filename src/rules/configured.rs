//! A rule as the settings made it: [`Configured`] wraps any rule with the
//! common settings of `RULE_SETTINGS` (threshold, dedup minutes, severity),
//! so built-in, catalog and user rules all take them the same way, and
//! [`check_rules`] refuses settings that name no rule or option.

use serde_json::Value;

use super::{registry, Anchor, Rule, RuleOption};
use crate::audit::AuditEvent;
use crate::config::{ConfigError, DetectorConfig};
use crate::net::CidrList;
use crate::vocab::{EventContext, Match, RuleMeta, Severity, Verdict, WindowParams};
use crate::window::WindowState;

/// Milliseconds in `m` minutes, saturating.
pub fn minutes(m: u64) -> i64 {
    i64::try_from(m)
        .unwrap_or(i64::MAX / 60_000)
        .saturating_mul(60_000)
}

/// A rule with the user's common settings applied.
#[derive(Debug)]
pub struct Configured {
    rule: Box<dyn Rule>,
    window: WindowParams,
    severity: Option<Severity>,
}

impl Configured {
    /// Applies `config`'s settings for the rule's id.
    pub fn new(rule: Box<dyn Rule>, config: &DetectorConfig) -> Self {
        let mut window = rule.window();
        let mut severity = None;
        if let Some(s) = config.settings(rule.meta().id.as_str()) {
            if let Some(t) = s.threshold {
                window.threshold = t;
            }
            if let Some(m) = s.dedup_minutes {
                window.window_ms = minutes(m);
            }
            if let Some(sev) = s.severity {
                window.max_severity = sev;
                severity = Some(sev);
            }
        }
        Self {
            rule,
            window,
            severity,
        }
    }
}

impl Rule for Configured {
    fn meta(&self) -> &'static RuleMeta {
        self.rule.meta()
    }

    fn window(&self) -> WindowParams {
        self.window
    }

    fn anchor(&self) -> Anchor {
        self.rule.anchor()
    }

    fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        allow: &CidrList,
        out: &mut Vec<Match>,
    ) -> Verdict {
        let from = out.len();
        let verdict = self.rule.evaluate(ev, ctx, allow, out);
        if let Some(sev) = self.severity {
            for m in &mut out[from..] {
                m.severity = sev;
            }
        }
        verdict
    }

    fn title(&self, state: &WindowState, severity: Severity) -> String {
        self.rule.title(state, severity)
    }

    fn summary(&self, state: &WindowState) -> Value {
        self.rule.summary(state)
    }

    fn headline(&self, severity: Severity) -> &'static str {
        self.rule.headline(severity)
    }

    fn enabled_by_default(&self) -> bool {
        self.rule.enabled_by_default()
    }

    fn options(&self) -> &'static [RuleOption] {
        self.rule.options()
    }

    fn max_threshold(&self) -> Option<u64> {
        self.rule.max_threshold()
    }

    fn filter(&self) -> super::filter::Filter {
        self.rule.filter()
    }

    fn investigate(&self, state: &WindowState) -> Vec<crate::vocab::Condition> {
        self.rule.investigate(state)
    }
}

/// Checks `DISABLED_RULES`, `ENABLED_RULES` and `RULE_SETTINGS` against
/// the registry: a typo stops the function at start-up instead of silently
/// leaving a rule on or a setting unused.
pub fn check_rules(config: &DetectorConfig) -> Result<(), ConfigError> {
    let rules = registry(config);
    check_rules_against(config, &rules)
}

/// [`check_rules`] against a given list of rules (yours included).
pub fn check_rules_against(
    config: &DetectorConfig,
    rules: &[Box<dyn Rule>],
) -> Result<(), ConfigError> {
    let cloudtrail: Vec<&'static str> = super::cloudtrail_rules()
        .iter()
        .filter(|(_, _, optional)| *optional)
        .map(|(meta, _, _)| meta.id.as_str())
        .collect();
    let known: Vec<&'static str> = rules
        .iter()
        .map(|r| r.meta().id.as_str())
        .chain(cloudtrail.iter().copied())
        .collect();
    let find = |name: &str| {
        rules
            .iter()
            .find(|r| r.meta().id.as_str().eq_ignore_ascii_case(name))
    };
    let is_known = |name: &str| known.iter().any(|k| k.eq_ignore_ascii_case(name));
    let unknown = |variable: &'static str, value: String, name: &str| ConfigError {
        variable,
        value,
        reason: format!("unknown rule '{name}' (known: {})", known.join(", ")),
    };
    // With a rule file that could not load, an unknown name may be one of
    // its rules: the name is logged and left out, and every other rule
    // keeps working (the file is reported as not loaded).
    let skipped = !config.sigma.0.problems.is_empty();
    let unknown_or_skipped = |e: ConfigError| {
        if skipped {
            tracing::warn!(error = %e, "setting names a rule that is not loaded (a rule file could not load); left out");
            Ok(())
        } else {
            Err(e)
        }
    };
    for (variable, list) in [
        ("DISABLED_RULES", &config.disabled_rules),
        ("ENABLED_RULES", &config.enabled_rules),
    ] {
        for name in list {
            if !is_known(name) {
                unknown_or_skipped(unknown(variable, list.join(","), name))?;
            }
        }
    }
    for name in &config.enabled_rules {
        if config
            .disabled_rules
            .iter()
            .any(|d| d.eq_ignore_ascii_case(name))
        {
            return Err(ConfigError {
                variable: "ENABLED_RULES",
                value: config.enabled_rules.join(","),
                reason: format!("'{name}' is in DISABLED_RULES too"),
            });
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (id, settings) in &config.rule_settings {
        let value = || format!("{id}: ...");
        let Some(rule) = find(id) else {
            if cloudtrail.iter().any(|c| c.eq_ignore_ascii_case(id))
                && settings.options.is_empty()
                && settings.threshold.is_none()
                && settings.dedup_minutes.is_none()
                && settings.severity.is_none()
            {
                // A CloudTrail rule takes `enabled` only.
                continue;
            }
            unknown_or_skipped(unknown("RULE_SETTINGS", value(), id))?;
            continue;
        };
        if seen.iter().any(|s| s.eq_ignore_ascii_case(id)) {
            return Err(ConfigError {
                variable: "RULE_SETTINGS",
                value: value(),
                reason: format!("rule '{id}' is listed twice"),
            });
        }
        seen.push(id);
        if let (Some(threshold), Some(most)) = (settings.threshold, rule.max_threshold()) {
            if threshold > most {
                return Err(ConfigError {
                    variable: "RULE_SETTINGS",
                    value: value(),
                    reason: format!(
                        "rule '{id}' counts distinct values: its threshold is at most {most} (got {threshold})"
                    ),
                });
            }
        }
        for (name, text) in &settings.options {
            let options = rule.options();
            let Some(option) = options.iter().find(|o| o.name == name) else {
                let names: Vec<&str> = options.iter().map(|o| o.name).collect();
                return Err(ConfigError {
                    variable: "RULE_SETTINGS",
                    value: value(),
                    reason: format!(
                        "rule '{id}' has no setting '{name}' (its settings: enabled, threshold, \
                         dedup_minutes, severity{}{})",
                        if names.is_empty() { "" } else { ", " },
                        names.join(", ")
                    ),
                });
            };
            if let Err(why) = option.kind.check(text) {
                return Err(ConfigError {
                    variable: "RULE_SETTINGS",
                    value: value(),
                    reason: format!("rule '{id}': '{name}' {why} (got '{text}')"),
                });
            }
        }
    }
    Ok(())
}
