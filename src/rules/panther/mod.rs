//! Panther's EKS and Kubernetes catalog (`panther-labs/panther-analysis`,
//! `rules/aws_eks_rules` and `rules/kubernetes_rules`), ported rule by rule:
//! the EKS branch of each rule's logic, with Panther's id, severity,
//! threshold, dedup period, dedup key and title. One file per rule; each is
//! checked against Panther's own tests (`tests/panther_catalog.rs`).
//! Descriptions and runbooks are this project's.

pub mod role_wildcard;
