//! The prefilter of Sigma rules' clauses (see [`crate::sigma::literals`]):
//! which Sigma rules a message may match, found in one pass.

use std::cell::RefCell;

use memchr::memmem::Finder;

use super::search::{window, Strings};
use crate::rules::Needle;

/// The Sigma rules whose clauses a message satisfies, by the key of their
/// anchor: a rule not in it cannot match the message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SigmaHits(pub Vec<usize>);

impl SigmaHits {
    /// A rule's key: where its clauses live (each rule's are its own).
    pub fn key(clauses: &'static [&'static [Needle]]) -> usize {
        clauses.as_ptr() as usize
    }

    /// Whether the rule whose anchor is `clauses` may match.
    pub fn has(&self, clauses: &'static [&'static [Needle]]) -> bool {
        self.0.contains(&Self::key(clauses))
    }
}

/// Needles this long or longer are found by the one search for many.
const SEARCHED: usize = 4;

/// Most distinct strings of Sigma rules the prefilter tracks; beyond it
/// every line is a candidate.
const MAX_FOLDED: usize = 256;

/// The clauses of the enabled Sigma rules. Each rule's most selective
/// clause (its first) is its primary: the primaries' strings of every rule
/// are found in one pass, each searched from its four bytes least common
/// in audit events (see [`window`]) and compared whole where those are
/// found; a rule's other clauses are looked for only in a message that
/// holds its primary. The message is searched lower-cased (the strings are
/// lower-case): the same as an ASCII case-insensitive search, and keeps
/// the vectorised searcher.
#[derive(Debug, Clone)]
pub(super) struct Folded {
    strings: Option<Strings>,
    needles: Vec<Needle>,
    /// For each pattern of the search, the needles whose window is a
    /// prefix of it (its own too), each with its window's offset in the
    /// needle: the search reports the longest pattern starting at a
    /// position, and a needle is there when it is whole that far before.
    prefixes: Vec<Vec<(usize, usize)>>,
    /// The needles shorter than [`SEARCHED`] bytes, each found on its own:
    /// in the search they would make it compare fewer bytes a step, and
    /// report many more places to check. Those without a letter (SigmaHQ's
    /// `401` and `403`) are the same in any case: the prefilter's pass for
    /// short strings finds them instead (see [`Folded::caseless`]).
    short: Vec<(usize, Finder<'static>)>,
    /// Each rule's clauses.
    rules: Vec<FoldedRule>,
    /// Each rule's key ([`SigmaHits::key`] of its anchor).
    keys: Vec<usize>,
}

/// One rule's clauses: its primary as pattern ids, the rest as searches.
#[derive(Debug, Clone)]
struct FoldedRule {
    primary: Vec<usize>,
    rest: Vec<Vec<(Finder<'static>, bool)>>,
}

impl Folded {
    /// `None` when the strings cannot be tracked (too many, or an empty
    /// one, which would match anything).
    pub(super) fn new(rules: &[&'static [&'static [Needle]]]) -> Option<Self> {
        let mut needles: Vec<Needle> = Vec::new();
        let mut folded = Vec::with_capacity(rules.len());
        for clauses in rules {
            let mut primary = Vec::new();
            if let Some(first) = clauses.first() {
                for n in *first {
                    if n.text.is_empty() {
                        return None;
                    }
                    let id = match needles.iter().position(|m| m == n) {
                        Some(id) => id,
                        None => {
                            needles.push(*n);
                            needles.len() - 1
                        }
                    };
                    primary.push(id);
                }
            }
            let mut rest = Vec::new();
            for clause in clauses.iter().skip(1) {
                if clause.iter().any(|n| n.text.is_empty()) {
                    return None;
                }
                rest.push(
                    clause
                        .iter()
                        .map(|n| {
                            let lower = n.text.to_ascii_lowercase().into_bytes();
                            (Finder::new(&lower).into_owned(), n.number)
                        })
                        .collect(),
                );
            }
            // A rule without clauses would be `Always`, never `Folded`; an
            // empty first clause is one nothing satisfies.
            if clauses.is_empty() {
                return None;
            }
            folded.push(FoldedRule { primary, rest });
        }
        if needles.len() > MAX_FOLDED {
            return None;
        }
        let lower: Vec<String> = needles
            .iter()
            .map(|n| n.text.to_ascii_lowercase())
            .collect();
        let (long, short): (Vec<usize>, Vec<usize>) =
            (0..needles.len()).partition(|q| lower[*q].len() >= SEARCHED);
        // Each long needle's window (a number's digits are its own: they
        // are compared where they stand), and the distinct windows searched.
        let at: Vec<usize> = (0..needles.len())
            .map(|q| {
                if needles[q].number {
                    0
                } else {
                    window(&lower[q])
                }
            })
            .collect();
        let mut searched: Vec<&str> = long.iter().map(|q| &lower[*q][at[*q]..]).collect();
        searched.sort_unstable();
        searched.dedup();
        let strings = if searched.is_empty() {
            None
        } else {
            Some(Strings::new(&searched)?)
        };
        let prefixes = searched
            .iter()
            .map(|p| {
                long.iter()
                    .copied()
                    .filter(|q| p.starts_with(&lower[*q][at[*q]..]))
                    .map(|q| (q, at[q]))
                    .collect()
            })
            .collect();
        let short = short
            .into_iter()
            .filter(|q| !caseless(&lower[*q]))
            .map(|q| (q, Finder::new(lower[q].as_bytes()).into_owned()))
            .collect();
        Some(Self {
            strings,
            needles,
            prefixes,
            short,
            rules: folded,
            keys: rules.iter().map(|r| SigmaHits::key(r)).collect(),
        })
    }

    /// The short strings without a letter (of two bytes or more), by id,
    /// each with whether it is a number: the caller finds them, in the
    /// message as it stands.
    pub(super) fn caseless(&self) -> Vec<(usize, String, bool)> {
        self.needles
            .iter()
            .enumerate()
            .filter(|(_, n)| n.text.len() < SEARCHED && caseless(n.text))
            .map(|(q, n)| (q, n.text.to_owned(), n.number))
            .collect()
    }

    /// The rules (by key, see [`SigmaHits`]) every clause of which has a
    /// string in `msg`, given which of the [`caseless`](Self::caseless)
    /// strings it holds (a bit each, by id).
    pub(super) fn rules_found_in(&self, msg: &[u8], caseless: [u64; 4]) -> Vec<usize> {
        // One lower-cased copy per thread, reused: no allocation per message.
        thread_local! {
            static LOWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        LOWER.with_borrow_mut(|lower| {
            lower.clear();
            lower.extend(msg.iter().map(u8::to_ascii_lowercase));
            self.found_in_lower(lower, caseless)
        })
    }

    fn found_in_lower(&self, msg: &[u8], caseless: [u64; 4]) -> Vec<usize> {
        // Which strings were seen, a bit each (at most MAX_FOLDED).
        let mut found: [u64; MAX_FOLDED / 64] = caseless;
        let seen = |found: &[u64; MAX_FOLDED / 64], q: usize| found[q / 64] & (1 << (q % 64)) != 0;
        for m in self.strings.iter().flat_map(|s| s.matches(msg)) {
            for &(q, at) in &self.prefixes[m.pattern().as_usize()] {
                let n = &self.needles[q];
                if seen(&found, q) {
                    continue;
                }
                let Some(start) = m.start().checked_sub(at) else {
                    continue;
                };
                let whole = at == 0
                    || msg
                        .get(start..start + n.text.len())
                        .is_some_and(|here| here.eq_ignore_ascii_case(n.text.as_bytes()));
                if whole && (!n.number || stands_alone(msg, start, n.text.len())) {
                    found[q / 64] |= 1 << (q % 64);
                }
            }
        }
        for (q, finder) in &self.short {
            let n = &self.needles[*q];
            if finder
                .find_iter(msg)
                .any(|at| !n.number || stands_alone(msg, at, n.text.len()))
            {
                found[q / 64] |= 1 << (q % 64);
            }
        }
        if found == [0; MAX_FOLDED / 64] {
            return Vec::new();
        }
        self.rules
            .iter()
            .zip(&self.keys)
            .filter(|(r, _)| {
                r.primary.iter().any(|q| seen(&found, *q))
                    && r.rest.iter().all(|clause| {
                        clause.iter().any(|(finder, number)| {
                            let len = finder.needle().len();
                            if *number {
                                finder.find_iter(msg).any(|at| stands_alone(msg, at, len))
                            } else {
                                finder.find(msg).is_some()
                            }
                        })
                    })
            })
            .map(|(_, k)| *k)
            .collect()
    }
}

/// True for a short string the caller finds (see [`Folded::caseless`]):
/// two bytes or more (the pass for short strings compares at least two a
/// step), none of them a letter.
fn caseless(text: &str) -> bool {
    text.len() >= 2 && !text.bytes().any(|b| b.is_ascii_alphabetic())
}

/// True when the digits at `start..start + len` are a number of their own:
/// no digit right before or after, no `.` right before.
pub(super) fn stands_alone(msg: &[u8], start: usize, len: usize) -> bool {
    let before = start.checked_sub(1).and_then(|i| msg.get(i));
    let after = msg.get(start + len);
    !matches!(before, Some(b'0'..=b'9' | b'.')) && !matches!(after, Some(b'0'..=b'9'))
}
