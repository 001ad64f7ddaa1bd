//! The handler against real AWS APIs served locally (moto): DynamoDB state,
//! SNS alerts read back from a subscribed SQS queue, over HTTP with the real
//! AWS SDK. Exactly one alert per window under redelivery, races and
//! failures.

mod common;

use common::runtime;

use std::sync::Arc;

use common::aws::{create_topic_with_queue, Stack};
use common::{event, invoke_body, with};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::sink::sns::SnsSink;
use eks_audit_detector::store::dynamodb::DynamoStore;
use eks_audit_detector::vocab::Severity;
use serde_json::Value;

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";
const KEY: &str = "Amazon.EKS.Audit.Multiple403#prod_403_5.5.5.5";

type AwsProcessor = Processor<DynamoStore, SnsSink>;

fn processor_for(stack: &Stack, table: &str, topic_arn: &str) -> AwsProcessor {
    Processor::new(
        Detector::new(common::seed_config()),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), table),
        SnsSink::new(aws_sdk_sns::Client::new(&stack.config), topic_arn),
    )
}

fn processor(stack: &Stack) -> AwsProcessor {
    processor_for(stack, &stack.table, &stack.topic_arn)
}

fn burst(ip: &str, n: usize, start: i64, tag: &str) -> Vec<(i64, String)> {
    (0..n)
        .map(|i| {
            (
                start + i as i64 * 1000,
                with(event("forbidden_public.json"), &format!("{tag}-{i}"), ip),
            )
        })
        .collect()
}

fn body(stream: &str, msgs: &[(i64, String)]) -> Vec<u8> {
    invoke_body(GROUP, stream, msgs).into_bytes()
}

#[test]
fn threshold_crossing_publishes_exactly_one_alert_with_the_documented_json() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        let p = processor(&stack);
        let report = p
            .handle_invoke_body(&body("s1", &burst("5.5.5.5", 12, T0, "a")))
            .await
            .expect("handled");
        // one key: a read and a conditional write that decides the alert and
        // queues it, then one write that takes it out of the outbox
        assert_eq!((report.state_reads, report.state_writes), (1, 2));
        assert!(
            stack.outbox().await.is_empty(),
            "delivered alerts leave the outbox"
        );
        let messages = stack.drain().await;
        assert_eq!(messages.len(), 1);
        let (raw, attrs) = &messages[0];
        let json: Value = serde_json::from_str(raw).expect("alert JSON");
        for field in [
            "alert_id",
            "rule_id",
            "rule_name",
            "severity",
            "title",
            "dedup",
            "cluster",
            "source_ip",
            "event_count",
            "threshold",
            "window_start",
            "window_end",
            "first_seen",
            "last_seen",
            "mitre",
            "reference",
            "summary",
            "log_group",
            "account",
            "sample",
        ] {
            assert!(json.get(field).is_some(), "missing {field}: {raw}");
        }
        assert_eq!(json["rule_id"], "Amazon.EKS.Audit.Multiple403");
        assert_eq!(json["severity"], "INFO");
        assert_eq!(json["event_count"], 10);
        assert_eq!(json["mitre"], "TA0007:T1613");
        assert_eq!(json["sample"]["responseStatus"]["code"], 403);
        assert_eq!(
            attrs,
            &vec![
                ("cluster".to_owned(), "prod".to_owned()),
                (
                    "rule_id".to_owned(),
                    "Amazon.EKS.Audit.Multiple403".to_owned()
                ),
                ("severity".to_owned(), "INFO".to_owned()),
            ]
        );
        let state = stack.state(KEY).await.expect("state stored");
        // saturated at the 10th match: the last two changed nothing
        assert_eq!(state["count"], 10);
        let item = stack.item(KEY).await.expect("item");
        let expires: i64 = match item.get("expires_at") {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().expect("number"),
            other => panic!("expires_at: {other:?}"),
        };
        // old events: expiry counts from the write (wall time), not the
        // events, so the item is not born expired
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        assert!(
            expires >= now + 14 * 24 * 3600 + 23 * 3600,
            "expires 15 days after the write, past the failure queue's 14 days"
        );
    });
}

#[test]
fn below_threshold_publishes_nothing() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        processor(&stack)
            .handle_invoke_body(&body("s1", &burst("5.5.5.5", 9, T0, "a")))
            .await
            .expect("handled");
        assert!(stack.drain().await.is_empty());
        assert_eq!(stack.state(KEY).await.expect("state")["count"], 9);
    });
}

#[test]
fn a_new_window_after_the_period_alerts_again() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        let p = processor(&stack);
        p.handle_invoke_body(&body("s1", &burst("5.5.5.5", 10, T0, "a")))
            .await
            .expect("first window");
        p.handle_invoke_body(&body("s1", &burst("5.5.5.5", 5, T0 + 10 * 60_000, "b")))
            .await
            .expect("same window");
        p.handle_invoke_body(&body("s1", &burst("5.5.5.5", 10, T0 + 31 * 60_000, "c")))
            .await
            .expect("next window");
        let alerts = stack.alerts().await;
        assert_eq!(alerts.len(), 2);
        assert_ne!(alerts[0].alert_id, alerts[1].alert_id);
        assert_eq!(alerts[1].window_start, "2024-05-14T00:31:00.000Z");
    });
}

#[test]
fn the_same_batch_delivered_twice_changes_nothing() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        let p = processor(&stack);
        let b = body("s1", &burst("5.5.5.5", 10, T0, "a"));
        p.handle_invoke_body(&b).await.expect("first");
        let before = stack.item(KEY).await;
        let again = p.handle_invoke_body(&b).await.expect("redelivery");
        assert_eq!(again.state_writes, 0);
        // this warm instance remembers the saturated window: not even a read
        assert_eq!((again.hot_keys, again.state_reads), (1, 0));
        // another instance reads the key and finds the batch applied
        let cold = processor(&stack)
            .handle_invoke_body(&b)
            .await
            .expect("cold");
        assert_eq!((cold.duplicate_keys, cold.state_writes), (1, 0));
        assert_eq!(stack.item(KEY).await, before);
        assert_eq!(stack.alerts().await.len(), 1);
    });
}

#[test]
fn eight_concurrent_invocations_on_one_key_give_one_alert_and_the_exact_count() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        // GIVEN 8 different batches of 5 refusals each from the same IP
        // (threshold 40: every match counts until the last one)
        let mut tasks = Vec::new();
        for i in 0..8 {
            // each invocation is its own Lambda instance with its own clients
            let p = Arc::new(Processor::new(
                Detector::new(DetectorConfig {
                    multiple_403_threshold: 40,
                    ..common::seed_config()
                }),
                DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table),
                SnsSink::new(aws_sdk_sns::Client::new(&stack.config), &stack.topic_arn),
            ));
            let b = body(
                &format!("stream-{i}"),
                &burst("5.5.5.5", 5, T0 + i * 7_000, &format!("inv{i}")),
            );
            tasks.push(tokio::spawn(async move { p.handle_invoke_body(&b).await }));
        }
        // WHEN they all run at once
        let mut conflicts = 0;
        for t in tasks {
            conflicts += t
                .await
                .expect("joined")
                .expect("invocation succeeded")
                .state_conflicts;
        }
        // THEN the count is exact and there is one alert
        assert_eq!(stack.state(KEY).await.expect("state")["count"], 40);
        let alerts = stack.alerts().await;
        assert_eq!(alerts.len(), 1, "conflicts resolved: {conflicts}");
        assert_eq!(alerts[0].event_count, 40);
    });
}

#[test]
fn sns_failing_fails_the_invocation_and_the_retry_publishes_the_pending_alert_once() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        // GIVEN a topic that does not exist yet (SNS answers NotFound)
        let name = common::aws::unique("late-topic");
        let topic_arn = format!("arn:aws:sns:us-east-1:123456789012:{name}");
        let p = processor_for(&stack, &stack.table, &topic_arn);
        let b = body("s1", &burst("5.5.5.5", 10, T0, "a"));
        let err = p.handle_invoke_body(&b).await.expect_err("publish fails");
        assert_eq!(err.error_type(), "PublishFailed");
        let state = stack.state(KEY).await.expect("state");
        assert_eq!(
            stack.outbox().await.len(),
            1,
            "the alert waits in the outbox"
        );
        assert_eq!(state["count"], 10);
        // WHEN SNS is back and Lambda retries the same event
        let (created, queue_url) = create_topic_with_queue(&stack.sns, &stack.sqs, &name).await;
        assert_eq!(created, topic_arn);
        let retry = p.handle_invoke_body(&b).await.expect("retry succeeds");
        assert_eq!(retry.alerts_published, 1);
        // THEN the alert arrives once, counts are unchanged, nothing is pending
        let state = stack.state(KEY).await.expect("state");
        assert_eq!(state["count"], 10);
        assert!(stack.outbox().await.is_empty());
        let item = stack.item(KEY).await.expect("item");
        assert!(item.contains_key("expires_at") && !item.contains_key("outbox"));
        p.handle_invoke_body(&b).await.expect("third delivery");
        assert_eq!(stack.bodies_from(&queue_url).await.len(), 1);
    });
}

#[test]
fn dynamodb_unavailable_fails_the_invocation_without_publishing() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        let p = processor_for(&stack, "no-such-table", &stack.topic_arn);
        let err = p
            .handle_invoke_body(&body("s1", &burst("5.5.5.5", 12, T0, "a")))
            .await
            .expect_err("fails");
        assert_eq!(err.error_type(), "StateStoreUnavailable");
        assert!(
            err.to_string().contains("no-such-table")
                || err.to_string().contains("ResourceNotFound"),
            "{err}"
        );
        assert!(stack.drain().await.is_empty());
    });
}

#[test]
fn control_messages_and_bad_lines_touch_nothing() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        let p = processor(&stack);
        let control = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/events/05-control-message.json"
        ))
        .expect("read");
        p.handle_invoke_body(&control)
            .await
            .expect("control message");
        let bad = body(
            "s1",
            &[
                (T0, "not json 403".into()),
                (T0 + 1, "{\"kind\":\"Event\",\"code\":403".into()),
            ],
        );
        let r = p.handle_invoke_body(&bad).await.expect("bad lines");
        assert_eq!(r.scan.skipped_total(), 2);
        // only the cluster, noted as heard from
        assert_eq!(stack.item_count().await, 1);
        assert!(stack
            .item("EksAuditDetector.AuditLogSilent#watch")
            .await
            .is_some());
        assert!(stack.drain().await.is_empty());
    });
}

#[test]
fn pod_scan_escalation_reaches_subscribers_as_two_alerts() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        let p = processor(&stack);
        let refused = event("anonymous_pod_list_refused.json").to_string();
        let allowed = with(
            event("anonymous_pod_list_allowed.json"),
            "allowed-1",
            "186.96.216.108",
        );
        p.handle_invoke_body(&body("s1", &[(T0, refused)]))
            .await
            .expect("refused");
        p.handle_invoke_body(&body("s2", &[(T0 + 60_000, allowed)]))
            .await
            .expect("allowed");
        let alerts: Vec<_> = stack
            .alerts()
            .await
            .into_iter()
            .filter(|a| a.rule_id == eks_audit_detector::rules::pod_scan::META.id)
            .collect();
        assert_eq!(
            alerts.iter().map(|a| a.severity).collect::<Vec<_>>(),
            vec![Severity::Low, Severity::High]
        );
        assert!(alerts[1].escalation);
    });
}

#[test]
fn requests_aws_refuses_for_good_are_told_apart_from_outages() {
    use eks_audit_detector::alert::Alert;
    use eks_audit_detector::sink::AlertSink;
    use eks_audit_detector::store::{StateStore, StoreError};
    runtime().block_on(async {
        let stack = Stack::new().await;
        // GIVEN an alert and a state far past AWS's limits (what the caps
        // exist to prevent)
        let huge = "A".repeat(500_000);
        let mut alert: Alert = serde_json::from_str(
            &serde_json::json!({
                "alert_id": "0123", "rule_id": "Amazon.EKS.Audit.Multiple403", "rule_name": "r",
                "severity": "INFO", "escalation": false, "title": huge, "dedup": "d",
                "cluster": "prod", "source_ip": "5.5.5.5", "event_count": 10, "threshold": 10,
                "window_start": "", "window_end": "", "first_seen": "", "last_seen": "",
                "mitre": "", "reference": "", "runbook": "", "summary": {}, "log_group": "",
                "account": "", "sample": {"auditID": null, "requestURI": null, "verb": null,
                "userAgent": null, "username": null, "responseStatus": {"code": null, "reason": null},
                "stageTimestamp": null}
            })
            .to_string(),
        )
        .expect("alert");
        // THEN SNS's refusal is permanent...
        let sink = SnsSink::new(aws_sdk_sns::Client::new(&stack.config), &stack.topic_arn);
        let e = sink.publish(&alert).await.expect_err("too long");
        assert!(e.permanent, "{e}");
        // ...as is DynamoDB's
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
        processor(&stack)
            .handle_invoke_body(&body("s1", &burst("5.5.5.5", 1, T0, "a")))
            .await
            .expect("one match stored");
        let mut stored = match store.load(KEY).await.expect("load") {
            Some(eks_audit_detector::store::Loaded::Found(v)) => v,
            other => panic!("{other:?}"),
        };
        stored.state.title = "B".repeat(500_000);
        match store.save(KEY, &stored.state, Some(stored.version)).await {
            Err(StoreError::Permanent { .. }) => {}
            other => panic!("expected a permanent refusal, got {other:?}"),
        }
        // AND an alert cut down to size goes through
        alert.title = "short".into();
        sink.publish(&alert).await.expect("published");
    });
}

#[test]
fn racing_instances_on_one_kinesis_batch_against_dynamodb_alert_once_per_account() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        // GIVEN one Kinesis batch with two accounts' `prod`, delivered to four
        // instances at once (a retry overlapping the first attempt)
        let body = common::kinesis_event(&[
            Some(common::account_batch(
                "111111111111",
                "a",
                &burst("5.5.5.5", 10, T0, "a"),
            )),
            Some(common::account_batch(
                "222222222222",
                "b",
                &burst("5.5.5.5", 10, T0, "b"),
            )),
        ]);
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let p = Arc::new(Processor::new(
                Detector::new(DetectorConfig {
                    organization_mode: true,
                    ..common::seed_config()
                }),
                DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table),
                SnsSink::new(aws_sdk_sns::Client::new(&stack.config), &stack.topic_arn),
            ));
            let b = body.clone().into_bytes();
            tasks.push(tokio::spawn(async move { p.handle_invoke_body(&b).await }));
        }
        for t in tasks {
            let r = t.await.expect("joined").expect("handled");
            assert!(
                r.batch_item_failures.is_empty(),
                "{:?}",
                r.batch_item_failures
            );
        }
        // THEN one alert per account, each counted exactly once
        let mut clusters: Vec<String> = stack
            .alerts()
            .await
            .into_iter()
            .map(|a| a.cluster)
            .collect();
        clusters.sort();
        assert_eq!(clusters, ["111111111111/prod", "222222222222/prod"]);
        for pk in [
            "Amazon.EKS.Audit.Multiple403#111111111111/prod_403_5.5.5.5",
            "Amazon.EKS.Audit.Multiple403#222222222222/prod_403_5.5.5.5",
        ] {
            assert_eq!(stack.state(pk).await.expect("state")["count"], 10);
        }
    });
}

#[test]
fn a_retried_batch_completes_its_window_in_dynamodb_after_the_next_window_opened() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        let p = processor(&stack);
        // GIVEN 9 of 10 matches in the window at T0, and a later batch
        // (T0+31m) that opened the next window
        p.handle_invoke_body(&body("s1", &burst("5.5.5.5", 9, T0, "a")))
            .await
            .expect("nine");
        p.handle_invoke_body(&body("s3", &burst("5.5.5.5", 1, T0 + 31 * 60_000, "c")))
            .await
            .expect("later");
        // WHEN the batch with the 10th match (T0+25m) arrives late, twice
        let late = body("s2", &burst("5.5.5.5", 1, T0 + 25 * 60_000, "b"));
        p.handle_invoke_body(&late).await.expect("late");
        p.handle_invoke_body(&late).await.expect("redelivered");
        // THEN one alert, for the first window, with its exact count
        let alerts = stack.alerts().await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].event_count, 10);
        assert_eq!(alerts[0].window_start, "2024-05-14T00:00:00.000Z");
        let state = stack.state(KEY).await.expect("state");
        assert_eq!(state["count"], 1);
        assert_eq!(state["past"][0]["count"], 10);
    });
}

/// Leaves an alert undelivered in `KEY` (SNS down), then breaks the stored
/// item the way a hand edit or an incompatible version would: `spoil`
/// changes its state, and `keep_version` false removes its version.
async fn spoil_item_with_an_undelivered_alert(
    stack: &Stack,
    spoil: impl FnOnce(&mut Value),
    keep_version: bool,
) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let down = processor_for(
        stack,
        &stack.table,
        "arn:aws:sns:us-east-1:123456789012:gone",
    );
    down.handle_invoke_body(&body("s1", &burst("5.5.5.5", 10, T0, "a")))
        .await
        .expect_err("publish fails");
    let mut item = stack.item(KEY).await.expect("item");
    let Some(AttributeValue::S(json)) = item.get("state") else {
        panic!("state attribute");
    };
    let mut state: Value = serde_json::from_str(json).expect("json");
    spoil(&mut state);
    item.insert("state".into(), AttributeValue::S(state.to_string()));
    if !keep_version {
        item.remove("version");
    }
    stack
        .dynamodb
        .put_item()
        .table_name(&stack.table)
        .set_item(Some(item))
        .send()
        .await
        .expect("put");
}

#[test]
fn an_unreadable_item_keeps_its_undelivered_alerts_and_the_key_starts_afresh() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        // GIVEN an alert left undelivered in a key (SNS was down), whose
        // record then became unreadable (a field of the wrong type, no
        // version)
        spoil_item_with_an_undelivered_alert(
            &stack,
            |state| state["count"] = Value::from("ten"),
            false,
        )
        .await;
        // WHEN the schedule runs with SNS back
        let p = processor(&stack);
        let r = p.handle_schedule().await.expect("sweep");
        // THEN the alert it held is delivered, and the key reads again
        let alerts = stack.alerts().await;
        assert_eq!(alerts.len(), 1, "{r:?}");
        assert_eq!(alerts[0].event_count, 10);
        assert!(stack.outbox().await.is_empty());
        // AND new batches on the key work as usual
        p.handle_invoke_body(&body("s2", &burst("5.5.5.5", 10, T0 + 40 * 60_000, "b")))
            .await
            .expect("key usable");
        assert_eq!(stack.alerts().await.len(), 1);
    });
}

#[test]
fn a_batch_on_an_unreadable_item_sets_its_alerts_aside_and_counts_afresh() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        spoil_item_with_an_undelivered_alert(
            &stack,
            |state| state["window_start"] = Value::from("not a number"),
            true,
        )
        .await;
        // WHEN the next batch on the key arrives, with SNS back
        let p = processor(&stack);
        let r = p
            .handle_invoke_body(&body("s2", &burst("5.5.5.5", 10, T0 + 40 * 60_000, "b")))
            .await
            .expect("handled");
        assert_eq!(r.corrupt_states, 1);
        // THEN the old alert is delivered with the new one
        let alerts = stack.alerts().await;
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert!(stack.outbox().await.is_empty());
    });
}

#[test]
fn a_report_of_the_detector_being_switched_off_reaches_the_operations_topic_too() {
    use eks_audit_detector::config::DetectorResources;
    use eks_audit_detector::sink::AlertSink;
    runtime().block_on(async {
        let stack = Stack::new().await;
        let (ops_arn, ops_queue) =
            create_topic_with_queue(&stack.sns, &stack.sqs, &common::aws::unique("ops")).await;
        let assess = |file: &str| {
            let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
            let event: Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("event")).expect("json");
            eks_audit_detector::tamper::assess_with(
                &event["detail"],
                &[],
                &DetectorResources::sample_stack(),
            )
            .expect("reported")
        };
        let own = assess("11-kms-disable-key.json");
        let cluster = assess("08-subscription-filter-deleted.json");
        let sink = |topic: &str| {
            SnsSink::new(aws_sdk_sns::Client::new(&stack.config), topic)
                .with_ops_topic(Some(ops_arn.clone()))
        };
        // WHEN both are published
        let both = sink(&stack.topic_arn);
        both.publish(&own).await.expect("published");
        both.publish(&cluster).await.expect("published");
        // THEN the alert topic has both, the operations topic the one about
        // the detector itself
        assert_eq!(stack.drain().await.len(), 2);
        let ops = stack.bodies_from(&ops_queue).await;
        assert_eq!(ops.len(), 1);
        assert!(ops[0].contains(&own.alert_id));
        // AND with the alert topic gone (its key disabled, the topic
        // deleted), the report still counts as delivered, on the other
        let broken = sink("arn:aws:sns:us-east-1:123456789012:deleted-topic");
        broken.publish(&own).await.expect("delivered to operations");
        assert_eq!(stack.bodies_from(&ops_queue).await.len(), 1);
        // ...while a cluster's alert still needs its topic
        assert!(broken.publish(&cluster).await.is_err());
    });
}
