//! A log event's message, unescaped: the JSON string token CloudWatch wrote
//! turned back into the audit event's text, 64 bytes at a time.
//!
//! Every quote of an audit event is escaped in its message (`\"`), so a
//! reader that handles escapes one by one stops every few bytes. This one
//! reads a block's quotes and backslashes as masks (as `string_end` does)
//! and drops the escaping backslashes a run at a time. It only handles what
//! CloudWatch writes for an audit event (`\"`, `\\` and `\/`); a token with
//! any other escape, a raw control character or bytes that are not UTF-8
//! is read by serde_json, which stays the authority on what a JSON string
//! is.

use std::borrow::Cow;

use super::string_end::{block_masks, escaped};

/// The text of the JSON string token `raw` (quotes included), or `None`
/// when it is not a valid JSON string.
pub fn message_text(raw: &str) -> Option<Cow<'_, str>> {
    let bytes = raw.as_bytes();
    let [b'"', inner @ .., b'"'] = bytes else {
        return serde_json::from_str(raw).ok();
    };
    match unescape_common(inner) {
        Some(text) => Some(text),
        None => serde_json::from_str(raw).ok(),
    }
}

/// Bytes copied at a time (runs between escapes are short).
const STEP: usize = 16;

/// Unescapes string content holding only `\"`, `\\` and `\/` escapes;
/// `None` for anything else (the caller asks serde_json).
fn unescape_common(s: &[u8]) -> Option<Cow<'_, str>> {
    if memchr::memchr(b'\\', s).is_none() {
        if s.iter().any(|b| *b < 0x20 || *b == b'"') {
            return None;
        }
        return std::str::from_utf8(s).ok().map(Cow::Borrowed);
    }
    // Written STEP bytes at a time, so with room past the end.
    let mut out = vec![0u8; s.len() + STEP];
    let mut w = 0;
    let mut carry = 0;
    let mut at = 0;
    while at < s.len() {
        let len = (s.len() - at).min(64);
        // The block, padded so a STEP-byte copy never reads past it.
        let mut block = [b' '; 64 + STEP];
        block[..len].copy_from_slice(&s[at..at + len]);
        let (q, b, c) = block_masks(block[..64].try_into().ok()?);
        let real = if len == 64 { u64::MAX } else { (1 << len) - 1 };
        let esc = escaped(b, &mut carry) & real;
        let starts = b & !esc & real;
        if c & real != 0 || q & !esc & real != 0 {
            return None;
        }
        // Escaped characters other than `"` and `\` must be `/`.
        let mut other = esc & !q & !b;
        while other != 0 {
            if block[other.trailing_zeros() as usize] != b'/' {
                return None;
            }
            other &= other - 1;
        }
        // A backslash ending the content escapes nothing.
        if len < 64 && starts & (1 << (len - 1)) != 0 {
            return None;
        }
        let mut from = 0;
        let mut drop = starts;
        loop {
            let to = if drop == 0 {
                len
            } else {
                drop.trailing_zeros() as usize
            };
            let mut i = from;
            while i < to {
                out[w + i - from..w + i - from + STEP].copy_from_slice(&block[i..i + STEP]);
                i += STEP;
            }
            w += to - from;
            if drop == 0 {
                break;
            }
            from = to + 1;
            drop &= drop - 1;
        }
        at += len;
    }
    if carry != 0 {
        return None;
    }
    out.truncate(w);
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(raw: &str) -> Option<String> {
        serde_json::from_str::<String>(raw).ok()
    }

    #[test]
    fn reads_an_escaped_audit_event() {
        let raw = r#""{\"kind\":\"Event\",\"requestURI\":\"\/api\/v1\/pods?limit=500\\u0026x=1\",\"a\":\"back\\\\slash\"}""#;
        let text = message_text(raw).expect("valid");
        assert_eq!(Some(text.into_owned()), serde(raw));
        assert!(matches!(
            message_text(r#""plain""#),
            Some(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn leaves_other_escapes_and_bad_tokens_to_serde_json() {
        for raw in [
            r#""a\nb""#,
            r#""\u00e9t\u00e9""#,
            r#""\ud800""#,
            r#""a\qb""#,
            "\"a\u{1}b\"",
            r#""a\\"b""#,
            r#""a\""#,
            r#""ends\\""#,
            "not a string",
            r#""""#,
        ] {
            assert_eq!(message_text(raw).map(Cow::into_owned), serde(raw), "{raw}");
        }
    }

    #[test]
    fn escapes_across_block_edges() {
        for n in 55..140 {
            let mut raw = String::from("\"");
            raw.push_str(&"x".repeat(n));
            raw.push_str(r#"\"y\\\\z\/w\\"#);
            raw.push_str(&"é".repeat(n % 7));
            raw.push('"');
            assert_eq!(
                message_text(&raw).map(Cow::into_owned),
                serde(&raw),
                "n = {n}"
            );
        }
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_serde_json(
            parts in proptest::collection::vec(
                prop::sample::select(vec![
                    "a", "bcdefghijklmnopq", r#"\""#, r#"\\"#, r#"\/"#, r#"\n"#, r#"\u0041"#,
                    "\\", "\"", "é", "\u{1}", "😀", r#"\ud83d\ude00"#,
                ]),
                0..120,
            ),
        ) {
            let raw = format!("\"{}\"", parts.concat());
            prop_assert_eq!(message_text(&raw).map(Cow::into_owned), serde(&raw));
        }
    }
}
