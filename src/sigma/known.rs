//! What the event's typed parse has already read, for Sigma rules: the
//! string fields rules compare most (`verb`, `objectRef.resource`, ...),
//! the response's status code, and where the request and response bodies
//! and the annotations stand in the message. A Sigma rule reading one of
//! them is answered from here instead of splitting the message into its
//! members again, when that cannot differ from what `rsigma` reads in the
//! whole event (see [`unescaped`] and [`dotted`]).

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use rsigma_eval::EventValue;
use serde_json::value::RawValue;

use crate::audit::{AuditEvent, SourceIps, Str};

/// The string fields the typed parse reads, by path (the order of
/// [`Known::strings`]).
pub(super) const STRINGS: [&str; 9] = [
    "verb",
    "requestURI",
    "userAgent",
    "user.username",
    "objectRef.resource",
    "objectRef.subresource",
    "objectRef.namespace",
    "objectRef.name",
    "objectRef.apiGroup",
];

/// The top-level members whose values the typed parse keeps as text.
pub(super) const BODIES: [&str; 3] = ["annotations", "requestObject", "responseObject"];

/// Fields of the event as its typed parse read them: each string the text
/// of a string written without escapes, as the message holds it; `None`
/// when absent, `null`, escaped, of another type or not read.
#[derive(Debug, Default, Clone)]
pub struct Known<'a> {
    /// The string fields, in the order of [`STRINGS`].
    pub strings: [Option<&'a str>; STRINGS.len()],
    /// `sourceIPs`, a list of strings every one of which was written
    /// without escapes (the default dedup key of a Sigma detection reads
    /// it).
    pub source_ips: Option<Vec<&'a str>>,
    /// `responseStatus.code`, when written as an integer (SigmaHQ's rule
    /// for refused requests reads it).
    pub code: Option<i64>,
    /// The values of [`BODIES`], as written, each `None` when absent or
    /// `null`; `None` when the typed parse did not look for them.
    pub bodies: Option<[Option<&'a RawValue>; 3]>,
}

impl<'a> Known<'a> {
    /// What the typed parse of `ev` read, where it borrowed the text from
    /// the message: a value with escapes is read again, from its member.
    pub fn of(ev: &AuditEvent<'a>) -> Self {
        fn borrowed<'a>(s: &Str<'a>) -> Option<&'a str> {
            match s {
                Str(Cow::Borrowed(text)) => Some(text),
                Str(Cow::Owned(_)) => None,
            }
        }
        fn plain<'a>(s: &Option<Str<'a>>) -> Option<&'a str> {
            s.as_ref().and_then(borrowed)
        }
        let object = ev.object_ref.as_ref();
        Self {
            // In the order of STRINGS.
            strings: [
                plain(&ev.verb),
                plain(&ev.request_uri),
                plain(&ev.user_agent),
                ev.user.as_ref().and_then(|u| plain(&u.username)),
                object.and_then(|o| plain(&o.resource)),
                object.and_then(|o| plain(&o.subresource)),
                object.and_then(|o| plain(&o.namespace)),
                object.and_then(|o| plain(&o.name)),
                object.and_then(|o| plain(&o.api_group)),
            ],
            source_ips: match &ev.source_ips {
                SourceIps::List(ips) => ips.iter().map(borrowed).collect(),
                _ => None,
            },
            code: ev.response_status.as_ref().and_then(|s| s.code),
            bodies: Some([ev.annotations, ev.request_object, ev.response_object]),
        }
    }

    /// The value of `path`, when the typed parse read it; `string` is the
    /// path's place in [`STRINGS`], if it has one.
    pub(super) fn value(&self, path: &str, string: Option<usize>) -> Option<EventValue<'a>> {
        if let Some(at) = string {
            return self.strings[at].map(|text| EventValue::Str(Cow::Borrowed(text)));
        }
        match path {
            "sourceIPs" => {
                let ips = self.source_ips.as_ref()?;
                Some(EventValue::Array(
                    ips.iter()
                        .map(|ip| EventValue::Str(Cow::Borrowed(*ip)))
                        .collect(),
                ))
            }
            "responseStatus.code" => self.code.map(EventValue::Int),
            _ => None,
        }
    }
}

/// The top-level members under which the typed parse reads a field:
/// a member named by a dotted path starting with one of them (`"user.name"`)
/// is what `rsigma` reads first, before the nested field.
pub(super) const ROOTS: [&str; 6] = [
    "user",
    "objectRef",
    "responseStatus",
    "annotations",
    "requestObject",
    "responseObject",
];

/// True when `text` has no `\uXXXX` escape that could spell a member's
/// name or a string the typed parse read as written (kube-apiserver
/// escapes only `&`, `<`, `>`, U+2028 and U+2029).
pub(super) fn unescaped(text: &str) -> bool {
    // Built once: a searcher costs more to build than a message to search.
    static ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\\u"));
    let bytes = text.as_bytes();
    ESCAPE.find_iter(bytes).all(|at| {
        let hex = bytes.get(at + 2..at + 6).unwrap_or_default();
        ["0026", "003c", "003e", "2028", "2029"]
            .iter()
            .any(|ok| hex.eq_ignore_ascii_case(ok.as_bytes()))
    })
}

/// True when `text` may hold a member named `ROOTS[at]` followed by a dot
/// (written out: an escaped one is [`unescaped`]'s to find).
pub(super) fn dotted(text: &str, at: usize) -> bool {
    static DOTTED: LazyLock<Vec<Finder<'static>>> = LazyLock::new(|| {
        ROOTS
            .iter()
            .map(|root| Finder::new(format!("\"{root}.").as_bytes()).into_owned())
            .collect()
    });
    DOTTED
        .get(at)
        .is_none_or(|d| d.find(text.as_bytes()).is_some())
}

/// True when `text` may hold a member with the name the path
/// `STRINGS[at]` ends in (written out: an escaped one is [`unescaped`]'s
/// to find). A message without one lacks the field.
pub(super) fn named(text: &str, at: usize) -> bool {
    static NAMED: LazyLock<Vec<Finder<'static>>> = LazyLock::new(|| {
        STRINGS
            .iter()
            .map(|path| {
                let name = path.rsplit('.').next().unwrap_or(path);
                Finder::new(format!("\"{name}\"").as_bytes()).into_owned()
            })
            .collect()
    });
    NAMED
        .get(at)
        .is_none_or(|n| n.find(text.as_bytes()).is_some())
}
