//! A CloudWatch Logs subscription batch: inflate, scan in slices, apply each
//! slice's matches to state.

use super::{HandlerError, Processor, Report, Run, EVENTS_PER_SLICE, MAX_CLOCK_SKEW_MS};
use crate::decode::{self, Batch, MessageType};
use crate::scan::Scanner;
use crate::sink::AlertSink;
use crate::store::StateStore;
use crate::window::BatchInfo;

impl<S: StateStore, P: AlertSink> Processor<S, P> {
    /// Handles one `awslogs.data` value into `report`.
    pub(super) async fn logs(
        &self,
        run: &Run,
        data: &str,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let json = decode::inflate(data, self.detector.config().max_decompressed_bytes)?;
        let batch = Batch::parse(&json)?;
        report.message_type = batch.message_type.to_string();
        report.log_group = batch.log_group.to_string();
        report.log_stream = batch.log_stream.to_string();
        if batch.kind() != MessageType::Data {
            return Ok(());
        }
        let scanner = Scanner::new(&self.detector);
        let label = batch.label(self.detector.config().organization_mode);
        self.hear(&label, &batch.log_group, &batch.owner, report)
            .await;
        let slices = batch.log_events.chunks(EVENTS_PER_SLICE);
        let sliced = slices.len() > 1;
        let mut matches = Vec::new();
        let mut result = Ok(());
        for (n, slice) in slices.enumerate() {
            matches.clear();
            scanner.scan_events(&label, slice, &mut matches, &mut report.scan);
            // Whoever can write to the log group chooses event times: one
            // far in the future would open a window that makes every real
            // match late. Times are clamped to arrival plus a little skew.
            let arrived_ms = self.now_ms();
            let latest = arrived_ms.saturating_add(MAX_CLOCK_SKEW_MS);
            let mut stamped_until = 0;
            for m in &mut matches {
                if m.at_ms > latest {
                    stamped_until = stamped_until.max(m.at_ms);
                    m.at_ms = latest;
                    report.future_matches += 1;
                }
            }
            if matches.is_empty() {
                // Nothing to count: no state, no batch id needed.
                continue;
            }
            if report.batch_id.is_empty() {
                report.batch_id = batch.id();
            }
            // Each slice is remembered on its own: a redelivery slices the
            // batch the same way.
            let id = if sliced {
                format!("{}{n:x}", &report.batch_id[..report.batch_id.len().min(12)])
            } else {
                report.batch_id.clone()
            };
            let info = BatchInfo {
                id: &id,
                cluster: &label,
                log_group: &batch.log_group,
                account: &batch.owner,
                now_ms: arrived_ms,
                horizon_ms: self.detector.config().late_horizon_ms(),
                stamped_until,
            };
            if let Err(e) = self.apply_run(run, &info, &matches, report).await {
                // Later slices are still applied: their keys are independent.
                // State that could not be written outranks a failed publish:
                // it is what a retry of the batch must fix.
                let worse = matches!(result, Ok(()) | Err(HandlerError::Publish { .. }))
                    && !matches!(e, HandlerError::Publish { .. });
                if result.is_ok() || worse {
                    result = Err(e);
                }
            }
        }
        if report.batch_id.is_empty() {
            self.sweep_if_owed(run, report).await;
        }
        result
    }
}
