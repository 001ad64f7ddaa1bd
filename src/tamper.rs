//! Knowing when the detector goes blind: CloudTrail management events that
//! stop audit events from reaching it (MITRE T1562.008, disable cloud logs),
//! delivered by an EventBridge rule and reported in the usual alert format.
//!
//! What blinds it, on a watched cluster's `/aws/eks/<cluster>/cluster` log
//! group or on the cluster itself:
//!
//! | CloudTrail event | severity | why |
//! |---|---|---|
//! | `DeleteSubscriptionFilter` | HIGH | nothing reaches the function any more |
//! | `DeleteLogGroup` | HIGH | the audit log and its subscription are gone |
//! | EKS `UpdateClusterConfig` turning `audit` logging off | HIGH | the API server stops writing it |
//! | `PutSubscriptionFilter` | MEDIUM | the filter (pattern, destination) was replaced |
//! | `PutRetentionPolicy` | LOW | evidence may expire sooner |
//!
//! Pure: a CloudTrail record in, an alert (or nothing) out.

use serde_json::{json, Value};

use crate::bounded::cap;
use crate::decode::cluster_label;
use crate::time::parse_timestamp;
use crate::vocab::{stable_hash, Alert, RuleId, Sample, Severity};

/// The id alerts of this kind carry.
pub const RULE_ID: RuleId = RuleId::new("EksAuditDetector.LoggingTampered");

const RUNBOOK: &str =
    "Someone changed what the detector sees. Check who (the principal below) and \
     whether it was a planned change; if not, treat it as an attacker covering their tracks: \
     restore the subscription filter and audit logging (redeploy the stack, `aws eks \
     update-cluster-config --logging ...`), then review the cluster's audit log up to this time.";

/// The alert a CloudTrail record deserves, if it blinds the detector on a
/// watched cluster. `watched` empty means every EKS cluster log group.
pub fn assess(detail: &Value, watched: &[String]) -> Option<Alert> {
    let name = detail.get("eventName")?.as_str()?;
    let params = detail.get("requestParameters").unwrap_or(&Value::Null);
    let (severity, target, what) = match name {
        "DeleteSubscriptionFilter"
        | "DeleteLogGroup"
        | "PutSubscriptionFilter"
        | "PutRetentionPolicy" => {
            let group = params.get("logGroupName")?.as_str()?;
            let cluster = cluster_label(group);
            // Only EKS control-plane log groups of watched clusters.
            if cluster == group || !is_watched(cluster, watched) {
                return None;
            }
            let (severity, what) = match name {
                "DeleteSubscriptionFilter" => (
                    Severity::High,
                    "removed the subscription filter: the detector no longer sees",
                ),
                "DeleteLogGroup" => (Severity::High, "deleted the audit log group of"),
                "PutSubscriptionFilter" => {
                    (Severity::Medium, "replaced the subscription filter of")
                }
                _ => (Severity::Low, "changed the retention of the audit log of"),
            };
            (severity, cluster.to_owned(), what)
        }
        "UpdateClusterConfig" => {
            let cluster = params.get("name")?.as_str()?;
            if !is_watched(cluster, watched) || !disables_audit(params) {
                return None;
            }
            (
                Severity::High,
                cluster.to_owned(),
                "turned audit logging off on",
            )
        }
        _ => return None,
    };
    let who = detail
        .pointer("/userIdentity/arn")
        .and_then(Value::as_str)
        .unwrap_or("<unknown principal>");
    let event_id = detail
        .get("eventID")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let at = detail
        .get("eventTime")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let at_ms = parse_timestamp(at).unwrap_or(0);
    let when = crate::time::format_rfc3339(at_ms);
    let source_ip = detail
        .get("sourceIPAddress")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = stable_hash(&[RULE_ID.as_str(), event_id]);
    Some(Alert {
        alert_id: format!("{id:032x}"),
        rule_id: RULE_ID,
        rule_name: "EKS audit logging tampered with".into(),
        headline: "EKS audit logging changed".into(),
        severity,
        escalation: false,
        title: format!("[{}] {what} [{}] ({name})", cap(who), cap(&target)),
        dedup: cap(event_id),
        cluster: cap(&target),
        source_ip: cap(source_ip),
        event_count: 1,
        threshold: 1,
        window_start: when.clone(),
        window_end: when.clone(),
        first_seen: when.clone(),
        last_seen: when,
        mitre: "TA0005:T1562.008".into(),
        reference: "https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html"
            .into(),
        runbook: RUNBOOK.into(),
        summary: json!({
            "eventName": name,
            "eventSource": detail.get("eventSource").and_then(Value::as_str).map(cap),
            "principal": cap(who),
            "userAgent": detail.get("userAgent").and_then(Value::as_str).map(cap),
            "requestParameters": cap(&params.to_string()),
            "eventID": cap(event_id),
        }),
        log_group: format!("/aws/eks/{}/cluster", cap(&target)),
        account: detail
            .get("recipientAccountId")
            .and_then(Value::as_str)
            .map(cap)
            .unwrap_or_default(),
        sample: Sample::default(),
        fanout_dropped: 0,
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
    use super::*;

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
