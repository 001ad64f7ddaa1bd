//! What a message must contain for a Sigma rule to match it: clauses of
//! strings, every clause holding at least one string (ASCII
//! case-insensitively, as Sigma compares) that is in every event the rule
//! matches. The prefilter looks for every rule's strings in one pass; a rule
//! with no clause is a candidate on every line.
//!
//! Conservative by construction: only a string the rule's values force into
//! the event's text is taken, and only the part of it that JSON never
//! escapes (ASCII letters, digits, `-`, `_`, space; see
//! [`crate::prefilter`] for the escapes kube-apiserver writes). A `not`, a
//! regular expression, a CIDR, a comparison or an encoding modifier gives
//! nothing; an `and` needs the clauses of all its parts, an `or` one clause
//! made of a clause of each of its parts. The names along a field's path
//! are clauses too (an event that has the field has its names).
//!
//! A numeric field (`responseStatus.code`) compared for equality with words
//! only gives an empty clause: no event can match.
//!
//! Sigma compares numbers as numbers (`1e3`, `1000.0` and `"+1000"` all
//! equal 1000), so digits are taken only from a field the API server
//! itself writes as an integer (`responseStatus.code`): there an integer
//! compared for equality is a *number*, whose digits must stand alone (no
//! digit right before or after them, no `.` right before); digits inside a
//! timestamp or a longer number do not count. Anywhere else the request's
//! author chooses how a number is written, and a value of only digits and
//! hyphens gives nothing. A `null` value (the field is absent) gives
//! nothing either, not even the field's names.

use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Detections, Modifier, Quantifier, SelectorPattern,
    SigmaRule, SigmaValue, StringPart,
};

/// Shortest string worth looking for (shorter ones are everywhere).
pub const MIN_LITERAL: usize = 3;

/// Most strings one clause may hold.
pub const MAX_LITERALS: usize = 64;

/// Most clauses kept per rule (the most selective; fewer is still sound).
pub const MAX_CLAUSES: usize = 8;

/// Shortest field name looked for (`spec`, `name` are in most events).
const MIN_FIELD_NAME: usize = 5;

/// One string to look for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Literal {
    /// Lower-case text.
    pub text: String,
    /// Digits that must stand alone (see the module's documentation).
    pub number: bool,
}

/// Strings one of which must appear.
pub type Clause = Vec<Literal>;

/// Fields the audit event always writes as JSON integers.
const NUMERIC_FIELDS: [&str; 1] = ["responseStatus.code"];

/// Strings in every audit event EKS writes (member names, and the
/// authorizer's annotation `authorization.k8s.io/decision: allow`).
const UBIQUITOUS: [&str; 11] = [
    "objectref",
    "requesturi",
    "responsestatus",
    "resource",
    "username",
    "useragent",
    "sourceips",
    "annotations",
    "apiversion",
    "allow",
    "authorization",
];

/// Strings in nearly every audit event, most common first: a clause made
/// of them selects little, so an `or` takes another clause when it can,
/// and a rule keeps its other clauses first.
const COMMON: [&str; 30] = [
    "objectref",
    "requesturi",
    "responsestatus",
    "resource",
    "namespace",
    "username",
    "useragent",
    "sourceips",
    "annotations",
    "apigroup",
    "apiversion",
    "requestobject",
    "metadata",
    "containers",
    "allow",
    "authorization",
    "system",
    "responsecomplete",
    "kube-system",
    "serviceaccounts",
    "nodes",
    "events",
    "watch",
    "update",
    "pods",
    "get",
    "list",
    "patch",
    "create",
    "secrets",
];

/// The clauses every event `rule` matches satisfies; `None` when there
/// are none (the rule needs every line).
pub fn of_rule(rule: &SigmaRule) -> Option<Vec<Clause>> {
    let d = &rule.detection;
    // Several conditions: any of them.
    let cnfs: Vec<Vec<Clause>> = d.conditions.iter().map(|c| of_condition(c, d)).collect();
    let mut out = any(cnfs);
    // A clause every audit event satisfies filters nothing and costs a
    // search: dropped (fewer clauses is still sound).
    out.retain(|c| c.is_empty() || !c.iter().all(|l| UBIQUITOUS.contains(&l.text.as_str())));
    out.sort_by_key(|c| std::cmp::Reverse(score(c)));
    out.truncate(MAX_CLAUSES);
    (!out.is_empty()).then_some(out)
}

fn of_condition(c: &ConditionExpr, d: &Detections) -> Vec<Clause> {
    match c {
        ConditionExpr::And(parts) => every(parts.iter().map(|p| of_condition(p, d))),
        ConditionExpr::Or(parts) => any(parts.iter().map(|p| of_condition(p, d)).collect()),
        ConditionExpr::Not(_) => Vec::new(),
        ConditionExpr::Identifier(name) => d.named.get(name).map(of_detection).unwrap_or_default(),
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
            let cnfs = names
                .iter()
                .filter_map(|n| d.named.get(*n))
                .map(of_detection);
            match quantifier {
                Quantifier::All => every(cnfs),
                Quantifier::Count(0) => Vec::new(),
                Quantifier::Any | Quantifier::Count(_) => any(cnfs.collect()),
            }
        }
    }
}

fn of_detection(d: &Detection) -> Vec<Clause> {
    match d {
        Detection::AllOf(items) => every(items.iter().map(of_item)),
        Detection::And(parts) => every(parts.iter().map(of_detection)),
        Detection::AnyOf(parts) => any(parts.iter().map(of_detection).collect()),
        Detection::Keywords(values) => one_of(values.iter().map(|v| of_value(v, false, false))),
        // Per-member scopes and their conditions: not worth the risk.
        Detection::ArrayMatch { .. } | Detection::Conditional { .. } => Vec::new(),
    }
}

fn of_item(item: &DetectionItem) -> Vec<Clause> {
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
    // `null` matches an event without the field: not even its name.
    if !plain || item.values.is_empty() || item.values.iter().any(|v| matches!(v, SigmaValue::Null))
    {
        return Vec::new();
    }
    // A numeric field compared for equality with words only (SigmaHQ's
    // `responseStatus.code: 'ALLOW'`) matches no event: an empty clause,
    // which nothing satisfies.
    let numeric = item
        .field
        .name
        .as_deref()
        .is_some_and(|f| NUMERIC_FIELDS.contains(&f));
    let words_only = item.values.iter().all(|v| match v {
        SigmaValue::String(s) => {
            s.original.parse::<f64>().is_err() && !s.original.contains(['*', '?'])
        }
        _ => false,
    });
    if numeric && words_only && item.field.modifiers.is_empty() {
        return vec![Vec::new()];
    }
    // The field's own names are in the text of an event that has it.
    let names = item
        .field
        .name
        .iter()
        .flat_map(|f| f.split('.'))
        .filter(|seg| seg.len() >= MIN_FIELD_NAME && seg.chars().all(safe))
        .map(|seg| {
            vec![Literal {
                text: seg.to_ascii_lowercase(),
                number: false,
            }]
        });
    let mut out: Vec<Clause> = names.collect();
    // Sigma compares numbers as numbers: `1e3`, `1000.0` and the string
    // `"+1000"` all equal 1000, and a number reads as its shortest digits
    // (`1e2` as `100`). Only a field the API server writes itself as an
    // integer keeps the digits; elsewhere the request's author chooses how
    // a number is written, and digits give nothing.
    let server_integer = numeric;
    // Equality: an integer's digits stand alone.
    let exact = item
        .field
        .modifiers
        .iter()
        .all(|m| matches!(m, Modifier::Cased));
    let of_value = |v: &SigmaValue, exact: bool| of_value(v, exact, server_integer);
    if item.field.has_modifier(Modifier::All) {
        out.extend(
            item.values
                .iter()
                .filter_map(|v| of_value(v, exact))
                .map(|l| vec![l]),
        );
    } else {
        out.extend(one_of(item.values.iter().map(|v| of_value(v, exact))));
    }
    out
}

/// The longest run of never-escaped characters of a value's plain text;
/// digits (which a number may hold written another way) only for a field
/// the API server writes as an integer (`server_integer`).
fn of_value(v: &SigmaValue, exact: bool, server_integer: bool) -> Option<Literal> {
    let (text, number) = match v {
        SigmaValue::String(s) => (
            s.parts
                .iter()
                .filter_map(|p| match p {
                    StringPart::Plain(t) => Some(t.as_str()),
                    StringPart::Special(_) => None,
                })
                .flat_map(|t| t.split(|c: char| !safe(c)))
                .max_by_key(|run| run.len())?
                .to_owned(),
            false,
        ),
        SigmaValue::Integer(i) if server_integer => (i.unsigned_abs().to_string(), exact),
        SigmaValue::Integer(_) | SigmaValue::Float(_) | SigmaValue::Bool(_) | SigmaValue::Null => {
            return None
        }
    };
    // Only digits and hyphens: part of a number's text, maybe written
    // otherwise in the event.
    if !server_integer && text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    (text.len() >= MIN_LITERAL).then(|| Literal {
        text: text.to_ascii_lowercase(),
        number,
    })
}

/// Characters JSON (and kube-apiserver) never escape, and that the
/// prefilter's escape check covers.
fn safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' ')
}

/// One clause of these literals, or none when one of them has no string.
fn one_of(literals: impl Iterator<Item = Option<Literal>>) -> Vec<Clause> {
    let Some(mut clause) = literals.collect::<Option<Vec<_>>>() else {
        return Vec::new();
    };
    clause.sort();
    clause.dedup();
    if clause.is_empty() || clause.len() > MAX_LITERALS {
        return Vec::new();
    }
    vec![clause]
}

/// Every part holds: all their clauses.
fn every(parts: impl Iterator<Item = Vec<Clause>>) -> Vec<Clause> {
    let mut out: Vec<Clause> = parts.flatten().collect();
    out.sort();
    out.dedup();
    out
}

/// Some part holds: one clause joining the most selective clause of each
/// part; nothing if a part has none.
pub(crate) fn any(mut parts: Vec<Vec<Clause>>) -> Vec<Clause> {
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut joined = Vec::new();
    for part in parts {
        let Some(best) = part.into_iter().max_by_key(score) else {
            return Vec::new();
        };
        joined.extend(best);
    }
    // Every part unsatisfiable: so is the whole.
    if joined.is_empty() {
        return vec![Vec::new()];
    }
    one_of(joined.into_iter().map(Some))
}

/// How selective a clause is: its commonest string decides (then the
/// shortest string, then fewer strings).
fn score(c: &Clause) -> (usize, usize, std::cmp::Reverse<usize>) {
    // Nothing satisfies an empty clause: the most selective of all.
    if c.is_empty() {
        return (usize::MAX, usize::MAX, std::cmp::Reverse(0));
    }
    let rarity = |l: &Literal| {
        COMMON
            .iter()
            .position(|w| l.text.contains(w) && w.len() * 2 >= l.text.len())
            .unwrap_or(COMMON.len())
    };
    let worst = c.iter().map(rarity).min().unwrap_or(0);
    let shortest = c.iter().map(|l| l.text.len()).min().unwrap_or(0);
    (worst, shortest, std::cmp::Reverse(c.len()))
}
