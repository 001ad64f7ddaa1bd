//! Time per Lambda invocation of a ~1 MB batch against real AWS APIs served
//! locally (moto over loopback HTTP), and the DynamoDB requests it costs.
//! Needs the test virtualenv (`make bench` installs it).

#[allow(dead_code, unused_imports)]
#[path = "../tests/common/aws.rs"]
mod aws;
mod corpus;

use std::cell::Cell;
use std::io::Write as _;
use std::time::Instant;

use base64::Engine as _;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::sink::sns::SnsSink;
use eks_audit_detector::store::dynamodb::DynamoStore;

use corpus::{payload, Profile, Rng};

/// A Lambda invoke body holding `messages`, one log event each.
fn invoke_body(messages: &[String], t0: i64) -> Vec<u8> {
    let events: Vec<serde_json::Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| serde_json::json!({"id": format!("{t0}-{i}"), "timestamp": t0 + i as i64, "message": m}))
        .collect();
    let batch = serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": "/aws/eks/prod/cluster", "logStream": format!("many-{t0}"),
        "subscriptionFilters": ["eks-audit-detector"], "logEvents": events,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(batch.to_string().as_bytes())
        .expect("in-memory");
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("in-memory"));
    serde_json::json!({"awslogs": {"data": data}})
        .to_string()
        .into_bytes()
}

fn address(i: usize) -> String {
    format!("{}.{}.{}.9", 20 + i / 65536, i / 256 % 256, i % 256)
}

/// Batches that touch many keys, timed once each against moto: every key
/// read (100 a request), written and, for alerts, published.
fn many_keys(rt: &tokio::runtime::Runtime, stack: &aws::Stack) {
    let processor = Processor::new(
        Detector::new(DetectorConfig::default()),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table),
        SnsSink::new(aws_sdk_sns::Client::new(&stack.config), &stack.topic_arn),
    );
    // 5,000 public addresses with one 403 each: 5,000 keys, no alert.
    let refused: Vec<String> = (0..5000)
        .map(|i| {
            serde_json::json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": format!("k-{i}"),
                "stage": "ResponseComplete", "requestURI": "/api/v1/secrets", "verb": "list",
                "user": {"username": "system:serviceaccount:default:default"},
                "sourceIPs": [address(i)], "objectRef": {"resource": "secrets"},
                "responseStatus": {"code": 403, "reason": "Forbidden"},
            })
            .to_string()
        })
        .collect();
    // 1,000 anonymous pod listings from distinct addresses: 1,000 alerts.
    let scans: Vec<String> = (0..1000)
        .map(|i| {
            serde_json::json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": format!("p-{i}"),
                "stage": "ResponseComplete", "requestURI": "/api/v1/pods", "verb": "list",
                "user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
                "sourceIPs": [address(100_000 + i)], "objectRef": {"resource": "pods"},
                "responseStatus": {"code": 403, "reason": "Forbidden"},
            })
            .to_string()
        })
        .collect();
    for (what, messages) in [("5,000 keys, no alert", refused), ("1,000 alerts", scans)] {
        let body = invoke_body(&messages, 1_715_644_800_000);
        let started = Instant::now();
        let r = rt
            .block_on(processor.handle_invoke_body(&body))
            .expect("handled");
        eprintln!(
            "{what}: {:.2} s against moto ({} keys, {} read requests, {} writes, {} alerts published)",
            started.elapsed().as_secs_f64(),
            r.keys,
            r.state_reads,
            r.state_writes,
            r.alerts_published
        );
    }
}

fn invocation(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stack = rt.block_on(aws::Stack::new());
    // Timed once, and only when benchmarking (`cargo test` runs benches as
    // smoke tests, where half a minute against moto would be wasted).
    if std::env::args().any(|a| a == "--bench") {
        many_keys(&rt, &stack);
    }
    let processor = Processor::new(
        Detector::new(DetectorConfig::default()),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table),
        SnsSink::new(aws_sdk_sns::Client::new(&stack.config), &stack.topic_arn),
    );
    let mut rng = Rng::new(11);
    let start = Cell::new(1_715_644_800_000i64);
    let mut next_batch = || {
        start.set(start.get() + 60_000);
        payload(&mut rng, start.get(), 1_000_000, Profile::Metadata)
    };

    // One batch, reported once: what a typical invocation costs in requests.
    let (body, bytes) = next_batch();
    let r = rt
        .block_on(processor.handle_invoke_body(&body))
        .expect("handled");
    eprintln!(
        "1 MB batch: {} events, {bytes} message bytes, {} matches, {} keys -> DynamoDB {} reads + {} writes, {} conflicts, {} alerts published",
        r.scan.events,
        r.scan.matches.values().sum::<u64>(),
        r.keys,
        r.state_reads,
        r.state_writes,
        r.state_conflicts,
        r.alerts_published
    );

    let mut group = c.benchmark_group("invocation_moto");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(10);
    group.bench_function("metadata_1mb", |b| {
        b.iter_batched(
            || next_batch().0,
            |body| {
                rt.block_on(processor.handle_invoke_body(&body))
                    .expect("handled")
                    .keys
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, invocation);
criterion_main!(benches);
