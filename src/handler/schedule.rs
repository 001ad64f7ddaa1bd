//! The sweep of undelivered alerts: on the schedule, and on an instance
//! whose own publish failed a minute ago.
//!
//! A sweep works in rounds of at most [`SWEEP_CHUNK`] keys, oldest due
//! alert first (the store's outbox index orders keys by when their first
//! alert became due; a live claim makes it due only when its lease ends,
//! so keys other invocations hold are skipped). Each round claims its keys,
//! publishes and settles them before the next round starts, and a new round
//! starts only when the time the last one took still fits before the
//! invocation's deadline: the sweep claims only what the time its last
//! round took says it can finish, and what it claimed is due again [`CLAIM_MARGIN_MS`](super::CLAIM_MARGIN_MS)
//! after its deadline even if the instance dies. One key's error costs only
//! that key this sweep; a round in which every publish failed ends the sweep
//! (SNS is down; the next one resumes).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use futures_util::stream::{self, StreamExt};

use super::outbox::{Claimed, Updated};
use super::{HandlerError, Processor, Report, Run, KEY_CONCURRENCY, OWED_SWEEP_EVERY_MS};
use crate::sink::AlertSink;
use crate::store::{OutboxCursor, StateStore, StoreError, Versioned};
use crate::time::Millis;

/// Keys one round of a sweep claims, publishes and settles.
pub const SWEEP_CHUNK: usize = 64;

/// Time a sweep leaves free before its deadline (the log line, metrics).
pub const SWEEP_RESERVE_MS: Millis = 3_000;

/// What a round is expected to take before one has been measured: the
/// longest a claim write, a publish and a settling write can each take.
pub const FIRST_ROUND_ESTIMATE_MS: Millis = 15_000;

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// The scheduled run.
    pub(super) async fn schedule(
        &self,
        run: &Run,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        report.message_type = "SCHEDULE".into();
        let swept = self.sweep(run, report).await;
        let silence = self.report_silence(run, report).await;
        swept.and(silence)
    }

    /// Sweeps after a failed publish here, at most once a minute: during a
    /// long SNS outage every batch would otherwise retry every alert. Its
    /// failure does not fail the batch that carried it (the batch's own
    /// alerts are safe in the outbox).
    pub(super) async fn sweep_if_owed(&self, run: &Run, report: &mut Report) {
        let now = self.now_ms();
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if self.owes.load(Ordering::Relaxed) && now.saturating_sub(last) >= OWED_SWEEP_EVERY_MS {
            if let Err(e) = self.sweep(run, report).await {
                tracing::warn!(error_type = e.error_type(), error = %e, "sweep after a failed publish did not finish");
            }
        }
    }

    /// Delivers undelivered alerts nobody holds a live claim on, oldest
    /// first, in rounds that fit before the deadline.
    pub(super) async fn sweep(&self, run: &Run, report: &mut Report) -> Result<(), HandlerError> {
        self.last_sweep_ms.store(self.now_ms(), Ordering::Relaxed);
        self.owes.store(false, Ordering::Relaxed);
        let mut cursor: Option<OutboxCursor> = None;
        let mut seen: HashSet<String> = HashSet::new();
        let mut estimate = FIRST_ROUND_ESTIMATE_MS;
        let mut failed: Option<HandlerError> = None;
        loop {
            let now = self.now_ms();
            if now
                .saturating_add(estimate)
                .saturating_add(SWEEP_RESERVE_MS)
                > run.deadline_ms
            {
                report.sweep_stopped_early = 1;
                break;
            }
            let page = self
                .store
                .with_outbox(now, cursor.as_ref(), SWEEP_CHUNK)
                .await?;
            report.state_reads += 1;
            let complete = page.keys.len() < SWEEP_CHUNK;
            cursor = page.next;
            // The index is eventually consistent: a key settled a moment
            // ago may show up again.
            let fresh: Vec<(String, Versioned)> = page
                .keys
                .into_iter()
                .filter(|(pk, _)| seen.insert(pk.clone()))
                .collect();
            report.outbox_found += fresh
                .iter()
                .map(|(_, v)| v.state.outbox.iter().filter(|p| p.claimable(now)).count() as u64)
                .sum::<u64>();
            let claimed = self.claim_round(run, fresh, report).await;
            let published = self.publish(run, claimed, report).await;
            // Round time, measured: what the next one is expected to take.
            estimate = self.now_ms().saturating_sub(now).max(1);
            if let Err(e) = published {
                let all = matches!(e, HandlerError::Publish { failed, attempted, .. } if failed == attempted);
                failed.get_or_insert(e);
                if all {
                    // SNS is down: the next sweep tries again.
                    break;
                }
            }
            if complete || cursor.is_none() {
                break;
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Claims the due alerts of a round's keys, concurrently; a key that
    /// fails is logged and left for the next sweep.
    async fn claim_round(
        &self,
        run: &Run,
        keys: Vec<(String, Versioned)>,
        report: &mut Report,
    ) -> Vec<Claimed> {
        let now = self.now_ms();
        let jobs: Vec<_> = keys
            .into_iter()
            .map(|(pk, current)| async move {
                let mut counters = Report::default();
                let updated = self
                    .update_key(&pk, current, &mut counters, |state| {
                        let due = state.claim_due(&run.claim, now);
                        (!due.is_empty()).then_some(due)
                    })
                    .await;
                (pk, counters, updated)
            })
            .collect();
        let results: Vec<(String, Report, Result<Updated<_>, StoreError>)> = stream::iter(jobs)
            .buffer_unordered(KEY_CONCURRENCY)
            .collect()
            .await;
        let mut claimed = Vec::new();
        for (pk, counters, updated) in results {
            report.merge(&counters);
            match updated {
                Ok(Updated::Saved(alerts, stored)) => claimed.push(Claimed { pk, alerts, stored }),
                // Nothing due any more, or the key kept changing: the next
                // sweep looks again.
                Ok(Updated::Nothing | Updated::GaveUp) => {}
                Err(e) => {
                    report.sweep_key_errors += 1;
                    tracing::warn!(pk = %crate::bounded::cap(&pk), error = %e, "key skipped by this sweep");
                }
            }
        }
        claimed
    }
}
