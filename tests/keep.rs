//! Failed Kinesis records keep their data (issue 14): every record reported
//! in `batchItemFailures` and every poison record is written where `replay`
//! reads it, in memory and over real HTTP to S3 (moto) with the real SDK.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::aws::{create_bucket, objects, s3_client, Stack};
use common::{account_batch, block_on, event, kinesis_event, with, RecordingSink};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::keep::memory::MemoryKeeper;
use eks_audit_detector::keep::s3::S3Keeper;
use eks_audit_detector::replay::{self, Format, ReplayOptions};
use eks_audit_detector::rules::Detector;
use eks_audit_detector::sink::sns::SnsSink;
use eks_audit_detector::store::dynamodb::DynamoStore;
use eks_audit_detector::store::memory::MemoryStore;

const T0: i64 = 1_715_644_800_000;
/// The day of `approximateArrivalTimestamp` in `kinesis_event`.
const DAY: &str = "2024-11-24";

fn burst(ip: &str, tag: &str) -> Vec<(i64, String)> {
    (0..10)
        .map(|i| {
            let id = format!("{tag}-{i}");
            (T0 + i * 1000, with(event("forbidden_public.json"), &id, ip))
        })
        .collect()
}

fn detector() -> Detector {
    Detector::new(DetectorConfig {
        organization_mode: true,
        ..common::seed_config()
    })
}

/// A burst record, then a poison one.
fn burst_then_poison() -> String {
    kinesis_event(&[
        Some(account_batch("111111111111", "a", &burst("5.5.5.5", "a"))),
        None,
    ])
}

fn seq(i: usize) -> String {
    format!("4965{i:04}{}", "1".repeat(48))
}

fn key(i: usize) -> String {
    format!("records/{DAY}/shardId-000000000000/{}.json", seq(i))
}

fn in_memory() -> (Processor<MemoryStore, RecordingSink>, Arc<MemoryKeeper>) {
    let keeper = Arc::new(MemoryKeeper::new());
    let p = Processor::new(detector(), MemoryStore::new(), RecordingSink::default())
        .with_keeper(keeper.clone());
    (p, keeper)
}

#[test]
fn a_poison_record_and_a_record_whose_state_cannot_be_written_are_kept_for_replay() {
    // GIVEN DynamoDB down and a batch of a burst and a poison record
    let (p, keeper) = in_memory();
    p.store().set_unavailable(true);
    let body = burst_then_poison();
    // WHEN it is handled
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    // THEN the burst is reported for retry, the poison one skipped, both kept
    assert_eq!(report.batch_item_failures, vec![seq(0)]);
    assert_eq!((report.poison_records, report.records_kept), (1, 2));
    let kept = keeper.objects();
    assert_eq!(
        kept.keys().cloned().collect::<Vec<_>>(),
        vec![key(0), key(1)]
    );
    assert_eq!(kept[&key(0)].reason, "state-unwritten");
    assert_eq!(kept[&key(1)].reason, "poison");
    assert_eq!(
        kept[&key(0)].event_id,
        format!("shardId-000000000000:{}", seq(0))
    );
    // AND a retry of the same records overwrites the same objects
    block_on(p.handle_invoke_body(body.as_bytes())).expect("retry");
    assert_eq!(keeper.objects(), kept);
    // AND the kept burst, replayed as it is, gives its alert
    let (fresh, _) = in_memory();
    let replayed = block_on(fresh.handle_invoke_body(kept[&key(0)].body.as_bytes()))
        .expect("a kept body is an invoke body");
    assert_eq!(replayed.alerts_published, 1);
    assert_eq!(fresh.sink().published().len(), 1);
}

#[test]
fn a_record_that_cannot_be_kept_is_still_reported_and_a_poison_one_still_skipped() {
    // GIVEN DynamoDB and the bucket both down
    let (p, keeper) = in_memory();
    p.store().set_unavailable(true);
    keeper.set_unavailable(true);
    // WHEN the batch is handled
    let report = block_on(p.handle_invoke_body(burst_then_poison().as_bytes())).expect("handled");
    // THEN nothing is lost: the burst is retried, the poison one is logged
    assert_eq!(report.batch_item_failures, vec![seq(0)]);
    assert_eq!((report.records_kept, report.keep_failures), (0, 2));
    assert!(keeper.objects().is_empty());
}

#[test]
fn records_that_cannot_start_before_the_deadline_are_kept_too() {
    let (p, keeper) = in_memory();
    // GIVEN an invocation whose deadline has passed
    let deadline = p.now_ms();
    let handled = block_on(p.handle_invocation(burst_then_poison().as_bytes(), deadline));
    let report = handled.into_result().expect("handled");
    // THEN every record is reported, and kept as out of time
    assert_eq!(report.batch_item_failures, vec![seq(0), seq(1)]);
    let kept = keeper.objects();
    assert_eq!(kept.len(), 2);
    assert!(kept.values().all(|k| k.reason == "out-of-time"));
}

#[test]
fn without_a_bucket_nothing_is_kept_and_nothing_changes() {
    let p = Processor::new(detector(), MemoryStore::new(), RecordingSink::default());
    p.store().set_unavailable(true);
    let report = block_on(p.handle_invoke_body(burst_then_poison().as_bytes())).expect("handled");
    assert_eq!(report.batch_item_failures, vec![seq(0)]);
    assert_eq!((report.records_kept, report.keep_failures), (0, 0));
}

/// `eks-audit-detector replay -` on `body`: (exit success, stdout, stderr).
fn replay_stdin(body: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eks-audit-detector"))
        .args(["replay", "-"])
        .env("DISABLED_RULES", common::seed_disabled())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("replay starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("replay ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn over_real_s3_both_failed_records_are_in_the_bucket_and_replay_reads_them() {
    let rt = common::runtime();
    let stack = rt.block_on(Stack::new());
    let s3 = s3_client(&stack.config);
    let bucket = rt.block_on(create_bucket(&s3));
    // GIVEN a state table that does not exist (every write fails) and the
    // real S3 adapter
    let p = Processor::new(
        detector(),
        DynamoStore::new(stack.dynamodb.clone(), "no-such-table"),
        SnsSink::new(stack.sns.clone(), &stack.topic_arn),
    )
    .with_keeper(Arc::new(S3Keeper::new(s3.clone(), &bucket)));
    // WHEN a batch of a burst and a poison record is handled
    let report = rt
        .block_on(p.handle_invoke_body(burst_then_poison().as_bytes()))
        .expect("handled");
    assert_eq!(report.batch_item_failures, vec![seq(0)]);
    assert_eq!((report.records_kept, report.keep_failures), (2, 0));
    // THEN both objects are in the bucket, with why they are there
    let kept = rt.block_on(objects(&s3, &bucket));
    let keys: Vec<&str> = kept.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec![key(0), key(1)]);
    assert_eq!(kept[0].metadata["reason"], "state-unwritten");
    assert_eq!(kept[1].metadata["reason"], "poison");
    assert_eq!(
        kept[1].metadata["event-id"],
        format!("shardId-000000000000:{}", seq(1))
    );
    // AND `aws s3 cp s3://…/<key> - | eks-audit-detector replay -` alerts
    // on the burst
    let (ok, stdout, stderr) = replay_stdin(&kept[0].body);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "one alert: {stdout}");
    assert!(stdout.contains("5.5.5.5"), "{stdout}");
    // AND reads the poison one as the invoke body it is, which still
    // cannot be decoded
    let (ok, _, stderr) = replay_stdin(&kept[1].body);
    assert!(!ok);
    assert!(stderr.contains("InvalidPayload"), "{stderr}");
}

#[test]
fn a_folder_of_kept_records_copied_from_s3_replays_as_it_is() {
    // GIVEN the kept records copied with `aws s3 cp --recursive`, in their
    // <day>/<shardId>/ folders
    let (p, keeper) = in_memory();
    p.store().set_unavailable(true);
    block_on(p.handle_invoke_body(burst_then_poison().as_bytes())).expect("handled");
    let dir = std::env::temp_dir().join(common::aws::unique("kept"));
    for (key, kept) in keeper.objects() {
        let file = dir.join(key);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("folders");
        std::fs::write(file, kept.body).expect("write");
    }
    // WHEN the folder is replayed
    let (fresh, _) = in_memory();
    let opts = ReplayOptions {
        format: Format::Auto,
        cluster: "unknown".into(),
        paths: vec![dir.clone()],
    };
    let summary = block_on(replay::run(&fresh, &opts));
    let _ = std::fs::remove_dir_all(&dir);
    // THEN both are read: the burst alerts, the poison one still fails
    assert_eq!(summary.inputs, 2);
    assert_eq!(fresh.sink().published().len(), 1);
    assert_eq!(summary.failures.len(), 1, "{:?}", summary.failures);
    assert!(summary.failures[0].0.ends_with(&format!("{}.json", seq(1))));
}
