//! Decoding untrusted payloads: bad lines are skipped and counted, bad
//! envelopes are clear errors, arbitrary bytes never panic, and the prefilter
//! never hides a match.

mod common;

use base64::Engine as _;
use common::{batch_json, event, fixture};
use eks_audit_detector::audit::AuditEvent;
use eks_audit_detector::config::{DetectorConfig, PodScanMatch};
use eks_audit_detector::decode::{extract_data, inflate, Batch, MessageType};
use eks_audit_detector::prefilter::Prefilter;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::scan::{ScanStats, Scanner, SkipReason};
use eks_audit_detector::vocab::EventContext;
use proptest::prelude::*;
use serde_json::{json, Value};

fn scan(json: &str) -> (ScanStats, usize) {
    let detector = Detector::new(common::seed_config());
    let batch = Batch::parse(json.as_bytes()).expect("batch parses");
    let mut out = Vec::new();
    let mut stats = ScanStats::default();
    Scanner::new(&detector).scan_batch(&batch, &mut out, &mut stats);
    (stats, out.len())
}

#[test]
fn bad_lines_are_skipped_and_counted_by_reason() {
    let good = event("forbidden_public.json").to_string();
    let truncated = format!("{}[Truncated...]", &good[..200]);
    let lines = vec![
        (1, good.clone()),
        (2, truncated),
        (
            3,
            "time=\"2024-05-14T00:00:00Z\" level=info msg=\"access granted\"".to_owned(),
        ),
        (
            4,
            r#"{"level":"info","msg":"not an audit event","code":403}"#.to_owned(),
        ),
        (
            5,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":403}"#.to_owned(),
        ),
        (6, "{\"kind\":\"Event\",\"code\":403".to_owned()),
        (7, good),
    ];
    let (stats, matches) = scan(&batch_json("/aws/eks/prod/cluster", "s", &lines));
    assert_eq!(stats.events, 7);
    assert_eq!(matches, 2);
    assert_eq!(stats.skipped[&SkipReason::Truncated], 1);
    assert_eq!(stats.skipped[&SkipReason::NotJson], 2);
    assert_eq!(stats.skipped[&SkipReason::NotAuditEvent], 2);
}

#[test]
fn log_events_without_message_or_timestamp_are_counted() {
    let json = json!({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[
        {"id":"1","timestamp":1},
        {"id":"2","message":"{}"},
        {"id":"3","timestamp":1,"message":{"not":"a string"}}
    ]})
    .to_string();
    let (stats, _) = scan(&json);
    assert_eq!(stats.skipped[&SkipReason::BadLogEvent], 2);
    assert_eq!(stats.skipped[&SkipReason::NotJson], 1);
}

#[test]
fn control_messages_are_recognised() {
    let body = fixture("../../events/05-control-message.json");
    let data = extract_data(body.as_bytes()).expect("envelope");
    let json = inflate(&data, 1 << 20).expect("inflates");
    assert_eq!(
        Batch::parse(&json).expect("batch").kind(),
        MessageType::Control
    );
}

/// The samples that are not one subscription batch (EventBridge events,
/// Kinesis records).
fn is_schedule(body: &[u8]) -> bool {
    !matches!(
        eks_audit_detector::decode::classify_invoke(body),
        Ok(eks_audit_detector::decode::Invocation::Logs(_))
    )
}

#[test]
fn every_kinesis_sample_record_is_padded_base64_of_gzip() {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/10-kinesis-two-accounts.json"
    ))
    .expect("read");
    let Ok(eks_audit_detector::decode::Invocation::Kinesis(records)) =
        eks_audit_detector::decode::classify_invoke(&body)
    else {
        panic!("a Kinesis event");
    };
    assert_eq!(records.len(), 3);
    for r in records {
        assert_eq!(r.kinesis.data.len() % 4, 0, "padded");
        let json = inflate(&r.kinesis.data, 1 << 20).expect("gzip");
        Batch::parse(&json).expect("a subscription payload");
    }
}

#[test]
fn sample_events_decode_like_the_aws_lambda_events_crate() {
    // The reference decoder (aws_lambda_events) and ours agree on every sample.
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events")).expect("events/")
    {
        let path = entry.expect("entry").path();
        let body = std::fs::read(&path).expect("read");
        if is_schedule(&body) {
            continue;
        }
        let reference: aws_lambda_events::event::cloudwatch_logs::LogsEvent =
            serde_json::from_slice(&body).expect("reference decoder accepts the sample");
        let data = extract_data(&body).expect("envelope");
        let json = inflate(&data, 1 << 20).expect("inflates");
        let ours = Batch::parse(&json).expect("batch");
        let r = &reference.aws_logs.data;
        assert_eq!(ours.log_group, r.log_group.as_str(), "{path:?}");
        assert_eq!(ours.log_events.len(), r.log_events.len(), "{path:?}");
        for (o, e) in ours.log_events.iter().zip(&r.log_events) {
            let msg: String = serde_json::from_str(o.message.expect("message")).expect("string");
            assert_eq!(msg, e.message);
            assert_eq!(o.timestamp, Some(e.timestamp));
        }
    }
}

#[test]
fn every_sample_event_is_padded_base64_of_gzip() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events")).expect("events/")
    {
        let body = std::fs::read(entry.expect("entry").path()).expect("read");
        if is_schedule(&body) {
            continue;
        }
        let data = extract_data(&body).expect("envelope");
        assert_eq!(data.len() % 4, 0, "padded");
        assert!(inflate(&data, 1 << 20).is_ok());
    }
}

// ---------------------------------------------------------------- properties

/// Bytes that gzip cannot shrink (a simple LCG: deterministic, no crate).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as u8
        })
        .collect()
}

proptest! {
    #[test]
    fn payloads_around_and_above_the_cap_are_errors_not_panics(
        limit in 1usize..4096,
        delta in -3i64..4,
        seed in any::<u64>(),
        oversized_compressed in any::<bool>(),
    ) {
        // GIVEN a payload whose decompressed size is just under, at or over
        // the cap, or whose compressed form alone is larger than the cap
        let len = if oversized_compressed { limit * 3 } else { (limit as i64 + delta).max(0) as usize };
        let raw = noise(len, seed);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &raw).expect("in-memory");
        let data = base64::engine::general_purpose::STANDARD.encode(enc.finish().expect("in-memory"));
        // THEN it inflates exactly when it fits, and is TooLarge otherwise
        match inflate(&data, limit) {
            Ok(out) => prop_assert!(out.len() <= limit && out == raw),
            Err(e) => {
                prop_assert!(len > limit, "{e}");
                prop_assert!(e.to_string().contains("exceeds"), "{e}");
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = extract_data(&bytes);
        let _ = Batch::parse(&bytes);
        let _ = AuditEvent::parse(&String::from_utf8_lossy(&bytes));
        let text: String = bytes.iter().map(|b| char::from(b'A' + b % 26)).collect();
        let _ = inflate(&text, 4096);
    }

    #[test]
    fn arbitrary_gzip_content_never_panics_the_scanner(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let data = {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&bytes).expect("write");
            base64::engine::general_purpose::STANDARD.encode(enc.finish().expect("finish"))
        };
        let json = inflate(&data, 1 << 20).expect("valid gzip inflates");
        if let Ok(batch) = Batch::parse(&json) {
            let detector = Detector::new(common::seed_config());
            Scanner::new(&detector).scan_batch(&batch, &mut Vec::new(), &mut ScanStats::default());
        }
    }

    #[test]
    fn corrupted_payloads_are_errors_not_panics(cut in 0usize..400, flip in any::<u8>()) {
        let body = fixture("../../events/01-public-403-burst.json");
        let data = extract_data(body.as_bytes()).expect("envelope").into_owned();
        let mut bytes = data.into_bytes();
        let at = cut % bytes.len();
        bytes[at] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ+/="[usize::from(flip) % 29];
        let _ = inflate(&String::from_utf8_lossy(&bytes), 1 << 20).map(|j| Batch::parse(&j).is_ok());
    }
}

/// Escapes every character of `s` as `\u00XX` when `all` is set.
fn encode_str(s: &str, escape: bool) -> String {
    if !escape {
        return serde_json::to_string(s).expect("string");
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        out.push_str(&format!("\\u{:04x}", c as u32));
    }
    out.push('"');
    out
}

fn vocab() -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize, bool, bool)> {
    (
        0usize..4,
        0usize..5,
        0usize..4,
        0usize..4,
        0usize..4,
        0usize..5,
        any::<bool>(),
        any::<bool>(),
    )
}

proptest! {
    /// Whatever the field values, key order and escaping, a message the
    /// prefilter drops matches no rule when parsed in full.
    #[test]
    fn prefilter_never_drops_a_message_that_matches(
        (user, verb, uri, code, ip, stage, escape, reorder) in vocab(),
        broad in any::<bool>(),
        (name, impersonated, configmaps) in (0usize..3, 0usize..3, any::<bool>()),
    ) {
        let users = ["system:anonymous", "SYSTEM:ANONYMOUS", "kubernetes-admin", "system:node:ip-10-0-1-1"];
        let verbs = ["list", "LIST", "get", "watch", "patch"];
        let uris = ["/api/v1/pods", "/api/v1/pods?limit=500", "/apis/apps/v1/deployments", "/healthz"];
        let codes = ["403", "200", "401", "\"403\""];
        let ips = ["5.5.5.5", "10.0.0.1", "2a03:b0c0::1", "bogus"];
        let stages = ["ResponseComplete", "ResponseStarted", "RequestReceived", "Panic", "ResponseComplete"];
        let mut fields = vec![
            format!("\"kind\":{}", encode_str("Event", escape)),
            format!("\"apiVersion\":{}", encode_str("audit.k8s.io/v1", escape)),
            format!("\"stage\":{}", encode_str(stages[stage], escape)),
            format!("\"requestURI\":{}", encode_str(uris[uri], escape)),
            format!("\"verb\":{}", encode_str(verbs[verb], escape)),
            format!("\"user\":{{\"username\":{},\"groups\":[\"system:unauthenticated\"]}}", encode_str(users[user], escape)),
            format!("\"sourceIPs\":[{}]", encode_str(ips[ip], escape)),
            format!("\"objectRef\":{{\"resource\":{},\"namespace\":{},\"name\":{}}}",
                encode_str(if configmaps { "configmaps" } else { "pods" }, escape),
                encode_str("kube-system", escape),
                encode_str(["aws-auth", "coredns", "AWS-AUTH"][name], escape)),
            format!("\"responseStatus\":{{\"code\":{}}}", codes[code]),
        ];
        // AwsAuthChanged and Impersonation: an identity acted as, or none
        match impersonated {
            1 => fields.push(format!("\"impersonatedUser\":{{\"username\":{}}}", encode_str("system:admin", escape))),
            2 => fields.push(format!("{}:{{\"username\":{},\"groups\":[{}]}}",
                encode_str("impersonatedUser", escape), encode_str("dev", escape), encode_str("system:masters", escape))),
            _ => {}
        }
        if reorder {
            fields.reverse();
        }
        let msg = format!("{{ {} }}", fields.join(" , "));
        let cfg = DetectorConfig {
            pod_scan_match: if broad { PodScanMatch::Broad } else { PodScanMatch::Exact },
            ..common::seed_config()
        };
        let detector = Detector::new(cfg);
        let ev = AuditEvent::parse(&msg).expect("generated event parses");
        let mut out = Vec::new();
        detector.evaluate(&ev, EventContext { cluster: "c", at_ms: 0 }, &mut out, |_, _| {});
        let prefilter = Prefilter::new(&detector);
        if !out.is_empty() {
            prop_assert!(prefilter.may_match(msg.as_bytes()), "dropped a match: {}", msg);
            // and in the envelope's escaped form too
            let escaped = serde_json::to_string(&msg).expect("string");
            prop_assert!(prefilter.may_match(escaped.as_bytes()), "dropped a match (escaped): {}", escaped);
        }
    }
}

#[test]
fn prefilter_drops_most_normal_traffic() {
    let detector = Detector::new(common::seed_config());
    let p = Prefilter::new(&detector);
    let normal: Value = event("kubelet_lease_update.json");
    assert!(!p.may_match(normal.to_string().as_bytes()));
    // a kube-apiserver escape of '&' is not an escaped letter or digit
    assert!(!p.may_match(br#"{"requestURI":"/api/v1/nodes?limit=500\u0026resourceVersion=0"}"#));
}

// ------------------------------------------- the envelope's two readers agree

/// Pieces of a subscription envelope, some of them of unusual shape.
fn envelope_text() -> impl Strategy<Value = String> {
    let ws = prop::sample::select(vec!["", "", "", " ", "\n  ", "\t"]);
    let message = prop::collection::vec(
        prop::sample::select(vec![
            "{", "}", "\\\"", "kind", ":", "\\\\", "\\u0026", "\\/", "\\n", "403", "é",
            // what JSON refuses in a string
            "\\q", "\u{1}", "\\u00zz",
        ]),
        0..40,
    )
    .prop_map(|parts| format!("\"{}\"", parts.concat()));
    let timestamp = prop::sample::select(vec![
        "1715644800000",
        "0",
        "-5",
        "253402300799999",
        "253402300800000",
        "1.5",
        "1e3",
        "01",
        "99999999999999999999999",
        "\"1715644800000\"",
        "null",
    ]);
    let id = prop::sample::select(vec!["\"3776\"", "\"a\\u0062c\"", "7", "null"]);
    let entry = (
        message,
        timestamp,
        id,
        prop::sample::select(vec![0u8, 0, 0, 1, 2, 3]),
        ws.clone(),
    )
        .prop_map(|(m, t, id, shape, w)| match shape {
            // an extra member, a missing one, not an object at all
            1 => format!("{{\"id\":{id},\"timestamp\":{t},\"message\":{m},\"x\":1}}"),
            2 => format!("{{{w}\"message\"{w}:{w}{m}{w}}}"),
            3 => m,
            _ => format!("{{\"id\":{w}{id},\"timestamp\":{t}{w},\"message\":{m}}}"),
        });
    let events = prop::collection::vec(entry, 0..6).prop_map(|e| format!("[{}]", e.join(",")));
    let member = prop::sample::select(vec![
        "\"messageType\":\"DATA_MESSAGE\"",
        "\"owner\":\"123456789012\"",
        "\"logGroup\":\"/aws/eks/prod/cluster\"",
        "\"logStream\":\"kube-apiserver-audit-1\"",
        "\"logGroup\":\"/aws/eks/pr\\u006fd/cluster\"",
        "\"subscriptionFilters\":[\"f\", {\"a\": [null, true]}]",
        "\"policyLevel\":\"ACCOUNT_LEVEL_POLICY\"",
        "\"count\":3",
        "\"owner\":5",
        "\"log\\u0045vents\":[]",
        "\"logEvents\":null",
    ]);
    (
        prop::collection::vec(member, 0..5),
        events,
        0usize..6,
        ws,
        prop::sample::select(vec!["", "", "", " x", "}", "\n"]),
        any::<bool>(),
    )
        .prop_map(|(mut members, events, at, w, tail, cut)| {
            members.insert(at.min(members.len()), "LOGEVENTS");
            let body = members.join(&format!(",{w}"));
            let text = format!("{w}{{{w}{}{w}}}{tail}", body)
                .replace("LOGEVENTS", &format!("\"logEvents\"{w}:{w}{events}"));
            if cut {
                let mut n = text.len() * 2 / 3;
                while !text.is_char_boundary(n) {
                    n -= 1;
                }
                text[..n].to_owned()
            } else {
                text
            }
        })
}

/// What a reading of the envelope found, to compare.
fn reading(r: &Result<Batch<'_>, eks_audit_detector::decode::DecodeError>) -> String {
    match r {
        Err(_) => "error".into(),
        Ok(b) => format!(
            "{}|{}|{}|{}|{:?}",
            b.message_type,
            b.owner,
            b.log_group,
            b.log_stream,
            b.log_events
                .iter()
                .map(|e| (e.id.as_deref(), e.timestamp, e.message))
                .collect::<Vec<_>>()
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// The fast reader of CloudWatch's envelope and serde_json read every
    /// input the same way: the same batch, or an error from both.
    #[test]
    fn the_fast_envelope_reader_agrees_with_serde_json(text in envelope_text()) {
        let fast = Batch::parse(text.as_bytes());
        let general = Batch::parse_general(text.as_bytes());
        prop_assert_eq!(reading(&fast), reading(&general), "{}", text);
    }
}

#[test]
fn cloudwatch_envelopes_are_read_by_the_fast_reader_alike() {
    // Every sample event's envelope, read both ways.
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events")).expect("events/")
    {
        let body = std::fs::read(entry.expect("entry").path()).expect("read");
        let Ok(data) = extract_data(&body) else {
            continue;
        };
        let json = inflate(&data, 1 << 20).expect("inflates");
        assert_eq!(
            reading(&Batch::parse(&json)),
            reading(&Batch::parse_general(&json))
        );
    }
}
