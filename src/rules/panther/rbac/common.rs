//! What several rules of the group share: Python's truthiness, `in` and
//! `for` over JSON values, so that a rule reading a role's `rules` list or a
//! webhook's rules decides (or fails) exactly where Panther's Python does,
//! and the `<UNKNOWN_...>` / `<CLUSTER_SCOPED>` defaults of the titles.

use serde_json::{Map, Value};

use crate::audit::AuditEvent;

/// Python raised (a `TypeError` or `AttributeError`). Panther counts a
/// `rule()` that raises as no match, and a `severity()` that raises as the
/// rule's default severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised;

/// A Python computation: its value, or the exception it raised.
pub type Py<T> = Result<T, Raised>;

/// The guards the role rules open with: a Role or ClusterRole created,
/// the API server accepted it, and not by a platform component.
pub fn user_role_creation(ev: &AuditEvent<'_>) -> bool {
    use crate::rules::catalog::k8s::{is_failed_request, is_system_principal};
    ev.verb.as_ref().map(|v| v.as_str()) == Some("create")
        && matches!(ev.resource(), Some("roles" | "clusterroles"))
        && !is_failed_request(ev.status_code())
        && !is_system_principal(ev.username())
}

/// Python's truthiness of a JSON value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `x or []` (or `x or {}`): `None` for a missing or falsy value, which
/// reads as empty.
pub fn or_empty(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| truthy(v))
}

/// `udm(x) or "<DEFAULT>"` for a string field.
pub fn or_default<'s>(s: Option<&'s str>, default: &'s str) -> &'s str {
    s.filter(|s| !s.is_empty()).unwrap_or(default)
}

/// The namespace Panther's titles show: `udm("namespace") or
/// "<CLUSTER_SCOPED>"`, `None` when that is `<CLUSTER_SCOPED>`.
pub fn title_namespace(namespace: Option<&str>) -> Option<&str> {
    Some(or_default(namespace, "<CLUSTER_SCOPED>")).filter(|ns| *ns != "<CLUSTER_SCOPED>")
}

/// `ClusterRole` for `clusterroles`, else `Role`.
pub fn role_type(resource: Option<&str>) -> &'static str {
    if resource == Some("clusterroles") {
        "ClusterRole"
    } else {
        "Role"
    }
}

/// Python's `needle in container` for a string needle: list membership,
/// dict key, or substring. `None` is a missing key read with a `[]`
/// default (or a falsy value after `or []`); `null`, numbers and booleans
/// raise.
pub fn contains(container: Option<&Value>, needle: &str) -> Py<bool> {
    match container {
        None => Ok(false),
        Some(Value::Array(a)) => Ok(a.iter().any(|v| v.as_str() == Some(needle))),
        Some(Value::Object(o)) => Ok(o.contains_key(needle)),
        Some(Value::String(s)) => Ok(s.contains(needle)),
        Some(_) => Err(Raised),
    }
}

/// One item of a Python `for` over a JSON value.
#[derive(Debug, Clone, Copy)]
pub enum Item<'v> {
    /// An element of a list.
    Value(&'v Value),
    /// A key of a dict.
    Key(&'v str),
    /// A character of a string.
    Char(char),
}

impl<'v> Item<'v> {
    /// The item as a dict, for `item.get(...)` (anything else has no
    /// `get` and raises).
    pub fn object(self) -> Py<&'v Map<String, Value>> {
        match self {
            Item::Value(Value::Object(o)) => Ok(o),
            _ => Err(Raised),
        }
    }

    /// `item in {...}` for a set of strings: lists and dicts are
    /// unhashable and raise.
    pub fn in_set(self, set: &[&str]) -> Py<bool> {
        match self {
            Item::Value(Value::String(s)) => Ok(set.contains(&s.as_str())),
            Item::Value(Value::Array(_) | Value::Object(_)) => Err(Raised),
            Item::Value(_) => Ok(false),
            Item::Key(k) => Ok(set.contains(&k)),
            Item::Char(c) => Ok(set.iter().any(|s| {
                let mut chars = s.chars();
                chars.next() == Some(c) && chars.next().is_none()
            })),
        }
    }
}

/// `for item in v:` up to the first item `f` gives a value for. `None` is
/// a missing key read with a `[]` default (or a falsy value after `or
/// []`); `null`, numbers and booleans are not iterable and raise.
pub fn find_map<'v, T>(
    v: Option<&'v Value>,
    mut f: impl FnMut(Item<'v>) -> Py<Option<T>>,
) -> Py<Option<T>> {
    match v {
        None => Ok(None),
        Some(Value::Array(a)) => {
            for x in a {
                if let Some(t) = f(Item::Value(x))? {
                    return Ok(Some(t));
                }
            }
            Ok(None)
        }
        Some(Value::Object(o)) => {
            for k in o.keys() {
                if let Some(t) = f(Item::Key(k))? {
                    return Ok(Some(t));
                }
            }
            Ok(None)
        }
        Some(Value::String(s)) => {
            for c in s.chars() {
                if let Some(t) = f(Item::Char(c))? {
                    return Ok(Some(t));
                }
            }
            Ok(None)
        }
        Some(_) => Err(Raised),
    }
}

/// `any(f(item) for item in v)` (see [`find_map`]).
pub fn any<'v>(v: Option<&'v Value>, mut f: impl FnMut(Item<'v>) -> Py<bool>) -> Py<bool> {
    find_map(v, |item| Ok(f(item)?.then_some(()))).map(|found| found.is_some())
}

/// `(udm("requestObject") or {})`: the request body as a dict, `None` when
/// missing or falsy (read as `{}`); a body that is something else has no
/// `get` and raises.
pub fn request_dict<'v>(ev: &'v AuditEvent<'_>) -> Py<Option<&'v Map<String, Value>>> {
    match or_empty(ev.request_object()) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(Raised),
    }
}

/// `(udm("requestObject") or {}).get("rules") or []`: a role's rules, to
/// go through with [`find_map`] or [`any`].
pub fn role_rules<'v>(ev: &'v AuditEvent<'_>) -> Py<Option<&'v Value>> {
    Ok(or_empty(request_dict(ev)?.and_then(|o| o.get("rules"))))
}

/// Most values joined into one context field.
pub const MAX_JOINED: usize = 10;

/// Up to [`MAX_JOINED`] values joined with `, `.
pub fn join_few<'s>(values: impl IntoIterator<Item = &'s str>) -> String {
    values
        .into_iter()
        .take(MAX_JOINED)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn in_follows_python_per_type() {
        assert_eq!(
            contains(Some(&json!(["a", "pods/exec"])), "pods/exec"),
            Ok(true)
        );
        assert_eq!(
            contains(Some(&json!({"pods/exec": 1})), "pods/exec"),
            Ok(true)
        );
        assert_eq!(
            contains(Some(&json!("x-pods/exec-y")), "pods/exec"),
            Ok(true)
        );
        assert_eq!(contains(None, "pods/exec"), Ok(false));
        assert_eq!(contains(Some(&json!(null)), "x"), Err(Raised));
        assert_eq!(contains(Some(&json!(3)), "x"), Err(Raised));
    }

    #[test]
    fn iteration_follows_python_per_type() {
        let set = ["create", "c"];
        assert_eq!(
            any(Some(&json!([1, "create"])), |i| i.in_set(&set)),
            Ok(true)
        );
        assert_eq!(
            any(Some(&json!([[1], "create"])), |i| i.in_set(&set)),
            Err(Raised)
        );
        assert_eq!(
            any(Some(&json!({"create": 1})), |i| i.in_set(&set)),
            Ok(true)
        );
        assert_eq!(any(Some(&json!("abc")), |i| i.in_set(&set)), Ok(true));
        assert_eq!(any(Some(&json!(true)), |i| i.in_set(&set)), Err(Raised));
        assert_eq!(any(None, |i| i.in_set(&set)), Ok(false));
        assert_eq!(
            any(Some(&json!(["x"])), |i| i.object().map(|_| true)),
            Err(Raised)
        );
        assert!(!truthy(&json!(0)) && !truthy(&json!({})) && truthy(&json!(" ")));
    }
}
