//! Orchestration only: decode → detect → state → publish, for every kind of
//! invocation (a subscription batch, Kinesis records, the scheduled sweep, a
//! CloudTrail event).
//!
//! Per touched key the handler reads the state (in bulk, 100 keys a
//! request) and, when the batch changes it, writes it once with a condition
//! on the version it read (a lost race re-reads and re-applies after a
//! jittered backoff). An alert goes into the key's outbox in the same
//! conditional write that decides it, claimed by this invocation; it is then
//! published (many at a time) and a second write removes it from the
//! outbox, or gives the claim up so a retry or the scheduled sweep delivers
//! it. A batch applied before changes nothing, and a window that has alerted
//! at its rule's highest severity absorbs further matches without a write (a
//! warm instance remembers it and skips the read too).
//!
//! One key's permanent failure (DynamoDB refusing its item) is logged and
//! counted and costs no other key its alert; the invocation fails only for
//! errors a retry can fix.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::alert::Alert;
use crate::decode::{self, Batch, DecodeError, MessageType};
use crate::rules::Detector;
use crate::scan::{ScanStats, Scanner};
use crate::sink::{AlertSink, PublishError};
use crate::store::{state_key, Loaded, SaveOutcome, StateStore, StoreError, Versioned};
use crate::time::{Clock, Millis, SystemClock};
use crate::vocab::{Match, RuleId, WindowParams};
use crate::window::{apply_batch, BatchInfo, Claim, Outcome, WindowState};

/// Conditional-write attempts per key before giving up (the invocation then
/// fails and Lambda retries it).
pub const MAX_CAS_ATTEMPTS: u32 = 8;

/// Keys whose state is written at the same time.
pub const KEY_CONCURRENCY: usize = 64;

/// Alerts published at the same time.
pub const PUBLISH_CONCURRENCY: usize = 64;

/// How long a claim on an alert lasts: Lambda's longest timeout, so a claim
/// outlives the invocation that took it and no two invocations publish one
/// alert (unless one crashed between publishing and recording it).
pub const CLAIM_LEASE_MS: Millis = 15 * 60 * 1000;

/// Undelivered alerts one sweep takes on.
pub const SWEEP_LIMIT: usize = 1000;

/// How often an instance whose publish failed sweeps the outbox on its own,
/// besides the scheduled sweep.
pub const OWED_SWEEP_EVERY_MS: Millis = 60 * 1000;

/// Saturated windows a warm instance remembers (then it starts over).
pub const HOT_KEYS: usize = 4096;

/// Log events scanned and applied at a time: a batch of attacker-made
/// events, each making a few keys, then holds at most a few tens of
/// thousands of matches and states in memory, whatever its size. A batch
/// this size or smaller is one slice (almost every batch).
pub const EVENTS_PER_SLICE: usize = 2000;

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The payload cannot be decoded; retrying will not help.
    #[error(transparent)]
    InvalidPayload(#[from] DecodeError),
    /// DynamoDB failed in a way a retry can fix.
    #[error(transparent)]
    StateStore(#[from] StoreError),
    /// SNS failed; the alerts stay in their outbox for the retry or the
    /// scheduled sweep.
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
    /// Alerts delivered (including undelivered ones from earlier attempts).
    pub alerts_published: u64,
    /// Alerts whose publish failed; they stay in the outbox.
    pub alerts_failed: u64,
    /// Matches older than their key's open window, not counted.
    pub late_matches: u64,
    /// Keys skipped without a read: their window is saturated.
    pub hot_keys: u64,
    /// Keys that failed for good (DynamoDB refused the item), logged.
    pub key_failures: u64,
    /// Stored states that could not be read and were started afresh.
    pub corrupt_states: u64,
    /// Undelivered alerts found by an outbox sweep.
    pub outbox_found: u64,
    /// Kinesis records handled.
    pub records: u64,
    /// Kinesis records that can never be decoded (skipped, logged).
    pub poison_records: u64,
    /// Sequence numbers of Kinesis records to retry.
    pub batch_item_failures: Vec<String>,
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
        self.alerts_failed += other.alerts_failed;
        self.late_matches += other.late_matches;
        self.hot_keys += other.hot_keys;
        self.key_failures += other.key_failures;
        self.corrupt_states += other.corrupt_states;
        self.outbox_found += other.outbox_found;
        self.records += other.records;
        self.poison_records += other.poison_records;
        self.batch_item_failures
            .extend(other.batch_item_failures.iter().cloned());
        self.duration_ms += other.duration_ms;
    }
}

/// The detector wired to a state store and an alert sink.
pub struct Processor<S, P> {
    detector: Detector,
    store: S,
    sink: P,
    clock: Arc<dyn Clock>,
    /// Saturated windows seen by this instance: pk → (start, end).
    hot: Mutex<HashMap<String, (Millis, Millis)>>,
    /// Set when a publish failed here: the next invocation sweeps the
    /// outbox (Lambda's retry of the batch usually lands on a warm instance).
    owes: AtomicBool,
    /// Wall-clock time of this instance's last sweep.
    last_sweep_ms: AtomicI64,
    /// Random per instance: claim tokens and backoff jitter.
    seed: u64,
    invocations: AtomicU64,
}

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// Wires the parts together.
    pub fn new(detector: Detector, store: S, sink: P) -> Self {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self {
            detector,
            store,
            sink,
            clock: Arc::new(SystemClock),
            hot: Mutex::new(HashMap::new()),
            owes: AtomicBool::new(false),
            last_sweep_ms: AtomicI64::new(0),
            seed,
            invocations: AtomicU64::new(0),
        }
    }

    /// Replaces the wall clock (claims, batch memory, TTL, sweeps): tests
    /// hand in a [`ManualClock`](crate::time::ManualClock) and move it.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Wall-clock time now.
    pub fn now_ms(&self) -> Millis {
        self.clock.now_ms()
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

    /// A claim token unique to this instance and invocation.
    fn token(&self) -> String {
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n}", self.seed)
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
        let scanner = Scanner::new(&self.detector);
        let label = batch.label(self.detector.config().organization_mode);
        let slices = batch.log_events.chunks(EVENTS_PER_SLICE);
        let sliced = slices.len() > 1;
        let mut matches = Vec::new();
        let mut result = Ok(());
        for (n, slice) in slices.enumerate() {
            matches.clear();
            scanner.scan_events(&label, slice, &mut matches, &mut report.scan);
            if matches.is_empty() {
                // Nothing to count: no state, no batch id needed.
                continue;
            }
            if report.batch_id.is_empty() {
                report.batch_id = batch.id();
            }
            // Each slice is remembered on its own: a redelivery slices the
            // batch the same way.
            let id = if sliced {
                format!("{}{n:x}", &report.batch_id[..report.batch_id.len().min(12)])
            } else {
                report.batch_id.clone()
            };
            let info = BatchInfo {
                id: &id,
                cluster: &label,
                log_group: &batch.log_group,
                account: &batch.owner,
                now_ms: self.now_ms(),
            };
            if let Err(e) = self.apply(&info, &matches, &mut report).await {
                // Later slices are still applied: their keys are independent.
                result = result.and(Err(e));
            }
        }
        if report.batch_id.is_empty() {
            result = self.sweep_if_owed(&mut report).await;
        }
        report.duration_ms = elapsed_ms(started);
        result.map(|()| report)
    }

    /// Handles a raw Lambda invoke body: a subscription batch
    /// (`{"awslogs":{"data":...}}`, also inside a failure-queue record) or
    /// the scheduled event.
    pub async fn handle_invoke_body(&self, body: &[u8]) -> Result<Report, HandlerError> {
        match decode::classify_invoke(body)? {
            decode::Invocation::Logs(data) => self.handle_data(&data).await,
            decode::Invocation::Schedule => self.handle_schedule().await,
            decode::Invocation::CloudTrail(detail) => self.handle_cloudtrail(detail.get()).await,
            decode::Invocation::Kinesis(records) => Ok(self.handle_kinesis(&records).await),
        }
    }

    /// Records of a Kinesis stream fed by a CloudWatch Logs destination: each
    /// is one subscription batch, handled exactly as the subscription path
    /// handles it. A record whose state or alert failed for a reason a retry
    /// can fix is reported in `batch_item_failures` (Lambda retries from the
    /// lowest one; the records after it are safe to see again). A record
    /// that can never be decoded is logged and counted, never reported: it
    /// must not block its shard.
    pub async fn handle_kinesis(&self, records: &[decode::KinesisRecord<'_>]) -> Report {
        let started = Instant::now();
        let mut report = Report {
            message_type: "KINESIS".into(),
            ..Report::default()
        };
        for record in records {
            report.records += 1;
            let seq = &record.kinesis.sequence_number;
            match self.handle_data(&record.kinesis.data).await {
                Ok(r) => report.merge(&r),
                Err(HandlerError::InvalidPayload(e)) => {
                    report.poison_records += 1;
                    tracing::error!(
                        event_id = record.event_id.as_deref().unwrap_or_default(),
                        sequence_number = %seq,
                        error = %e,
                        "record can never be decoded; skipped (it stays in the stream for its retention)"
                    );
                }
                Err(e) => {
                    tracing::warn!(sequence_number = %seq, error_type = e.error_type(), error = %e, "record failed; reported for retry");
                    report.batch_item_failures.push(seq.to_string());
                }
            }
        }
        report.duration_ms = elapsed_ms(started);
        report
    }

    /// A CloudTrail management event: an alert when it blinds the detector
    /// on a watched cluster (see [`crate::tamper`]), published at once; a
    /// failed publish fails the invocation so Lambda retries it.
    pub async fn handle_cloudtrail(&self, detail: &str) -> Result<Report, HandlerError> {
        let started = Instant::now();
        let mut report = Report {
            message_type: "CLOUDTRAIL".into(),
            ..Report::default()
        };
        let detail: serde_json::Value =
            serde_json::from_str(detail).map_err(DecodeError::EventNotJson)?;
        let watched = &self.detector.config().watched_clusters;
        let result = match crate::tamper::assess(&detail, watched) {
            None => Ok(()),
            Some(alert) => {
                report.alerts_raised = 1;
                match self.publish_one(&alert).await {
                    (_, Delivery::Published) => {
                        report.alerts_published = 1;
                        Ok(())
                    }
                    (_, Delivery::Dropped) => {
                        report.alerts_failed = 1;
                        Ok(())
                    }
                    (_, Delivery::Failed(first)) => {
                        report.alerts_failed = 1;
                        Err(HandlerError::Publish {
                            failed: 1,
                            attempted: 1,
                            first,
                        })
                    }
                }
            }
        };
        report.duration_ms = elapsed_ms(started);
        result.map(|()| report)
    }

    /// The scheduled run: delivers every undelivered alert nobody holds.
    pub async fn handle_schedule(&self) -> Result<Report, HandlerError> {
        let started = Instant::now();
        let mut report = Report {
            message_type: "SCHEDULE".into(),
            ..Report::default()
        };
        let result = self.sweep(&mut report).await;
        report.duration_ms = elapsed_ms(started);
        result.map(|()| report)
    }

    /// Applies a batch's matches to state and publishes what it decided.
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
        let mut todo: Vec<(String, RuleId, Vec<&Match>)> = Vec::with_capacity(by_key.len());
        for ((rule, dedup), key_matches) in by_key {
            let pk = state_key(rule, dedup);
            if self.is_hot(&pk, &key_matches) {
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
        let claim = self.claim(batch.now_ms);
        // Keys are independent items: apply them concurrently.
        let jobs: Vec<_> = todo
            .into_iter()
            .map(|(pk, rule, key_matches)| {
                let current = loaded.remove(&pk);
                self.key_job(pk, rule, batch, key_matches, current, &claim)
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
        let published = self.publish(claimed, &claim, report).await;
        if duplicates {
            // A redelivery: an earlier attempt may have left alerts behind
            // on keys this instance skipped.
            self.owes.store(true, Ordering::Relaxed);
        }
        let swept = self.sweep_if_owed(report).await;
        match retryable {
            Some(e) => Err(e.into()),
            None => published.and(swept),
        }
    }

    /// This invocation's claim on the alerts it publishes.
    fn claim(&self, now_ms: Millis) -> Claim {
        Claim {
            token: self.token(),
            until_ms: now_ms.saturating_add(CLAIM_LEASE_MS),
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
            let (state, version) = match current.take() {
                None => (None, None),
                Some(Loaded::Found(v)) => (Some(v.state), Some(v.version)),
                Some(Loaded::Corrupt { version, reason }) => {
                    report.corrupt_states += 1;
                    tracing::warn!(pk = %crate::bounded::cap(pk), %reason, "stored state unreadable; starting the key afresh");
                    (None, Some(version))
                }
            };
            let Some(applied) = apply_batch(state, params, batch, matches, &render) else {
                return Ok(KeyDone::default());
            };
            report.late_matches += applied.late;
            let duplicate = applied.outcome == Outcome::Duplicate;
            report.duplicate_keys += u64::from(duplicate);
            let mut state = applied.state;
            for dropped in state.enqueue(&applied.alerts, batch.now_ms) {
                report.alerts_failed += 1;
                tracing::error!(alert = %dropped.to_json(), "outbox full after repeated publish failures; alert dropped from state, kept here");
            }
            // Undelivered alerts of earlier attempts go out with this write.
            let due = state.claim_due(claim, batch.now_ms);
            if applied.outcome != Outcome::Changed && due.is_empty() {
                self.remember_hot(pk, &state, params);
                return Ok(KeyDone {
                    claimed: None,
                    duplicate,
                });
            }
            match self.store.save(pk, &state, version).await? {
                SaveOutcome::Saved(version) => {
                    report.state_writes += 1;
                    report.alerts_raised += applied.alerts.len() as u64;
                    self.remember_hot(pk, &state, params);
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
    fn backoff(&self, attempt: u32) -> Duration {
        let base = 10u64 << attempt.min(8);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.seed ^ u64::from(attempt));
        let jitter = h.finish() % base.max(1);
        Duration::from_millis(base / 2 + jitter)
    }

    /// True when every match falls in (or before) a window this instance
    /// saw saturated: nothing to read or write. Safe even if another
    /// instance moved the key on: a newer window starts after this one's
    /// end, so these matches would be late there.
    fn is_hot(&self, pk: &str, matches: &[&Match]) -> bool {
        let Ok(hot) = self.hot.lock() else {
            return false;
        };
        hot.get(pk)
            .is_some_and(|(_, end)| matches.iter().all(|m| m.at_ms < *end))
    }

    /// Remembers a saturated window with nothing left to deliver (a key
    /// with undelivered alerts must be read, so a retry can deliver them).
    fn remember_hot(&self, pk: &str, state: &WindowState, params: WindowParams) {
        let Ok(mut hot) = self.hot.lock() else {
            return;
        };
        if state.saturated(params) && state.outbox.is_empty() {
            if hot.len() >= HOT_KEYS {
                hot.clear();
            }
            hot.insert(pk.to_owned(), (state.window_start, state.window_end()));
        } else {
            hot.remove(pk);
        }
    }

    /// Publishes the alerts this invocation claimed, many at a time, then
    /// records per key which were delivered (they leave the outbox) and
    /// gives the claim on the others up.
    async fn publish(
        &self,
        claimed: Vec<Claimed>,
        claim: &Claim,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        if claimed.is_empty() {
            return Ok(());
        }
        let alerts: Vec<&Alert> = claimed.iter().flat_map(|c| &c.alerts).collect();
        let attempted = alerts.len();
        // Collected first: a stream holding the closure would make this
        // future's lifetimes too specific to be spawned.
        let jobs: Vec<_> = alerts.into_iter().map(|a| self.publish_one(a)).collect();
        let outcomes: Vec<(String, Delivery)> = stream::iter(jobs)
            .buffer_unordered(PUBLISH_CONCURRENCY)
            .collect()
            .await;
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
            .map(|c| self.settle_key(c.pk, c.stored, &delivered, &claim.token))
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
    async fn publish_one(&self, alert: &Alert) -> (String, Delivery) {
        let id = alert.alert_id.clone();
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
                if let Some(rule) = self.detector.rule(v.state.rule) {
                    self.remember_hot(&pk, &v.state, rule.window());
                }
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
    async fn update_key<T>(
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

    /// Sweeps after a failed publish here, at most once a minute: during a
    /// long SNS outage every batch would otherwise retry every alert.
    async fn sweep_if_owed(&self, report: &mut Report) -> Result<(), HandlerError> {
        let now = self.now_ms();
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if self.owes.load(Ordering::Relaxed) && now.saturating_sub(last) >= OWED_SWEEP_EVERY_MS {
            self.sweep(report).await
        } else {
            Ok(())
        }
    }

    /// Delivers undelivered alerts that nobody holds a live claim on.
    async fn sweep(&self, report: &mut Report) -> Result<(), HandlerError> {
        let now = self.now_ms();
        self.last_sweep_ms.store(now, Ordering::Relaxed);
        let found = self.store.with_outbox(SWEEP_LIMIT).await?;
        report.state_reads += 1;
        report.outbox_found += found
            .iter()
            .map(|(_, v)| v.state.outbox.len() as u64)
            .sum::<u64>();
        let claim = self.claim(now);
        let mut claimed = Vec::new();
        for (pk, current) in found {
            let updated = self
                .update_key(&pk, current, report, |state| {
                    let due = state.claim_due(&claim, now);
                    (!due.is_empty()).then_some(due)
                })
                .await?;
            // Nothing due, or the key kept changing: the next sweep tries again.
            if let Updated::Saved(alerts, stored) = updated {
                claimed.push(Claimed { pk, alerts, stored });
            }
        }
        self.owes.store(false, Ordering::Relaxed);
        self.publish(claimed, &claim, report).await
    }
}

/// The alerts this invocation holds the claim on in one key, and the key as
/// stored with those claims.
#[derive(Debug)]
struct Claimed {
    pk: String,
    alerts: Vec<Alert>,
    stored: Versioned,
}

/// What a conditional update of a key did (returned once per update, so
/// the stored key is not boxed).
#[allow(clippy::large_enum_variant)]
enum Updated<T> {
    /// Written; what the change returned and the key as stored.
    Saved(T, Versioned),
    /// Nothing to change (or the key is gone).
    Nothing,
    /// The key kept changing under us.
    GaveUp,
}

/// What a key's work left to publish.
#[derive(Debug, Default)]
struct KeyDone {
    /// Alerts this invocation claimed on the key.
    claimed: Option<Claimed>,
    /// The batch had been applied to the key before (a redelivery).
    duplicate: bool,
}

/// How one publish ended.
enum Delivery {
    Published,
    /// Transient failure: released, stays in the outbox.
    Failed(PublishError),
    /// Refused for good even in minimal form: logged and removed.
    Dropped,
}

/// A key's partition key, counters and outcome.
type KeyResult = (String, Report, Result<KeyDone, StoreError>);

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
