//! Where the data of failed Kinesis records is kept for replay: a
//! one-method port, with S3 for the Lambda and memory for tests.
//!
//! In organization mode the event source mapping's failure destination
//! only carries shard and sequence numbers, and the stream forgets the data
//! after 24 hours. The function cannot know which reported record will run
//! out of retries, so it keeps every record it reports in
//! `batchItemFailures` and every poison record, as an object whose body is
//! a Lambda invoke body `replay` reads as it is. A retry of the same record
//! writes the same key again (an idempotent overwrite).

pub mod memory;
pub mod s3;

use futures_util::future::BoxFuture;

/// Why a record is kept: the object's `reason` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReason {
    /// It can never be decoded; skipped.
    Poison,
    /// Its state could not be written; reported for retry.
    StateUnwritten,
    /// Too large for the configured memory; reported for retry.
    TooLarge,
    /// Too little time was left to start it; reported for retry.
    OutOfTime,
}

impl KeepReason {
    /// The metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeepReason::Poison => "poison",
            KeepReason::StateUnwritten => "state-unwritten",
            KeepReason::TooLarge => "too-large",
            KeepReason::OutOfTime => "out-of-time",
        }
    }
}

/// One failed record, as the keeper writes it.
#[derive(Debug, Clone)]
pub struct KeptRecord<'a> {
    /// `records/<yyyy-mm-dd>/<shardId>/<sequenceNumber>.json`.
    pub key: String,
    /// `{"awslogs":{"data":"<base64>"}}`: what `replay` reads.
    pub body: String,
    /// Why it is kept.
    pub reason: KeepReason,
    /// The record's `eventID` (`shardId-…:sequenceNumber`).
    pub event_id: &'a str,
}

impl<'a> KeptRecord<'a> {
    /// The object for a record of shard `shard` (from its event id) with
    /// `sequence_number`, which arrived in the stream at `arrival_ms`: the
    /// arrival day, not today, so a retry after midnight overwrites the
    /// same key.
    pub fn new(
        event_id: &'a str,
        sequence_number: &str,
        arrival_ms: crate::time::Millis,
        data: &str,
        reason: KeepReason,
    ) -> Self {
        let day = crate::time::format_rfc3339(arrival_ms);
        let day = day.get(..10).unwrap_or("unknown-day");
        let shard = event_id.split_once(':').map_or("unknown-shard", |(s, _)| s);
        let key = format!(
            "records/{day}/{}/{}.json",
            key_part(shard),
            key_part(sequence_number)
        );
        let body = serde_json::json!({"awslogs": {"data": data}}).to_string();
        Self {
            key,
            body,
            reason,
            event_id,
        }
    }
}

/// A key segment of only `[A-Za-z0-9._-]` (Lambda's ids are; anything else
/// becomes `_`), never empty.
fn key_part(text: &str) -> String {
    let part: String = text
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if part.is_empty() || part.chars().all(|c| c == '.') {
        "unknown".into()
    } else {
        part
    }
}

/// A record could not be kept.
#[derive(Debug, thiserror::Error)]
#[error("keeping record {key} failed: {reason}")]
pub struct KeepError {
    /// The object key.
    pub key: String,
    /// What went wrong.
    pub reason: String,
}

/// Keeps failed records. Object-safe (a boxed future), so the processor
/// holds one as `Arc<dyn RecordKeeper>` and deployments without a bucket
/// hold none.
pub trait RecordKeeper: Send + Sync {
    /// Writes (or overwrites) `record`; returns where it is, for the logs.
    fn keep<'a>(&'a self, record: &'a KeptRecord<'a>) -> BoxFuture<'a, Result<String, KeepError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_arrival_day_shard_and_sequence_number() {
        let r = KeptRecord::new(
            "shardId-000000000003:4965",
            "4965",
            1_732_439_200_500,
            "H4sI",
            KeepReason::Poison,
        );
        assert_eq!(r.key, "records/2024-11-24/shardId-000000000003/4965.json");
        assert_eq!(r.body, r#"{"awslogs":{"data":"H4sI"}}"#);
    }

    #[test]
    fn odd_ids_cannot_leave_their_prefix() {
        let r = KeptRecord::new("../x:1", "../../etc", 0, "", KeepReason::OutOfTime);
        assert_eq!(r.key, "records/1970-01-01/.._x/.._.._etc.json");
        let r = KeptRecord::new("", "", 0, "", KeepReason::OutOfTime);
        assert_eq!(r.key, "records/1970-01-01/unknown-shard/unknown.json");
    }
}
