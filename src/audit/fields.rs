//! How the audit event's members are read from JSON where serde's derived
//! reading would be wrong for the rules: `sourceIPs` with its three states,
//! the objects that must be objects, and a status code that counts only as
//! an integer.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::Str;

/// `sourceIPs` as the rules must see it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum SourceIps<'a> {
    /// The field is absent. Panther substitutes `["0.0.0.0"]`.
    #[default]
    Missing,
    /// The field is `null`, or not a list of strings.
    Invalid,
    /// A list of strings (possibly empty).
    List(Vec<Str<'a>>),
}

impl<'a> SourceIps<'a> {
    /// The list, when there is one.
    pub fn list(&self) -> &[Str<'a>] {
        match self {
            SourceIps::List(ips) => ips,
            _ => &[],
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for SourceIps<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = SourceIps<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of IP address strings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(SourceIps::Invalid)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(SourceIps::Invalid)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(16));
                let mut valid = true;
                while let Some(item) = seq.next_element::<MaybeStr<'a>>()? {
                    match item {
                        MaybeStr::Str(s) => out.push(Str(s)),
                        MaybeStr::Other(_) => valid = false,
                    }
                }
                Ok(if valid {
                    SourceIps::List(out)
                } else {
                    SourceIps::Invalid
                })
            }
            // Any other JSON type: not a list; the rule treats it as unusable.
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(SourceIps::Invalid)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(SourceIps::Invalid)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(SourceIps::Invalid)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(SourceIps::Invalid)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(SourceIps::Invalid)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(SourceIps::Invalid)
            }
        }
        deserializer.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A list element that may or may not be a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum MaybeStr<'a> {
    Str(#[serde(borrow)] Cow<'a, str>),
    Other(IgnoredAny),
}

/// Reads a member as `T` only when it is written as an object (`null`
/// reads as absent). serde's derived structs also take an array of their
/// fields in order (`"user":["system:admin"]`), which kube-apiserver never
/// writes and a Sigma rule or Panther reads as no fields: an event with one
/// is refused, as one with a string there is.
pub(super) fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_option(V(std::marker::PhantomData))
}

/// Reads `code` as an integer; any other JSON value counts as "no code".
pub(super) fn lenient_code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an HTTP status code")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(i64::try_from(v).ok())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEvent;

    #[test]
    fn user_object_and_status_are_read_only_as_objects() {
        // serde would read an array as the struct's fields in order
        for text in [
            r#"{"user":["system:admin"]}"#,
            r#"{"impersonatedUser":["system:admin",["system:masters"]]}"#,
            r#"{"objectRef":["secrets"]}"#,
            r#"{"responseStatus":[{},403]}"#,
            r#"{"user":"alice"}"#,
        ] {
            assert!(AuditEvent::parse(text).is_err(), "{text}");
        }
        let ev = AuditEvent::parse(
            r#"{"user":{"username":"alice"},"impersonatedUser":null,"objectRef":{"resource":"pods"},"responseStatus":{"code":403}}"#,
        )
        .expect("parses");
        assert_eq!(
            ev.user.and_then(|u| u.username).map(|s| s.0),
            Some("alice".into())
        );
        assert!(ev.impersonated_user.is_none());
        assert_eq!(
            ev.object_ref.and_then(|o| o.resource).map(|s| s.0),
            Some("pods".into())
        );
        assert_eq!(ev.response_status.and_then(|r| r.code), Some(403));
        let missing = AuditEvent::parse("{}").expect("parses");
        assert!(missing.user.is_none() && missing.object_ref.is_none());
    }

    #[test]
    fn source_ips_distinguishes_missing_null_empty_and_bad_elements() {
        let missing = AuditEvent::parse("{}").expect("parses");
        assert_eq!(missing.source_ips, SourceIps::Missing);
        let null = AuditEvent::parse(r#"{"sourceIPs":null}"#).expect("parses");
        assert_eq!(null.source_ips, SourceIps::Invalid);
        let empty = AuditEvent::parse(r#"{"sourceIPs":[]}"#).expect("parses");
        assert_eq!(empty.source_ips, SourceIps::List(vec![]));
        let mixed = AuditEvent::parse(r#"{"sourceIPs":["1.2.3.4",5]}"#).expect("parses");
        assert_eq!(mixed.source_ips, SourceIps::Invalid);
        let scalar = AuditEvent::parse(r#"{"sourceIPs":"1.2.3.4"}"#).expect("parses");
        assert_eq!(scalar.source_ips, SourceIps::Invalid);
    }

    #[test]
    fn status_code_only_counts_integers() {
        let int = AuditEvent::parse(r#"{"responseStatus":{"code":403}}"#).expect("parses");
        assert_eq!(int.status_code(), Some(403));
        let string = AuditEvent::parse(r#"{"responseStatus":{"code":"403"}}"#).expect("parses");
        assert_eq!(string.status_code(), None);
        let float = AuditEvent::parse(r#"{"responseStatus":{"code":403.5}}"#).expect("parses");
        assert_eq!(float.status_code(), None);
        let none = AuditEvent::parse(r#"{"responseStatus":{"metadata":{}}}"#).expect("parses");
        assert_eq!(none.status_code(), None);
    }
}
