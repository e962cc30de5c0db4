//! Unit tests of the parent module.
use super::*;

fn fields(msg: &str) -> Vec<(String, Value)> {
    let mut r = Record::default();
    extract(&mut r, msg);
    r.fields.into_iter().collect()
}

fn f(k: &str, v: Value) -> (String, Value) {
    (k.to_string(), v)
}

#[test]
fn scalars() {
    assert_eq!(scalar("42"), Value::Int(42));
    assert_eq!(scalar("-7"), Value::Int(-7));
    assert_eq!(scalar("007"), Value::Str("007".into()));
    assert_eq!(scalar("1.5"), Value::Float(1.5));
    assert_eq!(scalar("1."), Value::Str("1.".into()));
    assert_eq!(scalar("true"), Value::Bool(true));
    assert_eq!(
        scalar("99999999999999999999"),
        Value::Str("99999999999999999999".into())
    );
}

#[test]
fn durations() {
    assert_eq!(duration_ms("1234ms", 1.0), Some(1234.0));
    assert_eq!(duration_ms("1.2s", 1.0), Some(1200.0));
    assert_eq!(duration_ms("35 ms", 1.0), Some(35.0));
    assert_eq!(duration_ms("1m30s", 1.0), Some(90_000.0));
    assert_eq!(duration_ms("0.25", 1000.0), Some(250.0));
    assert_eq!(duration_ms("fast", 1.0), None);
    let mut r = Record::default();
    add_field(&mut r, "duration", Value::Str("1.5s".into()));
    add_field(&mut r, "statusCode", Value::Str("404".into()));
    assert_eq!(r.fields[RESPONSE_TIME_MS], Value::Int(1500));
    assert_eq!(r.fields["status"], Value::Int(404));
    assert_eq!(r.fields["duration"], Value::Str("1.5s".into()));
    let mut r = Record::default();
    add_field(&mut r, "elapsed_s", Value::Float(0.0125));
    assert_eq!(r.fields[RESPONSE_TIME_MS], Value::Float(12.5));
}

#[test]
fn message_pairs() {
    assert_eq!(
        fields("Request completed: GET /health status=201 response_time: 58ms user=anonymous"),
        [
            f("method", Value::Str("GET".into())),
            f("path", Value::Str("/health".into())),
            f("response_time_ms", Value::Int(58)),
            f("status", Value::Int(201)),
            f("user", Value::Str("anonymous".into()))
        ]
    );
    assert_eq!(
        fields("HTTP POST /a?b=1 -> 200 (response_time: 85ms, 2678 bytes)"),
        [
            f("method", Value::Str("POST".into())),
            f("path", Value::Str("/a?b=1".into())),
            f("response_time_ms", Value::Int(85)),
            f("status", Value::Int(200))
        ]
    );
    assert_eq!(
        fields("Failed password for root from 45.155.205.7 port 22 ssh2"),
        [
            f("ip", Value::Str("45.155.205.7".into())),
            f("user", Value::Str("root".into()))
        ]
    );
    assert_eq!(
        fields("Cache flushed (ttl=300s)"),
        [f("ttl", Value::Str("300s".into()))]
    );
    assert_eq!(
        fields("query took 35 ms"),
        [f("response_time_ms", Value::Int(35))]
    );
    assert_eq!(
        fields("msg=\"a b\" n=1.5"),
        [
            f("msg", Value::Str("a b".into())),
            f("n", Value::Float(1.5))
        ]
    );
    assert_eq!(
        fields("duration: 41.702 ms  statement: SELECT 1"),
        [f("response_time_ms", Value::Float(41.702))]
    );
    assert_eq!(
        fields("login failed for user admin from 1.2.3.4: invalid password"),
        [
            f("ip", Value::Str("1.2.3.4".into())),
            f("user", Value::Str("admin".into()))
        ]
    );
    assert!(fields("Failed to validate token: signature verification failed").is_empty());
}

mod words {
    use super::*;
    use proptest::prelude::*;

    /// The end of a word and its first `=`, a byte at a time.
    fn naive_end(b: &[u8], i: usize) -> (usize, Option<usize>) {
        let mut end = i;
        while end < b.len() && !is_blank(b[end]) {
            end += 1;
        }
        let eq = b[i..end].iter().position(|&c| c == b'=').map(|p| i + p);
        (end, eq)
    }

    proptest! {
        /// Eight bytes at a time finds the same ends and `=` as one at a time, whatever the
        /// bytes (control bytes below a blank, bytes above 0x7f, blanks at every position).
        #[test]
        fn word_end_is_the_next_blank(
            pick in proptest::collection::vec(0usize..12, 0..40),
        ) {
            let alphabet = [b' ', b'\n', b'\t', 0, 0x1f, b'!', b'a', b'=', 0x7f, 0x80, 0xc3, 0xff];
            let b: Vec<u8> = pick.iter().map(|&k| alphabet[k]).collect();
            for i in 0..=b.len() {
                prop_assert_eq!(word_end(&b, i), naive_end(&b, i));
            }
        }
    }
}

/// Words are looked for in a message's first 64 KiB: a character across that limit ends
/// the last word before it instead of splitting the character.
#[test]
fn a_character_across_the_word_limit() {
    for pad in 65525..65535 {
        let msg = format!("x=1 {}€€€ tail=2", "a".repeat(pad));
        assert_eq!(fields(&msg), vec![f("x", Value::Int(1))], "pad {pad}");
    }
}
