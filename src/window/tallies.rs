//! A window's summary tallies (field → value → count), shared by the
//! copies of a state until one of them changes: a key's state is copied
//! on every read and write of the store, and its tallies are most of it.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Field → value → count.
pub type TallyMap = BTreeMap<String, BTreeMap<String, u64>>;

/// The tallies; stored as the map itself. Reading goes through `Deref`;
/// changing (`DerefMut`) first copies them if another state shares them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tallies(Arc<TallyMap>);

impl Deref for Tallies {
    type Target = TallyMap;

    fn deref(&self) -> &TallyMap {
        &self.0
    }
}

impl DerefMut for Tallies {
    fn deref_mut(&mut self) -> &mut TallyMap {
        Arc::make_mut(&mut self.0)
    }
}

impl<'a> IntoIterator for &'a Tallies {
    type Item = (&'a String, &'a BTreeMap<String, u64>);
    type IntoIter = std::collections::btree_map::Iter<'a, String, BTreeMap<String, u64>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_changes_alone() {
        // GIVEN tallies and a copy of them
        let mut first = Tallies::default();
        first
            .entry("verb".into())
            .or_default()
            .insert("get".into(), 1);
        let mut copy = first.clone();
        // WHEN the copy changes
        copy.entry("verb".into())
            .or_default()
            .insert("list".into(), 2);
        // THEN the first keeps what it had, and each serializes as a map
        assert_eq!(first.len(), 1);
        assert_eq!(first["verb"].len(), 1);
        assert_eq!(copy["verb"].len(), 2);
        assert_eq!(
            serde_json::to_string(&first).expect("serializes"),
            r#"{"verb":{"get":1}}"#
        );
        let back: Tallies = serde_json::from_str(r#"{"verb":{"get":1,"list":2}}"#).expect("parses");
        assert_eq!(back, copy);
    }
}
