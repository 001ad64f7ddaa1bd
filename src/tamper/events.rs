//! The stack's EventBridge rules: the outbox sweep's schedule and the rule
//! sending these very CloudTrail events. Without the second the detector
//! no longer hears about tampering at all.
//!
//! | CloudTrail event | severity |
//! |---|---|
//! | `DisableRule`, `DeleteRule`, `RemoveTargets` | HIGH |
//! | `PutRule` setting the rule `DISABLED` | HIGH |
//! | `PutTargets` leaving the detector's function out of the rule's targets | HIGH |

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
        // `PutRule` updates a rule whole: its state too.
        "PutRule" if param(params, "state") == Some("DISABLED") => (
            param(params, "name")?,
            "disabled the detector's rule",
            "disable the detector's rule",
        ),
        // New targets beside the function change nothing it hears; targets
        // without it send the rule's events elsewhere.
        "PutTargets" if !targets_the_function(params, own) => (
            param(params, "rule")?,
            "sent the detector's rule to other targets",
            "send the detector's rule to other targets",
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

/// True when one of the targets a `PutTargets` sets is the detector's
/// function (by name or ARN).
fn targets_the_function(params: &Value, own: &DetectorResources) -> bool {
    let Some(function) = own.function_name.as_deref() else {
        return true;
    };
    params
        .get("targets")
        .and_then(Value::as_array)
        .is_some_and(|targets| {
            targets
                .iter()
                .filter_map(|t| param(t, "arn"))
                .any(|arn| super::lambda::function_name(arn) == function)
        })
}
