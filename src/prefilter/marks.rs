//! The short strings every message is searched for, in one pass: the
//! `403` of Multiple403, the escapes that may hide a rule's string (`\u`,
//! and `\/` when a built-in rule's string holds a slash), and the Sigma
//! strings shorter than the one search's fingerprint that hold no letter
//! (SigmaHQ's `401` and `403`). None of them changes with case, so all are
//! found in the message as it stands; each on its own would be a pass over
//! every message.

use super::search::Strings;

/// A short string a message is searched for, and what finding it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// `403`, for Multiple403: it counts as a whole member value only.
    Member403,
    /// `\u`: it counts when the escape may hide a rule's string.
    Escape,
    /// `\/`.
    Slash,
    /// A Sigma rule's string of `len` bytes, by its id in the Sigma
    /// prefilter; a number counts only where it stands alone.
    Sigma { id: usize, len: usize, number: bool },
}

/// What the pass found in a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Seen {
    /// `403` as an object member's value.
    pub(super) member_403: bool,
    /// A `\uXXXX` escape that may hide a string (see [`super::hides_text`]).
    pub(super) escape: bool,
    /// `\/`, when it was searched for.
    pub(super) slash: bool,
    /// The Sigma strings found, a bit each by id.
    pub(super) sigma: [u64; 4],
}

/// The search for every mark.
#[derive(Debug, Clone)]
pub(super) struct Marks {
    strings: Strings,
    /// For each pattern of the search, the marks whose text is a prefix of
    /// it (its own too): the search reports the longest at a place.
    at_pattern: Vec<Vec<Mark>>,
}

impl Marks {
    /// `sigma`: the Sigma strings without letters, by id, with whether
    /// each is a number. `None` when no search can be built, or an id is
    /// 256 or more, or a string empty.
    pub(super) fn new(
        want_403: bool,
        slash: bool,
        sigma: &[(usize, String, bool)],
    ) -> Option<Self> {
        if sigma
            .iter()
            .any(|(id, text, _)| *id >= 256 || text.is_empty())
        {
            return None;
        }
        let mut marks: Vec<(Mark, &str)> = vec![(Mark::Escape, "\\u")];
        if want_403 {
            marks.push((Mark::Member403, "403"));
        }
        if slash {
            marks.push((Mark::Slash, "\\/"));
        }
        marks.extend(sigma.iter().map(|(id, text, number)| {
            let mark = Mark::Sigma {
                id: *id,
                len: text.len(),
                number: *number,
            };
            (mark, text.as_str())
        }));
        let mut texts: Vec<&str> = marks.iter().map(|(_, text)| *text).collect();
        texts.sort_unstable();
        texts.dedup();
        let at_pattern = texts
            .iter()
            .map(|p| {
                marks
                    .iter()
                    .filter(|(_, text)| p.starts_with(text))
                    .map(|(mark, _)| *mark)
                    .collect()
            })
            .collect();
        Some(Self {
            strings: Strings::new(&texts)?,
            at_pattern,
        })
    }

    /// Every mark in `msg`, in one pass.
    pub(super) fn scan(&self, msg: &[u8]) -> Seen {
        let mut seen = Seen::default();
        for m in self.strings.matches(msg) {
            let at = m.start();
            for mark in &self.at_pattern[m.pattern().as_usize()] {
                match *mark {
                    Mark::Member403 => {
                        seen.member_403 = seen.member_403 || super::is_member_value(msg, at);
                    }
                    Mark::Escape => seen.escape = seen.escape || super::hides_text(msg, at),
                    Mark::Slash => seen.slash = true,
                    Mark::Sigma { id, len, number } => {
                        if !number || super::folded::stands_alone(msg, at, len) {
                            seen.sigma[id / 64] |= 1 << (id % 64);
                        }
                    }
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_mark_in_one_pass() {
        let sigma = vec![(3, "401".to_owned(), true), (7, "40".to_owned(), false)];
        let marks = Marks::new(true, true, &sigma).expect("builds");
        let seen = marks.scan(br#"{"code":403,"a":"x\u0041\/","n":4011}"#);
        assert!(seen.member_403 && seen.escape && seen.slash);
        // `40` is a prefix of `403` and `401`: found where they are
        assert_eq!(seen.sigma, [1 << 7, 0, 0, 0]);
        let seen = marks.scan(br#"{"code":401,"u":"a\u0026b","f":403.5}"#);
        assert!(!seen.member_403 && !seen.escape && !seen.slash);
        assert_eq!(seen.sigma, [1 << 3 | 1 << 7, 0, 0, 0]);
        assert_eq!(marks.scan(b""), Seen::default());
    }

    #[test]
    fn searches_only_what_was_asked() {
        let marks = Marks::new(false, false, &[]).expect("builds");
        let seen = marks.scan(br#"{"code":403,"s":"\/"}"#);
        assert!(!seen.member_403 && !seen.slash && !seen.escape);
        assert!(Marks::new(false, false, &[(300, "401".into(), true)]).is_none());
        assert!(Marks::new(false, false, &[(1, String::new(), false)]).is_none());
    }

    /// The one pass finds what a separate search for each string finds,
    /// on random messages of the bytes that matter (a vectorised search on
    /// long ones; more than 64 strings take the automaton instead).
    #[test]
    fn one_pass_finds_what_separate_searches_find() {
        use super::super::folded::stands_alone;
        use super::super::{hides_text, is_member_value};
        let few: Vec<(usize, String, bool)> = vec![
            (0, "403".into(), true),
            (1, "403".into(), false),
            (2, "_40".into(), false),
            (3, "03 ".into(), false),
            // a prefix of others: found where they are
            (4, "40".into(), false),
            (255, "401".into(), true),
        ];
        let many: Vec<(usize, String, bool)> = (0..70)
            .map(|i| (i, format!("{}", 400 + i), i % 2 == 0))
            .collect();
        let alphabet = b"\\u/4031_ :.e\"0a2f";
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for sigma in [few, many] {
            let marks = Marks::new(true, true, &sigma).expect("builds");
            for _ in 0..10_000 {
                let len = (next() % 200) as usize;
                let msg: Vec<u8> = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect();
                let at = |p: &[u8]| -> Vec<usize> {
                    (0..msg.len())
                        .filter(|&i| msg[i..].starts_with(p))
                        .collect()
                };
                let mut want = Seen {
                    member_403: at(b"403").into_iter().any(|i| is_member_value(&msg, i)),
                    escape: at(b"\\u").into_iter().any(|i| hides_text(&msg, i)),
                    slash: !at(b"\\/").is_empty(),
                    sigma: [0; 4],
                };
                for (id, t, number) in &sigma {
                    if at(t.as_bytes())
                        .into_iter()
                        .any(|i| !number || stands_alone(&msg, i, t.len()))
                    {
                        want.sigma[id / 64] |= 1 << (id % 64);
                    }
                }
                assert_eq!(marks.scan(&msg), want, "{}", String::from_utf8_lossy(&msg));
            }
        }
    }
}
