//! Whether a message's user may be a person rather than a system
//! principal, read from its bytes: kubelets and controllers read secrets
//! and create pods all day, and the rules that ignore system principals'
//! requests need not parse theirs.
//!
//! Only a `username` member written as kube-apiserver writes one is read:
//! `"username":"…"` in a plain message, `\"username\":\"…\"` in one as it
//! stands inside the envelope, after `{`, `,` or a space, its value free of
//! escapes. Any other `username` text (in a value, in JSON held in a
//! string, escaped, or a member holding something else) keeps the message,
//! so text a client chooses can only make the message read, never skipped.
//! A skipped message has at least one such member, and every one of them
//! names a system principal; its `user.username` is one of them, as every
//! request that gets past authentication has one. (A request refused
//! there has an empty `user` and no body to hold another `username`.)

use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::rules::catalog::k8s::is_system_principal;

/// False only when `msg` has a `username` member and every `username` in
/// it is a member, as kube-apiserver writes one, naming a system
/// principal.
pub(super) fn user_may_be_person(msg: &[u8]) -> bool {
    let quote: &[u8] = if escaped_form(msg) { b"\\\"" } else { b"\"" };
    // Built once: a searcher costs more to build than a message to search.
    static USERNAME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("username"));
    let mut seen = false;
    for at in USERNAME.find_iter(msg) {
        match member_value(msg, at, quote) {
            Some(name) if is_system_principal(Some(name)) => seen = true,
            _ => return true,
        }
    }
    !seen
}

/// True for a message as it stands inside the envelope (its members'
/// quotes escaped): the first member name opens with `\"`.
fn escaped_form(msg: &[u8]) -> bool {
    let mut rest = msg
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .skip(1) // `{`
        .skip_while(|b| b.is_ascii_whitespace());
    rest.next() == Some(&b'\\')
}

/// The value of the member whose name starts at `msg[at]`, when it is
/// one: `quote` before the name (itself after `{`, `,` or a space), the
/// name `username`, `quote`, `:`, `quote`, text without quotes or
/// backslashes, `quote`.
fn member_value<'m>(msg: &'m [u8], at: usize, quote: &[u8]) -> Option<&'m str> {
    let before = msg.get(..at)?.strip_suffix(quote)?;
    if !matches!(before.last(), Some(b'{' | b',' | b' ')) {
        return None;
    }
    let rest = msg.get(at + b"username".len()..)?.strip_prefix(quote)?;
    let rest = rest.trim_ascii_start().strip_prefix(b":")?;
    let rest = rest.trim_ascii_start().strip_prefix(quote)?;
    let end = rest.iter().position(|b| matches!(b, b'"' | b'\\'))?;
    rest.get(end..)?.starts_with(quote).then_some(())?;
    std::str::from_utf8(&rest[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message in both forms: plain, and as it stands in the envelope.
    fn both(plain: &str) -> [Vec<u8>; 2] {
        let escaped = serde_json::to_string(plain).expect("string");
        [
            plain.as_bytes().to_vec(),
            escaped.as_bytes()[1..escaped.len() - 1].to_vec(),
        ]
    }

    fn person(plain: &str) -> [bool; 2] {
        both(plain).map(|m| user_may_be_person(&m))
    }

    #[test]
    fn a_system_principal_is_not_a_person() {
        for name in [
            "system:node:ip-10-0-1-2.ec2.internal",
            "system:kube-controller-manager",
            "system:serviceaccount:kube-system:replicaset-controller",
            "eks:certificate-controller",
        ] {
            let msg = format!(
                r#"{{"kind":"Event","verb":"watch","user":{{"username":"{name}","groups":["system:nodes"]}},"objectRef":{{"resource":"secrets"}}}}"#
            );
            assert_eq!(person(&msg), [false, false], "{name}");
        }
    }

    #[test]
    fn a_person_or_a_workload_may_be_one() {
        for name in [
            "alice@example.com",
            "system:serviceaccount:payments:api",
            "system:anonymous-ish:serviceaccount",
            "",
        ] {
            let msg = format!(r#"{{"kind":"Event","user":{{"username":"{name}"}},"verb":"list"}}"#);
            assert_eq!(person(&msg), [true, true], "{name:?}");
        }
        // No username at all: nothing says who it was.
        assert_eq!(person(r#"{"kind":"Event","user":{}}"#), [true, true]);
    }

    #[test]
    fn every_username_member_must_name_a_system_principal() {
        // A person impersonating a node.
        let msg =
            r#"{"user":{"username":"alice"},"impersonatedUser":{"username":"system:node:n1"}}"#;
        assert_eq!(person(msg), [true, true]);
        let msg = r#"{"user":{"username":"system:node:n1"},"impersonatedUser":{"username":"system:kube-scheduler"}}"#;
        assert_eq!(person(msg), [false, false]);
    }

    #[test]
    fn username_text_a_client_chooses_keeps_the_message() {
        for msg in [
            // in a value
            r#"{"user":{"username":"system:node:n1"},"userAgent":"x \"username\":\"system:node:n2\""}"#,
            r#"{"user":{"username":"system:node:n1"},"requestURI":"/api?username=system:node:n2"}"#,
            // in JSON held in a string
            r#"{"user":{"username":"system:node:n1"},"annotations":{"a":"{\"username\":\"alice\"}"}}"#,
            // a member holding something else
            r#"{"user":{"username":"system:node:n1","extra":{"username":["system:x"]}}}"#,
            // escaped text in the name
            r#"{"user":{"username":"system:node:n1\\"}}"#,
            r#"{"user":{"username":"system:node:\u006e1"}}"#,
        ] {
            assert_eq!(person(msg), [true, true], "{msg}");
        }
    }

    #[test]
    fn whitespace_around_the_colon_is_read() {
        assert_eq!(
            person(r#"{ "user": { "username" : "system:node:n1" } }"#),
            [false, false]
        );
    }
}
