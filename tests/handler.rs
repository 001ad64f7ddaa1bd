//! The handler's orchestration with the in-memory store: exactly one alert
//! per window under redelivery, publish failures and retries.

mod common;

use common::{event, invoke_body, with, RecordingSink};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::{HandlerError, Processor};
use eks_audit_detector::rules::{Detector, RuleId, Severity};
use eks_audit_detector::store::memory::MemoryStore;
use eks_audit_detector::store::StateStore;

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";

fn processor() -> Processor<MemoryStore, RecordingSink> {
    Processor::new(
        Detector::new(DetectorConfig::default()),
        MemoryStore::new(),
        RecordingSink::default(),
    )
}

/// `n` refused API calls from `ip`, one second apart from `start`.
fn burst(ip: &str, n: usize, start: i64) -> Vec<(i64, String)> {
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

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn threshold_crossing_publishes_exactly_one_alert() {
    let p = processor();
    let body = invoke_body(GROUP, "s1", &burst("5.5.5.5", 12, T0));
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    let alerts = p.sink().published();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule_id, RuleId::Multiple403);
    assert_eq!(alerts[0].dedup, "prod_403_5.5.5.5");
    assert_eq!(alerts[0].event_count, 10);
    assert_eq!(alerts[0].account, "123456789012");
    assert_eq!(alerts[0].log_group, GROUP);
    // one key: one read and one write to decide, one write to mark it sent
    assert_eq!((report.state_reads, report.state_writes), (1, 2));
    let stored = block_on(
        p.store()
            .load("Amazon.EKS.Audit.Multiple403#prod_403_5.5.5.5"),
    )
    .expect("load")
    .expect("stored");
    assert_eq!(stored.state.count, 12);
    assert!(stored.state.pending.is_empty());
}

#[test]
fn below_threshold_publishes_nothing() {
    let p = processor();
    let body = invoke_body(GROUP, "s1", &burst("5.5.5.5", 9, T0));
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    assert!(p.sink().published().is_empty());
    assert_eq!((report.state_reads, report.state_writes), (1, 1));
}

#[test]
fn the_same_batch_delivered_twice_changes_nothing() {
    let p = processor();
    let body = invoke_body(GROUP, "s1", &burst("5.5.5.5", 10, T0));
    block_on(p.handle_invoke_body(body.as_bytes())).expect("first delivery");
    let before = p.store().snapshot();
    let again = block_on(p.handle_invoke_body(body.as_bytes())).expect("redelivery");
    assert_eq!(p.sink().published().len(), 1);
    assert_eq!(p.store().snapshot(), before);
    assert_eq!(again.duplicate_keys, 1);
    assert_eq!(again.state_writes, 0);
}

#[test]
fn a_failed_publish_fails_the_invocation_and_the_retry_publishes_once() {
    let p = processor();
    let body = invoke_body(GROUP, "s1", &burst("5.5.5.5", 10, T0));
    // GIVEN SNS is down
    p.sink().fail(true);
    let err = block_on(p.handle_invoke_body(body.as_bytes())).expect_err("must fail");
    assert_eq!(err.error_type(), "PublishFailed");
    // THEN the alert is pending in state
    let stored = block_on(
        p.store()
            .load("Amazon.EKS.Audit.Multiple403#prod_403_5.5.5.5"),
    )
    .expect("load")
    .expect("stored");
    assert_eq!(stored.state.pending.len(), 1);
    assert_eq!(stored.state.count, 10);
    // WHEN Lambda retries with SNS back
    p.sink().fail(false);
    block_on(p.handle_invoke_body(body.as_bytes())).expect("retry succeeds");
    // THEN the alert goes out once, the count is unchanged and nothing is pending
    assert_eq!(p.sink().published().len(), 1);
    let stored = block_on(
        p.store()
            .load("Amazon.EKS.Audit.Multiple403#prod_403_5.5.5.5"),
    )
    .expect("load")
    .expect("stored");
    assert_eq!(stored.state.count, 10);
    assert!(stored.state.pending.is_empty());
    // and a third delivery publishes nothing more
    block_on(p.handle_invoke_body(body.as_bytes())).expect("third");
    assert_eq!(p.sink().published().len(), 1);
}

#[test]
fn undecodable_payloads_fail_with_invalid_payload_and_touch_nothing() {
    let p = processor();
    for body in [
        &b"{}"[..],
        b"{\"awslogs\":{\"data\":\"!!!\"}}",
        b"{\"awslogs\":{\"data\":\"aGVsbG8=\"}}",
        b"null",
    ] {
        let err = block_on(p.handle_invoke_body(body)).expect_err("invalid");
        assert!(matches!(err, HandlerError::InvalidPayload(_)));
        assert_eq!(err.error_type(), "InvalidPayload");
    }
    assert!(p.store().snapshot().is_empty());
}

#[test]
fn control_messages_and_batches_of_bad_lines_touch_no_state() {
    let p = processor();
    let control = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/05-control-message.json"
    ))
    .expect("read");
    let r = block_on(p.handle_invoke_body(&control)).expect("control");
    assert_eq!(r.message_type, "CONTROL_MESSAGE");
    let bad = invoke_body(
        GROUP,
        "s",
        &[(T0, "garbage 403".into()), (T0, "{\"kind\":403".into())],
    );
    let r = block_on(p.handle_invoke_body(bad.as_bytes())).expect("bad lines are not an error");
    assert_eq!(r.scan.skipped_total(), 2);
    assert_eq!((r.state_reads, r.state_writes), (0, 0));
    assert!(p.store().snapshot().is_empty());
}

#[test]
fn sample_events_raise_the_documented_alerts() {
    let p = processor();
    let mut dir: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
        .expect("events/")
        .map(|e| e.expect("entry").path())
        .collect();
    dir.sort();
    for path in dir {
        let body = std::fs::read(&path).expect("read");
        block_on(p.handle_invoke_body(&body)).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    }
    let got: Vec<(RuleId, Severity, bool, String)> = p
        .sink()
        .published()
        .into_iter()
        .map(|a| (a.rule_id, a.severity, a.escalation, a.source_ip))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                RuleId::Multiple403,
                Severity::Info,
                false,
                "185.220.101.47".into()
            ),
            (RuleId::PodScan, Severity::Low, false, "45.33.32.156".into()),
            (RuleId::PodScan, Severity::High, true, "45.33.32.156".into()),
        ]
    );
    // the escalation shows the request that succeeded
    let high = &p.sink().published()[2];
    assert_eq!(high.sample.response_status.code, Some(200));
}

#[test]
fn an_alert_left_pending_by_a_batch_that_never_came_back_is_delivered_after_the_grace_period() {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NOW: AtomicI64 = AtomicI64::new(1_000_000);
    fn clock() -> i64 {
        NOW.load(Ordering::SeqCst)
    }
    let p = processor().with_clock(clock);
    // GIVEN batch A raised an alert but SNS failed and A is never retried
    p.sink().fail(true);
    let a = invoke_body(GROUP, "s1", &burst("5.5.5.5", 10, T0));
    block_on(p.handle_invoke_body(a.as_bytes())).expect_err("publish fails");
    p.sink().fail(false);
    // WHEN another batch touches the key soon after, it leaves A's alert alone
    let b = invoke_body(GROUP, "s2", &burst("5.5.5.5", 1, T0 + 60_000));
    block_on(p.handle_invoke_body(b.as_bytes())).expect("b");
    assert!(p.sink().published().is_empty());
    // THEN once the grace period has passed, the next batch delivers it once
    NOW.fetch_add(
        eks_audit_detector::window::PENDING_GRACE_MS,
        Ordering::SeqCst,
    );
    let c = invoke_body(GROUP, "s3", &burst("5.5.5.5", 1, T0 + 120_000));
    block_on(p.handle_invoke_body(c.as_bytes())).expect("c");
    assert_eq!(p.sink().published().len(), 1);
    let d = invoke_body(GROUP, "s4", &burst("5.5.5.5", 1, T0 + 180_000));
    block_on(p.handle_invoke_body(d.as_bytes())).expect("d");
    assert_eq!(p.sink().published().len(), 1);
}
