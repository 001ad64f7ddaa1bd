//! The detector function, its invoke permissions, its concurrency and its
//! Kinesis event source mapping. CloudTrail names Lambda's calls with the
//! API version (`UpdateFunctionConfiguration20150331v2`), so names are
//! matched on the action they start with.
//!
//! | CloudTrail event | severity | why |
//! |---|---|---|
//! | `UpdateFunctionCode`, `DeleteFunction` | HIGH | other code, or none, runs |
//! | `RemovePermission` | HIGH | Logs or EventBridge may no longer invoke it |
//! | `PutFunctionConcurrency` to 0 | HIGH | no invocation runs at all |
//! | `UpdateEventSourceMapping` disabling it, `DeleteEventSourceMapping` | HIGH | the stream is no longer read |
//! | `UpdateFunctionConfiguration` changing the environment | HIGH | rules off, sources allowed, alerts elsewhere |
//! | `UpdateFunctionConfiguration` otherwise | MEDIUM | role, timeout, memory |

use serde_json::Value;

use super::{last_part, param, Finding};
use crate::config::DetectorResources;
use crate::vocab::Severity;

/// Lambda actions this module reports, as CloudTrail's names start.
const ACTIONS: [&str; 8] = [
    "UpdateFunctionConfiguration",
    "UpdateFunctionCode",
    "RemovePermission",
    "PutFunctionConcurrency",
    "DeleteFunction",
    "UpdateEventSourceMapping",
    "DeleteEventSourceMapping",
    "DeleteFunctionConcurrency",
];

/// At most this many environment keys in a title (the rest are counted).
const MAX_KEYS: usize = 5;

/// The finding of a Lambda record about the detector function.
pub(super) fn assess(
    name: &str,
    params: &Value,
    record: &Value,
    own: &DetectorResources,
) -> Option<Finding> {
    let action = action(name)?;
    let function = own.function_name.as_deref()?;
    let target = format!("function {function}");
    let high = |done, tried| Some(Finding::own(Severity::High, target.clone(), done, tried));
    if action.ends_with("EventSourceMapping") {
        // The request names the mapping by UUID only; the response says
        // which function and stream it joined (absent when refused).
        let response = record.get("responseElements").unwrap_or(&Value::Null);
        let ours = [
            param(params, "functionName"),
            param(response, "functionArn"),
        ]
        .into_iter()
        .flatten()
        .any(|f| function_name(f) == function)
            || own.stream_name.as_deref().is_some_and(|s| {
                param(response, "eventSourceArn").is_some_and(|arn| last_part(arn) == s)
            });
        if !ours {
            return None;
        }
        return match action {
            "UpdateEventSourceMapping" if params.get("enabled") == Some(&Value::Bool(false)) => {
                high(
                    "disabled the event source mapping of",
                    "disable the event source mapping of",
                )
            }
            // The stream's mapping handed to another function.
            "UpdateEventSourceMapping"
                if param(params, "functionName").is_some_and(|f| function_name(f) != function) =>
            {
                high(
                    "moved the event source mapping to another function, away from",
                    "move the event source mapping away from",
                )
            }
            // Records no filter matches are discarded unread.
            "UpdateEventSourceMapping"
                if params
                    .get("filterCriteria")
                    .and_then(|c| c.get("filters"))
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty()) =>
            {
                high(
                    "set a filter (records it does not match are discarded) on the event source mapping of",
                    "set a filter on the event source mapping of",
                )
            }
            "DeleteEventSourceMapping" => high(
                "deleted the event source mapping of",
                "delete the event source mapping of",
            ),
            _ => None,
        };
    }
    if function_name(param(params, "functionName")?) != function {
        return None;
    }
    match action {
        "UpdateFunctionConfiguration" => {
            let Some(env) = params.get("environment") else {
                return Some(Finding::own(
                    Severity::Medium,
                    target,
                    "changed the configuration of",
                    "change the configuration of",
                ));
            };
            Some(
                Finding::own(
                    Severity::High,
                    target,
                    "changed the environment of",
                    "change the environment of",
                )
                .noted(Some(keys_note(env))),
            )
        }
        "UpdateFunctionCode" => high("replaced the code of", "replace the code of"),
        "RemovePermission" => high(
            "removed an invoke permission of",
            "remove an invoke permission of",
        )
        .map(|f| f.noted(param(params, "statementId").map(|s| format!("statement {s}")))),
        "PutFunctionConcurrency"
            if params
                .get("reservedConcurrentExecutions")
                .and_then(Value::as_u64)
                == Some(0) =>
        {
            high(
                "stopped every invocation (concurrency 0) of",
                "stop every invocation of",
            )
        }
        // Deleting a published version leaves the function as it is.
        "DeleteFunction" if param(params, "qualifier").is_none_or(|q| q == "$LATEST") => {
            high("deleted", "delete")
        }
        _ => None,
    }
}

/// The reported action `name` stands for: itself, or itself followed by an
/// API version (`DeleteFunction20150331`, not `DeleteFunctionConcurrency`).
fn action(name: &str) -> Option<&'static str> {
    ACTIONS.into_iter().find(|a| {
        name.strip_prefix(a)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// The function name of a name, an ARN or a partial ARN (qualifier cut).
pub(super) fn function_name(given: &str) -> &str {
    match given.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => given,
    }
}

/// Which environment keys the request shows (CloudTrail omits the values,
/// and may omit the keys).
fn keys_note(env: &Value) -> String {
    match env.get("variables").and_then(Value::as_object) {
        Some(vars) if !vars.is_empty() => {
            let mut keys: Vec<&str> = vars.keys().map(String::as_str).take(MAX_KEYS).collect();
            let more = vars.len().saturating_sub(MAX_KEYS);
            let mut note = String::from("environment keys ");
            keys.sort_unstable();
            note.push_str(&keys.join(", "));
            if more > 0 {
                note.push_str(&format!(" and {more} more"));
            }
            note
        }
        _ => "environment keys not shown".into(),
    }
}
