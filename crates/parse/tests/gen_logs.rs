//! Checks every line shape of the benchmark generator's `--format mixed` output: the time
//! (line i carries 2024-01-15T00:00:00Z + i × span / N, at the precision its format
//! writes), the level, the agent, and the HTTP fields of request lines.
//!
//! Runs the repository's copy of the generator, `tests/data/gen_logs.py` (or the one named
//! by `LOGYARD_GEN_LOGS`) with `python3`.

use std::path::PathBuf;
use std::process::Command;

use logyard_model::{Level, Value};
use logyard_parse::{LineContext, Multiline, MultilineConfig, Parser, ParserConfig};

const N: usize = 3000;
const START_MS: i64 = 1_705_276_800_000;
const RECEIVED: i64 = 1_705_400_000_000_000_000;

fn generator() -> PathBuf {
    let path = std::env::var_os("LOGYARD_GEN_LOGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/gen_logs.py")
        });
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn level_word(s: &str) -> Option<Level> {
    Level::normalize(s)
}

#[test]
fn every_mixed_line_shape_parses_right() {
    let gen = generator();
    let out = std::env::temp_dir().join(format!("logyard-parse-mixed-{}.log", std::process::id()));
    let status = Command::new("python3")
        .arg(&gen)
        .args([
            "--lines",
            &N.to_string(),
            "--seed",
            "7",
            "--format",
            "mixed",
            "--out",
        ])
        .arg(&out)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("python3 could not run the generator: skipped");
        return;
    }
    let data = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut parser = Parser::new(ParserConfig::default()).unwrap();
    let mut joiner = Multiline::new(MultilineConfig::default()).unwrap();
    let ctx = LineContext {
        source: "file:/tmp/mixed.log",
        agent_hint: "mixed",
        host: "localhost",
        received_ns: RECEIVED,
    };
    let mut records = Vec::new();
    let lines: Vec<&str> = data.lines().collect();
    for line in &lines {
        records.extend(joiner.push(line.as_bytes(), 0));
    }
    records.extend(joiner.flush_all());
    let mut index = 0; // physical line of the record's first line
    let mut shapes = std::collections::BTreeMap::<&str, usize>::new();
    for joined in &records {
        let text = String::from_utf8(joined.clone()).unwrap();
        let first = text.lines().next().unwrap();
        let rec = parser.parse(joined, &ctx).expect("a record");
        let ms = START_MS + (index as i64 * 86_400_000) / N as i64;
        let (secs, millis) = (ms / 1000 * 1_000_000_000, ms * 1_000_000);
        let words: Vec<&str> = first.split(' ').collect();
        let (shape, time, level, agent): (&str, i64, Option<Level>, &str) = if first
            .starts_with('<')
            && words[0].ends_with(">1")
        {
            let pri: u8 = first[1..first.find('>').unwrap()].parse().unwrap();
            (
                "rfc5424",
                millis,
                Level::from_syslog_severity(pri & 7),
                words[3],
            )
        } else if first.starts_with('<') {
            let pri: u8 = first[1..first.find('>').unwrap()].parse().unwrap();
            let tag = words.iter().find(|w| w.ends_with("]:")).unwrap();
            (
                "rfc3164",
                secs,
                Level::from_syslog_severity(pri & 7),
                &tag[..tag.find('[').unwrap()],
            )
        } else if first.starts_with('[') {
            let l = &first[1..first.find(']').unwrap()];
            (
                "bracket",
                RECEIVED,
                level_word(l),
                words[1].trim_end_matches(':'),
            )
        } else if first.len() > 20 && first.starts_with("20") && &first[4..5] == "/" {
            let l = words[2].trim_matches(|c| c == '[' || c == ']');
            ("nginx-error", secs, level_word(l), "mixed")
        } else if first.len() > 20
            && first.starts_with("20")
            && &first[4..5] == "-"
            && words[2] == "-"
        {
            ("dash", secs, level_word(words[3]), words[5])
        } else if words.len() > 3 && words[3].starts_with('[') && words[3].contains("/Jan/") {
            let status: i64 = first.split("\" ").nth(1).unwrap()[..3].parse().unwrap();
            let level = if status >= 500 {
                Level::Error
            } else if status >= 400 {
                Level::Warning
            } else {
                Level::Info
            };
            ("access", secs, Some(level), "mixed")
        } else if words.len() > 2 && level_word(words[0]).is_some() && words[1].starts_with("2024-")
        {
            ("django", millis, level_word(words[0]), "mixed")
        } else if words.len() > 2 && level_word(words[0]).is_some() && words[1] == "-" {
            ("level", RECEIVED, level_word(words[0]), "mixed")
        } else {
            ("plain", RECEIVED, rec.level, "mixed")
        };
        *shapes.entry(shape).or_default() += 1;
        let at = format!("line {} ({shape}): {first}", index + 1);
        assert_eq!(rec.timestamp, time, "{at}");
        assert_eq!(rec.level, level, "{at}");
        assert_eq!(rec.agent, agent, "{at}");
        assert_eq!(rec.raw.as_deref(), Some(text.as_str()), "{at}");
        if shape == "plain" {
            assert_eq!(rec.message, first, "{at}");
        }
        // HTTP request lines carry method, path and status, and response_time_ms when the
        // message says `response_time: Nms`.
        if let Some(rt) = first.split("response_time: ").nth(1) {
            let n: i64 = rt[..rt.find("ms").unwrap()].parse().unwrap();
            assert_eq!(
                rec.fields.get("response_time_ms"),
                Some(&Value::Int(n)),
                "{at}"
            );
            assert!(
                rec.fields.contains_key("method") && rec.fields.contains_key("path"),
                "{at}"
            );
        }
        if shape == "access" {
            assert!(
                rec.fields.contains_key("ip") && rec.fields.contains_key("status"),
                "{at}"
            );
        }
        if text.contains("\nTraceback") {
            assert!(
                text.lines().last().unwrap().starts_with("ValueError: "),
                "{at}"
            );
        }
        index += text.lines().count();
    }
    assert_eq!(index, lines.len());
    for shape in [
        "rfc5424",
        "rfc3164",
        "bracket",
        "nginx-error",
        "dash",
        "access",
        "django",
        "level",
        "plain",
    ] {
        assert!(
            shapes.get(shape).copied().unwrap_or(0) > 0,
            "no {shape} line in the sample: {shapes:?}"
        );
    }
}
