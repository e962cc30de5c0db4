//! Which field columns a read of a segment block needs: the keys a filter or a pipe looks
//! at, so that a search on `status` does not decode the columns of every other field.

use std::collections::BTreeSet;

/// The keys of the field columns a read needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldKeys {
    /// Every field column (a word searched in every field value).
    All,
    /// These keys' columns alone (none: no field is read).
    Only(BTreeSet<String>),
}

impl FieldKeys {
    /// No field column.
    pub(crate) fn none() -> FieldKeys {
        FieldKeys::Only(BTreeSet::new())
    }

    /// The column of one key.
    pub(crate) fn one(key: &str) -> FieldKeys {
        FieldKeys::Only(BTreeSet::from([key.to_string()]))
    }

    /// The keys either needs.
    pub(crate) fn union(self, other: FieldKeys) -> FieldKeys {
        match (self, other) {
            (FieldKeys::Only(mut a), FieldKeys::Only(b)) => {
                a.extend(b);
                FieldKeys::Only(a)
            }
            _ => FieldKeys::All,
        }
    }

    /// The keys as a store read takes them: `None` for every column.
    pub(crate) fn as_list(&self) -> Option<Vec<String>> {
        match self {
            FieldKeys::All => None,
            FieldKeys::Only(keys) => Some(keys.iter().cloned().collect()),
        }
    }
}
