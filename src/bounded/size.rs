//! Sizes of values as compact JSON, counted without writing the text:
//! what an alert or a record will take in a DynamoDB item, checked
//! against the item's budget before it is stored.
//!
//! [`json_size`] walks the value as serde_json would write it and adds up
//! the bytes: a string is its length plus what its escapes add (the common
//! string, with none, is checked without a branch per byte), a number its
//! digits. It gives exactly `serde_json::to_string(value).len()`, which
//! the tests check on random values.

use std::fmt::Display;

use serde::ser::{self, Serialize, Serializer};

/// Bytes of `value` as compact JSON, counted without building the text.
pub fn json_size(value: &impl Serialize) -> usize {
    let mut count = Count {
        bytes: 0,
        mode: Mode::Value,
    };
    match value.serialize(&mut count) {
        Ok(()) => count.bytes,
        // What this counter cannot count (a map key serde_json refuses):
        // as serde_json writes it.
        Err(Unsupported) => written_size(value),
    }
}

/// Bytes of `value` as serde_json writes it, by writing it to a counter.
fn written_size(value: &impl Serialize) -> usize {
    /// Counts what is written to it.
    struct Written(usize);
    impl std::io::Write for Written {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Written(0);
    // Writing plain data to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Bytes of `text` inside a JSON string (without the quotes), as
/// serde_json writes it: `"`, `\` and the five short escapes take two
/// bytes, other control characters six, every other byte one.
pub fn json_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    // Most text has nothing to escape: checked without branching per byte.
    if bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    }) {
        bytes.len() + bytes.iter().map(|&b| escape_extra(b)).sum::<usize>()
    } else {
        bytes.len()
    }
}

/// What escaping byte `b` adds to a JSON string.
fn escape_extra(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
        0..=0x1f => 5,
        _ => 0,
    }
}

/// Digits of `n` in decimal.
fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn signed(n: i64) -> usize {
    usize::from(n < 0) + digits(n.unsigned_abs())
}

/// `"name"`.
fn quoted(name: &str) -> usize {
    2 + json_len(name)
}

/// The count so far, and what is being counted.
struct Count {
    bytes: usize,
    mode: Mode,
}

/// What [`Count`] is counting: serde_json writes a map key or the text of
/// a `RawValue` its own way.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A value.
    Value,
    /// A map key: a string, or an integer in quotes; anything else is left
    /// to serde_json.
    Key,
    /// The text of a `RawValue`, written as it stands.
    Raw,
}

impl Count {
    /// Adds `n` bytes of something only a value can be.
    fn value(&mut self, n: usize) -> Result<(), Unsupported> {
        if self.mode != Mode::Value {
            return Err(Unsupported);
        }
        self.bytes += n;
        Ok(())
    }

    /// Adds a number of `n` digits (in quotes as a map key).
    fn number(&mut self, n: usize) -> Result<(), Unsupported> {
        match self.mode {
            Mode::Value => self.bytes += n,
            Mode::Key => self.bytes += 2 + n,
            Mode::Raw => return Err(Unsupported),
        }
        Ok(())
    }

    /// Counts `value` as `mode` does, then goes back to counting values.
    fn counted_as<T: Serialize + ?Sized>(
        &mut self,
        mode: Mode,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.mode = mode;
        let counted = value.serialize(&mut *self);
        self.mode = Mode::Value;
        counted
    }

    /// A sequence, map or struct whose brackets take `open` bytes.
    fn compound(&mut self, open: usize) -> Result<Compound<'_>, Unsupported> {
        self.value(open)?;
        Ok(Compound {
            count: self,
            first: true,
            raw: false,
        })
    }
}

/// A value this counter does not count (serde_json's own reading of it
/// is used instead).
#[derive(Debug)]
struct Unsupported;

impl Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not counted")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: Display>(_: T) -> Self {
        Unsupported
    }
}

/// serde_json's marker for a `RawValue`, written as it stands.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// A sequence, map or struct being counted: whether the next element
/// needs a comma before it.
struct Compound<'c> {
    count: &'c mut Count,
    first: bool,
    /// A `RawValue`: its one field is counted as it stands.
    raw: bool,
}

impl Compound<'_> {
    fn comma(&mut self) {
        if !self.first {
            self.count.bytes += 1;
        }
        self.first = false;
    }
}

/// Narrow integers, counted as the wide ones they widen to.
macro_rules! widen {
    ($($method:ident($ty:ty) => $wide:ident),*) => {$(
        fn $method(self, v: $ty) -> Result<(), Unsupported> {
            self.$wide(v.into())
        }
    )*};
}

impl<'c> Serializer for &'c mut Count {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'c>;
    type SerializeTuple = Compound<'c>;
    type SerializeTupleStruct = Compound<'c>;
    type SerializeTupleVariant = Compound<'c>;
    type SerializeMap = Compound<'c>;
    type SerializeStruct = Compound<'c>;
    type SerializeStructVariant = Compound<'c>;

    widen!(
        serialize_i8(i8) => serialize_i64,
        serialize_i16(i16) => serialize_i64,
        serialize_i32(i32) => serialize_i64,
        serialize_u8(u8) => serialize_u64,
        serialize_u16(u16) => serialize_u64,
        serialize_u32(u32) => serialize_u64
    );

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.value(if v { 4 } else { 5 })
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.number(signed(v))
    }
    fn serialize_i128(self, v: i128) -> Result<(), Unsupported> {
        self.value(v.to_string().len())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.number(digits(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), Unsupported> {
        self.value(v.to_string().len())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unsupported> {
        // Rare: as serde_json writes it (shortest round trip, or `null`).
        self.value(written_size(&v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        self.value(written_size(&v))
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.bytes += match self.mode {
            Mode::Value | Mode::Key => quoted(v),
            Mode::Raw => v.len(),
        };
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unsupported> {
        // An array of numbers.
        self.value(
            2 + v.len().saturating_sub(1) + v.iter().map(|b| digits((*b).into())).sum::<usize>(),
        )
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.value(4)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        self.value(0)?;
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.value(4)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        // `{"variant":value}`
        self.value(3 + quoted(variant))?;
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'c>, Unsupported> {
        self.compound(2)
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'c>, Unsupported> {
        self.compound(2)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'c>, Unsupported> {
        self.compound(2)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'c>, Unsupported> {
        // `{"variant":[...]}`, and `{"variant":{...}}` for a struct variant.
        self.compound(3 + quoted(variant) + 2)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'c>, Unsupported> {
        self.compound(2)
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Compound<'c>, Unsupported> {
        if name == RAW_VALUE_TOKEN {
            let mut raw = self.compound(0)?;
            raw.raw = true;
            return Ok(raw);
        }
        self.compound(2)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'c>, Unsupported> {
        self.serialize_tuple_variant(name, index, variant, len)
    }
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.comma();
        value.serialize(&mut *self.count)
    }
}

/// The sequence-like compounds: elements separated by commas (the
/// brackets are counted when the compound starts).
macro_rules! sequence {
    ($($trait:ident::$method:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
                self.element(value)
            }
            fn end(self) -> Result<(), Unsupported> {
                Ok(())
            }
        }
    )*};
}

sequence!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.comma();
        // `"key":`
        self.count.counted_as(Mode::Key, key)?;
        self.count.bytes += 1;
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        value.serialize(&mut *self.count)
    }
    fn end(self) -> Result<(), Unsupported> {
        Ok(())
    }
}

impl Compound<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Unsupported> {
        if self.raw {
            return self.count.counted_as(Mode::Raw, value);
        }
        self.comma();
        self.count.bytes += 1 + quoted(key);
        value.serialize(&mut *self.count)
    }
}

/// The struct-like compounds: `"name":value` members.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Unsupported> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), Unsupported> {
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::{json, Value};

    use super::*;

    fn same<T: Serialize>(value: &T) {
        let text = serde_json::to_string(value).expect("serializes");
        assert_eq!(json_size(value), text.len(), "{text}");
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(String),
        Tuple(i8, Option<u16>),
        Struct { a: char, b: Vec<u8> },
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Newtype(u64);

    #[derive(Serialize)]
    struct TupleStruct(i64, bool);

    #[derive(Serialize)]
    struct Every {
        shapes: Vec<Shape>,
        unit: Unit,
        newtype: Newtype,
        tuple_struct: TupleStruct,
        tuple: (i32, f32, f64),
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        none: Option<u8>,
        wide: (i128, u128),
        extremes: (i64, i64, u64, u32, i16),
        not_finite: (f64, f32),
        #[serde(with = "bytes")]
        bytes: Vec<u8>,
        by_number: BTreeMap<i32, &'static str>,
        by_unsigned: BTreeMap<u64, ()>,
        by_char: BTreeMap<char, Shape>,
        by_variant: BTreeMap<Key, u8>,
        raw: Box<serde_json::value::RawValue>,
        value: Value,
    }

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Key {
        First,
        Second,
    }

    mod bytes {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn counts_every_shape_as_serde_json_writes_it() {
        let every = Every {
            shapes: vec![
                Shape::Unit,
                Shape::Newtype("a\"b\\c\u{1}\u{7f}é\n".into()),
                Shape::Tuple(-128, Some(65535)),
                Shape::Tuple(0, None),
                Shape::Struct {
                    a: '\u{8}',
                    b: vec![0, 9, 10, 99, 100, 255],
                },
                Shape::Struct {
                    a: '✓', b: vec![]
                },
            ],
            unit: Unit,
            newtype: Newtype(u64::MAX),
            tuple_struct: TupleStruct(i64::MIN, false),
            tuple: (-7, 1.5e-7, 0.1 + 0.2),
            skipped: None,
            none: None,
            wide: (i128::MIN, u128::MAX),
            extremes: (i64::MAX, -1, 0, 10, -10),
            not_finite: (f64::NAN, f32::INFINITY),
            bytes: vec![1, 20, 255],
            by_number: [(-5, "x"), (0, ""), (17, "\t")].into(),
            by_unsigned: [(u64::MAX, ())].into(),
            by_char: [('"', Shape::Unit), ('k', Shape::Newtype(String::new()))].into(),
            by_variant: [(Key::First, 1), (Key::Second, 2)].into(),
            raw: serde_json::value::RawValue::from_string(r#"{ "spaced" : [1, 2] }"#.into())
                .expect("raw"),
            value: json!({"a": [1, -2, 3.25, null, true, {"b\u{0}": "\u{1f}"}], "": {}}),
        };
        same(&every);
        same(&Shape::Unit);
        same(&"");
        same(&Vec::<Value>::new());
        same(&BTreeMap::<String, Value>::new());
    }

    #[test]
    fn a_key_serde_json_writes_its_own_way_is_counted_by_it() {
        // Keys serde_json may write or refuse (bools, floats): left to it.
        let by_bool: BTreeMap<bool, u8> = [(false, 1), (true, 2)].into();
        assert_eq!(json_size(&by_bool), written_size(&by_bool));
    }

    #[test]
    fn counts_alerts_as_serde_json_writes_them() {
        let alert = crate::alert::tests::hostile_alert();
        same(&alert);
        same(&alert.minimal());
    }

    /// Any JSON value, its strings of any characters.
    fn value() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            ".{0,12}",
            prop::collection::vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect()),
            prop::collection::vec(0u8..0x80, 0..12)
                .prop_map(|b| b.into_iter().map(char::from).collect::<String>()),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text.clone().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(text.clone(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn counts_any_value_as_serde_json_writes_it(v in value()) {
            let text = serde_json::to_string(&v).expect("serializes");
            prop_assert_eq!(json_size(&v), text.len());
        }

        #[test]
        fn counts_any_string_as_serde_json_writes_it(s in prop::collection::vec(any::<char>(), 0..40)) {
            let s: String = s.into_iter().collect();
            let text = serde_json::to_string(&s).expect("serializes");
            prop_assert_eq!(json_len(&s) + 2, text.len());
        }
    }
}
