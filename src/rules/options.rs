//! Rule-specific settings: what a rule declares it takes beyond the common
//! ones, and how it reads them (see [`crate::config::rule_settings`]).

use crate::config::DetectorConfig;
use crate::net::CidrList;
use crate::vocab::RuleId;

/// A rule-specific setting: its name and the values it accepts.
#[derive(Debug, Clone, Copy)]
pub struct RuleOption {
    /// The member name in `RULE_SETTINGS`.
    pub name: &'static str,
    /// What it takes.
    pub kind: OptionKind,
    /// What it does.
    pub doc: &'static str,
}

/// The values a rule-specific setting takes.
#[derive(Debug, Clone, Copy)]
pub enum OptionKind {
    /// One of these words (compared case-insensitively).
    OneOf(&'static [&'static str]),
    /// A comma-separated list of addresses and CIDR ranges.
    Cidrs,
    /// A comma-separated list of words.
    Words,
}

impl OptionKind {
    /// Why `text` is not a value of this kind, if it is not.
    pub fn check(self, text: &str) -> Result<(), String> {
        match self {
            OptionKind::OneOf(values) => {
                if values.iter().any(|v| v.eq_ignore_ascii_case(text.trim())) {
                    Ok(())
                } else {
                    Err(format!("expects one of {}", values.join(", ")))
                }
            }
            OptionKind::Cidrs => CidrList::parse(text).map(|_| ()),
            OptionKind::Words => Ok(()),
        }
    }
}

/// A rule's option from the settings, read as `kind` (already checked at
/// start-up by [`crate::rules::check_rules`]).
pub fn option<'c>(config: &'c DetectorConfig, id: RuleId, name: &str) -> Option<&'c str> {
    config
        .settings(id.as_str())?
        .options
        .get(name)
        .map(String::as_str)
}
