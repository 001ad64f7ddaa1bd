//! Sigma correlations against DynamoDB and SNS served locally (moto): the
//! counts live in the same key records as the built-in windows, so racing
//! instances, redelivery and reordering give one exact decision.

mod common;

use common::runtime;

use std::sync::Arc;

use common::aws::Stack;
use common::invoke_body;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::{sigma as sigma_rules, Detector};
use eks_audit_detector::sigma::{self, LoadedText, SigmaRules};
use eks_audit_detector::sink::sns::SnsSink;
use eks_audit_detector::store::dynamodb::DynamoStore;
use serde_json::json;

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";

/// Two detections and a correlation of each type, 12 events or values to
/// reach the counting ones.
const RULES: &str = include_str!("fixtures/sigma/correlations.yml");

fn processor(stack: &Stack) -> Processor<DynamoStore, SnsSink> {
    let set = sigma::load(&[LoadedText {
        name: "mine.yml".into(),
        text: RULES.into(),
    }]);
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    let config = DetectorConfig {
        sigma: SigmaRules(Arc::new(set)),
        ..DetectorConfig::default()
    };
    let rules = sigma_rules::rules(&config);
    Processor::new(
        Detector::with_rules(config, rules),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table),
        SnsSink::new(aws_sdk_sns::Client::new(&stack.config), &stack.topic_arn),
    )
}

fn event(n: usize, fields: serde_json::Value) -> String {
    let mut ev = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": format!("a-{n}"),
        "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/d/secrets/x",
        "verb": "get", "user": {"username": "mallory"}, "sourceIPs": ["52.1.2.3"],
        "objectRef": {"resource": "secrets", "namespace": "d", "name": format!("s{n}")},
        "responseStatus": {"code": 200},
    });
    if let (Some(ev), Some(f)) = (ev.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            ev.insert(k.clone(), v.clone());
        }
    }
    ev.to_string()
}

fn exec(n: usize) -> String {
    event(
        n,
        json!({"verb": "create", "objectRef": {"resource": "pods", "subresource": "exec", "name": "web"}}),
    )
}

#[test]
fn three_racing_instances_count_every_correlation_exactly_once() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        // GIVEN three instances, each with a batch of four distinct secret
        // reads by one user (12 in all), the first also with an exec after
        // its reads
        let mut tasks = Vec::new();
        for i in 0..3usize {
            let p = Arc::new(processor(&stack));
            let mut msgs: Vec<(i64, String)> = (0..4)
                .map(|j| {
                    let n = i * 4 + j;
                    (T0 + n as i64 * 1000, event(n, json!({})))
                })
                .collect();
            if i == 0 {
                msgs.push((T0 + 100_000, exec(100)));
            }
            let body = invoke_body(GROUP, &format!("stream-{i}"), &msgs);
            tasks.push(tokio::spawn(async move {
                p.handle_invoke_body(body.as_bytes()).await
            }));
        }
        // WHEN they run at once
        let mut bodies = Vec::new();
        for t in tasks {
            t.await.expect("joined").expect("invocation succeeded");
        }
        // THEN each correlation alerted once: 12 reads, 12 distinct names,
        // a read then an exec, both rules
        let alerts = stack.alerts().await;
        let mut ids: Vec<&str> = alerts.iter().map(|a| a.rule_id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            [
                "many-reads",
                "many-secrets",
                "read-and-exec",
                "read-then-exec"
            ],
            "{alerts:#?}"
        );
        // ...and a redelivery of every batch changes nothing
        for i in 0..3usize {
            let mut msgs: Vec<(i64, String)> = (0..4)
                .map(|j| {
                    let n = i * 4 + j;
                    (T0 + n as i64 * 1000, event(n, json!({})))
                })
                .collect();
            if i == 0 {
                msgs.push((T0 + 100_000, exec(100)));
            }
            bodies.push(invoke_body(GROUP, &format!("stream-{i}"), &msgs));
        }
        let p = processor(&stack);
        for b in &bodies {
            p.handle_invoke_body(b.as_bytes())
                .await
                .expect("redelivered");
        }
        assert!(stack.alerts().await.is_empty(), "no alert twice");
    });
}
