//! Card numbers: 13 to 19 digits (spaces or dashes allowed) with a known issuer prefix
//! and a valid Luhn check digit.

use super::{Hit, CARD};

/// True for the bytes a card number is written with (one table look-up: these tests run
/// on many bytes of every line).
fn card_byte(c: u8) -> bool {
    CARD_BYTES[usize::from(c)]
}

/// Digits, space and dash.
static CARD_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = true;
        c += 1;
    }
    t[b' ' as usize] = true;
    t[b'-' as usize] = true;
    t
};

/// Finds card numbers: only runs of digits, spaces and dashes of 13 bytes or more can hold
/// one, so the scan looks 12 bytes ahead and skips 13 when that byte cannot be in a run.
pub(super) fn cards(b: &[u8], hits: &mut Vec<Hit>) {
    let mut i = 0;
    while i + 13 <= b.len() {
        let k = i + 12;
        // Inside a card a separator follows a digit: a space after a word skips ahead too.
        if !(b[k].is_ascii_digit() || (card_byte(b[k]) && b[k - 1].is_ascii_digit())) {
            i = k + 1;
            continue;
        }
        let mut s = k;
        while s > i && card_byte(b[s - 1]) {
            s -= 1;
        }
        let mut e = k;
        while e < b.len() && card_byte(b[e]) {
            e += 1;
        }
        if e - s >= 13 {
            let mut p = s;
            while p + 13 <= e {
                if b[p].is_ascii_digit() && (p == 0 || !b[p - 1].is_ascii_digit()) {
                    if let Some(h) = card(b, p) {
                        p = h.end;
                        hits.push(h);
                        continue;
                    }
                }
                p += 1;
            }
        }
        i = e + 1;
    }
}

fn card(b: &[u8], i: usize) -> Option<Hit> {
    if !(b'2'..=b'6').contains(&b[i]) {
        return None;
    }
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'.' | b'-' | b'_')) {
        return None;
    }
    let mut digits = [0u8; 19];
    let (mut n, mut k) = (0, i);
    while k < b.len() {
        let c = b[k];
        if c.is_ascii_digit() {
            if n == 19 {
                return None;
            }
            digits[n] = c - b'0';
            n += 1;
            k += 1;
        } else if matches!(c, b' ' | b'-') && b.get(k + 1).is_some_and(u8::is_ascii_digit) && n < 19
        {
            k += 1;
        } else {
            break;
        }
    }
    if n < 13
        || b.get(k)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.')
    {
        return None;
    }
    (known_issuer(&digits[..n]) && luhn(&digits[..n])).then(|| Hit {
        start: i,
        end: k,
        kind: CARD,
        quote: json_number(b, i, k),
    })
}

/// True for a bare JSON number `"key": 4111…,`: its replacement needs quotes to keep the
/// line valid JSON.
fn json_number(b: &[u8], start: usize, end: usize) -> bool {
    let before = b[..start].iter().rev().find(|c| **c != b' ');
    let after = b[end..].iter().find(|c| **c != b' ');
    let key_end = b[..start]
        .iter()
        .rposition(|c| *c == b':')
        .and_then(|p| p.checked_sub(1))
        .map(|p| b[p]);
    before == Some(&b':') && key_end == Some(b'"') && matches!(after, Some(b',' | b'}'))
}

/// True for the issuer prefixes and lengths of the major card networks.
pub(super) fn known_issuer(d: &[u8]) -> bool {
    let p2 = d[0] * 10 + d[1];
    let p4 = u32::from(p2) * 100 + u32::from(d[2] * 10 + d[3]);
    let n = d.len();
    match d[0] {
        4 => matches!(n, 13 | 16 | 19),
        5 => (51..=55).contains(&p2) && n == 16,
        2 => (2221..=2720).contains(&p4) && n == 16,
        3 => {
            (matches!(p2, 34 | 37) && n == 15)
                || ((3528..=3589).contains(&p4) && n >= 16)
                || (matches!(p2, 36 | 38 | 30) && n >= 14)
        }
        6 => (p4 == 6011 || p2 == 65 || (644..=649).contains(&(p4 / 10)) || p2 == 62) && n >= 16,
        _ => false,
    }
}

/// Checks the Luhn check digit.
pub(crate) fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}
