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

use crate::audit::{AuditEvent, SourceIps, Str};
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
    /// String fields the typed parse read.
    known: Known<'a>,
    /// Whether [`Self::known`] may answer (see [`plain`]).
    plain: OnceCell<bool>,
}

/// String fields of the event as its typed parse read them: each the text
/// of a string written without escapes, as the message holds it; `None`
/// when absent, `null`, escaped or not read.
#[derive(Debug, Default, Clone)]
pub struct Known<'a> {
    /// `verb`.
    pub verb: Option<&'a str>,
    /// `requestURI`.
    pub request_uri: Option<&'a str>,
    /// `userAgent`.
    pub user_agent: Option<&'a str>,
    /// `user.username`.
    pub username: Option<&'a str>,
    /// `objectRef.resource`.
    pub resource: Option<&'a str>,
    /// `objectRef.subresource`.
    pub subresource: Option<&'a str>,
    /// `objectRef.namespace`.
    pub namespace: Option<&'a str>,
    /// `objectRef.name`.
    pub name: Option<&'a str>,
    /// `objectRef.apiGroup`.
    pub api_group: Option<&'a str>,
    /// `sourceIPs`, a list of strings every one of which was written
    /// without escapes (the default dedup key of a Sigma detection reads
    /// it).
    pub source_ips: Option<Vec<&'a str>>,
}

impl<'a> Known<'a> {
    /// What the typed parse of `ev` read, where it borrowed the text from
    /// the message: a value with escapes is read again, from its member.
    pub fn of(ev: &AuditEvent<'a>) -> Self {
        fn borrowed<'a>(s: &Str<'a>) -> Option<&'a str> {
            match s {
                Str(Cow::Borrowed(text)) => Some(text),
                Str(Cow::Owned(_)) => None,
            }
        }
        fn plain<'a>(s: &Option<Str<'a>>) -> Option<&'a str> {
            s.as_ref().and_then(borrowed)
        }
        let object = ev.object_ref.as_ref();
        Self {
            verb: plain(&ev.verb),
            request_uri: plain(&ev.request_uri),
            user_agent: plain(&ev.user_agent),
            username: ev.user.as_ref().and_then(|u| plain(&u.username)),
            resource: object.and_then(|o| plain(&o.resource)),
            subresource: object.and_then(|o| plain(&o.subresource)),
            namespace: object.and_then(|o| plain(&o.namespace)),
            name: object.and_then(|o| plain(&o.name)),
            api_group: object.and_then(|o| plain(&o.api_group)),
            source_ips: match &ev.source_ips {
                SourceIps::List(ips) => ips.iter().map(borrowed).collect(),
                _ => None,
            },
        }
    }

    /// The value of `path`, when the typed parse read it.
    fn value(&self, path: &str) -> Option<EventValue<'a>> {
        if path == "sourceIPs" {
            let ips = self.source_ips.as_ref()?;
            return Some(EventValue::Array(
                ips.iter()
                    .map(|ip| EventValue::Str(Cow::Borrowed(*ip)))
                    .collect(),
            ));
        }
        self.get(path)
            .map(|text| EventValue::Str(Cow::Borrowed(text)))
    }

    fn get(&self, path: &str) -> Option<&'a str> {
        match path {
            "verb" => self.verb,
            "requestURI" => self.request_uri,
            "userAgent" => self.user_agent,
            "user.username" => self.username,
            "objectRef.resource" => self.resource,
            "objectRef.subresource" => self.subresource,
            "objectRef.namespace" => self.namespace,
            "objectRef.name" => self.name,
            "objectRef.apiGroup" => self.api_group,
            _ => None,
        }
    }
}

/// True when no member of `text` can be named `user.…` or `objectRef.…`
/// (which `rsigma` would read before the nested field), so a nested string
/// the typed parse read is the one `rsigma` reads: no such name written
/// out, and no `\uXXXX` escape that could spell one (kube-apiserver
/// escapes only `&`, `<`, `>`, U+2028 and U+2029).
fn plain(text: &str) -> bool {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Built once: a searcher costs more to build than a message to search.
    static DOTTED: LazyLock<[Finder<'static>; 2]> =
        LazyLock::new(|| [Finder::new("\"user."), Finder::new("\"objectRef.")]);
    static ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\\u"));
    let bytes = text.as_bytes();
    if DOTTED.iter().any(|d| d.find(bytes).is_some()) {
        return false;
    }
    ESCAPE.find_iter(bytes).all(|at| {
        let hex = bytes.get(at + 2..at + 6).unwrap_or_default();
        ["0026", "003c", "003e", "2028", "2029"]
            .iter()
            .any(|ok| hex.eq_ignore_ascii_case(ok.as_bytes()))
    })
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
        if let Some(value) = self.known.value(path) {
            if *self.plain.get_or_init(|| plain(self.text)) {
                return Some(value);
            }
        }
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
        ];
        let paths = [
            "verb",
            "requestURI",
            "userAgent",
            "user.username",
            "objectRef.resource",
            "objectRef.subresource",
            "objectRef.namespace",
            "objectRef.name",
            "objectRef.apiGroup",
            "sourceIPs",
        ];
        for text in texts {
            let ev = crate::audit::AuditEvent::parse(text).expect("parses");
            let whole: Value = serde_json::from_str(text).expect("json");
            for path in paths {
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
        assert!(plain(plain_event));
        assert_eq!(ev.sigma().known.get("objectRef.resource"), Some("secrets"));
        assert!(ev.sigma().members.get().is_none());
        assert!(ev.sigma().get_field("verb").is_some());
        assert!(ev.sigma().get_field("sourceIPs").is_some());
        assert!(ev.sigma().members.get().is_none(), "no member re-read");
        assert!(!plain(texts[1]) && !plain(texts[2]) && !plain(texts[3]));
    }

    #[test]
    fn an_event_repeating_a_typed_member_is_refused_not_answered() {
        // Sigma reads a repeated member's last value; the typed parse
        // refuses the event (skipped and counted), so it never answers
        // with the first.
        for text in [
            r#"{"verb":"get","verb":"delete"}"#,
            r#"{"sourceIPs":["1.1.1.1"],"sourceIPs":["2.2.2.2"]}"#,
            r#"{"user":{"username":"a"},"user":{"username":"b"}}"#,
            r#"{"objectRef":{"resource":"pods","resource":"secrets"}}"#,
        ] {
            assert!(crate::audit::AuditEvent::parse(text).is_err(), "{text}");
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
