//! What an on-call engineer gets: every published alert names its region,
//! its cluster's ARN, what the source tried in the window and a query that
//! lists the requests, through the real pipeline (decode, rules, windows,
//! outbox, publish), live and from the sweep; and no hostile request makes
//! an alert or its record too large for SNS or DynamoDB.

mod common;

use common::{block_on, event, invoke_body, RecordingSink};
use eks_audit_detector::alert::Alert;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::{HandlerError, Processor, CLAIM_MARGIN_MS, DEFAULT_BUDGET_MS};
use eks_audit_detector::rules::Detector;
use eks_audit_detector::sink::sns::message_body;
use eks_audit_detector::store::memory::MemoryStore;
use eks_audit_detector::store::{state_key, StateStore};
use eks_audit_detector::time::ManualClock;
use eks_audit_detector::window::{PendingAlert, WindowState, MAX_RECORD_BYTES};
use serde_json::{json, Value};

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";

/// A detector in `region` running the first four rules, with `more`
/// settings from the environment.
fn processor(region: &str, more: &[(&str, &str)]) -> Processor<MemoryStore, RecordingSink> {
    let seed = common::seed_disabled();
    let mut config = DetectorConfig::from_lookup(|k| {
        more.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| (k == "DISABLED_RULES").then(|| seed.clone()))
    })
    .expect("valid settings");
    config.region = Some(region.to_owned());
    Processor::new(
        Detector::new(config),
        MemoryStore::new(),
        RecordingSink::default(),
    )
}

/// A sample Lambda event from `events/`.
fn sample_event(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn published_json(p: &Processor<MemoryStore, RecordingSink>) -> Vec<Value> {
    p.sink()
        .published()
        .iter()
        .map(|a| serde_json::from_str(&a.to_json()).expect("alert JSON"))
        .collect()
}

#[test]
fn a_403_burst_alert_names_its_region_cluster_requests_and_query() {
    // GIVEN the sample burst of refused requests from 185.220.101.47
    let p = processor("eu-west-1", &[]);
    // WHEN the function receives it
    block_on(p.handle_invoke_body(&sample_event("01-public-403-burst.json"))).expect("handled");
    // THEN the published alert says where, who and how to look
    let alerts = published_json(&p);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["region"], "eu-west-1");
    assert_eq!(
        a["cluster_arn"],
        "arn:aws:eks:eu-west-1:123456789012:cluster/prod-payments"
    );
    let context = &a["context"];
    assert_eq!(
        context["username"],
        json!(["system:serviceaccount:default:default"])
    );
    assert_eq!(context["sourceIPs"], json!(["185.220.101.47"]));
    assert_eq!(context["responseStatus"], json!([403]));
    assert_eq!(context["verb"], json!(["list"]));
    for field in ["userAgent", "namespace", "resource", "requestURI"] {
        assert!(context[field].is_array(), "{field}: {context}");
    }
    let query = a["investigate"]["query"].as_str().expect("a query");
    assert!(
        query.contains(r#"filter @message like "185.220.101.47" and responseStatus.code = 403"#),
        "{query}"
    );
    assert!(query.starts_with("fields @timestamp, user.username, verb"));
    let url = a["investigate"]["console_url"].as_str().expect("a link");
    assert!(
        url.starts_with(
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:logs-insights"
        ),
        "{url}"
    );
    assert!(url.contains("*22185.220.101.47*22"), "{url}");
    assert!(
        url.ends_with("~source~(~'/aws/eks/prod-payments/cluster))"),
        "{url}"
    );
    // AND the e-mail carries the same
    let email = p.sink().published()[0].email_text();
    for line in [
        "Region: eu-west-1",
        "Cluster ARN: arn:aws:eks:eu-west-1:123456789012:cluster/prod-payments",
        "Requests in the window:",
        "  responseStatus  403",
        "@message like \"185.220.101.47\"",
        "https://eu-west-1.console.aws.amazon.com/",
    ] {
        assert!(email.contains(line), "{line:?} missing from:\n{email}");
    }
}

#[test]
fn a_pod_scan_alert_queries_the_listing_as_the_rule_matched_it() {
    let p = processor("cn-north-1", &[]);
    block_on(p.handle_invoke_body(&sample_event("04-pod-scan-allowed.json"))).expect("handled");
    let alerts = published_json(&p);
    assert!(!alerts.is_empty());
    for a in &alerts {
        let ip = a["source_ip"].as_str().expect("ip");
        let query = a["investigate"]["query"].as_str().expect("query");
        assert!(
            query.contains(&format!("@message like \"{ip}\"")),
            "{query}"
        );
        assert!(
            query.contains(r"(requestURI like /(?i)^\/api\/v1\/pods$/)"),
            "{query}"
        );
        assert!(query.contains("(user.username like /(?i)^system:anonymous$/)"));
        // China: its own partition and console
        assert!(a["cluster_arn"]
            .as_str()
            .is_some_and(|arn| arn.starts_with("arn:aws-cn:eks:cn-north-1:")));
        assert!(a["investigate"]["console_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://cn-north-1.console.amazonaws.cn/cloudwatch/")));
        assert_eq!(a["context"]["verb"], json!(["list"]));
    }
}

#[test]
fn a_tamper_alert_tells_who_did_what_and_links_the_event() {
    let p = processor("us-east-1", &[]);
    block_on(p.handle_invoke_body(&sample_event("09-audit-logging-disabled.json")))
        .expect("handled");
    let alerts = p.sink().published();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.region.as_deref(), Some("us-east-1"));
    // a CloudTrail event, not requests in an audit log
    assert!(a.investigate.is_none());
    assert!(a.context.is_empty());
    let email = a.email_text();
    assert!(!email.contains("First matching request"), "{email}");
    for line in [
        "Who:        arn:aws:sts::123456789012:assumed-role/ci-deployer/session-7",
        "Did what:   UpdateClusterConfig on eks.amazonaws.com",
        "Result:     succeeded",
        "CloudTrail: https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/",
    ] {
        assert!(email.contains(line), "{line:?} missing from:\n{email}");
    }
}

#[test]
fn an_alert_an_older_version_left_in_the_outbox_is_placed_by_the_sweep() {
    // GIVEN an alert stored before alerts had a region, context or query
    let p = processor("us-gov-west-1", &[]);
    let old: Alert = serde_json::from_value(json!({
        "alert_id": "00000000000000000000000000000abc",
        "rule_id": "Amazon.EKS.Audit.Multiple403", "rule_name": "r", "headline": "EKS 403 burst",
        "severity": "INFO", "escalation": false, "title": "t", "dedup": "prod_403_5.5.5.5",
        "cluster": "prod", "source_ip": "5.5.5.5", "event_count": 10, "threshold": 10,
        "window_start": "2024-05-14T00:00:00.000Z", "window_end": "2024-05-14T00:30:00.000Z",
        "first_seen": "2024-05-14T00:00:00.000Z", "last_seen": "2024-05-14T00:01:00.000Z",
        "mitre": "", "reference": "", "runbook": "", "summary": {}, "log_group": GROUP,
        "account": "123456789012",
        "sample": {"auditID": "a", "requestURI": "/api/v1/secrets", "verb": "list",
            "userAgent": "curl/8", "username": "system:anonymous",
            "responseStatus": {"code": 403, "reason": "Forbidden"}, "stageTimestamp": null},
        "fanout_dropped": 0
    }))
    .expect("an old alert still reads");
    let now = p.now_ms();
    let state =
        WindowState::holding(vec![PendingAlert::new(old.clone(), now)], now).expect("a record");
    let pk = state_key(old.rule_id, &old.dedup);
    block_on(p.store().save(&pk, &state, None)).expect("stored");
    // WHEN the schedule sweeps the outbox
    block_on(p.handle_schedule()).expect("swept");
    // THEN the alert is published placed, with a context from its sample
    let alerts = p.sink().published();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(
        a.cluster_arn.as_deref(),
        Some("arn:aws-us-gov:eks:us-gov-west-1:123456789012:cluster/prod")
    );
    assert_eq!(a.context.username, ["system:anonymous"]);
    let inv = a.investigate.as_ref().expect("a query");
    assert!(
        inv.query.contains("@message like \"5.5.5.5\""),
        "{}",
        inv.query
    );
    assert!(inv.console_url.as_deref().is_some_and(|u| {
        u.starts_with("https://us-gov-west-1.console.amazonaws-us-gov.com/cloudwatch/")
    }));
}

/// A 200 KB string of what makes text grow when escaped (JSON, the query,
/// the link) or rendered (markup, mentions, control characters).
fn hostile(tag: usize) -> String {
    format!(
        "{tag:04}{}",
        "\"\\\u{1}<!here> @channel ü\u{202e}~'*%".repeat(200 * 1024 / 32)
    )
}

/// `ev` with every request field 200 KB of hostile text, except those a
/// rule must see as they are (`keep`).
fn hostile_event(mut ev: Value, tag: usize, ip: &str, keep: &[&str]) -> String {
    let set = |ev: &mut Value, pointer: &str, value: Value| {
        if !keep.contains(&pointer) {
            let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
            let parent = if parent.is_empty() {
                ev
            } else {
                ev.pointer_mut(parent).expect("parent exists")
            };
            parent[key] = value;
        }
    };
    for (i, pointer) in [
        "/auditID",
        "/userAgent",
        "/stageTimestamp",
        "/user/username",
        "/objectRef/namespace",
        "/objectRef/name",
        "/objectRef/resource",
        "/verb",
        "/requestURI",
        "/responseStatus/reason",
    ]
    .into_iter()
    .enumerate()
    {
        set(&mut ev, pointer, Value::from(hostile(tag * 100 + i)));
    }
    let mut ips = vec![Value::from(ip)];
    ips.extend((0..6).map(|i| Value::from(hostile(tag * 100 + 50 + i))));
    set(&mut ev, "/sourceIPs", Value::from(ips));
    ev.to_string()
}

/// Sizes of what `p` published, and of the records its store holds.
fn sizes(p: &Processor<MemoryStore, RecordingSink>) -> (usize, usize, usize) {
    let alerts = p.sink().published();
    let json = alerts.iter().map(|a| a.to_json().len()).max().unwrap_or(0);
    let message = alerts
        .iter()
        .map(|a| message_body(a).len())
        .max()
        .unwrap_or(0);
    // The item: the state as JSON plus its key and a few small attributes.
    let record = p
        .store()
        .snapshot()
        .iter()
        .map(|(pk, v)| 2 * pk.len() + serde_json::to_string(&v.state).expect("json").len() + 200)
        .max()
        .unwrap_or(0);
    (json, message, record)
}

#[test]
fn hostile_requests_cannot_make_an_alert_or_its_record_too_large() {
    // GIVEN windows that fill every tally with 200 KB values before they
    // alert (thresholds raised to 6: values are cut to 256 bytes, and a
    // tally keeps 1 KB of them; PodScan's broad URIs, refused then
    // allowed, so it escalates), while SNS is down: every alert waits in
    // its record's outbox
    let settings = r#"{"Amazon.EKS.Audit.Multiple403": {"threshold": 6},
        "Kubernetes.Role.Wildcard": {"threshold": 6}}"#;
    let clock = ManualClock::at(T0);
    let p = processor(
        "us-east-1",
        &[
            ("RULE_SETTINGS", settings),
            ("POD_SCAN_MATCH", "broad"),
            ("DISABLED_RULES", ""),
        ],
    )
    .with_clock(clock.clone());
    p.sink().fail(true);
    for i in 0..6 {
        // One event per rule a batch: three of them are 7 MB, under the
        // decompressed-size cap.
        let mut msgs: Vec<(i64, String)> = Vec::new();
        let at = T0 + i as i64;
        let mut refused = event("forbidden_public.json");
        // (the rule only counts API paths)
        refused["requestURI"] = Value::from(format!("/api/v1/{}", hostile(i)));
        msgs.push((at, hostile_event(refused, i, "5.5.5.5", &["/requestURI"])));
        let mut role = event("forbidden_public.json");
        role["verb"] = json!("create");
        role["objectRef"]["resource"] = json!("roles");
        role["responseStatus"] = json!({"code": 201});
        role["requestObject"] =
            json!({"kind": "Role", "rules": [{"verbs": ["*"], "resources": ["*"]}]});
        msgs.push((
            at,
            hostile_event(
                role,
                1000 + i,
                "6.6.6.6",
                &[
                    "/verb",
                    "/objectRef/resource",
                    "/user/username",
                    "/objectRef/name",
                ],
            ),
        ));
        let mut scan = event("anonymous_pod_list_refused.json");
        if i == 5 {
            scan["responseStatus"] = json!({"code": 200});
        }
        scan["requestURI"] = Value::from(format!("/api/v1/pods?{}", hostile(2000 + i)));
        msgs.push((
            at,
            hostile_event(
                scan,
                3000 + i,
                "7.7.7.7",
                &[
                    "/verb",
                    "/objectRef/resource",
                    "/user/username",
                    "/requestURI",
                ],
            ),
        ));
        let body = invoke_body(GROUP, &format!("s{i}"), &msgs);
        let handled = block_on(p.handle_invoke_body(body.as_bytes()));
        assert!(
            matches!(handled, Err(HandlerError::Publish { .. })),
            "{handled:?}"
        );
    }
    let (_, _, record) = sizes(&p);
    // WHEN SNS is back and the sweep delivers them, once the failed
    // invocation's claims have ended
    p.sink().fail(false);
    clock.advance(DEFAULT_BUDGET_MS + CLAIM_MARGIN_MS);
    block_on(p.handle_schedule()).expect("swept");
    // THEN every rule alerted, with its details whole
    let alerts = p.sink().published();
    for rule in [
        "Amazon.EKS.Audit.Multiple403",
        "Kubernetes.Role.Wildcard",
        "Amazon.EKS.Audit.PodScan",
    ] {
        let a = alerts
            .iter()
            .find(|a| a.rule_id.as_str() == rule)
            .unwrap_or_else(|| panic!("{rule} alerted: {alerts:?}"));
        assert!(a.investigate.is_some() && !a.context.is_empty(), "{rule}");
        assert!(a.sample.audit_id.is_some(), "{rule} kept its sample");
    }
    assert!(alerts.iter().any(|a| a.escalation), "PodScan escalated");
    // AND no cut value reached a query
    for a in &alerts {
        let query = &a.investigate.as_ref().expect("query").query;
        assert!(
            !query.contains("[cut") && !query.contains('\u{1}'),
            "{query}"
        );
    }
    let (json, message, _) = sizes(&p);
    eprintln!(
        "hostile: largest alert JSON {json} bytes, SNS message {message} bytes, record with \
         undelivered alerts {record} bytes"
    );
    // AND all of it stays well under SNS's 256 KB and DynamoDB's 400 KB
    assert!(json < 32 * 1024, "alert JSON of {json} bytes");
    assert!(message < 128 * 1024, "SNS message of {message} bytes");
    assert!(record < MAX_RECORD_BYTES, "record of {record} bytes");
    for a in &alerts {
        let text = a.email_text();
        assert!(!text.contains("<!here>") && !text.contains("@channel"));
        assert!(!text.contains('\u{1}') && !text.contains('\u{202e}'));
    }
}
