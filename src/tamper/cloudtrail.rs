//! CloudTrail itself: the EventBridge rule hears of tampering only through
//! a trail recording management events, so any trail stopped, deleted or
//! narrowed may be the last thing the detector sees.
//!
//! | CloudTrail event | severity |
//! |---|---|
//! | `StopLogging`, `DeleteTrail` | HIGH |
//! | `PutEventSelectors` dropping write management events | HIGH |
//! | `PutEventSelectors` excluding management event sources | MEDIUM |
//! | `PutEventSelectors` otherwise | LOW |
//! | `UpdateTrail` making a multi-region trail single-region | MEDIUM |

use serde_json::Value;

use super::{last_part, param, Finding};
use crate::vocab::Severity;

/// The finding of a CloudTrail record about any trail.
pub(super) fn assess(name: &str, params: &Value) -> Option<Finding> {
    let (trail, severity, done, tried) = match name {
        "StopLogging" => (
            param(params, "name")?,
            Severity::High,
            "stopped the trail",
            "stop the trail",
        ),
        "DeleteTrail" => (
            param(params, "name")?,
            Severity::High,
            "deleted the trail",
            "delete the trail",
        ),
        // A trail made single-region records only its home region: this
        // region's calls may no longer reach EventBridge.
        "UpdateTrail" if params.get("isMultiRegionTrail") == Some(&Value::Bool(false)) => (
            param(params, "name")?,
            Severity::Medium,
            "made the trail single-region",
            "make the trail single-region",
        ),
        "PutEventSelectors" => {
            let (severity, why) = if !keeps_write_management_events(params) {
                (
                    Severity::High,
                    Some("write management events no longer recorded"),
                )
            } else if excludes_sources(params) {
                (Severity::Medium, Some("management event sources excluded"))
            } else {
                (Severity::Low, None)
            };
            let trail = param(params, "trailName")?;
            return Some(
                Finding::own(
                    severity,
                    format!("trail {}", last_part(trail)),
                    "changed the event selectors of the trail",
                    "change the event selectors of the trail",
                )
                .noted(why.map(str::to_owned)),
            );
        }
        _ => return None,
    };
    Some(Finding::own(
        severity,
        format!("trail {}", last_part(trail)),
        done,
        tried,
    ))
}

/// True when the new selectors still record write management events (the
/// API calls this module reports).
fn keeps_write_management_events(params: &Value) -> bool {
    let list = |key: &str| params.get(key).and_then(Value::as_array);
    if let Some(advanced) = list("advancedEventSelectors").filter(|a| !a.is_empty()) {
        return advanced.iter().any(|selector| {
            let fields = selector
                .get("fieldSelectors")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|f| f.get("field").and_then(Value::as_str) == Some(name))
            };
            let management = field("eventCategory").is_some_and(|f| {
                f.get("equals")
                    .and_then(Value::as_array)
                    .is_some_and(|v| v.iter().any(|v| v == "Management"))
            });
            // `readOnly = true` alone keeps only reads.
            let reads_only = field("readOnly").is_some_and(|f| {
                f.get("equals")
                    .and_then(Value::as_array)
                    .is_some_and(|v| v.iter().all(|v| v == "true"))
            });
            management && !reads_only
        });
    }
    match list("eventSelectors") {
        Some(basic) => basic.iter().any(|s| {
            s.get("includeManagementEvents") != Some(&Value::Bool(false))
                && s.get("readWriteType").and_then(Value::as_str) != Some("ReadOnly")
        }),
        // No selectors in the record: nothing to judge by.
        None => true,
    }
}

/// True when some management event sources are excluded (KMS, RDS Data):
/// by a basic selector's `excludeManagementEventSources`, or an advanced
/// one selecting on `eventSource` (`notEquals`, or `equals` a list).
fn excludes_sources(params: &Value) -> bool {
    let list = |key: &str| params.get(key).and_then(Value::as_array);
    let non_empty = |v: Option<&Value>| v.and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let basic = list("eventSelectors").is_some_and(|basic| {
        basic
            .iter()
            .any(|s| non_empty(s.get("excludeManagementEventSources")))
    });
    let advanced = list("advancedEventSelectors").is_some_and(|advanced| {
        advanced.iter().any(|selector| {
            selector
                .get("fieldSelectors")
                .and_then(Value::as_array)
                .is_some_and(|fields| {
                    fields.iter().any(|f| {
                        f.get("field").and_then(Value::as_str) == Some("eventSource")
                            && ["notEquals", "equals", "notStartsWith", "startsWith"]
                                .iter()
                                .any(|k| non_empty(f.get(*k)))
                    })
                })
        })
    });
    basic || advanced
}
