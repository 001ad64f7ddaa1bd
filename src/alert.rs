//! Alerts: the stable JSON document, the e-mail text and the subject line.
//!
//! The JSON is what SQS, Lambda and HTTPS subscribers receive; its field
//! names are a public interface. Every string that came from a request
//! (user agent, URI, username) is attacker-controlled: the JSON escapes it by
//! construction, and the text renderings strip control characters.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::bounded::{neutralize, subject_text, MAX_SUBJECT_CHARS};
use crate::rules::{alert_summary, alert_title, RuleId, Sample, Severity};
use crate::time::format_rfc3339;
use crate::window::{WindowParams, WindowState};

/// One alert, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic: the same window (and escalation) always gets the same
    /// id, so subscribers can drop a duplicate delivery.
    pub alert_id: String,
    /// Public rule id.
    pub rule_id: RuleId,
    /// Rule name from the original catalog.
    pub rule_name: String,
    /// `INFO` … `CRITICAL`.
    pub severity: Severity,
    /// True for a second alert of a window whose severity went up.
    pub escalation: bool,
    /// One-line description.
    pub title: String,
    /// Dedup key of the window.
    pub dedup: String,
    /// Cluster label.
    pub cluster: String,
    /// Source IP the alert is about.
    pub source_ip: String,
    /// Matches in the window when the alert was raised.
    pub event_count: u64,
    /// The rule's threshold.
    pub threshold: u64,
    /// Window start, RFC3339 UTC.
    pub window_start: String,
    /// Window end, RFC3339 UTC.
    pub window_end: String,
    /// Earliest match, RFC3339 UTC.
    pub first_seen: String,
    /// Latest match so far, RFC3339 UTC.
    pub last_seen: String,
    /// MITRE ATT&CK technique(s).
    pub mitre: String,
    /// Where to read more.
    pub reference: String,
    /// What to check next.
    pub runbook: String,
    /// Panther summary attributes or Splunk's columns.
    pub summary: serde_json::Value,
    /// CloudWatch log group.
    pub log_group: String,
    /// AWS account that owns the log group.
    pub account: String,
    /// The window's first matching event (for an escalation: the first
    /// event at the higher severity).
    pub sample: Sample,
    /// Addresses or groups of the window's requests that got no key of
    /// their own (a long `X-Forwarded-For` chain): see the README.
    #[serde(default)]
    pub fanout_dropped: u64,
}

/// 128-bit FNV-1a: stable across versions and platforms, unlike `Hash`.
pub fn stable_hash(parts: &[&str]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    for part in parts {
        for b in part.as_bytes().iter().chain(std::iter::once(&0xff)) {
            h ^= u128::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

impl Alert {
    /// The alert a window raises now at `severity`.
    pub fn from_window(
        st: &WindowState,
        params: WindowParams,
        severity: Severity,
        escalation: bool,
    ) -> Self {
        let meta = st.rule.meta();
        let start = st.window_start.to_string();
        let id = if escalation {
            stable_hash(&[meta.id, &st.dedup, &start, "escalation", severity.as_str()])
        } else {
            stable_hash(&[meta.id, &st.dedup, &start])
        };
        Self {
            alert_id: format!("{id:032x}"),
            rule_id: st.rule,
            rule_name: meta.name.to_owned(),
            severity,
            escalation,
            title: alert_title(st, severity),
            dedup: st.dedup.clone(),
            cluster: st.cluster.clone(),
            source_ip: st.source_ip.clone(),
            event_count: st.count,
            threshold: params.threshold,
            window_start: format_rfc3339(st.window_start),
            window_end: format_rfc3339(st.window_end()),
            first_seen: format_rfc3339(st.first_seen),
            last_seen: format_rfc3339(st.last_seen),
            mitre: meta.mitre.to_owned(),
            reference: meta.reference.to_owned(),
            runbook: meta.runbook.to_owned(),
            summary: alert_summary(st),
            log_group: st.log_group.clone(),
            account: st.account.clone(),
            // An escalation shows the request that made it worse.
            sample: match (&st.escalation_sample, escalation) {
                (Some(s), true) => s.clone(),
                _ => st.sample.clone(),
            },
            fanout_dropped: st.fanout_dropped,
        }
    }

    /// The alert without its request sample and summary: what is published
    /// when the whole alert is refused as too large (which the caps make
    /// unexpected), so the alert still reaches people.
    pub fn minimal(&self) -> Self {
        Self {
            summary: serde_json::Value::Object(serde_json::Map::new()),
            sample: Sample::default(),
            title: crate::bounded::cap(&self.title),
            runbook: String::new(),
            ..self.clone()
        }
    }

    /// The alert as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data to a string cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Subject line: printable ASCII, fewer than 100 characters, no markup
    /// or mention characters from the request.
    pub fn subject(&self) -> String {
        let what = match self.rule_id {
            RuleId::Multiple403 => "EKS 403 burst",
            RuleId::PodScan if self.severity >= Severity::High => {
                "EKS anonymous pod listing ALLOWED"
            }
            RuleId::PodScan => "EKS anonymous pod scan",
        };
        let raw = format!(
            "[{}] {what} from {} on {}",
            self.severity.as_str(),
            subject_text(&self.source_ip, MAX_SUBJECT_CHARS),
            subject_text(&self.cluster, MAX_SUBJECT_CHARS)
        );
        if raw.len() <= MAX_SUBJECT_CHARS {
            return raw;
        }
        // Cut on ASCII, so byte length is character count.
        let mut s = raw;
        s.truncate(MAX_SUBJECT_CHARS - 3);
        s.push_str("...");
        s
    }

    /// Short human-readable text for e-mail subscribers.
    pub fn email_text(&self) -> String {
        let mut t = String::with_capacity(1024);
        let s = |v: &str| neutralize(v, 300);
        let o = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "-".to_owned(), |v| neutralize(v, 300))
        };
        let _ = writeln!(t, "{}", neutralize(&self.title, 2000));
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "Severity:   {}{}",
            self.severity.as_str(),
            if self.escalation { " (escalated)" } else { "" }
        );
        let _ = writeln!(
            t,
            "Rule:       {} ({})",
            self.rule_id.as_str(),
            self.rule_name
        );
        let _ = writeln!(t, "Cluster:    {}", s(&self.cluster));
        let _ = writeln!(t, "Source IP:  {}", s(&self.source_ip));
        let _ = writeln!(
            t,
            "Matches:    {} (threshold {})",
            self.event_count, self.threshold
        );
        let _ = writeln!(
            t,
            "Window:     {} to {}",
            self.window_start, self.window_end
        );
        let _ = writeln!(t, "Seen:       {} to {}", self.first_seen, self.last_seen);
        let _ = writeln!(t, "MITRE:      {}", self.mitre);
        let _ = writeln!(
            t,
            "Account:    {}  Log group: {}",
            s(&self.account),
            s(&self.log_group)
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "What to check next:");
        let _ = writeln!(t, "{}", self.runbook);
        let _ = writeln!(t);
        let _ = writeln!(t, "First matching request:");
        let _ = writeln!(t, "  auditID:    {}", o(&self.sample.audit_id));
        let _ = writeln!(t, "  verb:       {}", o(&self.sample.verb));
        let _ = writeln!(t, "  requestURI: {}", o(&self.sample.request_uri));
        let _ = writeln!(t, "  username:   {}", o(&self.sample.username));
        let _ = writeln!(t, "  userAgent:  {}", o(&self.sample.user_agent));
        let code = self
            .sample
            .response_status
            .code
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        let _ = writeln!(
            t,
            "  response:   {} {}",
            code,
            o(&self.sample.response_status.reason)
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "Summary of the window:");
        if let Some(fields) = self.summary.as_object() {
            for (field, value) in fields {
                let _ = writeln!(t, "  {field}: {}", neutralize(&summary_value(value), 1000));
            }
        }
        if self.fanout_dropped > 0 {
            let _ = writeln!(
                t,
                "  (+{} forwarded addresses or groups without a key of their own)",
                self.fanout_dropped
            );
        }
        let _ = writeln!(t, "Reference: {}", self.reference);
        let _ = writeln!(t, "Alert id: {}", self.alert_id);
        t
    }
}

/// One summary value as text: `value (count)` lists, plain lists, scalars.
fn summary_value(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| match (item.get("value"), item.get("count")) {
                (Some(Value::String(v)), Some(c)) => format!("{v} ({c})"),
                _ => item
                    .as_str()
                    .map_or_else(|| item.to_string(), str::to_owned),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Match, MatchedEvent, SampleStatus};
    use crate::window::{apply_batch, BatchInfo};

    #[test]
    fn stable_hash_is_stable_and_separates_parts() {
        assert_eq!(stable_hash(&["a", "b"]), stable_hash(&["a", "b"]));
        assert_ne!(stable_hash(&["ab", ""]), stable_hash(&["a", "b"]));
        // Pinned: alert ids must not change between releases, or subscribers
        // deduplicating by alert_id would see old alerts as new.
        assert_eq!(
            format!("{:032x}", stable_hash(&["x"])),
            "0880955b50ab1be95aa0733055c4c358"
        );
    }

    /// A pod-scan alert whose attacker-controlled fields (a forwarded
    /// address, the user agent) carry control characters and non-ASCII text.
    fn hostile_alert() -> Alert {
        let evil_ip = format!("1.2.3.4\r\nBcc: victim@example.com {}", "ü".repeat(80));
        let m = Match {
            rule: RuleId::PodScan,
            dedup: format!("prod_{evil_ip}_system:anonymous_system:unauthenticated"),
            at_ms: 1_715_644_800_000,
            source_ip: evil_ip,
            severity: Severity::High,
            event: std::sync::Arc::new(MatchedEvent {
                sample: Sample {
                    user_agent: Some("curl\u{1b}[31m\nInjected: <!here> @channel\u{202e}".into()),
                    request_uri: Some("/api/v1/pods".into()),
                    response_status: SampleStatus {
                        code: Some(200),
                        reason: None,
                    },
                    ..Sample::default()
                },
                ..MatchedEvent::default()
            }),
            facts: vec![("user.groups{}", "system:unauthenticated".into())],
        };
        let batch = BatchInfo {
            id: "b",
            cluster: "prod",
            log_group: "/aws/eks/prod/cluster",
            account: "1",
            now_ms: 0,
        };
        let params = WindowParams {
            threshold: 1,
            window_ms: 3_600_000,
            max_severity: Severity::High,
        };
        apply_batch(None, params, &batch, &[&m])
            .expect("applied")
            .alerts
            .remove(0)
    }

    #[test]
    fn subject_is_short_printable_ascii() {
        let subject = hostile_alert().subject();
        // SNS: "less than 100 characters".
        assert!(subject.len() < 100, "{subject}");
        assert!(
            subject
                .chars()
                .all(|c| c.is_ascii() && !c.is_ascii_control()),
            "{subject:?}"
        );
        assert!(
            subject.starts_with("[HIGH] EKS anonymous pod listing ALLOWED from 1.2.3.4??Bcc"),
            "{subject}"
        );
    }

    #[test]
    fn email_text_cannot_be_given_extra_lines_by_a_request() {
        let alert = hostile_alert();
        let text = alert.email_text();
        assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("Bcc:") || l.starts_with("Injected:")),
            "{text}"
        );
        assert!(
            !text.contains("<!here>") && !text.contains("@channel"),
            "{text}"
        );
        assert!(text.contains("Severity:   HIGH"));
        assert!(text.contains("What to check next:"));
        // The JSON keeps the value as sent, escaped.
        assert!(alert.to_json().contains(r"\r\nBcc"));
        assert!(alert.to_json().contains("<!here> @channel"));
    }
}
