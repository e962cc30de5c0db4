//! Property tests: no input makes detection, a format parser or the multi-line joiner panic,
//! a record printed as JSON and parsed back gives the same record, a random time rendered in
//! any header layout (with or without a year, with or without a leading token, with a
//! second stamp in the message) parses back to that time at the layout's precision, and a
//! record rendered in a text layout gives back its level, whatever level words its message
//! holds.
//!
//! The round trip covers timestamp, level, agent, host, source, message and fields, for
//! field names that are not aliases of those keys and not well-known names that the parser
//! renames (`statusCode` → `status`) or derives from (`duration` → `response_time_ms`):
//! the generated names are `f_` and lower-case letters. Redaction is off for it, since it
//! changes text on purpose.

use logyard_model::{Level, Record, Value};
use logyard_parse::{
    record_to_json, Format, LineContext, Multiline, MultilineConfig, MultilineMode, Parser,
    ParserConfig, RedactConfig,
};
use proptest::prelude::*;

fn ctx() -> LineContext<'static> {
    LineContext {
        source: "prop",
        agent_hint: "",
        host: "",
        received_ns: 1_705_400_000_000_000_000,
    }
}

/// Bytes that look like log lines often enough to reach deep into the parsers.
fn loggy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"<134>1 ".to_vec()),
        Just(b"<38>Jan 15 10:30:00 ".to_vec()),
        Just(b"2024-01-15T10:30:00.123Z ".to_vec()),
        Just(b"2024-02-30 10:30:00 - ".to_vec()),
        Just(b"[15/Jan/2024:00:23:02 +0000] \"GET / HTTP/1.1\" 200 1 ".to_vec()),
        Just(b"{\"log\":\"".to_vec()),
        Just(b"{\"level\":\"info\",\"ts\":1705312200,\"a\":{\"b\":".to_vec()),
        Just(b" stdout P ".to_vec()),
        Just(b"INFO - ".to_vec()),
        Just(b"I0115 10:30:00.123456 ".to_vec()),
        Just(b"2024-01-15 10:30:00.123 ERROR [".to_vec()),
        Just(b" --- [main] c.e.App : ".to_vec()),
        Just(b"Traceback (most recent call last):\n".to_vec()),
        Just(b"\tat a.B(C.java:1)\n".to_vec()),
        Just(b"[ERROR] x: ".to_vec()),
        Just(b"key=\"v\\\"\" ".to_vec()),
        Just(b"password=".to_vec()),
        Just(b"4111 1111 1111 1111".to_vec()),
        Just(b"-----BEGIN RSA PRIVATE KEY-----".to_vec()),
        Just("é\u{feff}".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
        "[ -~]{0,12}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        ".{0,16}".prop_map(Value::Str),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    let ts = -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64;
    let level = proptest::option::of(proptest::sample::select(Level::ALL.to_vec()));
    let fields = proptest::collection::btree_map("f_[a-z]{1,8}", value(), 0..6);
    (
        ts, level, ".{0,12}", ".{0,12}", ".{0,12}", ".{0,40}", fields,
    )
        .prop_map(
            |(timestamp, level, agent, host, source, message, fields)| Record {
                timestamp,
                level,
                agent,
                host,
                source,
                message,
                fields,
                ..Record::default()
            },
        )
}

/// A header layout: how a time is written, whether it has a year, its precision in ns.
struct Layout {
    name: &'static str,
    render: fn(&chrono::DateTime<chrono::Utc>) -> String,
    has_year: bool,
    precision: i64,
}

const MS: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;

/// Every header layout of `time/header.rs`, rendered as the software that writes it does.
fn layouts() -> Vec<Layout> {
    use chrono::Timelike as _;
    fn f(t: &chrono::DateTime<chrono::Utc>, fmt: &str) -> String {
        t.format(fmt).to_string()
    }
    vec![
        Layout {
            name: "log4j",
            render: |t| f(t, "%Y-%m-%d %H:%M:%S,%3f"),
            has_year: true,
            precision: MS,
        },
        Layout {
            name: "iso",
            render: |t| f(t, "%Y-%m-%dT%H:%M:%S%.6fZ"),
            has_year: true,
            precision: 1000,
        },
        Layout {
            name: "go log",
            render: |t| f(t, "%Y/%m/%d %H:%M:%S"),
            has_year: true,
            precision: SEC,
        },
        Layout {
            name: "go log µs",
            render: |t| f(t, "%Y/%m/%d %H:%M:%S%.6f"),
            has_year: true,
            precision: 1000,
        },
        Layout {
            name: "windows",
            render: |t| f(t, "%Y-%m-%d %H:%M:%S,"),
            has_year: true,
            precision: SEC,
        },
        Layout {
            name: "hadoop",
            render: |t| f(t, "%y/%m/%d %H:%M:%S"),
            has_year: true,
            precision: SEC,
        },
        Layout {
            name: "logcat",
            render: |t| f(t, "%m-%d %H:%M:%S%.3f"),
            has_year: false,
            precision: MS,
        },
        Layout {
            name: "glog",
            render: |t| f(t, "I%m%d %H:%M:%S%.6f"),
            has_year: false,
            precision: 1000,
        },
        Layout {
            name: "ibm",
            render: |t| f(t, "%Y-%m-%d-%H.%M.%S%.6f"),
            has_year: true,
            precision: 1000,
        },
        Layout {
            name: "clf",
            render: |t| f(t, "[%d/%b/%Y:%H:%M:%S +0000]"),
            has_year: true,
            precision: SEC,
        },
        Layout {
            name: "proxifier",
            render: |t| f(t, "[%m.%d %H:%M:%S]"),
            has_year: false,
            precision: SEC,
        },
        Layout {
            name: "bracket iso",
            render: |t| f(t, "[%Y-%m-%d %H:%M:%S]"),
            has_year: true,
            precision: SEC,
        },
        Layout {
            name: "compact unpadded",
            render: |t| {
                format!(
                    "{}-{}:{}:{}:{}",
                    t.format("%Y%m%d"),
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.nanosecond() / 1_000_000
                )
            },
            has_year: true,
            precision: MS,
        },
        Layout {
            name: "hdfs",
            render: |t| f(t, "%y%m%d %H%M%S"),
            has_year: true,
            precision: SEC,
        },
        Layout {
            name: "syslog",
            render: |t| f(t, "%b %e %H:%M:%S"),
            has_year: false,
            precision: SEC,
        },
        Layout {
            name: "ctime",
            render: |t| f(t, "%a %b %d %H:%M:%S %Y"),
            has_year: true,
            precision: SEC,
        },
        Layout {
            name: "epoch s",
            render: |t| f(t, "%s"),
            has_year: true,
            precision: SEC,
        },
        Layout {
            name: "epoch s.ms",
            render: |t| f(t, "%s%.3f"),
            has_year: true,
            precision: MS,
        },
        Layout {
            name: "epoch ms",
            render: |t| t.timestamp_millis().to_string(),
            has_year: true,
            precision: MS,
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn header_stamps_parse_back(
        layout in 0..layouts().len(),
        ago_ns in 0i64..(300 * 86_400 * SEC),
        old_secs in 1_010_000_000i64..1_705_000_000,
        nanos in 0i64..SEC,
        lead in prop_oneof![Just(""), Just("42 "), Just("web-1 "), Just("- "), Just("myapp: "), Just("app.log.2017-05-16_13:53:08 ")],
        words in "[a-z]{1,8}( [a-z]{1,8}){0,4}",
        second in proptest::option::of(Just(" at 2011-02-03 04:05:06")),
    ) {
        let layout = &layouts()[layout];
        let received = ctx().received_ns;
        // A time without a year is from the last 300 days, where syslog's rule finds its year.
        let ns = if layout.has_year { old_secs * SEC + nanos } else { received - ago_ns };
        let t = chrono::DateTime::from_timestamp_nanos(ns);
        // An epoch number after a lower-case word is an id (`user 1234567890`), not a time.
        let lead = if layout.name.starts_with("epoch") && lead.bytes().any(|c| c.is_ascii_lowercase()) {
            "- "
        } else {
            lead
        };
        let line = format!("{lead}{} {words}{}", (layout.render)(&t), second.unwrap_or(""));
        let mut parser = Parser::new(ParserConfig::default()).unwrap();
        let rec = parser.parse(line.as_bytes(), &ctx()).unwrap();
        let want = ns - ns.rem_euclid(layout.precision);
        prop_assert_eq!(
            rec.timestamp, want,
            "{}: {:?} gave {} instead of {}", layout.name, line,
            logyard_model::format_rfc3339(rec.timestamp), logyard_model::format_rfc3339(want)
        );
    }

    #[test]
    fn no_input_panics_any_format(line in prop_oneof![proptest::collection::vec(any::<u8>(), 0..300), loggy()]) {
        for name in Format::NAMES {
            let cfg = ParserConfig { format: name.parse().unwrap(), max_line_bytes: 200, ..ParserConfig::default() };
            let mut parser = Parser::new(cfg).unwrap();
            if let Some(rec) = parser.parse(&line, &ctx()) {
                // The "no time yet" marker never leaks, and every text line keeps its raw text.
                prop_assert!(rec.timestamp != i64::MIN);
                prop_assert!(rec.raw.as_ref().is_none_or(|r| r.len() <= 200 * 3 + 64));
            }
            parser.flush_partial(&ctx());
        }
    }

    #[test]
    fn the_joiner_never_panics(lines in proptest::collection::vec(loggy(), 0..20), regex in prop_oneof![Just("auto"), Just("none"), Just("^\\d")]) {
        let mode: MultilineMode = regex.parse().unwrap();
        let mut joiner = Multiline::new(MultilineConfig { mode, max_lines: 5, max_bytes: 200, timeout_ns: 10 }).unwrap();
        let mut parser = Parser::new(ParserConfig::default()).unwrap();
        for (i, line) in lines.iter().enumerate() {
            for joined in joiner.push(line, i as i64 * 7) {
                parser.parse(&joined, &ctx());
            }
            joiner.flush(i as i64 * 7);
        }
        joiner.flush_all();
    }

    #[test]
    fn streams_never_panic(lines in proptest::collection::vec(loggy(), 0..20), max_lines in 1usize..6) {
        let multiline = MultilineConfig { max_lines, max_bytes: 300, ..MultilineConfig::default() };
        let mut parser = Parser::new(ParserConfig { multiline, max_line_bytes: 120, ..ParserConfig::default() }).unwrap();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            parser.push(line, &ctx(), i as i64, &mut out);
            parser.flush(&ctx(), i as i64 * 1_000_000_000, &mut out);
        }
        parser.flush_all(&ctx(), &mut out);
        prop_assert!(out.len() <= lines.len());
        prop_assert!(out.iter().all(|r| r.timestamp != i64::MIN));
    }

    #[test]
    fn redaction_keeps_json_valid(
        fields in proptest::collection::btree_map(
            prop_oneof![Just("password"), Just("token"), Just("api_key"), Just("card"), Just("note"), Just("Authorization")],
            prop_oneof![
                value(),
                Just(Value::Int(4_111_111_111_111_111)),
                Just(Value::Str("Bearer abcdefgh12345678".into())),
                Just(Value::Str("4111 1111 1111 1111".into())),
                Just(Value::Str("password=x\"y token: 12345678abc".into())),
            ],
            0..5,
        )
    ) {
        let fields = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let rec = Record { fields, ..Record::default() };
        let text = record_to_json(&rec).to_string();
        let mut parser = Parser::new(ParserConfig { format: Format::Json, ..ParserConfig::default() }).unwrap();
        let back = parser.parse(text.as_bytes(), &ctx()).unwrap();
        prop_assert!(!back.fields.contains_key("json_error"), "{} -> {:?}", text, back.message);
    }

    #[test]
    fn records_round_trip_through_json(rec in record()) {
        let text = record_to_json(&rec).to_string();
        let cfg = ParserConfig { format: Format::Json, redact: RedactConfig { builtin: false, ..RedactConfig::default() }, ..ParserConfig::default() };
        let mut parser = Parser::new(cfg).unwrap();
        let back = parser.parse(text.as_bytes(), &ctx()).unwrap();
        prop_assert_eq!(back.timestamp, rec.timestamp);
        prop_assert_eq!(back.level, rec.level);
        prop_assert_eq!(&back.agent, &rec.agent);
        prop_assert_eq!(&back.host, &rec.host);
        prop_assert_eq!(&back.source, &rec.source);
        prop_assert_eq!(&back.message, &rec.message);
        prop_assert_eq!(&back.fields, &rec.fields);
        prop_assert_eq!(back.raw, None);
    }

    #[test]
    fn rendered_lines_give_back_their_level(
        level in proptest::sample::select(Level::ALL.to_vec()),
        layout in 0usize..LAYOUTS,
        message in "[a-z][a-z ]{0,24}",
        other in proptest::sample::select(Level::ALL.to_vec()),
        second in proptest::sample::select(vec!["", "Warning: ", "ERROR ", "user-level ", "INFO then ", "[debug] "]),
    ) {
        // A second level word in the message, which must not override the header's.
        let message = match second {
            "" => format!("{message} {}", other.as_str()),
            s => format!("{s}{message}"),
        };
        let Some(line) = render(layout, level, &message) else {
            return Ok(());
        };
        let mut parser = Parser::new(ParserConfig::default()).unwrap();
        let back = parser.parse(line.as_bytes(), &ctx()).unwrap();
        prop_assert_eq!(back.level, Some(level), "{}", line);
    }
}

/// How many layouts [`render`] knows.
const LAYOUTS: usize = 14;

/// Renders a line with `level` in one of the layouts of widely used software; `None` when the
/// layout cannot write that level (glog and Python's `levelno` have no TRACE).
fn render(layout: usize, level: Level, msg: &str) -> Option<String> {
    let upper = level.as_str();
    let word = match level {
        Level::Warning => "WARN",
        Level::Critical => "FATAL",
        _ => upper,
    };
    let letter = match level {
        Level::Trace => 'V',
        Level::Debug => 'D',
        Level::Info => 'I',
        Level::Warning => 'W',
        Level::Error => 'E',
        Level::Critical => 'F',
    };
    let capital = format!("{}{}", &upper[..1], upper[1..].to_ascii_lowercase());
    let python_no = match level {
        Level::Trace => None,
        Level::Debug => Some(10),
        Level::Info => Some(20),
        Level::Warning => Some(30),
        Level::Error => Some(40),
        Level::Critical => Some(50),
    };
    let pino = match level {
        Level::Trace => 10,
        Level::Debug => 20,
        Level::Info => 30,
        Level::Warning => 40,
        Level::Error => 50,
        Level::Critical => 60,
    };
    Some(match layout {
        // logback / log4j.
        0 => format!("2024-01-15 10:30:00.123 {word} [main] com.example.App - {msg}"),
        // Python `logging`, `%(asctime)s - %(name)s - %(levelname)s - %(message)s`.
        1 => format!("2024-01-15 10:30:00,123 - app - {upper} - {msg}"),
        // Android logcat `threadtime` and `brief`.
        2 => format!("03-17 16:13:38.811  1702  2395 {letter} WindowManager: {msg}"),
        3 => format!("{letter}/ActivityManager(  585): {msg}"),
        // glog / klog (I, W, E, F only).
        4 => match level {
            Level::Info | Level::Warning | Level::Error | Level::Critical => {
                format!("{letter}0115 10:30:00.123456   12345 server.go:123] {msg}")
            }
            _ => return None,
        },
        // Windows CBS: `, Info` after the stamp.
        5 => format!("2016-09-28 04:30:31, {capital}                  CBS    {msg}"),
        // Blue Gene/L: the level after component tokens.
        6 => format!("- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL {word} {msg}"),
        // ZooKeeper: `- WARN  [thread] - msg`.
        7 => format!("2015-07-29 19:04:12,394 - {word}  [RecvWorker:188978561024:QuorumCnxManager$RecvWorker@765] - {msg}"),
        // HDFS: `date time pid LEVEL class: msg`.
        8 => format!("081109 203615 148 {word} dfs.DataNode$PacketResponder: {msg}"),
        // OpenStack: `stamp pid LEVEL logger [req] msg`.
        9 => format!("2017-05-16 00:00:00.008 25746 {word} nova.compute.manager [req-3ea4052c] {msg}"),
        // JSON: a level name, Python's `levelno`, pino's `level`.
        10 => format!("{{\"level\": \"{}\", \"message\": \"{msg}\"}}", upper.to_ascii_lowercase()),
        11 => format!("{{\"levelno\": {}, \"message\": \"{msg}\"}}", python_no?),
        12 => format!("{{\"level\": {pino}, \"msg\": \"{msg}\"}}"),
        // Bracketed, in lower case.
        _ => format!("[{}] {msg}", upper.to_ascii_lowercase()),
    })
}
