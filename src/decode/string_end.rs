//! Where a JSON string token ends, 64 bytes at a time.
//!
//! An audit event inside the envelope is a JSON string holding JSON, so
//! every quote of the event is escaped (`\"`): a scanner that stops at each
//! escape stops every few bytes. This one reads 64 bytes as masks of quotes,
//! backslashes and control characters (with `wide`'s portable vectors), finds
//! the escaped characters of the whole block without a branch per escape,
//! and stops only at the closing quote. It checks what a JSON parser checks
//! of a string it skips: no raw control character, and every escape one of
//! `\" \\ \/ \b \f \n \r \t \uXXXX`.

use wide::u8x16;

/// Bits 0, 2, 4, ...: the positions a run of backslashes may start on and
/// end escaping nothing.
const EVEN_BITS: u64 = 0x5555_5555_5555_5555;

/// Masks of one 64-byte block: quotes, backslashes, control characters;
/// sixteen bytes at a time in vector registers (SSE2, NEON).
pub(super) fn block_masks(block: &[u8; 64]) -> (u64, u64, u64) {
    let quote = u8x16::splat(b'"');
    let backslash = u8x16::splat(b'\\');
    let below_space = u8x16::splat(0x1f);
    let (mut q, mut b) = (0, 0);
    let mut lanes = [u8x16::splat(0); 4];
    let mut any_control = u8x16::splat(0);
    for (i, lane) in block.chunks_exact(16).enumerate() {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(lane);
        let v = u8x16::new(bytes);
        lanes[i] = v;
        let shift = 16 * i;
        q |= u64::from(v.simd_eq(quote).to_bitmask()) << shift;
        b |= u64::from(v.simd_eq(backslash).to_bitmask()) << shift;
        any_control |= v.min(below_space).simd_eq(v);
    }
    // Control characters are rare (none in a valid string): their mask
    // is worked out only for a block that has one.
    let mut c = 0;
    if any_control.to_bitmask() != 0 {
        for (i, v) in lanes.iter().enumerate() {
            c |= u64::from(v.min(below_space).simd_eq(*v).to_bitmask()) << (16 * i);
        }
    }
    (q, b, c)
}

/// The characters of a block escaped by a backslash, given its backslashes
/// and whether its first byte is escaped by the block before
/// (`carry`, updated for the next block). Runs of backslashes pair up:
/// a character is escaped when the run before it has odd length.
pub(super) fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN_BITS & !follows_escape;
    let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    (EVEN_BITS ^ (even_starts << 1)) & follows_escape
}

/// What a skipped string may not contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadString {
    /// No closing quote.
    Unterminated,
    /// A raw control character or an escape JSON does not have.
    Invalid,
}

/// Index of the quote closing the string whose content starts at
/// `s[start]` (just after its opening quote).
pub(crate) fn string_end(s: &[u8], start: usize) -> Result<usize, BadString> {
    let mut at = start;
    let mut carry = 0;
    loop {
        let rest = s.get(at..).unwrap_or_default();
        let (block, len) = match rest.first_chunk::<64>() {
            Some(block) => (*block, 64),
            None => {
                // The tail, padded with spaces (nothing to find in them).
                let mut block = [b' '; 64];
                block[..rest.len()].copy_from_slice(rest);
                (block, rest.len())
            }
        };
        let (q, b, c) = block_masks(&block);
        // The bytes of `s` in the block (not its padding).
        let real = if len == 64 { u64::MAX } else { (1 << len) - 1 };
        let esc = escaped(b, &mut carry) & real;
        let quotes = q & !esc;
        // The bytes before the closing quote (all, when none is here).
        let inside = if quotes == 0 {
            u64::MAX
        } else {
            (quotes & quotes.wrapping_neg()) - 1
        };
        if c & inside != 0 {
            return Err(BadString::Invalid);
        }
        // Escaped characters other than `"` and `\`, checked one by one
        // (rare: `\u0026`, `\n`).
        let mut other = esc & !q & !b & inside;
        while other != 0 {
            let i = at + other.trailing_zeros() as usize;
            if !valid_escape(s, i) {
                return Err(BadString::Invalid);
            }
            other &= other - 1;
        }
        if quotes != 0 {
            let end = quotes.trailing_zeros() as usize;
            return if end < len {
                Ok(at + end)
            } else {
                Err(BadString::Unterminated)
            };
        }
        if len < 64 {
            return Err(BadString::Unterminated);
        }
        at += 64;
    }
}

/// True when the escaped character at `s[i]` makes a JSON escape.
fn valid_escape(s: &[u8], i: usize) -> bool {
    match s.get(i) {
        Some(b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
        Some(b'u') => s
            .get(i + 1..i + 5)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious byte-by-byte reading, to compare with.
    fn naive(s: &[u8], start: usize) -> Result<usize, BadString> {
        let mut i = start;
        while let Some(&ch) = s.get(i) {
            match ch {
                b'"' => return Ok(i),
                b'\\' => match s.get(i + 1) {
                    Some(b'"' | b'\\') => i += 2,
                    Some(_) if valid_escape(s, i + 1) => i += 2,
                    None => return Err(BadString::Unterminated),
                    Some(_) => return Err(BadString::Invalid),
                },
                0..=0x1f => return Err(BadString::Invalid),
                _ => i += 1,
            }
        }
        Err(BadString::Unterminated)
    }

    #[test]
    fn finds_the_closing_quote_past_escaped_ones() {
        let s = br#"{\"kind\":\"Event\",\"a\":\"x\\\\\"}" tail"#;
        let end = string_end(s, 0).expect("ends");
        assert_eq!(&s[end..], b"\" tail");
        assert_eq!(string_end(br#"a\\"b"#, 0), Ok(3));
        assert_eq!(string_end(br#"a\\\"b"#, 0), Err(BadString::Unterminated));
    }

    #[test]
    fn refuses_what_json_refuses() {
        assert_eq!(string_end(b"a\nb\"", 0), Err(BadString::Invalid));
        assert_eq!(string_end(br#"a\qb""#, 0), Err(BadString::Invalid));
        assert_eq!(string_end(br#"a\u00zz""#, 0), Err(BadString::Invalid));
        assert_eq!(string_end(br#"a\u0026b""#, 0), Ok(8));
        assert_eq!(string_end(br#"a\u00"#, 0), Err(BadString::Invalid));
        // a control character after the end is not the string's
        assert_eq!(string_end(b"ab\"\n", 0), Ok(2));
    }

    #[test]
    fn escapes_carry_across_blocks() {
        for n in 60..70 {
            let mut s = vec![b'a'; n];
            s.extend_from_slice(br#"\"x\\"#);
            s.push(b'"');
            s.extend_from_slice(b"rest");
            assert_eq!(string_end(&s, 0), naive(&s, 0), "n = {n}");
            assert_eq!(string_end(&s, 0), Ok(n + 5), "n = {n}");
        }
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_a_byte_by_byte_reading(
            s in proptest::collection::vec(
                prop::sample::select(vec![b'a', b'"', b'\\', b'u', b'0', b'n', b'q', b'\n', b'/']),
                0..300,
            ),
            start in 0usize..5,
        ) {
            let start = start.min(s.len());
            prop_assert_eq!(string_end(&s, start), naive(&s, start));
        }
    }
}
