//! Sigma rules through the real binary: as the Lambda function (rules from
//! `RULES_DIR`, state in DynamoDB, alerts through SNS, served by moto), and
//! through `replay --rules` and `rules check`.

mod common;

use common::runtime;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::aws::Stack;
use common::function::Function;
use common::runtime_api::{Outcome, RuntimeApi};
use common::sigma::{exec, secret_read};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(60);
const T0: i64 = 1_715_644_800_000;
const GROUP: &str = "/aws/eks/prod/cluster";
const RULES: &str = common::sigma::CORRELATIONS;

/// A rule file with one rule that loads and one that does not (line 14).
const BROKEN: &str = "\
title: Config map read
id: configmap-read
logsource: {product: kubernetes, service: audit}
detection:
  sel:
    verb: get
    objectRef.resource: configmaps
  condition: sel
---
title: Typo
id: typo
detection:
  sel:
    verb|contians: get
  condition: sel
logsource: {product: kubernetes}
";

/// A fresh folder holding `files`.
fn rules_dir(files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(common::aws::unique("sigma-rules"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("rule file");
    }
    dir
}

/// Twelve distinct secret reads by one user, then an exec: every
/// correlation of [`RULES`] is reached.
fn messages() -> Vec<(i64, String)> {
    let mut msgs: Vec<(i64, String)> = (0..12)
        .map(|n| (T0 + n as i64 * 1000, secret_read(n, json!({}))))
        .collect();
    msgs.push((T0 + 100_000, exec(100)));
    msgs
}

fn sorted_rule_ids(alerts: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = alerts
        .iter()
        .map(|a| a["rule_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

const EXPECTED: [&str; 4] = [
    "many-reads",
    "many-secrets",
    "read-and-exec",
    "read-then-exec",
];

#[test]
fn the_function_runs_the_rules_of_rules_dir_and_reports_the_one_it_cannot_load() {
    let rt = runtime();
    let stack = rt.block_on(Stack::new());
    let dir = rules_dir(&[("correlations.yml", RULES), ("broken.yml", BROKEN)]);
    let api = RuntimeApi::start();
    let function = Function::start_with(
        &api,
        &stack.table,
        &stack.topic_arn,
        ("test", "test"),
        &[("RULES_DIR", dir.to_str().expect("utf-8 path"))],
    );
    // WHEN the batch arrives in three invocations, and the first again
    let msgs = messages();
    let bodies: Vec<String> = msgs
        .chunks(5)
        .enumerate()
        .map(|(i, c)| common::invoke_body(GROUP, &format!("s{i}"), c))
        .collect();
    for body in bodies.iter().chain(bodies.first()) {
        assert!(
            matches!(api.invoke(body.as_bytes(), TIMEOUT), Outcome::Response(_)),
            "invocation failed"
        );
    }
    // THEN each correlation alerted once, and the rules they name did not
    let alerts: Vec<Value> = rt
        .block_on(stack.alerts())
        .iter()
        .map(|a| serde_json::to_value(a).expect("alert"))
        .collect();
    assert_eq!(sorted_rule_ids(&alerts), EXPECTED, "{alerts:#?}");
    let ordered = alerts
        .iter()
        .find(|a| a["rule_id"] == "read-then-exec")
        .expect("alert");
    assert_eq!(ordered["severity"], "MEDIUM");
    // AND the rule that could not load is in the log, with its line, and
    // counted for the alarm
    let logs = function.logs();
    let reported = logs.iter().any(|l| {
        l.to_string().contains("Sigma rule not loaded") && l.to_string().contains("broken.yml:14")
    });
    assert!(reported, "{logs:#?}");
    assert!(
        logs.iter().any(|l| l["RulesNotLoaded"] == 1),
        "the RulesNotLoaded metric"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn binary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eks-audit-detector"));
    c.env_remove("RULES_DIR")
        .env_remove("DISABLED_RULES")
        .env_remove("ENABLED_RULES")
        .env_remove("RULE_SETTINGS");
    c
}

fn write_ndjson(dir: &Path, msgs: &[(i64, String)]) -> PathBuf {
    let path = dir.join("audit.ndjson");
    let text: Vec<&str> = msgs.iter().map(|(_, m)| m.as_str()).collect();
    std::fs::write(&path, text.join("\n")).expect("ndjson");
    path
}

#[test]
fn replay_runs_every_correlation_type_from_rules() {
    let rules = rules_dir(&[("correlations.yml", RULES)]);
    let data = rules_dir(&[]);
    let input = write_ndjson(&data, &messages());
    let out = binary()
        .args(["replay", "--rules"])
        .arg(&rules)
        .arg(&input)
        .output()
        .expect("replay runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert line"))
        .collect();
    assert_eq!(sorted_rule_ids(&alerts), EXPECTED);
    // the summary has a line per Sigma rule too
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("many-secrets"), "{summary}");
    // ...and the same input in another order: event time decides the sequence
    let mut reversed = messages();
    reversed.reverse();
    let input = write_ndjson(&data, &reversed);
    let out = binary()
        .args(["replay", "--rules"])
        .arg(&rules)
        .arg(&input)
        .output()
        .expect("replay runs");
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert line"))
        .collect();
    assert_eq!(sorted_rule_ids(&alerts), EXPECTED);
    let _ = std::fs::remove_dir_all(rules);
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn rules_check_prints_file_and_line_and_fails() {
    let dir = rules_dir(&[("correlations.yml", RULES), ("broken.yml", BROKEN)]);
    let out = binary()
        .args(["rules", "check"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!("{}:14: ", dir.join("broken.yml").display());
    assert!(stdout.starts_with(&want), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    // the bundled rules pass
    let out = binary()
        .args([
            "rules",
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/rules"),
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(dir);
}
