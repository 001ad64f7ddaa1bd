//! `eks-audit-detector rules list`: every rule of the registry with what a
//! user chooses by (id, title, severity, threshold, dedup minutes, whether
//! it runs, where it comes from, MITRE). The README's rule table is this
//! listing as Markdown; a test keeps them equal.

use std::fmt::Write as _;

use serde::Serialize;

use super::{registry, Rule};
use crate::config::DetectorConfig;

/// One rule as listed.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    /// Public id.
    pub id: &'static str,
    /// Human-readable name.
    pub title: &'static str,
    /// The highest severity it gives (its default is in the README entry).
    pub severity: &'static str,
    /// Matches in one window that raise the alert.
    pub threshold: u64,
    /// Window (dedup period) in minutes.
    pub dedup_minutes: i64,
    /// Whether it runs with these settings.
    pub enabled: bool,
    /// Whether it runs with no settings.
    pub enabled_by_default: bool,
    /// Panther, Splunk, eks-audit-detector or user.
    pub source: &'static str,
    /// MITRE ATT&CK tactic:technique pairs.
    pub mitre: &'static str,
}

/// Every registry rule with `config`'s settings applied, then the rules
/// that read CloudTrail and the detector's own reports (one alert per
/// event: threshold 1, no dedup period).
pub fn rows(config: &DetectorConfig) -> Vec<RuleRow> {
    let mut out: Vec<RuleRow> = registry(config)
        .into_iter()
        .map(|rule| {
            let on = config.enabled(rule.meta().id.as_str(), rule.enabled_by_default());
            let configured = super::Configured::new(rule, config);
            row(&configured, on)
        })
        .collect();
    for (meta, severity, optional) in super::cloudtrail_rules() {
        out.push(RuleRow {
            id: meta.id.as_str(),
            title: meta.name,
            severity: severity.as_str(),
            threshold: 1,
            dedup_minutes: 0,
            enabled: !optional || config.enabled(meta.id.as_str(), true),
            enabled_by_default: true,
            source: meta.source.as_str(),
            mitre: meta.mitre,
        });
    }
    out
}

fn row(rule: &dyn Rule, enabled: bool) -> RuleRow {
    let meta = rule.meta();
    let w = rule.window();
    RuleRow {
        id: meta.id.as_str(),
        title: meta.name,
        severity: w.max_severity.as_str(),
        threshold: w.threshold,
        dedup_minutes: w.window_ms / 60_000,
        enabled,
        enabled_by_default: rule.enabled_by_default(),
        source: meta.source.as_str(),
        mitre: meta.mitre,
    }
}

/// Aligned columns for a terminal.
pub fn render_table(rows: &[RuleRow]) -> String {
    let id_w = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<id_w$}  {:<8}  {:>9}  {:>5}  {:<7}  {:<18}  {:<28}  TITLE",
        "ID", "SEVERITY", "THRESHOLD", "DEDUP", "ENABLED", "SOURCE", "MITRE"
    );
    for r in rows {
        let _ = writeln!(
            t,
            "{:<id_w$}  {:<8}  {:>9}  {:>5}  {:<7}  {:<18}  {:<28}  {}",
            r.id,
            r.severity,
            r.threshold,
            r.dedup_minutes,
            if r.enabled { "yes" } else { "no" },
            r.source,
            r.mitre,
            r.title
        );
    }
    t
}

/// The README's table (default settings).
pub fn render_markdown(rows: &[RuleRow]) -> String {
    let mut t = String::from(
        "| Rule id | Title | Severity (highest) | Threshold | Dedup minutes | On by default | Source | MITRE ATT&CK |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            t,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            r.id,
            r.title.replace('|', "\\|"),
            r.severity,
            r.threshold,
            r.dedup_minutes,
            if r.enabled_by_default { "yes" } else { "no" },
            r.source,
            r.mitre
        );
    }
    t
}

/// One JSON array.
pub fn render_json(rows: &[RuleRow]) -> String {
    serde_json::to_string_pretty(rows).unwrap_or_default() + "\n"
}
