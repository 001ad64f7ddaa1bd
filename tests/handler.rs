//! The handler's orchestration with the in-memory store: exactly one alert
//! per window under redelivery, publish failures and retries.

mod common;

use common::block_on;

use eks_audit_detector::time::{Clock, ManualClock};

use common::store::CountingStore;
use common::{burst, event, forwarded_pod_scan, invoke_body, oversized_403, with, RecordingSink};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::{HandlerError, Processor, CLAIM_MARGIN_MS, DEFAULT_BUDGET_MS};
use eks_audit_detector::rules::Detector;
use eks_audit_detector::store::memory::MemoryStore;
use eks_audit_detector::store::{Loaded, StateStore, Versioned};
use eks_audit_detector::vocab::Severity;

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";

fn processor() -> Processor<MemoryStore, RecordingSink> {
    Processor::new(
        Detector::new(common::seed_config()),
        MemoryStore::new(),
        RecordingSink::default(),
    )
}

fn stored(p: &Processor<MemoryStore, RecordingSink>, pk: &str) -> Versioned {
    match block_on(p.store().load(pk)).expect("load") {
        Some(Loaded::Found(v)) => v,
        other => panic!("{pk}: {other:?}"),
    }
}

const KEY: &str = "Amazon.EKS.Audit.Multiple403#prod_403_5.5.5.5";

/// The alerts of the samples in `events/`, in file order, with every rule
/// at its defaults (`PRINT_SAMPLE_ALERTS=1` prints what the code gives).
const SAMPLE_ALERTS: [(&str, Severity, bool, &str); 19] = [
    // 01: a public 403 burst (Panther's EKS rule and its Kubernetes twin)
    (
        "Amazon.EKS.Audit.Multiple403",
        Severity::Info,
        false,
        "185.220.101.47",
    ),
    (
        "Kubernetes.API.Multiple403.PublicIP",
        Severity::Info,
        false,
        "185.220.101.47",
    ),
    // 03-04: an anonymous pod listing refused, then allowed (escalation)
    (
        "Amazon.EKS.AnonymousAPIAccess",
        Severity::Info,
        false,
        "45.33.32.156",
    ),
    (
        "Amazon.EKS.Audit.PodScan",
        Severity::Low,
        false,
        "45.33.32.156",
    ),
    (
        "Kubernetes.API.AnonymousAccess",
        Severity::Info,
        false,
        "45.33.32.156",
    ),
    (
        "Amazon.EKS.AnonymousAPIAccess",
        Severity::Low,
        false,
        "45.33.32.156",
    ),
    (
        "Amazon.EKS.Audit.PodScan",
        Severity::High,
        true,
        "45.33.32.156",
    ),
    // 08-09: the two CloudTrail events that blind the detector
    (
        "EksAuditDetector.LoggingTampered",
        Severity::High,
        false,
        "198.51.100.23",
    ),
    (
        "EksAuditDetector.LoggingTampered",
        Severity::High,
        false,
        "198.51.100.23",
    ),
    // 10: the Kinesis sample: two accounts' `prod`, one key here
    (
        "Amazon.EKS.Audit.Multiple403",
        Severity::Info,
        false,
        "185.220.101.47",
    ),
    (
        "Kubernetes.API.Multiple403.PublicIP",
        Severity::Info,
        false,
        "185.220.101.47",
    ),
    // 39: the refused attempt on a cluster's filter, one step down; 41: a member account's cluster
    (
        "EksAuditDetector.LoggingTampered",
        Severity::Medium,
        false,
        "203.0.113.66",
    ),
    (
        "EksAuditDetector.LoggingTampered",
        Severity::High,
        false,
        "203.0.113.77",
    ),
    // 42: an access entry granting cluster admin
    (
        "EksAuditDetector.AccessEntryAdmin",
        Severity::High,
        false,
        "203.0.113.66",
    ),
    // 43: a privileged DaemonSet and a cluster-admin binding
    (
        "EksAuditDetector.Workload.HostNamespaces",
        Severity::Medium,
        false,
        "198.51.100.23",
    ),
    (
        "EksAuditDetector.Workload.HostPath",
        Severity::High,
        false,
        "198.51.100.23",
    ),
    (
        "EksAuditDetector.Workload.Privileged",
        Severity::High,
        false,
        "198.51.100.23",
    ),
    (
        "Kubernetes.ClusterRoleBinding.Privileged",
        Severity::High,
        false,
        "198.51.100.23",
    ),
    (
        "Kubernetes.DaemonSet.Created",
        Severity::Info,
        false,
        "198.51.100.23",
    ),
];

#[test]
fn threshold_crossing_publishes_exactly_one_alert() {
    let p = processor();
    let body = invoke_body(GROUP, "s1", &burst("5.5.5.5", 12, T0));
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    let alerts = p.sink().published();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].rule_id,
        eks_audit_detector::rules::multiple_403::META.id
    );
    assert_eq!(alerts[0].dedup, "prod_403_5.5.5.5");
    assert_eq!(alerts[0].event_count, 10);
    assert_eq!(alerts[0].account, "123456789012");
    assert_eq!(alerts[0].log_group, GROUP);
    // one key: one read and one write to decide and queue, one to dequeue
    assert_eq!((report.state_reads, report.state_writes), (1, 2));
    // the window saturated at its 10th match and the outbox is empty again
    assert_eq!(stored(&p, KEY).state.count, 10);
    assert!(p.store().undelivered().is_empty());
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
    // this warm instance knows the window is saturated: not even a read
    assert_eq!(again.hot_keys, 1);
    assert_eq!((again.state_reads, again.state_writes), (0, 0));
    // a cold instance reads the key and finds the batch already applied
    let cold = Processor::new(
        Detector::new(common::seed_config()),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    let below = invoke_body(GROUP, "s1", &burst("5.5.5.5", 5, T0));
    block_on(cold.handle_invoke_body(below.as_bytes())).expect("first");
    let again = block_on(cold.handle_invoke_body(below.as_bytes())).expect("again");
    assert_eq!((again.duplicate_keys, again.state_writes), (1, 0));
}

#[test]
fn a_failed_publish_fails_the_invocation_and_the_retry_publishes_once() {
    let p = processor();
    let body = invoke_body(GROUP, "s1", &burst("5.5.5.5", 10, T0));
    // GIVEN SNS is down
    p.sink().fail(true);
    let err = block_on(p.handle_invoke_body(body.as_bytes())).expect_err("must fail");
    assert_eq!(err.error_type(), "PublishFailed");
    // THEN the alert waits in the outbox, unclaimed, and the count is kept
    let waiting = p.store().undelivered();
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].claim.is_none());
    assert_eq!(stored(&p, KEY).state.count, 10);
    // WHEN Lambda retries with SNS back
    p.sink().fail(false);
    block_on(p.handle_invoke_body(body.as_bytes())).expect("retry succeeds");
    // THEN the alert goes out once, the count is unchanged and nothing waits
    assert_eq!(p.sink().published().len(), 1);
    assert_eq!(stored(&p, KEY).state.count, 10);
    assert!(p.store().undelivered().is_empty());
    // and a third delivery publishes nothing more
    block_on(p.handle_invoke_body(body.as_bytes())).expect("third");
    assert_eq!(p.sink().published().len(), 1);
}

#[test]
fn undecodable_payloads_fail_with_invalid_payload_and_touch_nothing() {
    let p = processor();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for body in [
        &b"{}"[..],
        b"{\"awslogs\":{\"data\":\"!!!\"}}",
        b"{\"awslogs\":{\"data\":\"aGVsbG8=\"}}",
        b"null",
        b"not json at all",
        deep.as_bytes(),
    ] {
        let err = block_on(p.handle_invoke_body(body)).expect_err("invalid");
        assert!(matches!(err, HandlerError::InvalidPayload(_)));
        assert_eq!(err.error_type(), "InvalidPayload");
    }
    assert!(p.store().snapshot().is_empty());
}

#[test]
fn control_messages_and_batches_of_bad_lines_touch_no_rule_state() {
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
    // (the cluster's log is alive, though: it is noted as heard from)
    let keys: Vec<String> = p.store().snapshot().into_keys().collect();
    assert_eq!(keys, ["EksAuditDetector.AuditLogSilent#watch"]);
}

#[test]
fn sample_events_raise_the_documented_alerts() {
    // Every rule with its default settings, as `make run` shows them.
    let p = Processor::new(
        Detector::new(DetectorConfig::default()),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    let mut dir: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
        .expect("events/")
        .map(|e| e.expect("entry").path())
        .collect();
    dir.sort();
    for path in dir {
        let body = std::fs::read(&path).expect("read");
        block_on(p.handle_invoke_body(&body)).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    }
    let got: Vec<(&str, Severity, bool, String)> = p
        .sink()
        .published()
        .into_iter()
        .map(|a| (a.rule_id.as_str(), a.severity, a.escalation, a.source_ip))
        .collect();
    if std::env::var_os("PRINT_SAMPLE_ALERTS").is_some() {
        for g in &got {
            eprintln!("SAMPLE {g:?}");
        }
    }
    let want: Vec<(&str, Severity, bool, String)> = SAMPLE_ALERTS
        .iter()
        .map(|(id, sev, esc, ip)| (*id, *sev, *esc, (*ip).to_owned()))
        .collect();
    assert_eq!(got, want);
    // the escalation shows the request that succeeded
    let high = &p.sink().published()[6];
    assert_eq!(high.sample.response_status.code, Some(200));
}

#[test]
fn an_alert_left_undelivered_is_delivered_once_by_the_next_scheduled_run() {
    // GIVEN instance A raised an alert while SNS was down, and the batch is
    // never retried and no later batch touches the key
    let shared = std::sync::Arc::new(MemoryStore::new());
    let a = Processor::new(
        Detector::new(common::seed_config()),
        std::sync::Arc::clone(&shared),
        RecordingSink::default(),
    );
    a.sink().fail(true);
    let body = invoke_body(GROUP, "s1", &burst("5.5.5.5", 10, T0));
    block_on(a.handle_invoke_body(body.as_bytes())).expect_err("publish fails");
    // WHEN SNS recovers and two instances run the schedule at once
    let b = Processor::new(
        Detector::new(common::seed_config()),
        std::sync::Arc::clone(&shared),
        RecordingSink::default(),
    );
    let c = Processor::new(
        Detector::new(common::seed_config()),
        std::sync::Arc::clone(&shared),
        RecordingSink::default(),
    );
    let (rb, rc) =
        block_on(async { futures_util::join!(b.handle_schedule(), c.handle_schedule()) });
    rb.expect("b");
    rc.expect("c");
    // THEN exactly one of them published it, and the outbox is empty
    assert_eq!(b.sink().published().len() + c.sink().published().len(), 1);
    assert!(shared.undelivered().is_empty());
    // AND later runs publish nothing more
    block_on(b.handle_schedule()).expect("again");
    assert_eq!(b.sink().published().len() + c.sink().published().len(), 1);
}

#[test]
fn a_claim_keeps_others_off_an_alert_only_until_shortly_after_its_invocations_deadline() {
    let shared = std::sync::Arc::new(MemoryStore::new());
    let clock = ManualClock::at(1_000_000);
    let make = || {
        Processor::new(
            Detector::new(common::seed_config()),
            std::sync::Arc::clone(&shared),
            RecordingSink::default(),
        )
        .with_clock(clock.clone())
    };
    // GIVEN an alert claimed by an invocation with a 60-second deadline that
    // then died before publishing (its claim is never released)
    let a = make();
    a.sink().fail(true);
    let body = invoke_body(GROUP, "s1", &burst("5.5.5.5", 10, T0));
    block_on(a.handle_invoke_body(body.as_bytes())).expect_err("publish fails");
    let claim = eks_audit_detector::window::Claim {
        token: "crashed".into(),
        until_ms: clock.now_ms() + DEFAULT_BUDGET_MS + CLAIM_MARGIN_MS,
    };
    let mut stored = shared.snapshot().remove(KEY).expect("stored");
    assert_eq!(stored.state.claim_due(&claim, clock.now_ms()).len(), 1);
    block_on(shared.save(KEY, &stored.state, Some(stored.version))).expect("claimed");
    // WHEN the schedule runs inside the lease: nothing is published
    let b = make();
    block_on(b.handle_schedule()).expect("inside the lease");
    assert!(b.sink().published().is_empty());
    // THEN once the lease ends, 90 seconds on, it is delivered once
    clock.advance(DEFAULT_BUDGET_MS + CLAIM_MARGIN_MS);
    const { assert!(DEFAULT_BUDGET_MS + CLAIM_MARGIN_MS <= 2 * 60_000) };
    block_on(b.handle_schedule()).expect("after the lease");
    assert_eq!(b.sink().published().len(), 1);
}

fn counting(store: CountingStore) -> Processor<CountingStore, RecordingSink> {
    Processor::new(
        Detector::new(common::seed_config()),
        store,
        RecordingSink::default(),
    )
}

#[test]
fn one_keys_permanent_failure_costs_no_other_key_its_alert() {
    // GIVEN DynamoDB refuses every write of 6.6.6.6's key
    let p = counting(CountingStore::refusing("6.6.6.6"));
    let mut msgs = burst("6.6.6.6", 10, T0);
    msgs.extend(burst("5.5.5.5", 10, T0));
    msgs.extend(burst("7.7.7.7", 10, T0));
    let body = invoke_body(GROUP, "s1", &msgs);
    // WHEN the batch is handled
    let report = block_on(p.handle_invoke_body(body.as_bytes()))
        .expect("a permanent key failure does not fail the invocation");
    // THEN the other keys alert, and the failure is counted
    let ips: Vec<String> = p
        .sink()
        .published()
        .into_iter()
        .map(|a| a.source_ip)
        .collect();
    assert_eq!(ips.len(), 2, "{ips:?}");
    assert!(ips.contains(&"5.5.5.5".to_owned()) && ips.contains(&"7.7.7.7".to_owned()));
    assert_eq!(report.key_failures, 1);
    // AND the alert the refused key decided is not silently gone: it is
    // counted (and written whole to the log)
    assert_eq!(report.alerts_dropped, 1);
}

#[test]
fn a_store_outage_fails_the_invocation_and_the_retry_counts_once() {
    let p = processor();
    let body = invoke_body(GROUP, "s1", &burst("5.5.5.5", 12, T0));
    p.store().set_unavailable(true);
    let err = block_on(p.handle_invoke_body(body.as_bytes())).expect_err("must fail");
    assert_eq!(err.error_type(), "StateStoreUnavailable");
    assert!(p.sink().published().is_empty());
    p.store().set_unavailable(false);
    block_on(p.handle_invoke_body(body.as_bytes())).expect("retry");
    block_on(p.handle_invoke_body(body.as_bytes())).expect("redelivery");
    assert_eq!(p.sink().published().len(), 1);
}

#[test]
fn a_sustained_scanner_costs_almost_no_state_requests() {
    // GIVEN one address sending 5 forbidden requests every 15 seconds for
    // 100 minutes (400 batches), handled by one warm instance
    // (the wall clock moves with them: the cluster is noted as heard from
    // every 15 minutes)
    let clock = ManualClock::at(T0);
    let p = counting(CountingStore::default()).with_clock(clock.clone());
    let batches = 400;
    for b in 0..batches {
        let body = common::scanner_batch(GROUP, b, T0);
        block_on(p.handle_invoke_body(body.as_bytes())).expect("batch");
        clock.advance(15_000);
    }
    // THEN it raised one alert per 30-minute window, as before...
    let alerts = p.sink().published();
    assert_eq!(
        alerts.len(),
        4,
        "{:?}",
        alerts.iter().map(|a| &a.window_start).collect::<Vec<_>>()
    );
    // ...for at most 0.1 state requests per batch
    let per_batch = p.store().requests() as f64 / batches as f64;
    eprintln!(
        "sustained scanner: {} state requests for {batches} batches ({per_batch:.3} per batch)",
        p.store().requests()
    );
    assert!(per_batch <= 0.1, "{per_batch} state requests per batch");
}

#[test]
fn a_sustained_scanner_delivered_twice_to_two_instances_costs_almost_nothing() {
    // GIVEN two warm instances over one table, and every batch of a scanner
    // (5 forbidden requests every 15 s for 100 minutes) delivered to both
    let store = std::sync::Arc::new(CountingStore::default());
    let make = || {
        Processor::new(
            Detector::new(common::seed_config()),
            std::sync::Arc::clone(&store),
            RecordingSink::default(),
        )
    };
    let clock = ManualClock::at(T0);
    let (a, b) = (
        make().with_clock(clock.clone()),
        make().with_clock(clock.clone()),
    );
    let batches = 400;
    for n in 0..batches {
        let body = common::scanner_batch(GROUP, n, T0);
        block_on(a.handle_invoke_body(body.as_bytes())).expect("first delivery");
        block_on(b.handle_invoke_body(body.as_bytes())).expect("second delivery");
        clock.advance(15_000);
    }
    // THEN one alert per 30-minute window, none lost, none doubled...
    let mut alerts: Vec<String> = a
        .sink()
        .published()
        .into_iter()
        .chain(b.sink().published())
        .map(|x| x.alert_id)
        .collect();
    alerts.sort();
    let all = alerts.len();
    alerts.dedup();
    assert_eq!((all, alerts.len()), (4, 4));
    // ...for at most 0.1 state requests per delivered batch
    let per_batch = store.requests() as f64 / (2 * batches) as f64;
    eprintln!(
        "sustained scanner, two instances, every batch twice: {} state requests for {} batches ({per_batch:.3} per batch)",
        store.requests(),
        2 * batches
    );
    assert!(per_batch <= 0.1, "{per_batch} state requests per batch");
}

#[test]
fn one_request_with_a_5000_entry_forwarded_chain_makes_a_handful_of_alerts() {
    let p = processor();
    let msg = forwarded_pod_scan("chain", 5000, "curl/8.5.0");
    let body = invoke_body(GROUP, "s1", &[(T0, msg)]);
    let started = std::time::Instant::now();
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    let elapsed = started.elapsed();
    // the first three distinct addresses and the connection's own
    let mut ips: Vec<String> = p
        .sink()
        .published()
        .into_iter()
        .map(|a| a.source_ip)
        .collect();
    ips.sort();
    assert_eq!(ips, ["11.0.0.7", "11.0.1.7", "11.0.2.7", "198.51.100.200"]);
    assert_eq!(
        report.scan.fanout_dropped[&eks_audit_detector::rules::pod_scan::META.id],
        4997
    );
    assert!(p
        .sink()
        .published()
        .iter()
        .all(|a| a.fanout_dropped == 4997));
    // milliseconds, not seconds (generous for a shared debug build)
    assert!(elapsed.as_millis() < 2000, "{elapsed:?}");
}

#[test]
fn oversized_fields_cannot_grow_state_or_alerts_or_block_other_alerts() {
    // GIVEN a burst whose every field is 100 KB, next to an ordinary burst
    let p = processor();
    let mut msgs: Vec<(i64, String)> = (0..10)
        .map(|i| {
            (
                T0 + i,
                oversized_403(&format!("big-{i}"), "9.9.9.9", 100_000),
            )
        })
        .collect();
    msgs.extend(burst("5.5.5.5", 10, T0));
    let body = invoke_body(GROUP, "s1", &msgs);
    block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    // THEN both alert
    let alerts = p.sink().published();
    assert_eq!(alerts.len(), 2);
    // AND every stored state and message stays small
    for v in p.store().snapshot().values() {
        let size = serde_json::to_string(&v.state).expect("json").len();
        assert!(size < 16 * 1024, "state of {} bytes", size);
    }
    for a in &alerts {
        let size = eks_audit_detector::sink::sns::message_body(a).len();
        assert!(size < 64 * 1024, "message of {size} bytes");
        assert!(a.subject().len() < 100);
    }
    let big = alerts
        .iter()
        .find(|a| a.source_ip == "9.9.9.9")
        .expect("big");
    assert!(big
        .sample
        .user_agent
        .as_deref()
        .is_some_and(|u| u.ends_with("bytes]")));
    assert!(!big.email_text().contains("<!here>") && !big.email_text().contains("@channel"));
}

#[test]
fn a_malformed_log_entry_costs_only_itself() {
    let p = processor();
    let mut json: serde_json::Value =
        serde_json::from_str(&common::batch_json(GROUP, "s1", &burst("5.5.5.5", 10, T0)))
            .expect("json");
    let events = json["logEvents"].as_array_mut().expect("events");
    events.push(serde_json::json!({"id": 7, "timestamp": "soon", "message": "x"}));
    events.push(serde_json::json!({"id": "a", "timestamp": 1.5, "message": "x"}));
    events.push(serde_json::json!({"id": "b", "timestamp": 1e300, "message": "x"}));
    events.push(serde_json::json!({"id": "c", "timestamp": -5, "message": "x"}));
    events.push(serde_json::json!("not an object"));
    events.push(serde_json::json!([1, 2]));
    let body = serde_json::json!({"awslogs": {"data": common::encode_data(&json.to_string())}})
        .to_string();
    let report = block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    assert_eq!(p.sink().published().len(), 1);
    assert_eq!(report.scan.skipped_total(), 6);
}

#[test]
fn a_batch_larger_than_one_slice_counts_exactly_once_even_when_redelivered() {
    use eks_audit_detector::handler::EVENTS_PER_SLICE;
    // GIVEN a threshold only the whole batch reaches, spread over 3 slices
    let p = Processor::new(
        Detector::new(DetectorConfig {
            multiple_403_threshold: (2 * EVENTS_PER_SLICE + 100) as u64,
            ..common::seed_config()
        }),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    let n = 2 * EVENTS_PER_SLICE + 100;
    let msgs: Vec<(i64, String)> = (0..n)
        .map(|i| {
            let id = format!("big-{i}");
            (
                T0 + i as i64,
                with(event("forbidden_public.json"), &id, "5.5.5.5"),
            )
        })
        .collect();
    let body = invoke_body(GROUP, "s1", &msgs);
    block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    assert_eq!(p.sink().published().len(), 1);
    assert_eq!(p.sink().published()[0].event_count, n as u64);
    // WHEN the same batch is delivered again
    let before = p.store().snapshot();
    let again = block_on(p.handle_invoke_body(body.as_bytes())).expect("again");
    // THEN nothing changes
    assert_eq!(p.store().snapshot(), before);
    assert_eq!(again.alerts_raised, 0);
    assert_eq!(p.sink().published().len(), 1);
}

#[test]
fn during_an_sns_outage_an_instance_retries_undelivered_alerts_at_most_once_a_minute() {
    let clock = ManualClock::at(5_000_000);
    let p = processor().with_clock(clock.clone());
    p.sink().fail(true);
    let first = invoke_body(GROUP, "s1", &burst("5.5.5.5", 10, T0));
    block_on(p.handle_invoke_body(first.as_bytes())).expect_err("publish fails");
    // WHEN more batches (of other addresses) arrive within the minute
    let swept = |stream: &str, ip: &str| {
        let body = invoke_body(GROUP, stream, &burst(ip, 1, T0));
        block_on(p.handle_invoke_body(body.as_bytes()))
            .expect("no alert of its own")
            .outbox_found
    };
    clock.advance(1000);
    // THEN none of them retries the alert yet...
    let sweeps = [swept("s2", "6.6.6.6"), swept("s3", "7.7.7.7")];
    assert_eq!(sweeps, [0, 0], "inside the minute after the failed publish");
    // ...and the first one a minute later does
    clock.advance(60_000);
    p.sink().fail(false);
    assert_eq!(swept("s4", "8.8.8.8"), 1);
    assert_eq!(p.sink().published().len(), 1);
    assert_eq!(
        swept("s5", "9.9.9.9"),
        0,
        "delivered: nothing owed any more"
    );
}

#[test]
fn a_write_that_lands_between_our_read_and_write_is_kept_and_ours_is_reapplied() {
    // GIVEN 9 matches stored, then another invocation adds one more match
    // (batch "other") between this invocation's read and its write
    let p = processor();
    let first = invoke_body(GROUP, "s1", &burst("5.5.5.5", 9, T0));
    block_on(p.handle_invoke_body(first.as_bytes())).expect("first");
    let other = {
        let mut v = stored(&p, KEY);
        v.state.count += 1;
        v
    };
    p.store().before_next_save(KEY, move |items| {
        let version = items[KEY].version + 1;
        items.insert(KEY.to_owned(), Versioned { version, ..other });
    });
    // WHEN this invocation's batch of one more match is written
    let second = invoke_body(GROUP, "s2", &burst("5.5.5.5", 1, T0 + 60_000));
    let report = block_on(p.handle_invoke_body(second.as_bytes())).expect("second");
    // THEN it lost the race once, re-read, and counted on top of the other
    // writer's 10: 11, and the one alert the window owes
    assert_eq!(report.state_conflicts, 1);
    assert_eq!(stored(&p, KEY).state.count, 11);
    assert_eq!(p.sink().published().len(), 1);
    assert_eq!(p.sink().published()[0].event_count, 11);
}

fn sample_event(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).expect("sample event")
}

#[test]
fn a_tamper_alert_waits_in_the_outbox_when_sns_is_down_and_goes_out_once() {
    let p = processor();
    let event = sample_event("08-subscription-filter-deleted.json");
    // GIVEN SNS down when the subscription filter is deleted
    p.sink().fail(true);
    let err = block_on(p.handle_invoke_body(&event)).expect_err("publish fails");
    assert!(matches!(err, HandlerError::Publish { .. }));
    // THEN the alert is safe in the outbox
    assert_eq!(p.store().undelivered().len(), 1);
    // AND a redelivery of the CloudTrail event adds nothing
    let _ = block_on(p.handle_invoke_body(&event));
    assert_eq!(p.store().undelivered().len(), 1);
    // WHEN SNS is back: the schedule delivers it, once
    p.sink().fail(false);
    block_on(p.handle_schedule()).expect("sweep");
    block_on(p.handle_schedule()).expect("sweep again");
    block_on(p.handle_invoke_body(&event)).expect("another redelivery");
    let published = p.sink().published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].rule_id, eks_audit_detector::tamper::RULE_ID);
    assert!(p.store().undelivered().is_empty());
}

#[test]
fn a_retried_batch_still_completes_its_window_after_a_later_one_opened_the_next() {
    // GIVEN 9 of 10 matches in the window starting at T0
    let p = processor();
    let nine: Vec<(i64, String)> = burst("5.5.5.5", 9, T0);
    block_on(p.handle_invoke_body(invoke_body(GROUP, "s1", &nine).as_bytes())).expect("nine");
    // AND the batch with the 10th (T0+25m) fails on this key...
    let tenth = burst("5.5.5.5", 1, T0 + 25 * 60_000);
    let retried = invoke_body(GROUP, "s2", &tenth);
    p.store().set_unavailable(true);
    block_on(p.handle_invoke_body(retried.as_bytes())).expect_err("DynamoDB down");
    p.store().set_unavailable(false);
    // ...while a later batch (T0+31m) opens the next window
    let later = burst("5.5.5.5", 1, T0 + 31 * 60_000);
    block_on(p.handle_invoke_body(invoke_body(GROUP, "s3", &later).as_bytes())).expect("later");
    // WHEN the failed batch is retried, twice
    block_on(p.handle_invoke_body(retried.as_bytes())).expect("retry");
    block_on(p.handle_invoke_body(retried.as_bytes())).expect("retry again");
    // THEN the first window alerts once, with its exact count
    let alerts = p.sink().published();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].event_count, 10);
    assert_eq!(alerts[0].window_start, "2024-05-14T00:00:00.000Z");
    let state = &p.store().snapshot()[KEY].state;
    assert_eq!((state.count, state.past[0].count), (1, 10));
}

#[test]
fn a_key_that_never_saturates_counts_no_redelivery_twice_however_many_batches_it_sees() {
    // GIVEN refused pod listings (PodScan alerts LOW, never saturates
    // without a successful one) in 400 batches within one hour
    let p = processor();
    let listing = |n: i64| {
        let mut ev = event("anonymous_pod_list_refused.json");
        ev["auditID"] = serde_json::Value::from(format!("scan-{n}"));
        (T0 + n * 9000, ev.to_string())
    };
    let bodies: Vec<String> = (0..400)
        .map(|n| invoke_body(GROUP, &format!("s{n}"), &[listing(n)]))
        .collect();
    for b in &bodies {
        block_on(p.handle_invoke_body(b.as_bytes())).expect("batch");
    }
    let before = p.store().snapshot();
    let alerted = p.sink().published().len();
    assert!(alerted >= 1);
    // WHEN every one of them is delivered again
    for b in &bodies {
        block_on(p.handle_invoke_body(b.as_bytes())).expect("redelivery");
    }
    // THEN nothing changed and nothing alerted again
    assert_eq!(p.store().snapshot(), before);
    assert_eq!(p.sink().published().len(), alerted);
}

#[test]
fn a_failure_queue_replay_14_days_later_raises_nothing_again() {
    let clock = ManualClock::at(T0 + 60_000);
    let p = processor().with_clock(clock.clone());
    // GIVEN 9 matches counted (no alert yet) and, in another batch, the 10th
    let nine = invoke_body(GROUP, "s1", &burst("5.5.5.5", 9, T0));
    let tenth = invoke_body(GROUP, "s2", &burst("5.5.5.5", 1, T0 + 20_000));
    block_on(p.handle_invoke_body(nine.as_bytes())).expect("nine");
    block_on(p.handle_invoke_body(tenth.as_bytes())).expect("tenth");
    assert_eq!(p.sink().published().len(), 1);
    // WHEN both are replayed from the failure queue 14 days later
    clock.advance(14 * 24 * 60 * 60_000);
    block_on(p.handle_invoke_body(nine.as_bytes())).expect("replay");
    block_on(p.handle_invoke_body(tenth.as_bytes())).expect("replay");
    // THEN nothing is counted or raised again
    assert_eq!(p.sink().published().len(), 1);
    assert_eq!(p.store().snapshot()[KEY].state.count, 10);
}

#[test]
fn a_future_timestamp_cannot_make_real_matches_late() {
    let clock = ManualClock::at(T0 + 60_000);
    let p = processor().with_clock(clock.clone());
    // GIVEN a forged log event stamped a day ahead, from the scanner's address
    let forged = invoke_body(GROUP, "f", &burst("5.5.5.5", 1, T0 + 24 * 60 * 60_000));
    let r = block_on(p.handle_invoke_body(forged.as_bytes())).expect("forged");
    assert_eq!(r.future_matches, 1);
    // WHEN the real requests arrive
    let real = invoke_body(GROUP, "s1", &burst("5.5.5.5", 10, T0));
    let r = block_on(p.handle_invoke_body(real.as_bytes())).expect("real");
    // THEN they count and alert
    assert_eq!(r.late_matches, 0);
    assert_eq!(p.sink().published().len(), 1);
}

#[test]
fn a_threshold_above_the_batch_memory_still_counts_no_redelivery_twice() {
    // GIVEN Multiple403 set to 1,000 and 400 batches of one 403 each, all
    // in one window (more batches than a key remembers)
    let p = Processor::new(
        Detector::new(DetectorConfig {
            multiple_403_threshold: 1000,
            ..common::seed_config()
        }),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    let bodies: Vec<String> = (0..400)
        .map(|n| invoke_body(GROUP, &format!("s{n}"), &burst("5.5.5.5", 1, T0 + n * 4000)))
        .collect();
    for b in &bodies {
        block_on(p.handle_invoke_body(b.as_bytes())).expect("batch");
    }
    let before = p.store().snapshot();
    assert_eq!(before[KEY].state.count, 400);
    // WHEN every batch is delivered again
    let mut late = 0;
    for b in &bodies {
        late += block_on(p.handle_invoke_body(b.as_bytes()))
            .expect("redelivery")
            .late_matches;
    }
    // THEN no count changed: a batch the key no longer remembers is older
    // than what it still counts, and is late
    assert_eq!(p.store().snapshot(), before);
    assert!(late > 0);
}

#[test]
fn a_cluster_whose_audit_log_goes_quiet_is_reported_once_per_silence() {
    let clock = ManualClock::at(T0);
    let p = processor().with_clock(clock.clone());
    let batch = |n: i64| invoke_body(GROUP, &format!("s{n}"), &burst("5.5.5.5", 1, T0 + n));
    // GIVEN batches from cluster prod for a while
    for n in 0..20 {
        block_on(p.handle_invoke_body(batch(n).as_bytes())).expect("batch");
        clock.advance(60_000);
    }
    // WHEN it goes quiet: nothing during the first 60 minutes...
    clock.advance(50 * 60_000);
    block_on(p.handle_schedule()).expect("schedule");
    let silent = |p: &Processor<MemoryStore, RecordingSink>| {
        p.sink()
            .published()
            .into_iter()
            .filter(|a| a.rule_id == eks_audit_detector::silence::RULE_ID)
            .collect::<Vec<_>>()
    };
    assert!(silent(&p).is_empty());
    // ...then one report, naming the cluster, however often the schedule runs
    clock.advance(15 * 60_000);
    block_on(p.handle_schedule()).expect("schedule");
    clock.advance(60_000);
    block_on(p.handle_schedule()).expect("schedule");
    let reports = silent(&p);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].cluster, "prod");
    assert_eq!(reports[0].severity, Severity::High);
    // AND when it is heard again and then goes quiet again: a new report
    block_on(p.handle_invoke_body(batch(100).as_bytes())).expect("back");
    clock.advance(70 * 60_000);
    block_on(p.handle_schedule()).expect("schedule");
    let reports = silent(&p);
    assert_eq!(reports.len(), 2);
    assert_ne!(reports[0].alert_id, reports[1].alert_id);
}

#[test]
fn a_silence_report_waits_in_the_outbox_when_sns_is_down() {
    let clock = ManualClock::at(T0);
    let p = processor().with_clock(clock.clone());
    let body = invoke_body(GROUP, "s", &burst("5.5.5.5", 1, T0));
    block_on(p.handle_invoke_body(body.as_bytes())).expect("batch");
    clock.advance(61 * 60_000);
    p.sink().fail(true);
    let _ = block_on(p.handle_schedule());
    assert_eq!(p.store().undelivered().len(), 1);
    p.sink().fail(false);
    block_on(p.handle_schedule()).expect("schedule");
    block_on(p.handle_schedule()).expect("schedule");
    let published = p.sink().published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].rule_id, eks_audit_detector::silence::RULE_ID);
}

/// Batches whose events are stamped far in the future (year 9999) are
/// remembered until then, so that a redelivery is still recognised. Once a
/// key remembers more than it keeps, forgetting the oldest must not make
/// the key's real matches late: the key stays able to alert.
#[test]
fn future_stamped_batches_do_not_blind_a_key_when_it_forgets_batches() {
    const FAR: i64 = 253_402_300_000_000; // year 9999, accepted as a timestamp
    let clock = ManualClock::at(T0);
    let p = processor().with_clock(clock.clone());
    // GIVEN an attacker who can write to the log group: 29 windows of 9
    // forged refusals from 5.5.5.5 (one per batch, stamped in year 9999,
    // so clamped to arrival), never reaching the threshold of 10
    let mut n = 0;
    for _window in 0..29 {
        for _ in 0..9 {
            let msg = with(
                event("forbidden_public.json"),
                &format!("forged-{n}"),
                "5.5.5.5",
            );
            let body = invoke_body(GROUP, &format!("forged-{n}"), &[(FAR, msg)]);
            block_on(p.handle_invoke_body(body.as_bytes())).expect("forged batch");
            clock.advance(1_000);
            n += 1;
        }
        clock.advance(31 * 60_000);
    }
    assert!(
        p.sink().published().is_empty(),
        "no alert during preparation"
    );
    // WHEN the real scanner at 5.5.5.5 is refused 10 times, now
    let now = clock.now_ms();
    let report = block_on(
        p.handle_invoke_body(invoke_body(GROUP, "real", &burst("5.5.5.5", 10, now)).as_bytes()),
    )
    .expect("real batch");
    // THEN it should alert; observed: every match is late, no alert
    eprintln!(
        "late_matches={} late_before={}",
        report.late_matches,
        stored(&p, KEY).state.late_before
    );
    assert_eq!(
        p.sink().published().len(),
        1,
        "late_matches={}",
        report.late_matches
    );
}

/// The same in seconds: after one alert, each batch moves the alerted
/// window's start back by 1 ms (a change, so the batch is remembered) and
/// carries one refusal stamped 2 hours ahead (as far as `PutLogEvents`
/// allows). A burst 40 minutes later still alerts.
#[test]
fn extending_an_alerted_window_with_future_stamps_does_not_blind_the_key() {
    // PutLogEvents accepts timestamps up to 2 hours ahead
    const FAR: i64 = T0 + 119 * 60_000;
    let clock = ManualClock::at(T0);
    let p = processor().with_clock(clock.clone());
    // one forged burst, stamped 2 hours ahead (clamped to arrival + 60 s)
    let forged: Vec<(i64, String)> = burst("5.5.5.5", 10, T0)
        .into_iter()
        .map(|(_, m)| (FAR, m))
        .collect();
    block_on(p.handle_invoke_body(invoke_body(GROUP, "first", &forged).as_bytes()))
        .expect("first burst");
    assert_eq!(p.sink().published().len(), 1);
    for k in 1..=257 {
        let back = with(
            event("forbidden_public.json"),
            &format!("back-{k}"),
            "5.5.5.5",
        );
        let fwd = with(
            event("forbidden_public.json"),
            &format!("fwd-{k}"),
            "5.5.5.5",
        );
        let body = invoke_body(
            GROUP,
            &format!("x-{k}"),
            &[(T0 + 60_000 - k, back), (FAR, fwd)],
        );
        block_on(p.handle_invoke_body(body.as_bytes())).expect("batch");
        clock.advance(100);
    }
    let st = stored(&p, KEY).state;
    eprintln!(
        "applied={} late_before={} first_seen={} window_start={}",
        st.applied.len(),
        st.late_before,
        st.first_seen,
        st.window_start
    );
    // 40 minutes later (next window), a real burst from 5.5.5.5
    clock.advance(40 * 60_000);
    let now = clock.now_ms();
    let report = block_on(
        p.handle_invoke_body(invoke_body(GROUP, "real", &burst("5.5.5.5", 10, now)).as_bytes()),
    )
    .expect("real batch");
    assert_eq!(
        p.sink().published().len(),
        2,
        "late_matches={}",
        report.late_matches
    );
}
