//! One detector for a whole organization: Kinesis records from a CloudWatch
//! Logs destination, each a subscription batch of some account, with partial
//! batch failures reported so a poison record never blocks its shard.

mod common;

use common::block_on;

use common::{account_batch, event, kinesis_event, with, RecordingSink};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::lambda::summary_json;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::store::memory::MemoryStore;
use serde_json::json;

const T0: i64 = 1_715_644_800_000;

fn burst(ip: &str, tag: &str) -> Vec<(i64, String)> {
    (0..10)
        .map(|i| {
            let id = format!("{tag}-{i}");
            (T0 + i * 1000, with(event("forbidden_public.json"), &id, ip))
        })
        .collect()
}

fn processor(organization_mode: bool) -> Processor<MemoryStore, RecordingSink> {
    Processor::new(
        Detector::new(DetectorConfig {
            organization_mode,
            ..common::seed_config()
        }),
        MemoryStore::new(),
        RecordingSink::default(),
    )
}

/// The stored states of rule keys (without the record of clusters heard
/// from).
fn rule_states(
    store: &MemoryStore,
) -> std::collections::HashMap<String, eks_audit_detector::store::Versioned> {
    let watch = eks_audit_detector::silence::RULE_ID.as_str();
    store
        .snapshot()
        .into_iter()
        .filter(|(pk, _)| !pk.starts_with(watch))
        .collect()
}

/// Two accounts, each with a cluster named `prod`, the same burst.
fn clashing() -> String {
    kinesis_event(&[
        Some(account_batch("111111111111", "a", &burst("5.5.5.5", "a"))),
        Some(account_batch("222222222222", "b", &burst("5.5.5.5", "b"))),
    ])
}

#[test]
fn in_organization_mode_clusters_of_one_name_in_two_accounts_never_merge() {
    let p = processor(true);
    let report = block_on(p.handle_invoke_body(clashing().as_bytes())).expect("handled");
    let mut dedups: Vec<String> = p.sink().published().into_iter().map(|a| a.dedup).collect();
    dedups.sort();
    assert_eq!(
        dedups,
        [
            "111111111111/prod_403_5.5.5.5",
            "222222222222/prod_403_5.5.5.5"
        ]
    );
    assert!(p.sink().published()[0]
        .title
        .contains("on [111111111111/prod]"));
    assert_eq!(summary_json(&report), json!({"batchItemFailures": []}));
}

#[test]
fn a_single_account_deployment_keeps_todays_labels() {
    let p = processor(false);
    block_on(p.handle_invoke_body(clashing().as_bytes())).expect("handled");
    let alerts = p.sink().published();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].dedup, "prod_403_5.5.5.5");
}

#[test]
fn a_poison_record_is_skipped_and_counted_and_blocks_nothing() {
    let p = processor(true);
    let body = kinesis_event(&[
        Some(account_batch("111111111111", "a", &burst("5.5.5.5", "a"))),
        None,
        Some(account_batch("222222222222", "b", &burst("6.6.6.6", "b"))),
    ]);
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    assert_eq!((report.records, report.poison_records), (3, 1));
    assert!(
        report.batch_item_failures.is_empty(),
        "never reported: it would block the shard"
    );
    assert_eq!(p.sink().published().len(), 2);
}

#[test]
fn an_sns_outage_never_stalls_the_shard_and_the_schedule_delivers_each_alert_once() {
    let p = processor(true);
    let body = clashing();
    // GIVEN SNS refusing every publish, the batch delivered four times
    p.sink().fail(true);
    for delivery in 0..4 {
        let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
        // THEN no record is ever reported: the shard moves on
        assert_eq!(
            summary_json(&report),
            json!({"batchItemFailures": []}),
            "delivery {delivery}"
        );
    }
    // AND each key counted its 10 matches once, its alert waiting
    let states = rule_states(p.store());
    assert_eq!(states.len(), 2);
    for v in states.values() {
        assert_eq!(v.state.count, 10);
        assert_eq!(v.state.outbox.len(), 1);
    }
    // WHEN SNS is back and the schedule runs (twice)
    p.sink().fail(false);
    block_on(p.handle_schedule()).expect("sweep");
    block_on(p.handle_schedule()).expect("sweep again");
    // THEN each alert arrives once
    let mut ids: Vec<String> = p
        .sink()
        .published()
        .into_iter()
        .map(|a| a.alert_id)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), p.sink().published().len()), (2, 2));
    assert!(p.store().undelivered().is_empty());
}

#[test]
fn a_record_too_large_for_the_configured_memory_is_retried_and_names_the_setting() {
    let p = processor(true);
    let big = account_batch("111111111111", "a", &burst("5.5.5.5", "a"));
    let mut config = p.detector().config().clone();
    config.max_decompressed_bytes = big.len() / 2;
    let small = Processor::new(
        Detector::new(config),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    let body = kinesis_event(&[Some(big)]);
    let report = block_on(small.handle_invoke_body(body.as_bytes())).expect("handled");
    // THEN it is reported for retry (raising the setting lets it through),
    // not skipped as poison
    assert_eq!(report.batch_item_failures.len(), 1);
    assert_eq!(report.poison_records, 0);
    let err = eks_audit_detector::decode::DecodeError::TooLarge { limit: 1 };
    assert!(err.to_string().contains("MAX_DECOMPRESSED_MB"));
}

#[test]
fn a_record_whose_state_cannot_be_written_is_reported_for_retry() {
    let p = processor(true);
    p.store().set_unavailable(true);
    let body = clashing();
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    assert_eq!(report.batch_item_failures.len(), 2);
    // AND the retry, with DynamoDB back, counts everything once
    p.store().set_unavailable(false);
    let again = block_on(p.handle_invoke_body(body.as_bytes())).expect("retry");
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(p.sink().published().len(), 2);
}

#[test]
fn kinesis_records_give_exactly_the_alerts_of_the_same_payloads_subscribed() {
    let payloads = [
        account_batch("123456789012", "a", &burst("5.5.5.5", "a")),
        account_batch("123456789012", "b", &burst("6.6.6.6", "b")),
    ];
    // through the subscription path
    let direct = processor(false);
    for p in &payloads {
        let body = json!({"awslogs": {"data": common::encode_data(p)}}).to_string();
        block_on(direct.handle_invoke_body(body.as_bytes())).expect("subscription");
    }
    // through Kinesis
    let streamed = processor(false);
    let body = kinesis_event(&payloads.iter().cloned().map(Some).collect::<Vec<_>>());
    block_on(streamed.handle_invoke_body(body.as_bytes())).expect("kinesis");
    let ids = |p: &Processor<MemoryStore, RecordingSink>| {
        let mut v: Vec<String> = p
            .sink()
            .published()
            .into_iter()
            .map(|a| a.to_json())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&direct).len(), 2);
    assert_eq!(ids(&direct), ids(&streamed));
}

#[test]
fn racing_instances_on_one_kinesis_batch_alert_once_per_account() {
    let shared = std::sync::Arc::new(MemoryStore::new());
    let instance = || {
        Processor::new(
            Detector::new(DetectorConfig {
                organization_mode: true,
                ..common::seed_config()
            }),
            std::sync::Arc::clone(&shared),
            RecordingSink::default(),
        )
    };
    let (a, b, c) = (instance(), instance(), instance());
    let body = clashing();
    let (ra, rb, rc) = block_on(async {
        futures_util::join!(
            a.handle_invoke_body(body.as_bytes()),
            b.handle_invoke_body(body.as_bytes()),
            c.handle_invoke_body(body.as_bytes())
        )
    });
    for r in [ra, rb, rc] {
        assert!(r.expect("handled").batch_item_failures.is_empty());
    }
    let total =
        a.sink().published().len() + b.sink().published().len() + c.sink().published().len();
    assert_eq!(total, 2, "one alert per account");
    for v in rule_states(&shared).values() {
        assert_eq!(v.state.count, 10, "each batch counted once");
    }
}

#[test]
fn after_sns_fails_on_one_record_the_next_ones_do_not_wait_on_it_again() {
    let p = processor(true);
    p.sink().fail(true);
    // GIVEN three records with an alert each, SNS down
    let body = kinesis_event(&[
        Some(account_batch("111111111111", "a", &burst("5.5.5.5", "a"))),
        Some(account_batch("222222222222", "b", &burst("5.5.5.5", "b"))),
        Some(account_batch("333333333333", "c", &burst("5.5.5.5", "c"))),
    ]);
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    // THEN SNS is tried for the first record only, nothing is reported,
    // and the three alerts wait in the outbox, unclaimed
    assert_eq!(
        p.sink().attempts.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert!(report.batch_item_failures.is_empty());
    let waiting = p.store().undelivered();
    assert_eq!(waiting.len(), 3);
    assert!(waiting.iter().all(|w| w.claim.is_none()));
    // AND the schedule delivers them once SNS is back
    p.sink().fail(false);
    block_on(p.handle_schedule()).expect("sweep");
    assert_eq!(p.sink().published().len(), 3);
}

#[test]
fn records_that_cannot_start_before_the_deadline_are_reported_for_retry() {
    let p = processor(true);
    let body = clashing();
    // GIVEN an invocation with 10 seconds left
    let handled = block_on(p.handle_invocation(body.as_bytes(), p.now_ms() + 10_000));
    // THEN no record is started and both are reported, to be retried
    assert!(handled.error.is_none());
    assert_eq!(handled.report.batch_item_failures.len(), 2);
    assert_eq!(handled.report.records, 0);
    assert!(p.store().snapshot().is_empty());
    // AND with time enough, the retry handles them
    let again = block_on(p.handle_invoke_body(body.as_bytes())).expect("retry");
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(p.sink().published().len(), 2);
}

/// A record whose batch holds far more entries than CloudWatch could write
/// in its bytes (a sender's 3-byte `{}`s, each 56 bytes once read) is
/// refused before its entries are built: a poison record, kept and counted,
/// never retried, and the records around it are read.
#[test]
fn a_record_of_empty_entries_is_poison_and_the_rest_is_read() {
    let p = processor(true);
    let real = account_batch("111111111111", "a", &burst("5.5.5.5", "a"));
    let dense = real.replacen(
        r#""logEvents":["#,
        &format!(r#""logEvents":[{}"#, "{},".repeat(200_000)),
        1,
    );
    assert_ne!(dense, real);
    let body = kinesis_event(&[
        Some(dense),
        Some(account_batch("222222222222", "b", &burst("6.6.6.6", "b"))),
    ]);
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    assert_eq!((report.records, report.poison_records), (2, 1));
    assert!(report.batch_item_failures.is_empty());
    assert_eq!(p.sink().published().len(), 1);
}
