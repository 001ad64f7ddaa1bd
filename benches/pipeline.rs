//! Throughput of the whole path on ~1 MB batches: invoke body → base64 →
//! gunzip → parse → detections with in-memory state; next to gunzip alone,
//! so the ratio can be read from one run, and next to decoding and
//! detection alone (no state, no alerts). The whole path runs three times: with
//! every rule enabled (those off by default too), with only the two
//! rules the detector started with (Multiple403 and PodScan), and with
//! every rule plus SigmaHQ's 16 Sigma rules and three correlations.

mod corpus;
mod setups;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::decode::{extract_data, inflate, Batch};
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::scan::{ScanStats, Scanner};
use eks_audit_detector::store::memory::MemoryStore;

use corpus::{payload, Profile, Rng};
use setups::{every_rule, two_original, with_sigma, Discard};

fn bench_profile(c: &mut Criterion, name: &str, profile: Profile) {
    let mut rng = Rng::new(7);
    let (body, message_bytes) = payload(&mut rng, 1_715_644_800_000, 1_000_000, profile);
    let data = extract_data(&body).expect("envelope").into_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let detector = Detector::new(every_rule());
    let two_original = two_original();

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(message_bytes as u64));
    group.sample_size(30);
    group.bench_function("gunzip_only", |b| {
        b.iter(|| inflate(&data, 64 << 20).expect("inflates").len())
    });
    // Detection alone (no state, no alerts): every built-in rule, then
    // with the Sigma rules too.
    let with_sigma_detector = Detector::new(with_sigma());
    for (label, detector) in [
        ("decode_and_scan", &detector),
        ("decode_and_scan_with_sigma", &with_sigma_detector),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let json = inflate(&data, 64 << 20).expect("inflates");
                let batch = Batch::parse(&json).expect("batch");
                let mut out = Vec::new();
                let mut stats = ScanStats::default();
                Scanner::new(detector).scan_batch(&batch, &mut out, &mut stats);
                out.len()
            })
        });
    }
    for (label, config) in [
        ("full_pipeline", detector.config().clone()),
        ("full_pipeline_two_original_rules", two_original.clone()),
        ("full_pipeline_with_sigma", with_sigma()),
    ] {
        group.bench_function(label, |b| {
            // A fresh store each time (every key new, the costliest case),
            // set up and dropped outside the timing: a function instance
            // keeps its processor between invocations. Each processor is
            // built just before its run, as a warm instance's tables were
            // used by its previous invocation; built many runs ahead (a
            // batch of inputs), each would start with cold caches.
            b.iter_batched_ref(
                || {
                    let p =
                        Processor::new(Detector::new(config.clone()), MemoryStore::new(), Discard);
                    // Built once per function instance, as in Lambda.
                    p.detector().prefilter();
                    p
                },
                |p| {
                    runtime
                        .block_on(p.handle_invoke_body(&body))
                        .expect("handled")
                        .scan
                        .events
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// One second of a full Kinesis shard (1 MB/s of records): 5 records of
/// ~200 KB of messages each, from 5 accounts, in organization mode; the
/// whole path per record as the Lambda runs it, next to the same bytes as
/// one subscription batch.
fn bench_kinesis_shard_second(c: &mut Criterion) {
    let mut rng = Rng::new(11);
    let mut message_bytes = 0;
    let records: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            let (body, bytes) = payload(&mut rng, 1_715_644_800_000, 200_000, Profile::Metadata);
            message_bytes += bytes;
            let mut data = extract_data(&body).expect("envelope").into_owned();
            // a different account per record
            let json = inflate(&data, 64 << 20).expect("inflates");
            let text = String::from_utf8(json)
                .expect("utf-8")
                .replacen("123456789012", &format!("10000000000{i}"), 1);
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            std::io::Write::write_all(&mut enc, text.as_bytes()).expect("in-memory");
            data = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                enc.finish().expect("in-memory"),
            );
            serde_json::json!({
                "kinesis": {"data": data, "sequenceNumber": format!("4965{i:04}{}", "1".repeat(48))},
                "eventSource": "aws:kinesis", "eventID": format!("shardId-000000000000:{i}"),
            })
        })
        .collect();
    let body = serde_json::json!({"Records": records})
        .to_string()
        .into_bytes();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let config = DetectorConfig {
        organization_mode: true,
        ..DetectorConfig::default()
    };
    let mut group = c.benchmark_group("kinesis_shard_second");
    group.throughput(Throughput::Bytes(message_bytes as u64));
    group.sample_size(30);
    group.bench_function("five_records_1mb", |b| {
        b.iter_batched_ref(
            || Processor::new(Detector::new(config.clone()), MemoryStore::new(), Discard),
            |p| {
                runtime
                    .block_on(p.handle_invoke_body(&body))
                    .expect("handled")
                    .records
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    bench_profile(c, "metadata_1mb", Profile::Metadata);
    bench_profile(c, "mixed_1mb", Profile::Mixed);
    bench_kinesis_shard_second(c);
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
