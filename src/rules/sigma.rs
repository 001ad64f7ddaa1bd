//! Sigma rules as rules of the registry: each loaded rule (see
//! [`crate::sigma`]) is a single-event rule through [`Catalog`], so it
//! gets the same alert, context fields, settings and windows as the
//! built-in ones.
//!
//! - A detection alerts once per dedup key per period: the cluster and
//!   the rule's dedup fields (by default the user and the first source
//!   address), for 60 minutes unless the rule says otherwise.
//! - A correlation keys a window on the cluster and its `group-by` values,
//!   `timespan` long, and counts in it: events (`event_count`), distinct
//!   values (`value_count`), distinct detections (`temporal`) or steps
//!   taken in order (`temporal_ordered`).

use std::sync::Arc;

use super::catalog::{Catalog, EventRule, Hit, Spec};
use super::filter::Filter;
use super::{Anchor, Needle, Rule};
use crate::audit::AuditEvent;
use crate::config::{DetectorConfig, SourceAddress};
use crate::sigma::{field_text, field_text_whole, key_value, Kind, SigmaRule};
use crate::vocab::{RuleId, RuleMeta, Severity, Source};

/// The loaded Sigma rules of `config`, as rules.
pub fn rules(config: &DetectorConfig) -> Vec<Box<dyn Rule>> {
    config
        .sigma
        .0
        .rules
        .iter()
        .map(|r| {
            let rule = Sigma::new(r.clone(), config.multiple_403_source);
            Box::new(Catalog::new(rule)) as Box<dyn Rule>
        })
        .collect()
}

/// One Sigma rule.
#[derive(Debug)]
pub struct Sigma {
    rule: Arc<SigmaRule>,
    spec: &'static Spec,
    /// Which address of `sourceIPs` a dedup key takes.
    keyed_on: SourceAddress,
}

/// Sigma `level` → severity (no level: medium, as Sigma's default).
pub fn severity(level: Option<rsigma_parser::Level>) -> Severity {
    use rsigma_parser::Level;
    match level {
        Some(Level::Informational) => Severity::Info,
        Some(Level::Low) => Severity::Low,
        None | Some(Level::Medium) => Severity::Medium,
        Some(Level::High) => Severity::High,
        Some(Level::Critical) => Severity::Critical,
    }
}

/// Text kept for the life of the process: rules are loaded once at start.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// What an on-call engineer reads about the rule: its description, false
/// positives, author and licence (SigmaHQ's Detection Rule License asks
/// for the attribution), and where it was loaded from.
fn runbook(r: &SigmaRule) -> String {
    let mut out = r.description.trim().to_owned();
    if !r.falsepositives.is_empty() {
        out.push_str(&format!(
            "\nFalse positives: {}.",
            r.falsepositives.join("; ")
        ));
    }
    if !r.author.is_empty() {
        out.push_str(&format!("\nAuthor: {}.", r.author));
    }
    if !r.license.is_empty() {
        out.push_str(&format!("\nLicense: {}.", r.license));
    }
    out.push_str(&format!("\nSigma rule {} ({}).", r.id, r.origin));
    out.trim().to_owned()
}

impl Sigma {
    /// Wraps a loaded rule (its description is built once, here); `keyed_on`
    /// says which address of `sourceIPs` a dedup key takes (the first, as
    /// the default key is specified, or in the hardened setting the
    /// connection's, which a client cannot forge).
    pub fn new(rule: Arc<SigmaRule>, keyed_on: SourceAddress) -> Self {
        let source = if rule.enabled_by_default {
            Source::Sigma
        } else {
            Source::SigmaHq
        };
        let (threshold, minutes) = match &rule.kind {
            Kind::Detection { dedup_minutes, .. } => (1, *dedup_minutes),
            Kind::Correlation(c) => (c.threshold, (c.timespan_ms / 60_000) as u64),
        };
        let anchor = match &rule.literals {
            Some(clauses) => Anchor::Folded(Box::leak(
                clauses
                    .iter()
                    .map(|clause| {
                        &*Box::leak(
                            clause
                                .iter()
                                .map(|l| Needle {
                                    text: leak(l.text.clone()),
                                    number: l.number,
                                })
                                .collect::<Vec<_>>()
                                .into_boxed_slice(),
                        )
                    })
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            )),
            None => Anchor::Always,
        };
        let spec = Box::leak(Box::new(Spec {
            meta: RuleMeta {
                id: RuleId::new(leak(rule.id.clone())),
                source,
                name: leak(rule.title.clone()),
                mitre: leak(rule.mitre.join(", ")),
                reference: leak(
                    rule.references
                        .first()
                        .cloned()
                        .unwrap_or_else(|| rule.origin.clone()),
                ),
                runbook: leak(runbook(&rule)),
            },
            severity: severity(rule.level),
            max_severity: severity(rule.level),
            threshold,
            dedup_minutes: minutes,
            enabled: rule.enabled_by_default,
            anchor,
            filter: Filter::All,
        }));
        Self {
            rule,
            spec,
            keyed_on,
        }
    }
}

/// `cluster|value|value...`, each value capped (see
/// [`crate::sigma::MAX_VALUE_BYTES`]) and its `\\` and `|` escaped with a
/// `\\`, so that no two lists of values make one key (`a|b`, `c` and `a`,
/// `b|c` are two); a missing field is empty.
fn key(cluster: &str, values: &[String]) -> String {
    let mut out =
        String::with_capacity(cluster.len() + values.iter().map(|v| v.len() + 1).sum::<usize>());
    push_escaped(&mut out, cluster);
    for v in values {
        out.push('|');
        push_escaped(&mut out, v);
    }
    out
}

/// `value` with each `\\` and `|` behind a `\\`.
fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        if matches!(c, '|' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

impl EventRule for Sigma {
    fn spec(&self) -> &'static Spec {
        self.spec
    }

    fn max_threshold(&self) -> Option<u64> {
        match &self.rule.kind {
            Kind::Correlation(c)
                if matches!(
                    c.counts,
                    crate::sigma::Counts::Values(_) | crate::sigma::Counts::Rules
                ) =>
            {
                Some(crate::window::MAX_DISTINCT_VALUES as u64)
            }
            _ => None,
        }
    }

    fn check(&self, ev: &AuditEvent<'_>, cluster: &str) -> Option<Hit> {
        // A message the prefilter found to lack this rule's strings cannot
        // match: not parsed for it.
        if let (Anchor::Folded(clauses), Some(hits)) = (self.spec.anchor, &ev.sigma_hits) {
            if !hits.has(clauses) {
                return None;
            }
        }
        // The event as Sigma rules read it, shared by all of them: each
        // member parsed the first time a rule reads under it.
        let event = ev.sigma();
        match &self.rule.kind {
            Kind::Detection { dedup_fields, .. } => {
                if !self.rule.matches(event) {
                    return None;
                }
                let values: Vec<String> = dedup_fields
                    .iter()
                    .map(|f| {
                        if f == "sourceIPs" {
                            // Picked from the whole list: the last
                            // address may be past any cut.
                            key_value(&address(field_text_whole(event, f), self.keyed_on))
                        } else {
                            field_text(event, f).unwrap_or_default()
                        }
                    })
                    .collect();
                Some(Hit::new(self.rule.title.clone(), key(cluster, &values)))
            }
            Kind::Correlation(c) => {
                let hit = c.hit(event)?;
                let shown: Vec<String> = c
                    .group_by
                    .iter()
                    .zip(&hit.group)
                    .map(|(g, v)| format!("{g}={}", shown(v)))
                    .collect();
                let title = if shown.is_empty() {
                    self.rule.title.clone()
                } else {
                    format!("{} ({})", self.rule.title, shown.join(", "))
                };
                let mut out = Hit::new(title, key(cluster, &hit.group));
                out.unique = hit.distinct;
                out.step = hit.step;
                Some(out)
            }
        }
    }
}

/// A group value as a title shows it: as it is, or as a quoted JSON string
/// when it holds what separates the title's pairs (`,`, `=`, parentheses)
/// or quotes, or is empty, so that no value can spell another pair and two
/// groups never share a title.
fn shown(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = !value.is_empty()
        && value.trim() == value
        && !value.contains([',', '=', '(', ')', '"', '\\']);
    if plain {
        std::borrow::Cow::Borrowed(value)
    } else {
        std::borrow::Cow::Owned(serde_json::Value::from(value).to_string())
    }
}

/// One address of `sourceIPs` (as read, joined with `,`): the first, or in
/// the hardened setting the last (the connection's).
fn address(v: Option<String>, source: SourceAddress) -> String {
    let v = v.unwrap_or_default();
    let picked = match source {
        SourceAddress::First => v.split(',').next(),
        SourceAddress::FirstOrLast => v.rsplit(',').next(),
    };
    picked.unwrap_or_default().to_owned()
}
