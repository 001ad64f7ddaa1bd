//! End to end through the real binary: the built `eks-audit-detector` runs as
//! a Lambda function against a local Runtime API, with DynamoDB and SNS
//! served by moto; every sample event in `events/` is invoked and the alerts
//! are read back from an SQS queue subscribed to the topic.

mod common;

use common::runtime;

use std::process::Command;
use std::time::Duration;

use common::aws::Stack;
use common::function::Function;
use common::runtime_api::{Outcome, RuntimeApi};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

fn start_function(api: &RuntimeApi, table: &str, topic_arn: &str) -> Function {
    Function::start(api, table, topic_arn, ("test", "test"))
}

/// A fresh table, topic and queue, and the function serving them.
fn deployed() -> (tokio::runtime::Runtime, Stack, RuntimeApi, Function) {
    let rt = runtime();
    let stack = rt.block_on(Stack::new());
    let api = RuntimeApi::start();
    let function = start_function(&api, &stack.table, &stack.topic_arn);
    (rt, stack, api, function)
}

fn sample_events() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
        .expect("events/")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                std::fs::read(&p).expect("read"),
            )
        })
        .collect()
}

#[test]
fn the_binary_as_a_lambda_function_turns_the_sample_events_into_alerts() {
    // Every rule at its defaults, as deployed.
    let rt = runtime();
    let stack = rt.block_on(Stack::new());
    let api = RuntimeApi::start();
    let function = Function::start_with(
        &api,
        &stack.table,
        &stack.topic_arn,
        ("test", "test"),
        &[("DISABLED_RULES", "")],
    );

    // WHEN every sample event is invoked
    for (name, body) in sample_events() {
        match api.invoke(&body, TIMEOUT) {
            Outcome::Response(r) => {
                let summary: Value = serde_json::from_str(&r).expect("summary JSON");
                if name.contains("kinesis") {
                    // the partial batch response: nothing to retry
                    assert_eq!(
                        summary,
                        serde_json::json!({"batchItemFailures": []}),
                        "{name}"
                    );
                } else {
                    assert!(summary.get("events").is_some(), "{name}: {r}");
                }
            }
            other => panic!("{name} failed: {other:?}"),
        }
    }
    // THEN the queue holds the three documented alerts
    let alerts = rt.block_on(stack.alerts());
    // (the alerts of one invocation are published in no set order)
    let mut got: Vec<(String, &str)> = alerts
        .iter()
        .map(|a| (a.rule_id.as_str().to_owned(), a.severity.as_str()))
        .collect();
    got.sort();
    let mut want = vec![
        // 01: a public 403 burst, Panther's EKS rule and its Kubernetes twin
        ("Amazon.EKS.Audit.Multiple403".to_owned(), "INFO"),
        ("Kubernetes.API.Multiple403.PublicIP".to_owned(), "INFO"),
        // 03-04: an anonymous pod listing refused, then allowed
        ("Amazon.EKS.AnonymousAPIAccess".to_owned(), "INFO"),
        ("Amazon.EKS.Audit.PodScan".to_owned(), "LOW"),
        ("Kubernetes.API.AnonymousAccess".to_owned(), "INFO"),
        ("Amazon.EKS.AnonymousAPIAccess".to_owned(), "LOW"),
        ("Amazon.EKS.Audit.PodScan".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        // two accounts' `prod` through Kinesis: one key without
        // organization mode
        ("Amazon.EKS.Audit.Multiple403".to_owned(), "INFO"),
        ("Kubernetes.API.Multiple403.PublicIP".to_owned(), "INFO"),
        // the function knows only its own name here (Lambda's
        // AWS_LAMBDA_FUNCTION_NAME) and its alert topic: the changes to
        // the function (14-20), and to the trail, any trail (30-32)
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        // the refused attempt on a cluster's filter (39), one step down
        ("EksAuditDetector.LoggingTampered".to_owned(), "MEDIUM"),
        // a member account's cluster, forwarded to this account (41)
        ("EksAuditDetector.LoggingTampered".to_owned(), "HIGH"),
        // an access entry granting cluster admin (42)
        ("EksAuditDetector.AccessEntryAdmin".to_owned(), "HIGH"),
        // a privileged DaemonSet and a cluster-admin binding (43)
        (
            "EksAuditDetector.Workload.HostNamespaces".to_owned(),
            "MEDIUM",
        ),
        ("EksAuditDetector.Workload.HostPath".to_owned(), "HIGH"),
        ("EksAuditDetector.Workload.Privileged".to_owned(), "HIGH"),
        (
            "Kubernetes.ClusterRoleBinding.Privileged".to_owned(),
            "HIGH",
        ),
        ("Kubernetes.DaemonSet.Created".to_owned(), "INFO"),
    ];
    want.sort();
    assert_eq!(got, want);

    // AND a redelivered event changes nothing
    let (_, first) = &sample_events()[0];
    assert!(matches!(api.invoke(first, TIMEOUT), Outcome::Response(_)));
    assert!(rt.block_on(stack.alerts()).is_empty());

    // AND an undecodable payload fails the invocation with a stable error type...
    match api.invoke(br#"{"awslogs":{"data":"bm90IGd6aXA="}}"#, TIMEOUT) {
        Outcome::Error { body, .. } => {
            // Lambda reports the body's errorType (the header says "unhandled").
            let err: Value = serde_json::from_str(&body).expect("error JSON");
            assert_eq!(err["errorType"], "InvalidPayload");
            assert!(
                err["errorMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains("gzip")),
                "{body}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // ...and the function keeps serving
    let control = &sample_events()
        .into_iter()
        .find(|(n, _)| n.contains("control"))
        .expect("control")
        .1;
    assert!(matches!(api.invoke(control, TIMEOUT), Outcome::Response(_)));

    // AND it logged one JSON summary line per invocation and EMF metrics
    let stdout = output(function);
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let summaries = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "invocation done")
        .count();
    let emf = lines
        .iter()
        .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "EksAuditDetector")
        .filter(|l| l["RuleId"].is_null())
        .count();
    // and per-rule metrics carry the stack (STACK_NAME unset: the default
    // name) and the rule id as dimensions
    assert!(
        lines
            .iter()
            .any(|l| l["RuleId"] == "Amazon.EKS.Audit.PodScan"
                && l["Stack"] == "eks-audit-detector"
                && l["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
                    == serde_json::json!([["Stack", "RuleId"]])),
        "{stdout}"
    );
    let failed = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "invocation failed")
        .count();
    assert_eq!(summaries, 45, "{stdout}");
    // (metrics are written for failed invocations too)
    assert!(failed >= 1, "{stdout}");
    assert_eq!(emf, summaries + failed, "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["error_type"] == "InvalidPayload"),
        "{stdout}"
    );
}

#[test]
fn the_function_refuses_to_start_without_its_table_and_names_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_eks-audit-detector"))
        .arg("lambda")
        .env_remove("STATE_TABLE_NAME")
        .env(
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:alerts",
        )
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("STATE_TABLE_NAME"), "{all}");
}

fn logs(function: Function) -> Vec<Value> {
    function.logs()
}

fn output(function: Function) -> String {
    function.output()
}

fn error_type(outcome: Outcome) -> String {
    match outcome {
        Outcome::Error { body, .. } => {
            let err: Value = serde_json::from_str(&body).expect("error JSON");
            err["errorType"].as_str().unwrap_or_default().to_owned()
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Bytes of a DynamoDB item as DynamoDB counts them (names plus values).
fn item_bytes(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue;
    item.iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    _ => 8,
                }
        })
        .sum()
}

const GROUP: &str = "/aws/eks/prod/cluster";
const T0: i64 = 1_715_644_800_000;

#[test]
fn hostile_batches_cost_no_alert_and_stay_within_aws_limits() {
    let (rt, stack, api, function) = deployed();

    // GIVEN one batch with a burst of 100 KB fields, an ordinary burst from
    // another address, and log entries of the wrong shape
    let mut msgs: Vec<(i64, String)> = (0..10)
        .map(|i| {
            (
                T0 + i,
                common::oversized_403(&format!("big-{i}"), "9.9.9.9", 100_000),
            )
        })
        .collect();
    msgs.extend((0..10).map(|i| {
        (
            T0 + i,
            common::with(
                common::event("forbidden_public.json"),
                &format!("ok-{i}"),
                "5.5.5.5",
            ),
        )
    }));
    let mut batch: Value =
        serde_json::from_str(&common::batch_json(GROUP, "s1", &msgs)).expect("json");
    let events = batch["logEvents"].as_array_mut().expect("events");
    events.push(serde_json::json!({"id": 7, "timestamp": "soon", "message": "x"}));
    events.push(serde_json::json!("not an object"));
    let body = serde_json::json!({"awslogs": {"data": common::encode_data(&batch.to_string())}});
    // WHEN it is invoked
    match api.invoke(body.to_string().as_bytes(), TIMEOUT) {
        Outcome::Response(_) => {}
        other => panic!("hostile batch failed: {other:?}"),
    }
    // AND one anonymous pod listing through a 5,000-entry forwarded chain
    let chain = common::forwarded_pod_scan("chain", 5000, "curl/8.5.0");
    let started = std::time::Instant::now();
    assert!(matches!(
        api.invoke(
            common::invoke_body(GROUP, "s2", &[(T0, chain)]).as_bytes(),
            TIMEOUT
        ),
        Outcome::Response(_)
    ));
    let chain_ms = started.elapsed().as_millis();
    // AND bodies that are not subscription events at all
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        error_type(api.invoke(b"not json", TIMEOUT)),
        "InvalidPayload"
    );
    assert_eq!(
        error_type(api.invoke(deep.as_bytes(), TIMEOUT)),
        "InvalidPayload"
    );

    // THEN both bursts alerted, and the chain made four pod-scan alerts
    let messages = rt.block_on(stack.drain());
    let mut got: Vec<(String, String)> = messages
        .iter()
        .map(|(body, _)| {
            let a: Value = serde_json::from_str(body).expect("alert");
            (
                a["rule_id"].as_str().unwrap_or_default().to_owned(),
                a["source_ip"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = [
        ("Amazon.EKS.Audit.Multiple403", "5.5.5.5"),
        ("Amazon.EKS.Audit.Multiple403", "9.9.9.9"),
        ("Amazon.EKS.Audit.PodScan", "11.0.0.7"),
        ("Amazon.EKS.Audit.PodScan", "11.0.1.7"),
        ("Amazon.EKS.Audit.PodScan", "11.0.2.7"),
        ("Amazon.EKS.Audit.PodScan", "198.51.100.200"),
    ]
    .iter()
    .map(|(r, ip)| ((*r).to_owned(), (*ip).to_owned()))
    .collect();
    assert_eq!(got, want);
    // AND every message and item stays far inside AWS's limits
    let largest_message = messages.iter().map(|(b, _)| b.len()).max().unwrap_or(0);
    let items = rt.block_on(stack.items());
    let largest_item = items.iter().map(item_bytes).max().unwrap_or(0);
    eprintln!(
        "hostile: largest alert JSON {largest_message} bytes, largest item {largest_item} bytes, \
         5,000-entry chain request {chain_ms} ms"
    );
    assert!(largest_message < 32 * 1024, "{largest_message}");
    assert!(largest_item < 16 * 1024, "{largest_item}");
    // AND the function stayed inside 128 MB
    let peak = function.peak_rss_mb();
    eprintln!("hostile: peak RSS {peak} MB");
    assert!(peak > 0 && peak < 128, "{peak} MB");
}

#[test]
fn an_sns_outage_then_a_scheduled_run_delivers_every_alert_exactly_once() {
    let rt = runtime();
    let stack = rt.block_on(Stack::new());
    // GIVEN a topic that does not exist yet: SNS answers NotFound
    let name = common::aws::unique("outage");
    let topic_arn = format!("arn:aws:sns:us-east-1:123456789012:{name}");
    let api = RuntimeApi::start();
    let function = start_function(&api, &stack.table, &topic_arn);
    let mut msgs = Vec::new();
    for ip in ["5.5.5.5", "6.6.6.6", "7.7.7.7"] {
        msgs.extend((0..10).map(|i| {
            (
                T0 + i,
                common::with(
                    common::event("forbidden_public.json"),
                    &format!("{ip}-{i}"),
                    ip,
                ),
            )
        }));
    }
    msgs.push((
        T0,
        common::event("anonymous_pod_list_refused.json").to_string(),
    ));
    let body = common::invoke_body(GROUP, "s1", &msgs);
    // WHEN a batch raises four alerts during the outage
    assert_eq!(
        error_type(api.invoke(body.as_bytes(), TIMEOUT)),
        "PublishFailed"
    );
    // AND SNS recovers, and the schedule fires (twice)
    let (created, queue_url) = rt.block_on(common::aws::create_topic_with_queue(
        &stack.sns, &stack.sqs, &name,
    ));
    assert_eq!(created, topic_arn);
    let schedule = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/07-scheduled-sweep.json"
    ))
    .expect("schedule event");
    for _ in 0..2 {
        assert!(matches!(
            api.invoke(&schedule, TIMEOUT),
            Outcome::Response(_)
        ));
    }
    // THEN each alert arrived exactly once
    let received = rt.block_on(stack.bodies_from(&queue_url));
    let mut ids: Vec<String> = received
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).expect("alert")["alert_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 4, "{received:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "no alert twice");
    assert!(rt.block_on(stack.outbox()).is_empty());
    drop(function);
}

#[test]
fn memory_stays_inside_the_default_128_mb_for_the_largest_batches() {
    let (rt, stack, api, function) = deployed();
    let huge = |id: &str, ip: &str| {
        let mut ev = common::event("forbidden_public.json");
        ev["auditID"] = Value::from(id);
        ev["sourceIPs"] = serde_json::json!([ip]);
        ev["userAgent"] = Value::from("U".repeat(250_000));
        ev.to_string()
    };
    // GIVEN a batch just under the 16 MB a 128 MB function accepts: 62
    // refusals with 250 KB user agents (10 of them from a public address)
    let msgs: Vec<(i64, String)> = (0..62)
        .map(|i| {
            let ip = if i < 10 { "9.9.9.9" } else { "10.0.0.9" };
            (T0 + i, huge(&format!("h-{i}"), ip))
        })
        .collect();
    let body = common::invoke_body(GROUP, "big", &msgs);
    assert!(matches!(
        api.invoke(body.as_bytes(), TIMEOUT),
        Outcome::Response(_)
    ));
    // AND one just over it, refused as a clear error
    let msgs: Vec<(i64, String)> = (0..70)
        .map(|i| (T0 + i, huge(&format!("o-{i}"), "9.9.9.9")))
        .collect();
    let body = common::invoke_body(GROUP, "over", &msgs);
    assert_eq!(
        error_type(api.invoke(body.as_bytes(), TIMEOUT)),
        "InvalidPayload"
    );
    // AND one request with 1,000 addresses and 1,000 groups
    let mut ev = common::event("anonymous_pod_list_refused.json");
    let ips: Vec<String> = (0..1000)
        .map(|i| format!("45.{}.{}.1", i / 256, i % 256))
        .collect();
    let groups: Vec<String> = (0..1000).map(|i| format!("group-{i}")).collect();
    ev["sourceIPs"] = serde_json::json!(ips);
    ev["user"]["groups"] = serde_json::json!(groups);
    let body = common::invoke_body(GROUP, "wide", &[(T0, ev.to_string())]);
    assert!(matches!(
        api.invoke(body.as_bytes(), TIMEOUT),
        Outcome::Response(_)
    ));
    // THEN one Multiple403 alert and 16 pod-scan alerts
    assert_eq!(rt.block_on(stack.drain()).len(), 1 + 16);
    // AND the function never came near its 128 MB
    let peak = function.peak_rss_mb();
    eprintln!("largest batches: peak RSS {peak} MB");
    assert!(peak > 0 && peak < 100, "{peak} MB");
}

#[test]
fn a_sustained_scanner_costs_at_most_a_tenth_of_a_state_request_per_batch() {
    let (rt, stack, api, function) = deployed();
    // GIVEN one address sending 5 forbidden requests every 15 seconds for
    // 100 minutes: 400 batches
    let batches = 400;
    for b in 0..batches {
        let body = common::scanner_batch(GROUP, b, T0);
        assert!(matches!(
            api.invoke(body.as_bytes(), TIMEOUT),
            Outcome::Response(_)
        ));
    }
    // THEN one alert per 30-minute window...
    assert_eq!(rt.block_on(stack.drain()).len(), 4);
    // ...for a handful of DynamoDB requests in all
    let requests: u64 = logs(function)
        .iter()
        .filter(|l| l["fields"]["message"] == "invocation done")
        .map(|l| {
            l["fields"]["state_reads"].as_u64().unwrap_or(0)
                + l["fields"]["state_writes"].as_u64().unwrap_or(0)
                + l["fields"]["watch_requests"].as_u64().unwrap_or(0)
        })
        .sum();
    let per_batch = requests as f64 / batches as f64;
    eprintln!(
        "sustained scanner through the binary: {requests} state requests, {per_batch:.3} per batch"
    );
    assert!(per_batch <= 0.1, "{per_batch}");
}

#[test]
fn kinesis_records_never_stall_the_shard_on_sns_and_are_counted_once() {
    let rt = runtime();
    let stack = rt.block_on(Stack::new());
    let api = RuntimeApi::start();
    // GIVEN organization mode and a topic that does not exist yet
    let name = common::aws::unique("org-topic");
    let topic_arn = format!("arn:aws:sns:us-east-1:123456789012:{name}");
    let function = Function::start_with(
        &api,
        &stack.table,
        &topic_arn,
        ("test", "test"),
        &[("ORGANIZATION_MODE", "true")],
    );
    let burst = |ip: &str| -> Vec<(i64, String)> {
        (0..10)
            .map(|i| {
                let id = format!("{ip}-{i}");
                (
                    T0 + i,
                    common::with(common::event("forbidden_public.json"), &id, ip),
                )
            })
            .collect()
    };
    // WHEN a batch holds two accounts' alerts around a poison record
    let body = common::kinesis_event(&[
        Some(common::account_batch(
            "111111111111",
            "a",
            &burst("5.5.5.5"),
        )),
        None,
        Some(common::account_batch(
            "222222222222",
            "b",
            &burst("5.5.5.5"),
        )),
    ]);
    let failures = |outcome: Outcome| -> Vec<String> {
        match outcome {
            Outcome::Response(r) => {
                let v: Value = serde_json::from_str(&r).expect("JSON");
                v["batchItemFailures"]
                    .as_array()
                    .expect("partial batch response")
                    .iter()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                    .collect()
            }
            other => panic!("a partial batch response, got {other:?}"),
        }
    };
    // THEN with SNS down, delivered four times, no record is ever reported:
    // their matches are counted and their alerts wait in the outbox
    for delivery in 0..4 {
        let reported = failures(api.invoke(body.as_bytes(), TIMEOUT));
        assert!(reported.is_empty(), "delivery {delivery}: {reported:?}");
    }
    // AND the counts are exact: each account's key holds its 10 matches once
    for account in ["111111111111", "222222222222"] {
        let pk = format!("Amazon.EKS.Audit.Multiple403#{account}/prod_403_5.5.5.5");
        let state = rt.block_on(stack.state(&pk)).expect("stored");
        assert_eq!(state["count"], 10, "{pk}: {state}");
        assert_eq!(state["outbox"].as_array().map(Vec::len), Some(1), "{pk}");
    }
    // AND once SNS is back the schedule delivers each account's alert once
    let (created, queue_url) = rt.block_on(common::aws::create_topic_with_queue(
        &stack.sns, &stack.sqs, &name,
    ));
    assert_eq!(created, topic_arn);
    let schedule = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/07-scheduled-sweep.json"
    ))
    .expect("schedule event");
    for _ in 0..2 {
        assert!(matches!(
            api.invoke(&schedule, TIMEOUT),
            Outcome::Response(_)
        ));
    }
    assert!(failures(api.invoke(body.as_bytes(), TIMEOUT)).is_empty());
    let mut clusters: Vec<String> = rt
        .block_on(stack.bodies_from(&queue_url))
        .iter()
        .map(|body| {
            let a: Value = serde_json::from_str(body).expect("alert");
            a["cluster"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    clusters.sort();
    assert_eq!(clusters, ["111111111111/prod", "222222222222/prod"]);
    assert!(rt.block_on(stack.outbox()).is_empty());
    let logs = function.logs();
    assert!(
        logs.iter().any(|l| l["fields"]["poison_records"] == 1),
        "the poison record is counted"
    );
    // AND its data is in the log, where README's recipe finds it
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "poison record data"
                && l["fields"]["data"] == "bm90IGd6aXA="),
        "the poison record's data is kept"
    );
}
