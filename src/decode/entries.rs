//! The serde reading of a log entry (the general path, for envelopes the
//! direct reader in `envelope.rs` leaves to serde_json): a field of the
//! wrong type costs only its entry, never the batch.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::LogEvent;
use crate::time::Millis;

/// Latest timestamp accepted: 9999-12-31T23:59:59.999Z.
pub(super) const MAX_TIMESTAMP_MS: Millis = 253_402_300_799_999;

/// A log-entry field as it came: a string, an integer, or anything else
/// (skipped over without building it). Lets a field of the wrong type cost
/// only its entry instead of the whole batch.
enum Loose<'a> {
    Str(Cow<'a, str>),
    Int(i128),
    Other,
}

/// Accepts every JSON value: the ones `$on_*` does not take become
/// `$other`, skipping nested content without building it.
macro_rules! accept_any_json {
    ($other:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok($other)
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Loose::Int(i128::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Loose::Int(i128::from(v)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Loose::Other)
            }
            accept_any_json!(Loose::Other);
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LogEvent<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LogEvent<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a log event")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut ev = LogEvent::default();
                while let Some(key) = a.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "id" => {
                            if let Loose::Str(id) = a.next_value()? {
                                ev.id = Some(id);
                            }
                        }
                        "timestamp" => {
                            if let Loose::Int(ms) = a.next_value()? {
                                ev.timestamp = Millis::try_from(ms)
                                    .ok()
                                    .filter(|ms| (0..=MAX_TIMESTAMP_MS).contains(ms));
                            }
                        }
                        "message" => {
                            ev.message = Some(a.next_value::<&'de RawValue>()?.get());
                        }
                        _ => {
                            a.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(ev)
            }
            // Not an object: an entry with nothing in it, skipped as bad.
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(LogEvent::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LogEvent::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LogEvent::default())
            }
            accept_any_json!(LogEvent::default());
        }
        d.deserialize_any(V)
    }
}

/// Least bytes one log entry of CloudWatch's takes in a batch: its 56-digit
/// id, a 13-digit timestamp and an empty message, with their names, is
/// about 105. A batch may hold one entry per this many bytes; a denser one
/// is not CloudWatch's, and reading it would cost far more memory than its
/// bytes (an entry `{}` is 3 bytes, its place in memory 56).
pub(super) const MIN_ENTRY_BYTES: usize = 64;

/// Most entries a batch of `len` bytes may hold (see [`MIN_ENTRY_BYTES`]).
pub(super) fn most_entries(len: usize) -> usize {
    len / MIN_ENTRY_BYTES + 16
}

/// How many entries the envelope's `logEvents` holds, counted without
/// building them; `None` when serde cannot read it so (its full reading
/// then says why).
pub(super) fn count(json: &[u8]) -> Option<usize> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "logEvents", default)]
        log_events: Counted,
    }
    #[derive(Default)]
    struct Counted(usize);
    impl<'de> Deserialize<'de> for Counted {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Counted;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a list of log entries")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut a: A,
                ) -> Result<Self::Value, A::Error> {
                    let mut n = 0;
                    while a.next_element::<serde::de::IgnoredAny>()?.is_some() {
                        n += 1;
                    }
                    Ok(Counted(n))
                }
            }
            d.deserialize_seq(V)
        }
    }
    serde_json::from_slice::<Envelope>(json)
        .ok()
        .map(|e| e.log_events.0)
}

#[cfg(test)]
mod tests {
    use super::super::{Batch, DecodeError};

    #[test]
    fn a_batch_denser_than_cloudwatch_writes_is_refused_before_its_entries_are_built() {
        let batch = |entries: &[&str], odd: bool| {
            // `odd`: a repeated member the direct reader leaves to serde.
            let extra = if odd { r#""owner":"1","# } else { "" };
            format!(
                r#"{{"messageType":"DATA_MESSAGE",{extra}"owner":"123456789012","logGroup":"/aws/eks/p/cluster","logStream":"s","logEvents":[{}]}}"#,
                entries.join(",")
            )
        };
        // The smallest entries CloudWatch writes, as densely as it can.
        let id = "3".repeat(56);
        let smallest = format!(r#"{{"id":"{id}","timestamp":1715644800000,"message":""}}"#);
        let real = vec![smallest.as_str(); 20_000];
        let text = batch(&real, false);
        assert_eq!(
            Batch::parse(text.as_bytes())
                .expect("read")
                .log_events
                .len(),
            20_000
        );
        // Empty entries, in both readings.
        let tiny = vec!["{}"; 20_000];
        for odd in [false, true] {
            let text = batch(&tiny, odd);
            match Batch::parse(text.as_bytes()) {
                Err(DecodeError::TooManyEntries { bytes, most }) => {
                    assert_eq!(bytes, text.len());
                    assert!(most < 20_000, "{most}");
                }
                other => panic!("expected TooManyEntries, got {other:?}"),
            }
        }
        // A few are fine: the allowance has a floor.
        let text = batch(&tiny[..10], false);
        assert_eq!(
            Batch::parse(text.as_bytes())
                .expect("read")
                .log_events
                .len(),
            10
        );
        assert!(
            Batch::parse(batch(&tiny[..10], true).as_bytes()).is_err(),
            "a repeated member"
        );
    }
}
