//! One search for many strings, the leftmost longest match first: Teddy
//! (aho-corasick's vectorised searcher, SSSE3/AVX2 or NEON) whenever it can
//! be built, else an Aho-Corasick automaton.
//!
//! The automaton would choose a prefilter on its own, but for a set of
//! strings that all start with one of few bytes (the case variants of a
//! word) it picks a search for those bytes, which in JSON are everywhere:
//! ten times slower than Teddy on audit events.

use aho_corasick::packed::{self, Searcher};
use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, Match, MatchKind, Span};

/// Strings found together, leftmost longest first.
#[derive(Debug, Clone)]
pub(super) enum Strings {
    Teddy(Searcher),
    Automaton(AhoCorasick),
}

impl Strings {
    /// `None` when no search can be built for `patterns`.
    pub(super) fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Option<Self> {
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
    pub(super) fn find(&self, hay: &[u8], at: usize) -> Option<Match> {
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
        let automaton = Strings::Automaton(
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(patterns)
                .expect("builds"),
        );
        let hay = b"x secrets ANONy anonymous";
        for s in [&teddy, &automaton] {
            let found: Vec<(usize, usize)> =
                std::iter::successors(s.find(hay, 0), |m| s.find(hay, m.end()))
                    .map(|m| (m.pattern().as_usize(), m.start()))
                    .collect();
            assert_eq!(found, vec![(2, 2), (3, 10), (1, 16)]);
            assert!(s.find(hay, hay.len()).is_none());
            assert!(s.find(b"", 0).is_none());
        }
    }
}
