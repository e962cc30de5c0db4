//! Which field columns a read of a segment block needs: the keys a filter or a pipe looks
//! at, so that a search on `status` does not decode the columns of every other field.

/// The keys of the field columns a read needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldKeys {
    /// Every field column (a word searched in every field value).
    All,
    /// These keys' columns alone, sorted, each once (none: no field is read).
    Only(Vec<String>),
}

impl FieldKeys {
    /// No field column.
    pub(crate) fn none() -> FieldKeys {
        FieldKeys::Only(Vec::new())
    }

    /// The columns of some keys.
    pub(crate) fn of(keys: impl IntoIterator<Item = String>) -> FieldKeys {
        let mut keys: Vec<String> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        FieldKeys::Only(keys)
    }

    /// The keys either needs.
    pub(crate) fn union(self, other: &FieldKeys) -> FieldKeys {
        match (self, other) {
            (FieldKeys::Only(a), FieldKeys::Only(b)) if b.is_empty() => FieldKeys::Only(a),
            (FieldKeys::Only(a), FieldKeys::Only(b)) => {
                FieldKeys::of(a.into_iter().chain(b.iter().cloned()))
            }
            _ => FieldKeys::All,
        }
    }

    /// The keys as a store read takes them: `None` for every column.
    pub(crate) fn as_list(&self) -> Option<&[String]> {
        match self {
            FieldKeys::All => None,
            FieldKeys::Only(keys) => Some(keys),
        }
    }
}
