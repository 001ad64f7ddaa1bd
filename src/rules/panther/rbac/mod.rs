//! Permissions and credentials: roles and bindings, admission webhooks, certificates and tokens, exposed services and ingresses.

use crate::config::DetectorConfig;
#[allow(unused_imports)]
use crate::rules::catalog::Catalog;
use crate::rules::Rule;

pub mod role_wildcard;

/// The group's rules, one line each.
pub fn rules(config: &DetectorConfig) -> Vec<Box<dyn Rule>> {
    let _ = config;
    vec![Box::new(Catalog::new(role_wildcard::RoleWildcard))]
}
