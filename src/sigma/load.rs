//! Sigma files → checked, compiled rules, and one `file:line: reason` for
//! each rule that cannot run (the others load regardless).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rsigma_eval::compile_rule;
use rsigma_parser::{parse_sigma_yaml, ConditionExpr, CorrelationRule, SigmaRule as Parsed};

use super::correlate::{corr_literals, correlation};
use super::{eks, literals, Kind, SigmaRule, SigmaSet, MAX_TIMESPAN_MINUTES};

/// Largest rule file read (a rule is a few kilobytes).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Deepest condition a rule may have (`not`, parentheses, `and`/`or`
/// inside each other): evaluating one recurses once per level, on the
/// function's threads. SigmaHQ's rules go 3 or 4 deep.
pub const MAX_CONDITION_DEPTH: usize = 64;

/// Stack of the thread rules are loaded on: the YAML and condition
/// parsers recurse once per level of what they read, and so does dropping
/// what they built, up to the 64 KB a condition may take (thousands of
/// levels), far past the stacks of the function's threads.
const LOAD_STACK_BYTES: usize = 256 << 20;

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
    // Folders already walked, by their real path: a link back to a folder
    // (two of them would double the walk at every level) is walked once.
    let mut walked = std::collections::BTreeSet::new();
    while let Some(d) = pending.pop() {
        if !walked.insert(std::fs::canonicalize(&d).unwrap_or_else(|_| d.clone())) {
            continue;
        }
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
pub(super) struct Doc<T> {
    pub(super) file: String,
    pub(super) line: usize,
    /// Rules in a folder named `sigmahq` are off by default.
    pub(super) bundled_catalog: bool,
    pub(super) item: T,
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
    // On a thread with room for the deepest file (see `LOAD_STACK_BYTES`);
    // here when no such thread can be made.
    std::thread::scope(|s| {
        match std::thread::Builder::new()
            .name("rules".into())
            .stack_size(LOAD_STACK_BYTES)
            .spawn_scoped(s, || load_here(files))
        {
            Ok(loading) => loading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => load_here(files),
        }
    })
}

/// [`load`] on the current thread.
fn load_here(files: &[LoadedText]) -> SigmaSet {
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

    // Detections first: correlations name them. The built-in rules' ids
    // are taken: settings name rules by id.
    let mut seen_ids: BTreeMap<String, String> = builtin_ids()
        .into_iter()
        .map(|id| (id, "a built-in rule".to_owned()))
        .collect();
    let mut compiled: Vec<(Doc<Parsed>, Arc<SigmaRule>)> = Vec::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for mut doc in detections {
        let id = rule_id(
            doc.item.id.as_deref(),
            doc.item.name.as_deref(),
            &doc.item.title,
        );
        let Some(origin) = claim_id(&mut seen_ids, &id, &doc.file, doc.line, &mut problems) else {
            continue;
        };
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
        let Some(origin) = claim_id(&mut seen_ids, &id, &doc.file, doc.line, &mut problems) else {
            continue;
        };
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
            Err(reason) => {
                // The rules it names were written to be counted, not to
                // alert on every event: a refused correlation leaves them
                // as quiet as a loaded one would.
                for (d, rule) in &compiled {
                    let named = |r: &String| *r == rule.id || d.item.name.as_ref() == Some(r);
                    if c.rules.iter().any(named) {
                        let generate = referenced.entry(rule.id.clone()).or_insert(false);
                        *generate |= c.generate;
                    }
                }
                problems.push(problem(&doc.file, doc.line, reason));
            }
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

/// Takes `id` for the rule at `file:line`, which it returns; `None`, and a
/// problem, when an earlier rule has it.
fn claim_id(
    seen: &mut BTreeMap<String, String>,
    id: &str,
    file: &str,
    line: usize,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    // Settings match ids whatever their case.
    let lower = id.to_ascii_lowercase();
    if let Some(first) = seen.get(&lower) {
        problems.push(problem(
            file,
            line,
            format!("rule id {id} is already used at {first}"),
        ));
        return None;
    }
    let origin = format!("{file}:{line}");
    seen.insert(lower, origin.clone());
    Some(origin)
}

/// The ids (lower case) of the rules that are not Sigma rules: the
/// registry's, the CloudTrail rules', and those of the tampering and
/// silence reports.
fn builtin_ids() -> Vec<String> {
    let config = crate::config::DetectorConfig::default();
    crate::rules::registry(&config)
        .iter()
        .map(|r| r.meta().id.as_str())
        .chain(
            crate::rules::cloudtrail_rules()
                .iter()
                .map(|(m, _, _)| m.id.as_str()),
        )
        .chain([
            crate::tamper::RULE_ID.as_str(),
            crate::silence::RULE_ID.as_str(),
        ])
        .map(str::to_ascii_lowercase)
        .collect()
}

/// How deep a condition nests, counted without recursing.
fn condition_depth(expr: &ConditionExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(expr, 1)];
    while let Some((e, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        match e {
            ConditionExpr::And(items) | ConditionExpr::Or(items) => {
                pending.extend(items.iter().map(|i| (i, depth + 1)));
            }
            ConditionExpr::Not(inner) => pending.push((inner, depth + 1)),
            ConditionExpr::Identifier(_) | ConditionExpr::Selector { .. } => {}
        }
    }
    deepest
}

/// A rule's id: its `id`, else its `name`, else its title.
pub(super) fn rule_id(id: Option<&str>, name: Option<&str>, title: &str) -> String {
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
    let depth = rule
        .detection
        .conditions
        .iter()
        .map(condition_depth)
        .max()
        .unwrap_or(0);
    if depth > MAX_CONDITION_DEPTH {
        return Err(format!(
            "rule {id}: condition nested {depth} deep (at most {MAX_CONDITION_DEPTH})"
        ));
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
