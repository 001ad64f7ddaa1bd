//! What the group's rules share: the defaults Panther's titles put in
//! place of missing fields, Python's truthiness, the checks of a pod spec
//! (privileges, host namespaces, capabilities, host paths), written over a
//! pod spec `&Value` so a workload's `spec.template.spec` can be passed
//! too, and the URL decoding of Python's `urllib.parse` that the exec rules
//! apply to `requestURI`.
//!
//! Where Panther's functions would raise on a value of the wrong JSON type
//! (a container or volume that is not an object, a `securityContext` that
//! is `null`), these return `None`, which the rules treat as no match. The
//! API server rejects such pods, so no accepted request carries them.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::audit::{at, opt, AuditEvent};
use crate::rules::catalog::Hit;

/// Values joined into an extra context field, at most.
pub const MAX_JOINED: usize = 10;

/// `event.udm("username") or "<UNKNOWN_USER>"`.
pub fn username_or_unknown<'e>(ev: &'e AuditEvent<'_>) -> &'e str {
    ev.username()
        .filter(|u| !u.is_empty())
        .unwrap_or("<UNKNOWN_USER>")
}

/// `event.udm("namespace") or "<UNKNOWN_NAMESPACE>"`.
pub fn namespace_or_unknown<'e>(ev: &'e AuditEvent<'_>) -> &'e str {
    ev.namespace()
        .filter(|n| !n.is_empty())
        .unwrap_or("<UNKNOWN_NAMESPACE>")
}

/// `event.udm("name") or default`.
pub fn name_or<'e>(ev: &'e AuditEvent<'_>, default: &'e str) -> &'e str {
    ev.name().filter(|n| !n.is_empty()).unwrap_or(default)
}

/// The guards most of Panther's pod rules open with: a pod is created
/// (`create` on `pods`), the API server accepted it, and it is not a
/// platform component's pod in a system namespace.
pub fn user_pod_creation(ev: &AuditEvent<'_>) -> bool {
    use crate::rules::catalog::k8s::{is_failed_request, is_system_namespace, is_system_principal};
    verb_in(ev, &["create"])
        && ev.resource() == Some("pods")
        && !is_failed_request(ev.status_code())
        && !(is_system_principal(ev.username()) && is_system_namespace(ev.namespace()))
}

/// `event.udm("verb")` is one of `verbs`.
pub fn verb_in(ev: &AuditEvent<'_>, verbs: &[&str]) -> bool {
    opt(&ev.verb).is_some_and(|v| verbs.contains(&v))
}

/// The hit with an extra context field, when the value is not empty.
pub fn with_some(hit: Hit, field: &'static str, value: Option<&str>) -> Hit {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => hit.with(field, v),
        None => hit,
    }
}

/// Python's truthiness of a JSON value: `null`, `false`, `0`, `""`, `[]`
/// and `{}` are false.
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

/// `spec.<key> or []` as Python iterates it: the list, an empty one for a
/// missing or false value, `None` for any other value (Python would walk
/// a string's characters or a mapping's keys as entries, or raise).
pub fn spec_list<'v>(spec: Option<&'v Value>, key: &str) -> Option<&'v [Value]> {
    match at(spec, &[key]) {
        Some(Value::Array(list)) => Some(list),
        Some(v) if truthy(v) => None,
        _ => Some(&[]),
    }
}

/// The hit with the first string images of `spec.containers`, joined,
/// as an `images` context field.
pub fn with_images(hit: Hit, spec: Option<&Value>) -> Hit {
    let images = spec_list(spec, "containers")
        .unwrap_or(&[])
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .take(MAX_JOINED)
        .collect::<Vec<_>>()
        .join(", ");
    with_some(hit, "images", Some(&images))
}

/// `container.get("securityContext", {})`: `Some(None)` when absent,
/// `None` when the container or the context is not an object.
fn security_context(container: &Value) -> Option<Option<&Map<String, Value>>> {
    match container.as_object()?.get("securityContext") {
        None => Some(None),
        Some(Value::Object(sc)) => Some(Some(sc)),
        Some(_) => None,
    }
}

/// Python's `value == 0`: an integer or float zero, or `False`.
fn equals_zero(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Bool(b)) => !b,
        _ => false,
    }
}

/// Panther's `is_privileged_container` over `spec.containers`: some
/// container is privileged, may run as root (`runAsNonRoot: false`) or
/// runs as user 0. Containers are looked at in order, as Python does.
pub fn is_privileged(spec: Option<&Value>) -> Option<bool> {
    for container in spec_list(spec, "containers")? {
        let Some(sc) = security_context(container)? else {
            continue;
        };
        if sc.get("privileged") == Some(&Value::Bool(true))
            || sc.get("runAsNonRoot") == Some(&Value::Bool(false))
            || equals_zero(sc.get("runAsUser"))
        {
            return Some(true);
        }
    }
    Some(false)
}

/// `spec.<flag> is True`, for `hostIPC`, `hostNetwork` and `hostPID`.
pub fn host_namespace(spec: Option<&Value>, flag: &str) -> bool {
    at(spec, &[flag]) == Some(&Value::Bool(true))
}

/// The capabilities Panther calls dangerous, sorted as its titles list
/// them.
pub const DANGEROUS_CAPABILITIES: [&str; 7] = [
    "BPF",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "NET_ADMIN",
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_PTRACE",
];

/// Panther's `has_dangerous_capabilities` over `spec.containers`, as the
/// sorted set its titles print: the dangerous names in any container's
/// `securityContext.capabilities.add`. `deep_get` forgives containers of
/// any type; a list of added capabilities holding an object or a list
/// (unhashable in Python's `set`), or a number or `true` in place of the
/// list, gives `None`.
pub fn dangerous_capabilities(spec: Option<&Value>) -> Option<Vec<&'static str>> {
    let mut found = [false; DANGEROUS_CAPABILITIES.len()];
    let mut mark = |name: &str| {
        if let Some(i) = DANGEROUS_CAPABILITIES.iter().position(|c| *c == name) {
            found[i] = true;
        }
    };
    for container in spec_list(spec, "containers")? {
        let added = at(Some(container), &["securityContext", "capabilities", "add"]);
        match added {
            Some(v) if !truthy(v) => {}
            None => {}
            Some(Value::Array(names)) => {
                for name in names {
                    match name {
                        Value::String(s) => mark(s),
                        Value::Array(_) | Value::Object(_) => return None,
                        _ => {}
                    }
                }
            }
            // `set(mapping)` is the set of its keys.
            Some(Value::Object(names)) => names.keys().for_each(|k| mark(k)),
            // `set(string)` is a set of characters: never a capability.
            Some(Value::String(_)) => {}
            Some(_) => return None,
        }
    }
    Some(
        DANGEROUS_CAPABILITIES
            .iter()
            .zip(found)
            .filter_map(|(c, f)| f.then_some(*c))
            .collect(),
    )
}

/// A pod spec's `hostPath` volumes, as Panther's `has_hostpath_volume` and
/// `get_hostpath_paths` see them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HostPaths<'v> {
    /// Some volume has a `hostPath` member.
    pub mounted: bool,
    /// The non-empty `hostPath.path` values, in order.
    pub paths: Vec<&'v str>,
}

/// The `hostPath` volumes of `spec.volumes`; `None` when a volume or its
/// `hostPath` is not an object or a path is neither empty nor a string
/// (Panther's title or severity would raise).
pub fn host_paths(spec: Option<&Value>) -> Option<HostPaths<'_>> {
    let mut out = HostPaths::default();
    for volume in spec_list(spec, "volumes")? {
        let Some(host_path) = volume.as_object()?.get("hostPath") else {
            continue;
        };
        out.mounted = true;
        match host_path.as_object()?.get("path") {
            Some(Value::String(p)) if !p.is_empty() => out.paths.push(p),
            Some(p) if truthy(p) => return None,
            _ => {}
        }
    }
    Some(out)
}

/// Python's `urllib.parse.unquote`: `%XX` escapes decoded as UTF-8,
/// invalid sequences replaced with U+FFFD, anything else kept (`+` too).
pub fn unquote(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                // Two hex digits make one byte (at most 0xff).
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The query of a URL as Python's `urlparse` splits it: tabs and line
/// breaks removed, then what follows the first `?` up to a `#`. `None`
/// where `urlparse` raises (a host part with a bracket that is not a
/// valid IPv6 literal; any bracket is taken as one).
fn url_query(uri: &str) -> Option<String> {
    let url: String = uri
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let url = url.trim_start_matches(|c: char| c <= ' ');
    let scheme_end = url.find(':').filter(|&i| {
        i > 0
            && url.as_bytes()[0].is_ascii_alphabetic()
            && url[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    });
    let rest = scheme_end.map_or(url, |i| &url[i + 1..]);
    let rest = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            if after[..end].contains(['[', ']']) {
                return None;
            }
            &after[end..]
        }
        None => rest,
    };
    let before_fragment = rest.split('#').next().unwrap_or_default();
    Some(
        before_fragment
            .split_once('?')
            .map_or("", |(_, q)| q)
            .to_owned(),
    )
}

/// `parse_qs(urlparse(uri).query).get(name, [])`: the non-empty values
/// of `name`, `+` read as a space and `%XX` decoded; empty when `urlparse`
/// raises (Panther catches it).
pub fn query_values(uri: &str, name: &str) -> Vec<String> {
    let Some(query) = url_query(uri) else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(_, v)| !v.is_empty())
        .filter(|(k, _)| unquote(&k.replace('+', " ")) == name)
        .map(|(_, v)| unquote(&v.replace('+', " ")).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn privileged_follows_python_equality_and_order() {
        let spec = |c: Value| json!({ "containers": c });
        let yes = [
            json!([{"securityContext": {"privileged": true}}]),
            json!([{"securityContext": {"runAsNonRoot": false}}]),
            json!([{"securityContext": {"runAsUser": 0}}]),
            json!([{"securityContext": {"runAsUser": 0.0}}]),
            json!([{"securityContext": {"runAsUser": false}}]),
            json!([{}, {"securityContext": {"privileged": true}}, "junk"]),
        ];
        for c in yes {
            assert_eq!(is_privileged(Some(&spec(c.clone()))), Some(true), "{c}");
        }
        let no = [
            json!([{"securityContext": {"privileged": "true"}}]),
            json!([{"securityContext": {"runAsUser": 1000}}]),
            json!([{"securityContext": {"runAsNonRoot": null}}]),
            json!([]),
            json!(null),
        ];
        for c in no {
            assert_eq!(is_privileged(Some(&spec(c.clone()))), Some(false), "{c}");
        }
        for c in [
            json!(["junk", {"securityContext": {"privileged": true}}]),
            json!([{"securityContext": null}]),
            json!({"a": 1}),
            json!("x"),
        ] {
            assert_eq!(is_privileged(Some(&spec(c.clone()))), None, "{c}");
        }
        assert_eq!(is_privileged(None), Some(false));
    }

    #[test]
    fn capabilities_are_sorted_and_deduplicated() {
        let spec = json!({"containers": [
            {"securityContext": {"capabilities": {"add": ["SYS_PTRACE", "NET_RAW", "BPF"]}}},
            {"securityContext": {"capabilities": {"add": ["BPF", 7, null]}}},
            "not a container",
            {"securityContext": {"capabilities": {"add": "SYS_ADMIN"}}},
        ]});
        assert_eq!(
            dangerous_capabilities(Some(&spec)),
            Some(vec!["BPF", "SYS_PTRACE"])
        );
        let spec = json!({"containers": [
            {"securityContext": {"capabilities": {"add": [["SYS_ADMIN"]]}}}
        ]});
        assert_eq!(dangerous_capabilities(Some(&spec)), None);
    }

    #[test]
    fn host_paths_in_order_and_odd_types_refused() {
        let spec = json!({"volumes": [
            {"name": "a", "hostPath": {"path": "/var/lib/kubelet"}},
            {"name": "b", "emptyDir": {}},
            {"name": "c", "hostPath": {"path": ""}},
            {"name": "d", "hostPath": {"path": "/data"}},
        ]});
        let got = host_paths(Some(&spec)).expect("plain spec");
        assert!(got.mounted);
        assert_eq!(got.paths, vec!["/var/lib/kubelet", "/data"]);
        for bad in [
            json!({"volumes": ["hostPath"]}),
            json!({"volumes": [{"hostPath": null}]}),
            json!({"volumes": [{"hostPath": {"path": 5}}]}),
        ] {
            assert_eq!(host_paths(Some(&bad)), None, "{bad}");
        }
    }

    #[test]
    fn url_decoding_follows_python() {
        assert_eq!(unquote("%2Fvar%2frun"), "/var/run");
        assert_eq!(unquote("100%"), "100%");
        assert_eq!(unquote("%zz%4"), "%zz%4");
        assert_eq!(unquote("a+b"), "a+b");
        assert_eq!(unquote("%C3%A9"), "é");
        assert_eq!(unquote("%FF"), "\u{fffd}");
        let uri = "/api/v1/namespaces/p/pods/w/exec?command=tar&command=cf&command=-\
                   &command=%2Fa+b&command=&stdout=true#command=x";
        assert_eq!(query_values(uri, "command"), vec!["tar", "cf", "-", "/a b"]);
        assert_eq!(query_values("/x?comm%61nd=ls", "command"), vec!["ls"]);
        assert_eq!(query_values("/x?command=t\nar", "command"), vec!["tar"]);
        assert!(query_values("//[::1?command=tar", "command").is_empty());
        assert!(query_values("/x#?command=tar", "command").is_empty());
    }
}
