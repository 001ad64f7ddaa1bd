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
//! dotted paths, arrays and escapes mean exactly what they mean to it.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use rsigma_eval::{Event, EventValue, JsonEvent};
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
            .get_or_init(|| {
                let v = crate::bounded::parse_json(self.raw.get())?;
                let mut one = Map::new();
                one.insert(self.key.to_string(), v);
                Some(JsonEvent::owned(Value::Object(one)))
            })
            .as_ref()
    }
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

    fn whole(&self) -> &JsonEvent<'static> {
        self.whole.get_or_init(|| {
            let mut all = Map::new();
            for m in self.members() {
                if let Ok(v) = serde_json::from_str(m.raw.get()) {
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
    fn a_repeated_member_reads_as_its_last() {
        assert_eq!(
            field(r#"{"verb":"get","verb":"delete"}"#, "verb").as_deref(),
            Some(r#"Str("delete")"#)
        );
    }
}
