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
//!   case-insensitively), so those letters must appear in some case.
//!   AwsAuthChanged needs `objectRef.name == "aws-auth"` (compared exactly)
//!   and Impersonation an `impersonatedUser` member, so those exact bytes
//!   must appear. The catalog's rules name the values they compare exactly
//!   (`pods` and `create`, `secrets`, ...), in groups that must all appear.
//!   Every exact string of every enabled rule, and every case of four
//!   bytes of each word (those with the fewest letters, `:ano` of
//!   `system:anonymous`; the word is compared whole where one is found), is
//!   looked for in one pass (Teddy, a vectorised searcher for up to a few
//!   dozen strings), whatever the number of rules. Teddy stops wherever a
//!   string's first four bytes appear, so a string is searched from its
//!   four bytes least common in audit events (`common_grams.rs`) and
//!   compared whole where they are found.
//! - A rule that needs every event says so, and then nothing is skipped.
//!
//! The one way around them is a `\u00XX` escape of a digit, a letter, a
//! hyphen, a slash, a colon or whitespace, or a slash written `\/`, which
//! kube-apiserver never writes (it escapes only `<`, `>`, `&` and control
//! characters) but a request body may carry. A message containing such an
//! escape is always a candidate for every rule (`\/` for the built-in
//! rules, whose strings may hold a slash; a Sigma rule's never do).
//! Sigma rules compare text lower-cased as Unicode does, and a value with
//! a wildcard as a case-insensitive regular expression, so for them the
//! letters that become ASCII ones (U+212A KELVIN SIGN, U+0130, U+017F
//! LONG S), raw or escaped, do the same; and whichever of these a message
//! holds, every Sigma rule reads it, even when another rule's string keeps
//! it.

mod common_grams;
mod exact;
mod folded;
mod marks;
mod principal;
mod search;

#[cfg(test)]
use exact::first_address_may_be_global;
use exact::{Exact, Needs};
use folded::Folded;
pub use folded::SigmaHits;
use marks::Marks;

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
    /// `403`, the escapes (`\/`, JSON's other escape of a slash, only when
    /// a built-in rule's string holds one: `pods/exec`) and Sigma's short
    /// strings without letters, found in one pass; `None` when it could not
    /// be built (then `always`).
    marks: Option<Marks>,
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
            marks: None,
        };
        let mut groups: Vec<(Vec<&'static str>, Needs)> = Vec::new();
        let mut long_words: Vec<&'static str> = Vec::new();
        let mut folded: Vec<&'static [&'static [Needle]]> = Vec::new();
        for rule in detector.rules() {
            match rule.anchor() {
                Anchor::MemberValue403 => p.want_403 = true,
                // A long word is found with the exact strings, its first
                // letters in every case; a short one on its own.
                Anchor::Letters(word) if word.len() >= exact::WORD_HEAD => long_words.push(word),
                Anchor::Letters(word) => p.words.push(Word::new(word)),
                Anchor::Exact(bytes) => groups.push((vec![bytes], Needs::Strings)),
                Anchor::AnyOf(list) => {
                    groups.extend(list.iter().map(|g| (g.to_vec(), Needs::Strings)));
                }
                Anchor::AnyOfFromGlobal(list) => {
                    groups.extend(list.iter().map(|g| (g.to_vec(), Needs::GlobalSource)));
                }
                Anchor::AnyOfByPerson(list) => {
                    groups.extend(list.iter().map(|g| (g.to_vec(), Needs::Person)));
                }
                Anchor::Folded(clauses) => folded.push(clauses),
                Anchor::Always => p.always = true,
            }
        }
        let slash = groups
            .iter()
            .flat_map(|(strings, _)| strings)
            .chain(&long_words)
            .any(|s| s.contains('/'))
            || p.words.iter().any(|w| w.lower.contains(&b'/'));
        if !groups.is_empty() || !long_words.is_empty() {
            match Exact::new(&groups, &long_words) {
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
        let caseless = p.folded.as_ref().map(Folded::caseless).unwrap_or_default();
        match Marks::new(p.want_403, slash, &caseless) {
            Some(marks) => p.marks = Some(marks),
            None => p.always = true,
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
        let Some(marks) = self.marks.as_ref().filter(|_| !self.always) else {
            return Candidate::unknown();
        };
        let seen = marks.scan(msg);
        let builtin = || {
            seen.member_403
                || self.words.iter().any(|w| w.found_in(msg))
                || self.exact.as_ref().is_some_and(|e| e.found_in(msg))
        };
        if let Some(folded) = &self.folded {
            // An escaped letter or digit may hide any string, and a Sigma
            // rule compares the text lower-cased as Unicode does: the
            // letters that become ASCII ones may hide any of its strings.
            // Then every rule runs, Sigma rules included whatever else the
            // message holds.
            if seen.escape || has_unicode_fold(msg) {
                return Candidate::unknown();
            }
            // Sigma rules are told which of them the message may match, so
            // the others skip it unread. A message one of them may match
            // is read by every rule: the built-in rules' strings need not be
            // looked for. (A Sigma rule's strings hold no slash.)
            let sigma = folded.rules_found_in(msg, seen.sigma);
            return Candidate {
                keep: !sigma.is_empty() || seen.slash || builtin(),
                sigma: Some(SigmaHits(sigma)),
            };
        }
        let builtin = builtin();
        if builtin {
            return Candidate {
                keep: true,
                sigma: None,
            };
        }
        let anchored = self.want_403 || !self.words.is_empty() || self.exact.is_some();
        if anchored && (seen.escape || seen.slash) {
            return Candidate::unknown();
        }
        Candidate {
            keep: false,
            sigma: None,
        }
    }
}

/// True when the `\u` at `msg[at]` starts an escape of an ASCII digit,
/// letter, hyphen, slash, colon or whitespace character, or of a character
/// that Unicode lower-cases to an ASCII letter (see [`has_unicode_fold`]):
/// it may hide a rule's string.
fn hides_text(msg: &[u8], at: usize) -> bool {
    let hex = msg.get(at + 2..at + 6);
    if hex.is_some_and(|h| {
        h.eq_ignore_ascii_case(b"212a") || h == b"0130" || h.eq_ignore_ascii_case(b"017f")
    }) {
        return true;
    }
    if hex.is_none_or(|h| !h.starts_with(b"00")) {
        return false;
    }
    match (msg.get(at + 4), msg.get(at + 5)) {
        // 0x09, 0x0a, 0x0d: whitespace, which may surround a value
        (Some(b'0'), Some(d)) => matches!(d, b'9' | b'a' | b'A' | b'd' | b'D'),
        // 0x20: space; 0x2d: the hyphen of `aws-auth`; 0x2f: the
        // slash of `pods/exec`
        (Some(b'2'), Some(d)) => matches!(d, b'0' | b'd' | b'D' | b'f' | b'F'),
        // 0x30-0x39 digits; 0x3a: the colon of `system:anonymous`
        (Some(b'3'), Some(d)) => d.is_ascii_digit() || matches!(d, b'a' | b'A'),
        // 0x40-0x7f: letters (and some punctuation; harmless)
        (Some(b'4'..=b'7'), Some(d)) => d.is_ascii_hexdigit(),
        _ => false,
    }
}

/// True when `msg` holds, unescaped, a character that Unicode lower-cases
/// to an ASCII letter, or that a case-insensitive regular expression takes
/// for one: U+212A KELVIN SIGN (`k`), U+0130 (`i` and a dot) and U+017F
/// LATIN SMALL LETTER LONG S (`s`, in a Sigma value with a wildcard, which
/// `rsigma` compares as a case-insensitive regular expression; Unicode's
/// simple case folding holds no other letter equal to an ASCII one).
/// Their escapes are found by [`hides_text`].
fn has_unicode_fold(msg: &[u8]) -> bool {
    const KELVIN: &[u8] = "\u{212a}".as_bytes();
    const DOTTED_I: &[u8] = "\u{130}".as_bytes();
    const LONG_S: &[u8] = "\u{17f}".as_bytes();
    memchr::memchr3_iter(KELVIN[0], DOTTED_I[0], LONG_S[0], msg).any(|at| {
        msg[at..].starts_with(KELVIN)
            || msg[at..].starts_with(DOTTED_I)
            || msg[at..].starts_with(LONG_S)
    })
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
    fn an_escaped_letter_keeps_a_message_whatever_the_rules() {
        let p = all();
        assert!(p.may_match(br#"{"verb":"g\u0065t","objectRef":{"resource":"secrets"}}"#));
        assert!(!p.may_match(br#"{"verb":"get","requestURI":"/a?b\u0026c"}"#));
        // the colon of `system:anonymous` and the slash of `pods/exec`
        assert!(p.may_match(br#"{"user":{"username":"system\u003aanonymous"}}"#));
        assert!(p.may_match(br#"{"objectRef":{"resource":"pods\u002Fexec"}}"#));
    }

    /// With Sigma rules, the built-in rules' strings are still found only
    /// in their own case, and every anchor still keeps its message.
    #[test]
    fn beside_sigma_rules_builtin_strings_keep_their_case() {
        let set = crate::sigma::load(&[crate::sigma::LoadedText {
            name: "r.yml".into(),
            text: "title: t\nid: t\nlogsource: {product: kubernetes, service: audit}\n\
                   detection:\n  sel:\n    verb: escalate\n  condition: sel\n"
                .into(),
        }]);
        assert!(set.problems.is_empty(), "{:?}", set.problems);
        let mut config = DetectorConfig::default();
        config.enabled_rules.push("t".into());
        config.sigma = crate::sigma::SigmaRules(std::sync::Arc::new(set));
        let p = Prefilter::new(&Detector::new(config));
        for kept in [
            &br#"{"objectRef":{"name":"aws-auth"}}"#[..],
            br#"{"impersonatedUser":{"username":"x"}}"#,
            br#"{"user":{"username":"SYSTEM:Anonymous"}}"#,
            br#"{"responseStatus":{"code":403}}"#,
            br#"{"verb":"ESCALATE"}"#,
        ] {
            assert!(p.may_match(kept), "{}", String::from_utf8_lossy(kept));
        }
        for skipped in [
            &br#"{"objectRef":{"name":"AWS-AUTH"}}"#[..],
            br#"{"IMPERSONATEDUSER":{"username":"x"}}"#,
            br#"{"verb":"get","code":200}"#,
        ] {
            assert!(
                !p.may_match(skipped),
                "{}",
                String::from_utf8_lossy(skipped)
            );
        }
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

    #[test]
    fn a_system_principals_secret_reads_and_pod_creations_are_skipped() {
        let p = all();
        let read = |user: &str| {
            format!(
                r#"{{"user":{{"username":"{user}"}},"sourceIPs":["10.0.1.2"],"verb":"get","objectRef":{{"resource":"secrets","namespace":"payments"}}}}"#
            )
        };
        let create = |user: &str| {
            format!(
                r#"{{"user":{{"username":"{user}"}},"sourceIPs":["10.0.1.2"],"verb":"create","objectRef":{{"resource":"pods","namespace":"kube-system"}}}}"#
            )
        };
        for msg in [
            read("system:node:ip-10-0-1-2"),
            create("system:serviceaccount:kube-system:replicaset-controller"),
        ] {
            assert!(!p.may_match(msg.as_bytes()), "{msg}");
            // as it stands in the envelope
            let escaped = serde_json::to_string(&msg).expect("string");
            assert!(
                !p.may_match(&escaped.as_bytes()[1..escaped.len() - 1]),
                "{escaped}"
            );
        }
        for msg in [
            read("alice"),
            read("system:serviceaccount:payments:api"),
            create("alice"),
            // a node impersonated by a person
            read(r#"alice"},"impersonatedUser":{"username":"system:node:n1"#),
        ] {
            assert!(p.may_match(msg.as_bytes()), "{msg}");
        }
    }
}
