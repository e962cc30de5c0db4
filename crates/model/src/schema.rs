//! The record's schema, named once: its columns in store order and their names, which the
//! store's segments, the query language, the SQL table, exports and the API's entries use.

/// One column of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// Event time, nanoseconds since the Unix epoch, UTC.
    Timestamp,
    /// The store's sequence number.
    Seq,
    /// The level, null when unknown.
    Level,
    /// The program or service that wrote the entry.
    Agent,
    /// The machine it came from.
    Host,
    /// Where logyard read it (`file:/var/log/app.log`, `http`, …).
    Source,
    /// The message text.
    Message,
    /// The original line, when kept.
    Raw,
    /// The other fields, as a JSON object.
    Fields,
}

impl Column {
    /// Every column, in store order: `Column::ALL[c.index()] == c`.
    pub const ALL: [Column; 9] = [
        Column::Timestamp,
        Column::Seq,
        Column::Level,
        Column::Agent,
        Column::Host,
        Column::Source,
        Column::Message,
        Column::Raw,
        Column::Fields,
    ];

    /// Returns the column's name.
    pub const fn name(self) -> &'static str {
        match self {
            Column::Timestamp => "timestamp",
            Column::Seq => "seq",
            Column::Level => "level",
            Column::Agent => "agent",
            Column::Host => "host",
            Column::Source => "source",
            Column::Message => "message",
            Column::Raw => "raw",
            Column::Fields => "fields",
        }
    }

    /// Returns the column's place in store order.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Returns the column of a name, if it is one.
    pub fn parse(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The name of an entry's id (`<timestamp>-<seq>`) in the API's entries and exports.
pub const ID: &str = "id";

/// Another name of [`Column::Timestamp`] in queries and SQL, as VictoriaLogs writes it.
pub const TIME_ALIAS: &str = "_time";

/// Another name of [`Column::Message`] in queries, as VictoriaLogs writes it.
pub const MESSAGE_ALIAS: &str = "_msg";

/// Another name of [`Column::Fields`] in the API's entries, which earlier clients read.
pub const METADATA: &str = "metadata";

/// Returns the column a name refers to in queries and SQL: a column's name or an alias.
pub fn column_named(name: &str) -> Option<Column> {
    match name {
        TIME_ALIAS => Some(Column::Timestamp),
        MESSAGE_ALIAS => Some(Column::Message),
        other => Column::parse(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_at_its_index_and_parses_back() {
        for (i, c) in Column::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(Column::parse(c.name()), Some(c));
        }
        assert_eq!(Column::parse("metadata"), None);
    }
}
