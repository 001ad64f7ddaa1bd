//! Panther's EKS and Kubernetes catalog (`panther-labs/panther-analysis`,
//! `rules/aws_eks_rules` and `rules/kubernetes_rules`), ported rule by rule:
//! the EKS branch of each rule's logic, with Panther's id, severity,
//! threshold, dedup period, dedup key and title. One file per rule, in
//! three groups; each rule is checked against Panther's own tests
//! (`tests/panther_catalog.rs`). Descriptions and runbooks are this
//! project's. `Amazon.EKS.Audit.Multiple403`, the first of them, keeps its
//! own module ([`crate::rules::multiple_403`]).

pub mod access;
pub mod pods;
pub mod rbac;

use super::Rule;
use crate::config::DetectorConfig;

/// Every ported rule, group by group, built from the settings.
pub fn rules(config: &DetectorConfig) -> Vec<Box<dyn Rule>> {
    let mut out = access::rules(config);
    out.extend(pods::rules(config));
    out.extend(rbac::rules(config));
    out
}
