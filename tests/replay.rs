//! The `replay` command end to end through the real binary.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eks-audit-detector"));
    // Rule settings from the caller's environment must not leak in.
    for var in [
        "MULTIPLE_403_THRESHOLD",
        "MULTIPLE_403_WINDOW_MINUTES",
        "POD_SCAN_WINDOW_MINUTES",
        "POD_SCAN_MATCH",
        "ALLOW_SOURCE_CIDRS",
        "DISABLED_RULES",
    ] {
        c.env_remove(var);
    }
    c
}

fn alerts(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is one JSON alert"))
        .collect()
}

#[test]
fn replay_of_the_sample_events_prints_their_alerts_and_a_summary() {
    let out = bin()
        .args(["replay", concat!(env!("CARGO_MANIFEST_DIR"), "/events")])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = alerts(&out.stdout);
    let ids: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().expect("rule_id"),
                a["severity"].as_str().expect("severity"),
            )
        })
        .collect();
    // Every rule at its defaults; the tamper samples (11-38) are about the
    // stack replay watches without DETECTOR_*.
    assert_eq!(
        ids,
        vec![
            ("Amazon.EKS.Audit.Multiple403", "INFO"),
            ("Kubernetes.API.Multiple403.PublicIP", "INFO"),
            ("Amazon.EKS.AnonymousAPIAccess", "INFO"),
            ("Amazon.EKS.Audit.PodScan", "LOW"),
            ("Kubernetes.API.AnonymousAccess", "INFO"),
            ("Amazon.EKS.AnonymousAPIAccess", "LOW"),
            ("Amazon.EKS.Audit.PodScan", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("Amazon.EKS.Audit.Multiple403", "INFO"),
            ("Kubernetes.API.Multiple403.PublicIP", "INFO"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "MEDIUM"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "MEDIUM"),
            ("EksAuditDetector.LoggingTampered", "MEDIUM"),
            ("EksAuditDetector.LoggingTampered", "MEDIUM"),
            ("EksAuditDetector.LoggingTampered", "MEDIUM"),
            ("EksAuditDetector.LoggingTampered", "MEDIUM"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "MEDIUM"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "MEDIUM"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.LoggingTampered", "LOW"),
            ("EksAuditDetector.LoggingTampered", "MEDIUM"),
            ("EksAuditDetector.LoggingTampered", "HIGH"),
            ("EksAuditDetector.AccessEntryAdmin", "HIGH"),
            ("EksAuditDetector.Workload.HostNamespaces", "MEDIUM"),
            ("EksAuditDetector.Workload.HostPath", "HIGH"),
            ("EksAuditDetector.Workload.Privileged", "HIGH"),
            ("Kubernetes.ClusterRoleBinding.Privileged", "HIGH"),
            ("Kubernetes.DaemonSet.Created", "INFO"),
        ]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("batches 10 (control messages 1)"),
        "{stderr}"
    );
    assert!(stderr.contains("skipped truncated        1"), "{stderr}");
    assert!(stderr.contains("skipped not_audit_event  1"), "{stderr}");
}

#[test]
fn replay_reads_ndjson_from_stdin_with_stage_timestamps() {
    let ev: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/events/forbidden_public.json"
        ))
        .expect("fixture"),
    )
    .expect("JSON");
    let mut input = String::new();
    for i in 0..10 {
        let mut e = ev.clone();
        e["auditID"] = Value::from(format!("id-{i}"));
        e["stageTimestamp"] = Value::from(format!("2024-05-14T00:0{i}:00.000000Z"));
        input.push_str(&e.to_string());
        input.push('\n');
    }
    let mut child = bin()
        .args(["replay", "--format", "ndjson", "--cluster", "lab", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("waits");
    assert!(out.status.success());
    let alerts = alerts(&out.stdout);
    // Panther's EKS rule, and its Kubernetes twin on the same burst
    let rules: Vec<&str> = alerts
        .iter()
        .map(|a| a["rule_id"].as_str().expect("rule_id"))
        .collect();
    assert_eq!(
        rules,
        [
            "Amazon.EKS.Audit.Multiple403",
            "Kubernetes.API.Multiple403.PublicIP"
        ]
    );
    assert_eq!(alerts[0]["dedup"], "lab_403_185.220.101.47");
    assert_eq!(alerts[0]["window_start"], "2024-05-14T00:00:00.000Z");
    assert_eq!(alerts[0]["last_seen"], "2024-05-14T00:09:00.000Z");
}

#[test]
fn replay_honours_rule_settings_and_rejects_bad_ones() {
    let out = bin()
        // above the samples' largest burst (20: two accounts' `prod` merged)
        .env("MULTIPLE_403_THRESHOLD", "21")
        .args(["replay", concat!(env!("CARGO_MANIFEST_DIR"), "/events")])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(alerts(&out.stdout)
        .iter()
        .all(|a| a["rule_id"] != "Amazon.EKS.Audit.Multiple403"));

    let out = bin()
        .env("POD_SCAN_MATCH", "fuzzy")
        .args(["replay", "events"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("POD_SCAN_MATCH"));
}

#[test]
fn replay_reports_an_undecodable_payload_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("replay-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("bad.json");
    std::fs::write(&file, br#"{"awslogs":{"data":"bm90IGd6aXA="}}"#).expect("write");
    let out = bin()
        .args(["replay", file.to_str().expect("utf8")])
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("InvalidPayload") && stderr.contains("gzip"),
        "{stderr}"
    );
}
