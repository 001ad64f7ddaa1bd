//! Tampering with the detector's own resources, through the CloudTrail
//! records of the samples in `events/` (the detail EventBridge delivers):
//! every action on the stack's resources is reported, the same action on
//! someone else's is not, a refused attempt is one step down and says so,
//! and CloudFormation deploying the stack is not reported at all.

use eks_audit_detector::config::DetectorResources;
use eks_audit_detector::tamper::{assess, assess_with, RULE_ID};
use eks_audit_detector::vocab::{Alert, Severity};
use serde_json::{json, Value};

/// The CloudTrail record of a sample event.
fn record(file: &str) -> Value {
    let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let event: Value = serde_json::from_str(&text).expect("sample is JSON");
    assert_eq!(
        event["detail-type"], "AWS API Call via CloudTrail",
        "{file}"
    );
    event["detail"].clone()
}

/// The samples' stack: what `replay` watches without `DETECTOR_*`.
fn own() -> DetectorResources {
    DetectorResources::sample_stack()
}

fn judge(record: &Value) -> Option<Alert> {
    assess_with(record, &[], &own())
}

/// Each action on the stack's resources: sample, severity, target shown.
const OWN_ACTIONS: [(&str, Severity, &str); 27] = [
    (
        "11-kms-disable-key.json",
        Severity::High,
        "key 1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
    (
        "12-kms-schedule-key-deletion.json",
        Severity::High,
        "key 1234abcd",
    ),
    (
        "13-kms-put-key-policy.json",
        Severity::Medium,
        "key 1234abcd",
    ),
    (
        "14-lambda-update-function-configuration.json",
        Severity::High,
        "function eks-audit-detector",
    ),
    (
        "15-lambda-update-function-code.json",
        Severity::High,
        "function eks-audit-detector",
    ),
    (
        "16-lambda-remove-permission.json",
        Severity::High,
        "function eks-audit-detector",
    ),
    (
        "17-lambda-put-function-concurrency.json",
        Severity::High,
        "function eks-audit-detector",
    ),
    (
        "18-lambda-delete-function.json",
        Severity::High,
        "function eks-audit-detector",
    ),
    (
        "19-lambda-update-event-source-mapping.json",
        Severity::High,
        "function eks-audit-detector",
    ),
    (
        "20-lambda-delete-event-source-mapping.json",
        Severity::High,
        "function eks-audit-detector",
    ),
    (
        "21-events-disable-rule.json",
        Severity::High,
        "rule eks-audit-detector-DetectorFunctionLoggingChanges",
    ),
    (
        "22-events-delete-rule.json",
        Severity::High,
        "rule eks-audit-detector-DetectorFunctionOutboxSweep",
    ),
    (
        "23-events-remove-targets.json",
        Severity::High,
        "rule eks-audit-detector-DetectorFunctionLoggingChanges",
    ),
    (
        "24-sns-delete-topic.json",
        Severity::High,
        "topic eks-audit-detector-AlertTopic",
    ),
    (
        "25-sns-set-topic-attributes.json",
        Severity::Medium,
        "topic eks-audit-detector-OpsTopic",
    ),
    (
        "26-sns-unsubscribe.json",
        Severity::Medium,
        "topic eks-audit-detector-OpsTopic",
    ),
    (
        "27-sns-set-subscription-filter-policy.json",
        Severity::Medium,
        "topic eks-audit-detector-AlertTopic",
    ),
    (
        "28-cloudwatch-delete-alarms.json",
        Severity::Medium,
        "alarms eks-audit-detector-NothingReceivedAlarm",
    ),
    (
        "29-cloudwatch-disable-alarm-actions.json",
        Severity::Medium,
        "alarms eks-audit-detector-FunctionErrorsAlarm",
    ),
    (
        "30-cloudtrail-stop-logging.json",
        Severity::High,
        "trail management-events",
    ),
    (
        "31-cloudtrail-delete-trail.json",
        Severity::High,
        "trail management-events",
    ),
    (
        "32-cloudtrail-put-event-selectors.json",
        Severity::High,
        "trail management-events",
    ),
    (
        "33-logs-delete-destination.json",
        Severity::High,
        "destination eks-audit-detector-eks-audit",
    ),
    (
        "34-logs-put-destination-policy.json",
        Severity::Medium,
        "destination eks-audit-detector-eks-audit",
    ),
    (
        "35-logs-delete-account-policy.json",
        Severity::High,
        "subscription policy eks-audit-detector-eks-audit-detector",
    ),
    (
        "36-logs-put-account-policy.json",
        Severity::Medium,
        "subscription policy eks-audit-detector-eks-audit-detector",
    ),
    (
        "37-data-stream-delete-stream.json",
        Severity::High,
        "stream eks-audit-detector-AuditStream",
    ),
];

#[test]
fn every_action_on_the_detectors_own_resources_is_reported() {
    for (file, severity, target) in OWN_ACTIONS {
        let r = record(file);
        let a = judge(&r).unwrap_or_else(|| panic!("{file}: no alert"));
        let name = r["eventName"].as_str().expect("eventName");
        assert_eq!(a.rule_id, RULE_ID, "{file}");
        assert_eq!(a.severity, severity, "{file}: {}", a.title);
        assert!(a.cluster.starts_with(target), "{file}: {}", a.cluster);
        // THEN the title names who, what and the call, and the subject where
        assert!(
            a.title
                .starts_with("[arn:aws:sts::123456789012:assumed-role/Admin/mallory] "),
            "{}",
            a.title
        );
        assert!(a.title.ends_with(&format!("({name})")), "{}", a.title);
        assert!(!a.title.contains("tried"), "{}", a.title);
        assert!(
            a.subject().starts_with(&format!(
                "[{}] Detector resource changed from 203.0.113.66 on ",
                severity.as_str()
            )),
            "{}",
            a.subject()
        );
        assert_eq!(a.dedup, r["eventID"], "{file}");
        assert_eq!(a.account, "123456789012");
        assert!(a.log_group.is_empty(), "{file}: not a cluster's log group");
    }
    // the retention sample is the one LOW
    let a = judge(&record("38-data-stream-decrease-retention.json")).expect("retention");
    assert_eq!(a.severity, Severity::Low);
    assert!(a.title.contains("(to 24 hours)"), "{}", a.title);
}

#[test]
fn the_same_actions_on_someone_elses_resources_are_not() {
    // (sample, field of the record, another stack's value)
    let others: [(&str, &str, Value); 25] = [
        (
            "11-kms-disable-key.json",
            "/requestParameters/keyId",
            json!("ffffffff-0000-4000-8000-000000000000"),
        ),
        (
            "12-kms-schedule-key-deletion.json",
            "/requestParameters/keyId",
            json!("arn:aws:kms:us-east-1:123456789012:key/ffffffff-0000-4000-8000-000000000000"),
        ),
        (
            "13-kms-put-key-policy.json",
            "/requestParameters/keyId",
            json!("alias/someone-else"),
        ),
        (
            "14-lambda-update-function-configuration.json",
            "/requestParameters/functionName",
            json!("payments-api"),
        ),
        (
            "15-lambda-update-function-code.json",
            "/requestParameters/functionName",
            json!("arn:aws:lambda:us-east-1:123456789012:function:eks-audit-detector-staging"),
        ),
        (
            "16-lambda-remove-permission.json",
            "/requestParameters/functionName",
            json!("payments-api"),
        ),
        (
            "17-lambda-put-function-concurrency.json",
            "/requestParameters/functionName",
            json!("payments-api"),
        ),
        (
            "18-lambda-delete-function.json",
            "/requestParameters/functionName",
            json!("eks-audit-detector2"),
        ),
        (
            "19-lambda-update-event-source-mapping.json",
            "/responseElements",
            json!({"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:etl", "eventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/etl"}),
        ),
        (
            "20-lambda-delete-event-source-mapping.json",
            "/responseElements",
            json!({"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:etl", "eventSourceArn": "arn:aws:sqs:us-east-1:123456789012:jobs"}),
        ),
        (
            "21-events-disable-rule.json",
            "/requestParameters/name",
            json!("nightly-backup"),
        ),
        (
            "22-events-delete-rule.json",
            "/requestParameters/name",
            json!("other-stack-DetectorFunctionOutboxSweep-1"),
        ),
        (
            "23-events-remove-targets.json",
            "/requestParameters/rule",
            json!("nightly-backup"),
        ),
        (
            "24-sns-delete-topic.json",
            "/requestParameters/topicArn",
            json!("arn:aws:sns:us-east-1:123456789012:deploys"),
        ),
        (
            "25-sns-set-topic-attributes.json",
            "/requestParameters/topicArn",
            json!("arn:aws:sns:us-east-1:123456789012:deploys"),
        ),
        (
            "26-sns-unsubscribe.json",
            "/requestParameters/subscriptionArn",
            json!("arn:aws:sns:us-east-1:123456789012:deploys:5e1b6a3c"),
        ),
        (
            "27-sns-set-subscription-filter-policy.json",
            "/requestParameters/subscriptionArn",
            json!("arn:aws:sns:us-east-1:123456789012:deploys:0f9e8d7c"),
        ),
        (
            "28-cloudwatch-delete-alarms.json",
            "/requestParameters/alarmNames",
            json!(["billing-high", "other-stack-Errors"]),
        ),
        (
            "29-cloudwatch-disable-alarm-actions.json",
            "/requestParameters/alarmNames",
            json!(["billing-high"]),
        ),
        (
            "33-logs-delete-destination.json",
            "/requestParameters/destinationName",
            json!("firehose-siem"),
        ),
        (
            "34-logs-put-destination-policy.json",
            "/requestParameters/destinationName",
            json!("firehose-siem"),
        ),
        (
            "35-logs-delete-account-policy.json",
            "/requestParameters/policyName",
            json!("datadog-forwarder"),
        ),
        (
            "36-logs-put-account-policy.json",
            "/requestParameters/policyType",
            json!("DATA_PROTECTION_POLICY"),
        ),
        (
            "37-data-stream-delete-stream.json",
            "/requestParameters/streamName",
            json!("clickstream"),
        ),
        (
            "38-data-stream-decrease-retention.json",
            "/requestParameters/streamARN",
            json!("arn:aws:kinesis:us-east-1:123456789012:stream/clickstream"),
        ),
    ];
    for (file, field, value) in others {
        let mut r = record(file);
        *r.pointer_mut(field)
            .unwrap_or_else(|| panic!("{file}: {field}")) = value;
        // CloudTrail's `resources` names the key too: someone else's here
        if let Some(resources) = r.get_mut("resources") {
            *resources = json!([]);
        }
        assert_eq!(judge(&r).map(|a| a.title), None, "{file}");
    }
}

#[test]
fn reading_the_detectors_resources_is_not_tampering() {
    for (source, name, params) in [
        (
            "kms.amazonaws.com",
            "DescribeKey",
            json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}),
        ),
        (
            "lambda.amazonaws.com",
            "GetFunction20150331v2",
            json!({"functionName": "eks-audit-detector"}),
        ),
        (
            "lambda.amazonaws.com",
            "GetFunctionConfiguration20150331v2",
            json!({"functionName": "eks-audit-detector"}),
        ),
        (
            "events.amazonaws.com",
            "DescribeRule",
            json!({"name": "eks-audit-detector-DetectorFunctionOutboxSweep-7D8E9F0G1H2I"}),
        ),
        (
            "sns.amazonaws.com",
            "GetTopicAttributes",
            json!({"topicArn": "arn:aws:sns:us-east-1:123456789012:eks-audit-detector-AlertTopic-Q1W2E3R4T5Y6"}),
        ),
        (
            "monitoring.amazonaws.com",
            "DescribeAlarms",
            json!({"alarmNames": ["eks-audit-detector-FunctionErrorsAlarm-9P0Q1R2S3T4U"]}),
        ),
        (
            "cloudtrail.amazonaws.com",
            "GetTrailStatus",
            json!({"name": "management-events"}),
        ),
        (
            "cloudtrail.amazonaws.com",
            "StartLogging",
            json!({"name": "management-events"}),
        ),
        (
            "kinesis.amazonaws.com",
            "DescribeStream",
            json!({"streamName": "eks-audit-detector-AuditStream-Z1X2C3V4B5N6"}),
        ),
        (
            "logs.amazonaws.com",
            "DescribeDestinations",
            json!({"destinationNamePrefix": "eks-audit-detector"}),
        ),
    ] {
        let mut r = record("11-kms-disable-key.json");
        r["eventSource"] = json!(source);
        r["eventName"] = json!(name);
        r["requestParameters"] = params;
        r["readOnly"] = json!(true);
        assert!(judge(&r).is_none(), "{name}");
    }
}

#[test]
fn with_nothing_known_only_the_clusters_are_watched() {
    let nothing = DetectorResources::default();
    for (file, _, _) in OWN_ACTIONS {
        assert!(
            assess_with(&record(file), &[], &nothing).is_none(),
            "{file}"
        );
        // `assess` knows no resources either
        assert!(assess(&record(file), &[]).is_none(), "{file}");
    }
    let a = assess_with(
        &record("08-subscription-filter-deleted.json"),
        &[],
        &nothing,
    )
    .expect("EKS");
    assert_eq!(a.severity, Severity::High);
    assert_eq!(a.log_group, "/aws/eks/prod-payments/cluster");
}

#[test]
fn a_refused_attempt_is_one_step_down_and_says_it_was_refused() {
    let samples = OWN_ACTIONS
        .iter()
        .map(|(file, severity, _)| (*file, *severity))
        .chain([
            ("08-subscription-filter-deleted.json", Severity::High),
            ("09-audit-logging-disabled.json", Severity::High),
            ("38-data-stream-decrease-retention.json", Severity::Low),
        ]);
    for (file, done) in samples {
        let mut r = record(file);
        r["errorCode"] = json!("AccessDenied");
        r["errorMessage"] = json!("User: mallory is not authorized to perform this action");
        r["responseElements"] = Value::Null;
        // (a refused mapping update names its function in the request only)
        if file.starts_with("19-") || file.starts_with("20-") {
            r["requestParameters"]["functionName"] = json!("eks-audit-detector");
        }
        let a = judge(&r).unwrap_or_else(|| panic!("{file}: no alert"));
        let expected = match done {
            Severity::High => Severity::Medium,
            Severity::Medium => Severity::Low,
            _ => Severity::Info,
        };
        assert_eq!(a.severity, expected, "{file}");
        assert!(
            a.title.contains("] tried to ") && a.title.contains("and was refused: AccessDenied"),
            "{}",
            a.title
        );
        assert!(
            a.subject().contains("refused from 203.0.113.66")
                || a.subject().contains("refused from 198.51.100.23"),
            "{}",
            a.subject()
        );
        assert_eq!(a.summary["errorCode"], "AccessDenied");
        assert!(a.runbook.contains("refused"), "{file}");
    }
    // the sample of a refused attempt on a watched cluster
    let a = judge(&record("39-logs-delete-subscription-filter-refused.json")).expect("refused");
    assert_eq!(a.severity, Severity::Medium);
    assert_eq!(a.headline, "EKS audit logging change refused");
    assert!(
        a.title
            .contains("tried to remove the subscription filter of [prod-payments]"),
        "{}",
        a.title
    );
}

#[test]
fn cloudformation_deploying_the_stack_is_not_reported() {
    assert!(judge(&record("40-cloudformation-deploy-ignored.json")).is_none());
    for (file, _, _) in OWN_ACTIONS {
        // AWS sets the source address of a service's call to its name...
        let mut r = record(file);
        r["sourceIPAddress"] = json!("cloudformation.amazonaws.com");
        assert!(judge(&r).is_none(), "{file}");
        // ...and `invokedBy` when it calls with a caller's credentials
        let mut r = record(file);
        r["userIdentity"]["invokedBy"] = json!("cloudformation.amazonaws.com");
        assert!(judge(&r).is_none(), "{file}");
    }
    // the stack's subscription filters and policy, replaced on deploy
    let mut r = record("08-subscription-filter-deleted.json");
    r["sourceIPAddress"] = json!("cloudformation.amazonaws.com");
    assert!(judge(&r).is_none());
    // a user agent is the caller's to choose: alone it proves nothing
    let mut r = record("18-lambda-delete-function.json");
    r["userAgent"] = json!("cloudformation.amazonaws.com");
    assert_eq!(judge(&r).map(|a| a.severity), Some(Severity::High));
}

#[test]
fn lambda_names_carry_the_api_version_and_only_blinding_values_count() {
    let with = |file: &str, edit: &dyn Fn(&mut Value)| {
        let mut r = record(file);
        edit(&mut r);
        judge(&r)
    };
    // DeleteFunctionConcurrency is not DeleteFunction
    assert!(with("18-lambda-delete-function.json", &|r| r["eventName"] =
        json!("DeleteFunctionConcurrency20171031"))
    .is_none());
    // deleting a published version leaves the function
    assert!(with("18-lambda-delete-function.json", &|r| r
        ["requestParameters"]["qualifier"] =
        json!("3"))
    .is_none());
    // a function named by a qualified ARN is still the function
    assert!(with("15-lambda-update-function-code.json", &|r| {
        r["requestParameters"]["functionName"] =
            json!("arn:aws:lambda:us-east-1:123456789012:function:eks-audit-detector:$LATEST")
    })
    .is_some());
    // a concurrency above 0 still runs it
    assert!(with("17-lambda-put-function-concurrency.json", &|r| r
        ["requestParameters"]["reservedConcurrentExecutions"] =
        json!(5))
    .is_none());
    // enabling the mapping blinds nothing
    assert!(with("19-lambda-update-event-source-mapping.json", &|r| r
        ["requestParameters"]["enabled"] =
        json!(true))
    .is_none());
    // a configuration change without the environment is MEDIUM
    let a = with("14-lambda-update-function-configuration.json", &|r| {
        r["requestParameters"] = json!({"functionName": "eks-audit-detector", "timeout": 1})
    })
    .expect("configuration");
    assert_eq!(a.severity, Severity::Medium);
    // the environment's keys are named, never its values
    let a = with("14-lambda-update-function-configuration.json", &|r| {
        r["requestParameters"]["environment"]["variables"] =
            json!({"ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:666666666666:mallory", "DISABLED_RULES": "Amazon.EKS.Audit.PodScan"})
    })
    .expect("environment");
    assert!(
        a.title
            .contains("(environment keys ALERT_TOPIC_ARN, DISABLED_RULES)"),
        "{}",
        a.title
    );
    let text = serde_json::to_string(&a).expect("JSON");
    assert!(
        !text.contains("666666666666") && !text.contains("Amazon.EKS.Audit.PodScan"),
        "{text}"
    );
    // keys CloudTrail does not show are said to be unknown
    let a = with("14-lambda-update-function-configuration.json", &|r| {
        r["requestParameters"]["environment"] = json!({})
    })
    .expect("hidden environment");
    assert!(
        a.title.contains("environment keys not shown"),
        "{}",
        a.title
    );
}

#[test]
fn topics_alarms_and_trails_count_what_can_blind() {
    let with = |file: &str, edit: &dyn Fn(&mut Value)| {
        let mut r = record(file);
        edit(&mut r);
        judge(&r).map(|a| a.severity)
    };
    // a display name or raw delivery drops nothing
    assert_eq!(
        with("25-sns-set-topic-attributes.json", &|r| r
            ["requestParameters"]["attributeName"] =
            json!("DisplayName")),
        None
    );
    assert_eq!(
        with("27-sns-set-subscription-filter-policy.json", &|r| r
            ["requestParameters"]["attributeName"] =
            json!("RawMessageDelivery")),
        None
    );
    assert_eq!(
        with("27-sns-set-subscription-filter-policy.json", &|r| r
            ["requestParameters"]["attributeName"] =
            json!("FilterPolicyScope")),
        Some(Severity::Medium)
    );
    // of a list of alarms, ours are named and the rest left out
    let a = judge(&{
        let mut r = record("28-cloudwatch-delete-alarms.json");
        r["requestParameters"]["alarmNames"] = json!([
            "billing-high",
            "eks-audit-detector-ThrottlesAlarm-5V6W7X8Y9Z0A"
        ]);
        r
    })
    .expect("alarms");
    assert!(
        a.title
            .contains("[alarms eks-audit-detector-ThrottlesAlarm-5V6W7X8Y9Z0A]"),
        "{}",
        a.title
    );
    // selectors that still record write management events
    let basic = json!([{"readWriteType": "WriteOnly", "includeManagementEvents": true, "dataResources": []}]);
    assert_eq!(
        with("32-cloudtrail-put-event-selectors.json", &|r| r
            ["requestParameters"]["eventSelectors"] =
            basic.clone()),
        Some(Severity::Low)
    );
    let excluding = json!([{"readWriteType": "All", "includeManagementEvents": true, "excludeManagementEventSources": ["kms.amazonaws.com"]}]);
    assert_eq!(
        with("32-cloudtrail-put-event-selectors.json", &|r| r
            ["requestParameters"]["eventSelectors"] =
            excluding.clone()),
        Some(Severity::Medium)
    );
    let read_only = json!([{"readWriteType": "ReadOnly", "includeManagementEvents": true}]);
    assert_eq!(
        with("32-cloudtrail-put-event-selectors.json", &|r| r
            ["requestParameters"]["eventSelectors"] =
            read_only.clone()),
        Some(Severity::High)
    );
    let advanced = |category: &str| {
        json!({"trailName": "management-events", "advancedEventSelectors": [
            {"name": "m", "fieldSelectors": [{"field": "eventCategory", "equals": [category]}]}]})
    };
    assert_eq!(
        with("32-cloudtrail-put-event-selectors.json", &|r| r
            ["requestParameters"] =
            advanced("Management")),
        Some(Severity::Low)
    );
    assert_eq!(
        with("32-cloudtrail-put-event-selectors.json", &|r| r
            ["requestParameters"] =
            advanced("Data")),
        Some(Severity::High)
    );
}

#[test]
fn request_values_are_capped_and_the_alert_id_is_stable() {
    let mut r = record("21-events-disable-rule.json");
    let long = format!("eks-audit-detector-DetectorFunction{}", "A".repeat(100_000));
    r["requestParameters"]["name"] = json!(long);
    r["userIdentity"]["arn"] = json!("x".repeat(100_000));
    let a = judge(&r).expect("still ours");
    assert!(a.title.len() < 2_000, "{}", a.title.len());
    assert!(a.cluster.len() < 1_000);
    assert!(a.summary.to_string().len() < 4_000);
    assert!(a.subject().len() < 100);
    // the same record is the same alert (a redelivery dedups)
    assert_eq!(judge(&r).map(|b| b.alert_id), Some(a.alert_id));
}

#[test]
fn a_member_accounts_tampering_forwarded_to_the_security_account_names_the_member() {
    // GIVEN a member account's CloudTrail event, forwarded by member.yaml's
    // rule to the security account's bus (the envelope keeps the member's
    // account)
    let detail = record("41-member-account-audit-logging-disabled.json");
    assert_eq!(detail["recipientAccountId"], "111111111111");
    // THEN it is reported with the member account and its cluster
    let alert = judge(&detail).expect("reported");
    assert_eq!(alert.account, "111111111111");
    assert_eq!(alert.severity, Severity::High);
    assert!(alert.title.contains("payments"), "{}", alert.title);
    assert!(alert.title.contains("111111111111"), "{}", alert.title);
}

#[test]
fn disabling_the_operations_topics_own_key_is_reported_too() {
    // GIVEN the sample DisableKey, aimed at the second key of the stack
    let mut detail = record("11-kms-disable-key.json");
    let ops_key = own().key_arns[1].clone();
    detail["requestParameters"]["keyId"] = json!(ops_key);
    detail["resources"] = json!([{ "ARN": ops_key, "type": "AWS::KMS::Key" }]);
    // THEN it is reported like the alert key
    let alert = judge(&detail).expect("reported");
    assert_eq!(alert.severity, Severity::High);
    assert!(alert.title.contains("5678efab"), "{}", alert.title);
    // AND a key of no one's stack is not
    detail["requestParameters"]["keyId"] = json!("arn:aws:kms:us-east-1:123456789012:key/other");
    detail["resources"] = json!([]);
    assert!(judge(&detail).is_none());
}

/// A CloudTrail record of `name` on `source` with these parameters and
/// response, made by someone (not CloudFormation).
fn call(source: &str, name: &str, params: Value, response: Value) -> Value {
    json!({"eventTime": "2024-11-24T09:40:00Z", "eventSource": source, "eventName": name,
        "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/Admin/mallory"},
        "sourceIPAddress": "203.0.113.66", "requestParameters": params,
        "responseElements": response,
        "eventID": "7c1d2e3f-4a5b-4c6d-8e7f-00000000aaaa", "recipientAccountId": "123456789012"})
}

/// Calls that blind the detector as surely as the ones named `Disable*`
/// or `Delete*`: a rule or alarm rewritten whole, the rule's targets or the
/// stream's mapping sent elsewhere, a filter that discards every record,
/// the destination pointed at another stream, the audit log put under a
/// key of the caller's, a trail made single-region, selectors that leave
/// out event sources. Each is reported; the same call that changes nothing
/// the detector relies on is not.
#[test]
fn rewrites_that_blind_the_detector_are_reported_and_harmless_ones_are_not() {
    let rule = "eks-audit-detector-DetectorFunctionLoggingChanges-1AB2C3D4";
    let stream =
        "arn:aws:kinesis:us-east-1:123456789012:stream/eks-audit-detector-AuditStream-Z1X2C3V4B5N6";
    let ours = "arn:aws:lambda:us-east-1:123456789012:function:eks-audit-detector";
    let sink = "arn:aws:lambda:us-east-1:123456789012:function:sink";
    let esm = |params: Value, function: &str| {
        call(
            "lambda.amazonaws.com",
            "UpdateEventSourceMapping20150331",
            params,
            json!({"functionArn": function, "eventSourceArn": stream}),
        )
    };
    let selectors = |field: Value| {
        call(
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            json!({"trailName": "main", "advancedEventSelectors": [{"fieldSelectors": [
                {"field": "eventCategory", "equals": ["Management"]}, field]}]}),
            Value::Null,
        )
    };
    let reported: [(Value, Severity); 10] = [
        (
            call(
                "events.amazonaws.com",
                "PutRule",
                json!({"name": rule, "state": "DISABLED"}),
                Value::Null,
            ),
            Severity::High,
        ),
        (
            call(
                "events.amazonaws.com",
                "PutTargets",
                json!({"rule": rule, "targets": [{"id": "T", "arn": sink}]}),
                Value::Null,
            ),
            Severity::High,
        ),
        (
            call(
                "monitoring.amazonaws.com",
                "PutMetricAlarm",
                json!({"alarmName": "eks-audit-detector-NothingReceivedAlarm-ABC", "actionsEnabled": false}),
                Value::Null,
            ),
            Severity::Medium,
        ),
        (
            esm(json!({"uUID": "u", "functionName": "sink"}), sink),
            Severity::High,
        ),
        (
            esm(
                json!({"uUID": "u", "filterCriteria": {"filters": [{"pattern": "{\"partitionKey\":[\"never\"]}"}]}}),
                ours,
            ),
            Severity::High,
        ),
        (
            call(
                "logs.amazonaws.com",
                "PutDestination",
                json!({"destinationName": "eks-audit-detector-eks-audit",
                       "targetArn": "arn:aws:kinesis:us-east-1:123456789012:stream/sink"}),
                Value::Null,
            ),
            Severity::High,
        ),
        (
            call(
                "logs.amazonaws.com",
                "AssociateKmsKey",
                json!({"logGroupName": "/aws/eks/prod/cluster",
                       "kmsKeyId": "arn:aws:kms:us-east-1:999999999999:key/attacker"}),
                Value::Null,
            ),
            Severity::Medium,
        ),
        (
            call(
                "cloudtrail.amazonaws.com",
                "UpdateTrail",
                json!({"name": "main", "isMultiRegionTrail": false}),
                Value::Null,
            ),
            Severity::Medium,
        ),
        (
            selectors(json!({"field": "eventSource", "notEquals": ["kms.amazonaws.com"]})),
            Severity::Medium,
        ),
        (
            selectors(json!({"field": "eventSource", "equals": ["eks.amazonaws.com"]})),
            Severity::Medium,
        ),
    ];
    for (record, severity) in &reported {
        let alert = assess_with(record, &["prod".into()], &own())
            .unwrap_or_else(|| panic!("not reported: {record}"));
        assert_eq!(alert.severity, *severity, "{}", alert.title);
    }
    let harmless = [
        call(
            "events.amazonaws.com",
            "PutRule",
            json!({"name": rule, "state": "ENABLED"}),
            Value::Null,
        ),
        call(
            "events.amazonaws.com",
            "PutTargets",
            json!({"rule": rule, "targets": [{"id": "T", "arn": ours}, {"id": "U", "arn": sink}]}),
            Value::Null,
        ),
        call(
            "events.amazonaws.com",
            "PutRule",
            json!({"name": "someone-elses", "state": "DISABLED"}),
            Value::Null,
        ),
        call(
            "monitoring.amazonaws.com",
            "PutMetricAlarm",
            json!({"alarmName": "eks-audit-detector-NothingReceivedAlarm-ABC", "actionsEnabled": true}),
            Value::Null,
        ),
        call(
            "monitoring.amazonaws.com",
            "PutMetricAlarm",
            json!({"alarmName": "billing", "actionsEnabled": false}),
            Value::Null,
        ),
        esm(
            json!({"uUID": "u", "functionName": "eks-audit-detector", "batchSize": 50}),
            ours,
        ),
        call(
            "logs.amazonaws.com",
            "PutDestination",
            json!({"destinationName": "eks-audit-detector-eks-audit", "targetArn": stream}),
            Value::Null,
        ),
        call(
            "logs.amazonaws.com",
            "AssociateKmsKey",
            json!({"logGroupName": "/aws/lambda/other", "kmsKeyId": "k"}),
            Value::Null,
        ),
        call(
            "cloudtrail.amazonaws.com",
            "UpdateTrail",
            json!({"name": "main", "isMultiRegionTrail": true}),
            Value::Null,
        ),
    ];
    for record in &harmless {
        assert!(
            assess_with(record, &["prod".into()], &own()).is_none(),
            "reported: {record}"
        );
    }
}

/// When SNS refuses a report whole, it goes out without its sample and
/// details; a tampering report keeps who did what and how it ended, so a
/// refused attempt is never mailed as done.
#[test]
fn a_shortened_report_still_says_the_attempt_was_refused() {
    let refused = json!({
        "eventTime": "2024-11-24T09:00:00Z", "eventSource": "logs.amazonaws.com",
        "eventName": "DeleteSubscriptionFilter",
        "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/Admin/mallory"},
        "sourceIPAddress": "203.0.113.66",
        "requestParameters": {"logGroupName": "/aws/eks/prod/cluster", "filterName": "f"},
        "errorCode": "AccessDenied", "errorMessage": "not allowed",
        "eventID": "5e6f7a8b-0000-4000-8000-000000000001", "recipientAccountId": "123456789012"
    });
    let alert = assess(&refused, &["prod".into()]).expect("reported");
    for text in [alert.email_text(), alert.minimal().email_text()] {
        assert!(text.contains("FAILED: AccessDenied"), "{text}");
        assert!(text.contains("mallory"), "{text}");
    }
}
