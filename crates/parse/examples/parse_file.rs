//! Parses a log file and prints one JSON record per line (the form `logyard parse` prints).
//!
//! `cargo run --example parse_file -- FILE [--format F] [--multiline auto|none|REGEX] [--raw]`

use std::path::Path;

use logyard_parse::{
    agent_from_path, record_to_json, LineContext, MultilineConfig, Parser, ParserConfig,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .expect("usage: parse_file FILE [--format F] [--multiline M] [--raw]");
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mode = opt("--multiline")
        .unwrap_or_else(|| "auto".into())
        .parse()
        .expect("multiline");
    let cfg = ParserConfig {
        format: opt("--format").map_or(Default::default(), |f| f.parse().expect("format")),
        multiline: MultilineConfig {
            mode,
            ..MultilineConfig::default()
        },
        ..ParserConfig::default()
    };
    let mut parser = Parser::new(cfg).expect("config");
    let data = std::fs::read(path).expect("read");
    let agent = agent_from_path(Path::new(path));
    let source = format!("file:{path}");
    let ctx = LineContext {
        source: &source,
        agent_hint: &agent,
        host: "localhost",
        received_ns: 1_705_400_000_000_000_000,
    };
    let raw = args.iter().any(|a| a == "--raw");
    let mut out = Vec::new();
    let data = data.strip_suffix(b"\n").unwrap_or(&data);
    for line in data.split(|&b| b == b'\n') {
        parser.push(line, &ctx, 0, &mut out);
    }
    parser.flush_all(&ctx, &mut out);
    for rec in out {
        let mut v = record_to_json(&rec);
        if raw {
            v["raw"] = rec.raw.clone().into();
        }
        println!("{v}");
    }
}
