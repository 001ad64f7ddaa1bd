//! The silence report (`EksAuditDetector.AuditLogSilent`) is decided and
//! queued in one write of the watch record: a write of another instance
//! landing in between, or DynamoDB failing once, cannot lose it.

mod common;

use common::store::CountingStore;
use common::{block_on, burst, invoke_body, RecordingSink};
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::store::memory::MemoryStore;
use eks_audit_detector::store::{state_key, StateStore};
use eks_audit_detector::time::ManualClock;

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";

fn silence_reports(p: &Processor<impl StateStore, RecordingSink>) -> usize {
    p.sink()
        .published()
        .into_iter()
        .filter(|a| a.rule_id == eks_audit_detector::silence::RULE_ID)
        .count()
}

/// A processor with an in-memory store, on `clock`.
fn on_clock(clock: &std::sync::Arc<ManualClock>) -> Processor<MemoryStore, RecordingSink> {
    Processor::new(
        Detector::new(common::seed_config()),
        MemoryStore::new(),
        RecordingSink::default(),
    )
    .with_clock(clock.clone())
}

fn watch_pk() -> String {
    state_key(
        eks_audit_detector::silence::RULE_ID,
        eks_audit_detector::silence::WATCH_DEDUP,
    )
}

/// Another instance notes a cluster on the watch record just before one of
/// the schedule's writes (the one that decides and queues the report, or
/// the one that records it delivered): the schedule re-reads and writes
/// again, and the silence is reported once.
#[test]
fn a_write_racing_the_silence_report_costs_it_nothing() {
    for racing_write in 0..2 {
        let clock = ManualClock::at(T0);
        let p = on_clock(&clock);
        let body = invoke_body(GROUP, "s", &burst("5.5.5.5", 1, T0));
        block_on(p.handle_invoke_body(body.as_bytes())).expect("batch");
        clock.advance(61 * 60_000);
        let pk = watch_pk();
        for _ in 0..racing_write {
            p.store().before_next_save(&pk, |_| {});
        }
        // another instance's `hear` writes the record (a batch of another
        // cluster)
        p.store().before_next_save(&pk, move |items| {
            let key = watch_pk();
            let mut v = items.get(&key).expect("watch").clone();
            v.state.watch.insert(
                "other".into(),
                eks_audit_detector::silence::Heard {
                    last_ms: T0 + 61 * 60_000,
                    log_group: "/aws/eks/other/cluster".into(),
                    account: "123456789012".into(),
                    reported: None,
                },
            );
            v.version += 1;
            items.insert(key, v);
        });
        block_on(p.handle_schedule()).expect("schedule");
        // the next schedules run normally
        for _ in 0..5 {
            clock.advance(60_000);
            block_on(p.handle_schedule()).expect("schedule");
        }
        assert_eq!(
            silence_reports(&p),
            1,
            "racing write {racing_write}: cluster prod was silent 66 minutes; undelivered = {}",
            p.store().undelivered().len()
        );
        assert!(p.store().undelivered().is_empty());
    }
}

/// DynamoDB throttles the schedule's write that decides and queues the
/// report: that run fails, nothing is marked reported, and the next run
/// reports the silence, once.
#[test]
fn a_failed_write_of_the_silence_report_is_decided_again_next_run() {
    let clock = ManualClock::at(T0);
    let p = Processor::new(
        Detector::new(common::seed_config()),
        // save 1: the batch's `hear`; 2: the schedule's decision
        CountingStore::throttling(&watch_pk(), 2),
        RecordingSink::default(),
    )
    .with_clock(clock.clone());
    let body = invoke_body(GROUP, "s", &burst("5.5.5.5", 1, T0));
    block_on(p.handle_invoke_body(body.as_bytes())).expect("batch");
    clock.advance(61 * 60_000);
    let first = block_on(p.handle_schedule());
    assert!(first.is_err(), "the throttled write fails the run");
    for _ in 0..5 {
        clock.advance(60_000);
        let _ = block_on(p.handle_schedule());
    }
    assert_eq!(
        silence_reports(&p),
        1,
        "one silence report expected (first schedule: {:?})",
        first.err()
    );
}

/// The clusters reported silent, in the order reported.
fn silent_clusters(p: &Processor<impl StateStore, RecordingSink>) -> Vec<String> {
    p.sink()
        .published()
        .into_iter()
        .filter(|a| a.rule_id == eks_audit_detector::silence::RULE_ID)
        .map(|a| a.cluster)
        .collect()
}

const MIN: i64 = 60_000;

/// Forty clusters go quiet at once (their subscription filters removed):
/// more reports than one key's outbox holds. Each is reported once, the
/// ones that do not fit in a later run, none dropped.
#[test]
fn many_clusters_silent_at_once_are_each_reported_once() {
    let clock = ManualClock::at(T0);
    let p = on_clock(&clock);
    let n = 40;
    for i in 0..n {
        let group = format!("/aws/eks/cluster-{i}/cluster");
        let body = invoke_body(&group, "s", &burst("5.5.5.5", 1, T0));
        block_on(p.handle_invoke_body(body.as_bytes())).expect("batch");
    }
    clock.advance(61 * MIN);
    let mut reports = Vec::new();
    for _ in 0..10 {
        reports.push(block_on(p.handle_schedule()).expect("schedule"));
        clock.advance(MIN);
    }
    let mut reported = silent_clusters(&p);
    assert_eq!(reported.len(), n, "{reported:?}");
    reported.sort();
    reported.dedup();
    assert_eq!(reported.len(), n, "each once");
    assert!(reports.iter().all(|r| r.alerts_dropped == 0));
    assert!(
        reports[0].alerts_raised < n as u64,
        "not all fit in one run"
    );
}

/// One instance runs the schedule, another handles the batches: the
/// cluster comes back (noted by the other), then goes quiet again. Its
/// second silence is reported too.
#[test]
fn a_second_silence_is_reported_when_another_instance_noted_the_return() {
    use std::sync::Arc;
    let clock = ManualClock::at(T0);
    let shared = Arc::new(MemoryStore::new());
    let make = || {
        Processor::new(
            Detector::new(common::seed_config()),
            Arc::clone(&shared),
            RecordingSink::default(),
        )
        .with_clock(clock.clone())
    };
    let (schedule, batches) = (make(), make());
    let body = invoke_body(GROUP, "s", &burst("5.5.5.5", 1, T0));
    block_on(batches.handle_invoke_body(body.as_bytes())).expect("batch");
    for _ in 0..70 {
        clock.advance(MIN);
        block_on(schedule.handle_schedule()).expect("schedule");
    }
    assert_eq!(silence_reports(&schedule), 1, "first silence");
    clock.advance(MIN);
    let body = invoke_body(GROUP, "s", &burst("6.6.6.6", 1, T0 + 71 * MIN));
    block_on(batches.handle_invoke_body(body.as_bytes())).expect("batch");
    for _ in 0..70 {
        clock.advance(MIN);
        block_on(schedule.handle_schedule()).expect("schedule");
    }
    assert_eq!(
        silence_reports(&schedule) + silence_reports(&batches),
        2,
        "quiet again since the return"
    );
}
