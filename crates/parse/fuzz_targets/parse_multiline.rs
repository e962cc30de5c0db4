#![no_main]
//! The multi-line joiner must take any lines, in any mode, without panicking or growing
//! past its bounds, and the parser must take what it joins.

use libfuzzer_sys::fuzz_target;
use logyard_parse::{LineContext, Multiline, MultilineConfig, MultilineMode, Parser, ParserConfig};

fuzz_target!(|data: &[u8]| {
    let mode = [MultilineMode::Auto, MultilineMode::None, MultilineMode::Start(r"^\d{4}-".into())][usize::from(data.first().copied().unwrap_or(0)) % 3].clone();
    let mut joiner = Multiline::new(MultilineConfig { mode, max_lines: 8, max_bytes: 1024, timeout_ns: 5 }).unwrap();
    let mut parser = Parser::new(ParserConfig::default()).unwrap();
    let ctx = LineContext { source: "fuzz", agent_hint: "", host: "", received_ns: 0 };
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        for joined in joiner.push(line, i as i64).into_iter().chain(joiner.flush(i as i64)) {
            assert!(joined.len() <= 1024 || !joined.contains(&b'\n'));
            let _ = parser.parse(&joined, &ctx);
        }
    }
});
