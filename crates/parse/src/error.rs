//! The crate's error type: only configuration can fail; parsing a line never does.

/// An error in a parser's configuration, found when it is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The format name is not one logyard knows.
    #[error("unknown log format {0:?}: expected one of {names}", names = crate::Format::NAMES.join(", "))]
    UnknownFormat(String),
    /// The time zone is neither `UTC`, a fixed offset like `+02:00` nor an IANA name.
    #[error("unknown time zone {0:?}: expected UTC, an offset like +02:00 or an IANA name like Europe/Paris")]
    TimeZone(String),
    /// A grok pattern does not compile.
    #[error("grok pattern {name:?} is invalid: {reason}")]
    Grok {
        /// The parser's name in the configuration.
        name: String,
        /// What is wrong, naming the pattern or sub-pattern at fault.
        reason: String,
    },
    /// A redaction or multi-line regex does not compile.
    #[error("regex {name:?} is invalid: {reason}")]
    Regex {
        /// The name of the setting or pattern.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A `timestamp_format` is not a strftime layout logyard can read times with.
    #[error("timestamp format {text:?} is invalid: {reason}; write it in strftime syntax, as in \"%d.%m.%Y %H:%M:%S\"")]
    TimeFormat {
        /// The format as written.
        text: String,
        /// What is wrong.
        reason: String,
    },
}
