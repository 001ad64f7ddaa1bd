//! The subscription's filter pattern, derived from the enabled rules.
//!
//! CloudWatch Logs applies a filter pattern before it delivers anything:
//! what it drops costs nothing. Each rule declares the CloudWatch terms that
//! cover every event it can match ([`Filter`]); the pattern is their
//! disjunction, plus the scheduler's lease renewals that tell a quiet
//! cluster from a silent one. A rule that needs every event (or one of
//! yours that declares nothing) makes the pattern `""`: everything.
//! `eks-audit-detector rules filter-pattern` prints it for the settings in
//! the environment; the template's default is the one for the default
//! settings (a test keeps them equal).

use super::Rule;

/// What a rule needs CloudWatch to forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every audit event.
    All,
    /// The events these CloudWatch JSON filter terms select (each a
    /// condition such as `$.objectRef.resource = "pods" && $.verb =
    /// "create"`, without braces); an event any of them selects.
    Terms(&'static [&'static str]),
}

/// The scheduler's lease renewals: every few seconds on a healthy
/// cluster, the heartbeat the silence report listens for.
pub const HEARTBEAT: &str =
    r#"$.user.username = "system:kube-scheduler" && $.objectRef.resource = "leases""#;

/// The terms rules share, so that the pattern names each once.
pub mod terms {
    /// A refused request.
    pub const FORBIDDEN: &str = "$.responseStatus.code = 403";
    /// An unauthenticated request.
    pub const ANONYMOUS: &str = r#"$.user.username = "system:anonymous""#;
    /// Any request on secrets.
    pub const SECRETS: &str = r#"$.objectRef.resource = "secrets""#;
    /// Something created that a rule looks at: a pod (or a request on
    /// one of its subresources: `exec`, `attach`, `portforward` are
    /// `create`s), an admission webhook configuration, a certificate
    /// signing request, a Service or an Ingress.
    pub const CREATE: &str = r#"$.verb = "create" && ($.objectRef.resource = "pods" || $.objectRef.resource = "*webhook*" || $.objectRef.resource = "certificate*" || $.objectRef.resource = "services" || $.objectRef.resource = "ingresses")"#;
    /// A role, cluster role or binding, or a workload controller
    /// (Deployment, DaemonSet, StatefulSet, ReplicaSet, Job, CronJob)
    /// written, not its status.
    pub const WRITE: &str = r#"($.objectRef.resource = "*role*" || $.objectRef.resource = "*sets" || $.objectRef.resource = "*jobs" || $.objectRef.resource = "deployments") && $.objectRef.subresource NOT EXISTS && $.verb != "get" && $.verb != "list" && $.verb != "watch""#;
    /// A system principal's request whose first address is not one of
    /// the usual private ranges (the rules check every range).
    pub const PUBLIC_SYSTEM: &str = r#"($.user.username = "system:*" || $.user.username = "eks:*" || $.user.username = "aks:*") && $.sourceIPs[0] != "10.*" && $.sourceIPs[0] != "192.168.*" && $.sourceIPs[0] != "172.31.*" && $.sourceIPs[0] != "127.*""#;
    /// A command run in a pod's container (`exec` is a `create`, or a
    /// `get` over WebSocket).
    pub const EXEC: &str = r#"$.objectRef.subresource = "exec""#;
    /// A service account token requested.
    pub const TOKEN: &str = r#"$.objectRef.subresource = "token""#;
}

/// Longest filter pattern CloudWatch Logs accepts.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// The pattern for these rules: `""` when one needs everything.
pub fn pattern<'r>(rules: impl IntoIterator<Item = &'r dyn Rule>) -> String {
    let mut terms: Vec<&'static str> = Vec::new();
    for rule in rules {
        match rule.filter() {
            Filter::All => return String::new(),
            Filter::Terms(list) => {
                for t in list {
                    if !terms.contains(t) {
                        terms.push(t);
                    }
                }
            }
        }
    }
    terms.push(HEARTBEAT);
    // `||` binds loosest: only compound terms need parentheses, and the
    // pattern must fit CloudWatch's 1,024 characters.
    let body: Vec<String> = terms
        .iter()
        .map(|t| {
            if t.contains("&&") || t.contains("||") {
                format!("({t})")
            } else {
                (*t).to_owned()
            }
        })
        .collect();
    format!("{{ {} }}", body.join(" || "))
}
