//! Knowing when a cluster's audit log goes quiet, from what the detector
//! itself receives: per cluster, when a batch of its audit log last
//! arrived; the schedule reports a cluster heard in the last days that has
//! been silent for `SILENT_MINUTES` (audit logging turned off, the log
//! group or its subscription broken), once per silence.
//!
//! Arrival (wall-clock) time, not event time: a log stream's timestamps are
//! chosen by whoever writes it. The steady signal a quiet cluster still
//! sends is the scheduler's leader-election lease renewal, every few
//! seconds, which the default subscription filter lets through.
//!
//! Pure: the watch list and the time in, alerts out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bounded::cap;
use crate::time::{format_rfc3339, Millis};
use crate::vocab::{stable_hash, Alert, AlertContext, RuleId, Sample, Severity};

/// The id alerts of this kind carry.
pub const RULE_ID: RuleId = RuleId::new("EksAuditDetector.AuditLogSilent");

/// Dedup key of the one record that holds the watch list.
pub const WATCH_DEDUP: &str = "watch";

/// Clusters watched at most (the record stays small: about 150 bytes
/// each); past it the one heard longest ago is dropped.
pub const MAX_WATCHED: usize = 200;

/// Bytes (as JSON) the watch list takes at most: [`MAX_WATCHED`] clusters
/// whose names are as long as EKS allows (100 characters) fit, and with its
/// outbox the record stays under
/// [`MAX_RECORD_BYTES`](crate::window::MAX_RECORD_BYTES) even when every
/// log group name is as long as CloudWatch allows; past it a cluster is
/// dropped (see [`hear`]).
pub const MAX_WATCH_BYTES: usize = 64 * 1024;

/// A cluster not heard for this long is no longer watched (a cluster that
/// was deleted stops being reported after one alert).
pub const FORGET_AFTER_MS: Millis = 7 * 24 * 60 * 60 * 1000;

const RUNBOOK: &str =
    "The detector has received nothing from this cluster's audit log for longer than it \
     should be quiet. Check that the cluster still exists, that its `audit` log type is \
     enabled (`aws eks describe-cluster --query cluster.logging`), and that the log group \
     still has the detector's subscription filter. Until fixed, nothing in the cluster is \
     being watched.";

/// When a cluster was last heard from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heard {
    /// Wall-clock time its last batch arrived.
    pub last_ms: Millis,
    /// Its log group.
    pub log_group: String,
    /// The account that owns it.
    pub account: String,
    /// Set when its current silence was reported (the `last_ms` it was
    /// reported for).
    #[serde(default)]
    pub reported: Option<Millis>,
}

/// Records that `cluster` was heard at `now_ms`; returns whether the
/// stored watch list must change (it is written at most once per `every_ms`
/// per cluster, or at once when the cluster is new or was reported silent).
pub fn hear(
    watch: &mut BTreeMap<String, Heard>,
    cluster: &str,
    log_group: &str,
    account: &str,
    now_ms: Millis,
    every_ms: Millis,
) -> bool {
    let cluster = cap(cluster);
    match watch.get_mut(&cluster) {
        Some(h) if h.reported.is_none() && now_ms.saturating_sub(h.last_ms) < every_ms => false,
        Some(h) => {
            h.last_ms = h.last_ms.max(now_ms);
            h.reported = None;
            true
        }
        None => {
            watch.insert(
                cluster,
                Heard {
                    last_ms: now_ms,
                    log_group: cap(log_group),
                    account: cap(account),
                    reported: None,
                },
            );
            let bytes = |w: &BTreeMap<String, Heard>| crate::bounded::json_size(w);
            while watch.len() > MAX_WATCHED || (watch.len() > 1 && bytes(watch) > MAX_WATCH_BYTES) {
                // A silence already reported goes first, then the cluster
                // heard longest ago: a cluster gone quiet must stay until
                // its silence is reported.
                let oldest = watch
                    .iter()
                    .min_by_key(|(_, h)| (h.reported.is_none(), h.last_ms))
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    watch.remove(&k);
                }
            }
            true
        }
    }
}

/// The silences owed a report at `now_ms` that `fits` takes (each marked
/// reported; one it refuses stays owed, for a later run), and clusters not
/// heard for [`FORGET_AFTER_MS`] forgotten. Returns the alerts and whether
/// the watch list changed.
pub fn silent(
    watch: &mut BTreeMap<String, Heard>,
    now_ms: Millis,
    silent_ms: Millis,
    mut fits: impl FnMut(&Alert) -> bool,
) -> (Vec<Alert>, bool) {
    let before = watch.len();
    watch.retain(|_, h| now_ms.saturating_sub(h.last_ms) < FORGET_AFTER_MS);
    let mut changed = watch.len() != before;
    let mut alerts = Vec::new();
    for (cluster, h) in watch.iter_mut() {
        if h.reported.is_none() && now_ms.saturating_sub(h.last_ms) >= silent_ms {
            let a = alert(cluster, h, now_ms, silent_ms);
            if !fits(&a) {
                continue;
            }
            h.reported = Some(h.last_ms);
            changed = true;
            alerts.push(a);
        }
    }
    (alerts, changed)
}

fn alert(cluster: &str, h: &Heard, now_ms: Millis, silent_ms: Millis) -> Alert {
    let last = format_rfc3339(h.last_ms);
    let id = stable_hash(&[RULE_ID.as_str(), cluster, &h.last_ms.to_string()]);
    let minutes = now_ms.saturating_sub(h.last_ms) / 60_000;
    Alert {
        alert_id: format!("{id:032x}"),
        rule_id: RULE_ID,
        rule_name: "EKS audit log silent".into(),
        headline: "EKS audit log silent".into(),
        severity: Severity::High,
        escalation: false,
        title: format!(
            "No audit events from [{cluster}] for {minutes} minutes (last at {last}): the detector does not see it"
        ),
        dedup: cluster.to_owned(),
        cluster: cluster.to_owned(),
        source_ip: String::new(),
        event_count: 0,
        threshold: u64::try_from(silent_ms / 60_000).unwrap_or(0),
        window_start: last.clone(),
        window_end: format_rfc3339(now_ms),
        first_seen: last.clone(),
        last_seen: last,
        mitre: "TA0005:T1562.008".into(),
        reference: "https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html"
            .into(),
        runbook: RUNBOOK.into(),
        summary: json!({ "silent_minutes": minutes }),
        log_group: h.log_group.clone(),
        account: h.account.clone(),
        sample: Sample::default(),
        fanout_dropped: 0,
        // Placed when published (see `Alert::locate`).
        region: None,
        cluster_arn: None,
        context: AlertContext::default(),
        investigate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    #[test]
    fn a_cluster_heard_then_silent_is_reported_once_per_silence() {
        let mut w = BTreeMap::new();
        assert!(hear(
            &mut w,
            "prod",
            "/aws/eks/prod/cluster",
            "1",
            0,
            5 * MIN
        ));
        // heard again within the interval: nothing to write
        assert!(!hear(
            &mut w,
            "prod",
            "/aws/eks/prod/cluster",
            "1",
            MIN,
            5 * MIN
        ));
        assert!(silent(&mut w, 59 * MIN, 60 * MIN, |_| true).0.is_empty());
        let (alerts, changed) = silent(&mut w, 61 * MIN, 60 * MIN, |_| true);
        assert!(changed);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].rule_id, RULE_ID);
        assert_eq!(alerts[0].cluster, "prod");
        assert!(
            alerts[0].title.contains("61 minutes"),
            "{}",
            alerts[0].title
        );
        // once per silence
        assert!(silent(&mut w, 90 * MIN, 60 * MIN, |_| true).0.is_empty());
        // heard again: written at once, and a new silence is a new alert
        assert!(hear(
            &mut w,
            "prod",
            "/aws/eks/prod/cluster",
            "1",
            100 * MIN,
            5 * MIN
        ));
        let again = silent(&mut w, 200 * MIN, 60 * MIN, |_| true).0;
        assert_eq!(again.len(), 1);
        assert_ne!(again[0].alert_id, alerts[0].alert_id);
    }

    #[test]
    fn clusters_gone_for_days_are_forgotten_and_the_list_is_bounded() {
        let mut w = BTreeMap::new();
        hear(&mut w, "old", "g", "1", 0, MIN);
        let (_, changed) = silent(&mut w, FORGET_AFTER_MS, 60 * MIN, |_| true);
        assert!(changed && w.is_empty());
        for n in 0..(MAX_WATCHED + 50) {
            hear(&mut w, &format!("c{n}"), "g", "1", n as Millis, MIN);
        }
        assert_eq!(w.len(), MAX_WATCHED);
        assert!(!w.contains_key("c0"), "the one heard longest ago goes");
        // attacker-sized labels are capped
        hear(&mut w, &"x".repeat(100_000), "g", "1", 10_000, MIN);
        assert!(w.keys().all(|k| k.len() < 1024));
        // and names as long as CloudWatch allows keep the list small
        let long = "n".repeat(500);
        for n in 0..MAX_WATCHED {
            let cluster = format!("{n}{long}");
            let group = format!("/aws/eks/{cluster}/cluster");
            hear(
                &mut w,
                &cluster,
                &group,
                "123456789012",
                20_000 + n as Millis,
                MIN,
            );
        }
        assert!(crate::bounded::json_size(&w) <= MAX_WATCH_BYTES);
        assert!(w.len() > 40, "{} clusters kept", w.len());
        assert!(
            w.contains_key(&cap(&format!("{}{long}", MAX_WATCHED - 1))),
            "the newest stays"
        );
    }

    #[test]
    fn two_hundred_clusters_with_the_longest_names_fit_and_a_quiet_one_stays_until_reported() {
        // 100 characters, the longest name EKS allows, in organization mode
        // (`account/cluster`).
        let name = |i: usize| format!("123456789012/{i:03}-{}", "n".repeat(96));
        let group = |i: usize| format!("/aws/eks/{:03}-{}/cluster", i, "n".repeat(96));
        let mut w = BTreeMap::new();
        for i in 0..MAX_WATCHED {
            hear(
                &mut w,
                &name(i),
                &group(i),
                "123456789012",
                i as Millis,
                15 * MIN,
            );
        }
        assert_eq!(w.len(), MAX_WATCHED);
        // Cluster 0 goes quiet; the others keep being heard.
        let mut reported = Vec::new();
        for minute in 1..=180 {
            let now = minute * MIN;
            if minute % 15 == 0 {
                for i in 1..MAX_WATCHED {
                    hear(&mut w, &name(i), &group(i), "123456789012", now, 15 * MIN);
                }
            }
            let (alerts, _) = silent(&mut w, now, 60 * MIN, |_| true);
            reported.extend(alerts.into_iter().map(|a| a.cluster));
        }
        assert_eq!(reported, vec![name(0)]);
    }
}
