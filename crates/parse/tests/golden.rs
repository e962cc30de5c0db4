//! Golden files: every `tests/golden/<name>.input` is parsed line by line (format `auto`,
//! a fixed context and receive time) and the records, one JSON object per line, must equal
//! `<name>.expected`. `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the expected files;
//! review the diff by eye before committing it.
//!
//! Special files: `multiline` joins lines first, `grok` configures a grok parser, `limits`
//! sets `max_line_bytes` to 64, `custom_time` sets `timestamp_format` to
//! `%d.%m.%Y %H:%M:%S%.f` and `timestamp_field` to `when`.

use std::path::{Path, PathBuf};

use logyard_parse::{
    GrokDef, LineContext, Multiline, MultilineConfig, Parser, ParserConfig, Record,
};

/// 2024-01-16T00:00:00Z: the receive time of every golden line.
const RECEIVED: i64 = 1_705_363_200_000_000_000;

fn render(rec: &Record) -> String {
    let mut v = rec.to_json(true);
    let map = v.as_object_mut().expect("an object");
    map.remove("id");
    map.remove("metadata");
    serde_json::to_string(&v).expect("json")
}

fn run(name: &str, input: &[u8]) -> String {
    let mut cfg = ParserConfig::default();
    match name {
        "grok" => cfg.grok.push(GrokDef {
            name: "app".into(),
            pattern: r"%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} \[%{DATA:thread}\] %{GREEDYDATA:message}".into(),
        }),
        "limits" => cfg.max_line_bytes = 64,
        "custom_time" => {
            cfg.timestamp_format = Some("%d.%m.%Y %H:%M:%S%.f".parse().expect("format"));
            cfg.timestamp_field = Some("when".into());
        }
        _ => {}
    }
    let mut parser = Parser::new(cfg).expect("config");
    let source = format!("file:/var/log/{name}.log");
    let ctx = LineContext {
        source: &source,
        agent_hint: name,
        host: "golden-host",
        received_ns: RECEIVED,
    };
    let mut lines: Vec<Vec<u8>> = input.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    if name == "multiline" {
        let mut joiner = Multiline::new(MultilineConfig::default()).expect("multiline");
        let mut joined = Vec::new();
        for line in &lines {
            joined.extend(joiner.push(line, 0));
        }
        joined.extend(joiner.flush_all());
        lines = joined;
    }
    let mut out = String::new();
    for line in &lines {
        if let Some(rec) = parser.parse(line, &ctx) {
            out.push_str(&render(&rec));
            out.push('\n');
        }
    }
    if let Some(rec) = parser.flush_partial(&ctx) {
        out.push_str(&render(&rec));
        out.push('\n');
    }
    out
}

#[test]
fn golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/golden")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "input"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "golden inputs missing");
    let mut failed = Vec::new();
    for input in inputs {
        let name = input
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let got = run(&name, &std::fs::read(&input).expect("read input"));
        let expected_path: &Path = &input.with_extension("expected");
        if update {
            std::fs::write(expected_path, &got).expect("write expected");
            continue;
        }
        let want = std::fs::read_to_string(expected_path).unwrap_or_default();
        if got != want {
            for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
                if g != w {
                    eprintln!("{name}.expected record {}:\n  got  {g}\n  want {w}", i + 1);
                }
            }
            if got.lines().count() != want.lines().count() {
                eprintln!(
                    "{name}: {} records, expected {}",
                    got.lines().count(),
                    want.lines().count()
                );
            }
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "golden files differ: {failed:?} (UPDATE_GOLDEN=1 rewrites them)"
    );
}
