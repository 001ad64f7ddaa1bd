//! A CloudTrail management event: when it blinds the detector on a watched
//! cluster (see [`crate::tamper`]) or grants cluster admin through an
//! access entry (see [`crate::rules::access_entry`]), its alert is queued in an outbox of its
//! own (one key per alert, so a redelivered event finds it and adds
//! nothing), then published like any other: when the tampering also broke
//! SNS, the schedule delivers it once SNS is back.

use super::outbox::Claimed;
use super::{HandlerError, Processor, Report, Run, MAX_CAS_ATTEMPTS};
use crate::alert::Alert;
use crate::decode::DecodeError;
use crate::sink::AlertSink;
use crate::store::{state_key, Loaded, SaveOutcome, StateStore, StoreError, Versioned};
use crate::window::{PendingAlert, WindowState};

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// Assesses the event and delivers its alert, if any.
    pub(super) async fn cloudtrail(
        &self,
        run: &Run,
        detail: &str,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        report.message_type = "CLOUDTRAIL".into();
        let detail: serde_json::Value =
            serde_json::from_str(detail).map_err(DecodeError::EventNotJson)?;
        let config = self.detector.config();
        let access_entries = crate::rules::access_entry::META.id.as_str();
        let Some(alert) =
            crate::tamper::assess_with(&detail, &config.watched_clusters, &config.resources)
                .or_else(|| {
                    config
                        .enabled(access_entries, true)
                        .then(|| {
                            crate::rules::access_entry::assess(&detail, &config.watched_clusters)
                        })
                        .flatten()
                })
        else {
            return Ok(());
        };
        let claimed = self.queue_alone(run, alert, report).await?;
        self.publish(run, claimed.into_iter().collect(), report)
            .await
    }

    /// Puts `alert` in the outbox of its own key, claimed by this
    /// invocation; when the key exists (a redelivery), claims what it still
    /// holds instead. Returns what this invocation is to publish.
    async fn queue_alone(
        &self,
        run: &Run,
        alert: Alert,
        report: &mut Report,
    ) -> Result<Option<Claimed>, StoreError> {
        let pk = state_key(alert.rule_id, &alert.alert_id);
        let now = self.now_ms();
        let mut current = self.store.load(&pk).await?;
        report.state_reads += 1;
        for attempt in 0..MAX_CAS_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt)).await;
                current = self.store.load(&pk).await?;
                report.state_reads += 1;
            }
            let (mut state, version, new) = match current.take() {
                Some(Loaded::Found(v)) => (v.state, Some(v.version), false),
                None => {
                    match WindowState::holding(vec![PendingAlert::new(alert.clone(), now)], now) {
                        Some(state) => (state, None, true),
                        None => return Ok(None),
                    }
                }
                Some(Loaded::Corrupt {
                    version,
                    reason,
                    mut outbox,
                    raw,
                }) => {
                    crate::store::log_corrupt(&pk, &reason, &raw, outbox.len());
                    report.corrupt_states += 1;
                    if !outbox.iter().any(|p| p.alert.alert_id == alert.alert_id) {
                        outbox.push(PendingAlert::new(alert.clone(), now));
                    }
                    match WindowState::holding(outbox, now) {
                        Some(state) => (state, Some(version), true),
                        None => return Ok(None),
                    }
                }
            };
            let alerts = state.claim_due(&run.claim, now);
            if alerts.is_empty() {
                // Delivered already, or another invocation holds it.
                return Ok(None);
            }
            match self.store.save(&pk, &state, version).await? {
                SaveOutcome::Saved(version) => {
                    report.state_writes += 1;
                    report.alerts_raised += u64::from(new);
                    return Ok(Some(Claimed {
                        pk,
                        alerts,
                        stored: Versioned { state, version },
                    }));
                }
                SaveOutcome::Conflict => report.state_conflicts += 1,
            }
        }
        Err(StoreError::Transient(format!(
            "gave up on {} after {MAX_CAS_ATTEMPTS} conflicting writes",
            crate::bounded::cap(&pk)
        )))
    }
}
