//! What each invocation tells the operator: one JSON log line with every
//! counter, and CloudWatch Embedded Metric Format lines with those worth
//! graphing or alarming on.

use serde_json::json;

use crate::handler::{HandlerError, Report};

/// CloudWatch metrics namespace of the EMF lines.
pub const METRICS_NAMESPACE: &str = "EksAuditDetector";

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

pub(super) fn log_summary(request_id: &str, r: &Report, error: Option<&HandlerError>) {
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
                records_kept = r.records_kept,
                keep_failures = r.keep_failures,
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

/// The `Stack` dimension when `STACK_NAME` is not set (`replay`, a local
/// run): the name `samconfig.toml` gives the stack.
pub const DEFAULT_STACK: &str = "eks-audit-detector";

/// The stack the metrics belong to: `STACK_NAME`, which `template.yaml`
/// sets to the stack's name, read once. Every metric carries it as the
/// `Stack` dimension, so two stacks in one account and region never feed
/// each other's alarms.
pub fn stack_name() -> &'static str {
    static STACK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STACK.get_or_init(|| {
        std::env::var("STACK_NAME")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_STACK.to_owned())
    })
}

/// The CloudWatch Embedded Metric Format lines of an invocation: one with
/// the totals (dimension `Stack`), and one per rule that matched anything
/// (dimensions `Stack`, `RuleId`).
///
/// CloudWatch bills a custom metric for each hour it receives a value of
/// it. `Events` is written by every invocation, zero included: the schedule
/// writes it every minute, and `NothingReceivedAlarm` takes a missing value
/// for a dead function. Every other metric is written only when it is not
/// zero, so counters of trouble cost nothing while nothing goes wrong (their
/// alarms treat missing data as zero). The log line holds every counter;
/// only those worth graphing or alarming on are metrics.
pub fn emf_lines(r: &Report, stack: &str, timestamp_ms: i64) -> Vec<String> {
    let totals = [
        ("Events", r.scan.events),
        // Published alerts, and publishes that failed (the alert waits in
        // the outbox).
        ("Alerts", r.alerts_published),
        ("AlertsFailed", r.alerts_failed),
        // Each of these has an alarm: something was lost or set aside.
        ("AlertsDropped", r.alerts_dropped),
        ("KeyFailures", r.key_failures),
        ("LateMatches", r.late_matches),
        ("PoisonRecords", r.poison_records),
        ("CorruptStates", r.corrupt_states),
        // Input shaped by a client: events a rule could not evaluate,
        // addresses or groups beyond the fan-out cap, clamped event times.
        ("RuleErrors", r.scan.rule_errors.values().sum()),
        ("FanoutDropped", r.scan.fanout_dropped.values().sum()),
        ("FutureMatches", r.future_matches),
    ];
    let written: Vec<(&str, u64)> = totals
        .into_iter()
        .filter(|&(name, value)| name == "Events" || value > 0)
        .collect();
    let mut lines = vec![emf_doc(&written, stack, None, &r.log_group, timestamp_ms)];
    for (rule, &matches) in &r.scan.matches {
        if matches > 0 {
            lines.push(emf_doc(
                &[("Matches", matches)],
                stack,
                Some(rule.as_str()),
                &r.log_group,
                timestamp_ms,
            ));
        }
    }
    lines
}

/// The metric line of rules that could not be loaded at start
/// (`RulesNotLoaded`, which the template alarms on).
pub fn rules_not_loaded(count: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    emf_doc(&[("RulesNotLoaded", count)], stack_name(), None, "", now)
}

fn emf_doc(
    metrics: &[(&str, u64)],
    stack: &str,
    rule: Option<&str>,
    log_group: &str,
    timestamp_ms: i64,
) -> String {
    let dimensions = if rule.is_some() {
        json!([["Stack", "RuleId"]])
    } else {
        json!([["Stack"]])
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
        "Stack": stack,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::RuleId;
    use serde_json::Value;

    const POD_SCAN: RuleId = RuleId::new("Amazon.EKS.Audit.PodScan");
    const MULTIPLE_403: RuleId = RuleId::new("Amazon.EKS.Audit.Multiple403");

    fn parse(lines: &[String]) -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("EMF line is JSON"))
            .collect()
    }

    fn metric_names(doc: &Value) -> Vec<&str> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("Metrics")
            .iter()
            .map(|m| m["Name"].as_str().expect("Name"))
            .collect()
    }

    #[test]
    fn a_quiet_invocation_writes_only_events_under_its_stack() {
        // GIVEN a scheduled run that saw nothing
        let report = Report::default();
        // WHEN its metrics are written
        let docs = parse(&emf_lines(&report, "detector-prod", 1_700_000_000_000));
        // THEN one line, Events = 0, in the stack's dimension: the
        // NothingReceived alarm needs the zero, the rest would only cost.
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "EksAuditDetector"
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack"]])
        );
        assert_eq!(doc["Stack"], "detector-prod");
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(metric_names(doc), ["Events"]);
        assert_eq!(doc["Events"], 0);
    }

    #[test]
    fn counters_are_written_when_not_zero_and_rules_carry_stack_and_rule_id() {
        // GIVEN a batch with matches for one rule, a key failure and a late match
        let mut report = Report {
            log_group: "/aws/eks/prod/cluster".into(),
            key_failures: 1,
            late_matches: 2,
            alerts_published: 1,
            ..Report::default()
        };
        report.scan.events = 40;
        report.scan.matches.insert(POD_SCAN, 3);
        report.scan.matches.insert(MULTIPLE_403, 0);
        report.scan.rule_errors.insert(MULTIPLE_403, 1);
        // WHEN its metrics are written
        let docs = parse(&emf_lines(&report, "s", 0));
        // THEN the totals name exactly the non-zero counters (and Events)
        assert_eq!(docs.len(), 2, "one totals line, one line for PodScan");
        assert_eq!(
            metric_names(&docs[0]),
            [
                "Events",
                "Alerts",
                "KeyFailures",
                "LateMatches",
                "RuleErrors"
            ]
        );
        assert_eq!(docs[0]["KeyFailures"], 1);
        assert_eq!(docs[0]["LateMatches"], 2);
        assert_eq!(docs[0]["RuleErrors"], 1);
        assert_eq!(docs[0]["log_group"], "/aws/eks/prod/cluster");
        // AND the rule that matched has its own line; the one at 0 has none
        let rule = &docs[1];
        assert_eq!(
            rule["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack", "RuleId"]])
        );
        assert_eq!(rule["RuleId"], "Amazon.EKS.Audit.PodScan");
        assert_eq!(rule["Stack"], "s");
        assert_eq!(metric_names(rule), ["Matches"]);
        assert_eq!(rule["Matches"], 3);
    }

    #[test]
    fn every_alarm_on_the_namespace_reads_a_metric_written_under_its_stack() {
        // GIVEN an invocation where every counter is at 1: every total is written
        let mut report = Report {
            alerts_published: 1,
            alerts_failed: 1,
            alerts_dropped: 1,
            key_failures: 1,
            late_matches: 1,
            future_matches: 1,
            poison_records: 1,
            corrupt_states: 1,
            ..Report::default()
        };
        report.scan.rule_errors.insert(MULTIPLE_403, 1);
        report.scan.fanout_dropped.insert(POD_SCAN, 1);
        let docs = parse(&emf_lines(&report, DEFAULT_STACK, 0));
        let mut written = metric_names(&docs[0]);
        assert_eq!(written.len(), 11, "{written:?}");
        // ...and the start-up line of rules that could not be loaded
        let start = parse(&[rules_not_loaded(2)]);
        written.extend(metric_names(&start[0]));
        // WHEN the template's alarms on our namespace are read
        let template = include_str!("../../template.yaml");
        assert!(template.contains("STACK_NAME: !Ref AWS::StackName"));
        // (Each resource starts at a line indented by exactly two spaces.)
        let mut resources: Vec<String> = Vec::new();
        for line in template.lines() {
            let top =
                line.starts_with("  ") && !line.starts_with("   ") && !line.starts_with("  #");
            match resources.last_mut() {
                Some(r) if !top => {
                    r.push_str(line);
                    r.push('\n');
                }
                _ => resources.push(format!("{line}\n")),
            }
        }
        let mut alarms = 0;
        for resource in resources
            .iter()
            .filter(|r| r.contains("Type: AWS::CloudWatch::Alarm"))
        {
            if !resource.contains("Namespace: EksAuditDetector") {
                continue;
            }
            alarms += 1;
            let metric = resource
                .lines()
                .find_map(|l| l.trim().strip_prefix("MetricName: "))
                .expect("MetricName");
            // THEN each reads a metric emf_lines writes, in this stack's dimension
            assert!(written.contains(&metric), "{metric} is never written");
            assert!(
                resource.contains("- Name: Stack\n          Value: !Ref AWS::StackName"),
                "the alarm on {metric} must select Stack"
            );
        }
        assert_eq!(
            alarms, 7,
            "Events, the five counters of trouble and rules not loaded"
        );
    }
}
