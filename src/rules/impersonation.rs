//! `EksAuditDetector.Impersonation`: a person or workload acted as another
//! Kubernetes identity (`kubectl --as`, `Impersonate-User`), and the API
//! server answered 2xx (MITRE TA0004 Privilege Escalation, T1078 Valid
//! Accounts).
//!
//! Impersonation needs the `impersonate` verb, which few identities should
//! hold; once held, it lends every permission of the identity acted as. The
//! API server's own components and EKS's (`system:...`, `eks:...`) are left
//! out: they are the usual legitimate impersonators. HIGH when the identity
//! acted as is a cluster administrator (`system:admin`, `kubernetes-admin`,
//! or group `system:masters`), MEDIUM otherwise.
//!
//! MITRE has no Containers-matrix technique for impersonation; T1134 Access
//! Token Manipulation is about operating-system tokens. Acting as another
//! identity's valid account is closest to T1078, hence the mapping.

use std::sync::Arc;

use serde_json::{json, Value};

use super::minutes;
use super::{
    connection_address, connection_allowlisted, first_and_last, is_success, is_system_principal,
    Anchor, Rule,
};
use crate::audit::{opt, AuditEvent, Str};
use crate::bounded::{cap, key_part};
use crate::net::CidrList;
use crate::time::format_rfc3339;
use crate::vocab::{
    EventContext, Match, MatchedEvent, RuleId, RuleMeta, Severity, Source, Verdict, WindowParams,
};
use crate::window::WindowState;

/// Rule metadata.
pub static META: RuleMeta = RuleMeta {
    id: RuleId::new("EksAuditDetector.Impersonation"),
    source: Source::Project,
    name: "EKS user impersonation",
    mitre: "TA0004:T1078",
    reference:
        "https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation",
    runbook: "A user sent requests as another Kubernetes identity. Ask the named user why; check \
              which Role or ClusterRole grants them the impersonate verb (kubectl get \
              clusterroles,roles -A -o yaml, look for verbs: [impersonate]) and whether it \
              should. At HIGH the identity acted as is a cluster administrator: review every \
              request of the window in the audit log (same user, impersonatedUser set) and \
              remove the grant if it is not needed.",
};

/// One accepted request is enough.
pub const THRESHOLD: u64 = 1;

/// One alert per cluster, user and identity acted as per hour.
pub const WINDOW_MINUTES: u64 = 60;

/// Identities acted as that are cluster administrators.
pub const ADMIN_USERS: [&str; 2] = ["system:admin", "kubernetes-admin"];

/// The group bound to `cluster-admin` by default.
pub const ADMIN_GROUP: &str = "system:masters";

/// Summary fields, tallied per window.
pub const SUMMARY_FIELDS: [&str; 5] = [
    "verb",
    "requestURI",
    "userAgent",
    "sourceIPs{}",
    "impersonatedUser.groups{}",
];

/// Distinct addresses (and groups acted as) of one event that are tallied:
/// the first ones, plus the last.
pub const MAX_SUMMARY_VALUES: usize = 4;

/// The rule.
#[derive(Debug, Clone)]
pub struct Impersonation {
    window: WindowParams,
}

impl Impersonation {
    /// Builds the rule; its window is fixed.
    pub fn new() -> Self {
        Self {
            window: WindowParams {
                threshold: THRESHOLD,
                window_ms: minutes(WINDOW_MINUTES),
                max_severity: Severity::High,
            },
        }
    }
}

impl Default for Impersonation {
    fn default() -> Self {
        Self::new()
    }
}

/// HIGH when the identity acted as is a cluster administrator, else MEDIUM.
pub fn severity_of(impersonated: &str, groups: &[Str<'_>]) -> Severity {
    if ADMIN_USERS.contains(&impersonated) || groups.iter().any(|g| g.as_str() == ADMIN_GROUP) {
        Severity::High
    } else {
        Severity::Medium
    }
}

/// `{cluster}_{username}_as_{impersonated username}`.
pub fn dedup_key(cluster: &str, username: &str, impersonated: &str) -> String {
    format!(
        "{}_{}_as_{}",
        key_part(cluster),
        key_part(username),
        key_part(impersonated)
    )
}

/// The identity acted as, tallied to render the title.
const IMPERSONATED_FIELD: &str = "impersonatedUser.username";

impl Rule for Impersonation {
    fn filter(&self) -> super::filter::Filter {
        super::filter::Filter::Terms(&[r#"$.impersonatedUser.username = "*""#])
    }

    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn window(&self) -> WindowParams {
        self.window
    }

    /// The `impersonatedUser` member.
    fn anchor(&self) -> Anchor {
        Anchor::Exact("impersonatedUser")
    }

    fn headline(&self, severity: Severity) -> &'static str {
        if severity >= Severity::High {
            "EKS impersonation of a cluster admin"
        } else {
            "EKS user impersonation"
        }
    }

    fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        allow: &CidrList,
        out: &mut Vec<Match>,
    ) -> Verdict {
        // Only requests that impersonated someone.
        let Some(acted_as) = ev.impersonated_user.as_ref() else {
            return Verdict::NoMatch;
        };
        // Only finished requests: one event per request.
        if opt(&ev.stage) != Some("ResponseComplete") {
            return Verdict::NoMatch;
        }
        // Not the API server's or EKS's own components (a missing username
        // is not known to be one).
        let username = ev.username().unwrap_or("<NO_USERNAME>");
        if is_system_principal(username) {
            return Verdict::NoMatch;
        }
        // Only requests the API server carried out.
        if !is_success(ev.status_code()) {
            return Verdict::NoMatch;
        }
        // The user's own allowlist, on the connection address only.
        if connection_allowlisted(ev, allow) {
            return Verdict::NoMatch;
        }
        let impersonated = acted_as
            .username
            .as_ref()
            .map_or("<NO_USERNAME>", Str::as_str);
        let groups = acted_as.groups.as_deref().unwrap_or(&[]);
        let severity = severity_of(impersonated, groups);
        let ip = connection_address(ev).unwrap_or("<NO_SOURCE_IP>");
        let (addresses, dropped_ips) = first_and_last(ev.source_ips.list(), MAX_SUMMARY_VALUES - 1);
        let (kept_groups, dropped_groups) = first_and_last(groups, MAX_SUMMARY_VALUES - 1);
        let mut facts = Vec::with_capacity(addresses.len() + kept_groups.len() + 5);
        let mut fact = |field: &'static str, value: Option<&str>| {
            if let Some(v) = value {
                facts.push((field, cap(v)));
            }
        };
        fact(SUMMARY_FIELDS[0], opt(&ev.verb));
        fact(SUMMARY_FIELDS[1], opt(&ev.request_uri));
        fact(SUMMARY_FIELDS[2], opt(&ev.user_agent));
        for a in &addresses {
            fact(SUMMARY_FIELDS[3], Some(a));
        }
        // system:masters is always shown when present, however many groups.
        for g in &kept_groups {
            fact(SUMMARY_FIELDS[4], Some(g));
        }
        if !kept_groups.contains(&ADMIN_GROUP) && groups.iter().any(|g| g.as_str() == ADMIN_GROUP) {
            fact(SUMMARY_FIELDS[4], Some(ADMIN_GROUP));
        }
        fact(IMPERSONATED_FIELD, Some(impersonated));
        let dropped = dropped_ips + dropped_groups;
        let title = format!(
            "[{}] acted as [{}] on [{}]",
            cap(username),
            cap(impersonated),
            cap(ctx.cluster)
        );
        out.push(Match {
            rule: META.id,
            dedup: dedup_key(ctx.cluster, username, impersonated),
            at_ms: ctx.at_ms,
            source_ip: cap(ip),
            severity,
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

    /// The user, the identity acted as, whether it is an administrator, and
    /// the cluster.
    fn title(&self, state: &WindowState, severity: Severity) -> String {
        let user = state.sample.username.as_deref().unwrap_or("<NO_USERNAME>");
        let acted_as = state
            .tallied(IMPERSONATED_FIELD)
            .first()
            .map_or("<NO_USERNAME>", |u| u.as_str());
        let admin = if severity >= Severity::High {
            " (cluster administrator)"
        } else {
            ""
        };
        format!(
            "[{user}] acted as [{acted_as}]{admin} on [{}] and the API server allowed it",
            state.cluster
        )
    }

    /// Count, first and last time, and the distinct verbs, URIs, user
    /// agents, source addresses and groups acted as of the window.
    fn summary(&self, state: &WindowState) -> Value {
        json!({
            "count": state.count,
            "firstTime": format_rfc3339(state.first_seen),
            "lastTime": format_rfc3339(state.last_seen),
            "username": state.sample.username,
            "impersonatedUser": state.tallied(IMPERSONATED_FIELD),
            "impersonatedGroups": state.tallied(SUMMARY_FIELDS[4]),
            "verbs": state.tallied(SUMMARY_FIELDS[0]),
            "requestURIs": state.tallied(SUMMARY_FIELDS[1]),
            "userAgents": state.tallied(SUMMARY_FIELDS[2]),
            "sourceIPs": state.tallied(SUMMARY_FIELDS[3]),
        })
    }
}
