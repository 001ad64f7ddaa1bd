//! The replay's summary: one line per rule of the registry for people
//! (stderr), or one JSON document for scripts (`--summary json`).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{json, Value};

use super::ReplaySummary;
use crate::scan::{per_rule, ScanStats, SkipReason};
use crate::vocab::RuleId;

/// One rule's counts.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    /// Rule id.
    pub id: RuleId,
    /// False for a registry rule that did not run.
    pub enabled: bool,
    /// Events it matched.
    pub matched_events: u64,
    /// Matches (groups) it made.
    pub matches: u64,
    /// Events it could not evaluate.
    pub rule_errors: u64,
}

/// Every rule of the registry: those that ran, then the others.
pub fn rule_rows(s: &ReplaySummary) -> Vec<RuleRow> {
    let scan = &s.report.scan;
    let ran = s.rules.iter().map(|&id| (id, true));
    let off = s.disabled.iter().map(|&id| (id, false));
    ran.chain(off)
        .map(|(id, enabled)| RuleRow {
            id,
            enabled,
            matched_events: per_rule(&scan.matched_events, id),
            matches: per_rule(&scan.matches, id),
            rule_errors: per_rule(&scan.rule_errors, id),
        })
        .collect()
}

/// The human summary printed on stderr.
pub fn render_summary(s: &ReplaySummary) -> String {
    let r = &s.report;
    let scan: &ScanStats = &r.scan;
    let mut t = String::new();
    let mb = scan.message_bytes as f64 / 1e6;
    let secs = s.seconds.max(1e-9);
    let _ = writeln!(t, "replay summary");
    let _ = writeln!(
        t,
        "  inputs {}  batches {} (control messages {})  failed inputs {}",
        s.inputs,
        s.batches,
        s.control_messages,
        s.failures.len()
    );
    let _ = writeln!(
        t,
        "  events {}  prefiltered {}  parsed {}  skipped {}",
        scan.events,
        scan.prefiltered,
        scan.parsed,
        scan.skipped_total()
    );
    for reason in SkipReason::ALL {
        let n = scan.skipped.get(&reason).copied().unwrap_or(0);
        if n > 0 {
            let _ = writeln!(t, "    skipped {:<16} {n}", reason.as_str());
        }
    }
    for row in rule_rows(s) {
        let _ = writeln!(
            t,
            "  {:<48} matched events {:<6} matches {:<6} rule errors {}{}",
            row.id.as_str(),
            row.matched_events,
            row.matches,
            row.rule_errors,
            if row.enabled { "" } else { "  (disabled)" }
        );
    }
    let _ = writeln!(
        t,
        "  keys {}  alerts raised {}  alerts written {}",
        r.keys, r.alerts_raised, r.alerts_published
    );
    let _ = writeln!(
        t,
        "  {:.1} MB of messages in {:.3} s: {:.1} MB/s, {:.0} events/s",
        mb,
        s.seconds,
        mb / secs,
        scan.events as f64 / secs
    );
    for (name, why) in &s.failures {
        let _ = writeln!(t, "  FAILED {name}: {why}");
    }
    t
}

/// The summary as one JSON document.
pub fn summary_json(s: &ReplaySummary) -> Value {
    let r = &s.report;
    let scan = &r.scan;
    let skipped: serde_json::Map<String, Value> = SkipReason::ALL
        .iter()
        .map(|reason| {
            let n = scan.skipped.get(reason).copied().unwrap_or(0);
            (reason.as_str().to_owned(), json!(n))
        })
        .collect();
    let failures: Vec<Value> = s
        .failures
        .iter()
        .map(|(input, why)| json!({"input": input, "why": why}))
        .collect();
    json!({
        "inputs": s.inputs,
        "batches": s.batches,
        "control_messages": s.control_messages,
        "failed_inputs": failures,
        "events": scan.events,
        "prefiltered": scan.prefiltered,
        "parsed": scan.parsed,
        "skipped": skipped,
        "rules": rule_rows(s),
        "keys": r.keys,
        "alerts_raised": r.alerts_raised,
        "alerts_written": r.alerts_published,
        "message_bytes": scan.message_bytes,
        "seconds": s.seconds,
    })
}
