//! Unit tests of the parser: configuration, context, limits and container wrappers.

use super::*;
use logyard_model::Level;

const NOW: i64 = 1_705_363_200_000_000_000; // 2024-01-16T00:00:00Z
const T: i64 = 1_705_314_600_000_000_000; // 2024-01-15T10:30:00Z

fn ctx() -> LineContext<'static> {
    LineContext {
        source: "file:/tmp/app.log",
        agent_hint: "app",
        host: "h1",
        received_ns: NOW,
    }
}

fn parse_with(cfg: ParserConfig, line: &str) -> Record {
    Parser::new(cfg)
        .unwrap()
        .parse(line.as_bytes(), &ctx())
        .unwrap()
}

fn parse(line: &str) -> Record {
    parse_with(ParserConfig::default(), line)
}

#[test]
fn agents_from_paths() {
    for (path, want) in [
        ("/tmp/billing.log", "billing"),
        ("/var/log/app.log.1", "app"),
        ("/var/log/nginx/access.log", "nginx"),
        ("/var/log/web-app.log.2.gz", "web-app"),
        ("/srv/api/current", "api"),
        ("worker", "worker"),
    ] {
        assert_eq!(agent_from_path(Path::new(path)), want, "{path}");
    }
}

#[test]
fn context_fills_what_the_line_lacks() {
    let r = parse("INFO - hello");
    assert_eq!(
        (r.agent.as_str(), r.host.as_str(), r.source.as_str()),
        ("app", "h1", "file:/tmp/app.log")
    );
    assert_eq!(r.timestamp, NOW);
    assert_eq!(r.raw.as_deref(), Some("INFO - hello"));
    let r = parse("<38>Jan 15 10:30:00 bastion sshd[1]: x");
    assert_eq!((r.agent.as_str(), r.host.as_str()), ("sshd", "bastion"));
    assert_eq!(r.timestamp, T);
}

#[test]
fn zone_less_stamps_take_the_configured_zone() {
    let cfg = |tz: &str| ParserConfig {
        timezone: tz.parse().unwrap(),
        ..ParserConfig::default()
    };
    assert_eq!(
        parse_with(cfg("Europe/Paris"), "2024-01-15 11:30:00 - INFO - a - m").timestamp,
        T
    );
    assert_eq!(
        parse_with(cfg("-05:00"), "2024-01-15 05:30:00 - INFO - a - m").timestamp,
        T
    );
    assert_eq!(
        parse_with(cfg("Europe/Paris"), "2024-01-15T10:30:00Z INFO x").timestamp,
        T
    );
    assert_eq!(
        parse_with(cfg("Asia/Tokyo"), "<38>Jan 15 19:30:00 h a: m").timestamp,
        T
    );
}

#[test]
fn fixed_formats_keep_other_lines_as_plain_text() {
    let json = ParserConfig {
        format: Format::Json,
        ..ParserConfig::default()
    };
    let r = parse_with(json.clone(), "INFO - not json");
    assert_eq!(
        (r.level, r.message.as_str()),
        (Some(Level::Info), "INFO - not json")
    );
    assert!(r.fields.is_empty());
    let r = parse_with(json, r#"{"msg":"ok","level":"error"}"#);
    assert_eq!(
        (r.level, r.message.as_str(), r.raw),
        (Some(Level::Error), "ok", None)
    );
    let plain = ParserConfig {
        format: Format::Plain,
        ..ParserConfig::default()
    };
    assert_eq!(
        parse_with(plain, r#"{"msg":"ok"}"#).message,
        r#"{"msg":"ok"}"#
    );
    let syslog = ParserConfig {
        format: Format::Syslog,
        ..ParserConfig::default()
    };
    assert_eq!(parse_with(syslog.clone(), "<14>1 - h a - - - m").agent, "a");
    assert_eq!(parse_with(syslog, "[INFO] X: y").agent, "app");
    let apache = ParserConfig {
        format: Format::Apache,
        ..ParserConfig::default()
    };
    let line = r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2"#;
    let r = Parser::new(apache)
        .unwrap()
        .parse(
            line.as_bytes(),
            &LineContext {
                agent_hint: "",
                ..ctx()
            },
        )
        .unwrap();
    assert_eq!(r.agent, "apache");
}

#[test]
fn keep_raw_keeps_json_text() {
    let cfg = ParserConfig {
        keep_raw: true,
        ..ParserConfig::default()
    };
    assert_eq!(
        parse_with(cfg, r#"{"msg":"x"}"#).raw.as_deref(),
        Some(r#"{"msg":"x"}"#)
    );
}

#[test]
fn long_lines_are_cut_at_a_character_boundary() {
    let cfg = ParserConfig {
        max_line_bytes: 5,
        ..ParserConfig::default()
    };
    let r = parse_with(cfg, "abcdé-more");
    assert_eq!(r.message, "abcd");
    assert_eq!(r.fields["truncated"], Value::Bool(true));
    assert!(!r.fields.contains_key("invalid_utf8"));
    let r = parse("line\r\n");
    assert_eq!(r.message, "line");
}

#[test]
fn container_partials_join_and_flush() {
    let mut p = Parser::new(ParserConfig::default()).unwrap();
    let c = ctx();
    assert!(p.parse(b"2024-01-15T10:30:00Z stdout P one ", &c).is_none());
    let other = LineContext {
        source: "other",
        ..c
    };
    assert_eq!(
        p.parse(b"2024-01-15T10:30:00Z stdout F two", &other)
            .unwrap()
            .message,
        "two"
    );
    assert!(p
        .parse(
            br#"{"log":"x","stream":"stdout","time":"2024-01-15T10:30:00Z"}"#,
            &other
        )
        .is_none());
    let r = p.parse(b"2024-01-15T10:30:00Z stdout F three", &c).unwrap();
    assert_eq!(r.message, "one three");
    assert_eq!(r.fields["stream"], Value::Str("stdout".into()));
    assert_eq!(r.timestamp, T);
    assert_eq!(p.flush_partial(&other).unwrap().message, "x");
    assert!(p.flush_partial(&other).is_none());
}

#[test]
fn redaction_is_counted() {
    let mut p = Parser::new(ParserConfig::default()).unwrap();
    let r = p
        .parse(b"login password=hunter2 card 4111111111111111", &ctx())
        .unwrap();
    assert_eq!(
        r.message,
        "login password=[REDACTED:password] card [REDACTED:card]"
    );
    assert_eq!(r.raw.as_deref(), Some(r.message.as_str()));
    let counts = p.redaction_counts();
    assert_eq!(
        (counts["password"], counts["card"], counts["token"]),
        (1, 1, 0)
    );
}

#[test]
fn bad_configuration_is_an_error() {
    let grok = ParserConfig {
        grok: vec![GrokDef {
            name: "bad".into(),
            pattern: "%{NOPE}".into(),
        }],
        ..ParserConfig::default()
    };
    let err = Parser::new(grok).unwrap_err().to_string();
    assert!(err.contains("bad") && err.contains("NOPE"), "{err}");
    assert!("Nowhere/Else".parse::<TimeZone>().is_err());
}

#[test]
fn record_json_is_flat() {
    let r = parse("2024-01-15 10:30:00 - ERROR - api - failed status=500");
    let v = record_to_json(&r);
    assert_eq!(v["status"], 500);
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["timestamp"], "2024-01-15T10:30:00Z");
}

#[test]
fn push_joins_traces_inside_container_lines() {
    let mut p = Parser::new(ParserConfig::default()).unwrap();
    let c = ctx();
    let mut out = Vec::new();
    for line in [
        "2024-01-15T10:30:00Z stderr F 2024-01-15 10:30:00 - ERROR - api - failed",
        "2024-01-15T10:30:00Z stderr F Traceback (most recent call last):",
        "2024-01-15T10:30:00Z stderr P   File \"/app/x.py\", line 3,",
        "2024-01-15T10:30:00Z stderr F  in f",
        "2024-01-15T10:30:00Z stderr F ValueError: bad",
        "2024-01-15T10:30:01Z stdout F [INFO] W: next",
    ] {
        p.push(line.as_bytes(), &c, 0, &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message, "failed\nTraceback (most recent call last):\n  File \"/app/x.py\", line 3, in f\nValueError: bad");
    assert_eq!(out[0].fields["stream"], Value::Str("stderr".into()));
    p.flush(&c, 1, &mut out);
    assert_eq!(out.len(), 1, "the timeout has not passed");
    p.flush(&c, 3_000_000_000, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[1].agent.as_str(), out[1].timestamp),
        ("W", T + 1_000_000_000)
    );
    p.push(b"2024-01-15T10:30:02Z stdout P held", &c, 0, &mut out);
    p.push(b"plain line", &c, 0, &mut out);
    p.flush_all(&c, &mut out);
    let messages: Vec<&str> = out[2..].iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["plain line", "held"]);
}

#[test]
fn push_without_joining_is_parse() {
    let cfg = ParserConfig {
        multiline: crate::MultilineConfig {
            mode: crate::MultilineMode::None,
            ..Default::default()
        },
        ..ParserConfig::default()
    };
    let mut p = Parser::new(cfg).unwrap();
    let mut out = Vec::new();
    p.push(b"INFO - a\n", &ctx(), 0, &mut out);
    p.push(b"\tat x.y(Z.java:1)", &ctx(), 0, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].message, "a");
}

#[test]
fn parsers_move_between_threads() {
    fn send<T: Send + Sync>() {}
    send::<Parser>();
    send::<crate::Multiline>();
    send::<crate::Grok>();
}

#[test]
fn a_broken_json_line_keeps_the_context_source() {
    let r = parse(r#"{"source":"elsewhere","host":"h9","msg":"cut"#);
    assert_eq!(
        (r.source.as_str(), r.host.as_str()),
        ("file:/tmp/app.log", "h1")
    );
    assert!(r.fields.contains_key("json_error"));
}

#[test]
fn a_fixed_container_format_says_why_a_line_is_plain_text() {
    let docker = ParserConfig {
        format: Format::Docker,
        ..ParserConfig::default()
    };
    for line in ["not json", "{\"log\":\"cut in the midd", "{\"other\":1}"] {
        let rec = parse_with(docker.clone(), line);
        assert_eq!(rec.message, line);
        assert_eq!(
            rec.fields[WRAPPER_ERROR].to_string(),
            "not a Docker json-file line",
            "{line}"
        );
    }
    let ok = parse_with(
        docker,
        r#"{"log":"fine\n","stream":"stdout","time":"2024-01-15T10:30:00Z"}"#,
    );
    assert!(!ok.fields.contains_key(WRAPPER_ERROR));
    let cri = ParserConfig {
        format: Format::Cri,
        ..ParserConfig::default()
    };
    let rec = parse_with(cri, "no cri prefix");
    assert_eq!(rec.fields[WRAPPER_ERROR].to_string(), "not a CRI line");
    assert!(!parse("plain text").fields.contains_key(WRAPPER_ERROR));
}

#[test]
fn the_limit_cuts_a_docker_line_not_its_wrapper() {
    let cfg = ParserConfig {
        max_line_bytes: 16,
        ..ParserConfig::default()
    };
    let line = format!(
        r#"{{"log":"{}\n","stream":"stderr","time":"2024-01-15T10:30:00Z"}}"#,
        "é".repeat(20)
    );
    let rec = parse_with(cfg.clone(), &line);
    assert_eq!(rec.message, "é".repeat(8));
    assert_eq!(rec.fields["truncated"].to_string(), "true");
    assert_eq!(rec.fields["stream"].to_string(), "stderr");
    assert_eq!(rec.timestamp, T);
    // Not a wrapper after all: the text is cut at the limit.
    let rec = parse_with(cfg, &format!("{{\"log\":{}", "x".repeat(100)));
    assert_eq!(rec.message.len(), 16);
    assert_eq!(rec.fields["truncated"].to_string(), "true");
}

/// rsyslog's RFC 5424 forwarding template (`RSYSLOG_SyslogProtocol23Format`) writes
/// `%STRUCTURED-DATA% %msg%`, and the `msg` of a line it received in RFC 3164 keeps the
/// space after `tag:`: the message arrives with two spaces before it. One is dropped, and
/// only one.
#[test]
fn the_space_rsyslog_adds_before_a_forwarded_message_is_dropped() {
    let syslog = ParserConfig {
        format: Format::Syslog,
        ..ParserConfig::default()
    };
    let forwarded = "<11>1 2026-03-07T10:00:05+00:00 web-7 billing 42 - -  line 5";
    assert_eq!(parse_with(syslog.clone(), forwarded).message, "line 5");
    let sd = "<11>1 2026-03-07T10:00:05Z web-7 billing 42 - [a x=\"1\"]  line 5";
    assert_eq!(parse_with(syslog.clone(), sd).message, "line 5");
    let indented = "<11>1 2026-03-07T10:00:05Z web-7 billing 42 - -    indented";
    assert_eq!(parse_with(syslog.clone(), indented).message, "  indented");
    let plain = "<11>1 2026-03-07T10:00:05Z web-7 billing 42 - - line 5";
    assert_eq!(parse_with(syslog, plain).message, "line 5");
}
