//! The window engine: thresholds, one alert per window, new windows, late
//! events, escalation, redelivery; and properties over arbitrary sequences.

use std::collections::BTreeSet;

use eks_audit_detector::rules::{Match, RuleId, Sample, Severity};
use eks_audit_detector::window::{
    apply_batch, Applied, BatchInfo, WindowParams, WindowState, PENDING_GRACE_MS,
};
use proptest::prelude::*;

const MIN: i64 = 60_000;
const T0: i64 = 1_715_644_800_000;

fn m(rule: RuleId, at_ms: i64, severity: Severity) -> Match {
    Match {
        rule,
        dedup: "prod_403_5.5.5.5".into(),
        at_ms,
        source_ip: "5.5.5.5".into(),
        title: format!("match at {at_ms}"),
        severity,
        sample: Sample::default(),
        facts: vec![("user:username", "system:anonymous".into())],
    }
}

fn info(at: i64) -> Match {
    m(RuleId::Multiple403, at, Severity::Info)
}

fn batch(id: &str) -> BatchInfo<'_> {
    BatchInfo {
        id,
        at_ms: 0,
        cluster: "prod",
        log_group: "/aws/eks/prod/cluster",
        account: "123456789012",
        now_ms: 0,
    }
}

const P403: WindowParams = WindowParams {
    threshold: 10,
    window_ms: 30 * MIN,
};

fn apply(state: Option<WindowState>, params: WindowParams, id: &str, ms: &[Match]) -> Applied {
    let refs: Vec<&Match> = ms.iter().collect();
    apply_batch(state, params, &batch(id), &refs).expect("non-empty batch")
}

#[test]
fn below_threshold_raises_nothing() {
    let ms: Vec<Match> = (0..9).map(|i| info(T0 + i * 1000)).collect();
    let r = apply(None, P403, "b1", &ms);
    assert!(r.alerts.is_empty());
    assert_eq!(r.state.count, 9);
}

#[test]
fn crossing_the_threshold_raises_one_alert_for_the_window() {
    // GIVEN 25 matches within 30 minutes, split over three batches
    let ms: Vec<Match> = (0..25).map(|i| info(T0 + i * MIN)).collect();
    let r1 = apply(None, P403, "b1", &ms[..8]);
    let r2 = apply(Some(r1.state), P403, "b2", &ms[8..16]);
    let r3 = apply(Some(r2.state), P403, "b3", &ms[16..]);
    // THEN exactly one alert, raised by the 10th match
    assert!(r1.alerts.is_empty());
    assert_eq!(r2.alerts.len(), 1);
    assert!(r3.alerts.is_empty());
    let a = &r2.alerts[0];
    assert_eq!(a.event_count, 10);
    assert_eq!(a.severity, Severity::Info);
    assert_eq!(a.window_start, "2024-05-14T00:00:00.000Z");
    assert_eq!(a.window_end, "2024-05-14T00:30:00.000Z");
    assert_eq!(a.last_seen, "2024-05-14T00:09:00.000Z");
    assert_eq!(a.title, format!("match at {T0}"));
    assert_eq!(r3.state.count, 25);
}

#[test]
fn a_match_after_the_period_opens_a_new_window_that_can_alert_again() {
    let mut ms: Vec<Match> = (0..10).map(|i| info(T0 + i * 1000)).collect();
    // exactly at start + period: outside the first window
    ms.extend((0..10).map(|i| info(T0 + 30 * MIN + i * 1000)));
    let r = apply(None, P403, "b1", &ms);
    assert_eq!(r.alerts.len(), 2);
    assert_ne!(r.alerts[0].alert_id, r.alerts[1].alert_id);
    assert_eq!(r.state.window_start, T0 + 30 * MIN);
    assert_eq!(r.state.count, 10);
}

#[test]
fn a_match_just_inside_the_period_joins_the_window() {
    let ms = vec![info(T0), info(T0 + 30 * MIN - 1)];
    let r = apply(None, P403, "b1", &ms);
    assert_eq!(r.state.window_start, T0);
    assert_eq!(r.state.count, 2);
}

#[test]
fn late_matches_join_the_open_window() {
    let r1 = apply(None, P403, "b1", &[info(T0 + 10 * MIN)]);
    let r2 = apply(Some(r1.state), P403, "b2", &[info(T0), info(T0 + MIN)]);
    assert_eq!(r2.state.window_start, T0 + 10 * MIN);
    assert_eq!(r2.state.count, 3);
    assert_eq!(r2.state.first_seen, T0);
}

#[test]
fn matches_of_a_batch_are_applied_in_time_order() {
    // Out of order within the batch: the earliest opens the window.
    let ms = vec![info(T0 + 31 * MIN), info(T0), info(T0 + MIN)];
    let r = apply(None, P403, "b1", &ms);
    assert_eq!(r.state.window_start, T0 + 31 * MIN);
    assert_eq!(r.state.count, 1);
}

#[test]
fn a_redelivered_batch_changes_nothing() {
    let ms: Vec<Match> = (0..10).map(|i| info(T0 + i * 1000)).collect();
    let r1 = apply(None, P403, "b1", &ms);
    assert_eq!(r1.alerts.len(), 1);
    let r2 = apply(Some(r1.state.clone()), P403, "b1", &ms);
    assert!(r2.duplicate);
    assert!(r2.alerts.is_empty());
    assert_eq!(r2.state, r1.state);
}

#[test]
fn pod_scan_escalates_once_from_low_to_high() {
    let p = WindowParams {
        threshold: 1,
        window_ms: 60 * MIN,
    };
    let refused = m(RuleId::PodScan, T0, Severity::Low);
    let r1 = apply(None, p, "b1", std::slice::from_ref(&refused));
    assert_eq!(r1.alerts.len(), 1);
    assert_eq!(r1.alerts[0].severity, Severity::Low);
    assert!(!r1.alerts[0].escalation);
    // more refusals: nothing new
    let r2 = apply(
        Some(r1.state),
        p,
        "b2",
        &[m(RuleId::PodScan, T0 + MIN, Severity::Low)],
    );
    assert!(r2.alerts.is_empty());
    // an allowed listing in the same window: one escalation at HIGH
    let r3 = apply(
        Some(r2.state),
        p,
        "b3",
        &[m(RuleId::PodScan, T0 + 2 * MIN, Severity::High)],
    );
    assert_eq!(r3.alerts.len(), 1);
    assert_eq!(r3.alerts[0].severity, Severity::High);
    assert!(r3.alerts[0].escalation);
    assert_eq!(r3.alerts[0].event_count, 3);
    // and no more after that
    let r4 = apply(
        Some(r3.state),
        p,
        "b4",
        &[m(RuleId::PodScan, T0 + 3 * MIN, Severity::High)],
    );
    assert!(r4.alerts.is_empty());
}

#[test]
fn a_first_match_that_succeeds_alerts_high_without_escalation() {
    let p = WindowParams {
        threshold: 1,
        window_ms: 60 * MIN,
    };
    let r = apply(
        None,
        p,
        "b1",
        &[
            m(RuleId::PodScan, T0, Severity::High),
            m(RuleId::PodScan, T0 + 1, Severity::Low),
        ],
    );
    assert_eq!(r.alerts.len(), 1);
    assert_eq!(r.alerts[0].severity, Severity::High);
    assert!(!r.alerts[0].escalation);
}

#[test]
fn alert_ids_are_deterministic() {
    let ms: Vec<Match> = (0..10).map(|i| info(T0 + i * 1000)).collect();
    let a = apply(None, P403, "b1", &ms).alerts;
    let b = apply(None, P403, "other-batch", &ms).alerts;
    assert_eq!(a[0].alert_id, b[0].alert_id);
    assert_eq!(a[0].alert_id.len(), 32);
}

#[test]
fn pending_alerts_survive_until_marked_sent_and_across_windows() {
    let ms: Vec<Match> = (0..10).map(|i| info(T0 + i * 1000)).collect();
    let r1 = apply(None, P403, "b1", &ms);
    assert_eq!(r1.state.pending.len(), 1);
    let r2 = apply(Some(r1.state), P403, "b2", &[info(T0 + 40 * MIN)]);
    assert_eq!(
        r2.state.pending.len(),
        1,
        "a new window keeps undelivered alerts"
    );
    let mut st = r2.state;
    let id = st.pending[0].alert.alert_id.clone();
    st.mark_sent(&[id]);
    assert!(st.pending.is_empty());
}

#[test]
fn only_the_raising_batch_delivers_a_fresh_pending_alert() {
    // GIVEN batch b1 raised an alert at wall-clock time 1000
    let ms: Vec<Match> = (0..10).map(|i| info(T0 + i * 1000)).collect();
    let refs: Vec<&Match> = ms.iter().collect();
    let b1 = BatchInfo {
        now_ms: 1000,
        ..batch("b1")
    };
    let st = apply_batch(None, P403, &b1, &refs).expect("applied").state;
    // THEN b1 (or its retry) delivers it, a concurrent batch does not...
    assert_eq!(st.deliverable("b1", 1000).len(), 1);
    assert!(st.deliverable("b2", 1000 + PENDING_GRACE_MS - 1).is_empty());
    // ...until it has been pending longer than any invocation can run
    assert_eq!(st.deliverable("b2", 1000 + PENDING_GRACE_MS).len(), 1);
}

#[test]
fn summary_tallies_are_bounded() {
    let ms: Vec<Match> = (0..50)
        .map(|i| {
            let mut x = info(T0 + i);
            x.facts = vec![("user:username", format!("user-{i}"))];
            x
        })
        .collect();
    let r = apply(None, P403, "b1", &ms);
    assert_eq!(r.state.tallies["user:username"].len(), 20);
    assert_eq!(r.state.overflow, 30);
    assert_eq!(r.state.count, 50);
}

/// Reference model: greedy windows over sorted times; a window alerts when it
/// holds at least `threshold` matches.
fn model_alerts(times: &[i64], p: WindowParams) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut alerts = 0;
    let mut start: Option<i64> = None;
    let mut count = 0;
    for t in sorted {
        if start.is_none_or(|s| t >= s + p.window_ms) {
            if count >= p.threshold {
                alerts += 1;
            }
            start = Some(t);
            count = 0;
        }
        count += 1;
    }
    if count >= p.threshold {
        alerts += 1;
    }
    alerts
}

fn times_strategy() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(0i64..(4 * 60 * MIN), 1..80).prop_map(|mut v| {
        v.sort();
        v.into_iter().map(|t| T0 + t).collect()
    })
}

proptest! {
    #[test]
    fn alerts_match_the_reference_model(times in times_strategy(), threshold in 1u64..12, minutes in 1i64..90) {
        let p = WindowParams { threshold, window_ms: minutes * MIN };
        let ms: Vec<Match> = times.iter().map(|t| info(*t)).collect();
        let r = apply(None, p, "b", &ms);
        prop_assert_eq!(r.alerts.len(), model_alerts(&times, p));
        for a in &r.alerts {
            prop_assert!(a.event_count >= threshold);
        }
    }

    #[test]
    fn splitting_time_ordered_matches_into_batches_changes_nothing(
        times in times_strategy(),
        cuts in prop::collection::vec(0usize..80, 0..6),
        threshold in 1u64..12,
    ) {
        let p = WindowParams { threshold, window_ms: 30 * MIN };
        let ms: Vec<Match> = times.iter().map(|t| info(*t)).collect();
        let whole = apply(None, p, "whole", &ms);
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % (ms.len() + 1)).collect();
        bounds.extend([0, ms.len()]);
        bounds.sort();
        bounds.dedup();
        let mut state = None;
        let mut alerts = Vec::new();
        for (i, w) in bounds.windows(2).enumerate() {
            if w[0] == w[1] { continue; }
            let r = apply(state, p, &format!("b{i}"), &ms[w[0]..w[1]]);
            alerts.extend(r.alerts);
            state = Some(r.state);
        }
        let state = state.expect("at least one batch");
        prop_assert_eq!(state.count, whole.state.count);
        prop_assert_eq!(state.window_start, whole.state.window_start);
        let ids = |v: &[eks_audit_detector::alert::Alert]| v.iter().map(|a| a.alert_id.clone()).collect::<Vec<_>>();
        prop_assert_eq!(ids(&alerts), ids(&whole.alerts));
    }

    #[test]
    fn redelivering_any_batch_is_harmless(
        times in times_strategy(),
        split in 0usize..80,
        severities in prop::collection::vec(any::<bool>(), 80),
    ) {
        let p = WindowParams { threshold: 1, window_ms: 60 * MIN };
        let ms: Vec<Match> = times
            .iter()
            .zip(&severities)
            .map(|(t, high)| m(RuleId::PodScan, *t, if *high { Severity::High } else { Severity::Low }))
            .collect();
        let cut = split % (ms.len() + 1);
        let (first, second) = ms.split_at(cut);
        let mut state = None;
        let mut all_alerts = Vec::new();
        for (id, part) in [("b1", first), ("b2", second)] {
            if part.is_empty() { continue; }
            let r = apply(state.clone(), p, id, part);
            all_alerts.extend(r.alerts);
            let again = apply(Some(r.state.clone()), p, id, part);
            prop_assert!(again.duplicate);
            prop_assert!(again.alerts.is_empty());
            prop_assert_eq!(&again.state, &r.state);
            state = Some(r.state);
        }
        // Every alert id is unique, and per window at most one LOW and one HIGH.
        let ids: BTreeSet<_> = all_alerts.iter().map(|a| a.alert_id.clone()).collect();
        prop_assert_eq!(ids.len(), all_alerts.len());
        let per_window: BTreeSet<_> = all_alerts.iter().map(|a| (a.window_start.clone(), a.severity)).collect();
        prop_assert_eq!(per_window.len(), all_alerts.len());
    }
}
