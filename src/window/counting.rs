//! Whether a match counts in a window: every match, a distinct value only
//! the first time ([`super::UNIQUE_FIELD`]), a step of a sequence only in
//! its turn ([`super::STEP_FIELD`]). The open window and the past ones
//! count the same way.

use super::{STEP_FIELD, UNIQUE_FIELD};
use crate::time::Millis;
use crate::vocab::Match;

/// Whether a match counts in a window, and the distinct value it adds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Counting<'m> {
    /// It counts; with the distinct value to remember, if any.
    Counts(Option<&'m str>),
    /// It is the next step of a sequence, at its time.
    Step(Millis),
    /// A distinct value seen before, or a step out of order.
    Not,
}

/// How `m` counts in a window that has counted `count`, has seen the
/// distinct values `seen` says, and counted its last step at `step_at`.
pub(crate) fn counts<'m>(
    m: &'m Match,
    count: u64,
    step_at: Option<Millis>,
    seen: impl Fn(&str) -> bool,
) -> Counting<'m> {
    for (field, value) in &m.facts {
        if *field == UNIQUE_FIELD {
            return if seen(value) {
                Counting::Not
            } else {
                Counting::Counts(Some(value))
            };
        }
        if *field == STEP_FIELD {
            let next = value.parse::<u64>().ok() == Some(count);
            let in_order = step_at.is_none_or(|t| m.at_ms >= t);
            return if next && in_order {
                Counting::Step(m.at_ms)
            } else {
                Counting::Not
            };
        }
    }
    Counting::Counts(None)
}
