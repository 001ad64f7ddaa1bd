//! The Kubernetes audit event (`audit.k8s.io/v1` `Event`), reduced to the
//! fields the rules and alerts use.
//!
//! Every string borrows from the message text when it can. Kubernetes escapes
//! `&`, `<` and `>` as `\u0026` etc., so a plain `&str` would fail on such
//! values: [`Str`] holds a `Cow` and only allocates for escaped strings.
//! Fields the rules do not need are skipped by serde without being built.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::sigma::event::{Known, SigmaEvent};

mod fields;

pub use fields::SourceIps;

/// A JSON string borrowed from the input where possible.
///
/// serde only borrows through a direct `Cow<'a, str>` field; inside an
/// `Option` it would always allocate, hence this newtype.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Str<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl Str<'_> {
    /// The string value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One audit event. Fields missing from the event are `None`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent<'a> {
    /// `Event` for audit events; other control-plane lines lack it.
    #[serde(borrow)]
    pub kind: Option<Str<'a>>,
    /// `audit.k8s.io/v1` (or an older version).
    #[serde(borrow)]
    pub api_version: Option<Str<'a>>,
    /// Unique per request (shared by the stages of one request).
    #[serde(rename = "auditID", borrow)]
    pub audit_id: Option<Str<'a>>,
    /// `RequestReceived`, `ResponseStarted`, `ResponseComplete` or `Panic`.
    #[serde(borrow)]
    pub stage: Option<Str<'a>>,
    /// The request path and query, as the client sent it.
    #[serde(rename = "requestURI", borrow)]
    pub request_uri: Option<Str<'a>>,
    /// The Kubernetes verb (`get`, `list`, `watch`, ...).
    #[serde(borrow)]
    pub verb: Option<Str<'a>>,
    /// The authenticated (or anonymous) user.
    #[serde(default, borrow, deserialize_with = "fields::object")]
    pub user: Option<UserInfo<'a>>,
    /// Who the request acted as (`Impersonate-User` and `Impersonate-Group`
    /// headers), when the authenticated user impersonated someone.
    #[serde(default, borrow, deserialize_with = "fields::object")]
    pub impersonated_user: Option<UserInfo<'a>>,
    /// Client addresses: the connection's, possibly preceded by
    /// `X-Forwarded-For` entries. Missing, `null` and `[]` mean different things
    /// to the rules, see [`SourceIps`].
    #[serde(rename = "sourceIPs", default, borrow)]
    pub source_ips: SourceIps<'a>,
    /// The client's user agent, attacker-controlled.
    #[serde(borrow)]
    pub user_agent: Option<Str<'a>>,
    /// What the request was about.
    #[serde(default, borrow, deserialize_with = "fields::object")]
    pub object_ref: Option<ObjectRef<'a>>,
    /// The response's status.
    #[serde(default, borrow, deserialize_with = "fields::object")]
    pub response_status: Option<ResponseStatus<'a>>,
    /// When the request reached the API server, as written.
    #[serde(borrow)]
    pub request_received_timestamp: Option<Str<'a>>,
    /// When this stage was reached, as written.
    #[serde(borrow)]
    pub stage_timestamp: Option<Str<'a>>,
    /// `annotations` (the authorizer's decision and reason, admission
    /// plugins' notes), kept as text and read on demand.
    #[serde(borrow)]
    pub annotations: Option<&'a RawValue>,
    /// `requestObject` (logged at the `Request` level and above), kept as
    /// text and parsed on demand by the rules that look inside it.
    #[serde(borrow)]
    pub request_object: Option<&'a RawValue>,
    /// `responseObject` (logged at the `RequestResponse` level).
    #[serde(borrow)]
    pub response_object: Option<&'a RawValue>,
    /// The three bodies above, and the whole event, each parsed at most
    /// once per event.
    #[serde(skip)]
    pub parsed: Parsed<'a>,
    /// The message text the event was parsed from (empty for an event
    /// built otherwise), for rules that read the whole event (Sigma's).
    #[serde(skip)]
    pub text: &'a str,
    /// The Sigma rules the prefilter found this message may match (the
    /// others skip it unread); `None` when the prefilter did not say.
    #[serde(skip)]
    pub sigma_hits: Option<crate::prefilter::SigmaHits>,
}

/// The event's bodies, parsed the first time a rule asks for one (a body
/// that is not valid JSON, or nests deeper than the parser allows, reads as
/// absent), and the event as Sigma rules read it.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    annotations: OnceCell<Option<Value>>,
    request: OnceCell<Option<Value>>,
    response: OnceCell<Option<Value>>,
    sigma: OnceCell<SigmaEvent<'a>>,
    /// The event's sample, shared by every match of it.
    sample: OnceCell<std::sync::Arc<crate::vocab::Sample>>,
}

fn parse_raw(raw: Option<&RawValue>) -> Option<Value> {
    crate::bounded::parse_json(raw?.get())
}

/// The `user` object.
#[derive(Debug, Default, Deserialize)]
pub struct UserInfo<'a> {
    /// `system:anonymous` for unauthenticated requests.
    #[serde(borrow)]
    pub username: Option<Str<'a>>,
    /// Group memberships (`system:unauthenticated` for anonymous).
    #[serde(default, borrow)]
    pub groups: Option<Vec<Str<'a>>>,
}

/// The `objectRef` object.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef<'a> {
    /// Resource type, e.g. `pods`.
    #[serde(borrow)]
    pub resource: Option<Str<'a>>,
    /// Subresource, e.g. `log` or `exec`.
    #[serde(borrow)]
    pub subresource: Option<Str<'a>>,
    /// Namespace of the object, if namespaced.
    #[serde(borrow)]
    pub namespace: Option<Str<'a>>,
    /// Name of the object; absent for lists and collection deletes.
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    /// API group (`rbac.authorization.k8s.io`; empty or absent for core).
    #[serde(borrow)]
    pub api_group: Option<Str<'a>>,
}

/// The `responseStatus` object (a `metav1.Status`).
#[derive(Debug, Default, Deserialize)]
pub struct ResponseStatus<'a> {
    /// HTTP status code. Only JSON integers count: Kubernetes writes an int32,
    /// and Panther's schema types it as an integer.
    #[serde(default, deserialize_with = "fields::lenient_code")]
    pub code: Option<i64>,
    /// Machine-readable reason, e.g. `Forbidden`.
    #[serde(borrow)]
    pub reason: Option<Str<'a>>,
}

impl<'a> AuditEvent<'a> {
    /// Parses one message. The caller decides what a failure means.
    ///
    /// The message must be a JSON object: serde would also fill the event
    /// from an array, its members in field order, which no other reader of
    /// the message (Sigma's) would take for the same event.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        if !text.trim_start().starts_with('{') {
            return Err(serde::de::Error::custom("an audit event is a JSON object"));
        }
        let mut ev: Self = serde_json::from_str(text)?;
        ev.text = text;
        Ok(ev)
    }

    /// The event's sample (see [`crate::vocab::Sample::of`]), built once
    /// and shared by every rule that matches the event.
    pub fn sample(&self) -> std::sync::Arc<crate::vocab::Sample> {
        std::sync::Arc::clone(
            self.parsed
                .sample
                .get_or_init(|| std::sync::Arc::new(crate::vocab::Sample::of(self))),
        )
    }

    /// The event as Sigma rules read it (see [`SigmaEvent`]), made on
    /// first use and shared by every Sigma rule.
    pub fn sigma(&self) -> &SigmaEvent<'a> {
        self.parsed
            .sigma
            .get_or_init(|| SigmaEvent::with_known(self.text, Known::of(self)))
    }

    /// True for an `audit.k8s.io` `Event`: other streams of an EKS control
    /// plane log group (authenticator, scheduler, ...) are not.
    pub fn is_audit_event(&self) -> bool {
        let kind_ok = self.kind.as_ref().is_some_and(|k| k.as_str() == "Event");
        let api_ok = self
            .api_version
            .as_ref()
            .is_some_and(|v| v.as_str().starts_with("audit.k8s.io/"));
        kind_ok && api_ok
    }

    /// `user.username`, if present.
    pub fn username(&self) -> Option<&str> {
        self.user.as_ref()?.username.as_ref().map(Str::as_str)
    }

    /// `user.groups`, empty when missing.
    pub fn groups(&self) -> &[Str<'a>] {
        self.user
            .as_ref()
            .and_then(|u| u.groups.as_deref())
            .unwrap_or(&[])
    }

    /// `responseStatus.code`, if it is an integer.
    pub fn status_code(&self) -> Option<i64> {
        self.response_status.as_ref()?.code
    }

    /// `responseStatus.reason`, if present.
    pub fn status_reason(&self) -> Option<&str> {
        self.response_status
            .as_ref()?
            .reason
            .as_ref()
            .map(Str::as_str)
    }

    /// The event's own time: `stageTimestamp`, else
    /// `requestReceivedTimestamp` (used when no CloudWatch timestamp exists).
    pub fn event_time(&self) -> Option<crate::time::Millis> {
        opt(&self.stage_timestamp)
            .and_then(crate::time::parse_timestamp)
            .or_else(|| {
                opt(&self.request_received_timestamp).and_then(crate::time::parse_timestamp)
            })
    }

    /// `objectRef.resource`, if present.
    pub fn resource(&self) -> Option<&str> {
        self.object_ref.as_ref()?.resource.as_ref().map(Str::as_str)
    }

    /// `objectRef.subresource`, if present.
    pub fn subresource(&self) -> Option<&str> {
        opt(&self.object_ref.as_ref()?.subresource)
    }

    /// `objectRef.namespace`, if present.
    pub fn namespace(&self) -> Option<&str> {
        opt(&self.object_ref.as_ref()?.namespace)
    }

    /// `objectRef.name`, if present.
    pub fn name(&self) -> Option<&str> {
        opt(&self.object_ref.as_ref()?.name)
    }

    /// `objectRef.apiGroup`, if present.
    pub fn api_group(&self) -> Option<&str> {
        opt(&self.object_ref.as_ref()?.api_group)
    }

    /// `annotations`, parsed on first use.
    pub fn annotations(&self) -> Option<&Value> {
        self.parsed
            .annotations
            .get_or_init(|| parse_raw(self.annotations))
            .as_ref()
    }

    /// One annotation's string value, e.g. `authorization.k8s.io/decision`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations()?.get(key)?.as_str()
    }

    /// `requestObject`, parsed on first use.
    pub fn request_object(&self) -> Option<&Value> {
        self.parsed
            .request
            .get_or_init(|| parse_raw(self.request_object))
            .as_ref()
    }

    /// `responseObject`, parsed on first use.
    pub fn response_object(&self) -> Option<&Value> {
        self.parsed
            .response
            .get_or_init(|| parse_raw(self.response_object))
            .as_ref()
    }
}

/// The value at `keys` inside `v` (object members only), like Panther's
/// `deep_get`.
pub fn at<'v>(v: Option<&'v Value>, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(v?, |v, k| v.get(*k))
}

/// The string at `keys` inside `v`.
pub fn str_at<'v>(v: Option<&'v Value>, keys: &[&str]) -> Option<&'v str> {
    at(v, keys)?.as_str()
}

/// Field helper: the string or `None`.
pub fn opt<'s>(s: &'s Option<Str<'_>>) -> Option<&'s str> {
    s.as_ref().map(Str::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_match_of_an_event_shares_one_sample() {
        let text =
            r#"{"verb":"list","requestURI":"/api/v1/pods","user":{"username":"system:anonymous"}}"#;
        let ev = AuditEvent::parse(text).expect("parses");
        let (a, b) = (ev.sample(), ev.sample());
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        assert_eq!(*a, crate::vocab::Sample::of(&ev));
        assert_eq!(a.request_uri.as_deref(), Some("/api/v1/pods"));
    }

    #[test]
    fn borrows_plain_strings_and_unescapes_kubernetes_escapes() {
        let text = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"list","requestURI":"/api/v1/pods?limit=500\u0026resourceVersion=0","sourceIPs":["1.2.3.4"]}"#;
        let ev = AuditEvent::parse(text).expect("parses");
        assert!(matches!(
            ev.verb.as_ref().map(|v| &v.0),
            Some(Cow::Borrowed("list"))
        ));
        assert_eq!(
            opt(&ev.request_uri),
            Some("/api/v1/pods?limit=500&resourceVersion=0")
        );
        assert!(ev.is_audit_event());
    }

    #[test]
    fn other_control_plane_lines_are_not_audit_events() {
        let ev = AuditEvent::parse(r#"{"level":"info","msg":"access granted"}"#).expect("parses");
        assert!(!ev.is_audit_event());
    }
}
