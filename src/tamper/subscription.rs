//! The account-level subscription filter policies that deliver audit logs:
//! this account's (subscription mode) and the member accounts' (organization
//! mode, forwarded here by member.yaml's rule).
//!
//! | CloudTrail event | severity | why |
//! |---|---|---|
//! | Logs `DeleteAccountPolicy` | HIGH | no log group of the account reaches the detector |
//! | Logs `PutAccountPolicy` | MEDIUM | the policy (selection, pattern, destination) was replaced |

use serde_json::Value;

use super::{name_matches, param, Finding};
use crate::config::DetectorResources;
use crate::vocab::Severity;

/// The finding of a Logs record about a subscription policy of the detector.
pub(super) fn assess(name: &str, params: &Value, own: &DetectorResources) -> Option<Finding> {
    let (severity, done, tried) = match name {
        "DeleteAccountPolicy" => (
            Severity::High,
            "deleted the subscription policy: the detector no longer sees the account's audit logs",
            "delete the subscription policy",
        ),
        "PutAccountPolicy" => (
            Severity::Medium,
            "replaced the subscription policy",
            "replace the subscription policy",
        ),
        _ => return None,
    };
    // Data protection, field index and transformer policies blind nothing.
    if param(params, "policyType") != Some("SUBSCRIPTION_FILTER_POLICY") {
        return None;
    }
    let policy = param(params, "policyName")?;
    if !name_matches(&own.account_policy_names, policy) {
        return None;
    }
    Some(Finding::own(
        severity,
        format!("subscription policy {policy}"),
        done,
        tried,
    ))
}
