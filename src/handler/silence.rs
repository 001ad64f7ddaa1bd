//! Hearing from clusters and reporting the silent ones (see
//! [`crate::silence`]): every subscription batch notes its cluster in the
//! one watch record, at most once per [`HEAR_EVERY_MS`] per cluster and
//! instance; the schedule reads the record and queues an
//! `EksAuditDetector.AuditLogSilent` alert in its outbox for each cluster
//! silent too long, delivered like any other alert.

use std::collections::HashMap;

use super::outbox::Claimed;
use super::{HandlerError, Processor, Report, Run, MAX_CAS_ATTEMPTS};
use crate::silence;
use crate::sink::AlertSink;
use crate::store::{state_key, Loaded, SaveOutcome, StateStore, StoreError, Versioned};
use crate::time::Millis;
use crate::window::WindowState;

/// How often one instance notes a cluster it keeps hearing from, at most
/// (a quarter of the silence period when that is shorter).
pub const HEAR_EVERY_MS: Millis = 15 * 60 * 1000;

/// Clusters an instance remembers having noted (then it starts over).
const NOTED_CLUSTERS: usize = 1024;

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// How often a cluster is noted: every [`HEAR_EVERY_MS`], or four times
    /// per silence period when that is shorter.
    fn hear_every_ms(&self) -> Millis {
        HEAR_EVERY_MS.min(self.silent_ms() / 4).max(1)
    }

    fn silent_ms(&self) -> Millis {
        i64::try_from(self.detector.config().silent_minutes).unwrap_or(60) * 60_000
    }

    /// Notes that a batch of `cluster` arrived. A failure is logged and
    /// costs the batch nothing: the next batch notes it again.
    pub(super) async fn hear(
        &self,
        cluster: &str,
        log_group: &str,
        account: &str,
        report: &mut Report,
    ) {
        let now = self.now_ms();
        let every = self.hear_every_ms();
        {
            let Ok(mut noted) = self.noted.lock() else {
                return;
            };
            if noted
                .get(cluster)
                .is_some_and(|at| now.saturating_sub(*at) < every)
            {
                return;
            }
            if noted.len() >= NOTED_CLUSTERS {
                noted.clear();
            }
            noted.insert(cluster.to_owned(), now);
        }
        let result = self
            .update_watch(report, false, |state| {
                silence::hear(&mut state.watch, cluster, log_group, account, now, every)
                    .then_some(())
            })
            .await;
        if let Err(e) = result {
            if let Ok(mut noted) = self.noted.lock() {
                noted.remove(cluster);
            }
            tracing::warn!(error = %e, "could not note the cluster as heard from; the next batch tries again");
        }
    }

    /// Queues a report for each cluster silent too long, in the same write
    /// that marks the silence reported (a lost race decides again on what
    /// it re-reads), and publishes it.
    pub(super) async fn report_silence(
        &self,
        run: &Run,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let now = self.now_ms();
        let silent_ms = self.silent_ms();
        // Read afresh: this instance's copy may predate another's note that
        // a cluster is back, and deciding on it would write nothing.
        let updated = self
            .update_watch(report, true, |state| {
                // As many as the outbox takes now; the others stay owed and
                // are raised by a later run, once it has room.
                let mut room = state.room();
                let (alerts, changed) =
                    silence::silent(&mut state.watch, now, silent_ms, |a| room.take(a));
                if !changed {
                    return None;
                }
                let raised = alerts.len() as u64;
                // Queued, then claimed and published like every alert.
                let dropped = state.enqueue(alerts, now);
                let due = state.claim_due(&run.claim, now);
                Some((raised, dropped, due))
            })
            .await?;
        let Some(((raised, dropped, due), stored)) = updated else {
            return Ok(());
        };
        report.alerts_raised += raised;
        for dropped in dropped {
            report.alerts_dropped += 1;
            tracing::error!(alert = %dropped.to_json(), "outbox full after repeated publish failures; alert dropped from state, kept here");
        }
        if due.is_empty() {
            return Ok(());
        }
        let claimed = Claimed {
            pk: watch_key(),
            alerts: due,
            stored,
        };
        self.publish(run, vec![claimed], report).await
    }

    /// Reads the watch record, changes it with `change` (`None`: nothing
    /// to write) and writes it conditionally, again after a lost race (on
    /// the record as re-read). Returns what `change` returned and the
    /// record as stored. Unless `fresh`, the record as this instance last
    /// stored or read it is written on top of without a read.
    async fn update_watch<T>(
        &self,
        report: &mut Report,
        fresh: bool,
        mut change: impl FnMut(&mut WindowState) -> Option<T>,
    ) -> Result<Option<(T, Versioned)>, StoreError> {
        let pk = watch_key();
        // A lost race reads it.
        let mut known = self.watch.lock().ok().and_then(|mut w| w.take());
        if fresh {
            known = None;
        }
        for attempt in 0..MAX_CAS_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            let loaded = match known.take() {
                Some(v) => Some(Loaded::Found(v)),
                None => {
                    report.watch_requests += 1;
                    self.store.load(&pk).await?
                }
            };
            let (mut state, version) = match loaded {
                Some(Loaded::Found(v)) => (v.state, Some(v.version)),
                None => (
                    WindowState::empty(silence::RULE_ID, silence::WATCH_DEDUP, self.now_ms()),
                    None,
                ),
                Some(Loaded::Corrupt {
                    version,
                    reason,
                    outbox,
                    raw,
                }) => {
                    report.corrupt_states += 1;
                    crate::store::log_corrupt(&pk, &reason, &raw, outbox.len());
                    let mut state =
                        WindowState::empty(silence::RULE_ID, silence::WATCH_DEDUP, self.now_ms());
                    state.outbox = outbox;
                    (state, Some(version))
                }
            };
            let Some(out) = change(&mut state) else {
                if let (Some(version), Ok(mut w)) = (version, self.watch.lock()) {
                    *w = Some(Versioned { state, version });
                }
                return Ok(None);
            };
            state.updated_ms = self.now_ms();
            match self.store.save(&pk, &state, version).await? {
                SaveOutcome::Saved(version) => {
                    report.watch_requests += 1;
                    let stored = Versioned { state, version };
                    if let Ok(mut w) = self.watch.lock() {
                        *w = Some(stored.clone());
                    }
                    return Ok(Some((out, stored)));
                }
                SaveOutcome::Conflict => report.watch_requests += 1,
            }
        }
        Err(StoreError::Transient(format!(
            "gave up on {} after {MAX_CAS_ATTEMPTS} conflicting writes",
            watch_key()
        )))
    }
}

/// The partition key of the watch record.
fn watch_key() -> String {
    state_key(silence::RULE_ID, silence::WATCH_DEDUP)
}

/// The instance's memory of clusters it noted recently.
pub(super) type Noted = std::sync::Mutex<HashMap<String, Millis>>;

/// The watch record as this instance last saw it.
pub(super) type Watch = std::sync::Mutex<Option<Versioned>>;
