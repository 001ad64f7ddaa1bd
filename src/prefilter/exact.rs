//! The exact strings of the built-in rules: every rule's groups of strings
//! that must appear together, their primaries found in one pass with the
//! words rules need in any case, and the first source address of a message
//! read where a group needs a global one.

use memchr::memmem::Finder;

use super::principal::user_may_be_person;
use super::search::{window, Strings};

/// The exact strings of every enabled rule, in groups of strings that must
/// appear together. One string of each group, its rarest, holds its
/// primary: the string's end from its four bytes least common in audit
/// events (see [`window`]). The primaries of all groups are found in one
/// pass; a group's strings are looked for only in a message holding its
/// primary. Groups
/// that also need a first source address that may be global are searched
/// only in messages that have one (most traffic comes from the VPC).
#[derive(Debug, Clone)]
pub(super) struct Exact {
    plain: Option<Groups>,
    global: Option<Groups>,
    finder_sources: Finder<'static>,
}

/// Groups searched together, and words found in any case.
#[derive(Debug, Clone)]
struct Groups {
    strings: Strings,
    /// What a match of each pattern shows (primaries first, then the case
    /// variants of the words' first letters).
    patterns: Vec<Pattern>,
    groups: Vec<Group>,
    /// The words, lower-cased.
    words: Vec<Vec<u8>>,
}

/// What a match of one pattern shows.
#[derive(Debug, Clone)]
struct Pattern {
    /// The primaries it contains (itself too, for a primary): the search
    /// reports one match per position, the longest.
    implied: u128,
    /// It holds a word in some case: the message holds that word.
    has_word: bool,
    /// The words one of whose variants starts it, each with its window's
    /// offset in the word: the word may start that far before the match.
    starts_words: Vec<(usize, usize)>,
}

/// One group of strings that must all appear.
#[derive(Debug, Clone)]
struct Group {
    /// Its primary, as a pattern id of the search.
    primary: usize,
    /// Its strings other than the primary (the one the primary is part
    /// of too, unless they are equal).
    rest: Vec<Finder<'static>>,
    /// It also needs a user that may be a person.
    person: bool,
}

/// What a group needs besides its strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Needs {
    /// Nothing.
    Strings,
    /// A first source address that may be global.
    GlobalSource,
    /// A user that may be a person (see
    /// [`super::principal::user_may_be_person`]).
    Person,
}

/// Most distinct primaries the prefilter tracks; beyond it every line is a
/// candidate (no rule set comes near).
const MAX_EXACT_PATTERNS: usize = 128;

/// Anchor strings by how often they appear in audit events, most common
/// first (measured on the bench generator's `metadata` and `mixed`
/// corpora: `system:` is in every event, `serviceaccounts` in half of them
/// as the group `system:serviceaccounts`, ...): a group's primary is its
/// string furthest down this list, or one not in it.
const COMMON: [&str; 22] = [
    "system:",
    "ResponseComplete",
    "serviceaccounts",
    "system:serviceaccount:",
    "kube-system",
    "nodes",
    "system:node:",
    "watch",
    "update",
    "pods",
    "get",
    "kube-node-lease",
    "list",
    "patch",
    "create",
    "secrets",
    "sets",
    "jobs",
    "template",
    "deployments",
    "securityContext",
    "capabilities",
];

/// How common `s` is: lower is rarer (a string not listed is rarest, the
/// longer the rarer).
fn commonness(s: &str) -> (usize, std::cmp::Reverse<usize>) {
    let rank = COMMON
        .iter()
        .position(|c| *c == s)
        .map_or(0, |i| COMMON.len() - i);
    (rank, std::cmp::Reverse(s.len()))
}

impl Exact {
    /// `None` when the groups cannot be tracked (too many strings, or an
    /// empty group or string, which would match anything).
    /// `words` (each [`WORD_HEAD`] bytes or longer) are found in any case,
    /// in the same pass.
    pub(super) fn new(
        groups: &[(Vec<&'static str>, Needs)],
        words: &[&'static str],
    ) -> Option<Self> {
        let of = |global: bool| -> Option<Option<Groups>> {
            let mine: Vec<(&Vec<&'static str>, bool)> = groups
                .iter()
                .filter(|(_, needs)| (*needs == Needs::GlobalSource) == global)
                .map(|(list, needs)| (list, *needs == Needs::Person))
                .collect();
            let words = if global { &[][..] } else { words };
            if mine.is_empty() && words.is_empty() {
                return Some(None);
            }
            Groups::new(&mine, words).map(Some)
        };
        Some(Self {
            plain: of(false)?,
            global: of(true)?,
            finder_sources: Finder::new(b"sourceIPs").into_owned(),
        })
    }

    /// True when every string of some group is in `msg` (and, for a group
    /// that needs one, `msg` may have a global first source address, or a
    /// user that may be a person), or one of the words in any case.
    pub(super) fn found_in(&self, msg: &[u8]) -> bool {
        if self.plain.as_ref().is_some_and(|g| g.found_in(msg)) {
            return true;
        }
        self.global
            .as_ref()
            .is_some_and(|g| self.first_source_may_be_global(msg) && g.found_in(msg))
    }

    /// False only when every `sourceIPs` member of `msg` starts with an
    /// address literal that is not global (or there is none): then no
    /// request in it came from a public address.
    fn first_source_may_be_global(&self, msg: &[u8]) -> bool {
        self.finder_sources
            .find_iter(msg)
            .any(|at| first_address_may_be_global(&msg[at + b"sourceIPs".len()..]))
    }
}

/// Bytes of a word whose case variants are searched: at most 2^4 patterns.
pub(super) const WORD_HEAD: usize = 4;

/// Where in `word` the [`WORD_HEAD`] bytes searched for start: the window
/// with the fewest letters (a `:` has one case, a letter two), so the
/// fewest case variants; of those the last, away from a prefix every audit
/// event is full of (`:ano` in `system:anonymous`, not `tem:`).
fn window_at(word: &[u8]) -> usize {
    let len = WORD_HEAD.min(word.len());
    (0..=word.len() - len)
        .min_by_key(|at| {
            let letters = word[*at..*at + len]
                .iter()
                .filter(|b| b.is_ascii_alphabetic())
                .count();
            (letters, std::cmp::Reverse(*at))
        })
        .unwrap_or(0)
}

/// The case variants of `word`'s window (see [`window_at`]).
fn variants(word: &[u8]) -> Vec<Vec<u8>> {
    let at = window_at(word);
    let head = &word[at..at + WORD_HEAD.min(word.len())];
    let mut out: Vec<Vec<u8>> = vec![Vec::new()];
    for b in head {
        let cases = [b.to_ascii_lowercase(), b.to_ascii_uppercase()];
        let cases = if cases[0] == cases[1] {
            &cases[..1]
        } else {
            &cases[..]
        };
        out = out
            .iter()
            .flat_map(|v| {
                cases.iter().map(move |c| {
                    let mut v = v.clone();
                    v.push(*c);
                    v
                })
            })
            .collect();
    }
    out
}

/// True when `needle` is in `hay`, ASCII case-insensitively.
fn contains_folded(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

impl Groups {
    /// `groups`: each group's strings, and whether it needs a user that
    /// may be a person.
    fn new(groups: &[(&Vec<&'static str>, bool)], words: &[&'static str]) -> Option<Self> {
        let mut primaries: Vec<&'static str> = Vec::new();
        let mut out: Vec<Group> = Vec::with_capacity(groups.len());
        let mut seen: Vec<(Vec<&'static str>, bool)> = Vec::new();
        for (group, person) in groups {
            if group.is_empty() || group.iter().any(|s| s.is_empty()) {
                return None;
            }
            let mut sorted = (*group).clone();
            sorted.sort_unstable();
            sorted.dedup();
            let key = (sorted.clone(), *person);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            // The rarest string, searched from its least common bytes.
            let whole = *sorted.iter().min_by_key(|s| commonness(s))?;
            let primary = &whole[window(whole)..];
            let id = match primaries.iter().position(|p| *p == primary) {
                Some(id) => id,
                None => {
                    primaries.push(primary);
                    primaries.len() - 1
                }
            };
            if id >= MAX_EXACT_PATTERNS {
                return None;
            }
            out.push(Group {
                primary: id,
                rest: sorted
                    .iter()
                    .filter(|s| **s != primary)
                    .map(|s| Finder::new(s.as_bytes()).into_owned())
                    .collect(),
                person: *person,
            });
        }
        let mut words: Vec<Vec<u8>> = words
            .iter()
            .map(|w| w.to_ascii_lowercase().into_bytes())
            .collect();
        // Several rules may need one word: its variants are searched once.
        words.sort_unstable();
        words.dedup();
        if words.iter().any(Vec::is_empty) {
            return None;
        }
        let mut texts: Vec<Vec<u8>> = primaries.iter().map(|p| p.as_bytes().to_vec()).collect();
        for w in &words {
            texts.extend(variants(w));
        }
        let strings = Strings::new(&texts)?;
        let patterns = texts
            .iter()
            .map(|t| Pattern {
                implied: primaries
                    .iter()
                    .enumerate()
                    .filter(|(_, q)| memchr::memmem::find(t, q.as_bytes()).is_some())
                    .fold(0u128, |set, (i, _)| set | 1u128 << i),
                has_word: words.iter().any(|w| contains_folded(t, w)),
                starts_words: words
                    .iter()
                    .enumerate()
                    .filter_map(|(i, w)| {
                        let at = window_at(w);
                        let head = &w[at..at + WORD_HEAD.min(w.len())];
                        t.get(..head.len())
                            .is_some_and(|h| h.eq_ignore_ascii_case(head))
                            .then_some((i, at))
                    })
                    .collect(),
            })
            .collect();
        Some(Self {
            strings,
            patterns,
            groups: out,
            words,
        })
    }

    /// True when every string of some group, or some word in any case, is
    /// in `msg`.
    fn found_in(&self, msg: &[u8]) -> bool {
        let mut found = 0u128;
        // Read once, the first time a group that needs it is complete.
        let person = std::cell::OnceCell::new();
        for m in self.strings.matches(msg) {
            let pattern = &self.patterns[m.pattern().as_usize()];
            if pattern.has_word
                || pattern.starts_words.iter().any(|(w, at)| {
                    let word = &self.words[*w];
                    m.start()
                        .checked_sub(*at)
                        .and_then(|start| msg.get(start..start + word.len()))
                        .is_some_and(|here| here.eq_ignore_ascii_case(word))
                })
            {
                return true;
            }
            let new = pattern.implied & !found;
            if new == 0 {
                continue;
            }
            found |= new;
            if self.groups.iter().any(|g| {
                new & (1u128 << g.primary) != 0
                    && g.rest.iter().all(|f| f.find(msg).is_some())
                    && (!g.person || *person.get_or_init(|| user_may_be_person(msg)))
            }) {
                return true;
            }
        }
        false
    }
}

/// Reads `":["10.0.0.1",...` (possibly escaped once more: `\":[\"10...`)
/// after a `sourceIPs` member name: false only for a well-formed first
/// address that is not global.
pub(super) fn first_address_may_be_global(rest: &[u8]) -> bool {
    let mut i = 0;
    // The closing quote of the name, the colon, the bracket and the opening
    // quote of the first string, with whatever whitespace or escaping.
    let mut seen_bracket = false;
    while let Some(&b) = rest.get(i) {
        match b {
            b'"' | b'\\' | b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            // The member's colon, before the list only: after it a colon
            // belongs to an IPv6 address.
            b':' if !seen_bracket => i += 1,
            b'[' if !seen_bracket => {
                seen_bracket = true;
                i += 1;
            }
            _ => break,
        }
        if i > 32 {
            return true;
        }
    }
    if !seen_bracket {
        return true;
    }
    let start = i;
    while rest
        .get(i)
        .is_some_and(|b| b.is_ascii_hexdigit() || *b == b'.' || *b == b':')
    {
        i += 1;
        if i - start > 45 {
            return true;
        }
    }
    // The address must end at its closing quote (escaped or not).
    if !matches!(rest.get(i), Some(b'"' | b'\\')) {
        return true;
    }
    match std::str::from_utf8(&rest[start..i])
        .ok()
        .and_then(crate::net::parse_ip)
    {
        Some(ip) => crate::net::is_global(ip),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(groups: &[&[&'static str]], words: &[&'static str]) -> Exact {
        let groups: Vec<(Vec<&'static str>, Needs)> = groups
            .iter()
            .map(|g| (g.to_vec(), Needs::Strings))
            .collect();
        Exact::new(&groups, words).expect("tracked")
    }

    #[test]
    fn a_word_is_found_in_any_case_beside_exact_strings() {
        let e = exact(&[&["secrets", "get"]], &["anonymous"]);
        for hit in [
            &br#"{"u":"system:anonymous"}"#[..],
            br#"{"u":"SYSTEM:ANONYMOUS"}"#,
            br#"{"u":"aNoNyMoUs"}"#,
            br#"{"r":"secrets","v":"get"}"#,
        ] {
            assert!(e.found_in(hit), "{}", String::from_utf8_lossy(hit));
        }
        for miss in [
            &br#"{"u":"anonym0us","r":"secrets"}"#[..],
            br#"{"u":"anon"}"#,
            br#"{"u":"system:anonymou"}"#,
            b"",
        ] {
            assert!(!e.found_in(miss), "{}", String::from_utf8_lossy(miss));
        }
    }

    #[test]
    fn a_word_several_rules_need_is_searched_once() {
        let e = exact(&[], &["anonymous", "ANONYMOUS", "anonymous"]);
        let plain = e.plain.as_ref().expect("words");
        assert_eq!(plain.patterns.len(), 16);
        assert!(e.found_in(b"Anonymous"));
    }

    #[test]
    fn a_word_overlapping_another_match_is_still_found() {
        // `xan` ends where `anon...` begins: the search must look inside it.
        let e = exact(&[&["xan", "zzz"]], &["anonymous"]);
        assert!(e.found_in(b"xanonymous"));
        assert!(e.found_in(b"xANONYMOUS"));
        assert!(!e.found_in(b"xanonymou"));
        // A primary holding the word finds it (one match at that place).
        let e = exact(&[&["system:anonymous", "zzz"]], &["anonymous"]);
        assert!(e.found_in(b"\"system:anonymous\""));
        // A primary that starts like the word, longer than its variants but
        // shorter than the word: the word is still compared where it starts.
        let e = exact(&[&["anonym", "zzz"]], &["anonymous"]);
        assert!(e.found_in(b"anonymous"));
        assert!(!e.found_in(b"anonymx"));
    }

    #[test]
    fn a_word_is_searched_from_its_window_with_fewest_letters() {
        // `:ano` (three letters, eight cases), not `tem:`: every audit
        // event is full of `system:`.
        assert_eq!(window_at(b"system:anonymous"), 6);
        assert_eq!(variants(b"system:anonymous").len(), 8);
        assert_eq!(window_at(b"anonymous"), 5);
        let e = exact(&[&["secrets", "get"]], &["system:anonymous"]);
        for hit in [
            &br#"{"u":"system:anonymous"}"#[..],
            br#"{"u":"SYSTEM:ANONYMOUS"}"#,
            br#"{"u":"System:AnOnYmOuS"}"#,
            // the window's own match found inside another one's
            br#"system:system:anonymous"#,
        ] {
            assert!(e.found_in(hit), "{}", String::from_utf8_lossy(hit));
        }
        for miss in [
            // the window at the very start: the word cannot begin before it
            &br#":anonymous"#[..],
            br#"{"u":"system:anonymou","g":"system:unauthenticated"}"#,
            br#"{"u":"anonymous"}"#,
            br#"{"u":"system-anonymous"}"#,
        ] {
            assert!(!e.found_in(miss), "{}", String::from_utf8_lossy(miss));
        }
    }

    #[test]
    fn exact_strings_overlapping_each_other_are_all_found() {
        // `roles` ends with the `s` `secrets` starts with.
        let e = exact(&[&["roles", "zzz"], &["secrets", "get"]], &[]);
        assert!(e.found_in(b"rolesecrets get"));
        assert!(!e.found_in(b"rolesecrets"));
    }

    #[test]
    fn a_string_searched_from_its_rare_end_is_found_only_whole() {
        // `kube-public` is searched from `be-public`: `kube` is in every event
        let e = exact(&[&["kube-public", "create"]], &[]);
        assert!(e.found_in(b"create kube-public"));
        assert!(e.found_in(b"kube-public\"create"));
        assert!(!e.found_in(b"create tube-public"));
        assert!(!e.found_in(b"create be-public"));
        assert!(!e.found_in(b"kube-public"));
    }
}
