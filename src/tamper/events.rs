//! The stack's EventBridge rules: the outbox sweep's schedule and the rule
//! sending these very CloudTrail events. Without the second the detector
//! no longer hears about tampering at all.
//!
//! | CloudTrail event | severity |
//! |---|---|
//! | `DisableRule`, `DeleteRule`, `RemoveTargets` | HIGH |

use serde_json::Value;

use super::{name_matches, param, Finding};
use crate::config::DetectorResources;
use crate::vocab::Severity;

/// The finding of an EventBridge record about one of the stack's rules.
pub(super) fn assess(name: &str, params: &Value, own: &DetectorResources) -> Option<Finding> {
    let (rule, done, tried) = match name {
        "DisableRule" => (
            param(params, "name")?,
            "disabled the detector's rule",
            "disable the detector's rule",
        ),
        "DeleteRule" => (
            param(params, "name")?,
            "deleted the detector's rule",
            "delete the detector's rule",
        ),
        "RemoveTargets" => (
            param(params, "rule")?,
            "removed the targets of the detector's rule",
            "remove the targets of the detector's rule",
        ),
        _ => return None,
    };
    // Rules are named by name here (an ARN for another bus is not ours).
    if !name_matches(&own.rule_names, rule) {
        return None;
    }
    Some(Finding::own(
        Severity::High,
        format!("rule {rule}"),
        done,
        tried,
    ))
}
