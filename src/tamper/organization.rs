//! Organization mode: member accounts' audit logs reach the detector
//! through a CloudWatch Logs destination writing to a Kinesis stream.
//!
//! | CloudTrail event | severity | why |
//! |---|---|---|
//! | Logs `DeleteDestination` | HIGH | members' filters send nowhere |
//! | Logs `PutDestination` writing to another stream | HIGH | members' audit logs go elsewhere |
//! | Kinesis `DeleteStream` | HIGH | the stream and its records are gone |
//! | Logs `PutDestinationPolicy` | MEDIUM | which accounts may send changed |
//! | Kinesis `DecreaseStreamRetentionPeriod` | LOW | records expire sooner, before retries end |

use serde_json::Value;

use super::{last_part, param, Finding};
use crate::config::DetectorResources;
use crate::vocab::Severity;

/// The finding of a CloudWatch Logs record about the destination.
pub(super) fn assess_logs(name: &str, params: &Value, own: &DetectorResources) -> Option<Finding> {
    let (severity, done, tried) = match name {
        "DeleteDestination" => (
            Severity::High,
            "deleted the detector's Logs destination",
            "delete the detector's Logs destination",
        ),
        "PutDestinationPolicy" => (
            Severity::Medium,
            "replaced the policy of the detector's Logs destination",
            "replace the policy of the detector's Logs destination",
        ),
        // `PutDestination` creates or updates: the same stream is no change.
        "PutDestination"
            if param(params, "targetArn")
                .is_none_or(|arn| Some(last_part(arn)) != own.stream_name.as_deref()) =>
        {
            (
                Severity::High,
                "pointed the detector's Logs destination at another stream",
                "point the detector's Logs destination at another stream",
            )
        }
        _ => return None,
    };
    let destination = own.destination_name.as_deref()?;
    if param(params, "destinationName")? != destination {
        return None;
    }
    Some(Finding::own(
        severity,
        format!("destination {destination}"),
        done,
        tried,
    ))
}

/// The finding of a Kinesis record about the stream.
pub(super) fn assess_kinesis(
    name: &str,
    params: &Value,
    own: &DetectorResources,
) -> Option<Finding> {
    let (severity, done, tried) = match name {
        "DeleteStream" => (
            Severity::High,
            "deleted the detector's stream",
            "delete the detector's stream",
        ),
        "DecreaseStreamRetentionPeriod" => (
            Severity::Low,
            "shortened the retention of the detector's stream",
            "shorten the retention of the detector's stream",
        ),
        _ => return None,
    };
    let stream = own.stream_name.as_deref()?;
    // By name, or by ARN (`arn:...:stream/<name>`).
    let given = param(params, "streamName").or_else(|| param(params, "streamARN"))?;
    if last_part(given) != stream {
        return None;
    }
    let note = params
        .get("retentionPeriodHours")
        .map(|h| format!("to {h} hours"));
    Some(Finding::own(severity, format!("stream {stream}"), done, tried).noted(note))
}
