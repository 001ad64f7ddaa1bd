//! The window engine: thresholds, one alert per window, new windows, late
//! events, escalation, saturation, redelivery; and properties over arbitrary
//! sequences.

use std::collections::BTreeSet;
use std::sync::Arc;

use eks_audit_detector::alert::Alert;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::rules::registry;
use eks_audit_detector::vocab::{Match, MatchedEvent, RuleId, Severity, WindowParams};
use eks_audit_detector::window::{
    apply_batch, Applied, BatchInfo, Decision, Outcome, WindowState, DEFAULT_HORIZON_MS,
    MAX_TALLY_BYTES,
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
        severity,
        event: Arc::new(MatchedEvent {
            title: format!("match at {at_ms}"),
            facts: vec![("user:username", "system:anonymous".into())],
            ..MatchedEvent::default()
        }),
        facts: Vec::new(),
    }
}

fn info(at: i64) -> Match {
    m(
        eks_audit_detector::rules::multiple_403::META.id,
        at,
        Severity::Info,
    )
}

fn batch(id: &str) -> BatchInfo<'_> {
    BatchInfo {
        id,
        cluster: "prod",
        log_group: "/aws/eks/prod/cluster",
        account: "123456789012",
        now_ms: 0,
        horizon_ms: DEFAULT_HORIZON_MS,
        stamped_until: 0,
    }
}

const P403: WindowParams = WindowParams {
    threshold: 10,
    window_ms: 30 * MIN,
    max_severity: Severity::Info,
};

const PSCAN: WindowParams = WindowParams {
    threshold: 1,
    window_ms: 60 * MIN,
    max_severity: Severity::High,
};

/// Renders an alert as the handler does, with the rule of the window.
fn render(st: &WindowState, d: Decision) -> Alert {
    let rules = registry(&DetectorConfig::default());
    let rule = rules
        .iter()
        .find(|r| r.meta().id == st.rule)
        .expect("a known rule");
    Alert::render(rule.as_ref(), st, d)
}

fn apply(state: Option<WindowState>, params: WindowParams, id: &str, ms: &[Match]) -> Applied {
    let refs: Vec<&Match> = ms.iter().collect();
    apply_batch(state, params, &batch(id), &refs, &render).expect("non-empty batch")
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
    // AND the saturated window absorbed the rest without a change to store
    assert_eq!(r3.outcome, Outcome::Unchanged);
    assert_eq!(r3.state.count, 10);
}

#[test]
fn a_saturated_window_absorbs_a_sustained_scanner_without_writes_or_memory() {
    let mut state = apply(
        None,
        P403,
        "b0",
        &(0..10).map(|i| info(T0 + i)).collect::<Vec<_>>(),
    )
    .state;
    let remembered = state.applied.len();
    for b in 1..200 {
        let ms: Vec<Match> = (0..5).map(|i| info(T0 + b * 5000 + i)).collect();
        let r = apply(Some(state), P403, &format!("b{b}"), &ms);
        assert_eq!(r.outcome, Outcome::Unchanged);
        assert!(r.alerts.is_empty());
        state = r.state;
    }
    assert_eq!(
        state.applied.len(),
        remembered,
        "unchanged batches are not remembered"
    );
    // The next window changes the state again.
    let r = apply(Some(state), P403, "next", &[info(T0 + 30 * MIN)]);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.state.count, 1);
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
fn matches_older_than_the_horizon_are_late_and_not_counted() {
    // GIVEN a window opened 7 hours after T0
    let r1 = apply(None, P403, "b1", &[info(T0 + 420 * MIN)]);
    // WHEN a batch brings matches from T0 (older than the 6h15m horizon)
    let r2 = apply(
        Some(r1.state.clone()),
        P403,
        "b2",
        &[info(T0), info(T0 + MIN)],
    );
    // THEN they are counted as late and the key is untouched
    assert_eq!(r2.late, 2);
    assert_eq!(r2.outcome, Outcome::Unchanged);
    assert_eq!(r2.state, r1.state);
    // AND a batch mixing late and current matches counts only the current
    let r3 = apply(
        Some(r1.state),
        P403,
        "b3",
        &[info(T0), info(T0 + 421 * MIN)],
    );
    assert_eq!((r3.late, r3.state.count), (1, 2));
    assert_eq!(r3.state.first_seen, T0 + 420 * MIN);
}

#[test]
fn an_earlier_match_moves_the_start_of_a_window_that_decided_nothing_yet() {
    // GIVEN a window opened at T0+10m by one API server's stream
    let r1 = apply(None, P403, "b1", &[info(T0 + 10 * MIN)]);
    // WHEN the other stream's batch arrives with a match 2 minutes earlier
    let r2 = apply(Some(r1.state), P403, "b2", &[info(T0 + 8 * MIN)]);
    // THEN the window starts there, as if the matches had come in order
    assert_eq!((r2.late, r2.state.count), (0, 2));
    assert_eq!(r2.state.window_start, T0 + 8 * MIN);
    // AND after the next window opened, a match between the two windows
    // starts that window earlier too: [8, 38) then [39, 69), as in order
    let r3 = apply(Some(r2.state), P403, "b3", &[info(T0 + 40 * MIN)]);
    let r4 = apply(Some(r3.state), P403, "b4", &[info(T0 + 39 * MIN)]);
    assert_eq!((r4.late, r4.state.count), (0, 2));
    assert_eq!(r4.state.window_start, T0 + 39 * MIN);
    assert_eq!(r4.state.past.len(), 1);
    assert_eq!(r4.state.past[0].count, 2);
}

#[test]
fn a_retried_match_still_completes_the_window_it_belongs_to() {
    // GIVEN 9 of 10 matches in the window starting at T0
    let nine: Vec<Match> = (0..9).map(|i| info(T0 + i * MIN)).collect();
    let r1 = apply(None, P403, "b1", &nine);
    assert!(r1.alerts.is_empty());
    // AND a later batch opened the next window at T0+31m
    let r2 = apply(Some(r1.state), P403, "b3", &[info(T0 + 31 * MIN)]);
    assert_eq!(r2.state.window_start, T0 + 31 * MIN);
    // WHEN the batch holding the 10th match (T0+25m) is retried now
    let r3 = apply(Some(r2.state), P403, "b2", &[info(T0 + 25 * MIN)]);
    // THEN it counts in its own window and raises that window's alert
    assert_eq!(r3.late, 0);
    assert_eq!(r3.alerts.len(), 1);
    let alert = &r3.alerts[0];
    assert_eq!(alert.event_count, 10);
    assert_eq!(alert.window_start, "2024-05-14T00:00:00.000Z");
    // AND the alert is the one sequential order would have raised
    let all: Vec<Match> = (0..9)
        .map(|i| info(T0 + i * MIN))
        .chain([info(T0 + 25 * MIN)])
        .collect();
    let in_order = apply(None, P403, "x", &all);
    assert_eq!(in_order.alerts[0].alert_id, alert.alert_id);
    // AND the open window is untouched, and a redelivery counts nothing
    assert_eq!(r3.state.count, 1);
    let again = apply(Some(r3.state), P403, "b2", &[info(T0 + 25 * MIN)]);
    assert_eq!(again.outcome, Outcome::Duplicate);
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
    assert_eq!(r2.outcome, Outcome::Duplicate);
    assert!(r2.alerts.is_empty());
    assert_eq!(r2.state, r1.state);
}

#[test]
fn pod_scan_escalates_once_from_low_to_high() {
    let p = PSCAN;
    let refused = m(
        eks_audit_detector::rules::pod_scan::META.id,
        T0,
        Severity::Low,
    );
    let r1 = apply(None, p, "b1", std::slice::from_ref(&refused));
    assert_eq!(r1.alerts.len(), 1);
    assert_eq!(r1.alerts[0].severity, Severity::Low);
    assert!(!r1.alerts[0].escalation);
    // more refusals: nothing new
    let r2 = apply(
        Some(r1.state),
        p,
        "b2",
        &[m(
            eks_audit_detector::rules::pod_scan::META.id,
            T0 + MIN,
            Severity::Low,
        )],
    );
    assert!(r2.alerts.is_empty());
    // an allowed listing in the same window: one escalation at HIGH
    let r3 = apply(
        Some(r2.state),
        p,
        "b3",
        &[m(
            eks_audit_detector::rules::pod_scan::META.id,
            T0 + 2 * MIN,
            Severity::High,
        )],
    );
    assert_eq!(r3.alerts.len(), 1);
    assert_eq!(r3.alerts[0].severity, Severity::High);
    assert!(r3.alerts[0].escalation);
    // (the second refusal changed nothing: the window had alerted at LOW)
    assert_eq!(r3.alerts[0].event_count, 2);
    // and no more after that: HIGH is as far as PodScan goes
    let r4 = apply(
        Some(r3.state),
        p,
        "b4",
        &[m(
            eks_audit_detector::rules::pod_scan::META.id,
            T0 + 3 * MIN,
            Severity::High,
        )],
    );
    assert!(r4.alerts.is_empty());
    assert_eq!(r4.outcome, Outcome::Unchanged);
}

#[test]
fn a_first_match_that_succeeds_alerts_high_without_escalation() {
    let p = PSCAN;
    let r = apply(
        None,
        p,
        "b1",
        &[
            m(
                eks_audit_detector::rules::pod_scan::META.id,
                T0,
                Severity::High,
            ),
            m(
                eks_audit_detector::rules::pod_scan::META.id,
                T0 + 1,
                Severity::Low,
            ),
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
fn a_batch_is_remembered_until_its_matches_are_late_whatever_the_wall_clock_says() {
    fn at(now_ms: i64, id: &str) -> BatchInfo<'_> {
        BatchInfo {
            now_ms,
            ..batch(id)
        }
    }
    let apply_at = |st: Option<WindowState>, now: i64, id: &str, ms: &[Match]| {
        let refs: Vec<&Match> = ms.iter().collect();
        apply_batch(st, P403, &at(now, id), &refs, &render).expect("applied")
    };
    let first = [info(T0), info(T0 + MIN)];
    let st = apply_at(None, 1000, "first-batch-id-0001", &first).state;
    // GIVEN a failure-queue replay of the same batch 14 days (wall clock) later
    let replay = apply_at(
        Some(st.clone()),
        14 * 24 * 60 * MIN,
        "first-batch-id-0001",
        &first,
    );
    // THEN it changes nothing
    assert_eq!(replay.outcome, Outcome::Duplicate);
    assert_eq!(replay.state.count, 2);
    // GIVEN the key moved on past the horizon (event time)
    let later = T0 + DEFAULT_HORIZON_MS + 60 * MIN;
    let moved = apply_at(Some(st), 2000, "b2", &[info(later)]).state;
    // THEN the first batch is forgotten, and its redelivery is late, not counted
    assert!(!moved.has_applied("first-batch-id-0001"));
    let again = apply_at(Some(moved), 3000, "first-batch-id-0001", &first);
    assert_eq!(again.late, 2);
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert!(again.alerts.is_empty());
}

#[test]
fn summary_tallies_are_bounded_in_count_and_bytes() {
    let p = WindowParams {
        threshold: 1000,
        ..P403
    };
    let ms: Vec<Match> = (0..50)
        .map(|i| {
            let mut x = info(T0 + i);
            x.facts = vec![("user:username", format!("user-{i}"))];
            x
        })
        .collect();
    let r = apply(None, p, "b1", &ms);
    // the event's own fact (system:anonymous) plus 19 distinct users
    assert_eq!(r.state.tallies["user:username"].len(), 20);
    assert_eq!(r.state.overflow, 31);
    assert_eq!(r.state.count, 50);
    // Long values fill the byte budget before the count.
    let ms: Vec<Match> = (0..20)
        .map(|i| {
            let mut x = info(T0 + i);
            x.facts = vec![("userAgent", format!("{i:03}{}", "x".repeat(250)))];
            x
        })
        .collect();
    let r = apply(None, p, "b1", &ms);
    let bytes: usize = r.state.tallies["userAgent"].keys().map(String::len).sum();
    assert!(bytes <= MAX_TALLY_BYTES, "{bytes}");
    assert_eq!(r.state.tallies["userAgent"].len(), MAX_TALLY_BYTES / 253);
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
        let p = WindowParams { threshold, window_ms: minutes * MIN, max_severity: Severity::Info };
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
        let p = WindowParams { threshold, window_ms: 30 * MIN, max_severity: Severity::Info };
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
        let p = PSCAN;
        let ms: Vec<Match> = times
            .iter()
            .zip(&severities)
            .map(|(t, high)| m(eks_audit_detector::rules::pod_scan::META.id, *t, if *high { Severity::High } else { Severity::Low }))
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
            prop_assert!(again.outcome != Outcome::Changed);
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

    #[test]
    fn a_retry_of_any_earlier_batch_after_later_ones_changes_nothing(
        times in times_strategy(),
        cuts in prop::collection::vec(0usize..80, 1..8),
        retry in 0usize..8,
        threshold in 1u64..6,
        minutes in 1i64..40,
    ) {
        // GIVEN time-ordered matches delivered as several batches
        let p = WindowParams { threshold, window_ms: minutes * MIN, max_severity: Severity::Info };
        let ms: Vec<Match> = times.iter().map(|t| info(*t)).collect();
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % (ms.len() + 1)).collect();
        bounds.extend([0, ms.len()]);
        bounds.sort();
        bounds.dedup();
        let batches: Vec<&[Match]> = bounds.windows(2).map(|w| &ms[w[0]..w[1]]).filter(|b| !b.is_empty()).collect();
        let mut state = None;
        for (i, b) in batches.iter().enumerate() {
            state = Some(apply(state, p, &format!("b{i}"), b).state);
        }
        let state = state.expect("at least one batch");
        // WHEN any one of them is delivered again, after all the others
        let i = retry % batches.len();
        let again = apply(Some(state.clone()), p, &format!("b{i}"), batches[i]);
        // THEN nothing is counted or alerted twice
        prop_assert!(again.alerts.is_empty());
        prop_assert!(again.outcome != Outcome::Changed);
        prop_assert_eq!(again.state, state);
    }
}

#[test]
fn a_state_record_stays_under_its_bound_whatever_the_requests_and_sns_do() {
    // A rule that tallies a field, and one that counts distinct values
    // (every past window then keeps the values it counted).
    let tallying = worst_record(false);
    let counting = worst_record(true);
    eprintln!("worst state records: {tallying} and {counting} bytes");
}

/// The largest record the worst inputs build, for a rule that tallies a
/// hostile field or one that counts distinct values; asserts it stays
/// under [`MAX_RECORD_BYTES`].
fn worst_record(counts_values: bool) -> usize {
    use eks_audit_detector::bounded::cap;
    use eks_audit_detector::vocab::{Sample, SampleStatus};
    use eks_audit_detector::window::{
        MAX_DISTINCT_VALUES, MAX_OUTBOX_BYTES, MAX_PAST_WINDOWS, MAX_RECORD_BYTES,
        MAX_REMEMBERED_BATCHES,
    };
    // GIVEN requests whose every field is 100 KB, distinct each time
    // (1 KB is as good as 100 KB: both are cut), in batches that also hold
    // events stamped in year 9999 (every remembered batch keeps two times)
    fn stamped(id: &str) -> BatchInfo<'_> {
        BatchInfo {
            stamped_until: 253_402_300_000_000,
            ..batch(id)
        }
    }
    let huge = |tag: usize| cap(&format!("{tag:06}{}", "\u{202e}<!here>\u{1}".repeat(100)));
    let hostile = |at: i64, severity: Severity, tag: usize| {
        let sample = Sample {
            audit_id: Some(huge(tag)),
            request_uri: Some(huge(tag + 1)),
            verb: Some(huge(tag + 2)),
            user_agent: Some(huge(tag + 3)),
            username: Some(huge(tag + 4)),
            response_status: SampleStatus {
                code: Some(200),
                reason: Some(huge(tag + 5)),
            },
            stage_timestamp: Some(huge(tag + 6)),
            namespace: Some(huge(tag + 30)),
            resource: Some(huge(tag + 31)),
            name: Some(huge(tag + 32)),
            source_ips: (0..4).map(|i| huge(tag + 33 + i)).collect(),
        };
        Match {
            rule: eks_audit_detector::rules::pod_scan::META.id,
            dedup: huge(0),
            at_ms: at,
            source_ip: huge(1),
            severity,
            event: Arc::new(MatchedEvent {
                title: huge(tag + 7),
                sample: sample.into(),
                facts: (0..5)
                    .map(|f| {
                        (
                            [
                                "userAgent",
                                "requestURI",
                                "verb",
                                "responseStatus.reason",
                                "responseStatus.code",
                            ][f],
                            huge(tag + 10 + f),
                        )
                    })
                    .collect(),
                dropped: 5000,
            }),
            facts: if counts_values {
                vec![("#unique", format!("{:032x}", tag as u128 * 7919))]
            } else {
                vec![("user.groups{}", huge(tag + 20))]
            },
        }
    };
    let p = WindowParams {
        threshold: 1,
        window_ms: MIN,
        max_severity: Severity::High,
    };
    // WHEN 300 batches each open a window and escalate it while SNS is down
    // (every alert stays in the outbox)
    let mut state: Option<WindowState> = None;
    let mut largest_alert = 0;
    for b in 0..300usize {
        let at = T0 + b as i64 * MIN;
        let ms: Vec<Match> = (0..30)
            .map(|i| {
                hostile(
                    at + i,
                    if i == 29 {
                        Severity::High
                    } else {
                        Severity::Low
                    },
                    b * 100 + i as usize,
                )
            })
            .collect();
        let refs: Vec<&Match> = ms.iter().collect();
        // batch ids are hashes: distinct from their first characters on
        let id = format!("{b:04}-batch");
        let r = apply_batch(state, p, &stamped(&id), &refs, &render).expect("applied");
        let mut st = r.state;
        for a in &r.alerts {
            largest_alert = largest_alert.max(a.to_json().len());
        }
        st.enqueue(r.alerts, b as i64);
        state = Some(st);
    }
    // AND 400 more batches, one a minute, each counting one match in
    // 10-minute windows that never reach their threshold (every batch id
    // and every past window is kept while inside the horizon); counting
    // distinct values, two new values a minute, so that every past window
    // keeps as many as a threshold can ask for
    let slow = WindowParams {
        threshold: if counts_values {
            MAX_DISTINCT_VALUES as u64
        } else {
            1_000_000
        },
        window_ms: 10 * MIN,
        max_severity: Severity::High,
    };
    let start = T0 + 300 * MIN;
    for b in 0..400usize {
        let mut ms = vec![hostile(
            start + b as i64 * MIN,
            Severity::Low,
            90_000 + 2 * b,
        )];
        if counts_values {
            ms.push(hostile(
                start + b as i64 * MIN + 1,
                Severity::Low,
                90_001 + 2 * b,
            ));
        }
        let refs: Vec<&Match> = ms.iter().collect();
        let id = format!("{b:04}-slow-batch");
        let r = apply_batch(state, slow, &stamped(&id), &refs, &render).expect("applied");
        assert!(counts_values || r.alerts.is_empty());
        let mut st = r.state;
        st.enqueue(r.alerts, b as i64);
        state = Some(st);
    }
    let state = state.expect("state");
    // THEN the record holds everything it may, and stays small
    let outbox: usize = state.outbox.iter().map(|p| p.alert.to_json().len()).sum();
    assert!(
        outbox <= MAX_OUTBOX_BYTES && state.outbox.len() > 4,
        "{outbox}"
    );
    assert_eq!(state.applied.len(), MAX_REMEMBERED_BATCHES);
    // (the batch-id cap binds first: 256 one-minute batches span 26 windows)
    assert!(state.past.len() > 20 && state.past.len() <= MAX_PAST_WINDOWS);
    let size = serde_json::to_string(&state).expect("json").len();
    eprintln!(
        "worst state record: {size} bytes ({} undelivered alerts); largest alert JSON {largest_alert} bytes",
        state.outbox.len()
    );
    assert!(size < MAX_RECORD_BYTES, "{size} bytes");
    assert!(largest_alert < 16 * 1024, "{largest_alert} bytes");
    size
}

/// Time-ordered matches cut at `cuts` into batches named `b0`, `b1`, ...
fn cut_into_batches(ms: &[Match], cuts: Vec<usize>) -> Vec<(String, &[Match])> {
    let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % (ms.len() + 1)).collect();
    bounds.extend([0, ms.len()]);
    bounds.sort();
    bounds.dedup();
    bounds
        .windows(2)
        .enumerate()
        .map(|(i, w)| (format!("b{i}"), &ms[w[0]..w[1]]))
        .collect()
}

/// The indices `0..n` in an order drawn from `order`.
fn shuffled(n: usize, order: &[u32]) -> Vec<usize> {
    let mut sequence: Vec<usize> = (0..n).collect();
    sequence.sort_by_key(|i| order[i % order.len()].wrapping_mul(*i as u32 + 1));
    sequence
}

/// Bursts of matches, each shorter than a window, separated by more than
/// one, all inside the horizon: what a scanner coming back looks like.
/// Returns the times, in order, and each burst's start.
fn bursts_strategy() -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
    // At most 5 bursts of up to 15 minutes, 31 to 60 minutes apart: all of
    // it within the 375-minute horizon.
    prop::collection::vec((1usize..14, 31i64..60, 0i64..15), 1..6).prop_map(|bursts| {
        let mut times = Vec::new();
        let mut starts = Vec::new();
        let mut at = T0;
        for (n, gap, span) in bursts {
            starts.push(at);
            for i in 0..n as i64 {
                times.push(at + (i * span * MIN) / n as i64 + i);
            }
            at += (span + gap) * MIN;
        }
        (times, starts)
    })
}

/// Per burst: matches counted, and alerts raised, read from the final state
/// (its past and open windows) and the alerts.
fn per_burst(
    st: &WindowState,
    alerts: &[eks_audit_detector::alert::Alert],
    starts: &[i64],
) -> Vec<(u64, usize)> {
    let burst_of = |t: i64| starts.iter().rposition(|s| *s <= t).unwrap_or(0);
    let mut out = vec![(0u64, 0usize); starts.len()];
    for w in &st.past {
        out[burst_of(w.first_seen)].0 += w.count;
    }
    out[burst_of(st.first_seen)].0 += st.count;
    for a in alerts {
        let first = eks_audit_detector::time::parse_timestamp(&a.first_seen).expect("time");
        out[burst_of(first)].1 += 1;
    }
    out
}

proptest! {
    #[test]
    fn any_order_of_a_keys_batches_gives_the_alerts_of_the_sequential_order(
        (times, starts) in bursts_strategy(),
        cuts in prop::collection::vec(0usize..80, 0..8),
        order in prop::collection::vec(any::<u32>(), 9),
        threshold in 1u64..12,
    ) {
        let p = WindowParams { threshold, window_ms: 30 * MIN, max_severity: Severity::Info };
        let ms: Vec<Match> = times.iter().map(|t| info(*t)).collect();
        // The matches, cut into batches in time order...
        let batches = cut_into_batches(&ms, cuts);
        let run = |sequence: &[usize]| {
            let mut state = None;
            let mut alerts = Vec::new();
            for &i in sequence {
                let (id, part) = &batches[i];
                let r = apply(state, p, id, part);
                prop_assert_eq!(r.late, 0);
                alerts.extend(r.alerts);
                state = Some(r.state);
            }
            Ok((state.expect("a batch"), alerts))
        };
        let sequential: Vec<usize> = (0..batches.len()).collect();
        // ...applied in order, and in any other order
        let shuffled = shuffled(batches.len(), &order);
        let (s1, a1) = run(&sequential)?;
        let (s2, a2) = run(&shuffled)?;
        // THEN every burst alerts the same number of times and counts the same
        prop_assert_eq!(per_burst(&s1, &a1, &starts), per_burst(&s2, &a2, &starts));
        // AND in order, exactly one alert per burst that reached the threshold
        for (count, raised) in per_burst(&s1, &a1, &starts) {
            prop_assert_eq!(raised, usize::from(count >= threshold));
        }
    }
}

#[test]
fn an_earlier_match_an_alerted_window_took_in_is_remembered_so_its_redelivery_changes_nothing() {
    let scan = |at: i64, severity| m(eks_audit_detector::rules::pod_scan::META.id, at, severity);
    // GIVEN a PodScan window that alerted at T0+100m
    let r1 = apply(None, PSCAN, "b1", &[scan(T0 + 100 * MIN, Severity::Low)]);
    assert_eq!(r1.alerts.len(), 1);
    // AND a batch with a refusal 10 minutes before it, taken in
    let b2 = [scan(T0 + 90 * MIN, Severity::Low)];
    let r2 = apply(Some(r1.state), PSCAN, "b2", &b2);
    assert!(r2.alerts.is_empty());
    assert_eq!(r2.outcome, Outcome::Changed, "the window's span is stored");
    // AND a successful listing late in the window escalates it
    let r3 = apply(
        Some(r2.state),
        PSCAN,
        "b3",
        &[scan(T0 + 155 * MIN, Severity::High)],
    );
    assert_eq!(r3.alerts.len(), 1);
    // WHEN the second batch is delivered again
    let again = apply(Some(r3.state.clone()), PSCAN, "b2", &b2);
    // THEN nothing changes and nothing alerts
    assert_eq!(again.outcome, Outcome::Duplicate);
    assert!(again.alerts.is_empty());
    // AND a new batch at that time is taken in the same way
    let other = apply(Some(r3.state), PSCAN, "b4", &b2);
    assert!(other.alerts.is_empty());
}

proptest! {
    #[test]
    fn in_any_order_redelivering_any_batch_changes_nothing(
        times in times_strategy(),
        severities in prop::collection::vec(any::<bool>(), 80),
        cuts in prop::collection::vec(0usize..80, 0..8),
        order in prop::collection::vec(any::<u32>(), 9),
        again in 0usize..9,
    ) {
        let ms: Vec<Match> = times
            .iter()
            .zip(&severities)
            .map(|(t, high)| m(eks_audit_detector::rules::pod_scan::META.id, *t, if *high { Severity::High } else { Severity::Low }))
            .collect();
        let batches = cut_into_batches(&ms, cuts);
        let sequence = shuffled(batches.len(), &order);
        let mut state: Option<WindowState> = None;
        for (n, &i) in sequence.iter().enumerate() {
            let (id, part) = &batches[i];
            state = Some(apply(state, PSCAN, id, part).state);
            // After every step, any batch seen so far comes back: nothing changes.
            let (id, part) = &batches[sequence[again % (n + 1)]];
            let st = state.clone().expect("state");
            let r = apply(Some(st.clone()), PSCAN, id, part);
            prop_assert!(r.alerts.is_empty());
            prop_assert_eq!(&r.state, &st);
        }
    }
}

#[test]
fn a_batch_counted_at_a_clamped_time_is_remembered_until_its_stamped_time_is_late() {
    // GIVEN a batch stamped 2 hours ahead, counted at its arrival (T0)
    let stamped = T0 + 120 * MIN;
    let clamped = BatchInfo {
        stamped_until: stamped,
        ..batch("forged-batch-0001")
    };
    let one = [info(T0)];
    let refs: Vec<&Match> = one.iter().collect();
    let st = apply_batch(None, P403, &clamped, &refs, &render)
        .expect("applied")
        .state;
    // WHEN the key moves on until T0 is late, but the stamped time is not
    let later = T0 + DEFAULT_HORIZON_MS + 30 * MIN;
    let st = apply(Some(st), P403, "b2", &[info(later)]).state;
    assert!(st.is_late(T0) && !st.is_late(stamped));
    // THEN a replay that no longer needs the clamp is still recognised
    let replay = apply(Some(st), P403, "forged-batch-0001", &[info(stamped)]);
    assert_eq!(replay.outcome, Outcome::Duplicate);
}
