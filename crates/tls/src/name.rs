//! The common name (CN) of a certificate's subject, read from its DER encoding.
//!
//! A subject is `SEQUENCE OF SET OF SEQUENCE { type OID, value }` (RFC 5280 §4.1.2.4);
//! webpki hands over its contents without the outer `SEQUENCE`. Only what a name needs is
//! decoded: definite lengths, the common name's OID (2.5.4.3) and the string types a CN is
//! written in.

/// The DER encoding of the OID 2.5.4.3 (`id-at-commonName`), tag and length included.
const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];

/// Splits one DER element off `input`: its tag, its contents, and what follows.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The first common name of a subject (its contents, without the outer `SEQUENCE`).
pub(crate) fn common_name(subject: &[u8]) -> Option<String> {
    let mut rdns = subject;
    while let Some((_set, mut attributes, rest)) = element(rdns) {
        rdns = rest;
        while let Some((_seq, attribute, more)) = element(attributes) {
            attributes = more;
            let Some(value) = attribute.strip_prefix(COMMON_NAME) else {
                continue;
            };
            let (tag, text, _) = element(value)?;
            // UTF8String, PrintableString, IA5String, TeletexString (read as Latin-1 would
            // mangle little: CNs are ASCII in practice).
            return match tag {
                0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8(text.to_vec()).ok(),
                _ => None,
            };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_common_name_among_other_attributes() {
        // SET { SEQ { O = "Acme" } }, SET { SEQ { CN = "shipper-1" } }
        let org = [
            0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x04,
        ];
        let mut subject = org.to_vec();
        subject.extend_from_slice(b"Acme");
        subject.extend_from_slice(&[0x31, 0x12, 0x30, 0x10, 0x06, 0x03, 0x55, 0x04, 0x03]);
        subject.extend_from_slice(&[0x0c, 0x09]);
        subject.extend_from_slice(b"shipper-1");
        assert_eq!(common_name(&subject).as_deref(), Some("shipper-1"));
        assert_eq!(common_name(&subject[..14]), None);
        assert_eq!(common_name(&[0x31, 0x85]), None);
        assert_eq!(common_name(&[]), None);
    }
}
