//! The stack's CloudWatch alarms: silent audit logs, failing invocations,
//! dropped batches. Deleting them or their actions hides the detector's
//! own trouble.
//!
//! | CloudTrail event | severity |
//! |---|---|
//! | `DeleteAlarms`, `DisableAlarmActions` | MEDIUM |
//! | `PutMetricAlarm` rewriting one with its actions off | MEDIUM |

use serde_json::Value;

use super::{name_matches, Finding};
use crate::config::DetectorResources;
use crate::vocab::Severity;

/// At most this many alarm names in a title (the rest are counted).
const MAX_NAMED: usize = 3;

/// The finding of a CloudWatch record about the stack's alarms.
pub(super) fn assess(name: &str, params: &Value, own: &DetectorResources) -> Option<Finding> {
    if name == "PutMetricAlarm" {
        // `PutMetricAlarm` replaces an alarm whole, its actions switch too.
        let alarm = super::param(params, "alarmName")?;
        if params.get("actionsEnabled") != Some(&Value::Bool(false))
            || !name_matches(&own.alarm_names, alarm)
        {
            return None;
        }
        return Some(Finding::own(
            Severity::Medium,
            format!("alarms {alarm}"),
            "turned off the actions of the detector's alarms",
            "turn off the actions of the detector's alarms",
        ));
    }
    let (done, tried) = match name {
        "DeleteAlarms" => (
            "deleted the detector's alarms",
            "delete the detector's alarms",
        ),
        "DisableAlarmActions" => (
            "turned off the actions of the detector's alarms",
            "turn off the actions of the detector's alarms",
        ),
        _ => return None,
    };
    let ours: Vec<&str> = params
        .get("alarmNames")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| name_matches(&own.alarm_names, a))
        .collect();
    if ours.is_empty() {
        return None;
    }
    let mut target = ours
        .iter()
        .take(MAX_NAMED)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if ours.len() > MAX_NAMED {
        target.push_str(&format!(" and {} more", ours.len() - MAX_NAMED));
    }
    Some(Finding::own(
        Severity::Medium,
        format!("alarms {target}"),
        done,
        tried,
    ))
}
