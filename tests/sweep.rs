//! The scheduled sweep under a backlog: rounds planned by the invocation's
//! deadline, claims that end with it, oldest first, no alert twice. Runs in
//! paused (virtual) time, so a sink that takes 4 seconds per publish costs
//! the test nothing.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{event, invoke_body, with, RecordingSink};
use eks_audit_detector::alert::Alert;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::{Processor, CLAIM_MARGIN_MS};
use eks_audit_detector::rules::Detector;
use eks_audit_detector::sink::{AlertSink, PublishError};
use eks_audit_detector::store::memory::MemoryStore;
use eks_audit_detector::store::StateStore;
use eks_audit_detector::time::{Clock, Millis};
use eks_audit_detector::window::{PendingAlert, WindowState};

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";
const MIN: i64 = 60_000;

/// Wall time that moves with tokio's (paused) clock.
struct VirtualClock {
    base_ms: Millis,
    start: tokio::time::Instant,
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> Millis {
        self.base_ms + i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

/// A sink that takes `delay` per publish and counts what it delivered.
#[derive(Default)]
struct SlowSink {
    delay: Duration,
    delivered: Mutex<HashMap<String, u32>>,
    failing: AtomicBool,
    /// Alert ids ending with this fail (one bad message among good ones).
    failing_suffix: Option<&'static str>,
}

impl AlertSink for SlowSink {
    async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        tokio::time::sleep(self.delay).await;
        if self.failing.load(Ordering::SeqCst)
            || self
                .failing_suffix
                .is_some_and(|x| alert.alert_id.ends_with(x))
        {
            return Err(PublishError::transient(&alert.alert_id, "injected failure"));
        }
        *self
            .delivered
            .lock()
            .expect("lock")
            .entry(alert.alert_id.clone())
            .or_default() += 1;
        Ok(())
    }
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// A real alert, rendered by the detector, to copy.
async fn template() -> Alert {
    let p = Processor::new(
        Detector::new(DetectorConfig::default()),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    let burst: Vec<(i64, String)> = (0..10)
        .map(|i| {
            let id = format!("t-{i}");
            (
                T0 + i * 1000,
                with(event("forbidden_public.json"), &id, "5.5.5.5"),
            )
        })
        .collect();
    p.handle_invoke_body(invoke_body(GROUP, "s", &burst).as_bytes())
        .await
        .expect("handled");
    p.sink().published().remove(0)
}

/// `keys` keys holding `per_key` undelivered alerts each, decided one
/// millisecond apart (oldest first), as an SNS outage leaves them.
async fn backlog(store: &MemoryStore, keys: usize, per_key: usize, decided_ms: Millis) -> usize {
    let template = template().await;
    let mut n = 0;
    for k in 0..keys {
        let outbox: Vec<PendingAlert> = (0..per_key)
            .map(|i| {
                let mut a = template.clone();
                a.alert_id = format!("{k:016x}{i:016x}");
                a.dedup = format!("prod_403_key{k}");
                n += 1;
                PendingAlert::new(a, decided_ms + k as i64)
            })
            .collect();
        let state = WindowState::holding(outbox, decided_ms).expect("alerts");
        let pk = format!("Amazon.EKS.Audit.Multiple403#prod_403_key{k}");
        store.save(&pk, &state, None).await.expect("saved");
    }
    n
}

/// Runs scheduled sweeps (each with `budget_ms`, one a minute) until the
/// outbox is empty; returns the undelivered count before each sweep.
async fn sweep_until_empty(
    p: &Processor<Arc<MemoryStore>, Arc<SlowSink>>,
    budget_ms: Millis,
    max_sweeps: usize,
) -> Vec<usize> {
    let mut waiting = Vec::new();
    for _ in 0..max_sweeps {
        let left = p.store().undelivered().len();
        waiting.push(left);
        if left == 0 {
            break;
        }
        let started = p.now_ms();
        let deadline = started + budget_ms;
        p.handle_schedule_until(deadline).await.expect("sweep");
        // It finished before its deadline...
        assert!(p.now_ms() <= deadline, "{} ms late", p.now_ms() - deadline);
        // ...and left nothing claimed past the margin after it.
        for pending in p.store().undelivered() {
            if let Some(c) = pending.claim {
                assert!(c.until_ms <= deadline + CLAIM_MARGIN_MS, "{c:?}");
            }
        }
        // The schedule fires again a minute after this one started.
        let next = started + MIN;
        if p.now_ms() < next {
            tokio::time::sleep(Duration::from_millis((next - p.now_ms()) as u64)).await;
        }
    }
    waiting
}

fn processor(
    store: &Arc<MemoryStore>,
    sink: &Arc<SlowSink>,
) -> Processor<Arc<MemoryStore>, Arc<SlowSink>> {
    Processor::new(
        Detector::new(DetectorConfig::default()),
        Arc::clone(store),
        Arc::clone(sink),
    )
    .with_clock(Arc::new(VirtualClock {
        base_ms: T0 + 60 * MIN,
        start: tokio::time::Instant::now(),
    }))
}

#[test]
fn a_sweep_claims_only_what_it_can_finish_and_each_alert_goes_out_once() {
    let rt = paused();
    rt.block_on(async {
        // GIVEN 1,000 keys with one undelivered alert each
        let store = Arc::new(MemoryStore::new());
        let total = backlog(&store, 1000, 1, T0).await;
        // AND an SNS that takes 4 seconds per publish
        let sink = Arc::new(SlowSink {
            delay: Duration::from_secs(4),
            ..SlowSink::default()
        });
        let p = processor(&store, &sink);
        // WHEN the schedule sweeps with 60 seconds each time
        let waiting = sweep_until_empty(&p, 60_000, 20).await;
        eprintln!("undelivered before each sweep: {waiting:?}");
        // THEN the outbox shrank with every sweep until it was empty
        assert!(waiting.windows(2).all(|w| w[1] < w[0]), "{waiting:?}");
        assert_eq!(waiting.last(), Some(&0));
        // AND every alert was published exactly once
        let delivered = sink.delivered.lock().expect("lock").clone();
        assert_eq!(delivered.len(), total);
        assert!(delivered.values().all(|n| *n == 1));
    });
}

#[test]
fn an_instance_killed_mid_sweep_holds_its_alerts_only_until_its_deadline_passes() {
    let rt = paused();
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        backlog(&store, 200, 1, T0).await;
        let sink = Arc::new(SlowSink {
            delay: Duration::from_secs(4),
            ..SlowSink::default()
        });
        // GIVEN a sweep killed 10 seconds in (its claims are never released)
        let killed = processor(&store, &sink);
        let deadline = killed.now_ms() + 60_000;
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            killed.handle_schedule_until(deadline),
        )
        .await;
        let held = store
            .undelivered()
            .iter()
            .filter(|p| p.claim.is_some())
            .count();
        assert!(held > 0);
        // WHEN the next sweeps run, one a minute
        let p = processor(&store, &sink);
        let started = p.now_ms();
        let waiting = sweep_until_empty(&p, 60_000, 10).await;
        // THEN everything is delivered, within about two minutes of the kill
        assert_eq!(waiting.last(), Some(&0), "{waiting:?}");
        assert!(
            p.now_ms() - started <= 3 * MIN,
            "{} ms",
            p.now_ms() - started
        );
        // AND only alerts published before the kill could be published twice
        let delivered = sink.delivered.lock().expect("lock").clone();
        assert_eq!(delivered.len(), 200);
    });
}

#[test]
fn keys_held_by_live_claims_are_skipped_and_older_ones_go_first() {
    let rt = paused();
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        // GIVEN 300 keys, the oldest 100 claimed by a live invocation
        backlog(&store, 300, 1, T0).await;
        let sink = Arc::new(SlowSink::default());
        let p = processor(&store, &sink);
        let live = eks_audit_detector::window::Claim {
            token: "live".into(),
            until_ms: p.now_ms() + 10 * MIN,
        };
        for k in 0..100 {
            let pk = format!("Amazon.EKS.Audit.Multiple403#prod_403_key{k}");
            let mut v = store.snapshot().remove(&pk).expect("stored");
            v.state.claim_due(&live, p.now_ms());
            store
                .save(&pk, &v.state, Some(v.version))
                .await
                .expect("claimed");
        }
        // WHEN one sweep runs
        p.handle_schedule_until(p.now_ms() + 60_000)
            .await
            .expect("sweep");
        // THEN the 200 free keys were delivered and the held ones left alone
        let delivered = sink.delivered.lock().expect("lock").clone();
        assert_eq!(delivered.len(), 200);
        assert_eq!(store.undelivered().len(), 100);
    });
}

#[test]
fn a_backlog_of_10000_alerts_over_5000_keys_drains_without_duplicates() {
    // SNS answering in 50 ms (usual), and in 4 s (degraded)
    for (delay, max_sweeps) in [(Duration::from_millis(50), 2), (Duration::from_secs(4), 20)] {
        let rt = paused();
        rt.block_on(async {
            // GIVEN what an SNS outage leaves: 10,000 alerts over 5,000 keys
            let store = Arc::new(MemoryStore::new());
            let total = backlog(&store, 5000, 2, T0).await;
            let sink = Arc::new(SlowSink {
                delay,
                ..SlowSink::default()
            });
            let p = processor(&store, &sink);
            let started = p.now_ms();
            // WHEN the schedule sweeps once a minute, 60 seconds each
            let waiting = sweep_until_empty(&p, 60_000, 60).await;
            let minutes = (p.now_ms() - started) as f64 / MIN as f64;
            let delivered = sink.delivered.lock().expect("lock").clone();
            let duplicates: u32 = delivered.values().map(|n| n - 1).sum();
            eprintln!(
                "10,000-alert backlog, {delay:?} per publish: {} sweeps, {minutes:.1} minutes, {duplicates} duplicates",
                waiting.len() - 1
            );
            // THEN all are delivered, once each, within a bounded number of sweeps
            assert_eq!(waiting.last(), Some(&0));
            assert!(waiting.len() - 1 <= max_sweeps, "{waiting:?}");
            assert_eq!(delivered.len(), total);
            assert_eq!(duplicates, 0);
        });
    }
}

#[test]
fn a_few_failing_publishes_do_not_end_the_sweep() {
    let rt = paused();
    rt.block_on(async {
        // GIVEN 640 keys, and SNS refusing one alert in 16
        let store = Arc::new(MemoryStore::new());
        backlog(&store, 640, 1, T0).await;
        let sink = Arc::new(SlowSink {
            delay: Duration::from_millis(50),
            failing_suffix: Some("f0000000000000000"),
            ..SlowSink::default()
        });
        let p = processor(&store, &sink);
        // WHEN one sweep runs
        let swept = p.handle_schedule_until(p.now_ms() + 60_000).await;
        // THEN it went through every round: only the refused ones wait
        assert!(swept.is_err(), "the failures are reported");
        assert_eq!(sink.delivered.lock().expect("lock").len(), 600);
        assert_eq!(store.undelivered().len(), 40);
    });
}
