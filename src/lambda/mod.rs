//! The Lambda function: configuration from the environment, AWS clients
//! built once, the runtime loop, and errors mapped to Lambda diagnostics;
//! what each invocation tells the operator (one log line, EMF metrics) is in
//! [`observe`].

mod observe;

use observe::log_summary;
pub use observe::{emf_lines, peak_rss_mb, stack_name, DEFAULT_STACK, METRICS_NAMESPACE};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent, LambdaInvocation};
use serde_json::{json, Value};

use crate::config::{ConfigError, DetectorConfig};
use crate::handler::{HandlerError, Processor, Report};
use crate::keep::s3::S3Keeper;
use crate::rules::Detector;
use crate::sink::sns::SnsSink;
use crate::sink::AlertSink;
use crate::store::dynamodb::DynamoStore;
use crate::store::StateStore;

/// Everything the function needs from its environment.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    /// DynamoDB table holding window states (`STATE_TABLE_NAME`).
    pub table: String,
    /// SNS topic receiving alerts (`ALERT_TOPIC_ARN`).
    pub topic_arn: String,
    /// The operations topic, which also receives reports of the detector's
    /// own resources being changed (`OPS_TOPIC_ARN`, optional).
    pub ops_topic_arn: Option<String>,
    /// S3 bucket keeping the data of failed Kinesis records for replay
    /// (`FAILED_RECORDS_BUCKET`, optional; empty means off).
    pub failed_records_bucket: Option<String>,
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
        let mut detector = DetectorConfig::from_lookup(&lookup)?;
        // Sigma rules: the bundled ones and `RULES_DIR`'s. One that cannot
        // load is reported at start (see `run`); the others run.
        let dirs = crate::sigma::rules_dirs(&lookup);
        detector.sigma = crate::sigma::SigmaRules(Arc::new(crate::sigma::load_with_bundled(&dirs)));
        crate::rules::check_rules(&detector)?;
        let ops_topic_arn = lookup("OPS_TOPIC_ARN").filter(|v| !v.trim().is_empty());
        if let Some(ops) = &ops_topic_arn {
            if !ops.starts_with("arn:") {
                return Err(ConfigError {
                    variable: "OPS_TOPIC_ARN",
                    value: ops.clone(),
                    reason: "expected an SNS topic ARN (arn:aws:sns:...)".into(),
                });
            }
        }
        let failed_records_bucket = lookup("FAILED_RECORDS_BUCKET")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        Ok(Self {
            table,
            topic_arn,
            ops_topic_arn,
            failed_records_bucket,
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
    // Rules that could not be loaded: one error line each, and a metric the
    // template alarms on; every other rule runs.
    let problems = &config.detector.sigma.0.problems;
    for p in problems {
        tracing::error!(
            rule_file = p.file,
            line = p.line,
            "Sigma rule not loaded: {p}"
        );
    }
    if !problems.is_empty() {
        println!("{}", observe::rules_not_loaded(problems.len() as u64));
    }
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let sink = SnsSink::new(aws_sdk_sns::Client::new(&aws), &config.topic_arn)
        .with_ops_topic(config.ops_topic_arn.clone());
    let mut processor = Processor::new(Detector::new(config.detector), store, sink);
    if let Some(bucket) = &config.failed_records_bucket {
        let s3 = aws_sdk_s3::Client::new(&aws);
        processor = processor.with_keeper(Arc::new(S3Keeper::new(s3, bucket)));
    }
    let processor = Arc::new(processor);
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
    for line in emf_lines(&handled.report, stack_name(), processor.now_ms()) {
        println!("{line}");
    }
    handled.into_result().map(|r| summary_json(&r))
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
