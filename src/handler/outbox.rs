//! Delivering what the outbox holds: publish the alerts this invocation
//! claimed (many at a time), then settle each key: delivered alerts leave
//! its outbox, the claim on the others is given up for a retry or the
//! schedule.

use std::sync::atomic::Ordering;

use futures_util::stream::{self, StreamExt};

use super::{
    HandlerError, Processor, Report, Run, KEY_CONCURRENCY, MAX_CAS_ATTEMPTS, PUBLISH_CONCURRENCY,
};
use crate::alert::Alert;
use crate::sink::{AlertSink, PublishError};
use crate::store::{Loaded, SaveOutcome, StateStore, StoreError, Versioned};
use crate::window::WindowState;

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// Publishes the alerts this invocation claimed, many at a time, then
    /// records per key which were delivered (they leave the outbox) and
    /// gives the claim on the others up.
    pub(super) async fn publish(
        &self,
        run: &Run,
        claimed: Vec<Claimed>,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        if claimed.is_empty() {
            return Ok(());
        }
        let alerts: Vec<&Alert> = claimed
            .iter()
            .flat_map(|c| c.alerts.iter().map(|a| &**a))
            .collect();
        let attempted = alerts.len();
        // Collected first: a stream holding the closure would make this
        // future's lifetimes too specific to be spawned.
        let outcomes: Vec<(String, Delivery)> = if run.hold_publish.load(Ordering::Relaxed) {
            // SNS failed earlier in this invocation: not tried again here;
            // the claims are given up below for the schedule.
            alerts
                .iter()
                .map(|a| {
                    let held = PublishError::transient(
                        &a.alert_id,
                        "held: SNS failed earlier in this invocation",
                    );
                    (a.alert_id.clone(), Delivery::Failed(held))
                })
                .collect()
        } else {
            let jobs: Vec<_> = alerts.into_iter().map(|a| self.publish_one(a)).collect();
            stream::iter(jobs)
                .buffer_unordered(PUBLISH_CONCURRENCY)
                .collect()
                .await
        };
        let mut delivered: Vec<String> = Vec::new();
        let mut first: Option<PublishError> = None;
        let mut failed = 0;
        for (alert_id, outcome) in outcomes {
            match outcome {
                Delivery::Published => {
                    report.alerts_published += 1;
                    delivered.push(alert_id);
                }
                Delivery::Dropped => {
                    report.alerts_failed += 1;
                    delivered.push(alert_id);
                }
                Delivery::Failed(e) => {
                    failed += 1;
                    first.get_or_insert(e);
                }
            }
        }
        report.alerts_failed += failed as u64;
        // One settling write per key.
        let jobs: Vec<_> = claimed
            .into_iter()
            .map(|c| Box::pin(self.settle_key(c.pk, c.stored, &delivered, &run.claim.token)))
            .collect();
        let settled: Vec<(Report, Result<(), StoreError>)> = stream::iter(jobs)
            .buffer_unordered(KEY_CONCURRENCY)
            .collect()
            .await;
        for (counters, result) in settled {
            report.merge(&counters);
            if let Err(e) = result {
                // Published but still claimed in the outbox: the sweep after
                // the lease publishes it again (same alert_id).
                tracing::warn!(error = %e, "outcome of publishing not recorded");
            }
        }
        match first {
            None => Ok(()),
            Some(first) => {
                // Try again on this instance in a minute (or on the retry
                // of the batch, or at the scheduled sweep), not right away.
                self.owes.store(true, Ordering::Relaxed);
                self.last_sweep_ms.store(self.now_ms(), Ordering::Relaxed);
                Err(HandlerError::Publish {
                    failed,
                    attempted,
                    first,
                })
            }
        }
    }

    /// Publishes one alert; a message SNS refuses for good is retried
    /// without its request details, then logged and given up.
    pub(super) async fn publish_one(&self, alert: &Alert) -> (String, Delivery) {
        let id = alert.alert_id.clone();
        // Placed here, where the region is known: the outbox may hold
        // alerts an older version rendered, and they get it too.
        let mut alert = alert.clone();
        alert.locate(self.detector.config().region.as_deref());
        let alert = &alert;
        let mut result = self.sink.publish(alert).await;
        if let Err(e) = &result {
            if e.permanent {
                tracing::warn!(alert_id = %id, error = %e, "alert refused; publishing it without sample and summary");
                result = self.sink.publish(&alert.minimal()).await;
            }
        }
        let outcome = match result {
            Ok(()) => Delivery::Published,
            Err(e) if e.permanent => {
                tracing::error!(alert = %alert.minimal().to_json(), error = %e, "alert can never be published; logged here and removed from the outbox");
                Delivery::Dropped
            }
            Err(e) => Delivery::Failed(e),
        };
        (id, outcome)
    }

    /// Removes delivered alerts from a key's outbox and gives up this
    /// invocation's claims on the rest. The first attempt writes on top of
    /// the version this invocation stored (no read).
    async fn settle_key(
        &self,
        pk: String,
        stored: Versioned,
        delivered: &[String],
        token: &str,
    ) -> (Report, Result<(), StoreError>) {
        let mut report = Report::default();
        let updated = self
            .update_key(&pk, stored, &mut report, |state| {
                state.settle(delivered, token).then_some(())
            })
            .await;
        let result = match updated {
            Ok(Updated::Saved((), v)) => {
                self.hot.remember(&pk, &v.state);
                Ok(())
            }
            Ok(Updated::Nothing) => Ok(()),
            Ok(Updated::GaveUp) => Err(StoreError::Transient(format!(
                "gave up settling {} after {MAX_CAS_ATTEMPTS} conflicting writes",
                crate::bounded::cap(&pk)
            ))),
            Err(e) => Err(e),
        };
        (report, result)
    }

    /// Changes a stored key with `change` and writes it conditionally,
    /// starting from `known` (no read), re-reading after a lost race.
    /// `change` returns `None` when there is nothing to write.
    pub(super) async fn update_key<T>(
        &self,
        pk: &str,
        known: Versioned,
        report: &mut Report,
        mut change: impl FnMut(&mut WindowState) -> Option<T>,
    ) -> Result<Updated<T>, StoreError> {
        let mut known = Some(known);
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let current = match known.take() {
                Some(v) => v,
                None => match self.reload(pk, attempt, report).await? {
                    Some(v) => v,
                    None => return Ok(Updated::Nothing),
                },
            };
            let mut state = current.state;
            let Some(out) = change(&mut state) else {
                return Ok(Updated::Nothing);
            };
            match self.store.save(pk, &state, Some(current.version)).await? {
                SaveOutcome::Saved(version) => {
                    report.state_writes += 1;
                    return Ok(Updated::Saved(out, Versioned { state, version }));
                }
                SaveOutcome::Conflict => report.state_conflicts += 1,
            }
        }
        Ok(Updated::GaveUp)
    }

    /// Reads a key again after a lost race (backing off first); `None` when
    /// it is gone or unreadable (nothing of ours to settle in it).
    async fn reload(
        &self,
        pk: &str,
        attempt: u32,
        report: &mut Report,
    ) -> Result<Option<Versioned>, StoreError> {
        tokio::time::sleep(self.backoff(attempt)).await;
        report.state_reads += 1;
        Ok(match self.store.load(pk).await? {
            Some(Loaded::Found(v)) => Some(v),
            _ => None,
        })
    }
}

/// The alerts this invocation holds the claim on in one key, and the key as
/// stored with those claims.
#[derive(Debug)]
pub(super) struct Claimed {
    pub(super) pk: String,
    pub(super) alerts: Vec<std::sync::Arc<Alert>>,
    pub(super) stored: Versioned,
}

/// What a conditional update of a key did (returned once per update, so
/// the stored key is not boxed).
#[allow(clippy::large_enum_variant)]
pub(super) enum Updated<T> {
    /// Written; what the change returned and the key as stored.
    Saved(T, Versioned),
    /// Nothing to change (or the key is gone).
    Nothing,
    /// The key kept changing under us.
    GaveUp,
}

/// How one publish ended.
pub(super) enum Delivery {
    Published,
    /// Transient failure: released, stays in the outbox.
    Failed(PublishError),
    /// Refused for good even in minimal form: logged and removed.
    Dropped,
}
