//! The detector's own resources, read from the `DETECTOR_*` variables the
//! stack sets, and those of the sample stack `replay` assumes.

/// The detector's own resources, as the stack names them: CloudTrail
/// changes to them are reported by [`crate::tamper`]. Every field may be
/// unknown (empty); when nothing is known ([`Self::is_known`] false), only
/// the clusters' logging changes are assessed.
///
/// Name lists take exact names or prefixes ending in `*`: CloudFormation
/// generates the names of the stack's rules and alarms
/// (`<stack>-<logical id>-<random>`), and the function cannot be given
/// their exact names without depending on itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DetectorResources {
    /// The function's name (`DETECTOR_FUNCTION_NAME`, else
    /// `AWS_LAMBDA_FUNCTION_NAME`, which Lambda sets for every function).
    pub function_name: Option<String>,
    /// The KMS key of the table, topics, queue and stream
    /// (`DETECTOR_KEY_ARN`, comma-separated: the alert key and the
    /// operations topic's own; ARNs or key ids).
    pub key_arns: Vec<String>,
    /// The alert and operations topics (`DETECTOR_TOPIC_ARNS`, plus
    /// `ALERT_TOPIC_ARN`).
    pub topic_arns: Vec<String>,
    /// The schedule and tamper EventBridge rules (`DETECTOR_RULE_NAMES`).
    pub rule_names: Vec<String>,
    /// The stack's CloudWatch alarms (`DETECTOR_ALARM_NAMES`).
    pub alarm_names: Vec<String>,
    /// The account-level subscription filter policies delivering audit
    /// logs (`DETECTOR_ACCOUNT_POLICY_NAMES`): this account's, or in
    /// organization mode the member accounts'.
    pub account_policy_names: Vec<String>,
    /// Organization mode: the Kinesis stream (`DETECTOR_STREAM_NAME`).
    pub stream_name: Option<String>,
    /// Organization mode: the CloudWatch Logs destination
    /// (`DETECTOR_DESTINATION_NAME`).
    pub destination_name: Option<String>,
}

/// The stack name of the samples in `events/` (see
/// [`DetectorResources::sample_stack`]).
pub const SAMPLE_STACK: &str = "eks-audit-detector";

/// The region of the samples' stack (`replay` uses it when `AWS_REGION`
/// is unset).
pub const SAMPLE_REGION: &str = "us-east-1";

impl DetectorResources {
    /// True when at least one resource is known: then trails (any) and the
    /// known resources are watched too.
    pub fn is_known(&self) -> bool {
        self.function_name.is_some()
            || !self.key_arns.is_empty()
            || !self.topic_arns.is_empty()
            || !self.rule_names.is_empty()
            || !self.alarm_names.is_empty()
            || !self.account_policy_names.is_empty()
            || self.stream_name.is_some()
            || self.destination_name.is_some()
    }

    /// The resources of the stack the samples in `events/` come from: a
    /// stack named `eks-audit-detector` in account 123456789012, us-east-1,
    /// with the resources of both modes. `replay` uses them when no `DETECTOR_*`
    /// variable is set, so `make run` shows every kind of report.
    pub fn sample_stack() -> Self {
        let arn = |service: &str, rest: &str| {
            format!("arn:aws:{service}:{SAMPLE_REGION}:123456789012:{rest}")
        };
        Self {
            function_name: Some(SAMPLE_STACK.to_owned()),
            key_arns: vec![
                arn("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                arn("kms", "key/5678efab-56ef-78ab-90cd-5678901234ef"),
            ],
            topic_arns: vec![
                arn("sns", &format!("{SAMPLE_STACK}-AlertTopic-Q1W2E3R4T5Y6")),
                arn("sns", &format!("{SAMPLE_STACK}-OpsTopic-A9S8D7F6G5H4")),
            ],
            rule_names: vec![format!("{SAMPLE_STACK}-DetectorFunction*")],
            alarm_names: vec![format!("{SAMPLE_STACK}-*")],
            account_policy_names: vec![format!("{SAMPLE_STACK}-eks-audit-detector")],
            stream_name: Some(format!("{SAMPLE_STACK}-AuditStream-Z1X2C3V4B5N6")),
            destination_name: Some(format!("{SAMPLE_STACK}-eks-audit")),
        }
    }

    /// Reads the `DETECTOR_*` variables through `get`, which hides unset
    /// and empty ones.
    pub(super) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let one = |name: &str| get(name).map(|v| v.trim().to_owned());
        let list = |name: &str| -> Vec<String> {
            get(name)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut topic_arns = list("DETECTOR_TOPIC_ARNS");
        // The alert topic is the detector's by definition.
        if let Some(alerts) = one("ALERT_TOPIC_ARN") {
            if !topic_arns.contains(&alerts) {
                topic_arns.push(alerts);
            }
        }
        Self {
            function_name: one("DETECTOR_FUNCTION_NAME")
                .or_else(|| one("AWS_LAMBDA_FUNCTION_NAME")),
            key_arns: list("DETECTOR_KEY_ARN"),
            topic_arns,
            rule_names: list("DETECTOR_RULE_NAMES"),
            alarm_names: list("DETECTOR_ALARM_NAMES"),
            account_policy_names: list("DETECTOR_ACCOUNT_POLICY_NAMES"),
            stream_name: one("DETECTOR_STREAM_NAME"),
            destination_name: one("DETECTOR_DESTINATION_NAME"),
        }
    }
}
