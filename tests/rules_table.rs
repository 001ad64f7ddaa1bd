//! README's rule table is `rules list --format markdown` with default
//! settings: this test fails when they disagree (`make rules-table`
//! rewrites it).

use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::rules::listing::{render_markdown, rows};

#[test]
fn the_readme_lists_every_rule_as_rules_list_does() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let begin = "<!-- rules-table:begin -->\n";
    let end = "<!-- rules-table:end -->";
    let start = readme.find(begin).expect("begin marker") + begin.len();
    let stop = readme[start..].find(end).expect("end marker") + start;
    let table = &readme[start..stop];
    // `rules list` lists the bundled Sigma rules too
    let config = DetectorConfig {
        sigma: eks_audit_detector::sigma::SigmaRules(std::sync::Arc::new(
            eks_audit_detector::sigma::load(&eks_audit_detector::sigma::bundled()),
        )),
        ..DetectorConfig::default()
    };
    let want = render_markdown(&rows(&config));
    assert_eq!(
        table, want,
        "README's rule table is stale: run `make rules-table`"
    );
}

#[test]
fn every_rule_is_listed_once_with_its_source_and_mitre() {
    let rows = rows(&DetectorConfig::default());
    let mut ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "an id is listed twice");
    let panther = rows.iter().filter(|r| r.source == "Panther").count();
    assert_eq!(panther, 33, "Panther's EKS and Kubernetes catalog");
    for r in &rows {
        assert!(!r.title.is_empty(), "{}", r.id);
        assert!(r.threshold >= 1, "{}", r.id);
    }
    // The rules Panther ships off are listed, off.
    for off in ["Kubernetes.Pod.Exec", "Kubernetes.BulkSecretAccess"] {
        let r = rows.iter().find(|r| r.id == off).expect("listed");
        assert!(!r.enabled && !r.enabled_by_default, "{off}");
    }
}
