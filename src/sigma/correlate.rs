//! Correlations: checked at load and bound to the detections they name
//! (what they count, their threshold, their group-by fields per detection).

use std::collections::BTreeSet;
use std::sync::Arc;

use rsigma_eval::compile_rule;
use rsigma_parser::{
    ConditionExpr, ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType,
    SigmaRule as Parsed, WindowMode,
};

use super::load::{rule_id, Doc};
use super::{eks, Correlation, Counts, Kind, SigmaRule, Step, MAX_DISTINCT, MAX_TIMESPAN_MINUTES};

/// Checks a correlation and binds it to the detections it names.
pub(super) fn correlation(
    doc: &Doc<CorrelationRule>,
    detections: &[(Doc<Parsed>, Arc<SigmaRule>)],
    failed: &BTreeSet<String>,
    correlations: &[Doc<CorrelationRule>],
) -> Result<Correlation, String> {
    let c = &doc.item;
    let id = rule_id(c.id.as_deref(), c.name.as_deref(), &c.title);
    let counts = match c.correlation_type {
        CorrelationType::EventCount => Counts::Events,
        CorrelationType::ValueCount => Counts::Values(String::new()),
        CorrelationType::Temporal => Counts::Rules,
        CorrelationType::TemporalOrdered => Counts::Sequence,
        other => {
            return Err(format!(
                "correlation {id}: type {} is not supported (event_count, value_count, temporal, temporal_ordered)",
                other.as_str()
            ))
        }
    };
    match c.window {
        WindowMode::Sliding | WindowMode::Tumbling => {}
        WindowMode::Session => {
            return Err(format!(
                "correlation {id}: session windows are not supported"
            ))
        }
    }
    if c.rules.is_empty() {
        return Err(format!("correlation {id}: names no rules"));
    }
    let minutes = c.timespan.seconds.div_ceil(60);
    if c.timespan.seconds == 0 || minutes > MAX_TIMESPAN_MINUTES {
        return Err(format!(
            "correlation {id}: timespan must be more than 0 and at most {MAX_TIMESPAN_MINUTES} minutes"
        ));
    }
    let mut steps = Vec::new();
    for name in &c.rules {
        let found = detections
            .iter()
            .find(|(d, r)| r.id == *name || d.item.name.as_deref() == Some(name.as_str()));
        let Some((parsed, rule)) = found else {
            let is_correlation = correlations.iter().any(|d| {
                d.item.id.as_deref() == Some(name) || d.item.name.as_deref() == Some(name)
            });
            return Err(if is_correlation {
                format!("correlation {id}: names correlation {name}; chained correlations are not supported")
            } else if failed.contains(name) {
                format!("correlation {id}: names rule {name}, which could not be loaded")
            } else {
                format!("correlation {id}: names rule {name}, which does not exist")
            });
        };
        let Kind::Detection { .. } = &rule.kind else {
            return Err(format!("correlation {id}: names correlation {name}"));
        };
        // The correlation needs its own compiled copy (the rule may also
        // alert on its own).
        let mut item = parsed.item.clone();
        eks::map_rule(&mut item);
        let compiled = compile_rule(&item).map_err(|e| format!("rule {name}: {e}"))?;
        let group_fields = c
            .group_by
            .iter()
            .map(|g| {
                let field = c
                    .aliases
                    .iter()
                    .find(|a| a.alias == *g)
                    .and_then(|a| {
                        a.mapping
                            .get(&rule.id)
                            .or_else(|| parsed.item.name.as_ref().and_then(|n| a.mapping.get(n)))
                    })
                    .map_or(g.as_str(), String::as_str);
                eks::field(field).to_owned()
            })
            .collect();
        steps.push(Step {
            id: rule.id.clone(),
            compiled,
            group_fields,
        });
    }
    let (threshold, field) = threshold(c, &id, steps.len())?;
    let counts = match counts {
        Counts::Values(_) => Counts::Values(
            eks::field(&field.ok_or(format!(
                "correlation {id}: value_count needs condition.field"
            ))?)
            .to_owned(),
        ),
        other => other,
    };
    if matches!(counts, Counts::Values(_) | Counts::Rules) && threshold > MAX_DISTINCT {
        return Err(format!(
            "correlation {id}: counts {threshold} distinct values, more than the {MAX_DISTINCT} a window holds"
        ));
    }
    Ok(Correlation {
        counts,
        steps,
        timespan_ms: (minutes * 60_000) as i64,
        threshold,
        group_by: c.group_by.clone(),
    })
}

/// The count that raises the alert, and `value_count`'s field.
fn threshold(c: &CorrelationRule, id: &str, steps: usize) -> Result<(u64, Option<String>), String> {
    let temporal = matches!(
        c.correlation_type,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    );
    match &c.condition {
        CorrelationCondition::Threshold {
            predicates, field, ..
        } => {
            let at_least = match predicates.as_slice() {
                [(ConditionOperator::Gte, n)] => *n,
                [(ConditionOperator::Gt, n)] => n.saturating_add(1),
                _ => {
                    return Err(format!(
                        "correlation {id}: only a single `gte` or `gt` condition is supported \
                         (an upper bound needs the window's end, which a stream never sees)"
                    ))
                }
            };
            if at_least == 0 {
                return Err(format!("correlation {id}: the condition is always true"));
            }
            let steps = steps as u64;
            let ordered = c.correlation_type == CorrelationType::TemporalOrdered;
            let at_least = match at_least {
                // No condition (the parser's `gte: 1`): every rule.
                1 if temporal => steps,
                n if temporal && n > steps => {
                    return Err(format!(
                        "correlation {id}: the condition counts {n} rules of the {steps} it names"
                    ))
                }
                n if ordered && n != steps => {
                    return Err(format!(
                        "correlation {id}: an ordered sequence needs every rule it names ({steps})"
                    ))
                }
                n => n,
            };
            Ok((at_least, field.as_ref().and_then(|f| f.first().cloned())))
        }
        CorrelationCondition::Extended(expr) if temporal => {
            if all_and(expr, &c.rules) {
                Ok((steps as u64, None))
            } else {
                Err(format!(
                    "correlation {id}: only `rule_a and rule_b ...` naming every rule is supported"
                ))
            }
        }
        CorrelationCondition::Extended(_) => Err(format!(
            "correlation {id}: a boolean condition is only for temporal correlations"
        )),
    }
}

/// True when `expr` is an `and` of exactly the named rules.
fn all_and(expr: &ConditionExpr, rules: &[String]) -> bool {
    let mut names = Vec::new();
    fn walk<'e>(e: &'e ConditionExpr, out: &mut Vec<&'e str>) -> bool {
        match e {
            ConditionExpr::And(parts) => parts.iter().all(|p| walk(p, out)),
            ConditionExpr::Identifier(n) => {
                out.push(n);
                true
            }
            _ => false,
        }
    }
    if !walk(expr, &mut names) {
        return false;
    }
    names.sort_unstable();
    names.dedup();
    let mut want: Vec<&str> = rules.iter().map(String::as_str).collect();
    want.sort_unstable();
    want.dedup();
    names == want
}

/// A correlation's clauses: those any of its detections' give (none when
/// one of them has none).
pub(super) fn corr_literals(
    c: &Correlation,
    detections: &[(Doc<Parsed>, Arc<SigmaRule>)],
) -> Option<Vec<super::literals::Clause>> {
    let mut cnfs = Vec::new();
    for step in &c.steps {
        let (_, rule) = detections.iter().find(|(_, r)| r.id == step.id)?;
        cnfs.push(rule.literals.clone()?);
    }
    let out = super::literals::any(cnfs);
    (!out.is_empty()).then_some(out)
}
