//! The schema of a segment: its columns in file order ([`col`]), sets of them to read
//! ([`Columns`]) and the Arrow schema every segment is written with ([`schema`]).

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The columns of a segment, in file order.
pub mod col {
    /// Event time, nanoseconds, UTC.
    pub const TIMESTAMP: usize = 0;
    /// Store sequence number.
    pub const SEQ: usize = 1;
    /// Level name, dictionary-encoded, null when unknown.
    pub const LEVEL: usize = 2;
    /// Agent, dictionary-encoded.
    pub const AGENT: usize = 3;
    /// Host, dictionary-encoded.
    pub const HOST: usize = 4;
    /// Source, dictionary-encoded.
    pub const SOURCE: usize = 5;
    /// Message text.
    pub const MESSAGE: usize = 6;
    /// Original line, null when not kept.
    pub const RAW: usize = 7;
    /// The other fields as a JSON object, null when there are none.
    pub const FIELDS: usize = 8;
    /// Column names, by index.
    pub const NAMES: [&str; 9] = [
        "timestamp",
        "seq",
        "level",
        "agent",
        "host",
        "source",
        "message",
        "raw",
        "fields",
    ];
}

/// A set of columns to read, as a bit mask over [`col`] indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns(pub u16);

impl Columns {
    /// Every column.
    pub const ALL: Columns = Columns((1 << 9) - 1);

    /// Not a column but a way to read: the message column of a segment block comes as a
    /// dictionary array (`Dictionary(Int32, Utf8)`) when its pages are dictionary-encoded,
    /// so that a filter looks at each distinct message once. Other reads give it as `Utf8`.
    pub const MESSAGE_DICTIONARY: Columns = Columns(1 << 15);

    /// Returns the set with the columns (and read options) of both.
    pub fn with(self, other: Columns) -> Columns {
        Columns(self.0 | other.0)
    }

    /// Returns the set holding the given column indices.
    pub fn of(indices: &[usize]) -> Columns {
        Columns(indices.iter().fold(0, |m, &i| m | (1 << i)))
    }

    /// Returns whether a column is in the set.
    pub fn has(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }

    /// Returns whether every column (and read option) of `other` is in the set.
    pub fn has_all(self, other: Columns) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn indices(self) -> impl Iterator<Item = usize> {
        (0..col::NAMES.len()).filter(move |&i| self.has(i))
    }
}

/// Returns the Arrow schema of every segment.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
            Arc::new(Schema::new(vec![
                Field::new(
                    "timestamp",
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                    false,
                ),
                Field::new("seq", DataType::UInt64, false),
                Field::new("level", dict(), true),
                Field::new("agent", dict(), false),
                Field::new("host", dict(), false),
                Field::new("source", dict(), false),
                Field::new("message", DataType::Utf8, false),
                Field::new("raw", DataType::Utf8, true),
                Field::new("fields", DataType::Utf8, true),
            ]))
        })
        .clone()
}
