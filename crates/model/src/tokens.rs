//! Tokens: the words that the store's per-block filters index and that searches look up.
//!
//! A token is a maximal run of ASCII letters, digits, `_` and non-ASCII characters. Its
//! hash is stable across versions and platforms because it is written into segment files.

use crate::record::{Record, Value};

/// Returns the tokens of a text, in order, duplicates included.
pub fn tokenize(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()))
        .filter(|t| !t.is_empty())
}

/// Returns the stable 64-bit hash of a token (FNV-1a, then a splitmix64 finaliser).
pub fn hash_token(token: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in token.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Calls `f` with the hash of every token of a record: message, raw text, agent, host,
/// source and field values (numbers and booleans by their text).
pub fn tokens_of(record: &Record, mut f: impl FnMut(u64)) {
    let mut text = |s: &str| tokenize(s).for_each(|t| f(hash_token(t)));
    text(&record.message);
    if let Some(raw) = &record.raw {
        text(raw);
    }
    text(&record.agent);
    text(&record.host);
    text(&record.source);
    for value in record.fields.values() {
        match value {
            Value::Str(s) => text(s),
            other => text(&other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_punctuation_keeps_words() {
        let tokens: Vec<&str> =
            tokenize("NEEDLE-42-5 user_id=7 café \"connection refused\"").collect();
        assert_eq!(
            tokens,
            [
                "NEEDLE",
                "42",
                "5",
                "user_id",
                "7",
                "café",
                "connection",
                "refused"
            ]
        );
    }

    #[test]
    fn hash_is_stable() {
        // Written into segment files: this value must never change.
        assert_eq!(hash_token("error"), hash_token("error"));
        assert_ne!(hash_token("error"), hash_token("Error"));
        assert_eq!(hash_token("NEEDLE"), 0xcfc8_8fba_4a7e_377b);
    }
}
