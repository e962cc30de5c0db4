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
    let mut r = Redactor::new(&cfg).unwrap();
    assert_eq!(
        r.redact("ssn 123-45-6789 password=x"),
        "ssn [REDACTED:ssn] password=[REDACTED:password]"
    );
    assert_eq!(r.counts()["ssn"], 1);
    assert_eq!(r.counts()["password"], 1);
    assert_eq!(r.counts()["card"], 0);
    // A second redactor of the same configuration adds to the same counts.
    let mut other = Redactor::new(&cfg.clone()).unwrap();
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
    let mut r = Redactor::new(&RedactConfig::default()).unwrap();
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
    let mut r = Redactor::new(&cfg).unwrap();
    let mut rec = Record::new(1, "ssn 123-45-6789 password=x");
    rec.fields.insert("password".into(), Value::Str("y".into()));
    r.redact_record(&mut rec);
    assert_eq!(rec.message, "ssn [REDACTED:ssn] password=x");
    assert_eq!(rec.fields["password"], Value::Str("y".into()));
}
