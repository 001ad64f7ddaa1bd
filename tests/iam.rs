//! Least privilege, proven: the real binary runs against local AWS APIs that
//! enforce IAM (moto), under credentials carrying exactly the actions of the
//! function role in `template.yaml`. It must work with them, and fail without
//! any one of them. Its own test binary, so its own moto server: once IAM is
//! enforced there, every request needs a known, allowed key.

mod common;

use std::process::Command;
use std::time::Duration;

use common::aws::{create_bucket, endpoint, objects, s3_client, Stack};
use common::function::Function;
use common::runtime_api::{Outcome, RuntimeApi};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);
const GROUP: &str = "/aws/eks/prod/cluster";
const T0: i64 = 1_715_644_800_000;

/// Users made by `tests/support/iam_setup.py`, which then enforces IAM.
fn users(dropped: &str) -> Value {
    let python = std::env::var("TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").to_owned());
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/iam_setup.py"
        ))
        .arg(endpoint())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .arg(dropped)
        .output()
        .expect("iam_setup.py runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("keys JSON")
}

fn key(users: &Value, who: &str) -> (String, String) {
    (
        users[who]["id"].as_str().expect("id").to_owned(),
        users[who]["secret"].as_str().expect("secret").to_owned(),
    )
}

fn burst(ip: &str) -> Vec<u8> {
    let msgs: Vec<(i64, String)> = (0..10)
        .map(|i| {
            let ev = common::with(
                common::event("forbidden_public.json"),
                &format!("{ip}-{i}"),
                ip,
            );
            (T0 + i, ev)
        })
        .collect();
    common::invoke_body(GROUP, ip, &msgs).into_bytes()
}

#[test]
fn the_function_role_in_the_template_is_enough_and_every_action_in_it_is_needed() {
    let rt = common::runtime();
    // (read by tests/support/moto_server.py when this binary starts moto)
    std::env::set_var("MOTO_IAM_SKIP_SIGNATURES", "1");
    let stack = rt.block_on(Stack::new());
    let bucket = rt.block_on(create_bucket(&s3_client(&stack.config)));
    // GIVEN IAM enforced, a user with the role's actions (with those of the
    // policies attached to it in organization mode), and one without
    // dynamodb:BatchGetItem
    let users = users("dynamodb:BatchGetItem");
    let actions: Vec<&str> = users["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(actions.contains(&"sns:Publish") && actions.contains(&"dynamodb:PutItem"));
    assert!(actions.contains(&"s3:PutObject"));
    let api = RuntimeApi::start();
    let detector = key(&users, "detector");
    let function = Function::start_with(
        &api,
        &stack.table,
        &stack.topic_arn,
        (&detector.0, &detector.1),
        &[("FAILED_RECORDS_BUCKET", &bucket)],
    );
    // WHEN a burst is handled under the role's permissions, THEN it alerts
    match api.invoke(&burst("5.5.5.5"), TIMEOUT) {
        Outcome::Response(_) => {}
        other => panic!("the role's permissions are not enough: {other:?}"),
    }
    // and the scheduled sweep's Query on the index is allowed too
    let schedule = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/07-scheduled-sweep.json"
    ))
    .expect("schedule");
    assert!(matches!(
        api.invoke(&schedule, TIMEOUT),
        Outcome::Response(_)
    ));
    // and a poison Kinesis record is kept in the failed-records bucket
    let poison = common::kinesis_event(&[None]);
    match api.invoke(poison.as_bytes(), TIMEOUT) {
        Outcome::Response(body) => assert!(body.contains(r#""batchItemFailures":[]"#), "{body}"),
        other => panic!("a poison record must be skipped: {other:?}"),
    }
    drop(function);
    // AND without one of its actions the function fails
    let short = key(&users, "short");
    let _function = Function::start(&api, &stack.table, &stack.topic_arn, (&short.0, &short.1));
    match api.invoke(&burst("6.6.6.6"), TIMEOUT) {
        Outcome::Error { body, .. } => {
            let err: Value = serde_json::from_str(&body).expect("error JSON");
            assert_eq!(err["errorType"], "StateStoreUnavailable", "{body}");
            assert!(
                body.contains("BatchGetItem") || body.contains("AccessDenied"),
                "{body}"
            );
        }
        other => panic!("a missing permission must fail: {other:?}"),
    }
    // (the queue is read back as an observer: IAM applies to the test too)
    let observer = key(&users, "observer");
    let config = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                &observer.0,
                &observer.1,
                None,
                None,
                "observer",
            ))
            .load(),
    );
    let kept = rt.block_on(objects(&s3_client(&config), &bucket));
    assert_eq!(
        kept.len(),
        1,
        "the poison record is kept under the role's permissions"
    );
    assert_eq!(kept[0].metadata["reason"], "poison");
    let sqs = aws_sdk_sqs::Client::new(&config);
    let received = rt
        .block_on(
            sqs.receive_message()
                .queue_url(&stack.queue_url)
                .max_number_of_messages(10)
                .send(),
        )
        .expect("receive as observer");
    assert_eq!(received.messages.unwrap_or_default().len(), 1);
}
