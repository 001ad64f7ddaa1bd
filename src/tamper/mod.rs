//! Knowing when the detector goes blind: CloudTrail management events that
//! stop audit events from reaching it or its alerts from reaching people
//! (MITRE T1562.008 disable cloud logs, T1562.001 disable tools), delivered
//! by an EventBridge rule and reported in the usual alert format.
//!
//! # Layout
//! One file per service, the same shape each: `assess(action, params,
//! record, own) -> Option<Finding>`, early-return guards first.
//!
//! | file | what is watched |
//! |---|---|
//! | `cluster.rs` | a watched cluster's `/aws/eks/<cluster>/cluster` log group (Logs: filter, deletion, retention, key) and its audit logging (EKS) |
//! | `kms.rs` | the stack's key: `DisableKey`, `ScheduleKeyDeletion`, `PutKeyPolicy` |
//! | `lambda.rs` | the function, its permissions, concurrency and event source mapping |
//! | `events.rs` | the schedule and tamper rules: disabled, deleted, their targets removed or replaced |
//! | `sns.rs` | the alert and operations topics and their subscriptions |
//! | `cloudwatch.rs` | the stack's alarms: deleted, or their actions turned off |
//! | `cloudtrail.rs` | any trail: `StopLogging`, `DeleteTrail`, `PutEventSelectors`, `UpdateTrail` |
//! | `subscription.rs` | the account-level subscription policies (this account's, the members') |
//! | `organization.rs` | organization mode: the Logs destination and the Kinesis stream |
//!
//! Across all of them:
//! - a **failed attempt** (`errorCode` set, e.g. `AccessDenied`) is
//!   reported one severity step down, titled as tried and refused;
//! - **CloudFormation's own changes** (the stack deploying itself) are
//!   skipped, recognised by `sourceIPAddress` or `userIdentity.invokedBy`
//!   `cloudformation.amazonaws.com`, which AWS sets and a caller cannot
//!   (the user agent alone is the caller's to choose, so it is not trusted).
//!
//! Pure: a CloudTrail record and the settings in, an alert (or nothing) out.

mod cloudtrail;
mod cloudwatch;
mod cluster;
mod events;
mod kms;
mod lambda;
mod organization;
mod sns;
mod subscription;

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::bounded::cap;
use crate::config::DetectorResources;
use crate::time::parse_timestamp;
use crate::vocab::{stable_hash, Alert, AlertContext, RuleId, Sample, Severity};

/// The id alerts of this kind carry.
pub const RULE_ID: RuleId = RuleId::new("EksAuditDetector.LoggingTampered");

/// Headline of a change to one of the detector's own resources.
const OWN_CHANGED: &str = "Detector resource changed";

/// Headline of a refused attempt at one.
const OWN_REFUSED: &str = "Detector resource change refused";

/// True for an alert about the detector's own resources (also sent to the
/// operations topic).
pub fn concerns_the_detector(alert: &Alert) -> bool {
    alert.rule_id == RULE_ID && (alert.headline == OWN_CHANGED || alert.headline == OWN_REFUSED)
}

/// The service principal CloudFormation acts as.
const CLOUDFORMATION: &str = "cloudformation.amazonaws.com";

const RUNBOOK: &str =
    "Someone changed what the detector sees. Check who (the principal below) and \
     whether it was a planned change; if not, treat it as an attacker covering their tracks: \
     restore the subscription filter and audit logging (redeploy the stack, `aws eks \
     update-cluster-config --logging ...`), then review the cluster's audit log up to this time.";

const OWN_RUNBOOK: &str =
    "Someone changed one of the detector's own resources (function, key, topics, rules, \
     alarms, trail, stream). Check who (the principal below) and whether it was a planned \
     change; if not, treat it as an attacker blinding the detector: redeploy the stack \
     (`sam deploy`) to restore it, restart the trail if it was stopped, then review the \
     watched clusters' audit logs and CloudTrail from this time on.";

const REFUSED_RUNBOOK: &str =
    "AWS refused the request (see errorCode), so nothing changed; but someone tried to blind \
     the detector. Check who (the principal below), whether the attempt was planned, and what \
     else that principal did around this time.";

/// What a service file found: the change, without who, when or how it
/// ended (the record has those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// Severity had the change succeeded.
    severity: Severity,
    /// What was changed, e.g. `prod` (a cluster) or `function x`.
    target: String,
    /// What was done, in the past tense: "deleted the function".
    done: &'static str,
    /// The same, as tried: "delete the function".
    tried: &'static str,
    /// Detail worth a place in the title (environment keys, attribute).
    note: Option<String>,
    /// True for a watched cluster, false for one of the detector's own
    /// resources.
    cluster: bool,
}

impl Finding {
    /// A change to one of the detector's own resources.
    fn own(severity: Severity, target: String, done: &'static str, tried: &'static str) -> Self {
        Self {
            severity,
            target,
            done,
            tried,
            note: None,
            cluster: false,
        }
    }

    /// The same, with a note for the title.
    fn noted(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }
}

/// The alert a CloudTrail record deserves, if it blinds the detector on a
/// watched cluster. `watched` empty means every EKS cluster log group. The
/// detector's own resources are unknown here: see [`assess_with`].
pub fn assess(detail: &Value, watched: &[String]) -> Option<Alert> {
    assess_with(detail, watched, &DetectorResources::default())
}

/// The alert a CloudTrail record deserves, if it blinds the detector: on a
/// watched cluster, or on one of its own resources (`own`; none when
/// nothing is known).
pub fn assess_with(detail: &Value, watched: &[String], own: &DetectorResources) -> Option<Alert> {
    let name = detail.get("eventName")?.as_str()?;
    // The stack deploying itself: CloudFormation creates and replaces its
    // filters, rules, alarms and permissions on every update.
    if by_cloudformation(detail) {
        return None;
    }
    let params = detail.get("requestParameters").unwrap_or(&Value::Null);
    let source = detail
        .get("eventSource")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let finding = match source {
        // Records without a source are the Logs and EKS events of old tests
        // and hand-made samples; the names alone are unambiguous there.
        "logs.amazonaws.com" | "eks.amazonaws.com" | "" => cluster::assess(name, params, watched)
            .or_else(|| subscription::assess(name, params, own))
            .or_else(|| organization::assess_logs(name, params, own)),
        // Everything else is about the detector's own resources: with
        // nothing known (no `DETECTOR_*`, not in Lambda), nothing is.
        _ if !own.is_known() => None,
        "kms.amazonaws.com" => kms::assess(name, params, detail, own),
        "lambda.amazonaws.com" => lambda::assess(name, params, detail, own),
        "events.amazonaws.com" => events::assess(name, params, own),
        "sns.amazonaws.com" => sns::assess(name, params, own),
        "monitoring.amazonaws.com" => cloudwatch::assess(name, params, own),
        "cloudtrail.amazonaws.com" => cloudtrail::assess(name, params),
        "kinesis.amazonaws.com" => organization::assess_kinesis(name, params, own),
        _ => None,
    }?;
    Some(alert(detail, name, params, finding))
}

/// True when CloudFormation made the call: AWS sets `sourceIPAddress` and
/// `invokedBy` to the service's name for calls a service makes, which a
/// caller cannot forge (unlike `userAgent`, which it can).
fn by_cloudformation(detail: &Value) -> bool {
    detail.get("sourceIPAddress").and_then(Value::as_str) == Some(CLOUDFORMATION)
        || detail
            .pointer("/userIdentity/invokedBy")
            .and_then(Value::as_str)
            == Some(CLOUDFORMATION)
}

/// One step down the scale: what a refused attempt is worth.
fn step_down(severity: Severity) -> Severity {
    match severity {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Info => Severity::Info,
    }
}

/// True when `name` is one of `patterns`: an exact name, or a prefix
/// written with a trailing `*`.
fn name_matches(patterns: &[String], name: &str) -> bool {
    !name.is_empty()
        && patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => !prefix.is_empty() && name.starts_with(prefix),
            None => p == name,
        })
}

/// The last part of an ARN or path (`.../name`, `...:name`), or the value.
fn last_part(value: &str) -> &str {
    value.rsplit(['/', ':']).next().unwrap_or(value)
}

/// A string request parameter.
fn param<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key)?.as_str()
}

fn alert(detail: &Value, name: &str, params: &Value, finding: Finding) -> Alert {
    let str_of = |key: &str| detail.get(key).and_then(Value::as_str);
    let who = detail
        .pointer("/userIdentity/arn")
        .and_then(Value::as_str)
        .unwrap_or("<unknown principal>");
    let event_id = str_of("eventID").unwrap_or(name);
    let at_ms = parse_timestamp(str_of("eventTime").unwrap_or_default()).unwrap_or(0);
    let when = crate::time::format_rfc3339(at_ms);
    let source_ip = str_of("sourceIPAddress").unwrap_or_default();
    // A refused call: AWS answered with an error code and changed nothing.
    let refused = str_of("errorCode").filter(|c| !c.is_empty());
    let target = cap(&finding.target);
    let note = finding
        .note
        .as_deref()
        .map(|n| format!(" ({})", cap(n)))
        .unwrap_or_default();
    let (severity, title, runbook) = match refused {
        None => (
            finding.severity,
            format!("[{}] {} [{target}]{note} ({name})", cap(who), finding.done),
            if finding.cluster {
                RUNBOOK
            } else {
                OWN_RUNBOOK
            },
        ),
        Some(code) => (
            step_down(finding.severity),
            format!(
                "[{}] tried to {} [{target}]{note} and was refused: {} ({name})",
                cap(who),
                finding.tried,
                cap(code)
            ),
            REFUSED_RUNBOOK,
        ),
    };
    let headline = match (finding.cluster, refused.is_some()) {
        (true, false) => "EKS audit logging changed",
        (true, true) => "EKS audit logging change refused",
        (false, false) => OWN_CHANGED,
        (false, true) => OWN_REFUSED,
    };
    let id = stable_hash(&[RULE_ID.as_str(), event_id]);
    Alert {
        alert_id: format!("{id:032x}"),
        rule_id: RULE_ID,
        rule_name: "EKS audit logging tampered with".into(),
        headline: headline.into(),
        severity,
        escalation: false,
        title,
        dedup: cap(event_id),
        cluster: target.clone(),
        source_ip: cap(source_ip),
        event_count: 1,
        threshold: 1,
        window_start: when.clone(),
        window_end: when.clone(),
        first_seen: when.clone(),
        last_seen: when,
        mitre: if finding.cluster {
            "TA0005:T1562.008"
        } else {
            "TA0005:T1562.008,T1562.001"
        }
        .into(),
        reference: if finding.cluster {
            "https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html"
        } else {
            "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-concepts.html"
        }
        .into(),
        runbook: runbook.into(),
        summary: json!({
            "eventName": name,
            "eventSource": str_of("eventSource").map(cap),
            "principal": cap(who),
            "userAgent": str_of("userAgent").map(cap),
            "requestParameters": cap(&redacted(params).to_string()),
            "eventID": cap(event_id),
            "errorCode": refused.map(cap),
            "errorMessage": str_of("errorMessage").map(cap),
        }),
        log_group: if finding.cluster {
            format!("/aws/eks/{target}/cluster")
        } else {
            String::new()
        },
        account: str_of("recipientAccountId").map(cap).unwrap_or_default(),
        sample: Sample::default(),
        fanout_dropped: 0,
        // Placed when published (see `Alert::locate`).
        region: None,
        cluster_arn: None,
        context: AlertContext::default(),
        investigate: None,
    }
}

/// The request parameters without environment variable values (a Lambda
/// function's may hold secrets; their names are enough to know what moved).
fn redacted(params: &Value) -> Cow<'_, Value> {
    match params
        .pointer("/environment/variables")
        .and_then(Value::as_object)
    {
        None => Cow::Borrowed(params),
        Some(vars) => {
            let mut copy = params.clone();
            let hidden: serde_json::Map<String, Value> = vars
                .keys()
                .map(|k| (k.clone(), Value::from("(redacted)")))
                .collect();
            copy["environment"]["variables"] = Value::Object(hidden);
            Cow::Owned(copy)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_exactly_or_by_prefix() {
        let patterns = ["stack-Detector*".to_owned(), "exact".to_owned()];
        assert!(name_matches(
            &patterns,
            "stack-DetectorFunctionOutboxSweep-1AB"
        ));
        assert!(name_matches(&patterns, "exact"));
        assert!(!name_matches(&patterns, "exactly"));
        assert!(!name_matches(&patterns, "other-stack-Detector"));
        assert!(!name_matches(&["*".to_owned()], "anything"));
        assert!(!name_matches(&patterns, ""));
    }

    #[test]
    fn severity_steps_down_once() {
        assert_eq!(step_down(Severity::High), Severity::Medium);
        assert_eq!(step_down(Severity::Low), Severity::Info);
        assert_eq!(step_down(Severity::Info), Severity::Info);
    }

    #[test]
    fn environment_values_never_reach_the_alert() {
        let p = json!({"functionName": "f", "environment": {"variables": {"TOKEN": "s3cret"}}});
        let r = redacted(&p).to_string();
        assert!(r.contains("TOKEN") && !r.contains("s3cret"), "{r}");
    }
}
