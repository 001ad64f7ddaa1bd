//! The e-mail text of an alert: one layout for requests in an audit log,
//! one for a CloudTrail change, one for a cluster gone quiet. Every request
//! value is neutralised (no control characters, markup or mentions).

use std::fmt::Write as _;

use super::place::cloudtrail_url;
use crate::bounded::neutralize;
use crate::vocab::{Alert, Sample};

impl Alert {
    /// Short human-readable text for e-mail subscribers: a layout for
    /// requests in an audit log, one for a CloudTrail change that blinds
    /// the detector, one for a cluster gone quiet.
    pub fn email_text(&self) -> String {
        if self.rule_id == crate::tamper::RULE_ID
            || self.rule_id == crate::rules::access_entry::META.id
        {
            self.tamper_email()
        } else if self.rule_id == crate::silence::RULE_ID {
            self.silence_email()
        } else {
            self.requests_email()
        }
    }

    /// The layout of an alert about requests: the window, the first
    /// request, every context value, the summary and the query.
    fn requests_email(&self) -> String {
        let mut t = String::with_capacity(4096);
        let o = |v: &Option<String>| v.as_deref().map_or_else(|| "-".to_owned(), s);
        let _ = writeln!(t, "{}", neutralize(&self.title, 2000));
        let _ = writeln!(t);
        self.header(&mut t);
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
        self.place(&mut t);
        let _ = writeln!(t);
        let _ = writeln!(t, "What to check next:");
        let _ = writeln!(t, "{}", self.runbook);
        // A minimal alert has no sample left to show.
        if self.sample != Sample::default() {
            let sm = &self.sample;
            let _ = writeln!(t);
            let _ = writeln!(t, "First matching request:");
            let _ = writeln!(t, "  auditID:    {}", o(&sm.audit_id));
            let _ = writeln!(t, "  verb:       {}", o(&sm.verb));
            let _ = writeln!(t, "  requestURI: {}", o(&sm.request_uri));
            let _ = writeln!(
                t,
                "  object:     {} {} (namespace {})",
                o(&sm.resource),
                o(&sm.name),
                o(&sm.namespace)
            );
            let _ = writeln!(t, "  username:   {}", o(&sm.username));
            let _ = writeln!(t, "  userAgent:  {}", o(&sm.user_agent));
            let _ = writeln!(t, "  sourceIPs:  {}", joined(&sm.source_ips));
            let code = sm
                .response_status
                .code
                .map_or_else(|| "-".to_owned(), |c| c.to_string());
            let _ = writeln!(
                t,
                "  response:   {} {}",
                code,
                o(&sm.response_status.reason)
            );
        }
        if !self.context.is_empty() {
            let c = &self.context;
            let codes: Vec<String> = c.response_status.iter().map(i64::to_string).collect();
            let _ = writeln!(t);
            let _ = writeln!(t, "Requests in the window:");
            for (field, values) in [
                ("username", &c.username),
                ("sourceIPs", &c.source_ips),
                ("userAgent", &c.user_agent),
                ("namespace", &c.namespace),
                ("verb", &c.verb),
                ("resource", &c.resource),
                ("requestURI", &c.request_uri),
                ("responseStatus", &codes),
            ] {
                let _ = writeln!(t, "  {field:<15} {}", joined(values));
            }
        }
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
        self.investigation(&mut t, "the window's requests");
        self.footer(&mut t);
        t
    }

    /// The layout of a CloudTrail change: who did what to which resource,
    /// from where, whether it worked, and the event in CloudTrail.
    fn tamper_email(&self) -> String {
        let mut t = String::with_capacity(2048);
        let field = |name: &str| {
            self.summary
                .get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|v| !v.is_empty())
        };
        let _ = writeln!(t, "{}", neutralize(&self.title, 2000));
        let _ = writeln!(t);
        self.header(&mut t);
        let _ = writeln!(t, "When:       {}", self.first_seen);
        let _ = writeln!(
            t,
            "Who:        {}",
            field("principal").map_or_else(|| "-".to_owned(), s)
        );
        let did = match (field("eventName"), field("eventSource")) {
            (Some(name), Some(source)) => format!("{} on {}", s(name), s(source)),
            (Some(name), None) => s(name),
            _ => "-".to_owned(),
        };
        let _ = writeln!(t, "Did what:   {did}");
        let _ = writeln!(t, "To:         {}", s(&self.cluster));
        if let Some(params) = field("requestParameters") {
            let _ = writeln!(t, "Parameters: {}", neutralize(params, 1000));
        }
        let agent = field("userAgent").map_or_else(|| "-".to_owned(), s);
        let _ = writeln!(
            t,
            "From:       {} (user agent {agent})",
            if self.source_ip.is_empty() {
                "-".to_owned()
            } else {
                s(&self.source_ip)
            }
        );
        let outcome = match (field("errorCode"), field("errorMessage")) {
            (None, None) => "succeeded".to_owned(),
            (code, message) => {
                let mut o = format!("FAILED: {}", code.map_or_else(|| "-".to_owned(), s));
                if let Some(m) = message {
                    let _ = write!(o, " ({})", s(m));
                }
                o
            }
        };
        let _ = writeln!(t, "Result:     {outcome}");
        let event_id = field("eventID");
        let _ = writeln!(
            t,
            "Event id:   {}",
            event_id.map_or_else(|| "-".to_owned(), s)
        );
        let link = self
            .region
            .as_deref()
            .zip(event_id)
            .and_then(|(r, id)| cloudtrail_url(r, id));
        if let Some(link) = link {
            let _ = writeln!(t, "CloudTrail: {link}");
        }
        self.place(&mut t);
        let _ = writeln!(t, "MITRE:      {}", self.mitre);
        let _ = writeln!(t);
        let _ = writeln!(t, "What to check next:");
        let _ = writeln!(t, "{}", self.runbook);
        self.footer(&mut t);
        t
    }

    /// The layout of a cluster gone quiet: since when, and the query that
    /// shows whether anything arrived since.
    fn silence_email(&self) -> String {
        let mut t = String::with_capacity(2048);
        let _ = writeln!(t, "{}", neutralize(&self.title, 2000));
        let _ = writeln!(t);
        self.header(&mut t);
        let _ = writeln!(t, "Cluster:    {}", s(&self.cluster));
        let _ = writeln!(t, "Last heard: {}", self.first_seen);
        let _ = writeln!(
            t,
            "Reported:   {} (after {} quiet minutes)",
            self.window_end, self.threshold
        );
        self.place(&mut t);
        let _ = writeln!(t);
        let _ = writeln!(t, "What to check next:");
        let _ = writeln!(t, "{}", self.runbook);
        self.investigation(&mut t, "whatever arrived since (nothing, if still quiet)");
        self.footer(&mut t);
        t
    }

    /// Severity and rule: the first lines of every layout.
    fn header(&self, t: &mut String) {
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
    }

    /// Where: account, region, log group and the cluster's ARN.
    fn place(&self, t: &mut String) {
        let or_dash = |v: Option<&str>| v.map_or_else(|| "-".to_owned(), s);
        let _ = writeln!(
            t,
            "Account:    {}  Region: {}",
            s(&self.account),
            or_dash(self.region.as_deref())
        );
        // Alerts about the detector's own resources have neither.
        if !self.log_group.is_empty() {
            let _ = writeln!(t, "Log group:  {}", s(&self.log_group));
            let _ = writeln!(t, "Cluster ARN: {}", or_dash(self.cluster_arn.as_deref()));
        }
    }

    /// The query and its console link, when there is one.
    fn investigation(&self, t: &mut String, what: &str) {
        let Some(inv) = &self.investigate else {
            return;
        };
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "Investigate ({what}; CloudWatch Logs Insights on the log group over the window):"
        );
        let _ = writeln!(t, "  {}", email_query(&inv.query));
        if let Some(url) = &inv.console_url {
            // The console reads `*40` as `@`: written so, no value can
            // spell a chat mention in the link.
            let _ = writeln!(t, "  {}", url.replace('@', "*40"));
        }
    }

    fn footer(&self, t: &mut String) {
        let _ = writeln!(t);
        let _ = writeln!(t, "Reference: {}", self.reference);
        let _ = writeln!(t, "Alert id: {}", self.alert_id);
    }
}

/// A request's value for a line of text read by people.
fn s(v: &str) -> String {
    neutralize(v, 300)
}

/// Values for one line of text, each neutralised, the line bounded.
fn joined(values: &[String]) -> String {
    if values.is_empty() {
        return "-".to_owned();
    }
    let all = values.iter().map(|v| s(v)).collect::<Vec<_>>().join(", ");
    neutralize(&all, 1000)
}

/// The query as e-mail text: neutralised like any request value, with the
/// query's own `@` fields written as they must be typed.
fn email_query(query: &str) -> String {
    neutralize(query, 6000)
        .replace("＠timestamp", "@timestamp")
        .replace("＠message", "@message")
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
