//! Applying a batch's matches to the state of every key they touch: one
//! bulk read, then per key the window state machine and one conditional
//! write that both decides alerts and queues them, claimed by this
//! invocation.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use super::outbox::Claimed;
use super::{HandlerError, Processor, Report, Run, KEY_CONCURRENCY, MAX_CAS_ATTEMPTS};
use crate::alert::Alert;
use crate::sink::AlertSink;
use crate::store::{state_key, Loaded, SaveOutcome, StateStore, StoreError, Versioned};
use crate::vocab::{Match, RuleId};
use crate::window::{apply_batch, BatchInfo, Claim, Outcome, WindowState};

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// Applies a batch's matches to state and publishes what it decided,
    /// with [`DEFAULT_BUDGET_MS`](super::DEFAULT_BUDGET_MS) to do it in.
    pub async fn apply(
        &self,
        batch: &BatchInfo<'_>,
        matches: &[Match],
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let run = self.run(self.default_deadline());
        self.apply_run(&run, batch, matches, report).await
    }

    /// Applies a batch's matches to state and publishes what it decided.
    pub(super) async fn apply_run(
        &self,
        run: &Run,
        batch: &BatchInfo<'_>,
        matches: &[Match],
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let mut by_key: BTreeMap<(RuleId, &str), Vec<&Match>> = BTreeMap::new();
        for m in matches {
            by_key
                .entry((m.rule, m.dedup.as_str()))
                .or_default()
                .push(m);
        }
        report.keys += by_key.len() as u64;
        let mut todo: Vec<(String, RuleId, Vec<&Match>)> = Vec::with_capacity(by_key.len());
        for ((rule, dedup), key_matches) in by_key {
            let pk = state_key(rule, dedup);
            if self.hot.covers(&pk, &key_matches) {
                report.hot_keys += 1;
                continue;
            }
            todo.push((pk, rule, key_matches));
        }
        let pks: Vec<String> = todo.iter().map(|(pk, _, _)| pk.clone()).collect();
        let mut loaded = if pks.is_empty() {
            HashMap::new()
        } else {
            report.state_reads += pks.len().div_ceil(100) as u64;
            self.store.load_many(&pks).await?
        };
        // Keys are independent items: apply them concurrently.
        let jobs: Vec<_> = todo
            .into_iter()
            .map(|(pk, rule, key_matches)| {
                let current = loaded.remove(&pk);
                Box::pin(self.key_job(pk, rule, batch, key_matches, current, &run.claim))
            })
            .collect();
        let results: Vec<KeyResult> = stream::iter(jobs)
            .buffer_unordered(KEY_CONCURRENCY)
            .collect()
            .await;
        let mut claimed: Vec<Claimed> = Vec::new();
        let mut retryable: Option<StoreError> = None;
        let mut duplicates = false;
        for (pk, counters, result) in results {
            report.merge(&counters);
            match result {
                Ok(done) => {
                    duplicates |= done.duplicate;
                    claimed.extend(done.claimed);
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(pk = %crate::bounded::cap(&pk), error = %e, "key failed, will be retried");
                    retryable.get_or_insert(e);
                }
                Err(e) => {
                    report.key_failures += 1;
                    tracing::error!(pk = %crate::bounded::cap(&pk), error = %e, "key failed for good");
                }
            }
        }
        let published = self.publish(run, claimed, report).await;
        if duplicates {
            // A redelivery: an earlier attempt may have left alerts behind
            // on keys this instance skipped.
            self.owes.store(true, Ordering::Relaxed);
        }
        self.sweep_if_owed(run, report).await;
        match retryable {
            Some(e) => Err(e.into()),
            None => published,
        }
    }

    /// One key's work, with its own counters.
    async fn key_job(
        &self,
        pk: String,
        rule: RuleId,
        batch: &BatchInfo<'_>,
        matches: Vec<&Match>,
        current: Option<Loaded>,
        claim: &Claim,
    ) -> KeyResult {
        let mut counters = Report::default();
        let result = self
            .apply_key(&pk, rule, batch, &matches, current, claim, &mut counters)
            .await;
        (pk, counters, result)
    }

    /// Apply, queue and claim what is due, conditional write; re-read and
    /// again on a lost race.
    #[allow(clippy::too_many_arguments)]
    async fn apply_key(
        &self,
        pk: &str,
        rule: RuleId,
        batch: &BatchInfo<'_>,
        matches: &[&Match],
        mut current: Option<Loaded>,
        claim: &Claim,
        report: &mut Report,
    ) -> Result<KeyDone, StoreError> {
        let Some(rule) = self.detector.rule(rule) else {
            // A rule disabled since: its keys are left as they are.
            return Ok(KeyDone::default());
        };
        let params = rule.window();
        let render = |st: &WindowState, d| Alert::render(rule, st, d);
        for attempt in 0..MAX_CAS_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt)).await;
                current = self.store.load(pk).await?;
                report.state_reads += 1;
            }
            let (state, version, salvaged) = match current.take() {
                None => (None, None, None),
                Some(Loaded::Found(v)) => (Some(v.state), Some(v.version), None),
                Some(Loaded::Corrupt {
                    version,
                    reason,
                    outbox,
                    raw,
                }) => {
                    report.corrupt_states += 1;
                    crate::store::log_corrupt(pk, &reason, &raw, outbox.len());
                    (None, Some(version), Some(outbox))
                }
            };
            let Some(applied) = apply_batch(state, params, batch, matches, &render) else {
                return Ok(KeyDone::default());
            };
            report.late_matches += applied.late;
            let duplicate = applied.outcome == Outcome::Duplicate;
            report.duplicate_keys += u64::from(duplicate);
            let mut state = applied.state;
            // An unreadable item is overwritten, keeping the alerts it held.
            let overwrite = salvaged.is_some();
            if let Some(outbox) = salvaged {
                state.outbox.splice(0..0, outbox);
            }
            let fresh: Vec<Arc<Alert>> = applied.alerts.into_iter().map(Arc::new).collect();
            for dropped in state.enqueue(fresh.iter().cloned(), batch.now_ms) {
                report.alerts_dropped += 1;
                tracing::error!(alert = %dropped.to_json(), "outbox full after repeated publish failures; alert dropped from state, kept here");
            }
            // Undelivered alerts of earlier attempts go out with this write.
            let due = state.claim_due(claim, batch.now_ms);
            if applied.outcome != Outcome::Changed && due.is_empty() && !overwrite {
                self.hot.remember(pk, &state);
                return Ok(KeyDone {
                    claimed: None,
                    duplicate,
                });
            }
            let saved = match self.store.save(pk, &state, version).await {
                Ok(saved) => saved,
                Err(e) => {
                    if !e.is_transient() {
                        // Nothing will ever store these: they are kept here.
                        for alert in &fresh {
                            report.alerts_dropped += 1;
                            tracing::error!(alert = %alert.to_json(), "alert decided on a key DynamoDB refuses for good; kept here");
                        }
                    }
                    return Err(e);
                }
            };
            match saved {
                SaveOutcome::Saved(version) => {
                    report.state_writes += 1;
                    report.alerts_raised += fresh.len() as u64;
                    self.hot.remember(pk, &state);
                    return Ok(KeyDone {
                        claimed: (!due.is_empty()).then(|| Claimed {
                            pk: pk.to_owned(),
                            alerts: due,
                            stored: Versioned { state, version },
                        }),
                        duplicate,
                    });
                }
                SaveOutcome::Conflict => report.state_conflicts += 1,
            }
        }
        Err(StoreError::Transient(format!(
            "gave up on {} after {MAX_CAS_ATTEMPTS} conflicting writes",
            crate::bounded::cap(pk)
        )))
    }

    /// Jittered exponential backoff before conflict retry `attempt` (1..):
    /// about 10, 20, 40 ... ms, each between half and 1.5 times that.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let base = 10u64 << attempt.min(8);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.seed ^ u64::from(attempt));
        let jitter = h.finish() % base.max(1);
        Duration::from_millis(base / 2 + jitter)
    }
}

/// What a key's work left to publish.
#[derive(Debug, Default)]
struct KeyDone {
    /// Alerts this invocation claimed on the key.
    claimed: Option<Claimed>,
    /// The batch had been applied to the key before (a redelivery).
    duplicate: bool,
}

/// A key's partition key, counters and outcome.
type KeyResult = (String, Report, Result<KeyDone, StoreError>);
