//! JSON text parsed into values that a sender cannot use to hide a body
//! from the rules: depth capped, and what Go's decoder reads but ours
//! refuses read as Go reads it.

/// Nesting a parsed body keeps: a value inside more arrays and objects
/// than this reads as `null`. JSON's
/// parser refuses a document nested past 128 levels, and a request's
/// sender chooses its nesting: one deep field must not hide the rest of
/// the body from the rules.
pub const MAX_JSON_DEPTH: usize = 100;

/// `text` parsed as JSON, with values nested deeper than
/// [`MAX_JSON_DEPTH`] read as `null`; `None` when it is not JSON.
///
/// Text the JSON parser refuses although its syntax is sound is read as
/// kube-apiserver's decoder reads it (see [`mended`]): a request body is
/// logged as its sender wrote it, and one odd value must not hide the
/// rest of the body from the rules.
pub fn parse_json(text: &str) -> Option<serde_json::Value> {
    strict(text).or_else(|| strict(&mended(text)?))
}

/// [`parse_json`] without mending.
fn strict(text: &str) -> Option<serde_json::Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    // The document itself, then one level per array or object around a value.
    let value = serde::de::DeserializeSeed::deserialize(Depth(MAX_JSON_DEPTH + 1), &mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// `text` with the two things Go's JSON decoder accepts and ours refuses
/// replaced, or `None` when it holds neither:
/// - a surrogate escape without its pair (`"\ud800"`), which Go reads as
///   U+FFFD, becomes `\ufffd`;
/// - a number too large for a float (`1e400`), which Go refuses, becomes
///   `null`, as a non-finite number reads here anyway.
///
/// One pass; a backslash always starts an escape, so `"\\ud800"` (a
/// backslash, then text) is left alone.
fn mended(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = String::new();
    // Bytes of `text` already in `out`.
    let mut copied = 0;
    let mut replace = |out: &mut String, from: usize, to: usize, with: &str| {
        out.push_str(&text[copied..from]);
        out.push_str(with);
        copied = to;
    };
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        match (in_string, b[i]) {
            (true, b'"') | (false, b'"') => {
                in_string = !in_string;
                i += 1;
            }
            (true, b'\\') => {
                let unit = (b.get(i + 1) == Some(&b'u'))
                    .then(|| hex4(b, i + 2))
                    .flatten();
                match unit {
                    Some(0xD800..=0xDBFF)
                        if b.get(i + 6) == Some(&b'\\')
                            && b.get(i + 7) == Some(&b'u')
                            && matches!(hex4(b, i + 8), Some(0xDC00..=0xDFFF)) =>
                    {
                        i += 12;
                    }
                    Some(0xD800..=0xDFFF) => {
                        replace(&mut out, i, i + 6, "\\ufffd");
                        i += 6;
                    }
                    Some(_) => i += 6,
                    None => i += 2,
                }
            }
            (false, b'-' | b'0'..=b'9') => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                if text[start..i].parse::<f64>().is_ok_and(f64::is_infinite) {
                    replace(&mut out, start, i, "null");
                }
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// The four hex digits at `at` as a number.
fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    digits.iter().try_fold(0, |n, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(n * 16 + v)
    })
}

/// A value parsed with this many levels left.
struct Depth(usize);

impl<'de> serde::de::DeserializeSeed<'de> for Depth {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.0 == 0 {
            // Skipped without recursion (the parser skips iteratively).
            <serde::de::IgnoredAny as serde::Deserialize>::deserialize(d)?;
            return Ok(serde_json::Value::Null);
        }
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Depth {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Depth(self.0 - 1))? {
            out.push(v);
        }
        Ok(out.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(Depth(self.0 - 1))?;
            out.insert(key, v);
        }
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reads_as_serde_json_reads_it() {
        for text in [
            r#"{"a":[1,-2,3.5,1e3,true,null,"x\u0026"],"b":{"c":{}},"a2":18446744073709551615}"#,
            r#"{"k":1,"k":2}"#,
            "[]",
            " 7 ",
        ] {
            assert_eq!(
                parse_json(text),
                serde_json::from_str::<serde_json::Value>(text).ok(),
                "{text}"
            );
        }
        for bad in ["", "{", r#"{"a":1} x"#, "[1,]", "nul"] {
            assert_eq!(parse_json(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_nested_too_deep_reads_as_null_from_the_limit_on() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        // `[1]` nested n deep: the innermost array sits at level n.
        let innermost = |v: &serde_json::Value| {
            let mut v = v;
            let mut depth = 0;
            while let Some(inner) = v.as_array().and_then(|a| a.first()) {
                v = inner;
                depth += 1;
            }
            (depth, v.clone())
        };
        let kept = parse_json(&nested(MAX_JSON_DEPTH)).expect("parsed");
        assert_eq!(innermost(&kept), (MAX_JSON_DEPTH, serde_json::json!(1)));
        let cut = parse_json(&nested(MAX_JSON_DEPTH + 1)).expect("parsed");
        // The innermost array is still inside 100; what it holds is not.
        assert_eq!(
            innermost(&cut),
            (MAX_JSON_DEPTH + 1, serde_json::Value::Null)
        );
        // A depth the parser itself refuses, and far past it.
        for n in [200, 100_000] {
            let v =
                parse_json(&format!(r#"{{"deep":{},"kept":true}}"#, nested(n))).expect("parsed");
            assert_eq!(v["kept"], serde_json::json!(true));
        }
    }

    #[test]
    fn what_go_reads_and_serde_json_refuses_is_read_as_go_reads_it() {
        use serde_json::json;
        // Refused as they are...
        for text in [r#""\ud800""#, "1e400", r#"{"\udc00":1}"#] {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_err(),
                "{text}"
            );
        }
        let cases = [
            (r#"{"a":"x\ud800y"}"#, json!({"a": "x\u{fffd}y"})),
            (r#"{"a":"\udc00"}"#, json!({"a": "\u{fffd}"})),
            (r#"{"a":"\uDBFF\u0041"}"#, json!({"a": "\u{fffd}A"})),
            // a low then a high: two lone halves
            (r#"{"a":"\udc00\ud800"}"#, json!({"a": "\u{fffd}\u{fffd}"})),
            // a lone high, then a pair
            (r#"["\ud800\ud83d\ude00"]"#, json!(["\u{fffd}\u{1f600}"])),
            (r#"{"\ud800":1}"#, json!({"\u{fffd}": 1})),
            (
                r#"{"n":1e400,"m":-1E+999,"k":[2,1e400]}"#,
                json!({"n": null, "m": null, "k": [2, null]}),
            ),
            (
                &format!(r#"{{"big":{}}}"#, "9".repeat(400)),
                json!({"big": null}),
            ),
            // ...and what is read alike is kept
            (
                r#"{"s":"1e400 \\ud800","t":1e-400,"u":"\ud83d\ude00"}"#,
                json!({"s": "1e400 \\ud800", "t": 0.0, "u": "\u{1f600}"}),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_json(text), Some(want), "{text}");
        }
        // The rest of a body with one odd value is still read.
        let body = r#"{"metadata":{"annotations":{"a":"\ud800"}},"spec":{"hostNetwork":true}}"#;
        assert_eq!(
            parse_json(body).expect("read")["spec"]["hostNetwork"],
            json!(true)
        );
        // Text that is not JSON stays refused.
        for bad in [r#"{"a":"\ud800"#, r#"{"a":1e400,}"#, r#""\u12""#] {
            assert_eq!(parse_json(bad), None, "{bad}");
        }
    }

    #[test]
    fn text_the_parser_reads_is_never_mended() {
        for text in [
            r#"{"a":[1,-2.5e10,3e300,"\ud83d\ude00","\\ud800","\"1e400\""],"b":"\u00e9"}"#,
            "0",
            r#""""#,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{text}"
            );
            assert_eq!(mended(text), None, "{text}");
        }
    }
}
