//! Throughput of the whole path on ~1 MB batches: invoke body → base64 →
//! gunzip → parse → both detections with in-memory state; next to gunzip
//! alone, so the ratio can be read from one run.

mod corpus;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eks_audit_detector::alert::Alert;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::decode::{extract_data, inflate, Batch};
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::scan::{ScanStats, Scanner};
use eks_audit_detector::sink::{AlertSink, PublishError};
use eks_audit_detector::store::memory::MemoryStore;

use corpus::{payload, Profile, Rng};

/// Drops alerts: the benchmark measures detection, not output.
struct Discard;

impl AlertSink for Discard {
    async fn publish(&self, _alert: &Alert) -> Result<(), PublishError> {
        Ok(())
    }
}

fn bench_profile(c: &mut Criterion, name: &str, profile: Profile) {
    let mut rng = Rng::new(7);
    let (body, message_bytes) = payload(&mut rng, 1_715_644_800_000, 1_000_000, profile);
    let data = extract_data(&body).expect("envelope").into_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let detector = Detector::new(DetectorConfig::default());

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(message_bytes as u64));
    group.sample_size(30);
    group.bench_function("gunzip_only", |b| {
        b.iter(|| inflate(&data, 64 << 20).expect("inflates").len())
    });
    group.bench_function("decode_and_scan", |b| {
        b.iter(|| {
            let json = inflate(&data, 64 << 20).expect("inflates");
            let batch = Batch::parse(&json).expect("batch");
            let mut out = Vec::new();
            let mut stats = ScanStats::default();
            Scanner::new(&detector).scan_batch(&batch, &mut out, &mut stats);
            out.len()
        })
    });
    group.bench_function("full_pipeline", |b| {
        b.iter_batched(
            || {
                Processor::new(
                    Detector::new(detector.config().clone()),
                    MemoryStore::new(),
                    Discard,
                )
            },
            |p| {
                runtime
                    .block_on(p.handle_invoke_body(&body))
                    .expect("handled")
                    .scan
                    .events
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    bench_profile(c, "metadata_1mb", Profile::Metadata);
    bench_profile(c, "mixed_1mb", Profile::Mixed);
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
