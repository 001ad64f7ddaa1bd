//! The stack's KMS key, which encrypts the state table, the topics, the
//! failure queue and the stream: without it the function can neither read
//! its state nor publish.
//!
//! | CloudTrail event | severity |
//! |---|---|
//! | `DisableKey`, `ScheduleKeyDeletion` | HIGH |
//! | `PutKeyPolicy` | MEDIUM |

use serde_json::Value;

use super::{last_part, param, Finding};
use crate::config::DetectorResources;
use crate::vocab::Severity;

/// The finding of a KMS record about the stack's key.
pub(super) fn assess(
    name: &str,
    params: &Value,
    record: &Value,
    own: &DetectorResources,
) -> Option<Finding> {
    let (severity, done, tried) = match name {
        "DisableKey" => (
            Severity::High,
            "disabled the detector's key",
            "disable the detector's key",
        ),
        "ScheduleKeyDeletion" => (
            Severity::High,
            "scheduled the deletion of the detector's key",
            "schedule the deletion of the detector's key",
        ),
        "PutKeyPolicy" => (
            Severity::Medium,
            "replaced the policy of the detector's key",
            "replace the policy of the detector's key",
        ),
        _ => return None,
    };
    // The request names the key by id, ARN or alias; CloudTrail adds the
    // key's ARN to `resources` for the first two ways and for aliases.
    let requested = param(params, "keyId").unwrap_or_default();
    let named = |key: &str| {
        same_key(requested, key)
            || record
                .get("resources")
                .and_then(Value::as_array)
                .is_some_and(|rs| {
                    rs.iter()
                        .any(|r| r.get("ARN").and_then(Value::as_str) == Some(key))
                })
    };
    // The stack's keys: the alert key and the operations topic's own.
    let key = own.key_arns.iter().find(|k| named(k))?;
    let note = match name {
        "ScheduleKeyDeletion" => params
            .get("pendingWindowInDays")
            .map(|d| format!("in {d} days")),
        _ => None,
    };
    Some(Finding::own(severity, format!("key {}", last_part(key)), done, tried).noted(note))
}

/// True when `requested` (an id or an ARN) names `key` (an id or an ARN).
fn same_key(requested: &str, key: &str) -> bool {
    !requested.is_empty()
        && !requested.starts_with("alias/")
        && (requested == key || last_part(requested) == last_part(key))
}
