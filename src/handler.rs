//! Orchestration only: decode → detect → state → publish.
//!
//! Per touched key the handler reads the state once and writes it once with
//! a condition on the version it read (a lost race re-reads and re-applies).
//! An alert is recorded as pending in the same write that decides it, then
//! published, then marked sent; if publishing fails the invocation fails and
//! the retry, finding the batch already applied, only publishes what is still
//! pending. A batch applied before changes nothing.

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::alert::Alert;
use crate::decode::{self, Batch, DecodeError, MessageType};
use crate::rules::{Detector, Match, RuleId};
use crate::scan::{ScanStats, Scanner};
use crate::sink::{AlertSink, PublishError};
use crate::store::{state_key, SaveOutcome, StateStore, StoreError};
use crate::time::Millis;
use crate::window::{apply_batch, BatchInfo, WindowState};

/// Conditional-write attempts per key before giving up (the invocation then
/// fails and Lambda retries it).
pub const MAX_CAS_ATTEMPTS: u32 = 16;

/// Keys whose state is read and written at the same time.
pub const KEY_CONCURRENCY: usize = 16;

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The payload cannot be decoded; retrying will not help.
    #[error(transparent)]
    InvalidPayload(#[from] DecodeError),
    /// DynamoDB failed; retry later.
    #[error(transparent)]
    StateStore(#[from] StoreError),
    /// SNS failed; the alerts stay pending for the retry.
    #[error("{failed} of {attempted} alerts could not be published; first error: {first}")]
    Publish {
        /// Alerts that failed.
        failed: usize,
        /// Alerts attempted.
        attempted: usize,
        /// The first error.
        first: PublishError,
    },
}

impl HandlerError {
    /// Stable error type for Lambda diagnostics and dashboards.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::InvalidPayload(_) => "InvalidPayload",
            HandlerError::StateStore(_) => "StateStoreUnavailable",
            HandlerError::Publish { .. } => "PublishFailed",
        }
    }
}

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
    /// Conditional writes that lost a race.
    pub state_conflicts: u64,
    /// Keys on which this batch had already been applied.
    pub duplicate_keys: u64,
    /// Alerts decided by this batch.
    pub alerts_raised: u64,
    /// Alerts delivered (including pending ones from earlier attempts).
    pub alerts_published: u64,
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
        self.duplicate_keys += other.duplicate_keys;
        self.alerts_raised += other.alerts_raised;
        self.alerts_published += other.alerts_published;
        self.duration_ms += other.duration_ms;
    }
}

/// Wall clock in epoch ms; injected so tests control time.
pub type Clock = fn() -> Millis;

/// The system clock.
pub fn system_clock() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The detector wired to a state store and an alert sink.
pub struct Processor<S, P> {
    detector: Detector,
    store: S,
    sink: P,
    clock: Clock,
}

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// Wires the parts together.
    pub fn new(detector: Detector, store: S, sink: P) -> Self {
        Self {
            detector,
            store,
            sink,
            clock: system_clock,
        }
    }

    /// Replaces the wall clock (which only ages undelivered alerts).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Wall-clock time now.
    pub fn now_ms(&self) -> Millis {
        (self.clock)()
    }

    /// The detector.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The state store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The alert sink.
    pub fn sink(&self) -> &P {
        &self.sink
    }

    /// Handles one `awslogs.data` value.
    pub async fn handle_data(&self, data: &str) -> Result<Report, HandlerError> {
        let started = Instant::now();
        let json = decode::inflate(data, self.detector.config().max_decompressed_bytes)?;
        let batch = Batch::parse(&json)?;
        let mut report = Report {
            message_type: batch.message_type.to_string(),
            log_group: batch.log_group.to_string(),
            log_stream: batch.log_stream.to_string(),
            ..Report::default()
        };
        if batch.kind() != MessageType::Data {
            report.duration_ms = elapsed_ms(started);
            return Ok(report);
        }
        let mut matches = Vec::new();
        Scanner::new(&self.detector).scan_batch(&batch, &mut matches, &mut report.scan);
        if matches.is_empty() {
            // Nothing to count: no state, no batch id needed.
            report.duration_ms = elapsed_ms(started);
            return Ok(report);
        }
        report.batch_id = batch.id();
        let at_ms = batch
            .log_events
            .iter()
            .filter_map(|e| e.timestamp)
            .max()
            .unwrap_or(0);
        let info = BatchInfo {
            id: &report.batch_id.clone(),
            at_ms,
            cluster: batch.cluster(),
            log_group: &batch.log_group,
            account: &batch.owner,
            now_ms: self.now_ms(),
        };
        let result = self.apply(&info, &matches, &mut report).await;
        report.duration_ms = elapsed_ms(started);
        result.map(|()| report)
    }

    /// Handles a raw Lambda invoke body (`{"awslogs":{"data":...}}`).
    pub async fn handle_invoke_body(&self, body: &[u8]) -> Result<Report, HandlerError> {
        let data = decode::extract_data(body)?;
        self.handle_data(&data).await
    }

    /// Applies a batch's matches to state and publishes what is due.
    pub async fn apply(
        &self,
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
        // Keys are independent items: apply them concurrently, in order.
        let jobs: Vec<_> = by_key
            .iter()
            .map(|((rule, dedup), key_matches)| self.key_job(*rule, dedup, batch, key_matches))
            .collect();
        let results: Vec<KeyResult> = stream::iter(jobs).buffered(KEY_CONCURRENCY).collect().await;
        let mut due: Vec<(String, Stored, Vec<Alert>)> = Vec::new();
        for (pk, counters, result) in results {
            report.merge(&counters);
            if let Some(stored) = result? {
                let alerts = stored.state.deliverable(batch.id, batch.now_ms);
                if !alerts.is_empty() {
                    due.push((pk, stored, alerts));
                }
            }
        }
        self.deliver(due, report).await
    }

    /// One key's work, with its own counters.
    async fn key_job(
        &self,
        rule: RuleId,
        dedup: &str,
        batch: &BatchInfo<'_>,
        matches: &[&Match],
    ) -> KeyResult {
        let pk = state_key(rule, dedup);
        let mut counters = Report::default();
        let result = self
            .apply_key(&pk, rule, batch, matches, &mut counters)
            .await;
        (pk, counters, result)
    }

    /// Read, apply, conditional write; again on a lost race. Returns the
    /// key's state as stored, whose `pending` holds the alerts to deliver
    /// (new ones and any left by an earlier attempt).
    async fn apply_key(
        &self,
        pk: &str,
        rule: RuleId,
        batch: &BatchInfo<'_>,
        matches: &[&Match],
        report: &mut Report,
    ) -> Result<Option<Stored>, HandlerError> {
        let params = self.detector.window_params(rule);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.store.load(pk).await?;
            report.state_reads += 1;
            let version = current.as_ref().map(|v| v.version);
            let Some(applied) = apply_batch(current.map(|v| v.state), params, batch, matches)
            else {
                return Ok(None);
            };
            if applied.duplicate {
                report.duplicate_keys += 1;
                let version = version.unwrap_or(0);
                return Ok(Some(Stored {
                    state: applied.state,
                    version,
                }));
            }
            match self.store.save(pk, &applied.state, version).await? {
                SaveOutcome::Saved(version) => {
                    report.state_writes += 1;
                    report.alerts_raised += applied.alerts.len() as u64;
                    return Ok(Some(Stored {
                        state: applied.state,
                        version,
                    }));
                }
                SaveOutcome::Conflict => report.state_conflicts += 1,
            }
        }
        Err(StoreError::TooManyConflicts {
            pk: pk.to_owned(),
            attempts: MAX_CAS_ATTEMPTS,
        }
        .into())
    }

    /// Publishes pending alerts and marks the delivered ones sent.
    async fn deliver(
        &self,
        due: Vec<(String, Stored, Vec<Alert>)>,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let attempted: usize = due.iter().map(|(_, _, a)| a.len()).sum();
        let mut failures: Vec<PublishError> = Vec::new();
        for (pk, stored, alerts) in due {
            let mut sent = Vec::with_capacity(alerts.len());
            for alert in &alerts {
                match self.sink.publish(alert).await {
                    Ok(()) => sent.push(alert.alert_id.clone()),
                    Err(e) => failures.push(e),
                }
            }
            report.alerts_published += sent.len() as u64;
            if !sent.is_empty() {
                self.mark_sent(&pk, stored, &sent, report).await?;
            }
        }
        match failures.into_iter().next() {
            None => Ok(()),
            Some(first) => Err(HandlerError::Publish {
                failed: attempted - report.alerts_published as usize,
                attempted,
                first,
            }),
        }
    }

    /// Removes delivered alerts from a key's pending list. The first attempt
    /// writes on top of the version this invocation stored (no read).
    async fn mark_sent(
        &self,
        pk: &str,
        stored: Stored,
        sent: &[String],
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let mut known = Some(stored);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = match known.take() {
                Some(s) => s,
                None => {
                    report.state_reads += 1;
                    match self.store.load(pk).await? {
                        Some(v) => Stored {
                            state: v.state,
                            version: v.version,
                        },
                        None => return Ok(()),
                    }
                }
            };
            let mut state: WindowState = current.state;
            if !state
                .pending
                .iter()
                .any(|p| sent.contains(&p.alert.alert_id))
            {
                return Ok(());
            }
            state.mark_sent(sent);
            match self.store.save(pk, &state, Some(current.version)).await? {
                SaveOutcome::Saved(_) => {
                    report.state_writes += 1;
                    return Ok(());
                }
                SaveOutcome::Conflict => report.state_conflicts += 1,
            }
        }
        Err(StoreError::TooManyConflicts {
            pk: pk.to_owned(),
            attempts: MAX_CAS_ATTEMPTS,
        }
        .into())
    }
}

/// A key's partition key, counters and outcome.
type KeyResult = (String, Report, Result<Option<Stored>, HandlerError>);

/// A key's state and the version it is stored at.
struct Stored {
    state: WindowState,
    version: u64,
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
