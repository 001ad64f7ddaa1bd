//! The subscription envelope, read without a general JSON parser.
//!
//! CloudWatch Logs writes the envelope in one shape: an object of a few
//! strings and `logEvents`, a list of `{"id", "timestamp", "message"}`.
//! Almost all of its bytes are the messages, JSON strings holding escaped
//! JSON; this reader skips each one with [`super::string_end`] instead of
//! stopping at every escape. Whatever it does not expect (another key in
//! a log entry, a field of another type, a number where none belongs,
//! nesting, invalid UTF-8) makes it give up, and the batch is read by
//! serde_json instead: the answer is the same either way, only slower.

use std::borrow::Cow;

use super::string_end::string_end;
use super::{Batch, LogEvent, MAX_TIMESTAMP_MS};
use crate::time::Millis;

/// Deepest nesting of an unknown top-level member this reader skips.
const MAX_DEPTH: usize = 16;

/// The batch, or `None` when serde_json must read it.
pub(super) fn read(json: &[u8], most_entries: usize) -> Option<Batch<'_>> {
    let text = std::str::from_utf8(json).ok()?;
    let mut r = Reader { text, at: 0 };
    let batch = r.batch(most_entries)?;
    r.ws();
    (r.at == text.len()).then_some(batch)
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Skips whitespace and takes `b`.
    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// After whitespace: true for `b` (taken), false for `end` (taken).
    fn next_or_end(&mut self, b: u8, end: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        self.at += 1;
        match c {
            c if c == b => Some(true),
            c if c == end => Some(false),
            _ => None,
        }
    }

    /// A string token: its text with the quotes.
    fn token(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let s = self.bytes();
        // Keys and ids are short: read them a byte at a time.
        let mut i = start;
        let end = loop {
            match s.get(i) {
                Some(b'"') => break i,
                Some(b'\\' | 0..=0x1f) | None => break string_end(s, start).ok()?,
                Some(_) if i - start >= 32 => break string_end(s, start).ok()?,
                Some(_) => i += 1,
            }
        };
        self.at = end + 1;
        self.text.get(start - 1..end + 1)
    }

    /// A string value, unescaped.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let token = self.token()?;
        if token.contains('\\') {
            serde_json::from_str::<String>(token).ok().map(Cow::Owned)
        } else {
            token.get(1..token.len() - 1).map(Cow::Borrowed)
        }
    }

    /// A member name without escapes.
    fn key(&mut self) -> Option<&'a str> {
        let token = self.token()?;
        self.eat(b':')?;
        token
            .get(1..token.len() - 1)
            .filter(|name| !name.contains('\\'))
    }

    /// The members of an object (`{`, `}`) or the items of a list (`[`,
    /// `]`), each read by `each`, separated by commas.
    fn items(
        &mut self,
        open: u8,
        close: u8,
        mut each: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        self.ws();
        if self.peek()? == close {
            self.at += 1;
            return Some(());
        }
        loop {
            each(self)?;
            if !self.next_or_end(b',', close)? {
                return Some(());
            }
        }
    }

    /// The batch; `None` past `most_entries` entries too (serde's
    /// reading then counts them and refuses the batch).
    fn batch(&mut self, most_entries: usize) -> Option<Batch<'a>> {
        let mut batch = Batch {
            message_type: Cow::Borrowed(""),
            owner: Cow::Borrowed(""),
            log_group: Cow::Borrowed(""),
            log_stream: Cow::Borrowed(""),
            log_events: Vec::new(),
        };
        let mut seen = [false; 5];
        self.items(b'{', b'}', |r| {
            let key = r.key()?;
            let field = ["messageType", "owner", "logGroup", "logStream", "logEvents"]
                .iter()
                .position(|k| *k == key);
            if let Some(f) = field {
                // serde refuses a repeated field: let it say so.
                if std::mem::replace(&mut seen[f], true) {
                    return None;
                }
            }
            match field {
                Some(0) => batch.message_type = r.string()?,
                Some(1) => batch.owner = r.string()?,
                Some(2) => batch.log_group = r.string()?,
                Some(3) => batch.log_stream = r.string()?,
                Some(_) => {
                    r.items(b'[', b']', |r| {
                        if batch.log_events.len() == most_entries {
                            return None;
                        }
                        batch.log_events.push(r.log_event()?);
                        Some(())
                    })?;
                }
                None => r.skip(0)?,
            }
            Some(())
        })?;
        Some(batch)
    }

    fn log_event(&mut self) -> Option<LogEvent<'a>> {
        let mut ev = LogEvent::default();
        self.items(b'{', b'}', |r| {
            match r.key()? {
                "id" => ev.id = Some(r.string()?),
                "timestamp" => ev.timestamp = r.timestamp()?,
                "message" => ev.message = Some(r.token()?),
                _ => return None,
            }
            Some(())
        })?;
        Some(ev)
    }

    /// An integer (`-?(0|[1-9][0-9]*)`), as the serde reading takes it:
    /// `None` out of range. Any other number: give up.
    fn timestamp(&mut self) -> Option<Option<Millis>> {
        self.ws();
        let s = self.bytes();
        let start = self.at;
        let mut i = start + usize::from(s.get(start) == Some(&b'-'));
        let digits = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = i - digits;
        if n == 0
            || (n > 1 && s[digits] == b'0')
            || matches!(s.get(i), Some(b'.' | b'e' | b'E'))
            || n > 30
        {
            return None;
        }
        self.at = i;
        let v: i128 = self.text.get(start..i)?.parse().ok()?;
        Some(
            Millis::try_from(v)
                .ok()
                .filter(|ms| (0..=MAX_TIMESTAMP_MS).contains(ms)),
        )
    }

    /// Skips a member value of a key this reader does not use: strings,
    /// lists and objects of them, `true`, `false`, `null`.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.token().map(drop),
            b'[' => self.items(b'[', b']', |r| r.skip(depth + 1)),
            b'{' => self.items(b'{', b'}', |r| {
                r.token()?;
                r.eat(b':')?;
                r.skip(depth + 1)
            }),
            _ => {
                let word = ["true", "false", "null"]
                    .into_iter()
                    .find(|w| self.bytes()[self.at..].starts_with(w.as_bytes()))?;
                self.at += word.len();
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cloudwatch_shape_and_gives_up_on_others() {
        let cw = br#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/eks/p/cluster","logStream":"kube-apiserver-audit-1","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1715644800000,"message":"{\"kind\":\"Event\",\"uri\":\"/a?b=1\u0026c\"}"}]}"#;
        let batch = read(cw, usize::MAX).expect("CloudWatch's shape is read here");
        assert_eq!(batch.log_group, "/aws/eks/p/cluster");
        assert_eq!(batch.log_events.len(), 1);
        assert_eq!(batch.log_events[0].timestamp, Some(1_715_644_800_000));
        assert_eq!(
            batch.log_events[0].message,
            Some(r#""{\"kind\":\"Event\",\"uri\":\"/a?b=1\u0026c\"}""#)
        );
        // serde_json reads these
        assert!(read(br#"{"logEvents":[{"id":"1","extra":1}]}"#, usize::MAX).is_none());
        assert!(read(br#"{"logEvents":[{"timestamp":1.5}]}"#, usize::MAX).is_none());
        assert!(read(br#"{"owner":"a","owner":"b"}"#, usize::MAX).is_none());
        assert!(read(br#"{"logEvents":[]} x"#, usize::MAX).is_none());
        assert!(read(b"{\"owner\":\"\xff\"}", usize::MAX).is_none());
    }
}
