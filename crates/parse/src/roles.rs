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

/// Defines [`KEY_ROLES`] and [`key_role`] from one list, so that the lookup is a `match`
/// the compiler lays out (by length, then bytes): it runs for every key of every JSON line.
macro_rules! key_roles {
    ($($key:literal => $column:ident, $rank:literal, $dialects:expr;)*) => {
        /// The table: each key, the column it sets, its rank and the inputs that read it.
        pub const KEY_ROLES: &[KeyRole] = &[$(k($key, $column, $rank, $dialects),)*];

        /// The table's entry of a key, if any input reads it.
        pub fn key_role(key: &str) -> Option<KeyRole> {
            match key {
                $($key => Some(k($key, $column, $rank, $dialects)),)*
                _ => None,
            }
        }

        /// The column and the inputs of a key: what [`key_column`] needs, in a word (the
        /// JSON reader's loop stays small enough to be inlined: benchmarks.md).
        #[inline]
        fn column_of(key: &str) -> Option<(Column, u8)> {
            match key {
                $($key => Some(($column, $dialects)),)*
                _ => None,
            }
        }
    };
}

key_roles! {
    "@l" => Level, 0, J;
    "@m" => Message, 0, J;
    "@t" => Timestamp, 0, J;
    "@timestamp" => Timestamp, 0, E | J | L | B;
    "Level" => Level, 0, J;
    "MESSAGE" => Message, 0, J;
    "Message" => Message, 0, J;
    "SYSLOG_IDENTIFIER" => Agent, 0, J;
    "Timestamp" => Timestamp, 0, J;
    "_HOSTNAME" => Host, 0, J;
    "agent" => Agent, 0, E | J | L | G;
    "app" => Agent, 1, J | L | G | K;
    "application" => Agent, 0, J;
    "asctime" => Timestamp, 0, J;
    "component" => Agent, 0, L;
    "container_name" => Agent, 0, J;
    "date" => Timestamp, 0, J;
    "datetime" => Timestamp, 0, J;
    "detected_level" => Level, 2, K;
    "fields" => Fields, 0, E | J;
    "host" => Host, 0, E | J | L | G | K;
    "host.hostname" => Host, 1, B;
    "host.name" => Host, 0, J | B | O;
    "hostname" => Host, 1, J | L | G | K;
    "instance" => Host, 2, K;
    "job" => Agent, 2, K;
    "level" => Level, 0, E | J | L | G | B | K;
    "levelname" => Level, 0, J | L;
    "levelno" => Level, 0, J;
    "log" => Message, 0, J;
    "log.level" => Level, 0, J | B;
    "logger" => Agent, 0, J | L;
    "logger_name" => Agent, 0, J;
    "loglevel" => Level, 0, J | G;
    "logsource" => Host, 0, G;
    "lvl" => Level, 0, J | L;
    "message" => Message, 0, E | J | L | G | B;
    "metadata" => Fields, 0, E | J;
    "msg" => Message, 0, E | J | L | G;
    "program" => Agent, 0, G;
    "raw" => Raw, 0, E;
    "service" => Agent, 0, J | L | G;
    "service.name" => Agent, 0, J | B | O;
    "service_name" => Agent, 0, K;
    "severity" => Level, 1, E | J | L | G | K;
    "source" => Source, 0, E | J;
    "t" => Timestamp, 0, L;
    "time" => Timestamp, 0, E | J | L | G;
    "timestamp" => Timestamp, 0, E | J | L | G | B;
    "ts" => Timestamp, 0, E | J | L | G;
}

/// The column a key sets in an input, or `None` when it is a field there.
#[inline]
pub fn key_column(key: &str, dialect: Dialect) -> Option<Column> {
    match column_of(key) {
        Some((column, dialects)) if dialects & dialect.bit() != 0 => Some(column),
        _ => None,
    }
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
        assert_eq!(key_column("", Dialect::Json), None);
        assert_eq!(key_column("hostnam", Dialect::Json), None);
    }

    proptest::proptest! {
        /// The lookups find what a scan of the table finds, for any text.
        #[test]
        fn the_lookups_agree_with_a_scan(key in "[a-zA-Z_.@]{0,16}") {
            let scan = KEY_ROLES.iter().find(|r| r.key == key).map(|r| r.key);
            proptest::prop_assert_eq!(key_role(&key).map(|r| r.key), scan);
            // And per input: `key_column` has a lookup of its own.
            for d in Dialect::ALL {
                let want = KEY_ROLES
                    .iter()
                    .find(|r| r.key == key && r.in_dialect(d))
                    .map(|r| (r.column, r.rank));
                proptest::prop_assert_eq!(key_column_ranked(&key, d), want);
                proptest::prop_assert_eq!(key_column(&key, d), want.map(|(c, _)| c));
            }
        }
    }
}
