//! `EksAuditDetector.AwsAuthChanged`: the `kube-system/aws-auth` ConfigMap
//! was created, replaced, patched or deleted, and the API server accepted it
//! (MITRE TA0003 Persistence / T1098 Account Manipulation, and TA0004
//! Privilege Escalation).
//!
//! On EKS, `aws-auth` maps IAM roles and users to Kubernetes users and
//! groups: one line added to it gives an AWS principal access to the
//! cluster, often as `system:masters`. No Panther or Splunk rule covers it,
//! so this one is ours. Changes are rare (node groups, a platform pipeline),
//! so every accepted change alerts, including one made by an EKS system
//! component: the title says who, and a reader decides.
//!
//! A `deletecollection` of every ConfigMap in `kube-system` removes
//! `aws-auth` too without naming it; that request is not matched here (see
//! the README).

use std::sync::Arc;

use serde_json::{json, Value};

use super::minutes;
use super::{
    connection_address, connection_allowlisted, first_and_last, is_success, is_system_principal,
    Anchor, Rule,
};
use crate::audit::{opt, AuditEvent};
use crate::bounded::{cap, key_part};
use crate::net::CidrList;
use crate::time::format_rfc3339;
use crate::vocab::{
    EventContext, Match, MatchedEvent, RuleId, RuleMeta, Severity, Source, Verdict, WindowParams,
};
use crate::window::WindowState;

/// Rule metadata.
pub static META: RuleMeta = RuleMeta {
    id: RuleId::new("EksAuditDetector.AwsAuthChanged"),
    source: Source::Project,
    name: "EKS aws-auth ConfigMap changed",
    mitre: "TA0003:T1098, TA0004:T1098",
    reference: "https://docs.aws.amazon.com/eks/latest/userguide/auth-configmap.html",
    runbook:
        "Someone changed who can log in to the cluster. Ask the named user whether the change \
              was theirs and planned (a node group, a pipeline). Read the ConfigMap now \
              (kubectl -n kube-system get configmap aws-auth -o yaml) and look for roles or \
              users you do not know, above all any mapped to system:masters. If the change is \
              not explained, restore the last known mapping, revoke the unknown IAM principal's \
              credentials and review what it did in CloudTrail and the audit log. Consider \
              moving to EKS access entries.",
};

/// Every accepted change alerts.
pub const THRESHOLD: u64 = 1;

/// One alert per cluster and user per hour.
pub const WINDOW_MINUTES: u64 = 60;

/// The severity of every alert of this rule.
pub const SEVERITY: Severity = Severity::High;

/// Summary fields, tallied per window.
pub const SUMMARY_FIELDS: [&str; 3] = ["verb", "userAgent", "sourceIPs{}"];

/// Whether the user is an EKS or Kubernetes system component, tallied to
/// render the title.
pub const PRINCIPAL_FIELD: &str = "principal";

/// Distinct addresses of one event tallied in `sourceIPs{}` (the first
/// ones, plus the connection's, the last).
pub const MAX_SUMMARY_ADDRESSES: usize = 4;

/// The verbs that change an object.
const CHANGING_VERBS: [&str; 4] = ["create", "update", "patch", "delete"];

/// The rule.
#[derive(Debug, Clone)]
pub struct AwsAuthChanged {
    window: WindowParams,
}

impl AwsAuthChanged {
    /// Builds the rule; its window is fixed.
    pub fn new() -> Self {
        Self {
            window: WindowParams {
                threshold: THRESHOLD,
                window_ms: minutes(WINDOW_MINUTES),
                max_severity: SEVERITY,
            },
        }
    }
}

impl Default for AwsAuthChanged {
    fn default() -> Self {
        Self::new()
    }
}

/// `{cluster}_aws-auth_{username}`.
pub fn dedup_key(cluster: &str, username: &str) -> String {
    format!("{}_aws-auth_{}", key_part(cluster), key_part(username))
}

/// `system component` or `user`, for the title.
fn principal_kind(username: &str) -> &'static str {
    if is_system_principal(username) {
        "EKS system component"
    } else {
        "user"
    }
}

impl Rule for AwsAuthChanged {
    fn filter(&self) -> super::filter::Filter {
        super::filter::Filter::Terms(&[r#"$.objectRef.name = "aws-auth""#])
    }

    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn window(&self) -> WindowParams {
        self.window
    }

    /// `objectRef.name == "aws-auth"`.
    fn anchor(&self) -> Anchor {
        Anchor::Exact("aws-auth")
    }

    fn headline(&self, _severity: Severity) -> &'static str {
        "EKS aws-auth ConfigMap changed"
    }

    fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        allow: &CidrList,
        out: &mut Vec<Match>,
    ) -> Verdict {
        // Only finished requests: one event per request.
        if opt(&ev.stage) != Some("ResponseComplete") {
            return Verdict::NoMatch;
        }
        // Only the one object: configmaps/kube-system/aws-auth, as
        // Kubernetes writes them (names are case-sensitive).
        let Some(oref) = ev.object_ref.as_ref() else {
            return Verdict::NoMatch;
        };
        if opt(&oref.name) != Some("aws-auth")
            || opt(&oref.namespace) != Some("kube-system")
            || opt(&oref.resource) != Some("configmaps")
        {
            return Verdict::NoMatch;
        }
        // A subresource would not be the ConfigMap's data (none exists
        // today; this keeps the rule exact if one appears).
        if opt(&oref.subresource).is_some_and(|s| !s.is_empty()) {
            return Verdict::NoMatch;
        }
        // Only changes.
        let Some(verb) = opt(&ev.verb).filter(|v| CHANGING_VERBS.contains(v)) else {
            return Verdict::NoMatch;
        };
        // Only changes the API server made.
        if !is_success(ev.status_code()) {
            return Verdict::NoMatch;
        }
        // The user's own allowlist, on the connection address only.
        if connection_allowlisted(ev, allow) {
            return Verdict::NoMatch;
        }
        let username = ev.username().unwrap_or("<NO_USERNAME>");
        let ip = connection_address(ev).unwrap_or("<NO_SOURCE_IP>");
        let (addresses, dropped) = first_and_last(ev.source_ips.list(), MAX_SUMMARY_ADDRESSES - 1);
        let mut facts = Vec::with_capacity(addresses.len() + 3);
        facts.push((SUMMARY_FIELDS[0], cap(verb)));
        if let Some(agent) = opt(&ev.user_agent) {
            facts.push((SUMMARY_FIELDS[1], cap(agent)));
        }
        for a in &addresses {
            facts.push((SUMMARY_FIELDS[2], cap(a)));
        }
        facts.push((PRINCIPAL_FIELD, principal_kind(username).to_owned()));
        let title = format!(
            "[{}] ({}) ran [{}] on ConfigMap [kube-system/aws-auth] on [{}]",
            cap(username),
            principal_kind(username),
            cap(verb),
            cap(ctx.cluster)
        );
        out.push(Match {
            rule: META.id,
            dedup: dedup_key(ctx.cluster, username),
            at_ms: ctx.at_ms,
            source_ip: cap(ip),
            severity: SEVERITY,
            event: Arc::new(MatchedEvent {
                title,
                sample: ev.sample(),
                facts,
                dropped: dropped as u64,
            }),
            facts: Vec::new(),
        });
        Verdict::Matched {
            matches: 1,
            dropped,
        }
    }

    /// The user, their kind, every verb of the window and the cluster.
    fn title(&self, state: &WindowState, _severity: Severity) -> String {
        let user = state.sample.username.as_deref().unwrap_or("<NO_USERNAME>");
        let verbs: Vec<&str> = state
            .tallied(SUMMARY_FIELDS[0])
            .into_iter()
            .map(String::as_str)
            .collect();
        let verbs = if verbs.is_empty() {
            "<NO_VERB>".to_owned()
        } else {
            verbs.join(", ")
        };
        format!(
            "[{user}] ({}) ran [{verbs}] on ConfigMap [kube-system/aws-auth] on [{}]",
            principal_kind(user),
            state.cluster
        )
    }

    /// Count, first and last time, and the distinct verbs, user agents and
    /// source addresses of the window.
    fn summary(&self, state: &WindowState) -> Value {
        json!({
            "count": state.count,
            "firstTime": format_rfc3339(state.first_seen),
            "lastTime": format_rfc3339(state.last_seen),
            "username": state.sample.username,
            "verbs": state.tallied(SUMMARY_FIELDS[0]),
            "userAgents": state.tallied(SUMMARY_FIELDS[1]),
            "sourceIPs": state.tallied(SUMMARY_FIELDS[2]),
        })
    }
}
