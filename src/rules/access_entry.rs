//! `EksAuditDetector.AccessEntryAdmin`: an EKS access entry that grants
//! cluster administration, from CloudTrail (MITRE TA0003 Persistence /
//! T1098.006 Additional Container Cluster Roles, TA0004 Privilege
//! Escalation).
//!
//! Access entries are the EKS API's way to let an IAM principal into a
//! cluster, beside (and replacing) the `aws-auth` ConfigMap. They never
//! appear in the Kubernetes audit log, so this rule reads the CloudTrail
//! management events the function already receives for tamper reports:
//!
//! | CloudTrail event | when | severity |
//! |---|---|---|
//! | `AssociateAccessPolicy` | `AmazonEKSClusterAdminPolicy`, any scope | HIGH |
//! | `AssociateAccessPolicy` | `AmazonEKSAdminPolicy`, cluster scope | HIGH |
//! | `AssociateAccessPolicy` | `AmazonEKSAdminPolicy`, namespace scope | MEDIUM |
//! | `CreateAccessEntry` / `UpdateAccessEntry` | Kubernetes groups given | MEDIUM |
//!
//! A group an entry names can be bound to anything by RBAC, so naming one
//! is reported at MEDIUM; an entry with neither policy nor group grants
//! nothing and is not. A call AWS refused is reported one step down, as
//! tried. Each CloudTrail event gives at most one alert (keyed by its
//! `eventID`, so a redelivery adds nothing).

use serde_json::{json, Value};

use crate::bounded::cap;
use crate::time::{format_rfc3339, parse_timestamp};
use crate::vocab::{stable_hash, Alert, AlertContext, RuleId, RuleMeta, Sample, Severity, Source};

/// Rule metadata.
pub static META: RuleMeta = RuleMeta {
    id: RuleId::new("EksAuditDetector.AccessEntryAdmin"),
    source: Source::Project,
    name: "EKS access entry grants cluster admin",
    mitre: "TA0003:T1098.006, TA0004:T1098.006",
    reference: "https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html",
    runbook: "An IAM principal was given administrative access to the cluster through an EKS \
              access entry. Ask whoever made the call (the principal below) whether it was \
              planned. List the cluster's entries and their policies (aws eks \
              list-access-entries, list-associated-access-policies) and remove any you do not \
              recognise (disassociate-access-policy, delete-access-entry). Then review what the \
              granted principal did in CloudTrail and in the cluster's audit log.",
};

/// The highest severity it gives.
pub const MAX_SEVERITY: Severity = Severity::High;

/// The CloudTrail event names it reads (the EventBridge rule must match
/// them).
pub const EVENT_NAMES: [&str; 3] = [
    "AssociateAccessPolicy",
    "CreateAccessEntry",
    "UpdateAccessEntry",
];

/// Most Kubernetes groups named in a title.
const MAX_TITLE_GROUPS: usize = 5;

/// What a call granted, had it succeeded.
struct Grant {
    severity: Severity,
    what: String,
}

/// The alert a CloudTrail record deserves, if it grants cluster admin
/// through an access entry on a watched cluster (`watched` empty: any).
pub fn assess(detail: &Value, watched: &[String]) -> Option<Alert> {
    // Only the EKS API's access-entry calls.
    let source = detail.get("eventSource").and_then(Value::as_str);
    if source != Some("eks.amazonaws.com") {
        return None;
    }
    let name = detail.get("eventName")?.as_str()?;
    let params = detail.get("requestParameters")?;
    // Only watched clusters.
    let cluster = params.get("name").and_then(Value::as_str)?;
    if !watched.is_empty() && !watched.iter().any(|w| w == cluster) {
        return None;
    }
    let principal = params
        .get("principalArn")
        .and_then(Value::as_str)
        .unwrap_or("<unknown principal>");
    let grant = match name {
        "AssociateAccessPolicy" => admin_policy(params)?,
        "CreateAccessEntry" | "UpdateAccessEntry" => groups(params)?,
        _ => return None,
    };
    Some(alert(detail, name, cluster, principal, grant))
}

/// An admin policy association.
fn admin_policy(params: &Value) -> Option<Grant> {
    let policy = params.get("policyArn").and_then(Value::as_str)?;
    let short = policy.rsplit('/').next().unwrap_or(policy);
    let scope = params.pointer("/accessScope/type").and_then(Value::as_str);
    let namespaces: Vec<&str> = params
        .pointer("/accessScope/namespaces")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .take(MAX_TITLE_GROUPS)
                .collect()
        })
        .unwrap_or_default();
    let namespaced = scope == Some("namespace");
    let severity = match short {
        "AmazonEKSClusterAdminPolicy" => Severity::High,
        "AmazonEKSAdminPolicy" if namespaced => Severity::Medium,
        "AmazonEKSAdminPolicy" => Severity::High,
        _ => return None,
    };
    let scope_text = if namespaced {
        format!("namespaces [{}]", cap(&namespaces.join(", ")))
    } else {
        "the whole cluster".to_owned()
    };
    Some(Grant {
        severity,
        what: format!("{short} on {scope_text}"),
    })
}

/// Kubernetes groups given to an entry.
fn groups(params: &Value) -> Option<Grant> {
    let groups = params.get("kubernetesGroups").and_then(Value::as_array)?;
    let names: Vec<&str> = groups.iter().filter_map(Value::as_str).collect();
    if names.is_empty() {
        return None;
    }
    let shown: Vec<&str> = names.iter().copied().take(MAX_TITLE_GROUPS).collect();
    let more = names.len().saturating_sub(shown.len());
    let mut what = format!("Kubernetes groups [{}]", cap(&shown.join(", ")));
    if more > 0 {
        what.push_str(&format!(" and {more} more"));
    }
    Some(Grant {
        severity: Severity::Medium,
        what,
    })
}

fn alert(detail: &Value, name: &str, cluster: &str, principal: &str, grant: Grant) -> Alert {
    let str_of = |key: &str| detail.get(key).and_then(Value::as_str);
    let who = detail
        .pointer("/userIdentity/arn")
        .and_then(Value::as_str)
        .unwrap_or("<unknown caller>");
    let event_id = str_of("eventID").unwrap_or(name);
    let at_ms = parse_timestamp(str_of("eventTime").unwrap_or_default()).unwrap_or(0);
    let when = format_rfc3339(at_ms);
    let refused = str_of("errorCode").filter(|c| !c.is_empty());
    let (severity, title) = match refused {
        None => (
            grant.severity,
            format!(
                "[{}] gave [{}] {} on EKS cluster [{}] ({name})",
                cap(who),
                cap(principal),
                grant.what,
                cap(cluster)
            ),
        ),
        Some(code) => (
            step_down(grant.severity),
            format!(
                "[{}] tried to give [{}] {} on EKS cluster [{}] and was refused: {} ({name})",
                cap(who),
                cap(principal),
                grant.what,
                cap(cluster),
                cap(code)
            ),
        ),
    };
    let id = stable_hash(&[META.id.as_str(), event_id]);
    let params = detail.get("requestParameters").unwrap_or(&Value::Null);
    Alert {
        alert_id: format!("{id:032x}"),
        rule_id: META.id,
        rule_name: META.name.into(),
        headline: if refused.is_some() {
            "EKS admin access entry refused".into()
        } else {
            "EKS admin access entry".into()
        },
        severity,
        escalation: false,
        title,
        dedup: cap(event_id),
        cluster: cap(cluster),
        source_ip: cap(str_of("sourceIPAddress").unwrap_or_default()),
        event_count: 1,
        threshold: 1,
        window_start: when.clone(),
        window_end: when.clone(),
        first_seen: when.clone(),
        last_seen: when,
        mitre: META.mitre.into(),
        reference: META.reference.into(),
        runbook: META.runbook.into(),
        summary: json!({
            "eventName": name,
            "eventSource": str_of("eventSource").map(cap),
            "principal": cap(who),
            "grantedPrincipal": cap(principal),
            "granted": grant.what,
            "userAgent": str_of("userAgent").map(cap),
            "requestParameters": cap(&params.to_string()),
            "eventID": cap(event_id),
            "errorCode": refused.map(cap),
            "errorMessage": str_of("errorMessage").map(cap),
        }),
        log_group: format!("/aws/eks/{}/cluster", cap(cluster)),
        account: cap(str_of("recipientAccountId").unwrap_or_default()),
        sample: Sample::default(),
        fanout_dropped: 0,
        // Filled where the alert is published (`Alert::locate`).
        region: None,
        cluster_arn: None,
        context: AlertContext::default(),
        investigate: None,
    }
}

/// One step down the scale: what a refused attempt is worth.
fn step_down(severity: Severity) -> Severity {
    match severity {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Info => Severity::Info,
    }
}
