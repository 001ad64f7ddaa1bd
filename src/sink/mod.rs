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
}

/// Delivers alerts.
pub trait AlertSink: Send + Sync {
    /// Delivers one alert; `Ok` means it is with the destination.
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<(), PublishError>> + Send;
}
