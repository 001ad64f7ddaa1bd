//! Who reaches the API and how: anonymous and public-address access, refused and bulk secret reads, known-bad addresses.

use crate::config::DetectorConfig;
use crate::rules::catalog::Catalog;
use crate::rules::Rule;

pub mod anonymous_api_access;
mod common;
pub mod ioc_activity;
pub mod k8s_anonymous_api_access;
pub mod multiple_403_public_ip;
pub mod secret_access_denied;
pub mod secret_enumeration;
pub mod secrets_dump_all_namespaces;
pub mod system_namespace_public_ip;
pub mod system_principal_public_ip;

/// The group's rules, one line each.
pub fn rules(config: &DetectorConfig) -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(Catalog::new(anonymous_api_access::EksAnonymousApiAccess)),
        Box::new(Catalog::new(
            system_namespace_public_ip::SystemNamespacePublicIp::new(config),
        )),
        Box::new(Catalog::new(k8s_anonymous_api_access::AnonymousAccess)),
        Box::new(Catalog::new(ioc_activity::IocActivity::new(config))),
        Box::new(Catalog::new(multiple_403_public_ip::Multiple403PublicIp)),
        Box::new(Catalog::new(secret_access_denied::SecretAccessDenied)),
        Box::new(Catalog::new(secret_enumeration::SecretEnumeration)),
        Box::new(Catalog::new(
            secrets_dump_all_namespaces::SecretsDumpAllNamespaces,
        )),
        Box::new(Catalog::new(
            system_principal_public_ip::SystemPrincipalPublicIp::new(config),
        )),
    ]
}
