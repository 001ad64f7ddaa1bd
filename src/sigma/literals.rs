//! What a message must contain for a Sigma rule to match it: a set of
//! strings, one of which (ASCII case-insensitively, as Sigma compares) is
//! in every event the rule matches. The prefilter looks for every rule's
//! strings in one pass; a rule with no such set is a candidate on every
//! line.
//!
//! Conservative by construction: only a string the rule's values force into
//! the event's text is taken, and only the part of it that JSON never
//! escapes (ASCII letters, digits, `-`, `_`, space; see
//! [`crate::prefilter`] for the escapes kube-apiserver writes). A `not`, a
//! regular expression, a CIDR, a comparison or an encoding modifier gives
//! no string; an `and` needs one of its parts' sets, an `or` all of them.

use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Detections, Modifier, Quantifier, SelectorPattern,
    SigmaRule, SigmaValue, StringPart,
};

/// Shortest string worth looking for (shorter ones are everywhere).
pub const MIN_LITERAL: usize = 3;

/// Most strings one rule may need looked for.
pub const MAX_LITERALS: usize = 256;

/// The strings one of which every event `rule` matches contains; `None`
/// when there is no such set.
pub fn of_rule(rule: &SigmaRule) -> Option<Vec<String>> {
    let d = &rule.detection;
    let sets = d
        .conditions
        .iter()
        .map(|c| of_condition(c, d))
        .collect::<Option<Vec<_>>>()?;
    union(sets)
}

fn of_condition(c: &ConditionExpr, d: &Detections) -> Option<Vec<String>> {
    match c {
        ConditionExpr::And(parts) => best(parts.iter().filter_map(|p| of_condition(p, d))),
        ConditionExpr::Or(parts) => union(
            parts
                .iter()
                .map(|p| of_condition(p, d))
                .collect::<Option<Vec<_>>>()?,
        ),
        ConditionExpr::Not(_) => None,
        ConditionExpr::Identifier(name) => of_detection(d.named.get(name)?),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let mut names: Vec<&String> = d
                .named
                .keys()
                .filter(|n| match pattern {
                    SelectorPattern::Them => !n.starts_with('_'),
                    SelectorPattern::Pattern(p) => rsigma_parser::detection_name_matches(p, n),
                })
                .collect();
            names.sort();
            if names.is_empty() {
                return None;
            }
            let sets = names.iter().map(|n| of_detection(d.named.get(*n)?));
            match quantifier {
                Quantifier::All => best(sets.flatten()),
                Quantifier::Count(0) => None,
                Quantifier::Any | Quantifier::Count(_) => union(sets.collect::<Option<Vec<_>>>()?),
            }
        }
    }
}

fn of_detection(d: &Detection) -> Option<Vec<String>> {
    match d {
        Detection::AllOf(items) => best(items.iter().filter_map(of_item)),
        Detection::And(parts) => best(parts.iter().filter_map(of_detection)),
        Detection::AnyOf(parts) => union(parts.iter().map(of_detection).collect::<Option<_>>()?),
        Detection::Keywords(values) => union(
            values
                .iter()
                .map(|v| of_value(v).map(|s| vec![s]))
                .collect::<Option<_>>()?,
        ),
        // Per-member scopes and their conditions: not worth the risk.
        Detection::ArrayMatch { .. } | Detection::Conditional { .. } => None,
    }
}

fn of_item(item: &DetectionItem) -> Option<Vec<String>> {
    // Modifiers that keep the value's text in the event; any other (`not`
    // forms, `re`, `cidr`, comparisons, encodings, `exists`, field
    // references) may match text that does not hold it.
    let plain = item.field.modifiers.iter().all(|m| {
        matches!(
            m,
            Modifier::Contains
                | Modifier::StartsWith
                | Modifier::EndsWith
                | Modifier::All
                | Modifier::Cased
        )
    });
    if !plain || item.values.is_empty() {
        return None;
    }
    if item.field.has_modifier(Modifier::All) {
        best(item.values.iter().filter_map(of_value).map(|s| vec![s]))
    } else {
        union(
            item.values
                .iter()
                .map(|v| of_value(v).map(|s| vec![s]))
                .collect::<Option<_>>()?,
        )
    }
}

/// The longest run of never-escaped characters of a value's plain text.
fn of_value(v: &SigmaValue) -> Option<String> {
    let text = match v {
        SigmaValue::String(s) => s
            .parts
            .iter()
            .filter_map(|p| match p {
                StringPart::Plain(t) => Some(t.as_str()),
                StringPart::Special(_) => None,
            })
            .flat_map(|t| t.split(|c: char| !safe(c)))
            .max_by_key(|run| run.len())?
            .to_owned(),
        SigmaValue::Integer(i) => i.to_string(),
        SigmaValue::Float(_) | SigmaValue::Bool(_) | SigmaValue::Null => return None,
    };
    (text.len() >= MIN_LITERAL).then(|| text.to_ascii_lowercase())
}

/// Characters JSON (and kube-apiserver) never escape, and that the
/// prefilter's escape check covers.
fn safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' ')
}

/// Every set's strings: one of them is needed.
fn union(sets: Vec<Vec<String>>) -> Option<Vec<String>> {
    let mut out: Vec<String> = sets.into_iter().flatten().collect();
    out.sort();
    out.dedup();
    (!out.is_empty() && out.len() <= MAX_LITERALS).then_some(out)
}

/// The most selective of several sets that are all needed: the one whose
/// shortest string is longest (fewer strings break ties).
fn best(sets: impl Iterator<Item = Vec<String>>) -> Option<Vec<String>> {
    sets.max_by_key(|s| {
        let shortest = s.iter().map(String::len).min().unwrap_or(0);
        (shortest, std::cmp::Reverse(s.len()))
    })
}
