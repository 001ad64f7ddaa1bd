//! Shared helpers for the integration tests: fixtures, payload building, a
//! recording alert sink.
#![allow(dead_code)]

pub mod aws;
pub mod filter;
pub mod function;
pub mod runtime_api;
pub mod sigma;
pub mod store;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use base64::Engine as _;
use eks_audit_detector::alert::Alert;
use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::sink::{AlertSink, PublishError};
use eks_audit_detector::vocab::{EventContext, Match, Verdict};
use serde_json::Value;

/// The rules this detector started with. Tests of the machinery (windows,
/// outbox, retries, Kinesis, DynamoDB) count the alerts of these only, so
/// that a burst of 403s is one alert and not also Panther's Kubernetes
/// twin of the same rule; the catalog has tests of its own.
pub const SEED_RULES: [&str; 4] = [
    "Amazon.EKS.Audit.Multiple403",
    "Amazon.EKS.Audit.PodScan",
    "EksAuditDetector.AwsAuthChanged",
    "EksAuditDetector.Impersonation",
];

/// Every registry rule but [`SEED_RULES`].
pub fn catalog_ids() -> Vec<String> {
    eks_audit_detector::rules::registry(&DetectorConfig::default())
        .iter()
        .map(|r| r.meta().id.as_str().to_owned())
        .filter(|id| !SEED_RULES.contains(&id.as_str()))
        .collect()
}

/// The default settings with only [`SEED_RULES`] running.
pub fn seed_config() -> DetectorConfig {
    DetectorConfig {
        disabled_rules: catalog_ids(),
        ..DetectorConfig::default()
    }
}

/// `DISABLED_RULES` for [`seed_config`], for the binary.
pub fn seed_disabled() -> String {
    catalog_ids().join(",")
}

/// Path of a file under `tests/fixtures`.
pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Text of a fixture.
pub fn fixture(rel: &str) -> String {
    std::fs::read_to_string(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// A fixture audit event as a JSON value, for mutation.
pub fn event(rel: &str) -> Value {
    serde_json::from_str(&fixture(&format!("events/{rel}"))).expect("fixture is JSON")
}

/// Runs the first four rules on one event.
pub fn run(ev: &Value, cluster: &str) -> (Verdict, Verdict, Vec<Match>) {
    run_with(seed_config(), ev, cluster)
}

/// Runs a detector with `config` on one event.
pub fn run_with(
    config: DetectorConfig,
    ev: &Value,
    cluster: &str,
) -> (Verdict, Verdict, Vec<Match>) {
    let text = ev.to_string();
    let parsed = AuditEvent::parse(&text).expect("event parses");
    let detector = Detector::new(config);
    let mut out = Vec::new();
    let mut verdicts = std::collections::BTreeMap::new();
    detector.evaluate(
        &parsed,
        EventContext {
            cluster,
            at_ms: 1_715_644_800_000,
        },
        &mut out,
        |rule, verdict| {
            verdicts.insert(rule.as_str(), verdict);
        },
    );
    // A disabled rule gives no verdict: no match.
    let of = |id: &str| verdicts.get(id).copied().unwrap_or(Verdict::NoMatch);
    (
        of("Amazon.EKS.Audit.Multiple403"),
        of("Amazon.EKS.Audit.PodScan"),
        out,
    )
}

/// gzip + base64 of `json`, as CloudWatch Logs sends it.
pub fn encode_data(json: &str) -> String {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(json.as_bytes()).expect("in-memory write");
    base64::engine::general_purpose::STANDARD.encode(enc.finish().expect("in-memory finish"))
}

/// A subscription message with `messages` as (timestamp ms, message text).
pub fn batch_json(log_group: &str, stream: &str, messages: &[(i64, String)]) -> String {
    let events: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, (ts, msg))| {
            serde_json::json!({"id": format!("{ts:013}{i:013}{}", stream.len()), "timestamp": ts, "message": msg})
        })
        .collect();
    serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": stream,
        "subscriptionFilters": ["eks-audit-detector"],
        "logEvents": events,
    })
    .to_string()
}

/// A full Lambda invoke body for a batch.
pub fn invoke_body(log_group: &str, stream: &str, messages: &[(i64, String)]) -> String {
    serde_json::json!({"awslogs": {"data": encode_data(&batch_json(log_group, stream, messages))}})
        .to_string()
}

/// A sample event with a new auditID, source IP and time.
pub fn with(mut ev: Value, audit_id: &str, ip: &str) -> String {
    ev["auditID"] = Value::from(audit_id);
    ev["sourceIPs"] = serde_json::json!([ip]);
    ev.to_string()
}

/// `n` refused API calls from `ip`, one second apart from `start`.
pub fn burst(ip: &str, n: usize, start: i64) -> Vec<(i64, String)> {
    (0..n)
        .map(|i| {
            (
                start + i as i64 * 1000,
                with(
                    event("forbidden_public.json"),
                    &format!("a-{ip}-{start}-{i}"),
                    ip,
                ),
            )
        })
        .collect()
}

/// Records published alerts; can be told to fail.
#[derive(Default)]
pub struct RecordingSink {
    pub alerts: Mutex<Vec<Alert>>,
    pub failing: AtomicBool,
    /// Publishes tried, delivered or not.
    pub attempts: std::sync::atomic::AtomicU64,
}

impl RecordingSink {
    pub fn published(&self) -> Vec<Alert> {
        self.alerts.lock().expect("lock").clone()
    }
    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

impl AlertSink for RecordingSink {
    async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(PublishError::transient(&alert.alert_id, "injected failure"));
        }
        self.alerts.lock().expect("lock").push(alert.clone());
        Ok(())
    }
}

/// A refused API call whose attacker-controlled fields are `size` bytes
/// each: user agent, namespace (so the URI too) and the object name.
pub fn oversized_403(audit_id: &str, ip: &str, size: usize) -> String {
    let mut ev = event("forbidden_public.json");
    let ns = "n".repeat(size);
    ev["auditID"] = Value::from(audit_id);
    ev["sourceIPs"] = serde_json::json!([ip]);
    ev["userAgent"] = Value::from(format!(
        "<!here> @channel [x](http://evil) {}",
        "A".repeat(size)
    ));
    ev["objectRef"]["namespace"] = Value::from(ns.clone());
    ev["objectRef"]["name"] = Value::from("o".repeat(size));
    ev["requestURI"] = Value::from(format!("/api/v1/namespaces/{ns}/secrets"));
    ev["user"]["username"] = Value::from(format!("system:serviceaccount:{}", "u".repeat(size)));
    ev.to_string()
}

/// An anonymous listing of all pods through a forwarded chain of `n`
/// distinct public addresses, then the connection's own.
pub fn forwarded_pod_scan(audit_id: &str, n: usize, ua: &str) -> String {
    let mut ev = event("anonymous_pod_list_refused.json");
    let mut ips: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{}.{}.{}.{}",
                11 + i / 65536 % 200,
                i / 256 % 256,
                i % 256,
                7
            )
        })
        .collect();
    ips.push("198.51.100.200".into());
    ev["auditID"] = Value::from(audit_id);
    ev["sourceIPs"] = serde_json::json!(ips);
    ev["userAgent"] = Value::from(ua);
    ev.to_string()
}

/// Batch `b` of a sustained scanner: 5 refused API calls from 5.5.5.5, one
/// second apart, batches 15 seconds apart from `t0`.
pub fn scanner_batch(log_group: &str, b: i64, t0: i64) -> String {
    let start = t0 + b * 15_000;
    let msgs: Vec<(i64, String)> = (0..5)
        .map(|i| {
            let id = format!("scan-{b}-{i}");
            (
                start + i * 1000,
                with(event("forbidden_public.json"), &id, "5.5.5.5"),
            )
        })
        .collect();
    invoke_body(log_group, &format!("stream-{b}"), &msgs)
}

/// A Kinesis event with one record per subscription payload (`None`: a
/// record that is not gzip at all), as Lambda's event source mapping
/// delivers records a CloudWatch Logs destination put in the stream.
pub fn kinesis_event(payloads: &[Option<String>]) -> String {
    let records: Vec<Value> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let seq = format!("4965{i:04}{}", "1".repeat(48));
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0", "partitionKey": format!("k{i}"),
                    "sequenceNumber": seq,
                    "data": p.as_deref().map_or_else(|| "bm90IGd6aXA=".to_owned(), encode_data),
                    "approximateArrivalTimestamp": 1_732_439_200.5,
                },
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{seq}"),
                "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:999999999999:stream/eks-audit-detector",
            })
        })
        .collect();
    serde_json::json!({"Records": records}).to_string()
}

/// A subscription payload of `account`'s cluster `prod`.
pub fn account_batch(account: &str, stream: &str, messages: &[(i64, String)]) -> String {
    let mut batch: Value =
        serde_json::from_str(&batch_json("/aws/eks/prod/cluster", stream, messages)).expect("json");
    batch["owner"] = Value::from(account);
    batch.to_string()
}

/// Runs a future to completion on a fresh single-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A two-thread runtime, as a Lambda instance's SDK calls run concurrently.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
