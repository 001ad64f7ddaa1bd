//! An audit event as Sigma rules read it, parsed no further than they read.
//!
//! A rule reads a few fields (`verb`, `objectRef.resource`, ...): the event
//! is split into its top-level members with their values left as text, and
//! a member is parsed the first time a rule reads a field under it. The
//! request and response bodies, most of a large event, are parsed only for
//! a rule that reads them. Values nested deeper than
//! [`MAX_JSON_DEPTH`](crate::bounded::MAX_JSON_DEPTH) levels (the sender
//! chooses a body's nesting) read as `null`, and the rest of the member is
//! read: one deep field cannot hide a body, or a request's verb, user or
//! resource, from a rule.
//!
//! Fields are looked up by `rsigma`'s own reader on the member's value, so
//! dotted paths, arrays and escapes mean exactly what they mean to it. The
//! few string fields the event's typed parse has already read (`verb`,
//! `objectRef.resource`, `user.username`, ...) are answered from it when
//! that cannot differ: the value was a string written without escapes, and
//! the message has no escape that could spell a member named by the whole
//! dotted path.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use rsigma_eval::{Event, EventValue, JsonEvent};

pub use super::known::Known;
use super::known::{dotted, named, unescaped, BODIES, ROOTS, STRINGS};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The event's members, each parsed on first read.
#[derive(Debug, Default)]
pub struct SigmaEvent<'a> {
    text: &'a str,
    members: OnceCell<Vec<Member<'a>>>,
    /// Every member, for what needs the whole event (keyword searches).
    whole: OnceCell<JsonEvent<'static>>,
    /// What the typed parse read.
    known: Known<'a>,
    /// Whether the message is free of escapes that could hide a name or
    /// change a value (see [`unescaped`]).
    unescaped: OnceCell<bool>,
    /// Whether it may hold a member named by a dotted path under each of
    /// [`ROOTS`] (see [`dotted`]).
    dotted: [OnceCell<bool>; ROOTS.len()],
    /// Whether it may hold a member named as each of [`STRINGS`] ends
    /// (see [`named`]).
    named: [OnceCell<bool>; STRINGS.len()],
    /// The bodies the typed parse found ([`BODIES`], in that order), each
    /// parsed on first read.
    bodies: [OnceCell<Option<JsonEvent<'static>>>; 3],
}

/// One top-level member.
#[derive(Debug)]
struct Member<'a> {
    key: Cow<'a, str>,
    raw: &'a RawValue,
    /// `{key: value}`, so `rsigma` reads a path from the top as it would
    /// in the whole event; `None` when the value cannot be parsed.
    parsed: OnceCell<Option<JsonEvent<'static>>>,
}

impl<'a> Member<'a> {
    fn event(&self) -> Option<&JsonEvent<'static>> {
        self.parsed
            .get_or_init(|| wrapped(&self.key, self.raw))
            .as_ref()
    }
}

/// `{key: value}`, so `rsigma` reads a path from the top as it would in
/// the whole event; `None` when the value cannot be parsed.
fn wrapped(key: &str, raw: &RawValue) -> Option<JsonEvent<'static>> {
    let v = crate::bounded::parse_json(raw.get())?;
    let mut one = Map::new();
    one.insert(key.to_owned(), v);
    Some(JsonEvent::owned(Value::Object(one)))
}

/// An object's members, values left as text, in order.
struct Members<'a>(Vec<Member<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((key, raw)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push(Member {
                        key,
                        raw,
                        parsed: OnceCell::new(),
                    });
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> SigmaEvent<'a> {
    /// The event whose message is `text` (a JSON object).
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            ..Self::default()
        }
    }

    /// The event whose message is `text`, with the string fields its typed
    /// parse read.
    pub fn with_known(text: &'a str, known: Known<'a>) -> Self {
        Self {
            text,
            known,
            ..Self::default()
        }
    }

    fn members(&self) -> &[Member<'a>] {
        self.members.get_or_init(|| {
            serde_json::from_str::<Members<'_>>(self.text)
                .map(|m| m.0)
                .unwrap_or_default()
        })
    }

    /// The member named `key` (the last one, as a JSON object keeps it).
    fn member(&self, key: &str) -> Option<&Member<'a>> {
        self.members().iter().rev().find(|m| m.key == key)
    }

    /// `path` as the typed parse read it: `Some(value)` when that is what
    /// `rsigma` reads in the whole event, `None` when the path must be
    /// read from its member.
    #[allow(clippy::option_option)]
    fn known_field(&self, path: &str, root: Option<&str>) -> Option<Option<EventValue<'_>>> {
        let string = STRINGS.iter().position(|p| *p == path);
        let value = self.known.value(path, string);
        // Under a body: the root itself or a dotted path (a name with a
        // bracket right after the root could be a member's own).
        let body = root
            .filter(|r| path.len() == r.len() || path[r.len()..].starts_with('.'))
            .and_then(|r| BODIES.iter().position(|b| *b == r))
            .filter(|_| self.known.bodies.is_some());
        if value.is_none() && body.is_none() && string.is_none() {
            return None;
        }
        if !self.answers(path, root) {
            return None;
        }
        if value.is_some() {
            return Some(value);
        }
        if let Some(at) = string {
            // A string field the typed parse did not read as written
            // (absent, `null` or escaped) is absent when no member of its
            // name is anywhere.
            let named = *self.named[at].get_or_init(|| named(self.text, at));
            return (!named).then_some(None);
        }
        let at = body?;
        match self.known.bodies?[at] {
            Some(raw) => {
                let event = self.bodies[at].get_or_init(|| wrapped(BODIES[at], raw));
                Some(event.as_ref().and_then(|e| e.get_field(path)))
            }
            // Absent or `null`: nothing under it. The member itself may be
            // `null` rather than absent: read it.
            None if root != Some(path) => Some(None),
            None => None,
        }
    }

    /// Whether what the typed parse read under `path` is what `rsigma`
    /// reads: no escape that could change a name or value, and under a
    /// member no other member named by the dotted path.
    fn answers(&self, path: &str, root: Option<&str>) -> bool {
        if !*self.unescaped.get_or_init(|| unescaped(self.text)) {
            return false;
        }
        match root {
            // A path `rsigma` reads in a way of its own.
            None => false,
            Some(root) if root == path => true,
            Some(root) => match ROOTS.iter().position(|r| *r == root) {
                Some(at) => !*self.dotted[at].get_or_init(|| dotted(self.text, at)),
                // Not read by the typed parse.
                None => false,
            },
        }
    }

    fn whole(&self) -> &JsonEvent<'static> {
        self.whole.get_or_init(|| {
            let mut all = Map::new();
            // Parsed as any member is (see [`wrapped`]): a deep value reads
            // as `null` and the rest of the member is kept.
            for m in self.members() {
                if let Some(v) = crate::bounded::parse_json(m.raw.get()) {
                    all.insert(m.key.to_string(), v);
                }
            }
            JsonEvent::owned(Value::Object(all))
        })
    }
}

/// The top-level member a path starts in; `None` for a path `rsigma`
/// reads in a way of its own (escapes, a leading dot or bracket).
fn root(path: &str) -> Option<&str> {
    if path.contains('\\') {
        return None;
    }
    let end = path.find(['.', '[']).unwrap_or(path.len());
    (end > 0).then(|| &path[..end])
}

impl Event for SigmaEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        let root = root(path);
        if let Some(answer) = self.known_field(path, root) {
            return answer;
        }
        // A member named by the whole dotted path (names may hold dots).
        if root != Some(path) {
            if let Some(one) = self.member(path).and_then(Member::event) {
                return one.get_field(path);
            }
        }
        match root {
            Some(root) => self.member(root)?.event()?.get_field(path),
            None => self.whole().get_field(path),
        }
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.whole().any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.whole().all_string_values()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.whole().visit_string_values(visit);
    }

    fn to_json(&self) -> Value {
        self.whole().to_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(text: &str, path: &str) -> Option<String> {
        SigmaEvent::new(text)
            .get_field(path)
            .map(|v| format!("{v:?}"))
    }

    #[test]
    fn reads_fields_as_the_whole_event_would() {
        let text = r#"{"verb":"get","objectRef":{"resource":"pods","a.b":1},"requestObject":{"spec":{"containers":[{"securityContext":{"privileged":false}},{"securityContext":{"privileged":true}}]}},"x.y":"dotted"}"#;
        let whole: Value = serde_json::from_str(text).expect("json");
        for path in [
            "verb",
            "objectRef.resource",
            "objectRef.a.b",
            "requestObject.spec.containers.securityContext.privileged",
            "requestObject.spec.containers[1].securityContext.privileged",
            "x.y",
            "missing",
            "objectRef.missing",
            ".verb",
        ] {
            assert_eq!(
                field(text, path),
                JsonEvent::borrow(&whole)
                    .get_field(path)
                    .map(|v| format!("{v:?}")),
                "{path}"
            );
        }
    }

    #[test]
    fn a_deeply_nested_value_reads_as_null_and_hides_nothing_else() {
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let text = format!(
            r#"{{"verb":"create","requestObject":{{"x":{deep},"hostNetwork":true}},"verb2":"x"}}"#
        );
        assert_eq!(
            field(&text, "requestObject.hostNetwork").as_deref(),
            Some("Bool(true)")
        );
        assert!(field(&text, "requestObject.x").is_some());
        assert_eq!(field(&text, "verb").as_deref(), Some(r#"Str("create")"#));
        assert_eq!(field(&text, "verb2").as_deref(), Some(r#"Str("x")"#));
    }

    #[test]
    fn fields_the_typed_parse_read_are_those_rsigma_reads() {
        let plain_event = r#"{"kind":"Event","verb":"list","sourceIPs":["52.94.76.10","10.0.0.1"],"requestURI":"/api/v1/secrets?limit=500\u0026x=1","userAgent":"kubectl/v1.30","user":{"username":"alice","groups":["g"]},"objectRef":{"resource":"secrets","subresource":"token","namespace":"ns","name":"n.1","apiGroup":"apps"}}"#;
        let texts = [
            plain_event,
            // A member named by the whole dotted path is what rsigma reads.
            r#"{"objectRef.resource":"flat","objectRef":{"resource":"nested"},"user.username":"flat","user":{"username":"nested"}}"#,
            r#"{"objectRef\u002eresource":"flat","objectRef":{"resource":"nested"}}"#,
            r#"{"\u0075ser.username":"flat","user":{"username":"nested"}}"#,
            // Escaped names and values, null and missing fields.
            r#"{"v\u0065rb":"g\u0065t","objectRef":{"resource":null,"name":"a\"b"},"user":{}}"#,
            r#"{"verb":null,"objectRef":null,"user":null,"requestURI":"/x"}"#,
            r#"{"userAgent":"\u003cscript\u003e","objectRef":{"namespace":""}}"#,
            // Addresses: escaped, not strings, not a list, empty, null.
            r#"{"sourceIPs":["10.0.0.1","2001:db8::1"]}"#,
            r#"{"sourceIPs":["10.0.0.1","\u0031.2.3.4"]}"#,
            r#"{"sourceIPs":["1.2.3.4","a\"b"]}"#,
            r#"{"sourceIPs":["1.2.3.4",5,null,{"a":1}]}"#,
            r#"{"sourceIPs":"1.2.3.4"}"#,
            r#"{"sourceIPs":[]}"#,
            r#"{"sourceIPs":null}"#,
            r#"{"sourceIPs.x":"flat","sourceIPs":["1.2.3.4"]}"#,
            // Status codes: an integer, and what the typed parse does not
            // read as one.
            r#"{"responseStatus":{"code":403,"reason":"Forbidden"}}"#,
            r#"{"responseStatus":{"code":403.0}}"#,
            r#"{"responseStatus":{"code":4.03e2}}"#,
            r#"{"responseStatus":{"code":"403"}}"#,
            r#"{"responseStatus":{"code":99999999999999999999}}"#,
            r#"{"responseStatus":{"code":-0}}"#,
            r#"{"responseStatus":{"code":null}}"#,
            r#"{"responseStatus":{}}"#,
            r#"{"responseStatus":null}"#,
            r#"{"responseStatus.code":401,"responseStatus":{"code":403}}"#,
            r#"{"responseStatus":{"code":403},"responseStatus.code":401}"#,
            r#"{"responseStatus\u002ecode":401,"responseStatus":{"code":403}}"#,
            // Bodies and annotations: present, null, missing, not objects,
            // shadowed by a dotted or bracketed name, escaped.
            r#"{"requestObject":{"spec":{"volumes":[{"hostPath":{"path":"/"}},{"emptyDir":{}}]}},"responseObject":{"kind":"Pod"},"annotations":{"authorization.k8s.io/decision":"allow"}}"#,
            r#"{"requestObject":null,"responseObject":null,"verb":"get"}"#,
            r#"{"verb":"get"}"#,
            r#"{"requestObject":[{"spec":1},{"spec":2}],"responseObject":"text","annotations":7}"#,
            r#"{"requestObject.spec":"flat","requestObject":{"spec":"nested"}}"#,
            r#"{"requestObject[0]":"flat","requestObject":["nested"]}"#,
            r#"{"annotations.x":"flat","annotations":{"x":"nested"}}"#,
            r#"{"request\u004fbject":{"spec":"escaped name"}}"#,
            r#"{"requestObject":{"spec":"\u0041"}}"#,
            // String fields absent, null, or named only in a value or a
            // body.
            r#"{"kind":"Event","objectRef":{"resource":"pods"},"user":{"groups":["g"]}}"#,
            r#"{"objectRef":{"subresource":null},"user":{"username":null},"verb":null}"#,
            r#"{"objectRef":{"resource":"subresource"},"userAgent":"username verb"}"#,
            r#"{"objectRef":{"resource":"pods"},"requestObject":{"subresource":"exec","username":"u"}}"#,
        ];
        // Every string field the typed parse reads, and the rest it answers.
        let paths: Vec<&str> = STRINGS
            .into_iter()
            .chain([
                "sourceIPs",
                "responseStatus.code",
                "responseStatus",
                "requestObject",
                "requestObject.spec",
                "requestObject.spec.volumes.hostPath.path",
                "requestObject[0]",
                "requestObject[1].spec",
                "responseObject.kind",
                "annotations",
                "annotations.x",
                "annotations.authorization.k8s.io/decision",
            ])
            .collect();
        for text in texts {
            let ev = crate::audit::AuditEvent::parse(text).expect("parses");
            let whole: Value = serde_json::from_str(text).expect("json");
            for &path in &paths {
                assert_eq!(
                    ev.sigma().get_field(path).map(|v| format!("{v:?}")),
                    JsonEvent::borrow(&whole)
                        .get_field(path)
                        .map(|v| format!("{v:?}")),
                    "{path} in {text}"
                );
            }
        }
        // The plain event is answered from the typed parse, not re-read.
        let ev = crate::audit::AuditEvent::parse(plain_event).expect("parses");
        assert!(unescaped(plain_event));
        assert!((0..ROOTS.len()).all(|at| !dotted(plain_event, at)));
        assert_eq!(
            ev.sigma().known.value("objectRef.resource", Some(4)),
            Some(EventValue::Str("secrets".into()))
        );
        assert!(ev.sigma().members.get().is_none());
        assert!(ev.sigma().get_field("verb").is_some());
        assert!(ev.sigma().get_field("sourceIPs").is_some());
        assert!(ev.sigma().members.get().is_none(), "no member re-read");
        // So is a string field the message lacks.
        let without = r#"{"kind":"Event","verb":"get","objectRef":{"resource":"pods"}}"#;
        let ev = crate::audit::AuditEvent::parse(without).expect("parses");
        assert!(ev.sigma().get_field("objectRef.subresource").is_none());
        assert!(ev.sigma().get_field("user.username").is_none());
        assert!(ev.sigma().members.get().is_none(), "no member re-read");
        // So are the status code and the bodies.
        let with_bodies = r#"{"verb":"create","responseStatus":{"code":403},"requestObject":{"spec":{"hostNetwork":true}},"responseObject":{"kind":"Pod"}}"#;
        let ev = crate::audit::AuditEvent::parse(with_bodies).expect("parses");
        for path in [
            "responseStatus.code",
            "requestObject.spec.hostNetwork",
            "responseObject.kind",
            "annotations.x",
        ] {
            assert!(ev.sigma().get_field(path).is_some() || path == "annotations.x");
        }
        assert!(ev.sigma().members.get().is_none(), "no member re-read");
        assert!(dotted(texts[1], 0) && dotted(texts[1], 1));
        assert!(!unescaped(texts[2]) && !unescaped(texts[3]));
    }

    #[test]
    fn an_event_repeating_a_typed_member_or_not_an_object_is_refused_not_answered() {
        // Sigma reads a repeated member's last value; the typed parse
        // refuses the event (skipped and counted), so it never answers
        // with the first.
        for text in [
            r#"{"verb":"get","verb":"delete"}"#,
            r#"{"sourceIPs":["1.1.1.1"],"sourceIPs":["2.2.2.2"]}"#,
            r#"{"user":{"username":"a"},"user":{"username":"b"}}"#,
            r#"{"objectRef":{"resource":"pods","resource":"secrets"}}"#,
            r#"{"responseStatus":{"code":401},"responseStatus":{"code":403}}"#,
            r#"{"responseStatus":{"code":401,"code":403}}"#,
            r#"{"requestObject":{"a":1},"requestObject":{"a":2}}"#,
            r#"{"annotations":{},"annotations":{"a":"b"}}"#,
            // An array would fill the fields in order.
            r#"["Event","audit.k8s.io/v1",null,null,null,"create",null,null,null,null,null,{"code":403},null,null,null,{"spec":{"hostNetwork":true}},null]"#,
            r#" ["Event"]"#,
        ] {
            assert!(crate::audit::AuditEvent::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_keyword_search_reads_every_member_whatever_its_keys_or_nesting() {
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        for text in [
            // serde_json's marker for raw JSON text, written by a sender
            // as a key of their own, with text that is not JSON.
            r#"{"verb":"create","requestObject":{"a":{"$serde_json::private::RawValue":"not json"},"b":"needle"}}"#.to_owned(),
            format!(r#"{{"verb":"create","requestObject":{{"a":{deep},"b":"needle"}}}}"#),
        ] {
            let ev = SigmaEvent::new(&text);
            assert!(ev.any_string_value(&|s| s == "needle"), "{text}");
            assert!(ev.all_string_values().iter().any(|s| s == "needle"), "{text}");
        }
    }

    #[test]
    fn a_repeated_member_reads_as_its_last() {
        assert_eq!(
            field(r#"{"verb":"get","verb":"delete"}"#, "verb").as_deref(),
            Some(r#"Str("delete")"#)
        );
    }
}
