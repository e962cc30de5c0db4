//! Unit tests of the parent module.
use super::cards::{known_issuer, luhn};
use super::*;

fn red(text: &str) -> String {
    Redactor::new(&RedactConfig::default())
        .unwrap()
        .redact(text)
        .into_owned()
}

#[test]
fn luhn_and_issuers() {
    let d = |s: &str| s.bytes().map(|c| c - b'0').collect::<Vec<u8>>();
    assert!(luhn(&d("4111111111111111")));
    assert!(!luhn(&d("4111111111111112")));
    assert!(luhn(&d("378282246310005")));
    assert!(known_issuer(&d("378282246310005")));
    assert!(
        !known_issuer(&d("139519769238641")),
        "a thread id is not a card"
    );
}

#[test]
fn cards() {
    assert_eq!(
        red("paid with 4111 1111 1111 1111 ok"),
        "paid with [REDACTED:card] ok"
    );
    assert_eq!(red("card=4111-1111-1111-1111"), "card=[REDACTED:card]");
    assert_eq!(
        red("amex 378282246310005."),
        "amex 378282246310005.",
        "a trailing dot makes it a number"
    );
    assert_eq!(red("bad 4111111111111112"), "bad 4111111111111112");
    assert_eq!(
        red("tid 139519769238641 ts 1705312200123"),
        "tid 139519769238641 ts 1705312200123"
    );
}

#[test]
fn keyed_secrets() {
    assert_eq!(
        red("login password=hunter2 user=ana"),
        "login password=[REDACTED:password] user=ana"
    );
    assert_eq!(
        red(r#"{"user":"ana","password":"p@ss w"}"#),
        r#"{"user":"ana","password":"[REDACTED:password]"}"#
    );
    assert_eq!(
        red(r#"{"api_key": 12345}"#),
        r#"{"api_key": "[REDACTED:api_key]"}"#
    );
    assert_eq!(
        red("db_password: s3cret"),
        "db_password: [REDACTED:password]"
    );
    assert_eq!(
        red("Authorization: Bearer abc.def.ghi123"),
        "Authorization: [REDACTED:authorization]"
    );
    assert_eq!(
        red("client_secret=xyz&x=1"),
        "client_secret=[REDACTED:secret]&x=1"
    );
    assert_eq!(
        red("Failed to validate token: signature verification failed"),
        "Failed to validate token: signature verification failed"
    );
    assert_eq!(red("token: 9f8e7d6c5b4a"), "token: [REDACTED:token]");
    assert_eq!(
        red("Password reset email sent"),
        "Password reset email sent"
    );
    assert_eq!(
        red(r#"{\"password\":\"x\"}"#),
        r#"{\"password\":\"[REDACTED:password]\"}"#
    );
}

#[test]
fn tokens_keys_and_blocks() {
    assert_eq!(
        red("curl -H 'x: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc'"),
        "curl -H 'x: Bearer [REDACTED:bearer]'"
    );
    assert_eq!(
        red("key AKIAIOSFODNN7EXAMPLE used"),
        "key [REDACTED:aws_key] used"
    );
    assert_eq!(
        red("a -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- b"),
        "a [REDACTED:private_key] b"
    );
}

#[test]
fn custom_patterns_and_counts() {
    let cfg = RedactConfig {
        builtin: true,
        patterns: vec![RedactPattern {
            name: "ssn".into(),
            regex: r"\b\d{3}-\d{2}-\d{4}\b".into(),
        }],
        ..RedactConfig::default()
    };
    let r = Redactor::new(&cfg).unwrap();
    assert_eq!(
        r.redact("ssn 123-45-6789 password=x"),
        "ssn [REDACTED:ssn] password=[REDACTED:password]"
    );
    assert_eq!(r.counts()["ssn"], 1);
    assert_eq!(r.counts()["password"], 1);
    assert_eq!(r.counts()["card"], 0);
    // A second redactor of the same configuration adds to the same counts.
    let other = Redactor::new(&cfg.clone()).unwrap();
    other.redact("password=y token=z");
    assert_eq!(r.counts()["password"], 2);
    assert_eq!(r.counts()["token"], 1);
    // A configuration of its own counts on its own.
    let fresh = Redactor::new(&RedactConfig::default()).unwrap();
    assert_eq!(fresh.counts()["password"], 0);
    let bad = RedactConfig {
        builtin: true,
        patterns: vec![RedactPattern {
            name: "x".into(),
            regex: "(".into(),
        }],
        ..RedactConfig::default()
    };
    assert!(matches!(Redactor::new(&bad), Err(ParseError::Regex { .. })));
}

#[test]
fn records_from_other_decoders_lose_their_secrets() {
    use logyard_model::{Record, Value};
    let r = Redactor::new(&RedactConfig::default()).unwrap();
    let mut rec = Record::new(1, "login password=hunter2 for ana");
    rec.raw = Some("{\"msg\": \"Authorization: Bearer abc.def.ghi\"}".into());
    rec.fields
        .insert("db.password".into(), Value::Str("s3cr3t".into()));
    rec.fields.insert("api_key".into(), Value::Int(424242));
    rec.fields
        .insert("note".into(), Value::Str("token=zz9plural".into()));
    rec.fields.insert("token_valid".into(), Value::Bool(true));
    rec.fields.insert("user".into(), Value::Str("ana".into()));
    rec.fields
        .insert("secret".into(), Value::Str("[REDACTED:secret]".into()));
    r.redact_record(&mut rec);
    assert_eq!(rec.message, "login password=[REDACTED:password] for ana");
    let raw = rec.raw.as_deref().unwrap();
    assert!(!raw.contains("abc.def.ghi"), "{raw}");
    assert_eq!(
        rec.fields["db.password"],
        Value::Str("[REDACTED:password]".into())
    );
    assert_eq!(
        rec.fields["api_key"],
        Value::Str("[REDACTED:api_key]".into())
    );
    assert_eq!(
        rec.fields["note"],
        Value::Str("token=[REDACTED:token]".into())
    );
    assert_eq!(rec.fields["token_valid"], Value::Bool(true));
    assert_eq!(rec.fields["user"], Value::Str("ana".into()));
    // What was already redacted is neither changed nor counted again.
    assert_eq!(rec.fields["secret"], Value::Str("[REDACTED:secret]".into()));
    assert_eq!(r.counts()["password"], 2);
    assert_eq!(r.counts()["api_key"], 1);
    assert_eq!(r.counts()["token"], 1);
    assert_eq!(r.counts()["secret"], 0);

    // Without the built-in rules, only the configured patterns apply, keys or not.
    let cfg = RedactConfig {
        builtin: false,
        patterns: vec![RedactPattern {
            name: "ssn".into(),
            regex: r"\b\d{3}-\d{2}-\d{4}\b".into(),
        }],
        ..RedactConfig::default()
    };
    let r = Redactor::new(&cfg).unwrap();
    let mut rec = Record::new(1, "ssn 123-45-6789 password=x");
    rec.fields.insert("password".into(), Value::Str("y".into()));
    r.redact_record(&mut rec);
    assert_eq!(rec.message, "ssn [REDACTED:ssn] password=x");
    assert_eq!(rec.fields["password"], Value::Str("y".into()));
}

#[test]
fn url_passwords_keep_the_user() {
    assert_eq!(
        red("connecting to postgres://admin:S3cr3t@db/app?x=1"),
        "connecting to postgres://admin:[REDACTED:url_password]@db/app?x=1"
    );
    assert_eq!(
        red("redis://:p@ss@cache:6379 up"),
        "redis://:[REDACTED:url_password]@cache:6379 up"
    );
    assert_eq!(
        red(r#"{"dsn":"mysql://u:pw@h:3306/d"}"#),
        r#"{"dsn":"mysql://u:[REDACTED:url_password]@h:3306/d"}"#
    );
    // No password, or no userinfo at all: nothing to hide.
    for kept in [
        "https://ana@example.com/x",
        "see https://example.com:8443/a@b",
        "http://h/p?u=a:b@c",
        "not a url :// x:y@z",
    ] {
        assert_eq!(red(kept), kept);
    }
}

#[test]
fn emails_only_with_pii() {
    let text = "mail ana.lopez@example.com, mailto:bo+x@mail.example.org. ok";
    assert_eq!(red(text), text, "off by default");
    let r = Redactor::new(&RedactConfig {
        pii: true,
        ..RedactConfig::default()
    })
    .unwrap();
    assert_eq!(
        r.redact(text),
        "mail [REDACTED:email], mailto:[REDACTED:email]. ok"
    );
    assert_eq!(r.counts()["email"], 2);
    for kept in ["user@localhost", "a@b.c1", "@example.com", "x@.com"] {
        assert_eq!(r.redact(kept), kept);
    }
    // The userinfo of a URL is its password's business, not an address.
    assert_eq!(
        r.redact("postgres://admin:pw@db.example.com/app"),
        "postgres://admin:[REDACTED:url_password]@db.example.com/app"
    );
    assert!(!Redactor::new(&RedactConfig::default())
        .unwrap()
        .counts()
        .contains_key("email"));
}

#[test]
fn json_escapes_are_decoded_but_json_stays_json() {
    let cases = [
        (r#"{"m":"pass\u0077ord=x"}"#, r#"{"m":"password=x"}"#),
        (r#"{"m":"a\/b \u00e9 \ud83d\ude00"}"#, r#"{"m":"a/b é 😀"}"#),
        (
            r#"{"m":"q\"\\ \n\u0001\u0022"}"#,
            r#"{"m":"q\"\\ \n\u0001\""}"#,
        ),
        (
            r#"{"m":"bad \uZZZZ \ud800 x"}"#,
            r#"{"m":"bad \uZZZZ \ud800 x"}"#,
        ),
        (r#"{"k\u0065y": 1} \u0041"#, r#"{"key": 1} \u0041"#),
        ("plain", "plain"),
    ];
    for (text, want) in cases {
        let got = unescape_json(text);
        assert_eq!(got, want, "{text}");
        if text.starts_with('{') && !text.contains("\\u0041") {
            let a: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            let b: serde_json::Value = serde_json::from_str(&got).unwrap_or_default();
            assert_eq!(a, b, "{text}");
        }
    }
}

/// Every escape form a JSON writer may use, on lines where the secret would otherwise pass.
#[test]
fn escaped_secrets_are_redacted_in_json_lines() {
    let r = Redactor::new(&RedactConfig::default()).unwrap();
    let cases = [
        (r#"{"msg":"pass\u0077ord=Hunter2Tail"}"#, "Hunter2Tail"),
        (r#"{"msg":"\u0070\u0061ssword=Hunter2Tail"}"#, "Hunter2Tail"),
        (
            r#"{"msg":"card \u0034111111111111111"}"#,
            "4111111111111111",
        ),
        (r#"{"msg":"Bearer abc\/def.ghiTail123"}"#, "ghiTail123"),
        (r#"{"msg":"token=abc\u0064efTail99"}"#, "Tail99"),
        (
            r#"{"msg":"caf\u00e9 password=s3cr\u00e9tTail77"}"#,
            "Tail77",
        ),
        (r#"{"msg":"api_key\u003dQwErTy123456"}"#, "QwErTy123456"),
        (r#"{"dsn":"postgres:\/\/admin:S3cr3t@db\/x"}"#, "S3cr3t"),
        (r#"{"pass\u0077ord":"Hunter2Tail"}"#, "Hunter2Tail"),
    ];
    for (line, secret) in cases {
        let out = r.redact_line(line);
        assert!(!out.contains(secret), "{line} → {out}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{line} → {out}"
        );
    }
}

#[test]
fn records_are_redacted_string_by_string_and_numbers_too() {
    let r = Redactor::new(&RedactConfig::default()).unwrap();
    let mut rec = Record::new(1, "db postgres://u:S3cr3t@h/d");
    rec.fields.insert("n".into(), Value::Int(4111111111111111));
    rec.fields.insert("port".into(), Value::Int(5432));
    r.redact_record(&mut rec);
    assert_eq!(rec.message, "db postgres://u:[REDACTED:url_password]@h/d");
    assert_eq!(rec.fields["n"], Value::Str("[REDACTED:card]".into()));
    assert_eq!(rec.fields["port"], Value::Int(5432));
}

mod escapes {
    use super::*;
    use proptest::prelude::*;

    /// A JSON string literal of `text` with each character written plainly or as `\uXXXX`
    /// (surrogate pairs beyond the BMP), and `/` as `\/`, as `pick` says.
    fn escaped(text: &str, pick: &[bool]) -> String {
        let mut out = String::from("\"");
        for (c, escape) in text.chars().zip(pick.iter().cycle()) {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' if *escape => out.push_str("\\/"),
                c if *escape || c.is_control() => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    proptest! {
        /// However a JSON writer escapes a line, the secret in it is redacted as it is in
        /// the plain line, and the line stays the same JSON otherwise.
        #[test]
        fn any_escaping_redacts_as_the_plain_text(
            prefix in "[a-zA-Z é/]{0,8}",
            form in 0usize..5,
            secret in "[A-Za-z0-9]{4,6}[0-9][A-Za-z0-9é]{4,10}",
            pick in proptest::collection::vec(any::<bool>(), 1..16),
        ) {
            let text = match form {
                0 => format!("{prefix} password={secret}"),
                1 => format!("{prefix} token: {secret}"),
                2 => format!("{prefix} Authorization: Bearer ab/{secret}"),
                3 => format!("{prefix} postgres://admin:{secret}@db/x"),
                _ => format!("{prefix} card 4111111111111111 ok {secret}"),
            };
            let line = format!("{{\"message\":{}}}", escaped(&text, &pick));
            let plain = format!("{{\"message\":{}}}", serde_json::to_string(&text).unwrap());
            let r = Redactor::new(&RedactConfig::default()).unwrap();
            let got = r.redact_line(&line).into_owned();
            let want = r.redact_line(&plain).into_owned();
            prop_assert_eq!(&got, &want, "{}", line);
            prop_assert!(form == 4 || !got.contains(&secret), "{}", got);
            prop_assert!(!got.contains("4111111111111111"), "{}", got);
            let v: serde_json::Value = serde_json::from_str(&got).unwrap();
            prop_assert!(v["message"].is_string());
        }
    }
}

#[test]
fn a_backslash_before_a_multibyte_character_does_not_panic() {
    assert_eq!(
        unescape_json("{\"log\":\"\\\u{fffd}"),
        "{\"log\":\"\\\u{fffd}"
    );
    assert_eq!(unescape_json("\"a\\é b\""), "\"a\\é b\"");
}
