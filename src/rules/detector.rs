//! The [`Detector`]: every enabled rule, with its settings, and the
//! prefilter of their anchors, built once.

use super::{registry, Configured, Rule};
use crate::audit::AuditEvent;
use crate::config::DetectorConfig;
use crate::vocab::{EventContext, Match, RuleId, Verdict};

/// Runs every enabled rule on an event.
#[derive(Debug)]
pub struct Detector {
    config: DetectorConfig,
    rules: Vec<Box<dyn Rule>>,
    /// Built on first use, once per detector (not per batch).
    prefilter: std::sync::OnceLock<crate::prefilter::Prefilter>,
}

impl Detector {
    /// Builds the enabled rules of the registry.
    pub fn new(config: DetectorConfig) -> Self {
        let rules = registry(&config);
        Self::with_rules(config, rules)
    }

    /// Builds a detector from the given rules, those that are enabled
    /// (see [`DetectorConfig::enabled`]), each with its settings applied:
    /// how a rule of your own is tried.
    pub fn with_rules(config: DetectorConfig, rules: Vec<Box<dyn Rule>>) -> Self {
        let rules = rules
            .into_iter()
            .filter(|r| config.enabled(r.meta().id.as_str(), r.enabled_by_default()))
            .map(|r| Box::new(Configured::new(r, &config)) as Box<dyn Rule>)
            .collect();
        Self {
            config,
            rules,
            prefilter: std::sync::OnceLock::new(),
        }
    }

    /// The prefilter of the enabled rules' anchors.
    pub fn prefilter(&self) -> &crate::prefilter::Prefilter {
        self.prefilter
            .get_or_init(|| crate::prefilter::Prefilter::new(self))
    }

    /// The configuration the detector was built from.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The enabled rules, in registry order.
    pub fn rules(&self) -> impl Iterator<Item = &dyn Rule> {
        self.rules.iter().map(|r| r.as_ref())
    }

    /// An enabled rule by id.
    pub fn rule(&self, id: RuleId) -> Option<&dyn Rule> {
        self.rules().find(|r| r.meta().id == id)
    }

    /// Evaluates every enabled rule, appending matches to `out` and handing
    /// each rule's verdict to `record`.
    pub fn evaluate(
        &self,
        ev: &AuditEvent<'_>,
        ctx: EventContext<'_>,
        out: &mut Vec<Match>,
        mut record: impl FnMut(RuleId, Verdict),
    ) {
        let allow = &self.config.allow_source_cidrs;
        for rule in &self.rules {
            record(rule.meta().id, rule.evaluate(ev, ctx, allow, out));
        }
    }
}
