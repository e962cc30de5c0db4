//! The query language: any text parses or fails with a position inside it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(logyard_query::QueryError::Syntax { position, .. }) =
        logyard_query::parse_filter(text, 0)
    {
        assert!(position <= text.len());
    }
});
