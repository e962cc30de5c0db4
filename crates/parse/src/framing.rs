//! Framing: splitting a byte stream into lines (newline framing) or into syslog frames
//! (RFC 6587 octet counting), apart from any format. Both keep memory bounded: a frame
//! longer than the limit is cut, and the rest of it skipped or passed on.

/// Splits a byte stream into lines, without their `\n` (or `\r\n`).
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
    /// Bytes of an over-long line still to skip, up to its newline.
    skipping: bool,
}

impl LineSplitter {
    /// Creates a splitter; lines longer than `max_line_bytes` are cut there (the parser
    /// then marks them `truncated`), and the rest of such a line is dropped.
    pub fn new(max_line_bytes: usize) -> LineSplitter {
        LineSplitter {
            buf: Vec::new(),
            max: max_line_bytes.max(1),
            skipping: false,
        }
    }

    /// Feeds bytes; calls `emit` with every complete line.
    pub fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        while let Some(nl) = memchr::memchr(b'\n', bytes) {
            let part = &bytes[..nl];
            bytes = &bytes[nl + 1..];
            if std::mem::take(&mut self.skipping) {
                self.buf.clear();
                continue;
            }
            if self.buf.is_empty() {
                emit(trim_cr(&part[..part.len().min(self.max + 1)]));
            } else {
                let room = (self.max + 1).saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&part[..part.len().min(room)]);
                emit(trim_cr(&self.buf));
                self.buf.clear();
            }
        }
        if self.skipping {
            return;
        }
        let room = (self.max + 1).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if self.buf.len() > self.max {
            // Pass the cut line on now: one byte over the limit tells the parser to truncate.
            emit(&self.buf);
            self.buf.clear();
            self.skipping = true;
        }
    }

    /// Returns the last line when the stream ended without a newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        self.skipping = false;
        (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }
}

fn trim_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Splits syslog-over-TCP octet-counted frames (`<length> <frame>`), RFC 6587.
#[derive(Debug, Default)]
pub struct OctetCounting {
    buf: Vec<u8>,
}

/// An octet-counting framing error: the stream is not octet-counted from here on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingError(pub String);

impl OctetCounting {
    /// Feeds bytes; calls `emit` with every complete frame. Frames longer than
    /// `max_frame_bytes` are an error (the caller should drop the connection).
    pub fn push(
        &mut self,
        bytes: &[u8],
        max_frame_bytes: usize,
        mut emit: impl FnMut(&[u8]),
    ) -> Result<(), FramingError> {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let rest = &self.buf[at..];
            let Some(sp) = rest.iter().take(11).position(|&c| c == b' ') else {
                if rest.len() > 10 || rest.iter().any(|c| !c.is_ascii_digit()) {
                    return Err(FramingError(format!(
                        "expected a frame length, found {:?}",
                        String::from_utf8_lossy(&rest[..rest.len().min(16)])
                    )));
                }
                break;
            };
            let len: usize = std::str::from_utf8(&rest[..sp])
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    FramingError(format!(
                        "invalid frame length {:?}",
                        String::from_utf8_lossy(&rest[..sp])
                    ))
                })?;
            if len > max_frame_bytes {
                return Err(FramingError(format!(
                    "frame of {len} bytes exceeds the limit of {max_frame_bytes}"
                )));
            }
            if rest.len() < sp + 1 + len {
                break;
            }
            emit(&rest[sp + 1..sp + 1 + len]);
            at += sp + 1 + len;
        }
        self.buf.drain(..at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_chunks_and_bounds_them() {
        let mut s = LineSplitter::new(5);
        let mut out = Vec::new();
        for chunk in [&b"ab\r\ncd"[..], b"e\nfghijklmn", b"op\nq"] {
            s.push(chunk, |l| out.push(String::from_utf8_lossy(l).into_owned()));
        }
        assert_eq!(out, ["ab", "cde", "fghijk"]);
        assert_eq!(s.finish(), Some(b"q".to_vec()));
    }

    #[test]
    fn octet_counting() {
        let mut f = OctetCounting::default();
        let mut out = Vec::new();
        f.push(b"5 hello3 ab", 100, |x| out.push(x.to_vec()))
            .unwrap();
        f.push(b"c", 100, |x| out.push(x.to_vec())).unwrap();
        assert_eq!(out, [b"hello".to_vec(), b"abc".to_vec()]);
        assert!(f.push(b"x y", 100, |_| {}).is_err());
        assert!(OctetCounting::default()
            .push(b"500 a", 100, |_| {})
            .is_err());
    }
}
