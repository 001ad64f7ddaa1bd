//! Orchestration only: decode → detect → state → publish, for every kind of
//! invocation. How one flows through the files of this folder:
//!
//! ```text
//! invoke body ─ classify ─┬─ logs.rs        subscription batch: scan, then apply.rs
//!                         ├─ kinesis.rs     records, each a subscription batch
//!                         ├─ cloudtrail.rs  tamper alert, queued like any other
//!                         └─ schedule.rs    sweep of undelivered alerts, then
//!                                           silence.rs: clusters gone quiet
//!
//! apply.rs   per touched key: read, apply the window state machine, queue
//!            and claim alerts, one conditional write (hot.rs skips keys
//!            whose window is saturated)
//! outbox.rs  publish claimed alerts, then settle them in their keys
//! ```
//!
//! Per touched key the handler reads the state (in bulk, 100 keys a
//! request) and, when the batch changes it, writes it once with a condition
//! on the version it read (a lost race re-reads and re-applies after a
//! jittered backoff). An alert goes into the key's outbox in the same
//! conditional write that decides it, claimed by this invocation until its
//! deadline; it is then published (many at a time) and a second write
//! removes it from the outbox, or gives the claim up so a retry or the
//! scheduled sweep delivers it.
//!
//! One key's permanent failure (DynamoDB refusing its item) is logged and
//! counted and costs no other key its alert; the invocation fails only for
//! errors a retry can fix, and never because SNS is down: an alert in the
//! outbox is safe, and the schedule delivers it.

mod apply;
mod cloudtrail;
mod hot;
mod kinesis;
mod logs;
mod outbox;
mod report;
mod schedule;
mod silence;

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub use report::Report;

use crate::decode::{self, DecodeError};
use crate::rules::Detector;
use crate::sink::{AlertSink, PublishError};
use crate::store::{StateStore, StoreError};
use crate::time::{Clock, Millis, SystemClock};
use crate::window::Claim;

/// Conditional-write attempts per key before giving up (the invocation then
/// fails and Lambda retries it).
pub const MAX_CAS_ATTEMPTS: u32 = 8;

/// Keys whose state is written at the same time.
pub const KEY_CONCURRENCY: usize = 64;

/// Alerts published at the same time.
pub const PUBLISH_CONCURRENCY: usize = 64;

/// How long a claim outlives the deadline of the invocation that took it:
/// long enough for a publish in flight at the deadline to be recorded,
/// short enough that the next sweep delivers what a killed instance held.
pub const CLAIM_MARGIN_MS: Millis = 30 * 1000;

/// The time an invocation has when the caller gives no deadline (`replay`,
/// tests): Lambda's default for this function.
pub const DEFAULT_BUDGET_MS: Millis = 60 * 1000;

/// How far past its arrival an event may be stamped; later times are
/// clamped to this (API servers' clocks are NTP-synchronised; only a forged
/// log event is further ahead).
pub const MAX_CLOCK_SKEW_MS: Millis = 60 * 1000;

/// How often an instance whose publish failed sweeps the outbox on its own,
/// besides the scheduled sweep.
pub const OWED_SWEEP_EVERY_MS: Millis = 60 * 1000;

/// Log events scanned and applied at a time: a batch of attacker-made
/// events, each making a few keys, then holds at most a few tens of
/// thousands of matches and states in memory, whatever its size. A batch
/// this size or smaller is one slice (almost every batch).
pub const EVENTS_PER_SLICE: usize = 2000;

pub use hot::HOT_KEYS;
pub use schedule::SWEEP_CHUNK;

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

/// What an invocation did, and why it failed if it did: the counters are
/// there either way, so losses during an outage are still measured.
#[derive(Debug)]
pub struct Handled {
    /// What was done before the end (or the failure).
    pub report: Report,
    /// The error that fails the invocation, if any.
    pub error: Option<HandlerError>,
}

impl Handled {
    /// The report, or the error.
    pub fn into_result(self) -> Result<Report, HandlerError> {
        match self.error {
            None => Ok(self.report),
            Some(e) => Err(e),
        }
    }
}

/// One invocation's deadline and its claim on the alerts it publishes: the
/// claim's lease ends [`CLAIM_MARGIN_MS`] after the deadline, so no claim
/// outlives the invocation that took it by more than that.
#[derive(Debug)]
pub(crate) struct Run {
    deadline_ms: Millis,
    claim: Claim,
    /// Set once SNS failed in this invocation when more batches follow
    /// (Kinesis records): their alerts stay claimed in the outbox until
    /// the claim ends, and the schedule delivers them, instead of each
    /// record waiting on SNS again.
    hold_publish: AtomicBool,
}

/// The detector wired to a state store and an alert sink.
pub struct Processor<S, P> {
    detector: Detector,
    store: S,
    sink: P,
    clock: Arc<dyn Clock>,
    hot: hot::HotKeys,
    /// Clusters this instance noted as heard from, and when.
    noted: silence::Noted,
    /// The watch record as this instance last saw it.
    watch: silence::Watch,
    /// Set when a publish failed here: the next invocation sweeps the
    /// outbox (Lambda's retry of the batch usually lands on a warm instance).
    owes: AtomicBool,
    /// Wall-clock time of this instance's last sweep.
    last_sweep_ms: AtomicI64,
    /// Random per instance: claim tokens and backoff jitter.
    seed: u64,
    invocations: AtomicU64,
    /// Where failed Kinesis records are kept for replay (organization
    /// mode with a bucket); without one they are logged.
    keeper: Option<Arc<dyn crate::keep::RecordKeeper>>,
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
            hot: hot::HotKeys::default(),
            noted: silence::Noted::default(),
            watch: silence::Watch::default(),
            owes: AtomicBool::new(false),
            last_sweep_ms: AtomicI64::new(0),
            seed,
            invocations: AtomicU64::new(0),
            keeper: None,
        }
    }

    /// Keeps the data of failed Kinesis records with `keeper` (see
    /// [`crate::keep`]).
    pub fn with_keeper(mut self, keeper: Arc<dyn crate::keep::RecordKeeper>) -> Self {
        self.keeper = Some(keeper);
        self
    }

    /// Replaces the wall clock (claims, deadlines, TTL, sweeps): tests hand
    /// in a [`ManualClock`](crate::time::ManualClock) and move it.
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

    /// A new invocation ending at `deadline_ms`, with a claim token unique
    /// to this instance and invocation.
    fn run(&self, deadline_ms: Millis) -> Run {
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        Run {
            deadline_ms,
            claim: Claim {
                token: format!("{:016x}-{n}", self.seed),
                until_ms: deadline_ms.saturating_add(CLAIM_MARGIN_MS),
            },
            hold_publish: AtomicBool::new(false),
        }
    }

    /// The default deadline: [`DEFAULT_BUDGET_MS`] from now.
    fn default_deadline(&self) -> Millis {
        self.now_ms().saturating_add(DEFAULT_BUDGET_MS)
    }

    /// Handles a raw Lambda invoke body that must be done by `deadline_ms`
    /// (wall clock): a subscription batch (`{"awslogs":{"data":...}}`, also
    /// inside a failure-queue record), Kinesis records, a CloudTrail event
    /// or the schedule. The report is there even when the invocation fails.
    pub async fn handle_invocation(&self, body: &[u8], deadline_ms: Millis) -> Handled {
        let started = Instant::now();
        let run = self.run(deadline_ms);
        let mut report = Report::default();
        let result = match decode::classify_invoke(body) {
            Err(e) => Err(e.into()),
            Ok(decode::Invocation::Logs(data)) => self.logs(&run, &data, &mut report).await,
            Ok(decode::Invocation::Schedule) => self.schedule(&run, &mut report).await,
            Ok(decode::Invocation::CloudTrail(detail)) => {
                self.cloudtrail(&run, detail.get(), &mut report).await
            }
            Ok(decode::Invocation::Kinesis(records)) => {
                self.kinesis(&run, &records, &mut report).await;
                Ok(())
            }
        };
        report.duration_ms = elapsed_ms(started);
        Handled {
            report,
            error: result.err(),
        }
    }

    /// [`Self::handle_invocation`] with [`DEFAULT_BUDGET_MS`] to do it in.
    pub async fn handle_invoke_body(&self, body: &[u8]) -> Result<Report, HandlerError> {
        self.handle_invocation(body, self.default_deadline())
            .await
            .into_result()
    }

    /// Handles one `awslogs.data` value.
    pub async fn handle_data(&self, data: &str) -> Result<Report, HandlerError> {
        let started = Instant::now();
        let run = self.run(self.default_deadline());
        let mut report = Report::default();
        let result = self.logs(&run, data, &mut report).await;
        report.duration_ms = elapsed_ms(started);
        result.map(|()| report)
    }

    /// The scheduled run, with [`DEFAULT_BUDGET_MS`] to do it in.
    pub async fn handle_schedule(&self) -> Result<Report, HandlerError> {
        self.handle_schedule_until(self.default_deadline()).await
    }

    /// The scheduled run, to be done by `deadline_ms`: delivers undelivered
    /// alerts nobody holds, oldest first, as many as fit before the deadline.
    pub async fn handle_schedule_until(&self, deadline_ms: Millis) -> Result<Report, HandlerError> {
        let started = Instant::now();
        let run = self.run(deadline_ms);
        let mut report = Report::default();
        let result = self.schedule(&run, &mut report).await;
        report.duration_ms = elapsed_ms(started);
        result.map(|()| report)
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
