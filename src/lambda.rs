//! The Lambda function: configuration from the environment, AWS clients
//! built once, the runtime loop, one summary log line and EMF metrics per
//! invocation, and errors mapped to Lambda diagnostics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent, LambdaInvocation};
use serde_json::{json, Value};

use crate::config::{ConfigError, DetectorConfig};
use crate::handler::{HandlerError, Processor, Report};
use crate::rules::Detector;
use crate::sink::sns::SnsSink;
use crate::sink::AlertSink;
use crate::store::dynamodb::DynamoStore;
use crate::store::StateStore;

/// CloudWatch metrics namespace of the EMF lines.
pub const METRICS_NAMESPACE: &str = "EksAuditDetector";

/// Everything the function needs from its environment.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    /// DynamoDB table holding window states (`STATE_TABLE_NAME`).
    pub table: String,
    /// SNS topic receiving alerts (`ALERT_TOPIC_ARN`).
    pub topic_arn: String,
    /// Rule settings.
    pub detector: DetectorConfig,
}

impl LambdaConfig {
    /// Reads and validates the configuration; errors name the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError {
                    variable: name,
                    value: String::new(),
                    reason: "required, not set".into(),
                })
        };
        let table = required("STATE_TABLE_NAME")?;
        let topic_arn = required("ALERT_TOPIC_ARN")?;
        if !topic_arn.starts_with("arn:") {
            return Err(ConfigError {
                variable: "ALERT_TOPIC_ARN",
                value: topic_arn,
                reason: "expected an SNS topic ARN (arn:aws:sns:...)".into(),
            });
        }
        let detector = DetectorConfig::from_lookup(&lookup)?;
        crate::rules::check_disabled(&detector)?;
        Ok(Self {
            table,
            topic_arn,
            detector,
        })
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Invoke bodies by request id, taken before the runtime parses them.
type Bodies = Arc<Mutex<HashMap<String, bytes::Bytes>>>;

/// Keeps the raw invoke body for the handler and hands the runtime `null`
/// to parse, so every body, even one that is not JSON or nests 100,000
/// levels deep, reaches our decoder and fails as `InvalidPayload` instead of
/// the runtime's own deserialization error.
#[derive(Clone)]
struct KeepRawBody<S> {
    inner: S,
    bodies: Bodies,
}

impl<S> Service<LambdaInvocation> for KeepRawBody<S>
where
    S: Service<LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LambdaInvocation) -> Self::Future {
        let body = std::mem::replace(&mut req.body, bytes::Bytes::from_static(b"null"));
        if let Ok(mut bodies) = self.bodies.lock() {
            bodies.insert(req.context.request_id.clone(), body);
        }
        self.inner.call(req)
    }
}

struct KeepRawBodyLayer {
    bodies: Bodies,
}

impl<S> Layer<S> for KeepRawBodyLayer {
    type Service = KeepRawBody<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeepRawBody {
            inner,
            bodies: Arc::clone(&self.bodies),
        }
    }
}

/// Builds the AWS clients once and serves invocations until the runtime stops.
pub async fn run(config: LambdaConfig) -> Result<(), lambda_runtime::Error> {
    // Bounded AWS calls: a stuck request fails the invocation (Lambda retries
    // it) instead of running into the function timeout.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(15))
        .build();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let sink = SnsSink::new(aws_sdk_sns::Client::new(&aws), &config.topic_arn);
    let processor = Arc::new(Processor::new(Detector::new(config.detector), store, sink));
    let bodies: Bodies = Arc::default();
    let taken = Arc::clone(&bodies);
    let handler = service_fn(move |event: LambdaEvent<serde::de::IgnoredAny>| {
        let processor = Arc::clone(&processor);
        let body = taken
            .lock()
            .ok()
            .and_then(|mut b| b.remove(&event.context.request_id))
            .unwrap_or_default();
        // The runtime's deadline, in epoch milliseconds.
        let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        async move { handle(&processor, &event.context.request_id, &body, deadline_ms).await }
    });
    lambda_runtime::Runtime::new(handler)
        .layer(KeepRawBodyLayer { bodies })
        .run()
        .await
}

/// Handles one invocation's raw body, to be done by `deadline_ms`. The log
/// line and the metrics are written whether it succeeds or fails, so what
/// an outage delays or drops is always counted.
pub async fn handle<S: StateStore, P: AlertSink>(
    processor: &Processor<S, P>,
    request_id: &str,
    body: &[u8],
    deadline_ms: crate::time::Millis,
) -> Result<Value, HandlerError> {
    let handled = processor.handle_invocation(body, deadline_ms).await;
    log_summary(request_id, &handled.report, handled.error.as_ref());
    for line in emf_lines(&handled.report, processor.now_ms()) {
        println!("{line}");
    }
    handled.into_result().map(|r| summary_json(&r))
}

/// Peak resident memory of this process in MB (Linux), for the logs.
pub fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb.div_ceil(1024))
}

fn log_summary(request_id: &str, r: &Report, error: Option<&HandlerError>) {
    let (error_type, error) = match error {
        Some(e) => (e.error_type(), e.to_string()),
        None => ("", String::new()),
    };
    let message = if error_type.is_empty() {
        "invocation done"
    } else {
        "invocation failed"
    };
    macro_rules! summary {
        ($level:ident) => {
            tracing::$level!(
                request_id,
                error_type,
                error = %error,
                log_group = %r.log_group,
                log_stream = %r.log_stream,
                message_type = %r.message_type,
                batch_id = %r.batch_id,
                events = r.scan.events,
                prefiltered = r.scan.prefiltered,
                skipped = %serde_json::to_string(&r.scan.skipped).unwrap_or_default(),
                matches = %by_rule(&r.scan.matches),
                rule_errors = %by_rule(&r.scan.rule_errors),
                keys = r.keys,
                state_reads = r.state_reads,
                state_writes = r.state_writes,
                state_conflicts = r.state_conflicts,
                watch_requests = r.watch_requests,
                duplicate_keys = r.duplicate_keys,
                alerts_raised = r.alerts_raised,
                alerts_published = r.alerts_published,
                alerts_failed = r.alerts_failed,
                alerts_dropped = r.alerts_dropped,
                late_matches = r.late_matches,
                future_matches = r.future_matches,
                hot_keys = r.hot_keys,
                key_failures = r.key_failures,
                corrupt_states = r.corrupt_states,
                outbox_found = r.outbox_found,
                sweep_stopped_early = r.sweep_stopped_early,
                sweep_key_errors = r.sweep_key_errors,
                records = r.records,
                poison_records = r.poison_records,
                records_failed = r.batch_item_failures.len(),
                fanout_dropped = r.scan.fanout_dropped.values().sum::<u64>(),
                peak_rss_mb = peak_rss_mb(),
                duration_ms = r.duration_ms,
                "{message}"
            )
        };
    }
    if error_type.is_empty() {
        summary!(info);
    } else {
        summary!(error);
    }
}

/// A per-rule counter as a JSON object keyed by rule id, for the log line.
fn by_rule(map: &std::collections::BTreeMap<crate::vocab::RuleId, u64>) -> String {
    serde_json::to_string(map).unwrap_or_default()
}

/// The CloudWatch Embedded Metric Format lines of an invocation: one with
/// the totals, and one per rule that counted anything, with a `RuleId`
/// dimension.
pub fn emf_lines(r: &Report, timestamp_ms: i64) -> Vec<String> {
    let totals = [
        ("Events", r.scan.events),
        ("Skipped", r.scan.skipped_total()),
        ("Matches", r.scan.matches.values().sum()),
        ("RuleErrors", r.scan.rule_errors.values().sum()),
        ("Alerts", r.alerts_published),
        ("AlertsFailed", r.alerts_failed),
        ("KeyFailures", r.key_failures),
        ("FanoutDropped", r.scan.fanout_dropped.values().sum()),
        ("LateMatches", r.late_matches),
        ("FutureMatches", r.future_matches),
        ("AlertsDropped", r.alerts_dropped),
        ("PoisonRecords", r.poison_records),
        ("RecordsFailed", r.batch_item_failures.len() as u64),
        ("CorruptStates", r.corrupt_states),
        ("SweepKeyErrors", r.sweep_key_errors),
        ("StateConflicts", r.state_conflicts),
    ];
    let mut lines = vec![emf_doc(&totals, None, &r.log_group, timestamp_ms)];
    let rules: std::collections::BTreeSet<_> = r
        .scan
        .matches
        .keys()
        .chain(r.scan.rule_errors.keys())
        .chain(r.scan.fanout_dropped.keys())
        .collect();
    for rule in rules {
        let get = |m: &std::collections::BTreeMap<_, u64>| m.get(rule).copied().unwrap_or(0);
        let per_rule = [
            ("Matches", get(&r.scan.matches)),
            ("RuleErrors", get(&r.scan.rule_errors)),
            ("FanoutDropped", get(&r.scan.fanout_dropped)),
        ];
        lines.push(emf_doc(
            &per_rule,
            Some(rule.as_str()),
            &r.log_group,
            timestamp_ms,
        ));
    }
    lines
}

fn emf_doc(
    metrics: &[(&str, u64)],
    rule: Option<&str>,
    log_group: &str,
    timestamp_ms: i64,
) -> String {
    let dimensions = if rule.is_some() {
        json!([["RuleId"]])
    } else {
        json!([[]])
    };
    let mut doc = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": metrics.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
        "log_group": log_group,
    });
    if let Some(rule) = rule {
        doc["RuleId"] = json!(rule);
    }
    for (name, value) in metrics {
        doc[*name] = json!(value);
    }
    doc.to_string()
}

/// What the function returns on success: for Kinesis records the partial
/// batch response (`ReportBatchItemFailures`), else a summary (visible in
/// synchronous invokes).
pub fn summary_json(r: &Report) -> Value {
    if r.message_type == "KINESIS" {
        let failures: Vec<Value> = r
            .batch_item_failures
            .iter()
            .map(|seq| json!({"itemIdentifier": seq}))
            .collect();
        return json!({"batchItemFailures": failures});
    }
    json!({
        "batch_id": r.batch_id,
        "message_type": r.message_type,
        "events": r.scan.events,
        "skipped": r.scan.skipped_total(),
        "matches": r.scan.matches.values().sum::<u64>(),
        "alerts_raised": r.alerts_raised,
        "alerts_published": r.alerts_published,
        "state_reads": r.state_reads,
        "state_writes": r.state_writes,
    })
}
