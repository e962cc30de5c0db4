//! The query language: any text parses or fails with a position inside it, and a parsed
//! query prints a canonical text that parses back to the same text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logyard_query::{parse_filter, parse_query, QueryError, Settings};

fuzz_target!(|text: &str| {
    if let Err(QueryError::Syntax { position, .. }) = parse_filter(text, 0) {
        assert!(position <= text.len());
    }
    match parse_query(text, 0, &Settings::default()) {
        Ok(q) => {
            let canonical = q.to_string();
            let again = parse_query(&canonical, 0, &Settings::default())
                .expect("the canonical text parses");
            assert_eq!(again.to_string(), canonical);
        }
        Err(QueryError::Syntax { position, .. }) => assert!(position <= text.len()),
        Err(_) => {}
    }
});
