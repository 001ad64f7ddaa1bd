//! A watched cluster's audit log: its `/aws/eks/<cluster>/cluster` log
//! group (CloudWatch Logs) and its audit logging (EKS).
//!
//! | CloudTrail event | severity | why |
//! |---|---|---|
//! | `DeleteSubscriptionFilter` | HIGH | nothing reaches the function any more |
//! | `DeleteLogGroup` | HIGH | the audit log and its subscription are gone |
//! | EKS `UpdateClusterConfig` turning `audit` logging off | HIGH | the API server stops writing it |
//! | `PutSubscriptionFilter` | MEDIUM | the filter (pattern, destination) was replaced |
//! | `AssociateKmsKey` | MEDIUM | a key of the caller's choosing encrypts the log: disabling it stops ingestion |
//! | `PutRetentionPolicy` | LOW | evidence may expire sooner |

use serde_json::Value;

use super::{param, Finding};
use crate::decode::cluster_label;
use crate::vocab::Severity;

/// The finding of a Logs or EKS record about a watched cluster.
pub(super) fn assess(name: &str, params: &Value, watched: &[String]) -> Option<Finding> {
    let (severity, target, done, tried) = match name {
        "DeleteSubscriptionFilter"
        | "DeleteLogGroup"
        | "PutSubscriptionFilter"
        | "AssociateKmsKey"
        | "PutRetentionPolicy" => {
            let group = param(params, "logGroupName")?;
            let cluster = cluster_label(group);
            // Only EKS control-plane log groups of watched clusters.
            if cluster == group || !is_watched(cluster, watched) {
                return None;
            }
            let (severity, done, tried) = match name {
                "DeleteSubscriptionFilter" => (
                    Severity::High,
                    "removed the subscription filter: the detector no longer sees",
                    "remove the subscription filter of",
                ),
                "DeleteLogGroup" => (
                    Severity::High,
                    "deleted the audit log group of",
                    "delete the audit log group of",
                ),
                "PutSubscriptionFilter" => (
                    Severity::Medium,
                    "replaced the subscription filter of",
                    "replace the subscription filter of",
                ),
                "AssociateKmsKey" => (
                    Severity::Medium,
                    "put the audit log under a KMS key of the caller's choosing, which can stop it, on",
                    "put the audit log under a KMS key of the caller's choosing on",
                ),
                _ => (
                    Severity::Low,
                    "changed the retention of the audit log of",
                    "change the retention of the audit log of",
                ),
            };
            (severity, cluster.to_owned(), done, tried)
        }
        "UpdateClusterConfig" => {
            let cluster = param(params, "name")?;
            if !is_watched(cluster, watched) || !disables_audit(params) {
                return None;
            }
            (
                Severity::High,
                cluster.to_owned(),
                "turned audit logging off on",
                "turn audit logging off on",
            )
        }
        _ => return None,
    };
    Some(Finding {
        severity,
        target,
        done,
        tried,
        note: None,
        cluster: true,
    })
}

fn is_watched(cluster: &str, watched: &[String]) -> bool {
    watched.is_empty() || watched.iter().any(|w| w == cluster)
}

/// True when an `UpdateClusterConfig` turns the `audit` log type off.
fn disables_audit(params: &Value) -> bool {
    params
        .pointer("/logging/clusterLogging")
        .and_then(Value::as_array)
        .is_some_and(|setups| {
            setups.iter().any(|s| {
                s.get("enabled") == Some(&Value::Bool(false))
                    && s.get("types")
                        .and_then(Value::as_array)
                        .is_some_and(|t| t.iter().any(|t| t == "audit"))
            })
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tamper::assess;

    fn record(name: &str, params: Value) -> Value {
        json!({
            "eventTime": "2024-11-24T09:00:00Z", "eventSource": "logs.amazonaws.com",
            "eventName": name, "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/Admin/mallory"},
            "sourceIPAddress": "203.0.113.66", "requestParameters": params,
            "eventID": "5e6f7a8b-0000-4000-8000-000000000001", "recipientAccountId": "123456789012"
        })
    }

    #[test]
    fn removing_the_subscription_is_high_and_names_who() {
        let a = assess(
            &record(
                "DeleteSubscriptionFilter",
                json!({"logGroupName": "/aws/eks/prod/cluster", "filterName": "f"}),
            ),
            &["prod".into()],
        )
        .expect("alert");
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.cluster, "prod");
        assert!(
            a.title.contains("mallory") && a.title.contains("DeleteSubscriptionFilter"),
            "{}",
            a.title
        );
        assert!(a
            .subject()
            .starts_with("[HIGH] EKS audit logging changed from 203.0.113.66 on prod"));
    }

    #[test]
    fn only_watched_clusters_and_only_blinding_changes_count() {
        let watched = ["prod".to_owned()];
        let group = |g: &str| json!({"logGroupName": g});
        assert!(assess(
            &record("DeleteLogGroup", group("/aws/eks/staging/cluster")),
            &watched
        )
        .is_none());
        assert!(assess(&record("DeleteLogGroup", group("/aws/lambda/x")), &[]).is_none());
        assert!(assess(
            &record("DescribeLogGroups", group("/aws/eks/prod/cluster")),
            &watched
        )
        .is_none());
        let retention = assess(
            &record("PutRetentionPolicy", group("/aws/eks/prod/cluster")),
            &watched,
        );
        assert_eq!(retention.map(|a| a.severity), Some(Severity::Low));
        let off = |enabled: bool, types: Value| {
            let mut r = record(
                "UpdateClusterConfig",
                json!({"name": "prod", "logging": {"clusterLogging": [{"types": types, "enabled": enabled}]}}),
            );
            r["eventSource"] = json!("eks.amazonaws.com");
            assess(&r, &watched)
        };
        assert_eq!(
            off(false, json!(["api", "audit"])).map(|a| a.severity),
            Some(Severity::High)
        );
        assert!(off(true, json!(["audit"])).is_none());
        assert!(off(false, json!(["scheduler"])).is_none());
    }
}
