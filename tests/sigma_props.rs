//! Property tests of Sigma correlations through the handler (in-memory
//! state): for any split of a group's events into batches, any delivery
//! order and any redelivery, a correlation alerts as its model says, and
//! never twice.

mod common;

use common::{invoke_body, RecordingSink};
use eks_audit_detector::handler::Processor;
use eks_audit_detector::store::memory::MemoryStore;
use proptest::prelude::*;
use serde_json::json;

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";

/// One processor over the fixture's correlations, with thresholds of 3.
fn processor() -> Processor<MemoryStore, RecordingSink> {
    let text = common::sigma::CORRELATIONS.replace("gte: 12", "gte: 3");
    Processor::new(
        common::sigma::detector(&text),
        MemoryStore::new(),
        RecordingSink::default(),
    )
}

/// A secret read of secret `name` (or, for `None`, an exec) by one user.
fn event(n: usize, name: Option<u8>) -> String {
    let (verb, object) = match name {
        Some(s) => (
            "get",
            json!({"resource": "secrets", "name": format!("s{s}")}),
        ),
        None => (
            "create",
            json!({"resource": "pods", "subresource": "exec", "name": "web"}),
        ),
    };
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": format!("a-{n}"),
        "stage": "ResponseComplete", "verb": verb, "user": {"username": "mallory"},
        "sourceIPs": ["52.1.2.3"], "objectRef": object, "responseStatus": {"code": 200},
    })
    .to_string()
}

/// Events of one group inside one window (seconds apart, under 5 minutes):
/// `Some(secret)` a read, `None` an exec.
fn events_strategy() -> impl Strategy<Value = Vec<Option<u8>>> {
    prop::collection::vec(prop::option::weighted(0.8, 0u8..5), 1..25)
}

/// What each correlation of the fixture owes for `events` in time order.
fn model(events: &[Option<u8>]) -> Vec<&'static str> {
    let reads = events.iter().filter(|e| e.is_some()).count();
    let mut names: Vec<u8> = events.iter().flatten().copied().collect();
    names.sort_unstable();
    names.dedup();
    let first_read = events.iter().position(Option::is_some);
    let exec_after_read = first_read.is_some_and(|r| events[r..].iter().any(Option::is_none));
    let both = reads > 0 && events.iter().any(Option::is_none);
    let mut out = Vec::new();
    if reads >= 3 {
        out.push("many-reads");
    }
    if names.len() >= 3 {
        out.push("many-secrets");
    }
    if both {
        out.push("read-and-exec");
    }
    if exec_after_read {
        out.push("read-then-exec");
    }
    out
}

fn alerted(p: &Processor<MemoryStore, RecordingSink>) -> Vec<String> {
    let mut ids: Vec<String> = p
        .sink()
        .published()
        .iter()
        .map(|a| a.rule_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_split_in_time_order_with_redelivery_alerts_as_the_model_says(
        events in events_strategy(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        redeliver in any::<prop::sample::Index>(),
    ) {
        let msgs: Vec<(i64, String)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (T0 + i as i64 * 1000, event(i, *e)))
            .collect();
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(msgs.len() + 1)).collect();
        at.extend([0, msgs.len()]);
        at.sort_unstable();
        at.dedup();
        let bodies: Vec<String> = at
            .windows(2)
            .enumerate()
            .map(|(i, w)| invoke_body(GROUP, &format!("s{i}"), &msgs[w[0]..w[1]]))
            .collect();
        let p = processor();
        for (i, body) in bodies.iter().enumerate() {
            common::block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
            // a redelivery of any batch so far changes nothing
            let again = &bodies[redeliver.index(i + 1)];
            common::block_on(p.handle_invoke_body(again.as_bytes())).expect("handled");
        }
        prop_assert_eq!(alerted(&p), model(&events));
    }

    #[test]
    fn counts_and_distinct_values_do_not_depend_on_delivery_order(
        events in events_strategy(),
        order in prop::collection::vec(any::<u32>(), 25),
    ) {
        // one batch per event, delivered in any order, each twice
        let mut idx: Vec<usize> = (0..events.len()).collect();
        idx.sort_by_key(|i| order[*i]);
        let p = processor();
        for i in idx {
            let body = invoke_body(GROUP, &format!("s{i}"), &[(T0 + i as i64 * 1000, event(i, events[i]))]);
            common::block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
            common::block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
        }
        let got = alerted(&p);
        // event_count, value_count and temporal are order-free
        for id in model(&events).into_iter().filter(|id| *id != "read-then-exec") {
            prop_assert!(got.iter().any(|g| g == id), "{} missing from {:?}", id, got);
        }
        // and nothing alerts twice or without cause
        let mut unique = got.clone();
        unique.dedup();
        prop_assert_eq!(&unique, &got);
        let owed = model(&events);
        for g in &got {
            prop_assert!(owed.contains(&g.as_str()) , "{} alerted without cause", g);
        }
    }
}

/// A read of a secret at `minute` (the `n`th event).
fn read_at(minute: i64, n: usize) -> (i64, String) {
    let body = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": format!("late-{minute}-{n}"),
        "stage": "ResponseComplete", "verb": "get", "user": {"username": "mallory"},
        "sourceIPs": ["52.1.2.3"], "objectRef": {"resource": "secrets", "name": format!("s{n}")},
        "responseStatus": {"code": 200},
    })
    .to_string();
    (T0 + minute * 60_000, body)
}

/// Reads at minutes 25 and 54 arrive, then one at 21: no 30-minute span
/// holds three of them, so a three-read correlation stays quiet, as it does
/// in time order. (A window that has not alerted takes in no match more
/// than its span before its last one.)
#[test]
fn a_late_read_does_not_stretch_a_window_past_its_span() {
    let text = common::sigma::CORRELATIONS.replace("gte: 12", "gte: 3");
    for batches in [
        vec![vec![read_at(21, 0), read_at(25, 1), read_at(54, 2)]],
        vec![vec![read_at(25, 1), read_at(54, 2)], vec![read_at(21, 0)]],
    ] {
        let p = Processor::new(
            common::sigma::detector(&text),
            MemoryStore::new(),
            RecordingSink::default(),
        );
        for (i, b) in batches.iter().enumerate() {
            let body = invoke_body(GROUP, &format!("s{i}"), b);
            common::block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
        }
        assert!(alerted(&p).is_empty(), "{:?}", alerted(&p));
    }
}
