#![no_main]
//! Detection and every format parser must turn any bytes into a record without panicking.

use libfuzzer_sys::fuzz_target;
use logyard_parse::{Format, LineContext, Parser, ParserConfig};

fuzz_target!(|data: &[u8]| {
    let ctx = LineContext { source: "fuzz", agent_hint: "fuzz", host: "h", received_ns: 1_705_400_000_000_000_000 };
    let format: Format = Format::NAMES[usize::from(data.first().copied().unwrap_or(0)) % Format::NAMES.len()].parse().unwrap();
    let mut parser = Parser::new(ParserConfig { format, max_line_bytes: 4096, ..ParserConfig::default() }).unwrap();
    for line in data.split(|&b| b == b'\n') {
        let _ = parser.parse(line, &ctx);
    }
    let _ = parser.flush_partial(&ctx);
});
