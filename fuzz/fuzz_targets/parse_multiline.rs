#![no_main]
//! The multi-line joiner behind `Parser::push` must take any lines, in any mode.
use libfuzzer_sys::fuzz_target;
use logyard_parse::{LineContext, MultilineConfig, MultilineMode, Parser, ParserConfig};

fuzz_target!(|data: &[u8]| {
    let modes = [MultilineMode::Auto, MultilineMode::None, MultilineMode::Start(r"^\d{4}-".into())];
    let mode = modes[usize::from(data.first().copied().unwrap_or(0)) % 3].clone();
    let multiline = MultilineConfig { mode, max_lines: 8, max_bytes: 1024, timeout_ns: 5 };
    let mut parser = Parser::new(ParserConfig { multiline, max_line_bytes: 512, ..ParserConfig::default() }).unwrap();
    let ctx = LineContext { source: "fuzz", agent_hint: "", host: "", received_ns: 0 };
    let mut out = Vec::new();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        parser.push(line, &ctx, i as i64, &mut out);
        parser.flush(&ctx, i as i64, &mut out);
    }
    parser.flush_all(&ctx, &mut out);
    assert!(out.len() <= data.split(|&b| b == b'\n').count());
});
