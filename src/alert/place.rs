//! Where an alert points a reader: the cluster's ARN, the Logs Insights
//! query of the window's requests, and console links. Request values reach
//! the query quoted, or not at all.

use std::fmt::Write as _;

use crate::bounded::MAX_FIELD_BYTES;
use crate::vocab::Condition;

use super::{QUERY_END, QUERY_FIELDS};

/// The cap marker of [`crate::bounded::cap`]: a value carrying it is cut.
pub(crate) const CUT_MARKER: &str = "…[cut";

/// The CloudWatch Logs Insights query with `conditions` joined by `and`;
/// without any, every request of the time range.
pub fn query_text(conditions: &[Condition]) -> String {
    let mut out = String::with_capacity(QUERY_FIELDS.len() + QUERY_END.len() + 256);
    out.push_str(QUERY_FIELDS);
    let mut joined = false;
    for condition in conditions {
        let mark = out.len();
        out.push_str(if joined { " and " } else { " | filter " });
        if push_condition(&mut out, condition) {
            joined = true;
        } else {
            out.truncate(mark);
        }
    }
    out.push_str(" | ");
    out.push_str(QUERY_END);
    out
}

/// Writes one condition as query text; false (and what it wrote is to
/// be dropped) when it is left out: a value it needs is unusable, and
/// comparing with part of the values would hide requests (the query only
/// ever shows more than the window, never less).
fn push_condition(out: &mut String, condition: &Condition) -> bool {
    match condition {
        Condition::Mentions(text) => {
            if !quotable(text) {
                return false;
            }
            out.push_str("@message like ");
            push_quoted(out, text);
        }
        Condition::OneOf(field, values) => {
            if values.is_empty() || !values.iter().all(|v| quotable(v)) {
                return false;
            }
            out.push_str(field);
            if let [one] = values.as_slice() {
                out.push_str(" = ");
                push_quoted(out, one);
            } else {
                out.push_str(" in [");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    push_quoted(out, v);
                }
                out.push(']');
            }
        }
        Condition::OneOfNumbers(field, values) => match values.as_slice() {
            [] => return false,
            [one] => {
                let _ = write!(out, "{field} = {one}");
            }
            many => {
                let _ = write!(out, "{field} in [");
                for (i, v) in many.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{v}");
                }
                out.push(']');
            }
        },
        // The rule's own text: may hold `or`, so it stands apart.
        Condition::Fixed(text) => {
            out.push('(');
            out.push_str(text);
            out.push(')');
        }
    }
    true
}

/// Whether a request's value can be compared with in a query: not longer
/// than [`MAX_FIELD_BYTES`], not cut by [`crate::bounded::cap`], and
/// without control characters (written without them it would compare
/// unequal, and the query would find nothing).
fn quotable(value: &str) -> bool {
    value.len() <= MAX_FIELD_BYTES
        && !value.contains(CUT_MARKER)
        && !value.chars().any(char::is_control)
}

/// `"value"`, its inside as [`query_string`] writes it.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    push_query_string(out, value);
    out.push('"');
}

/// The inside of a query string literal: `\` and `"` escaped, control
/// characters dropped (so no value can end the literal or break a line).
pub fn query_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    push_query_string(&mut out, value);
    out
}

fn push_query_string(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// JavaScript's `escape()`: ASCII letters, digits and `@*_+-./` kept,
/// every other byte of the UTF-8 text as `%XX`.
pub fn js_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"@*_+-./".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A value as the console's link fragment writes it: [`js_escape`] with
/// `%` written `*`. A `*` of the value itself is escaped first (`*2A`), or
/// the console would read it as the start of an escape.
pub(crate) fn console_escape(text: &str) -> String {
    js_escape(text).replace('*', "%2A").replace('%', "*")
}

/// True for text shaped like an AWS region (`us-east-1`): lower-case
/// letters, digits and hyphens, starting with a letter.
pub(crate) fn is_region(region: &str) -> bool {
    region.len() <= 32
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The partition of a region and the host of its console.
pub(crate) fn partition(region: &str) -> (&'static str, &'static str) {
    if region.starts_with("cn-") {
        ("aws-cn", "console.amazonaws.cn")
    } else if region.starts_with("us-gov-") {
        ("aws-us-gov", "console.amazonaws-us-gov.com")
    } else {
        ("aws", "console.aws.amazon.com")
    }
}

/// The cluster of an EKS control-plane log group, `/aws/eks/<name>/cluster`,
/// when the name is one EKS accepts (letters, digits, `-` and `_`, starting
/// with a letter or digit, at most 100 characters).
pub fn cluster_name(log_group: &str) -> Option<&str> {
    let name = log_group
        .strip_prefix("/aws/eks/")?
        .strip_suffix("/cluster")?;
    let ok = (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(name)
}

/// `arn:<partition>:eks:<region>:<account>:cluster/<name>`; `None` without
/// a 12-digit account or a well-formed log group.
pub fn cluster_arn(region: &str, account: &str, log_group: &str) -> Option<String> {
    if !is_region(region) || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let name = cluster_name(log_group)?;
    let (partition, _) = partition(region);
    Some(format!(
        "arn:{partition}:eks:{region}:{account}:cluster/{name}"
    ))
}

/// The console link that opens `query` in CloudWatch Logs Insights on
/// `log_group` from `start` to `end` (RFC3339); `None` without a log group.
pub fn insights_url(
    region: &str,
    log_group: &str,
    start: &str,
    end: &str,
    query: &str,
) -> Option<String> {
    if !is_region(region) || log_group.is_empty() {
        return None;
    }
    let (_, host) = partition(region);
    Some(format!(
        "https://{region}.{host}/cloudwatch/home?region={region}#logsV2:logs-insights\
         $3FqueryDetail$3D~(end~'{}~start~'{}~timeType~'ABSOLUTE~tz~'UTC~editorString~'{}\
         ~source~(~'{}))",
        console_escape(end),
        console_escape(start),
        console_escape(query),
        console_escape(log_group),
    ))
}

/// The CloudTrail console's page of one event; `None` for an id that is
/// not one (CloudTrail's are UUIDs).
pub fn cloudtrail_url(region: &str, event_id: &str) -> Option<String> {
    let id_ok = (1..=64).contains(&event_id.len())
        && event_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !is_region(region) || !id_ok {
        return None;
    }
    let (_, host) = partition(region);
    Some(format!(
        "https://{region}.{host}/cloudtrailv2/home?region={region}#/events/{event_id}"
    ))
}
