//! Sigma rules of your own: YAML files read at start-up, each becoming a
//! rule of the registry (see [`crate::rules::sigma`]).
//!
//! Parsing and single-event matching are the `rsigma` crates' (README
//! "Dependencies"); what a correlation counts, and where, is ours: a
//! correlation is a rule whose matches count in the same windows, in the
//! same DynamoDB records, as the built-in rules' (see [`crate::window`]),
//! so it inherits their guarantees under racing instances, redelivery and
//! late batches. Nothing here reads the environment or the clock; reading
//! files is the caller's ([`load::read_dir`]).
//!
//! - [`load`]: files → documents (with their first line) → checked,
//!   compiled rules, and a `file:line: reason` for each one that cannot run.
//! - `correlate.rs`: correlations checked and bound to the detections they
//!   name.
//! - [`eks`]: the field names SigmaHQ's Kubernetes rules use that the EKS
//!   audit event spells otherwise.
//! - [`fields`]: whether a rule reads the request or response body.
//! - [`literals`]: what a message must contain for a rule to match it, for
//!   the prefilter.

mod correlate;
pub mod eks;
pub mod event;
mod known;
pub mod literals;
pub mod load;

use std::sync::Arc;

use rsigma_eval::compiler::eval_condition;
use rsigma_eval::{CompiledRule, Event, EventValue};

pub use load::{load, read_dir, LoadedText, Problem};

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_rules.rs"));
}

/// The rule files bundled with the function (`rules/` of the repository,
/// built into the binary).
pub fn bundled() -> Vec<LoadedText> {
    bundled::BUNDLED
        .iter()
        .map(|(name, text)| LoadedText {
            name: (*name).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

/// The folders of rules of your own (`RULES_DIR`: one, or several
/// separated by `:`), beside the bundled ones.
pub fn rules_dirs(lookup: impl Fn(&str) -> Option<String>) -> Vec<std::path::PathBuf> {
    lookup("RULES_DIR")
        .unwrap_or_default()
        .split(':')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .collect()
}

/// The bundled rules and every rule file under `dirs`, loaded together
/// (a correlation may name a rule of another folder).
pub fn load_with_bundled(dirs: &[std::path::PathBuf]) -> SigmaSet {
    let mut files = bundled();
    let mut unreadable = Vec::new();
    for dir in dirs {
        let (more, problems) = read_dir(dir);
        files.extend(more);
        unreadable.extend(problems);
    }
    let mut set = load(&files);
    set.problems.extend(unreadable);
    set
}

/// Longest value kept of a group-by or counted field (a request's own
/// strings; the dedup key and the window's tallies stay bounded).
pub const MAX_VALUE_BYTES: usize = crate::bounded::MAX_FIELD_BYTES;

/// Distinct values a window can hold for a `value_count` or `temporal`
/// correlation: a threshold above it is refused at load.
pub const MAX_DISTINCT: u64 = crate::window::MAX_DISTINCT_VALUES as u64;

/// Longest `timespan` (and dedup period) accepted: a window cannot outlive
/// what the key records keep.
pub const MAX_TIMESPAN_MINUTES: u64 = 24 * 60;

/// Every Sigma rule loaded, and what could not be.
#[derive(Debug, Default)]
pub struct SigmaSet {
    /// The rules that run (or can be turned on), in load order.
    pub rules: Vec<Arc<SigmaRule>>,
    /// What could not be loaded, one line each.
    pub problems: Vec<Problem>,
}

/// The loaded set, shared by the settings ([`crate::config::DetectorConfig`]):
/// cheap to clone; two sets are equal when they hold the same rule ids and
/// problems.
#[derive(Debug, Clone, Default)]
pub struct SigmaRules(pub Arc<SigmaSet>);

impl PartialEq for SigmaRules {
    fn eq(&self, other: &Self) -> bool {
        let ids = |s: &SigmaSet| s.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        Arc::ptr_eq(&self.0, &other.0)
            || (ids(&self.0) == ids(&other.0) && self.0.problems == other.0.problems)
    }
}

impl Eq for SigmaRules {}

/// One loaded rule: a detection that alerts on its own, or a correlation.
#[derive(Debug)]
pub struct SigmaRule {
    /// The rule's `id` (its `name` when it has no id).
    pub id: String,
    /// `title`.
    pub title: String,
    /// `description`.
    pub description: String,
    /// `level` (informational … critical); `None`: medium.
    pub level: Option<rsigma_parser::Level>,
    /// `attack.tNNNN` tags as technique ids (`T1613`).
    pub mitre: Vec<String>,
    /// `references`.
    pub references: Vec<String>,
    /// `author`.
    pub author: String,
    /// `license`.
    pub license: String,
    /// `falsepositives`.
    pub falsepositives: Vec<String>,
    /// Where it was read from, `file:line`.
    pub origin: String,
    /// Whether it runs unless a setting says otherwise (rules in a folder
    /// named `sigmahq` are off by default).
    pub enabled_by_default: bool,
    /// What a line must contain for it to match (see [`literals`]);
    /// `None`: any line.
    pub literals: Option<Vec<literals::Clause>>,
    /// What it does.
    pub kind: Kind,
}

/// What a rule does.
#[derive(Debug)]
pub enum Kind {
    /// A detection: alerts once per dedup key per period.
    Detection {
        /// The compiled detection.
        compiled: Box<CompiledRule>,
        /// Event fields whose values, with the cluster, make the dedup key.
        dedup_fields: Vec<String>,
        /// Dedup period in minutes.
        dedup_minutes: u64,
    },
    /// A correlation over detections.
    Correlation(Correlation),
}

/// A correlation rule, checked and bound to the detections it names.
#[derive(Debug)]
pub struct Correlation {
    /// What it counts.
    pub counts: Counts,
    /// The detections it names, in order (the order matters to
    /// `temporal_ordered`).
    pub steps: Vec<Step>,
    /// `timespan`, in milliseconds.
    pub timespan_ms: i64,
    /// Matches (or distinct values, or steps) that raise the alert.
    pub threshold: u64,
    /// `group-by` names, as written (the alert's title shows them).
    pub group_by: Vec<String>,
}

/// What a correlation counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counts {
    /// `event_count`: matching events.
    Events,
    /// `value_count`: distinct values of this (mapped) field.
    Values(String),
    /// `temporal`: distinct detections.
    Rules,
    /// `temporal_ordered`: detections in the order listed.
    Sequence,
}

/// One detection a correlation names.
#[derive(Debug)]
pub struct Step {
    /// Its id.
    pub id: String,
    /// Its compiled detection.
    pub compiled: CompiledRule,
    /// The (mapped) fields that give this detection's group-by values, in
    /// `group-by` order (aliases resolved).
    pub group_fields: Vec<String>,
}

/// A correlation's reading of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationHit {
    /// The group-by values.
    pub group: Vec<String>,
    /// What counts as distinct (`value_count`'s value, `temporal`'s
    /// detection id), if anything.
    pub distinct: Option<String>,
    /// The step matched (`temporal_ordered`).
    pub step: Option<usize>,
}

/// Whether `rule`'s detection matches `event`: any of its conditions holds,
/// as `rsigma`'s `evaluate_rule` decides, without building the result it
/// returns (copies of the rule's title, tags and attributes, and the
/// fields that matched) only to learn that there is one.
fn detects(rule: &CompiledRule, event: &impl Event) -> bool {
    let mut selections = Vec::new();
    rule.conditions.iter().any(|condition| {
        selections.clear();
        eval_condition(condition, &rule.detections, event, &mut selections)
    })
}

impl SigmaRule {
    /// Whether the detection matches the event (`false` for a correlation).
    pub fn matches(&self, event: &impl Event) -> bool {
        match &self.kind {
            Kind::Detection { compiled, .. } => detects(compiled, event),
            Kind::Correlation(_) => false,
        }
    }
}

impl Correlation {
    /// The first detection the event matches, read as the correlation
    /// counts it; `None` when none matches, or a `value_count` field is
    /// missing.
    pub fn hit(&self, event: &impl Event) -> Option<CorrelationHit> {
        let json = event;
        let (index, step) = self
            .steps
            .iter()
            .enumerate()
            .find(|(_, s)| detects(&s.compiled, json))?;
        let group = step
            .group_fields
            .iter()
            .map(|f| field_text(json, f).unwrap_or_default())
            .collect();
        let (distinct, order) = match &self.counts {
            Counts::Events => (None, None),
            Counts::Values(field) => (Some(field_text(json, field)?), None),
            Counts::Rules => (Some(step.id.clone()), None),
            Counts::Sequence => (None, Some(index)),
        };
        Some(CorrelationHit {
            group,
            distinct,
            step: order,
        })
    }
}

/// A field's value as text (array members joined with `,`), as a key
/// ([`key_value`]); `None` when the event lacks it or it is `null`.
pub fn field_text(event: &impl Event, field: &str) -> Option<String> {
    field_text_whole(event, field).map(|v| key_value(&v))
}

/// A field's value as text (array members joined with `,`), whole (as
/// long as the event allows); `None` when the event lacks it or it is
/// `null`.
pub fn field_text_whole(event: &impl Event, field: &str) -> Option<String> {
    fn push(out: &mut String, v: &EventValue<'_>) {
        match v {
            EventValue::Null => {}
            EventValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push(out, item);
                }
            }
            EventValue::Map(_) => out.push_str(&v.to_json().to_string()),
            other => out.push_str(&other.as_str().unwrap_or_default()),
        }
    }
    let value = event.get_field(field)?;
    if value.is_null() {
        return None;
    }
    let mut out = String::new();
    push(&mut out, &value);
    Some(out)
}

/// A value as a key or counted value: itself up to [`MAX_VALUE_BYTES`],
/// a longer one cut with the hash of the whole after the cut (see
/// [`crate::bounded::cap_key_to`]).
pub fn key_value(value: &str) -> String {
    crate::bounded::key_part(value)
}
