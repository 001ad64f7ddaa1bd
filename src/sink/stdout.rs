//! Alerts as JSON lines on standard output (`replay`).

use std::io::Write;
use std::sync::Mutex;

use super::{AlertSink, PublishError};
use crate::alert::Alert;

/// Writes each alert as one JSON line to a writer (stdout by default).
pub struct LineSink<W: Write + Send> {
    out: Mutex<W>,
}

impl LineSink<std::io::Stdout> {
    /// Alerts to standard output.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }
}

impl<W: Write + Send> LineSink<W> {
    /// Alerts to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// The writer back (tests read what was written).
    pub fn into_inner(self) -> W {
        match self.out.into_inner() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl<W: Write + Send> AlertSink for LineSink<W> {
    async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        let fail = |reason: String| PublishError::transient(&alert.alert_id, reason);
        let mut out = self
            .out
            .lock()
            .map_err(|_| fail("writer lock poisoned".into()))?;
        writeln!(out, "{}", alert.to_json()).map_err(|e| fail(e.to_string()))?;
        out.flush().map_err(|e| fail(e.to_string()))
    }
}
