//! Time per Lambda invocation of a ~1 MB batch against real AWS APIs served
//! locally (moto over loopback HTTP), and the DynamoDB requests it costs.
//! Needs the test virtualenv (`make bench` installs it).

#[allow(dead_code, unused_imports)]
#[path = "../tests/common/aws.rs"]
mod aws;
mod corpus;

use std::cell::Cell;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::sink::sns::SnsSink;
use eks_audit_detector::store::dynamodb::DynamoStore;

use corpus::{payload, Profile, Rng};

fn invocation(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stack = rt.block_on(aws::Stack::new());
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
