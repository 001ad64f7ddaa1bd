//! The counters of one invocation: what the log line and the metrics say.

use serde::Serialize;

use crate::scan::ScanStats;

/// What one invocation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `DATA_MESSAGE`, `CONTROL_MESSAGE`, ... or `NDJSON`.
    pub message_type: String,
    /// Log group of the batch.
    pub log_group: String,
    /// Log stream of the batch.
    pub log_stream: String,
    /// Deterministic batch id (computed only for batches with matches).
    pub batch_id: String,
    /// Scan counters.
    pub scan: ScanStats,
    /// Distinct (rule, dedup key) touched.
    pub keys: u64,
    /// State reads.
    pub state_reads: u64,
    /// State writes that succeeded.
    pub state_writes: u64,
    /// Requests for the record of clusters heard from (see
    /// [`crate::silence`]), not counted in `state_reads`/`state_writes`.
    pub watch_requests: u64,
    /// Conditional writes that lost a race.
    pub state_conflicts: u64,
    /// Keys on which this batch had already been applied.
    pub duplicate_keys: u64,
    /// Alerts decided by this batch.
    pub alerts_raised: u64,
    /// Alerts delivered (including undelivered ones from earlier attempts).
    pub alerts_published: u64,
    /// Alerts whose publish failed; they stay in the outbox.
    pub alerts_failed: u64,
    /// Undelivered alerts pushed out of a full outbox (logged whole).
    pub alerts_dropped: u64,
    /// Matches older than their key's open window, not counted.
    pub late_matches: u64,
    /// Matches stamped later than their arrival allows, counted at the
    /// latest time allowed.
    pub future_matches: u64,
    /// Keys skipped without a read: their window is saturated.
    pub hot_keys: u64,
    /// Keys that failed for good (DynamoDB refused the item), logged.
    pub key_failures: u64,
    /// Stored states that could not be read and were started afresh.
    pub corrupt_states: u64,
    /// 1 when a sweep stopped before the end of the outbox to finish
    /// before the invocation's deadline (the next sweep goes on).
    pub sweep_stopped_early: u64,
    /// Keys a sweep skipped because their claim could not be written.
    pub sweep_key_errors: u64,
    /// Undelivered alerts found by an outbox sweep.
    pub outbox_found: u64,
    /// Kinesis records handled.
    pub records: u64,
    /// Kinesis records that can never be decoded (skipped, logged).
    pub poison_records: u64,
    /// Sequence numbers of Kinesis records to retry.
    pub batch_item_failures: Vec<String>,
    /// Failed Kinesis records whose data was kept for replay.
    pub records_kept: u64,
    /// Failed Kinesis records that could not be kept (a poison one's data
    /// is then in the log; a reported one is retried either way).
    pub keep_failures: u64,
    /// Wall time in ms.
    pub duration_ms: u64,
}

impl Report {
    /// Adds another report's counters (replay sums many batches).
    pub fn merge(&mut self, other: &Report) {
        self.scan.merge(&other.scan);
        self.keys += other.keys;
        self.state_reads += other.state_reads;
        self.state_writes += other.state_writes;
        self.state_conflicts += other.state_conflicts;
        self.watch_requests += other.watch_requests;
        self.duplicate_keys += other.duplicate_keys;
        self.alerts_raised += other.alerts_raised;
        self.alerts_published += other.alerts_published;
        self.alerts_failed += other.alerts_failed;
        self.alerts_dropped += other.alerts_dropped;
        self.late_matches += other.late_matches;
        self.future_matches += other.future_matches;
        self.hot_keys += other.hot_keys;
        self.key_failures += other.key_failures;
        self.corrupt_states += other.corrupt_states;
        self.outbox_found += other.outbox_found;
        self.sweep_stopped_early += other.sweep_stopped_early;
        self.sweep_key_errors += other.sweep_key_errors;
        self.records += other.records;
        self.poison_records += other.poison_records;
        self.records_kept += other.records_kept;
        self.keep_failures += other.keep_failures;
        self.batch_item_failures
            .extend(other.batch_item_failures.iter().cloned());
        self.duration_ms += other.duration_ms;
    }
}
