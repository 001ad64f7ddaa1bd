//! The alert and operations topics: where every alert and alarm goes.
//!
//! | CloudTrail event | severity | why |
//! |---|---|---|
//! | `DeleteTopic` | HIGH | alerts and alarms go nowhere |
//! | `SetTopicAttributes` (not `DisplayName`) | MEDIUM | policy, key or delivery changed |
//! | `Unsubscribe` | MEDIUM | someone no longer receives them |
//! | `SetSubscriptionAttributes` `FilterPolicy`, `FilterPolicyScope` | MEDIUM | a filter may drop alerts |

use serde_json::Value;

use super::{last_part, param, Finding};
use crate::config::DetectorResources;
use crate::vocab::Severity;

/// The finding of an SNS record about one of the detector's topics.
pub(super) fn assess(name: &str, params: &Value, own: &DetectorResources) -> Option<Finding> {
    let attribute = param(params, "attributeName");
    let (topic, severity, done, tried) = match name {
        "DeleteTopic" => (
            param(params, "topicArn")?,
            Severity::High,
            "deleted the detector's topic",
            "delete the detector's topic",
        ),
        "SetTopicAttributes" => {
            // The display name changes nothing that matters.
            if attribute == Some("DisplayName") {
                return None;
            }
            (
                param(params, "topicArn")?,
                Severity::Medium,
                "changed the detector's topic",
                "change the detector's topic",
            )
        }
        "Unsubscribe" => (
            topic_of(param(params, "subscriptionArn")?),
            Severity::Medium,
            "removed a subscription of the detector's topic",
            "remove a subscription of the detector's topic",
        ),
        "SetSubscriptionAttributes" => {
            // Only a filter can drop alerts on their way to a subscriber.
            if !matches!(attribute, Some("FilterPolicy" | "FilterPolicyScope")) {
                return None;
            }
            (
                topic_of(param(params, "subscriptionArn")?),
                Severity::Medium,
                "set a filter on a subscription of the detector's topic",
                "set a filter on a subscription of the detector's topic",
            )
        }
        _ => return None,
    };
    if !own.topic_arns.iter().any(|t| t == topic) {
        return None;
    }
    let note = attribute.map(|a| format!("attribute {a}"));
    Some(Finding::own(severity, format!("topic {}", last_part(topic)), done, tried).noted(note))
}

/// The topic ARN of a subscription ARN (`<topic arn>:<subscription id>`).
fn topic_of(subscription: &str) -> &str {
    subscription
        .rsplit_once(':')
        .map_or(subscription, |(topic, _)| topic)
}
