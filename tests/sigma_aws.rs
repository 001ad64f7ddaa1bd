//! Sigma correlations against DynamoDB and SNS served locally (moto): the
//! counts live in the same key records as the built-in windows, so racing
//! instances, redelivery and reordering give one exact decision.

mod common;

use common::runtime;

use std::sync::Arc;

use common::aws::Stack;
use common::invoke_body;
use common::sigma::{exec, secret_read};
use eks_audit_detector::handler::Processor;
use eks_audit_detector::sink::sns::SnsSink;
use eks_audit_detector::store::dynamodb::DynamoStore;
use serde_json::json;

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";

fn processor(stack: &Stack) -> Processor<DynamoStore, SnsSink> {
    Processor::new(
        common::sigma::detector(common::sigma::CORRELATIONS),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table),
        SnsSink::new(aws_sdk_sns::Client::new(&stack.config), &stack.topic_arn),
    )
}

/// Batch `i` of three: four distinct secret reads by one user (12 in all),
/// the first also with an exec after its reads.
fn body(i: usize) -> String {
    let mut msgs: Vec<(i64, String)> = (0..4)
        .map(|j| {
            let n = i * 4 + j;
            (T0 + n as i64 * 1000, secret_read(n, json!({})))
        })
        .collect();
    if i == 0 {
        msgs.push((T0 + 100_000, exec(100)));
    }
    invoke_body(GROUP, &format!("stream-{i}"), &msgs)
}

#[test]
fn three_racing_instances_count_every_correlation_exactly_once() {
    runtime().block_on(async {
        let stack = Stack::new().await;
        // GIVEN three instances, each with a batch of four distinct secret
        // reads by one user (12 in all), the first also with an exec after
        // its reads
        let bodies: Vec<String> = (0..3).map(body).collect();
        let mut tasks = Vec::new();
        for body in bodies.clone() {
            let p = Arc::new(processor(&stack));
            tasks.push(tokio::spawn(async move {
                p.handle_invoke_body(body.as_bytes()).await
            }));
        }
        // WHEN they run at once
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
        let p = processor(&stack);
        for b in &bodies {
            p.handle_invoke_body(b.as_bytes())
                .await
                .expect("redelivered");
        }
        assert!(stack.alerts().await.is_empty(), "no alert twice");
    });
}
