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
//! record that can never be decoded is *poison*: counted, and its data
//! written to the function's log in parts (the failure destination only
//! carries shard and sequence numbers), where README's recipe finds it.

use std::sync::atomic::Ordering;

use super::{HandlerError, Processor, Report, Run};
use crate::decode::{DecodeError, KinesisRecord};
use crate::sink::AlertSink;
use crate::store::StateStore;

/// Time kept free before the deadline: a record is started only with more
/// than this left (the longest a record's DynamoDB and SNS calls take).
pub const RECORD_RESERVE_MS: crate::time::Millis = 15_000;

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
                }
                Err(HandlerError::InvalidPayload(e)) => {
                    report.poison_records += 1;
                    keep_poison(record, &e);
                }
                Err(e) => {
                    tracing::warn!(sequence_number = %seq, error_type = e.error_type(), error = %e, "record failed; reported for retry");
                    report.batch_item_failures.push(seq.to_string());
                }
            }
        }
    }
}

/// Writes a poison record's data to the function's log, in parts a
/// CloudWatch Logs event can hold, so it can be put back together and
/// replayed (see README, "Replaying a poison record").
fn keep_poison(record: &KinesisRecord<'_>, error: &DecodeError) {
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
