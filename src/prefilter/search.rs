//! One search for many strings, the leftmost longest match first: Teddy
//! (aho-corasick's vectorised searcher, SSSE3/AVX2 or NEON) whenever it can
//! be built, else an Aho-Corasick automaton. Every occurrence is found,
//! those that overlap another match too: after a match the search restarts
//! where another string can begin inside it.
//!
//! The automaton would choose a prefilter on its own, but for a set of
//! strings that all start with one of few bytes (the case variants of a
//! word) it picks a search for those bytes, which in JSON are everywhere:
//! ten times slower than Teddy on audit events.

use aho_corasick::packed::{self, Searcher};
use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, Match, MatchKind, Span};

use super::common_grams::COMMON_GRAMS;

/// Bytes a search compares before it checks a place: Teddy's fingerprint
/// of a pattern is its first four bytes.
pub(super) const FINGERPRINT: usize = 4;

/// Where in `s` to search it from: the offset of its least common
/// [`FINGERPRINT`] bytes in EKS audit events (the earliest of equals, for
/// the longest pattern). A string that starts with bytes in every event (`kube-` of
/// `kube-public`) would make the search stop and compare at each of them.
pub(super) fn window(s: &str) -> usize {
    let bytes = s.as_bytes();
    (0..=bytes.len().saturating_sub(FINGERPRINT))
        .filter(|at| s.is_char_boundary(*at))
        .min_by_key(|at| {
            (
                commonness(&bytes[*at..(*at + FINGERPRINT).min(bytes.len())]),
                *at,
            )
        })
        .unwrap_or(0)
}

/// How common `gram` is in EKS audit events, ASCII case-insensitively:
/// higher is more common, 0 not among the most common.
fn commonness(gram: &[u8]) -> usize {
    let lower = gram.to_ascii_lowercase();
    COMMON_GRAMS
        .iter()
        .position(|g| g[..] == lower[..])
        .map_or(0, |i| COMMON_GRAMS.len() - i)
}

/// Strings found together, leftmost longest first.
#[derive(Debug, Clone)]
pub(super) struct Strings {
    search: Search,
    /// For each pattern, how far past its start the next search begins:
    /// the first offset inside it where another pattern can start (one of
    /// its suffixes is a pattern's prefix), else its length.
    skip: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Search {
    Teddy(Searcher),
    Automaton(AhoCorasick),
}

impl Strings {
    /// `None` when no search can be built for `patterns`.
    pub(super) fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Option<Self> {
        let skip = patterns
            .iter()
            .map(|p| {
                let p = p.as_ref();
                (1..p.len())
                    .find(|k| {
                        let tail = &p[*k..];
                        patterns.iter().any(|q| {
                            let q = q.as_ref();
                            let n = tail.len().min(q.len());
                            tail[..n] == q[..n]
                        })
                    })
                    .unwrap_or(p.len())
            })
            .collect();
        Some(Self {
            search: Search::new(patterns)?,
            skip,
        })
    }

    /// Every match in `hay`, left to right: at each place the longest
    /// pattern, and the matches that begin inside it.
    pub(super) fn matches<'h>(&'h self, hay: &'h [u8]) -> impl Iterator<Item = Match> + 'h {
        let mut at = 0;
        std::iter::from_fn(move || {
            let m = self.search.find(hay, at)?;
            at = m.start() + self.skip[m.pattern().as_usize()];
            Some(m)
        })
    }
}

impl Search {
    fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Option<Self> {
        let teddy = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(patterns)
            .build();
        if let Some(teddy) = teddy {
            return Some(Self::Teddy(teddy));
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(patterns)
            .ok()
            .map(Self::Automaton)
    }

    /// The leftmost longest match in `hay[at..]`.
    fn find(&self, hay: &[u8], at: usize) -> Option<Match> {
        if at >= hay.len() {
            return None;
        }
        match self {
            Self::Teddy(s) => s.find_in(hay, Span::from(at..hay.len())),
            Self::Automaton(a) => a.find(Input::new(hay).span(at..hay.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_leftmost_longest_match_either_way() {
        let patterns = ["anon", "anonymous", "secrets", "ANON"];
        let teddy = Strings::new(&patterns).expect("builds");
        assert!(matches!(teddy.search, Search::Teddy(_)));
        let automaton = Strings {
            search: Search::Automaton(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(patterns)
                    .expect("builds"),
            ),
            ..teddy.clone()
        };
        let hay = b"x secrets ANONy anonymous";
        for s in [&teddy, &automaton] {
            let found: Vec<(usize, usize)> = s
                .matches(hay)
                .map(|m| (m.pattern().as_usize(), m.start()))
                .collect();
            assert_eq!(found, vec![(2, 2), (3, 10), (1, 16)]);
            assert_eq!(s.matches(b"").count(), 0);
        }
    }

    #[test]
    fn finds_strings_that_overlap_a_match() {
        // `roles` ends with the `s` `secrets` starts with.
        let s = Strings::new(&["roles", "secrets"]).expect("builds");
        let found: Vec<usize> = s
            .matches(b"rolesecrets")
            .map(|m| m.pattern().as_usize())
            .collect();
        assert_eq!(found, vec![0, 1]);
    }

    #[test]
    fn a_string_is_searched_from_bytes_audit_events_rarely_hold() {
        // `kube` and `syst` are in every event; `be-p`, `dash` in few.
        assert_eq!(window("kube-public"), 2);
        assert_eq!(commonness(b"be-p"), 0);
        assert!(window("kube-dashboard") > 0);
        assert!(window("system:masters") > 0);
        // a string already rare is searched whole; a short one as it is
        assert_eq!(window("impersonatedUser"), 0);
        assert_eq!(commonness(b"impe"), 0);
        assert_eq!(window("exec"), 0);
        assert_eq!(window("ab"), 0);
        // never inside a character
        let at = window("kube-\u{e9}\u{e9}\u{e9}");
        assert!("kube-\u{e9}\u{e9}\u{e9}".is_char_boundary(at));
        assert!(commonness(b"KUBE") > 0 && commonness(b"kube") == commonness(b"KUBE"));
    }
}
