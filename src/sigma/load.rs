//! Sigma files → checked, compiled rules, and one `file:line: reason` for
//! each rule that cannot run (the others load regardless).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rsigma_eval::compile_rule;
use rsigma_parser::{
    parse_sigma_yaml, ConditionExpr, ConditionOperator, CorrelationCondition, CorrelationRule,
    CorrelationType, SigmaRule as Parsed, WindowMode,
};

use super::MAX_TIMESPAN_MINUTES;
use super::{eks, literals, Correlation, Counts, Kind, SigmaRule, SigmaSet, Step, MAX_DISTINCT};

/// Largest rule file read (a rule is a few kilobytes).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Dedup period of a detection that sets none, in minutes.
pub const DEFAULT_DEDUP_MINUTES: u64 = 60;

/// The dedup fields of a detection that sets none (with the cluster, which
/// every key has): the user and the first source address.
pub const DEFAULT_DEDUP_FIELDS: [&str; 2] = ["user.username", "sourceIPs"];

/// A rule file's name (as messages show it) and text.
#[derive(Debug, Clone)]
pub struct LoadedText {
    /// Path or bundled name.
    pub name: String,
    /// Its content.
    pub text: String,
}

/// A rule that cannot run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// The line (1-based) the problem is on, or its document's first.
    pub line: usize,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Every `.yml` and `.yaml` file under `dir`, in path order; files that
/// cannot be read are problems.
pub fn read_dir(dir: &Path) -> (Vec<LoadedText>, Vec<Problem>) {
    let mut paths = Vec::new();
    let mut problems = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                problems.push(problem(
                    &d.display().to_string(),
                    0,
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                problems.push(problem(
                    &name,
                    0,
                    format!("larger than {MAX_FILE_BYTES} bytes"),
                ));
                continue;
            }
            _ => {}
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push(LoadedText { name, text }),
            Err(e) => problems.push(problem(&name, 0, format!("cannot read: {e}"))),
        }
    }
    (files, problems)
}

fn problem(file: &str, line: usize, reason: impl Into<String>) -> Problem {
    Problem {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

/// A parsed document, where it came from.
struct Doc<T> {
    file: String,
    line: usize,
    /// Rules in a folder named `sigmahq` are off by default.
    bundled_catalog: bool,
    item: T,
}

impl<T> Doc<T> {
    fn new((file, line, bundled_catalog): (String, usize, bool), item: T) -> Self {
        Self {
            file,
            line,
            bundled_catalog,
            item,
        }
    }
}

/// The YAML documents of a file (`---` separated), each with its first line.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---#") {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs.retain(|(_, d)| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

/// The line of `doc` (which starts at `first`) that holds `needle`, or
/// `first`.
fn line_of(doc: &str, first: usize, needle: &str) -> usize {
    if needle.is_empty() {
        return first;
    }
    doc.lines()
        .position(|l| l.contains(needle))
        .map_or(first, |i| first + i)
}

/// The first quoted word of a parser message (`Unknown modifier 'foo'`).
fn quoted(reason: &str) -> &str {
    let mut parts = reason.split('\'');
    parts.next();
    parts.next().unwrap_or("")
}

/// Loads every rule of `files`: what runs, and a problem for each rule that
/// cannot.
pub fn load(files: &[LoadedText]) -> SigmaSet {
    let mut problems = Vec::new();
    let mut detections: Vec<Doc<Parsed>> = Vec::new();
    let mut correlations: Vec<Doc<CorrelationRule>> = Vec::new();
    for file in files {
        let catalog = Path::new(&file.name)
            .components()
            .any(|c| c.as_os_str() == "sigmahq");
        for (line, doc) in documents(&file.text) {
            let collection = match parse_sigma_yaml(&doc) {
                Ok(c) => c,
                Err(e) => {
                    let reason = e.to_string();
                    let at = line_of(&doc, line, quoted(&reason));
                    problems.push(problem(&file.name, at, reason));
                    continue;
                }
            };
            for reason in &collection.errors {
                let at = line_of(&doc, line, quoted(reason));
                problems.push(problem(&file.name, at, reason.clone()));
            }
            if !collection.filters.is_empty() {
                problems.push(problem(
                    &file.name,
                    line,
                    "Sigma filter documents are not supported (exclude with `not` in the rule)",
                ));
            }
            let at = |l| (file.name.clone(), l, catalog);
            detections.extend(
                collection
                    .rules
                    .into_iter()
                    .map(|item| Doc::new(at(line), item)),
            );
            correlations.extend(
                collection
                    .correlations
                    .into_iter()
                    .map(|item| Doc::new(at(line), item)),
            );
        }
    }

    // Detections first: correlations name them.
    let mut seen_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut compiled: Vec<(Doc<Parsed>, Arc<SigmaRule>)> = Vec::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for mut doc in detections {
        let id = rule_id(
            doc.item.id.as_deref(),
            doc.item.name.as_deref(),
            &doc.item.title,
        );
        let origin = format!("{}:{}", doc.file, doc.line);
        if let Some(first) = seen_ids.get(&id) {
            problems.push(problem(
                &doc.file,
                doc.line,
                format!("rule id {id} is already used at {first}"),
            ));
            continue;
        }
        seen_ids.insert(id.clone(), origin.clone());
        match detection(&mut doc, &id, &origin) {
            Ok(rule) => compiled.push((doc, Arc::new(rule))),
            Err(reason) => {
                failed.extend([id.clone()]);
                failed.extend(doc.item.name.clone());
                problems.push(problem(&doc.file, doc.line, reason));
            }
        }
    }

    let mut rules: Vec<Arc<SigmaRule>> = Vec::new();
    let mut referenced: BTreeMap<String, bool> = BTreeMap::new();
    let mut correlation_rules = Vec::new();
    for doc in &correlations {
        let c = &doc.item;
        let id = rule_id(c.id.as_deref(), c.name.as_deref(), &c.title);
        let origin = format!("{}:{}", doc.file, doc.line);
        if let Some(first) = seen_ids.get(&id) {
            problems.push(problem(
                &doc.file,
                doc.line,
                format!("rule id {id} is already used at {first}"),
            ));
            continue;
        }
        seen_ids.insert(id.clone(), origin.clone());
        match correlation(doc, &compiled, &failed, &correlations) {
            Ok(corr) => {
                for step in &corr.steps {
                    let generate = referenced.entry(step.id.clone()).or_insert(false);
                    *generate |= c.generate;
                }
                correlation_rules.push(Arc::new(SigmaRule {
                    id,
                    title: c.title.clone(),
                    description: c.description.clone().unwrap_or_default(),
                    level: c.level,
                    mitre: mitre(&c.tags),
                    references: c.references.clone(),
                    author: c.author.clone().unwrap_or_default(),
                    license: c.license.clone().unwrap_or_default(),
                    falsepositives: c.falsepositives.clone(),
                    origin,
                    enabled_by_default: !doc.bundled_catalog,
                    literals: corr_literals(&corr, &compiled),
                    kind: Kind::Correlation(corr),
                }));
            }
            Err(reason) => problems.push(problem(&doc.file, doc.line, reason)),
        }
    }
    // A detection a correlation names alerts on its own only when one of
    // those correlations says `generate: true`.
    for (_, rule) in &compiled {
        if referenced.get(&rule.id).copied().unwrap_or(true) {
            rules.push(rule.clone());
        }
    }
    rules.extend(correlation_rules);
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    SigmaSet { rules, problems }
}

/// A rule's id: its `id`, else its `name`, else its title.
fn rule_id(id: Option<&str>, name: Option<&str>, title: &str) -> String {
    id.or(name).unwrap_or(title).trim().to_owned()
}

/// `attack.t1613` → `T1613` (sub-techniques too).
fn mitre(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| t.strip_prefix("attack.t"))
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        .map(|t| format!("T{}", t.to_ascii_uppercase()))
        .collect()
}

/// Checks and compiles a detection.
fn detection(doc: &mut Doc<Parsed>, id: &str, origin: &str) -> Result<SigmaRule, String> {
    let rule = &mut doc.item;
    let ls = &rule.logsource;
    let product_ok = ls
        .product
        .as_deref()
        .is_none_or(|p| p.eq_ignore_ascii_case("kubernetes"));
    let service_ok = ls
        .service
        .as_deref()
        .is_none_or(|s| s.eq_ignore_ascii_case("audit"));
    if !product_ok || !service_ok {
        return Err(format!(
            "rule {id}: logsource is not Kubernetes audit (product: kubernetes, service: audit)"
        ));
    }
    if id.is_empty() {
        return Err("rule has no id, name or title".into());
    }
    eks::map_rule(rule);
    let compiled = compile_rule(rule).map_err(|e| format!("rule {id}: {e}"))?;
    let (dedup_fields, dedup_minutes) =
        dedup_settings(rule).map_err(|e| format!("rule {id}: {e}"))?;
    Ok(SigmaRule {
        id: id.to_owned(),
        title: rule.title.clone(),
        description: rule.description.clone().unwrap_or_default(),
        level: rule.level,
        mitre: mitre(&rule.tags),
        references: rule.references.clone(),
        author: rule.author.clone().unwrap_or_default(),
        license: rule.license.clone().unwrap_or_default(),
        falsepositives: rule.falsepositives.clone(),
        origin: origin.to_owned(),
        enabled_by_default: !doc.bundled_catalog,
        literals: literals::of_rule(rule),
        kind: Kind::Detection {
            compiled: Box::new(compiled),
            dedup_fields,
            dedup_minutes,
        },
    })
}

/// A detection's own dedup fields and period (`dedup_fields`,
/// `dedup_minutes` at the top of the rule), or the defaults.
fn dedup_settings(rule: &Parsed) -> Result<(Vec<String>, u64), String> {
    let fields = match rule.custom_attributes.get("dedup_fields") {
        None => DEFAULT_DEDUP_FIELDS
            .iter()
            .map(|f| (*f).to_owned())
            .collect(),
        Some(v) => v
            .as_sequence()
            .ok_or("dedup_fields must be a list of field names")?
            .iter()
            .map(|f| f.as_str().map(|s| eks::field(s).to_owned()))
            .collect::<Option<Vec<_>>>()
            .ok_or("dedup_fields must be a list of field names")?,
    };
    let minutes = match rule.custom_attributes.get("dedup_minutes") {
        None => DEFAULT_DEDUP_MINUTES,
        Some(v) => v
            .as_u64()
            .filter(|m| (1..=MAX_TIMESPAN_MINUTES).contains(m))
            .ok_or(format!("dedup_minutes must be 1 to {MAX_TIMESPAN_MINUTES}"))?,
    };
    Ok((fields, minutes))
}

/// Checks a correlation and binds it to the detections it names.
fn correlation(
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

/// A correlation's strings: any of its detections' (none when one has none).
fn corr_literals(
    c: &Correlation,
    detections: &[(Doc<Parsed>, Arc<SigmaRule>)],
) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for step in &c.steps {
        let (_, rule) = detections.iter().find(|(_, r)| r.id == step.id)?;
        out.extend(rule.literals.clone()?);
    }
    out.sort();
    out.dedup();
    Some(out)
}
