//! Records of a Kinesis stream fed by a CloudWatch Logs destination
//! (organization mode): each record is one subscription batch, handled as
//! the subscription path handles it.
//!
//! A record is reported in `batchItemFailures` (Lambda retries from the
//! lowest one; the records after it are safe to see again) only when its
//! state could not be written, or when it is too large for the configured
//! memory (raising the setting lets the retry through), or when too little
//! time is left to start it. A record whose
//! alerts could not be published is done: its alerts are in the outbox and
//! the schedule delivers them, so an SNS outage never stalls a shard. A
//! record that can never be decoded is *poison*: counted and skipped.
//!
//! The failure destination only carries shard and sequence numbers and the
//! stream forgets the data after 24 hours, so every reported record and
//! every poison record is kept (see [`crate::keep`]) where `replay` reads
//! it. Without a keeper, or when keeping fails, a poison record's data is
//! written to the function's log in parts, where README's recipe finds it;
//! a reported record is retried either way.

use std::sync::atomic::Ordering;

use super::{HandlerError, Processor, Report, Run};
use crate::decode::{DecodeError, KinesisRecord};
use crate::keep::{KeepReason, KeptRecord};
use crate::sink::AlertSink;
use crate::store::StateStore;

/// Time kept free before the deadline: a record is started only with more
/// than this left (the longest a record's DynamoDB and SNS calls take).
pub const RECORD_RESERVE_MS: crate::time::Millis = 15_000;

/// Records kept at the same time when the deadline leaves several
/// unstarted.
pub const KEEP_CONCURRENCY: usize = 16;

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// Handles every record into `report`; never fails as a whole.
    pub(super) async fn kinesis(
        &self,
        run: &Run,
        records: &[KinesisRecord<'_>],
        report: &mut Report,
    ) {
        report.message_type = "KINESIS".into();
        for (n, record) in records.iter().enumerate() {
            if self.now_ms().saturating_add(RECORD_RESERVE_MS) > run.deadline_ms {
                // Out of time: Lambda retries from the first record left.
                let left = &records[n..];
                tracing::warn!(
                    records_left = left.len(),
                    "deadline near; the records left are reported for retry"
                );
                report
                    .batch_item_failures
                    .extend(left.iter().map(|r| r.kinesis.sequence_number.to_string()));
                // A chunk at a time, each kept concurrently (`join_all` on a
                // consumed iterator: no closure held across an await, which
                // a spawned invocation's `Send` bound would reject).
                let mut kept = Vec::with_capacity(left.len());
                for chunk in left.chunks(KEEP_CONCURRENCY) {
                    let keeping = chunk.iter().map(|r| self.keep(r, KeepReason::OutOfTime));
                    kept.extend(futures_util::future::join_all(keeping).await);
                }
                count_kept(report, &kept);
                break;
            }
            report.records += 1;
            let seq = &record.kinesis.sequence_number;
            let mut one = Report::default();
            let result = self.logs(run, &record.kinesis.data, &mut one).await;
            report.merge(&one);
            match result {
                Ok(()) => {}
                Err(HandlerError::Publish { failed, .. }) => {
                    tracing::warn!(sequence_number = %seq, failed, "record counted; its alerts wait in the outbox for the schedule");
                    run.hold_publish.store(true, Ordering::Relaxed);
                }
                Err(HandlerError::InvalidPayload(e @ DecodeError::TooLarge { .. })) => {
                    tracing::error!(sequence_number = %seq, error = %e, "record too large for this configuration; reported for retry");
                    report.batch_item_failures.push(seq.to_string());
                    let kept = self.keep(record, KeepReason::TooLarge).await;
                    count_kept(report, &[kept]);
                }
                Err(HandlerError::InvalidPayload(e)) => {
                    report.poison_records += 1;
                    let kept = self.keep(record, KeepReason::Poison).await;
                    count_kept(report, &[kept]);
                    if kept != Some(true) {
                        log_poison(record, &e);
                    }
                }
                Err(e) => {
                    tracing::warn!(sequence_number = %seq, error_type = e.error_type(), error = %e, "record failed; reported for retry");
                    report.batch_item_failures.push(seq.to_string());
                    let kept = self.keep(record, KeepReason::StateUnwritten).await;
                    count_kept(report, &[kept]);
                }
            }
        }
    }
}

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// Keeps a failed record's data for replay: `Some(true)` when it is
    /// kept, `Some(false)` when that failed, `None` without a keeper. A
    /// failure is logged and changes nothing else: the caller still
    /// reports the record, or logs a poison record's data.
    async fn keep(&self, record: &KinesisRecord<'_>, reason: KeepReason) -> Option<bool> {
        let keeper = self.keeper.as_ref()?;
        let seq = &record.kinesis.sequence_number;
        let event_id = record.event_id.as_deref().unwrap_or_default();
        // The arrival time, so a retry writes the same key; a record
        // without one (not from Lambda) goes under today.
        let arrival_ms = record
            .kinesis
            .approximate_arrival_timestamp
            .map_or_else(|| self.now_ms(), |s| (s * 1000.0) as crate::time::Millis);
        let kept = KeptRecord::new(event_id, seq, arrival_ms, &record.kinesis.data, reason);
        Some(match keeper.keep(&kept).await {
            Ok(location) => {
                tracing::warn!(
                    event_id,
                    sequence_number = %seq,
                    reason = reason.as_str(),
                    location = %location,
                    "failed record kept for replay"
                );
                true
            }
            Err(e) => {
                tracing::error!(
                    event_id,
                    sequence_number = %seq,
                    reason = reason.as_str(),
                    error = %e,
                    "failed record could not be kept"
                );
                false
            }
        })
    }
}

/// Counts kept records and those that could not be (with a keeper).
fn count_kept(report: &mut Report, kept: &[Option<bool>]) {
    for k in kept {
        match k {
            Some(true) => report.records_kept += 1,
            Some(false) => report.keep_failures += 1,
            None => {}
        }
    }
}

/// Writes a poison record's data to the function's log, in parts a
/// CloudWatch Logs event can hold, so it can be put back together and
/// replayed (see README, "Replaying a poison record").
fn log_poison(record: &KinesisRecord<'_>, error: &DecodeError) {
    let data: &str = &record.kinesis.data;
    let seq = &record.kinesis.sequence_number;
    let event_id = record.event_id.as_deref().unwrap_or_default();
    let chunks = crate::bounded::pieces(data, crate::store::LOG_PART_BYTES);
    tracing::error!(
        event_id,
        sequence_number = %seq,
        error = %error,
        parts = chunks.len(),
        "poison record: can never be decoded; skipped, its data follows in the log"
    );
    for (part, chunk) in chunks.iter().enumerate() {
        tracing::error!(
            sequence_number = %seq,
            part,
            parts = chunks.len(),
            data = *chunk,
            "poison record data"
        );
    }
}
