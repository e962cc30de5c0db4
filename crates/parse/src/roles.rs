//! The one table of the keys by which structured inputs name the record's columns: which
//! key sets which [`Column`], in which input ([`Dialect`]), and which key wins where an
//! input reads several for one column.
//!
//! JSON log lines take every common logger's keys (`msg`, `@t`, `levelname`, …); the native
//! API's entries take the documented keys only (`API.md`); Elasticsearch documents,
//! Loki labels, logfmt pairs, grok captures and OTLP resource attributes take their own.
//! A key that sets no column in an input becomes a field there.
//!
//! ```
//! use logyard_model::Column;
//! use logyard_parse::{key_column, Dialect};
//!
//! assert_eq!(key_column("msg", Dialect::Json), Some(Column::Message));
//! assert_eq!(key_column("service", Dialect::Entry), None);
//! assert_eq!(key_column("service_name", Dialect::Loki), Some(Column::Agent));
//! ```

use logyard_model::Column;

/// An input that reads the record's columns from keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Native entries (`POST /api/logs`, `logyard ingest`): the keys `API.md` documents.
    Entry,
    /// JSON log lines (the `json` format): every common logger's keys.
    Json,
    /// logfmt pairs.
    Logfmt,
    /// Grok captures (`grok` patterns and named regex groups).
    Grok,
    /// Elasticsearch documents sent to `_bulk`, their objects flattened (`log.level`).
    Bulk,
    /// Loki stream labels.
    Loki,
    /// OTLP resource attributes.
    Otlp,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 7] = [
        Dialect::Entry,
        Dialect::Json,
        Dialect::Logfmt,
        Dialect::Grok,
        Dialect::Bulk,
        Dialect::Loki,
        Dialect::Otlp,
    ];

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

const E: u8 = Dialect::Entry.bit();
const J: u8 = Dialect::Json.bit();
const L: u8 = Dialect::Logfmt.bit();
const G: u8 = Dialect::Grok.bit();
const B: u8 = Dialect::Bulk.bit();
const K: u8 = Dialect::Loki.bit();
const O: u8 = Dialect::Otlp.bit();

/// A key of the table.
#[derive(Debug, Clone, Copy)]
pub struct KeyRole {
    /// The key as written.
    pub key: &'static str,
    /// The column it sets ([`Column::Fields`]: an object whose keys become fields).
    pub column: Column,
    /// Its rank among the keys of its column in one input: where an input reads several,
    /// the lowest rank wins (Loki's `level` over `severity` over `detected_level`).
    pub rank: u8,
    dialects: u8,
}

impl KeyRole {
    /// Whether `dialect` reads this key.
    pub fn in_dialect(&self, dialect: Dialect) -> bool {
        self.dialects & dialect.bit() != 0
    }
}

const fn k(key: &'static str, column: Column, rank: u8, dialects: u8) -> KeyRole {
    KeyRole {
        key,
        column,
        rank,
        dialects,
    }
}

use Column::{Agent, Fields, Host, Level, Message, Raw, Source, Timestamp};

/// The table, sorted by key (bytewise) for [`key_role`]'s binary search.
pub const KEY_ROLES: &[KeyRole] = &[
    k("@l", Level, 0, J),
    k("@m", Message, 0, J),
    k("@t", Timestamp, 0, J),
    k("@timestamp", Timestamp, 0, E | J | L | B),
    k("Level", Level, 0, J),
    k("MESSAGE", Message, 0, J),
    k("Message", Message, 0, J),
    k("SYSLOG_IDENTIFIER", Agent, 0, J),
    k("Timestamp", Timestamp, 0, J),
    k("_HOSTNAME", Host, 0, J),
    k("agent", Agent, 0, E | J | L | G),
    k("app", Agent, 1, J | L | G | K),
    k("application", Agent, 0, J),
    k("asctime", Timestamp, 0, J),
    k("component", Agent, 0, L),
    k("container_name", Agent, 0, J),
    k("date", Timestamp, 0, J),
    k("datetime", Timestamp, 0, J),
    k("detected_level", Level, 2, K),
    k("fields", Fields, 0, E | J),
    k("host", Host, 0, E | J | L | G | K),
    k("host.hostname", Host, 1, B),
    k("host.name", Host, 0, J | B | O),
    k("hostname", Host, 1, J | L | G | K),
    k("instance", Host, 2, K),
    k("job", Agent, 2, K),
    k("level", Level, 0, E | J | L | G | B | K),
    k("levelname", Level, 0, J | L),
    k("levelno", Level, 0, J),
    k("log", Message, 0, J),
    k("log.level", Level, 0, J | B),
    k("logger", Agent, 0, J | L),
    k("logger_name", Agent, 0, J),
    k("loglevel", Level, 0, J | G),
    k("logsource", Host, 0, G),
    k("lvl", Level, 0, J | L),
    k("message", Message, 0, E | J | L | G | B),
    k("metadata", Fields, 0, E | J),
    k("msg", Message, 0, E | J | L | G),
    k("program", Agent, 0, G),
    k("raw", Raw, 0, E),
    k("service", Agent, 0, J | L | G),
    k("service.name", Agent, 0, J | B | O),
    k("service_name", Agent, 0, K),
    k("severity", Level, 1, E | J | L | G | K),
    k("source", Source, 0, E | J),
    k("t", Timestamp, 0, L),
    k("time", Timestamp, 0, E | J | L | G),
    k("timestamp", Timestamp, 0, E | J | L | G | B),
    k("ts", Timestamp, 0, E | J | L | G),
];

/// Whether `a` sorts before `b`, bytewise (`str::cmp` is not `const`).
const fn before(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

const fn sorted(table: &[KeyRole]) -> bool {
    let mut i = 1;
    while i < table.len() {
        if !before(table[i - 1].key, table[i].key) {
            return false;
        }
        i += 1;
    }
    true
}

// The binary search needs the order: a key out of place does not compile.
const _: () = assert!(
    sorted(KEY_ROLES),
    "KEY_ROLES must be sorted by key, each key once"
);

/// The table's entry of a key, if any input reads it.
pub fn key_role(key: &str) -> Option<&'static KeyRole> {
    KEY_ROLES
        .binary_search_by(|r| r.key.cmp(key))
        .ok()
        .map(|i| &KEY_ROLES[i])
}

/// The column a key sets in an input, or `None` when it is a field there.
pub fn key_column(key: &str, dialect: Dialect) -> Option<Column> {
    key_role(key)
        .filter(|r| r.in_dialect(dialect))
        .map(|r| r.column)
}

/// The column a key sets in an input and its rank (see [`KeyRole::rank`]).
pub fn key_column_ranked(key: &str, dialect: Dialect) -> Option<(Column, u8)> {
    key_role(key)
        .filter(|r| r.in_dialect(dialect))
        .map(|r| (r.column, r.rank))
}

/// The keys an input reads for a column, best first (lowest rank, then the table's order).
pub fn keys_of(column: Column, dialect: Dialect) -> Vec<&'static str> {
    let mut keys: Vec<&KeyRole> = KEY_ROLES
        .iter()
        .filter(|r| r.column == column && r.in_dialect(dialect))
        .collect();
    keys.sort_by_key(|r| r.rank);
    keys.into_iter().map(|r| r.key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_each_key_is_once() {
        for pair in KEY_ROLES.windows(2) {
            assert!(
                pair[0].key < pair[1].key,
                "{} then {}",
                pair[0].key,
                pair[1].key
            );
        }
        for r in KEY_ROLES {
            assert!(r.dialects != 0, "{} is read by no input", r.key);
            assert_eq!(key_role(r.key).map(|f| f.key), Some(r.key));
        }
    }

    #[test]
    fn each_input_reads_its_keys() {
        assert_eq!(key_column("ts", Dialect::Entry), Some(Column::Timestamp));
        assert_eq!(key_column("@t", Dialect::Entry), None);
        assert_eq!(key_column("log.level", Dialect::Bulk), Some(Column::Level));
        assert_eq!(key_column("level", Dialect::Otlp), None);
        assert_eq!(
            keys_of(Column::Level, Dialect::Loki),
            ["level", "severity", "detected_level"]
        );
        assert_eq!(
            keys_of(Column::Agent, Dialect::Loki),
            ["service_name", "app", "job"]
        );
        assert_eq!(
            keys_of(Column::Host, Dialect::Loki),
            ["host", "hostname", "instance"]
        );
        assert_eq!(
            keys_of(Column::Host, Dialect::Bulk),
            ["host.name", "host.hostname"]
        );
        assert_eq!(key_column("nothing", Dialect::Json), None);
    }
}
