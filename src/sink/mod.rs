//! Where alerts go: a one-method port, with SNS for the Lambda and stdout
//! for `replay`.

pub mod sns;
pub mod stdout;

use std::future::Future;

use crate::alert::Alert;

/// An alert could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("publishing alert {alert_id} failed: {reason}")]
pub struct PublishError {
    /// The alert's id.
    pub alert_id: String,
    /// What went wrong.
    pub reason: String,
    /// True when the destination refused this message as it is (too long,
    /// an invalid parameter): the same message will never go through.
    pub permanent: bool,
}

impl PublishError {
    /// A failure a retry can fix.
    pub fn transient(alert_id: &str, reason: impl Into<String>) -> Self {
        Self {
            alert_id: alert_id.to_owned(),
            reason: reason.into(),
            permanent: false,
        }
    }
}

/// Delivers alerts.
pub trait AlertSink: Send + Sync {
    /// Delivers one alert; `Ok` means it is with the destination.
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// A shared sink is a sink (tests keep a handle on what several processors
/// delivered).
impl<T: AlertSink> AlertSink for std::sync::Arc<T> {
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).publish(alert)
    }
}
