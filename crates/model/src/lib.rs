//! The shared vocabulary of logyard: [`Record`], [`Level`], [`Value`], [`RecordId`] and time.
//!
//! Every other crate speaks in these types. Sources and parsers produce records, the store
//! keeps them, the query executor filters them, and the API renders them. This crate does
//! no I/O.
//!
//! ```
//! use logyard_model::{Level, Record};
//!
//! let mut record = Record::new(1_705_312_200_000_000_000, "payment accepted");
//! record.level = Some(Level::Info);
//! record.agent = "billing".into();
//! assert_eq!(record.level.unwrap().as_str(), "INFO");
//! ```

pub mod clock;
mod json;
mod level;
mod record;
pub mod schema;
pub mod sink;
mod time;
mod tokens;
pub mod units;

pub use clock::{Clock, ManualClock, SystemClock};
pub use json::JsonStr;
pub use level::{Level, ParseLevelError};
pub use record::{Fields, Record, RecordId, Value};
pub use schema::Column;
pub use sink::{CheckpointToken, MemorySink, Receipt, Sink, SinkAnswer, SinkError, SinkErrorKind};
pub use time::{format_rfc3339, now_ns, parse_duration, parse_time, DurationError, TimeError};
pub use tokens::{hash_token, text_hashes, tokenize, tokens_of};
