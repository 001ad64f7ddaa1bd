//! End to end through the real binary: the built `eks-audit-detector` runs as
//! a Lambda function against a local Runtime API, with DynamoDB and SNS
//! served by moto; every sample event in `events/` is invoked and the alerts
//! are read back from an SQS queue subscribed to the topic.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::aws::{endpoint, Stack};
use common::runtime_api::{Outcome, RuntimeApi};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Kills the function process when the test ends, however it ends.
struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_function(api: &RuntimeApi, table: &str, topic_arn: &str) -> Function {
    let child = Command::new(env!("CARGO_BIN_EXE_eks-audit-detector"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "eks-audit-detector")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/eks-audit-detector",
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("STATE_TABLE_NAME", table)
        .env("ALERT_TOPIC_ARN", topic_arn)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the function starts");
    Function(child)
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stack = rt.block_on(Stack::new());
    let api = RuntimeApi::start();
    let mut function = start_function(&api, &stack.table, &stack.topic_arn);

    // WHEN every sample event is invoked
    for (name, body) in sample_events() {
        match api.invoke(&body, TIMEOUT) {
            Outcome::Response(r) => {
                let summary: Value = serde_json::from_str(&r).expect("summary JSON");
                assert!(summary.get("events").is_some(), "{name}: {r}");
            }
            other => panic!("{name} failed: {other:?}"),
        }
    }
    // THEN the queue holds the three documented alerts
    let alerts = rt.block_on(stack.alerts());
    let got: Vec<(String, &str)> = alerts
        .iter()
        .map(|a| (a.rule_id.as_str().to_owned(), a.severity.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Amazon.EKS.Audit.Multiple403".to_owned(), "INFO"),
            ("Amazon.EKS.Audit.PodScan".to_owned(), "LOW"),
            ("Amazon.EKS.Audit.PodScan".to_owned(), "HIGH"),
        ]
    );

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
    let _ = function.0.kill();
    let mut stdout = String::new();
    function
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
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
        .count();
    assert_eq!(summaries, 8, "{stdout}");
    assert_eq!(emf, 8, "{stdout}");
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
