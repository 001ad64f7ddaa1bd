//! A byte-level test that rules out most messages before they are parsed.
//!
//! It is conservative by construction: it may only say "cannot match" for a
//! message whose JSON cannot satisfy any enabled rule, whatever its key order
//! or whitespace. It works on the message as it stands inside the envelope
//! (still JSON-escaped once more) as well as on the plain message, because
//! both anchors survive escaping:
//!
//! Each rule declares its anchor ([`crate::rules::Anchor`]):
//!
//! - Multiple403 needs `responseStatus.code == 403` as a JSON integer, and
//!   JSON numbers cannot be escaped: the digits `403` must appear as an
//!   object member's value, i.e. after a `:` and optional whitespace, and not
//!   followed by another digit, `.` or an exponent. (Random digits in large
//!   request bodies therefore do not make a message a candidate.)
//! - PodScan needs `user.username` equal to `system:anonymous` (ASCII
//!   case-insensitively), so the letters `anonymous` must appear in some case.
//!   AwsAuthChanged needs `objectRef.name == "aws-auth"` (compared exactly)
//!   and Impersonation an `impersonatedUser` member, so those exact bytes
//!   must appear. The catalog's rules name the values they compare exactly
//!   (`pods` and `create`, `secrets`, ...), in groups that must all appear.
//!   Every exact string of every enabled rule is looked for in one pass (an
//!   Aho-Corasick automaton, vectorised for small sets), whatever the
//!   number of rules.
//! - A rule that needs every event says so, and then nothing is skipped.
//!
//! The one way around them is a `\u00XX` escape of a digit, a letter, a
//! hyphen or whitespace, which kube-apiserver never writes (it escapes only
//! `<`, `>`, `&` and control characters). A message containing such an
//! escape is always a candidate.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use memchr::memmem::Finder;

mod folded;

use folded::Folded;
pub use folded::SigmaHits;

use crate::rules::{Anchor, Detector, Needle};

/// The compiled prefilter for a set of enabled rules.
#[derive(Debug, Clone)]
pub struct Prefilter {
    always: bool,
    want_403: bool,
    words: Vec<Word>,
    exact: Option<Exact>,
    /// Sigma rules' clauses, their strings found in any case (one
    /// automaton for all).
    folded: Option<Folded>,
    finder_escape: Finder<'static>,
}

/// The exact strings of every enabled rule, in groups of strings that must
/// appear together, and the other strings the prefilter looks for (a
/// `403`, `sourceIPs`, a `\u00` escape), all found in one pass. One string
/// of each group, its rarest, is its primary: a group's other strings are
/// looked for only in a message holding its primary. A group that also
/// needs a first source address that may be global counts only in a
/// message with such a `sourceIPs` (most traffic comes from the VPC).
#[derive(Debug, Clone)]
struct Exact {
    automaton: AhoCorasick,
    /// For each pattern, the set of primaries it contains (itself too).
    implied: Vec<u128>,
    groups: Vec<Group>,
    /// The pattern id of `403`, when a rule needs the number.
    code_403: Option<usize>,
    /// The pattern id of `sourceIPs`, when a group needs a global source.
    sources: Option<usize>,
    /// The pattern id of `\u00`.
    escape: usize,
}

/// One group of strings that must all appear.
#[derive(Debug, Clone)]
struct Group {
    /// Its primary, as a pattern id of the automaton.
    primary: usize,
    /// Its other strings.
    rest: Vec<Finder<'static>>,
    /// Whether it also needs a first source address that may be global.
    global: bool,
}

/// What one pass of [`Exact`] found.
struct Pass {
    /// A group, or the number 403 as a member's value.
    matched: bool,
    /// An escaped letter or digit (looked for only when nothing matched).
    alnum_escape: bool,
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
    /// `None` when the strings cannot be tracked (too many, an empty group
    /// or string, which would match anything, or a primary overlapping the
    /// other strings, which one pass could then miss).
    fn new(groups: &[(Vec<&'static str>, bool)], want_403: bool) -> Option<Self> {
        let mut patterns: Vec<&'static str> = Vec::new();
        let mut out: Vec<Group> = Vec::with_capacity(groups.len());
        let mut seen: Vec<(Vec<&'static str>, bool)> = Vec::new();
        for (group, global) in groups {
            if group.is_empty() || group.iter().any(|s| s.is_empty()) {
                return None;
            }
            let mut sorted = group.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if seen.contains(&(sorted.clone(), *global)) {
                continue;
            }
            seen.push((sorted.clone(), *global));
            let primary = *sorted.iter().min_by_key(|s| commonness(s))?;
            let id = match patterns.iter().position(|p| *p == primary) {
                Some(id) => id,
                None => {
                    patterns.push(primary);
                    patterns.len() - 1
                }
            };
            out.push(Group {
                primary: id,
                rest: sorted
                    .iter()
                    .filter(|s| **s != primary)
                    .map(|s| Finder::new(s.as_bytes()).into_owned())
                    .collect(),
                global: *global,
            });
        }
        let primaries = patterns.len();
        let mut extra = |text: &'static str| {
            patterns.push(text);
            patterns.len() - 1
        };
        let code_403 = want_403.then(|| extra("403"));
        let sources = out.iter().any(|g| g.global).then(|| extra("sourceIPs"));
        let escape = extra("\\u00");
        if patterns.len() > MAX_EXACT_PATTERNS {
            return None;
        }
        // `sourceIPs` counts where it is a member name, between quotes: a
        // primary without quotes can overlap it there only by holding it.
        let clash = |p: &str, e: &str| {
            if e == "sourceIPs" {
                p.contains(e) || e.contains(p) || p.contains(['"', '\\'])
            } else {
                overlap(p, e)
            }
        };
        if patterns[..primaries]
            .iter()
            .any(|p| patterns[primaries..].iter().any(|e| clash(p, e)))
        {
            return None;
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .ok()?;
        // The search reports one match per position, the longest: a
        // primary found also finds every primary inside it.
        let implied = patterns
            .iter()
            .map(|p| {
                patterns[..primaries]
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
            code_403,
            sources,
            escape,
        })
    }

    /// One pass over `msg`: whether a group is in it (a global one only
    /// with a `sourceIPs` whose first address may be global) or a 403 is
    /// a member's value; when neither, whether a letter or digit is
    /// escaped.
    fn scan(&self, msg: &[u8]) -> Pass {
        let mut found = 0u128;
        let mut global_source = false;
        // A global group whose strings are all here, waiting for a source.
        let mut waiting = false;
        let mut alnum_escape = false;
        for m in self.automaton.find_iter(msg) {
            let p = m.pattern().as_usize();
            if Some(p) == self.code_403 {
                if is_member_value(msg, m.start()) {
                    return Pass {
                        matched: true,
                        alnum_escape,
                    };
                }
                continue;
            }
            if Some(p) == self.sources {
                if !global_source && first_address_may_be_global(&msg[m.end()..]) {
                    global_source = true;
                    if waiting {
                        return Pass {
                            matched: true,
                            alnum_escape,
                        };
                    }
                }
                continue;
            }
            if p == self.escape {
                alnum_escape = alnum_escape || escapes_alnum(msg, m.start());
                continue;
            }
            let new = self.implied[p] & !found;
            if new == 0 {
                continue;
            }
            found |= new;
            for g in &self.groups {
                if new & (1u128 << g.primary) == 0 || !g.rest.iter().all(|f| f.find(msg).is_some())
                {
                    continue;
                }
                if !g.global || global_source {
                    return Pass {
                        matched: true,
                        alnum_escape,
                    };
                }
                waiting = true;
            }
        }
        Pass {
            matched: false,
            alnum_escape,
        }
    }
}

/// True when one of `a` and `b` contains the other, or ends where the
/// other begins: a one-pass search that reports one of them can then miss
/// the other.
fn overlap(a: &str, b: &str) -> bool {
    let ends_into = |x: &str, y: &str| (1..x.len()).any(|k| y.starts_with(&x[k..]));
    a.contains(b) || b.contains(a) || ends_into(a, b) || ends_into(b, a)
}

/// Reads `":["10.0.0.1",...` (possibly escaped once more: `\":[\"10...`)
/// after a `sourceIPs` member name: false only for a well-formed first
/// address that is not global.
fn first_address_may_be_global(rest: &[u8]) -> bool {
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

/// What the prefilter says of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// False only when no enabled rule can match it.
    pub keep: bool,
    /// The Sigma rules it may match; `None`: any of them.
    pub sigma: Option<SigmaHits>,
}

impl Candidate {
    /// Every rule may match it.
    fn unknown() -> Self {
        Self {
            keep: true,
            sigma: None,
        }
    }
}

/// Letters to find in any case, searched from their rarest letter.
#[derive(Debug, Clone)]
struct Word {
    lower: Vec<u8>,
    at: usize,
}

impl Word {
    fn new(word: &str) -> Self {
        // Letters from rarest to most common in English-ish text and JSON.
        const RARITY: &[u8] = b"zqxjkvbpygfwmucldrhsnioate";
        let lower = word.to_ascii_lowercase().into_bytes();
        // Anything else (the hyphen of `aws-auth`) is everywhere in JSON:
        // never the anchor.
        let rank = |b: &u8| RARITY.iter().position(|r| r == b).unwrap_or(RARITY.len());
        let at = (0..lower.len())
            .min_by_key(|i| rank(&lower[*i]))
            .unwrap_or(0);
        Self { lower, at }
    }

    /// ASCII case-insensitive search, anchored on the rarest letter.
    fn found_in(&self, msg: &[u8]) -> bool {
        let Some(&anchor) = self.lower.get(self.at) else {
            return true;
        };
        memchr::memchr2_iter(anchor, anchor.to_ascii_uppercase(), msg).any(|i| {
            i >= self.at
                && msg
                    .get(i - self.at..i - self.at + self.lower.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(&self.lower))
        })
    }
}

impl Prefilter {
    /// Builds the prefilter for the detector's enabled rules.
    pub fn new(detector: &Detector) -> Self {
        let mut p = Self {
            always: false,
            want_403: false,
            words: Vec::new(),
            exact: None,
            folded: None,
            finder_escape: Finder::new(b"\\u00"),
        };
        let mut groups: Vec<(Vec<&'static str>, bool)> = Vec::new();
        let mut folded: Vec<&'static [&'static [Needle]]> = Vec::new();
        for rule in detector.rules() {
            match rule.anchor() {
                Anchor::MemberValue403 => p.want_403 = true,
                Anchor::Letters(word) => p.words.push(Word::new(word)),
                Anchor::Exact(bytes) => groups.push((vec![bytes], false)),
                Anchor::AnyOf(list) => groups.extend(list.iter().map(|g| (g.to_vec(), false))),
                Anchor::AnyOfFromGlobal(list) => {
                    groups.extend(list.iter().map(|g| (g.to_vec(), true)));
                }
                Anchor::Folded(clauses) => folded.push(clauses),
                Anchor::Always => p.always = true,
            }
        }
        if !groups.is_empty() || p.want_403 {
            match Exact::new(&groups, p.want_403) {
                Some(exact) => p.exact = Some(exact),
                None => p.always = true,
            }
        }
        if !folded.is_empty() {
            match Folded::new(&folded) {
                Some(f) => p.folded = Some(f),
                None => p.always = true,
            }
        }
        p
    }

    /// False only when no enabled rule can match `msg`.
    pub fn may_match(&self, msg: &[u8]) -> bool {
        self.candidate(msg).keep
    }

    /// Whether `msg` may match an enabled rule, and which Sigma rules it
    /// may match (see [`Candidate::sigma`]).
    pub fn candidate(&self, msg: &[u8]) -> Candidate {
        if self.always {
            return Candidate::unknown();
        }
        // Sigma rules are told which of them the message may match, so the
        // others skip it unread; this scan runs on every message.
        let sigma = self.folded.as_ref().map(|f| f.rules_found_in(msg));
        let pass = self.exact.as_ref().map(|e| e.scan(msg));
        let builtin =
            pass.as_ref().is_some_and(|p| p.matched) || self.words.iter().any(|w| w.found_in(msg));
        let any_sigma = sigma.as_ref().is_some_and(|s| !s.is_empty());
        if builtin || any_sigma {
            return Candidate {
                keep: true,
                sigma: sigma.map(SigmaHits),
            };
        }
        let anchored = self.want_403
            || !self.words.is_empty()
            || self.exact.is_some()
            || self.folded.is_some();
        // The exact strings' pass looked for escapes too.
        let escaped = match &pass {
            Some(p) => p.alnum_escape,
            None => self.has_alnum_escape(msg),
        };
        if anchored && escaped {
            // An escaped letter or digit may hide any string: every rule runs.
            return Candidate::unknown();
        }
        Candidate {
            keep: false,
            sigma: None,
        }
    }

    /// True when `msg` has a `\u00XX` escape of an ASCII digit, letter,
    /// hyphen or whitespace character.
    fn has_alnum_escape(&self, msg: &[u8]) -> bool {
        self.finder_escape
            .find_iter(msg)
            .any(|at| escapes_alnum(msg, at))
    }
}

/// True when the `\u00` at `at` escapes an ASCII digit, letter, hyphen or
/// whitespace character.
fn escapes_alnum(msg: &[u8], at: usize) -> bool {
    match (msg.get(at + 4), msg.get(at + 5)) {
        // 0x09, 0x0a, 0x0d: whitespace, which may surround a value
        (Some(b'0'), Some(d)) => matches!(d, b'9' | b'a' | b'A' | b'd' | b'D'),
        // 0x20: space; 0x2d: the hyphen of `aws-auth`
        (Some(b'2'), Some(d)) => matches!(d, b'0' | b'd' | b'D'),
        // 0x30-0x39 digits
        (Some(b'3'), Some(d)) => d.is_ascii_digit(),
        // 0x40-0x7f: letters (and some punctuation; harmless)
        (Some(b'4'..=b'7'), Some(d)) => d.is_ascii_hexdigit(),
        _ => false,
    }
}

/// True when the `403` at `at` can be a whole JSON number that is an object
/// member's value: `:` before it (whitespace, raw or escaped, allowed in
/// between) and no further digit, fraction or exponent after it.
fn is_member_value(msg: &[u8], at: usize) -> bool {
    if matches!(msg.get(at + 3), Some(b'0'..=b'9' | b'.' | b'e' | b'E')) {
        return false;
    }
    let mut i = at;
    while i > 0 {
        match msg[i - 1] {
            b':' => return true,
            b' ' | b'\t' | b'\n' | b'\r' => i -= 1,
            // `\n`, `\r`, `\t` in the envelope's escaped form
            b'n' | b'r' | b't' if i >= 2 && msg[i - 2] == b'\\' => i -= 2,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectorConfig;

    fn all() -> Prefilter {
        Prefilter::new(&Detector::new(DetectorConfig::default()))
    }

    #[test]
    fn keeps_messages_with_an_anchor() {
        let p = all();
        assert!(p.may_match(br#"{"responseStatus":{"code":403}}"#));
        assert!(p.may_match(br#"{"user":{"username":"system:anonymous"}}"#));
        assert!(p.may_match(br#"{"user":{"username":"SYSTEM:ANONYMOUS"}}"#));
        assert!(p.may_match(br#"{"user":{"username":"system:\u0061nonymous"}}"#));
        assert!(p.may_match(br#"{"code":\u0034\u00303}"#));
        assert!(p.may_match(b"{\"code\" :\n\t 403 }"));
        assert!(p.may_match(br#"{\"code\":\n403}"#));
        assert!(p.may_match(br#"{"code":\u0020403}"#));
        assert!(p.may_match(br#"{"objectRef":{"name":"aws-auth"}}"#));
        assert!(p.may_match(br#"{"objectRef":{"name":"aws\u002dauth"}}"#));
        assert!(p.may_match(br#"{"impersonatedUser":{"username":"system:admin"}}"#));
    }

    #[test]
    fn drops_messages_without_one() {
        let p = all();
        assert!(
            !p.may_match(br#"{"responseStatus":{"code":200},"requestURI":"/api?a=1\u0026b=2"}"#)
        );
        assert!(!p.may_match(b"y"));
        assert!(!p.may_match(br#"{"code":200,"image":"app:a403b","n":4030,"f":403.0,"k":[403]}"#));
        assert!(!p.may_match(b""));
        assert!(!p.may_match(br#"{"objectRef":{"name":"coredns"},"user":{"username":"u"}}"#));
    }

    #[test]
    fn every_rule_enabled_still_leaves_a_prefilter_of_one_pass() {
        // every rule of the registry, those off by default too: their
        // strings share one automaton with `403`, `sourceIPs` and `\u00`,
        // none overlapping them (else every line would be a candidate)
        let config = DetectorConfig::default();
        let every: Vec<String> = crate::rules::registry(&config)
            .iter()
            .map(|r| r.meta().id.as_str().to_owned())
            .collect();
        let p = Prefilter::new(&Detector::new(DetectorConfig {
            enabled_rules: every,
            ..config
        }));
        assert!(!p.always);
        let exact = p.exact.as_ref().expect("exact strings");
        assert!(exact.code_403.is_some() && exact.sources.is_some());
        assert!(overlap("system:", "m:4") && overlap("ab", "b") && !overlap("pods", "403"));
    }

    #[test]
    fn an_escaped_letter_keeps_a_message_whatever_the_rules() {
        let p = all();
        assert!(p.may_match(br#"{"verb":"g\u0065t","objectRef":{"resource":"secrets"}}"#));
        assert!(!p.may_match(br#"{"verb":"get","requestURI":"/a?b\u0026c"}"#));
    }

    #[test]
    fn words_are_anchored_on_a_rare_letter_not_on_a_hyphen() {
        let w = Word::new("aws-auth");
        assert_ne!(w.lower[w.at], b'-');
        assert!(w.found_in(b"x AWS-Auth y"));
        assert!(!w.found_in(b"aws_auth aws auth"));
    }

    #[test]
    fn disabled_rules_lose_their_anchor() {
        let cfg = DetectorConfig {
            disabled_rules: vec![
                "Amazon.EKS.Audit.Multiple403".into(),
                "Kubernetes.API.Multiple403.PublicIP".into(),
            ],
            ..DetectorConfig::default()
        };
        let p = Prefilter::new(&Detector::new(cfg));
        assert!(!p.may_match(br#"{"responseStatus":{"code":403}}"#));
        assert!(p.may_match(br#"{"user":{"username":"system:anonymous"}}"#));
    }

    #[test]
    fn a_global_source_anchor_skips_only_private_first_addresses() {
        assert!(!first_address_may_be_global(
            br#"":["10.0.3.4","203.0.113.9"]"#
        ));
        assert!(!first_address_may_be_global(br#"\":[\"192.168.1.1\"]"#));
        assert!(!first_address_may_be_global(br#"": [ "fd00::1" ]"#));
        assert!(first_address_may_be_global(br#"":["52.94.76.10"]"#));
        assert!(first_address_may_be_global(br#"\":[\"2600:1f18::1\"]"#));
        // Anything unusual is kept: not a list, not an address, cut short.
        assert!(first_address_may_be_global(br#"":"10.0.0.1""#));
        assert!(first_address_may_be_global(br#"":["10.0.0.1x"]"#));
        assert!(first_address_may_be_global(br#"":["10.0.0."#));
        assert!(first_address_may_be_global(br#"":[]"#));
        // An IPv6 form with a leading colon is an address, not a separator.
        assert!(first_address_may_be_global(br#"":["::10.0.0.1"]"#));
    }

    #[test]
    fn a_system_principal_from_the_vpc_is_skipped_and_from_outside_kept() {
        let p = all();
        let inside = br#"{"user":{"username":"system:node:ip-10-0-1-2"},"sourceIPs":["10.0.1.2"],"verb":"get","objectRef":{"resource":"nodes"}}"#;
        let outside = br#"{"user":{"username":"system:node:ip-10-0-1-2"},"sourceIPs":["52.94.76.10"],"verb":"get","objectRef":{"resource":"nodes"}}"#;
        assert!(!p.may_match(inside));
        assert!(p.may_match(outside));
    }
}
