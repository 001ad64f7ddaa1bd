//! A new detection is one file and one registry line: this test adds one
//! more rule, written here and nowhere else, and runs it through the whole
//! pipeline next to the shipped ones.

mod common;

use std::sync::Arc;

use common::{event, invoke_body, RecordingSink};
use eks_audit_detector::audit::{opt, AuditEvent};
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::net::CidrList;
use eks_audit_detector::rules::{registry, Anchor, Detector, Rule};
use eks_audit_detector::store::memory::MemoryStore;
use eks_audit_detector::vocab::{
    EventContext, Match, MatchedEvent, RuleId, RuleMeta, Sample, Severity, Source, Verdict,
    WindowParams,
};
use eks_audit_detector::window::WindowState;
use serde_json::{json, Value};

/// Modelled on Panther's `Amazon.EKS.AnonymousAPIAccess`: an anonymous
/// request that the API server did not refuse.
#[derive(Debug)]
struct AnonymousApiAccess;

static META: RuleMeta = RuleMeta {
    id: RuleId::new("Test.EKS.AnonymousAPIAccess"),
    source: Source::User,
    name: "EKS anonymous API access (test rule)",
    mitre: "TA0001:T1190",
    reference:
        "https://kubernetes.io/docs/reference/access-authn-authz/authentication/#anonymous-requests",
    runbook: "Find the binding that lets system:anonymous in.",
};

impl Rule for AnonymousApiAccess {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn window(&self) -> WindowParams {
        WindowParams {
            threshold: 1,
            window_ms: 60 * 60_000,
            max_severity: Severity::High,
        }
    }

    fn anchor(&self) -> Anchor {
        Anchor::Letters("anonymous")
    }

    fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        allow: &CidrList,
        out: &mut Vec<Match>,
    ) -> Verdict {
        // Only unauthenticated requests...
        if ev.username() != Some("system:anonymous") {
            return Verdict::NoMatch;
        }
        // ...that were let through.
        if !ev.status_code().is_some_and(|c| (200..300).contains(&c)) {
            return Verdict::NoMatch;
        }
        let Some(ip) = ev.source_ips.list().last().map(|s| s.as_str()) else {
            return Verdict::NoMatch;
        };
        if allow.contains_text(ip) {
            return Verdict::NoMatch;
        }
        out.push(Match {
            rule: META.id,
            dedup: format!("{}_{ip}", ctx.cluster),
            at_ms: ctx.at_ms,
            source_ip: ip.to_owned(),
            severity: Severity::High,
            event: Arc::new(MatchedEvent {
                title: format!(
                    "[{ip}] reached [{}] anonymously on [{}]",
                    opt(&ev.request_uri).unwrap_or("-"),
                    ctx.cluster
                ),
                sample: Sample::of(ev).into(),
                facts: Vec::new(),
                dropped: 0,
            }),
            facts: Vec::new(),
        });
        Verdict::matched(1)
    }

    fn title(&self, state: &WindowState, _severity: Severity) -> String {
        state.title.clone()
    }

    fn summary(&self, state: &WindowState) -> Value {
        json!({"count": state.count})
    }

    fn headline(&self, _severity: Severity) -> &'static str {
        "EKS anonymous API access"
    }
}

const GROUP: &str = "/aws/eks/prod/cluster";
const T0: i64 = 1_715_644_800_000;

fn with_third_rule(config: DetectorConfig) -> Detector {
    let mut rules = registry(&config);
    rules.push(Box::new(AnonymousApiAccess));
    Detector::with_rules(config, rules)
}

#[test]
fn a_third_rule_written_outside_the_crate_runs_through_the_whole_pipeline() {
    // GIVEN the shipped rules plus one more
    let p = Processor::new(
        with_third_rule(common::seed_config()),
        MemoryStore::new(),
        RecordingSink::default(),
    );
    // WHEN an anonymous listing of all pods succeeds
    let allowed = event("anonymous_pod_list_allowed.json").to_string();
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(p.handle_invoke_body(invoke_body(GROUP, "s1", &[(T0, allowed)]).as_bytes()))
        .expect("handled");
    // THEN both PodScan and the new rule alert, each with its own headline,
    // and the counters are keyed by the new rule's id
    let mut got: Vec<(String, Severity, String)> = p
        .sink()
        .published()
        .into_iter()
        .map(|a| (a.rule_id.as_str().to_owned(), a.severity, a.subject()))
        .collect();
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "Amazon.EKS.Audit.PodScan");
    assert_eq!(got[1].0, "Test.EKS.AnonymousAPIAccess");
    assert!(
        got[1]
            .2
            .starts_with("[HIGH] EKS anonymous API access from "),
        "{}",
        got[1].2
    );
    assert_eq!(report.scan.matches[&META.id], 1);
}

#[test]
fn a_new_rule_can_be_disabled_by_id_like_the_others() {
    let on = with_third_rule(DetectorConfig::default());
    assert!(on.rules().any(|r| r.meta().id == META.id));
    let config = DetectorConfig {
        disabled_rules: vec!["test.eks.anonymousapiaccess".into()],
        ..DetectorConfig::default()
    };
    let detector = with_third_rule(config);
    let ids: Vec<&str> = detector.rules().map(|r| r.meta().id.as_str()).collect();
    assert!(!ids.contains(&META.id.as_str()), "{ids:?}");
    // and only that one: every shipped rule on by default still runs
    let shipped = Detector::new(DetectorConfig::default());
    assert_eq!(ids.len(), shipped.rules().count());
}

#[test]
fn unknown_disabled_rules_are_refused_naming_the_variable() {
    let config = DetectorConfig {
        disabled_rules: vec!["Amazon.EKS.Audit.Nope".into()],
        ..DetectorConfig::default()
    };
    let e = eks_audit_detector::rules::check_rules(&config).expect_err("unknown");
    assert_eq!(e.variable, "DISABLED_RULES");
    assert!(e.reason.contains("Amazon.EKS.Audit.PodScan"), "{e}");
    assert!(e.reason.contains("EksAuditDetector.AwsAuthChanged"), "{e}");
    assert!(e.reason.contains("EksAuditDetector.Impersonation"), "{e}");
}
