use super::*;
use crate::rule::Interval;

fn parse(text: &str) -> Result<Vec<RotateRule>, RotateError> {
    parse_logrotate_str(text, Path::new("/etc/test.conf"))
}

#[test]
fn globals_blocks_and_defaults() {
    let rules = parse(
        r#"
# global defaults
weekly
rotate 4
create

/var/log/a.log "/var/log/with space.log" {
    daily
    compress
    delaycompress
    size=100k
    missingok
    notifempty
    postrotate
        kill -HUP $(cat /run/a.pid)
    endscript
}

/var/log/b/*.log
{
    rotate 2
    copytruncate
    compresscmd /usr/bin/zstd
    compress
    dateext
    dateformat -%Y%m%d-%s
}
"#,
    )
    .unwrap();
    assert_eq!(rules.len(), 2);
    let a = &rules[0];
    assert_eq!(a.paths, vec!["/var/log/a.log", "/var/log/with space.log"]);
    assert_eq!(a.keep, 4);
    assert_eq!(a.size, Some(102_400));
    assert_eq!(
        a.every, None,
        "size replaces the time criterion, as in logrotate"
    );
    assert_eq!(a.compression, Compression::Gzip { level: 6 });
    assert!(a.delay_compress && a.missing_ok && !a.if_empty);
    assert_eq!(a.method, Method::Create(CreateSpec::default()));
    assert!(a
        .scripts
        .postrotate
        .as_deref()
        .unwrap()
        .contains("kill -HUP"));
    let b = &rules[1];
    assert_eq!(b.every, Some(Interval::Weekly));
    assert_eq!(b.method, Method::CopyTruncate);
    assert_eq!(b.compression, Compression::Zstd { level: 3 });
    assert_eq!(b.compress_ext, ".zst");
    assert_eq!(b.date_ext.as_ref().unwrap().format, "-%Y%m%d-%s");
    assert!(!b.missing_ok && b.if_empty);
}

#[test]
fn unsupported_directives_name_file_and_line() {
    let e = parse("/x.log {\n  rotate 1\n  mail admin@example.com\n}\n").unwrap_err();
    assert!(matches!(e, RotateError::Unsupported { line: 3, .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("/etc/test.conf:3: directive \"mail\""),
        "{e}"
    );
    let e = parse("/x.log {\n  rotat 1\n}\n").unwrap_err().to_string();
    assert!(
        e.contains(":2:") && e.contains("rotat") && e.contains("spelling"),
        "{e}"
    );
    let e = parse("/x.log {\n  compresscmd /usr/bin/xz\n}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("xz") && e.contains("gzip and zstd"), "{e}");
}

#[test]
fn syntax_errors_give_line_and_hint() {
    let cases = [
        ("/x.log {\n  rotate 1\n", 1, "not closed"),
        ("/x.log {\n  rotate five\n}\n", 2, "whole number"),
        ("/x.log {\n  postrotate\n  echo\n}\n", 2, "endscript"),
        ("}\n", 1, "without a block"),
        ("/x.log {\n /y.log {\n}\n", 2, "nest"),
        ("/x.log {\n}\n/x.log {\n}\n", 3, "duplicate"),
        ("/x.log {\n  size 10q\n}\n", 2, "unknown unit"),
        ("/x.log\n", 1, "without a block"),
        ("\"/x.log {\n}\n", 1, "quote"),
        ("/x.log {\n  rotate 1\n/y.log\n}\n", 3, "inside a block"),
    ];
    for (text, line, needle) in cases {
        match parse(text) {
            Err(RotateError::Syntax {
                line: l,
                message,
                hint,
                ..
            }) => {
                assert_eq!(l, line, "{text:?}: {message}");
                let all = format!("{message}; {hint}");
                assert!(all.contains(needle), "{text:?}: {all}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn includes_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("logrotate.d");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("b"), "/var/log/b.log {\n  rotate 2\n}\n").unwrap();
    fs::write(d.join("a"), "/var/log/a.log {\n  rotate 1\n}\n").unwrap();
    fs::write(d.join("a.dpkg-old"), "/var/log/old.log {\n}\n").unwrap();
    let main = dir.path().join("logrotate.conf");
    fs::write(
        &main,
        "compress\ninclude logrotate.d\n/var/log/c.log {\n}\n",
    )
    .unwrap();
    let rules = parse_logrotate_conf(&main).unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["/var/log/a.log", "/var/log/b.log", "/var/log/c.log"]
    );
    assert!(rules.iter().all(|r| r.compression != Compression::None));
    fs::write(d.join("loop"), format!("include {}\n", main.display())).unwrap();
    assert!(parse_logrotate_conf(&main)
        .unwrap_err()
        .to_string()
        .contains("loop"));
}
