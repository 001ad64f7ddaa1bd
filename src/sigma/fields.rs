//! Which parts of the event a rule reads: a rule that reads neither request
//! nor response body is given the event without them (see
//! [`crate::audit::AuditEvent::head`]).

use rsigma_parser::{Detection, SigmaRule};

/// True when a field path lies in a request or response body.
pub fn in_body(field: &str) -> bool {
    ["requestObject", "responseObject"]
        .iter()
        .any(|b| field == *b || field.starts_with(&format!("{b}.")))
}

/// True when the (mapped) rule may read a body: a field there, or a
/// keyword, which searches every value.
pub fn reads_bodies(rule: &SigmaRule) -> bool {
    rule.detection.named.values().any(detection_reads_bodies)
}

fn detection_reads_bodies(d: &Detection) -> bool {
    match d {
        Detection::AllOf(items) => items
            .iter()
            .any(|i| i.field.name.as_deref().is_none_or(in_body)),
        Detection::AnyOf(ds) | Detection::And(ds) => ds.iter().any(detection_reads_bodies),
        Detection::Keywords(_) => true,
        Detection::ArrayMatch { field, body, .. } => in_body(field) || detection_reads_bodies(body),
        Detection::Conditional { named, .. } => named.values().any(detection_reads_bodies),
    }
}
