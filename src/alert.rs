//! Alerts: the stable JSON document, the e-mail text and the subject line.
//!
//! The JSON is what SQS, Lambda and HTTPS subscribers receive; its field
//! names are a public interface. Every string that came from a request
//! (user agent, URI, username) is attacker-controlled: the JSON escapes it by
//! construction, and the text renderings strip control characters.

use std::fmt::Write as _;

use crate::bounded::{neutralize, subject_text, MAX_SUBJECT_CHARS};
use crate::rules::Rule;
use crate::time::format_rfc3339;
pub use crate::vocab::Alert;
use crate::vocab::{stable_hash, Sample};
use crate::window::{Decision, WindowState};

impl Alert {
    /// The alert `rule` owes for a window, as the window stands now.
    pub fn render(rule: &dyn Rule, st: &WindowState, decision: Decision) -> Self {
        let Decision {
            severity,
            escalation,
            threshold,
        } = decision;
        let meta = rule.meta();
        let start = st.window_start.to_string();
        let id = if escalation {
            stable_hash(&[
                meta.id.as_str(),
                &st.dedup,
                &start,
                "escalation",
                severity.as_str(),
            ])
        } else {
            stable_hash(&[meta.id.as_str(), &st.dedup, &start])
        };
        Self {
            alert_id: format!("{id:032x}"),
            rule_id: st.rule,
            rule_name: meta.name.to_owned(),
            headline: rule.headline(severity).to_owned(),
            severity,
            escalation,
            title: rule.title(st, severity),
            dedup: st.dedup.clone(),
            cluster: st.cluster.clone(),
            source_ip: st.source_ip.clone(),
            event_count: st.count,
            threshold,
            window_start: format_rfc3339(st.window_start),
            window_end: format_rfc3339(st.window_end()),
            first_seen: format_rfc3339(st.first_seen),
            last_seen: format_rfc3339(st.last_seen),
            mitre: meta.mitre.to_owned(),
            reference: meta.reference.to_owned(),
            runbook: meta.runbook.to_owned(),
            summary: rule.summary(st),
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

    /// Subject line: printable ASCII, fewer than 100 characters, no markup
    /// or mention characters from the request.
    pub fn subject(&self) -> String {
        let what = if self.headline.is_empty() {
            &self.rule_name
        } else {
            &self.headline
        };
        let what = subject_text(what, MAX_SUBJECT_CHARS);
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
    use crate::config::DetectorConfig;
    use crate::rules::pod_scan::PodScan;
    use crate::vocab::{Match, MatchedEvent, SampleStatus, Severity, WindowParams};
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
            rule: crate::rules::pod_scan::META.id,
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
            horizon_ms: crate::window::DEFAULT_HORIZON_MS,
            stamped_until: 0,
        };
        let params = WindowParams {
            threshold: 1,
            window_ms: 3_600_000,
            max_severity: Severity::High,
        };
        let rule = PodScan::new(&DetectorConfig::default());
        apply_batch(None, params, &batch, &[&m], &|st, d| {
            Alert::render(&rule, st, d)
        })
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
