//! Attacker-controlled text, bounded in one place.
//!
//! Every string of an audit event (user agent, URI, names, forwarded
//! addresses) is chosen by whoever sent the request, and one CloudWatch event
//! may carry 256 KB of it. Whatever of it is stored (window state) or sent
//! (alerts, e-mail, subject) goes through [`cap`] first, so no input can grow
//! a DynamoDB item or an SNS message past its limit. The human-facing
//! renderings then go through [`neutralize`] or [`subject_text`], so a value
//! cannot forge lines, render as markup or ping a chat channel; the alert JSON
//! keeps values as data.

mod json;
mod size;

pub use json::{parse_json, MAX_JSON_DEPTH};
pub use size::{json_len, json_size};

/// Longest attacker-controlled value kept, in bytes as written in JSON
/// (escapes included, before the cut marker), so a value of control
/// characters cannot grow six-fold on its way into a record or a message.
pub const MAX_FIELD_BYTES: usize = 256;

/// The longest subject SNS accepts is "less than 100 characters".
pub const MAX_SUBJECT_CHARS: usize = 99;

/// What [`cap_to`] writes where it cut, before the length.
const CUT_MARK: &str = "…[cut, ";

/// `text` cut into pieces of at most `size` bytes (4 at least), on
/// character boundaries: how data too long for one log event is logged.
pub fn pieces(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(size.max(4));
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        out.push(chunk);
        rest = tail;
    }
    out
}

/// `text` cut to [`MAX_FIELD_BYTES`] on a character boundary, with a marker
/// saying how long it was, so a reader knows the value is not whole.
pub fn cap(text: &str) -> String {
    cap_to(text, MAX_FIELD_BYTES)
}

/// `text` cut to at most `max_bytes` of JSON (plus the marker).
pub fn cap_to(text: &str, max_bytes: usize) -> String {
    // Most values are short and plain: one pass that only counts.
    if text.len() <= max_bytes / 6 || (text.len() <= max_bytes && json_len(text) <= max_bytes) {
        return text.to_owned();
    }
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let n = json_char_len(c);
        if used + n > max_bytes {
            break;
        }
        used += n;
        end = i + c.len_utf8();
    }
    if end == text.len() {
        return text.to_owned();
    }
    format!("{}{CUT_MARK}{} bytes]", &text[..end], text.len())
}

/// `text` as part of a key: [`cap`]'s cut, with the hash of the whole
/// text after it (see [`cap_key_to`]), so two values that differ only
/// past the cut stay two keys.
pub fn key_part(text: &str) -> String {
    cap_key_to(text, MAX_FIELD_BYTES)
}

/// `text` as a key: itself when it fits `max_bytes` (as [`cap_to`]
/// counts); else cut shorter, with the SHA-256 of the whole text after the
/// cut, so two long values that differ only past the cut stay two keys.
/// A short text that holds a cut's marker is given the hash too, so it
/// cannot spell a long one's key.
pub fn cap_key_to(text: &str, max_bytes: usize) -> String {
    let capped = cap_to(text, max_bytes);
    if capped == text && !text.contains(CUT_MARK) {
        return capped;
    }
    let hash = crate::vocab::strong_hash(&[text]);
    format!("{}#{hash:032x}", cap_to(text, max_bytes.saturating_sub(64)))
}

/// Bytes of `c` inside a JSON string as serde_json writes it.
fn json_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// True for characters that could forge lines or reorder text on screen:
/// controls, zero-width and bidirectional formatting characters.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // U+061C ARABIC LETTER MARK is a bidi control too.
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
        )
}

/// A value made safe for plain text read by people and chat tools: hidden
/// characters become `?`, and markup and mention syntax (`<`, `>`, `@`,
/// `` ` ``, the `](` of a markdown link, and the `://` a mail client turns
/// into a link) become look-alikes that no renderer interprets; the result
/// is capped at `max_chars` characters. Square brackets alone stay: the
/// titles use them.
pub fn neutralize(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut after_bracket = false;
    for (i, (at, c)) in text.char_indices().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        out.push(match c {
            c if is_hidden(c) => '?',
            '<' => '‹',
            '>' => '›',
            '@' => '＠',
            '`' => 'ˋ',
            '(' if after_bracket => '（',
            // A request's URL must not become a link beside the console's.
            ':' if text[at + 1..].starts_with("//") => '：',
            c => c,
        });
        after_bracket = c == ']';
    }
    out
}

/// A value made safe for a subject line: printable ASCII only, markup and
/// mention characters replaced, at most `max_chars` characters.
pub fn subject_text(text: &str, max_chars: usize) -> String {
    text.chars()
        .take(max_chars)
        .map(|c| match c {
            '<' | '[' => '(',
            '>' | ']' => ')',
            '@' | '`' => '_',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cut_keep_what_tells_them_apart() {
        assert_eq!(cap_key_to("short", 256), "short");
        let a = format!("{}-a", "x".repeat(300));
        let b = format!("{}-b", "x".repeat(300));
        let (ka, kb) = (cap_key_to(&a, 256), cap_key_to(&b, 256));
        assert_ne!(ka, kb);
        assert_eq!(ka, cap_key_to(&a, 256), "stable");
        for k in [&ka, &kb] {
            assert!(json_len(k) <= 256, "{}", k.len());
            assert!(k.starts_with("xxxx") && k.contains("…[cut, 302 bytes]#"));
        }
        // control characters count as JSON writes them
        let c = "\u{1}".repeat(100);
        assert!(json_len(&cap_key_to(&c, 256)) <= 256);
    }

    #[test]
    fn pieces_put_back_together_give_the_text() {
        let text = "é".repeat(1000) + &"A".repeat(999);
        let p = pieces(&text, 7);
        assert!(p.iter().all(|c| c.len() <= 7 && !c.is_empty()));
        assert_eq!(p.concat(), text);
        assert!(pieces("", 7).is_empty());
    }

    #[test]
    fn cap_keeps_short_values_and_marks_cut_ones_with_their_length() {
        assert_eq!(cap("kubectl/v1.30"), "kubectl/v1.30");
        let long = "é".repeat(200); // 400 bytes
        let capped = cap(&long);
        assert!(capped.starts_with(&"é".repeat(128)));
        assert!(capped.ends_with("…[cut, 400 bytes]"), "{capped}");
        assert!(capped.len() <= MAX_FIELD_BYTES + 24);
    }

    #[test]
    fn cap_counts_bytes_as_json_writes_them() {
        // 100 control characters take 600 bytes of JSON
        let controls = "\u{1}".repeat(100);
        let capped = cap(&controls);
        assert!(capped.starts_with(&"\u{1}".repeat(42)), "{capped:?}");
        assert!(capped.ends_with("…[cut, 100 bytes]"));
        assert!(serde_json::to_string(&capped).expect("json").len() <= MAX_FIELD_BYTES + 40);
        assert_eq!(json_len("a\"b\n\u{1}é"), 1 + 2 + 1 + 2 + 6 + 2);
        // as serde_json writes every character
        for c in (0..0x800)
            .filter_map(char::from_u32)
            .chain(['\u{ffff}', '\u{10ffff}'])
        {
            let text = format!("x{c}y");
            let written = serde_json::to_string(&text).expect("json").len() - 2;
            assert_eq!(json_len(&text), written, "{c:?}");
            assert_eq!(
                json_len(&text),
                text.chars().map(json_char_len).sum::<usize>()
            );
        }
        assert_eq!(cap(&"x".repeat(256)), "x".repeat(256));
    }

    #[test]
    fn neutralize_defuses_lines_markup_and_mentions() {
        let t = neutralize(
            "a\r\nb <script> [x](http://e) @channel <!here> `c`\u{202e}",
            200,
        );
        assert_eq!(t, "a??b ‹script› [x]（http：//e) ＠channel ‹!here› ˋcˋ?");
        assert_eq!(neutralize("abcdef", 3), "abc…");
        // A URL a request carries is not a link.
        assert_eq!(
            neutralize("x https://console.aws.amazon.com.evil.example/ y", 100),
            "x https：//console.aws.amazon.com.evil.example/ y"
        );
        // Every bidi control: the marks, embeddings, overrides and isolates.
        for c in [
            '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}',
        ] {
            assert_eq!(
                neutralize(&format!("a{c}b"), 10),
                "a?b",
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn subject_text_is_printable_ascii_without_markup() {
        let s = subject_text("<!here> @channel é\n[x]", 99);
        assert_eq!(s, "(!here) _channel ??(x)");
        assert_eq!(subject_text(&"x".repeat(500), 20).len(), 20);
    }
}
