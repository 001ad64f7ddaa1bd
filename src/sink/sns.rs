//! SNS adapter: one `Publish` per alert.
//!
//! `MessageStructure=json` lets each protocol get its own body: `default`
//! (SQS, Lambda, HTTPS...) receives the alert JSON, `email` a short text.
//! Message attributes `rule_id`, `severity` and `cluster` let subscribers
//! filter. On a FIFO topic the alert id is the deduplication id, so SNS
//! itself drops a duplicate publish within its 5-minute window.

use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use tracing::instrument;

use super::{AlertSink, PublishError};
use crate::alert::Alert;

/// Alerts to an SNS topic; reports that the detector itself is being
/// switched off also to the operations topic.
#[derive(Debug, Clone)]
pub struct SnsSink {
    client: Client,
    topic_arn: String,
    ops_topic_arn: Option<String>,
}

impl SnsSink {
    /// Publishes to `topic_arn` through `client`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
            ops_topic_arn: None,
        }
    }

    /// Also publishes alerts about the detector's own resources to
    /// `ops_topic_arn` (encrypted with a key of its own): whoever disables
    /// the alert topic's key, or the topic, is still reported there.
    pub fn with_ops_topic(mut self, ops_topic_arn: Option<String>) -> Self {
        self.ops_topic_arn = ops_topic_arn.filter(|a| !a.is_empty());
        self
    }

    /// Publishes `alert` to one topic.
    async fn publish_to(&self, topic_arn: &str, alert: &Alert) -> Result<(), PublishError> {
        let fail = |reason: String| PublishError::transient(&alert.alert_id, reason);
        let mut req = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .message_structure("json")
            .message(message_body(alert))
            .subject(alert.subject())
            .message_attributes("rule_id", attr(alert.rule_id.as_str()).map_err(&fail)?)
            .message_attributes("severity", attr(alert.severity.as_str()).map_err(&fail)?)
            .message_attributes("cluster", attr(non_empty(&alert.cluster)).map_err(&fail)?);
        if topic_arn.ends_with(".fifo") {
            req = req
                .message_group_id(alert.rule_id.as_str())
                .message_deduplication_id(&alert.alert_id);
        }
        req.send().await.map(|_| ()).map_err(|e| {
            // SNS refuses a message it can never accept (too long, a bad
            // subject or attribute) with these codes; the rest is worth a retry.
            let permanent = match &e {
                SdkError::ServiceError(se) => matches!(
                    se.err().code(),
                    Some(
                        "InvalidParameter" | "InvalidParameterValue" | "InvalidParameterException"
                    )
                ),
                SdkError::ConstructionFailure(_) => true,
                _ => false,
            };
            PublishError {
                alert_id: alert.alert_id.clone(),
                reason: DisplayErrorContext(e).to_string(),
                permanent,
            }
        })
    }
}

/// The `MessageStructure=json` body: per-protocol messages.
pub fn message_body(alert: &Alert) -> String {
    serde_json::json!({
        "default": alert.to_json(),
        "email": alert.email_text(),
        "email-json": alert.to_json(),
    })
    .to_string()
}

fn attr(value: &str) -> Result<MessageAttributeValue, String> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| e.to_string())
}

impl AlertSink for SnsSink {
    #[instrument(skip(self, alert), fields(alert_id = %alert.alert_id, rule_id = alert.rule_id.as_str()))]
    async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        let main = self.publish_to(&self.topic_arn, alert).await;
        match &self.ops_topic_arn {
            Some(ops) if crate::tamper::concerns_the_detector(alert) => {
                // Delivered when either topic took it: the one that failed
                // may be what was just switched off, and retrying would
                // repeat the report on the other every minute.
                let second = self.publish_to(ops, alert).await;
                match (main, second) {
                    (Err(e), Err(_)) => Err(e),
                    (main, second) => {
                        if let Err(e) = main.and(second) {
                            tracing::warn!(error = %e, "report delivered to one of the two topics only");
                        }
                        Ok(())
                    }
                }
            }
            _ => main,
        }
    }
}

/// SNS rejects empty attribute values.
fn non_empty(value: &str) -> &str {
    if value.is_empty() {
        "unknown"
    } else {
        value
    }
}
