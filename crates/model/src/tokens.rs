//! Tokens: the words that the store's per-block filters index and that searches look up.
//!
//! A token is a maximal run of ASCII letters, digits, `_` and non-ASCII characters. Beside
//! each token, the filters index each *pair* of adjacent tokens joined by exactly one of
//! the characters `-./:@=` (`NEEDLE-42`, `42-5`, `api/v1`, `user_id=7`): identifiers,
//! paths, addresses and `key=value` pairs are made of common tokens, but their pairs are
//! rare, so a lookup of `NEEDLE-42-5` or `10.0.0.7` skips the blocks that hold only its
//! parts. Hashes are stable across versions and platforms because they are written into
//! segment files.

use crate::record::{Record, Value};

/// The characters that join two tokens into an indexed pair.
const PAIR_JOINERS: &[u8] = b"-./:@=";

fn is_token_byte(b: u8) -> bool {
    // Every byte of a multi-byte UTF-8 character is >= 0x80, so this byte test is the
    // character test "ASCII alphanumeric, `_` or non-ASCII".
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Returns the byte ranges of the tokens of a text, in order.
fn token_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < bytes.len() && !is_token_byte(bytes[pos]) {
            pos += 1;
        }
        if pos == bytes.len() {
            return None;
        }
        let start = pos;
        while pos < bytes.len() && is_token_byte(bytes[pos]) {
            pos += 1;
        }
        Some((start, pos))
    })
}

/// Returns the tokens of a text, in order, duplicates included.
pub fn tokenize(text: &str) -> impl Iterator<Item = &str> {
    token_spans(text).map(move |(s, e)| &text[s..e])
}

/// Returns the stable 64-bit hash of a token (FNV-1a, then a splitmix64 finaliser).
pub fn hash_token(token: &str) -> u64 {
    hash_bytes(token.as_bytes())
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Calls `f` with the hash of every token of a text and of every pair of adjacent tokens
/// joined by one of `-./:@=`: what the filters index, and what a search for the text as a
/// word or phrase may require of a block.
pub fn text_hashes(text: &str, mut f: impl FnMut(u64)) {
    let bytes = text.as_bytes();
    let mut prev: Option<(usize, usize)> = None;
    for (start, end) in token_spans(text) {
        f(hash_bytes(&bytes[start..end]));
        if let Some((p_start, p_end)) = prev {
            if start == p_end + 1 && PAIR_JOINERS.contains(&bytes[p_end]) {
                f(hash_bytes(&bytes[p_start..end]));
            }
        }
        prev = Some((start, end));
    }
}

/// Calls `f` with the hashes ([`text_hashes`]) of every text of a record: message, raw
/// text, agent, host, source and field values (numbers and booleans by their text).
pub fn tokens_of(record: &Record, mut f: impl FnMut(u64)) {
    let mut text = |s: &str| text_hashes(s, &mut f);
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
    fn pairs_joined_by_one_joiner_are_hashed_too() {
        let mut got = Vec::new();
        text_hashes("NEEDLE-42-5 a--b x y", |h| got.push(h));
        let want: Vec<u64> = ["NEEDLE", "42", "NEEDLE-42", "5", "42-5", "a", "b", "x", "y"]
            .iter()
            .map(|t| hash_token(t))
            .collect();
        assert_eq!(got, want);
        // A word inside the text asks only for hashes the text has.
        let mut text = std::collections::HashSet::new();
        text_hashes("id=NEEDLE-42-5, ip 10.0.0.7", |h| {
            text.insert(h);
        });
        for word in ["NEEDLE-42-5", "42-5", "id=NEEDLE", "10.0.0.7", "0.0"] {
            text_hashes(word, |h| assert!(text.contains(&h), "{word}"));
        }
    }

    #[test]
    fn hash_is_stable() {
        // Written into segment files: this value must never change.
        assert_eq!(hash_token("error"), hash_token("error"));
        assert_ne!(hash_token("error"), hash_token("Error"));
        assert_eq!(hash_token("NEEDLE"), 0xcfc8_8fba_4a7e_377b);
    }
}
