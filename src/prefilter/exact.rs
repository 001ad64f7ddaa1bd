//! The exact strings of the built-in rules: every rule's groups of strings
//! that must appear together, their primaries found in one pass, and the
//! first source address of a message read where a group needs a global one.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use memchr::memmem::Finder;

/// The exact strings of every enabled rule, in groups of strings that must
/// appear together. One string of each group, its rarest, is its primary:
/// the primaries of all groups are found in one pass; a group's other
/// strings are looked for only in a message holding its primary. Groups
/// that also need a first source address that may be global are searched
/// only in messages that have one (most traffic comes from the VPC).
#[derive(Debug, Clone)]
pub(super) struct Exact {
    plain: Option<Groups>,
    global: Option<Groups>,
    finder_sources: Finder<'static>,
}

/// Groups searched together.
#[derive(Debug, Clone)]
struct Groups {
    automaton: AhoCorasick,
    /// For each primary, the set of primaries it contains (itself too).
    implied: Vec<u128>,
    groups: Vec<Group>,
}

/// One group of strings that must all appear.
#[derive(Debug, Clone)]
struct Group {
    /// Its primary, as a pattern id of the automaton.
    primary: usize,
    /// Its other strings.
    rest: Vec<Finder<'static>>,
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
    pub(super) fn new(groups: &[(Vec<&'static str>, bool)]) -> Option<Self> {
        let of = |global: bool| -> Option<Option<Groups>> {
            let mine: Vec<&Vec<&'static str>> = groups
                .iter()
                .filter(|(_, g)| *g == global)
                .map(|(list, _)| list)
                .collect();
            if mine.is_empty() {
                return Some(None);
            }
            Groups::new(&mine).map(Some)
        };
        Some(Self {
            plain: of(false)?,
            global: of(true)?,
            finder_sources: Finder::new(b"sourceIPs").into_owned(),
        })
    }

    /// True when every string of some group is in `msg` (and, for a group
    /// that needs one, `msg` may have a global first source address).
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

impl Groups {
    fn new(groups: &[&Vec<&'static str>]) -> Option<Self> {
        let mut primaries: Vec<&'static str> = Vec::new();
        let mut out: Vec<Group> = Vec::with_capacity(groups.len());
        let mut seen: Vec<Vec<&'static str>> = Vec::new();
        for group in groups {
            if group.is_empty() || group.iter().any(|s| s.is_empty()) {
                return None;
            }
            let mut sorted = (*group).clone();
            sorted.sort_unstable();
            sorted.dedup();
            if seen.contains(&sorted) {
                continue;
            }
            seen.push(sorted.clone());
            let primary = *sorted.iter().min_by_key(|s| commonness(s))?;
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
            });
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&primaries)
            .ok()?;
        // The search reports one match per position, the longest: a
        // primary found also finds every primary inside it.
        let implied = primaries
            .iter()
            .map(|p| {
                primaries
                    .iter()
                    .enumerate()
                    .filter(|(_, q)| p.contains(**q))
                    .fold(0u128, |set, (i, _)| set | 1u128 << i)
            })
            .collect();
        Some(Self {
            automaton,
            implied,
            groups: out,
        })
    }

    /// True when every string of some group is in `msg`.
    fn found_in(&self, msg: &[u8]) -> bool {
        let mut found = 0u128;
        for m in self.automaton.find_iter(msg) {
            let new = self.implied[m.pattern().as_usize()] & !found;
            if new == 0 {
                continue;
            }
            found |= new;
            if self.groups.iter().any(|g| {
                new & (1u128 << g.primary) != 0 && g.rest.iter().all(|f| f.find(msg).is_some())
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
