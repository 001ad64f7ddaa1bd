//! `replay`: the whole detection pipeline on local files.
//!
//! Reads CloudWatch Logs subscription payloads (one Lambda event per file,
//! as in `events/` or a failed Kinesis record kept in S3) or NDJSON audit
//! logs (one event per line, optionally prefixed by a timestamp as in
//! CloudWatch's S3 exports), runs them through
//! the same [`Processor`] the Lambda uses, with in-memory state, and reports
//! what it saw.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::handler::{HandlerError, Processor, Report};
use crate::scan::Scanner;
use crate::sink::AlertSink;
use crate::store::StateStore;
use crate::time::parse_timestamp;
use crate::vocab::stable_hash;
use crate::vocab::RuleId;
use crate::window::BatchInfo;

/// NDJSON lines per batch: bounds memory on large files.
pub const NDJSON_BATCH_LINES: usize = 10_000;

/// Input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Decide per input: a Lambda event if it has `awslogs.data`, else NDJSON.
    Auto,
    /// One CloudWatch Logs subscription Lambda event per input.
    Cloudwatch,
    /// One audit event per line.
    Ndjson,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Format::Auto),
            "cloudwatch" => Ok(Format::Cloudwatch),
            "ndjson" => Ok(Format::Ndjson),
            _ => Err(format!("unknown format '{s}' (auto, cloudwatch or ndjson)")),
        }
    }
}

/// Replay settings.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Input format.
    pub format: Format,
    /// Cluster label for NDJSON input.
    pub cluster: String,
    /// Files or directories; `-` is standard input.
    pub paths: Vec<PathBuf>,
}

pub mod summary;

pub use summary::{render_summary, summary_json};

/// What a replay did.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    /// Inputs read.
    pub inputs: u64,
    /// Batches processed (payloads, NDJSON chunks).
    pub batches: u64,
    /// CONTROL_MESSAGE payloads.
    pub control_messages: u64,
    /// Inputs that failed, with why.
    pub failures: Vec<(String, String)>,
    /// Summed counters.
    pub report: Report,
    /// Wall time.
    pub seconds: f64,
    /// The rules that ran, in registry order.
    pub rules: Vec<RuleId>,
    /// The registry's other rules (off by default or by a setting).
    pub disabled: Vec<RuleId>,
}

/// Every input file named by `paths`: directories expanded, sorted, with
/// their subdirectories (failed Kinesis records copied from S3 with
/// `aws s3 cp --recursive` sit in `<day>/<shardId>/` folders); hidden
/// entries are skipped.
pub fn expand_paths(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
        } else if p.is_dir() {
            expand_dir(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn expand_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|f| {
            !f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for entry in entries {
        // `symlink_metadata`: a link to a parent folder cannot loop.
        let kind = std::fs::symlink_metadata(&entry)?.file_type();
        if kind.is_dir() {
            expand_dir(&entry, out)?;
        } else if entry.is_file() {
            out.push(entry);
        }
    }
    Ok(())
}

fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path)
    }
}

/// Runs the replay.
pub async fn run<S: StateStore, P: AlertSink>(
    processor: &Processor<S, P>,
    opts: &ReplayOptions,
) -> ReplaySummary {
    let started = Instant::now();
    let mut summary = ReplaySummary {
        rules: processor.detector().rules().map(|r| r.meta().id).collect(),
        ..ReplaySummary::default()
    };
    summary.disabled = crate::rules::registry(processor.detector().config())
        .iter()
        .map(|r| r.meta().id)
        .filter(|id| !summary.rules.contains(id))
        .collect();
    let files = match expand_paths(&opts.paths) {
        Ok(f) => f,
        Err(e) => {
            summary.failures.push(("<paths>".into(), e.to_string()));
            return summary;
        }
    };
    for path in files {
        let name = path.display().to_string();
        summary.inputs += 1;
        let bytes = match read_input(&path) {
            Ok(b) => b,
            Err(e) => {
                summary.failures.push((name, e.to_string()));
                continue;
            }
        };
        let is_cloudwatch = match opts.format {
            Format::Cloudwatch => true,
            Format::Ndjson => false,
            Format::Auto => crate::decode::classify_invoke(&bytes).is_ok(),
        };
        let result = if is_cloudwatch {
            processor.handle_invoke_body(&bytes).await.map(|r| vec![r])
        } else {
            replay_ndjson(processor, &name, &bytes, &opts.cluster).await
        };
        match result {
            Ok(reports) => {
                for r in reports {
                    // A scheduled event (the outbox sweep) is no batch.
                    match r.message_type.as_str() {
                        // Not batches: the sweep and CloudTrail events.
                        "SCHEDULE" | "CLOUDTRAIL" => {}
                        "KINESIS" => summary.batches += r.records,
                        _ => summary.batches += 1,
                    }
                    if r.message_type == "CONTROL_MESSAGE" {
                        summary.control_messages += 1;
                    }
                    summary.report.merge(&r);
                }
            }
            Err(e) => summary
                .failures
                .push((name, format!("{}: {e}", e.error_type()))),
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary
}

/// Splits an S3-export line `<timestamp> <json>` into its parts.
fn split_prefixed(line: &str) -> (Option<i64>, &str) {
    if line.starts_with('{') {
        return (None, line);
    }
    match line.split_once(' ') {
        Some((ts, rest)) if rest.trim_start().starts_with('{') => match parse_timestamp(ts) {
            Some(ms) => (Some(ms), rest.trim_start()),
            None => (None, line),
        },
        _ => (None, line),
    }
}

async fn replay_ndjson<S: StateStore, P: AlertSink>(
    processor: &Processor<S, P>,
    name: &str,
    bytes: &[u8],
    cluster: &str,
) -> Result<Vec<Report>, HandlerError> {
    let text = String::from_utf8_lossy(bytes);
    let scanner = Scanner::new(processor.detector());
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut reports = Vec::new();
    for (chunk_no, chunk) in lines.chunks(NDJSON_BATCH_LINES).enumerate() {
        let started = Instant::now();
        let mut report = Report {
            message_type: "NDJSON".into(),
            log_group: name.to_owned(),
            ..Report::default()
        };
        let mut matches = Vec::new();
        for line in chunk {
            let (at, json) = split_prefixed(line.trim());
            scanner.scan_message(json, at, cluster, &mut matches, &mut report.scan);
        }
        let chunk_id = chunk_no.to_string();
        report.batch_id = format!("{:032x}", stable_hash(&[name, &chunk_id, chunk[0]]));
        let info = BatchInfo {
            id: &report.batch_id.clone(),
            cluster,
            log_group: "",
            account: "",
            now_ms: processor.now_ms(),
            horizon_ms: processor.detector().config().late_horizon_ms(),
            stamped_until: 0,
        };
        processor.apply(&info, &matches, &mut report).await?;
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        reports.push(report);
    }
    Ok(reports)
}
