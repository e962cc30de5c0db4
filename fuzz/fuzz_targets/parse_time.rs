//! Time and duration parsing of untrusted parameters.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = logyard_model::parse_time(text, 0);
    let _ = logyard_model::parse_duration(text);
});
