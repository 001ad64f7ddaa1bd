//! `EksAuditDetector.AccessEntryAdmin`: EKS access entries that grant
//! cluster admin, read from CloudTrail records (the detail EventBridge
//! delivers), positive and negative, and through the handler.

mod common;

use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::access_entry::{assess, META};
use eks_audit_detector::rules::Detector;
use eks_audit_detector::store::memory::MemoryStore;
use eks_audit_detector::vocab::Severity;
use serde_json::{json, Value};

use common::RecordingSink;

fn record(name: &str, params: Value) -> Value {
    json!({
        "eventTime": "2024-11-24T10:05:00Z",
        "eventSource": "eks.amazonaws.com",
        "eventName": name,
        "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/Admin/mallory"},
        "sourceIPAddress": "203.0.113.66",
        "requestParameters": params,
        "eventID": format!("id-{name}"),
        "recipientAccountId": "123456789012"
    })
}

fn associate(policy: &str, scope: Value) -> Value {
    record(
        "AssociateAccessPolicy",
        json!({
            "name": "prod",
            "principalArn": "arn:aws:iam::123456789012:role/ci",
            "policyArn": format!("arn:aws:eks::aws:cluster-access-policy/{policy}"),
            "accessScope": scope,
        }),
    )
}

#[test]
fn cluster_admin_policy_is_high_and_names_both_principals() {
    let a = assess(
        &associate("AmazonEKSClusterAdminPolicy", json!({"type": "cluster"})),
        &[],
    )
    .expect("alert");
    assert_eq!(a.rule_id, META.id);
    assert_eq!(a.severity, Severity::High);
    assert_eq!(
        a.title,
        "[arn:aws:sts::123456789012:assumed-role/Admin/mallory] gave \
         [arn:aws:iam::123456789012:role/ci] AmazonEKSClusterAdminPolicy on the whole cluster \
         on EKS cluster [prod] (AssociateAccessPolicy)"
    );
    assert_eq!(a.cluster, "prod");
    assert_eq!(a.log_group, "/aws/eks/prod/cluster");
    assert_eq!(a.summary["errorCode"], Value::Null);
}

#[test]
fn admin_policy_is_high_on_the_cluster_and_medium_on_namespaces() {
    let cluster = assess(
        &associate("AmazonEKSAdminPolicy", json!({"type": "cluster"})),
        &[],
    )
    .expect("alert");
    assert_eq!(cluster.severity, Severity::High);
    let ns = assess(
        &associate(
            "AmazonEKSAdminPolicy",
            json!({"type": "namespace", "namespaces": ["team-a", "team-b"]}),
        ),
        &[],
    )
    .expect("alert");
    assert_eq!(ns.severity, Severity::Medium);
    assert!(
        ns.title.contains("namespaces [team-a, team-b]"),
        "{}",
        ns.title
    );
}

#[test]
fn view_and_edit_policies_are_not_admin() {
    for policy in [
        "AmazonEKSViewPolicy",
        "AmazonEKSEditPolicy",
        "AmazonEKSAdminViewPolicy",
    ] {
        assert!(
            assess(&associate(policy, json!({"type": "cluster"})), &[]).is_none(),
            "{policy}"
        );
    }
}

#[test]
fn entries_naming_groups_are_medium_and_bare_entries_are_not_reported() {
    let with = record(
        "CreateAccessEntry",
        json!({"name": "prod", "principalArn": "arn:aws:iam::1:role/x", "kubernetesGroups": ["admins"]}),
    );
    let a = assess(&with, &[]).expect("alert");
    assert_eq!(a.severity, Severity::Medium);
    assert!(
        a.title.contains("Kubernetes groups [admins]"),
        "{}",
        a.title
    );
    let bare = record(
        "CreateAccessEntry",
        json!({"name": "prod", "principalArn": "arn:aws:iam::1:role/x", "type": "STANDARD"}),
    );
    assert!(assess(&bare, &[]).is_none());
    let update = record(
        "UpdateAccessEntry",
        json!({"name": "prod", "principalArn": "arn:aws:iam::1:role/x", "kubernetesGroups": []}),
    );
    assert!(assess(&update, &[]).is_none());
}

#[test]
fn a_refused_call_is_one_step_down_and_says_so() {
    let mut r = associate("AmazonEKSClusterAdminPolicy", json!({"type": "cluster"}));
    r["errorCode"] = json!("AccessDeniedException");
    let a = assess(&r, &[]).expect("alert");
    assert_eq!(a.severity, Severity::Medium);
    assert!(a.title.contains("tried to give"), "{}", a.title);
    assert!(
        a.title.contains("refused: AccessDeniedException"),
        "{}",
        a.title
    );
}

#[test]
fn only_watched_clusters_and_only_eks_records() {
    let r = associate("AmazonEKSClusterAdminPolicy", json!({"type": "cluster"}));
    assert!(assess(&r, &["staging".to_owned()]).is_none());
    assert!(assess(&r, &["prod".to_owned()]).is_some());
    let mut other = r.clone();
    other["eventSource"] = json!("iam.amazonaws.com");
    assert!(assess(&other, &[]).is_none());
}

#[test]
fn hostile_values_are_capped() {
    let long = "a".repeat(200_000);
    let r = record(
        "CreateAccessEntry",
        json!({"name": long, "principalArn": long, "kubernetesGroups": vec![long.clone(); 50]}),
    );
    let a = assess(&r, &[]).expect("alert");
    assert!(a.title.len() < 2_000, "{}", a.title.len());
    assert!(a.to_json().len() < 8_000, "{}", a.to_json().len());
    assert!(a.title.contains("and 45 more"), "{}", &a.title[..200]);
}

/// The sample, through the handler: one alert, also when EventBridge
/// delivers it twice; none when the rule is turned off.
#[tokio::test]
async fn the_sample_alerts_once_through_the_handler_and_can_be_turned_off() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/42-eks-access-entry-cluster-admin.json"
    );
    let body = std::fs::read_to_string(path).expect("sample");
    let p = Processor::new(
        Detector::new(DetectorConfig::default()),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    for _ in 0..2 {
        p.handle_invoke_body(body.as_bytes())
            .await
            .expect("handled");
    }
    let published = p.sink().published();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].rule_id, META.id);
    assert_eq!(published[0].severity, Severity::High);

    let off = DetectorConfig {
        disabled_rules: vec![META.id.as_str().to_owned()],
        ..DetectorConfig::default()
    };
    eks_audit_detector::rules::check_rules(&off).expect("a known id");
    let p = Processor::new(
        Detector::new(off),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    p.handle_invoke_body(body.as_bytes())
        .await
        .expect("handled");
    assert!(p.sink().published().is_empty());
}
