//! `POST /api/logs` bodies: any bytes are refused or decoded entry by entry, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = logyard_sources::http::native::IngestOptions {
        max_line_bytes: 4096,
        keep_raw: true,
        default_source: "http".into(),
    };
    let ndjson = data.first().is_some_and(|b| b & 1 == 1);
    let _ = logyard_sources::http::native::decode_body(data, ndjson, &opts, 0);
});
