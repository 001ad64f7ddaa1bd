//! Loading rules of your own goes wrong one file at a time: a file that
//! cannot run is skipped and reported, the others keep working, and
//! `rules check` gives the answer the function acts on.

use std::process::Command;

use eks_audit_detector::sigma::{self, LoadedText};

const BIN: &str = env!("CARGO_BIN_EXE_eks-audit-detector");

const READ: &str = "title: s\nid: secret-read\nlogsource: {product: kubernetes, service: audit}\n\
                    detection:\n  sel:\n    verb: get\n    objectRef.resource: secrets\n  condition: sel\n";

fn text(name: &str, text: &str) -> LoadedText {
    LoadedText {
        name: name.into(),
        text: text.into(),
    }
}

/// `rules check DIR`.
fn check(dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(["rules", "check"])
        .arg(dir)
        .output()
        .expect("runs")
}

/// `rules list` with `RULES_DIR` set to `dir` and the settings `env`.
fn list(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(["rules", "list"]).env("RULES_DIR", dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("runs")
}

/// A fresh folder holding `files`, removed when dropped.
struct Folder(std::path::PathBuf);

impl std::ops::Deref for Folder {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn folder(tag: &str, files: &[(&str, &str)]) -> Folder {
    let d = std::env::temp_dir().join(format!("rules-loading-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("folder");
    for (name, body) in files {
        std::fs::write(d.join(name), body).expect("file");
    }
    Folder(d)
}

/// A correlation refused at load leaves the rules it names as quiet as a
/// loaded one would: they were written to be counted, not to alert on
/// every event.
#[test]
fn a_refused_correlation_does_not_make_its_rules_alert_alone() {
    let ids = |condition: &str| -> Vec<String> {
        let c = format!(
            "title: c\nid: c\ncorrelation:\n  type: event_count\n  rules: [secret-read]\n  \
             group-by: [user.username]\n  timespan: 5m\n  condition:\n    {condition}\n"
        );
        sigma::load(&[text("b.yml", READ), text("c.yml", &c)])
            .rules
            .iter()
            .map(|r| r.id.clone())
            .collect()
    };
    assert_eq!(ids("gte: 3"), ["c"]);
    assert_eq!(ids("lt: 3"), Vec::<String>::new());
}

/// Two links back to their own folder: the walk ends, and reads each rule
/// once.
#[test]
fn links_back_to_a_folder_do_not_make_the_walk_endless() {
    let d = folder("links", &[("r.yml", READ)]);
    std::os::unix::fs::symlink(".", d.join("a")).expect("link");
    std::os::unix::fs::symlink(".", d.join("b")).expect("link");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(sigma::read_dir(&d).0.len());
    });
    let read = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the walk ends");
    assert_eq!(read, 1);
}

/// `rules check` loads a folder beside the bundled rules, as the function
/// does: a copy of a bundled rule's id is refused, and a correlation may
/// name a bundled rule.
#[test]
fn rules_check_answers_as_the_function_loads() {
    let bundled = sigma::load(&sigma::bundled());
    let (first, second) = (&bundled.rules[0].id, &bundled.rules[1].id);
    let copy = format!(
        "title: c\nid: {first}\nlogsource: {{product: kubernetes}}\ndetection:\n  sel:\n    verb: delete\n  condition: sel\n"
    );
    let corr = format!(
        "title: c\nid: c\ncorrelation:\n  type: event_count\n  rules: [{second}]\n  \
         group-by: [user.username]\n  timespan: 5m\n  condition:\n    gte: 3\n"
    );
    let d = folder("check", &[("copy.yml", &copy), ("corr.yml", &corr)]);
    let function: Vec<String> = sigma::load_with_bundled(std::slice::from_ref(&d.0))
        .problems
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(function.len(), 1, "{function:?}");
    let out = check(&d);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(printed.lines().collect::<Vec<_>>(), function);
}

/// A setting that names a rule of a file that could not load leaves that
/// rule out; the function starts and every other rule works.
#[test]
fn settings_naming_a_rule_that_did_not_load_stop_nothing() {
    let typo = "title: m\nid: mine\nlogsource: {product: kubernetes}\ndetection:\n  sel:\n    verb|contians: get\n  condition: sel\n";
    let d = folder("skip", &[("mine.yml", typo), ("good.yml", READ)]);
    for (variable, value) in [
        ("RULE_SETTINGS", r#"{"mine": {"dedup_minutes": 5}}"#),
        ("ENABLED_RULES", "mine"),
    ] {
        let out = list(&d, &[(variable, value)]);
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{variable}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listed.contains("secret-read"), "{listed}");
    }
    // Without a file that failed, an unknown name is still a typo.
    let good = folder("good", &[("good.yml", READ)]);
    let out = list(&good, &[("ENABLED_RULES", "mine")]);
    assert_eq!(out.status.code(), Some(2));
}

/// A rule that counts distinct values keeps 20 of them per window, so a
/// threshold above 20 would count a value it did not keep again every
/// time: refused in `RULE_SETTINGS` as in the rule file. A rule counting
/// events takes any threshold.
#[test]
fn a_threshold_past_what_a_window_keeps_is_refused_in_settings_too() {
    let counting = |kind: &str, extra: &str| {
        format!(
            "{READ}---\ntitle: m\nid: many\ncorrelation:\n  type: {kind}\n  rules: [secret-read]\n  \
             group-by: [user.username]\n  timespan: 10m\n  condition:\n    gte: 3\n{extra}"
        )
    };
    let exit = |file: &str, settings: &str| {
        let d = folder(&format!("threshold-{}", file.len()), &[("r.yml", file)]);
        let out = list(&d, &[("RULE_SETTINGS", settings)]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let values = counting("value_count", "    field: objectRef.name\n");
    let (code, err) = exit(&values, r#"{"many": {"threshold": 25}}"#);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at most 20"), "{err}");
    assert_eq!(exit(&values, r#"{"many": {"threshold": 20}}"#).0, Some(0));
    let events = counting("event_count", "");
    assert_eq!(exit(&events, r#"{"many": {"threshold": 25}}"#).0, Some(0));
    let (code, err) = exit(
        READ,
        r#"{"Kubernetes.BulkSecretAccess": {"threshold": 50}}"#,
    );
    assert_eq!(code, Some(2), "{err}");
}

/// Settings name rules by id, whatever its case: a Sigma rule cannot take
/// a built-in rule's id, nor one another rule of yours holds in another
/// case.
#[test]
fn a_rule_of_your_own_cannot_take_a_taken_id() {
    let with_id = |id: &str| {
        format!(
            "title: m\nid: {id}\nlogsource: {{product: kubernetes}}\ndetection:\n  sel:\n    verb: get\n  condition: sel\n"
        )
    };
    for taken in [
        "Amazon.EKS.Audit.Multiple403",
        "amazon.eks.audit.multiple403",
        "EksAuditDetector.LoggingTampered",
    ] {
        let set = sigma::load(&[text("m.yml", &with_id(taken))]);
        assert!(set.rules.is_empty(), "{taken}");
        assert!(
            set.problems[0].to_string().contains("a built-in rule"),
            "{}",
            set.problems[0]
        );
    }
    let set = sigma::load(&[
        text("a.yml", &with_id("Mine")),
        text("b.yml", &with_id("mine")),
    ]);
    assert_eq!(set.rules.len(), 1);
    assert_eq!(set.problems.len(), 1);
}

/// A condition nested thousands deep (`not not ... sel`, within the 64 KB a
/// condition may take) is refused with its reason; it crashes nothing, and
/// the folder's other rules load.
#[test]
fn a_condition_nested_thousands_deep_is_refused_and_crashes_nothing() {
    let deep = format!(
        "title: d\nid: deep\nlogsource: {{product: kubernetes}}\ndetection:\n  sel:\n    verb: get\n  condition: {}sel\n",
        "not ".repeat(10_000)
    );
    let d = folder("deep", &[("deep.yml", &deep), ("good.yml", READ)]);
    let checked = check(&d);
    let printed = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(1), "{printed}");
    assert!(printed.contains("nested 10001 deep"), "{printed}");
    let listed = list(&d, &[]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("secret-read"));
    // Nesting within the bound loads.
    let fine = READ.replace(
        "condition: sel",
        &format!("condition: {}sel", "not not ".repeat(30)),
    );
    assert_eq!(sigma::load(&[text("f.yml", &fine)]).rules.len(), 1);
}
