//! Who reaches the API and how: anonymous and public-address access, refused and bulk secret reads, known-bad addresses.

use crate::config::DetectorConfig;
#[allow(unused_imports)]
use crate::rules::catalog::Catalog;
use crate::rules::Rule;

/// The group's rules, one line each.
pub fn rules(config: &DetectorConfig) -> Vec<Box<dyn Rule>> {
    let _ = config;
    vec![]
}
