//! Multi-line records: joins the lines of one event (a stack trace after its log line)
//! before parsing. One [`Multiline`] per source; the caller passes the time, there is no
//! hidden clock.
//!
//! In `auto` mode it joins: Python tracebacks (`Traceback (most recent call last):`, the
//! indented frames, up to the `SomeError: …` line, and chained tracebacks), Java stack
//! traces (`java.lang.X: …`, `\tat …`, `Caused by: …`, `... N more`), and Go panics and
//! goroutine dumps to the line that starts them (`panic: …`, `goroutine 1 [running]:`). A
//! line that is neither part of a trace nor starts one is a record of its own. A line that
//! is a JSON object (`{…}`) is given out at once and nothing is joined to it: JSON loggers
//! put a trace inside the object, so no line can continue it, and the last line of a
//! burst does not wait for the timeout. With a start regex, every line that does not match
//! it continues the record before.

use std::borrow::Cow;
use std::str::FromStr;

use regex::Regex;

use crate::error::ParseError;

/// How lines are joined.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MultilineMode {
    /// Joins stack traces (Python, Java, Go) to the record they belong to.
    #[default]
    Auto,
    /// Every line is a record.
    None,
    /// A line matching this regex starts a record; other lines continue the last one.
    Start(String),
}

impl FromStr for MultilineMode {
    type Err = ParseError;

    /// Parses `auto`, `none` (or `off`), or else a start-of-record regex.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "auto" => MultilineMode::Auto,
            "none" | "off" | "" => MultilineMode::None,
            re => {
                Regex::new(re).map_err(|e| ParseError::Regex {
                    name: "multiline".into(),
                    reason: e.to_string(),
                })?;
                MultilineMode::Start(re.to_string())
            }
        })
    }
}

/// Settings of a [`Multiline`] joiner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultilineConfig {
    /// How lines are joined.
    pub mode: MultilineMode,
    /// A record holds at most this many lines; the next starts a new record.
    pub max_lines: usize,
    /// A record holds at most this many bytes; the next line starts a new record.
    pub max_bytes: usize,
    /// A pending record is released when no line came for this long (nanoseconds).
    pub timeout_ns: i64,
}

impl Default for MultilineConfig {
    fn default() -> Self {
        MultilineConfig {
            mode: MultilineMode::Auto,
            max_lines: 500,
            max_bytes: 1 << 20,
            timeout_ns: 2_000_000_000,
        }
    }
}

/// Where the pending record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A record with no trace (yet).
    Record,
    /// Inside a Python traceback.
    Python,
    /// After a Python traceback's last line (a chained one may follow).
    PythonDone,
    /// Inside a Java stack trace.
    Java,
    /// Inside a Go panic or goroutine dump.
    Go,
}

/// Joins the lines of one source into records; see the module documentation.
#[derive(Debug)]
pub struct Multiline {
    cfg: MultilineConfig,
    start: Option<Regex>,
    buf: String,
    lines: usize,
    last_ns: i64,
    state: State,
}

impl Multiline {
    /// Builds a joiner; fails when the start regex does not compile.
    pub fn new(cfg: MultilineConfig) -> Result<Multiline, ParseError> {
        let start = match &cfg.mode {
            MultilineMode::Start(re) => Some(Regex::new(re).map_err(|e| ParseError::Regex {
                name: "multiline".into(),
                reason: e.to_string(),
            })?),
            _ => None,
        };
        Ok(Multiline {
            cfg,
            start,
            buf: String::new(),
            lines: 0,
            last_ns: 0,
            state: State::Record,
        })
    }

    /// Feeds one line (its line ending is dropped); returns the records it completed (at most
    /// two: the pending one, and this line when the mode is `none`).
    pub fn push(&mut self, line: &[u8], now_ns: i64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.push_into(line, now_ns, &mut out);
        out
    }

    /// [`Multiline::push`] appending the completed records to `out`; returns how many.
    /// Invalid UTF-8 is replaced by U+FFFD.
    pub fn push_into(&mut self, line: &[u8], now_ns: i64, out: &mut Vec<Vec<u8>>) -> usize {
        let before = out.len();
        // Valid text (nearly every line) is checked by the fast validator, not copied.
        let text = match std::str::from_utf8(line) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(line),
        };
        self.push_text(&text, now_ns, &mut |rec| out.push(rec.into_bytes()));
        out.len() - before
    }

    /// [`Multiline::push`] for text.
    pub(crate) fn push_str(&mut self, line: &str, now_ns: i64) -> Vec<String> {
        let mut out = Vec::new();
        self.push_text(line, now_ns, &mut |rec| out.push(rec));
        out
    }

    /// Feeds one line, giving each completed record to `emit`.
    fn push_text(&mut self, line: &str, now_ns: i64, emit: &mut dyn FnMut(String)) {
        let line = line.trim_end_matches(['\n', '\r']);
        if self.cfg.mode == MultilineMode::None {
            if let Some(rec) = self.take() {
                emit(rec);
            }
            emit(line.to_string());
            return;
        }
        let cont = self.lines > 0
            && match &self.start {
                Some(re) => !re.is_match(line),
                None => self.continues(line),
            };
        if !cont && self.start.is_none() && is_json_object(line) {
            if let Some(rec) = self.take() {
                emit(rec);
            }
            emit(line.to_string());
            return;
        }
        let fits = self.lines < self.cfg.max_lines
            && self.buf.len() + 1 + line.len() <= self.cfg.max_bytes;
        if cont && fits {
            self.buf.push('\n');
            self.buf.push_str(line);
            self.lines += 1;
        } else {
            if let Some(rec) = self.take() {
                emit(rec);
            }
            self.buf.push_str(line);
            self.lines = 1;
            self.state = if cont {
                State::Record
            } else {
                first_state(line)
            };
        }
        self.last_ns = now_ns;
    }

    /// Returns how many lines the pending record holds (0 when none is pending).
    pub fn pending_lines(&self) -> usize {
        self.lines
    }

    /// Returns the pending record when no line came for the timeout.
    pub fn flush(&mut self, now_ns: i64) -> Option<Vec<u8>> {
        self.flush_str(now_ns).map(String::into_bytes)
    }

    /// [`Multiline::flush`] as text.
    pub(crate) fn flush_str(&mut self, now_ns: i64) -> Option<String> {
        if self.lines > 0 && now_ns.saturating_sub(self.last_ns) >= self.cfg.timeout_ns {
            return self.take();
        }
        None
    }

    /// Returns the pending record, if any (at the end of a stream).
    pub fn flush_all(&mut self) -> Option<Vec<u8>> {
        self.take().map(String::into_bytes)
    }

    /// Takes the pending record.
    pub(crate) fn take(&mut self) -> Option<String> {
        if self.lines == 0 {
            return None;
        }
        self.lines = 0;
        self.state = State::Record;
        Some(std::mem::take(&mut self.buf))
    }

    /// Decides whether a line continues the pending record, and moves the state.
    fn continues(&mut self, line: &str) -> bool {
        let indented = line.starts_with([' ', '\t']);
        let trimmed = line.trim_start();
        if trimmed.starts_with("Traceback (most recent call last):") {
            self.state = State::Python;
            return true;
        }
        if indented
            && (trimmed.starts_with("at ")
                || trimmed.starts_with("... ")
                || trimmed.starts_with("Suppressed: "))
        {
            self.state = State::Java;
            return true;
        }
        match self.state {
            State::Python if indented => true,
            State::Python if python_last(line) => {
                self.state = State::PythonDone;
                true
            }
            State::PythonDone => {
                line.is_empty()
                    || line.starts_with("During handling of the above exception")
                    || line.starts_with("The above exception was the direct cause")
            }
            State::Java | State::Record if line.starts_with("Caused by: ") => {
                self.state = State::Java;
                true
            }
            State::Record | State::Java if java_header(line) => {
                self.state = State::Java;
                true
            }
            State::Go => {
                line.is_empty()
                    || line.starts_with('\t')
                    || [
                        "goroutine ",
                        "[signal ",
                        "created by ",
                        "exit status ",
                        "panic: ",
                        "[recovered]",
                    ]
                    .iter()
                    .any(|p| line.starts_with(p))
                    || go_function(line)
            }
            _ => false,
        }
    }
}

/// True for a line that is a JSON object: `{` first and `}` last, spaces aside.
fn is_json_object(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 2 && t.starts_with('{') && t.ends_with('}')
}

/// The state of a record started by this line.
fn first_state(line: &str) -> State {
    if line.starts_with("Traceback (most recent call last):") {
        State::Python
    } else if line.starts_with("panic: ")
        || line.starts_with("fatal error: ")
        || goroutine_header(line)
    {
        State::Go
    } else {
        State::Record
    }
}

fn goroutine_header(line: &str) -> bool {
    line.strip_prefix("goroutine ")
        .and_then(|r| r.split_once(' '))
        .is_some_and(|(n, rest)| n.bytes().all(|c| c.is_ascii_digit()) && rest.starts_with('['))
}

/// A dotted name (`a.b.C`), or a plain identifier when `dotted` is false.
fn qualified_name(name: &str, dotted: bool) -> bool {
    !name.is_empty()
        && name.split('.').all(|p| {
            p.as_bytes()
                .first()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_' || *c == b'$')
                && p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
        })
        && (!dotted || name.contains('.'))
}

/// The last line of a Python traceback: `ValueError: …`, `mod.CustomError: …` or `KeyboardInterrupt`.
fn python_last(line: &str) -> bool {
    let name = line.split_once(':').map_or(line, |(n, _)| n);
    qualified_name(name, false) && logyard_model::Level::normalize(name).is_none()
}

/// The first line of a Java trace: `java.lang.IllegalStateException: boom`.
fn java_header(line: &str) -> bool {
    let name = line.split_once(": ").map_or(line, |(n, _)| n);
    qualified_name(name, true)
        && ["Exception", "Error", "Throwable"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// A Go stack frame's function line: `main.main()`, `net/http.(*conn).serve(0xc000)`.
fn go_function(line: &str) -> bool {
    let Some(open) = line.find('(') else {
        return false;
    };
    let head = &line[..open.max(1)];
    !line.starts_with([' ', '\t'])
        && line.ends_with(')')
        && !head.contains(' ')
        && (head.contains('.') || head.contains('/'))
        || (line.find(".(").is_some_and(|i| !line[..i].contains(' ')) && line.ends_with(')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(mode: MultilineMode, lines: &[&str]) -> Vec<String> {
        let mut m = Multiline::new(MultilineConfig {
            mode,
            ..MultilineConfig::default()
        })
        .unwrap();
        let mut out: Vec<Vec<u8>> = Vec::new();
        for l in lines {
            out.extend(m.push(l.as_bytes(), 0));
        }
        out.extend(m.flush_all());
        out.into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect()
    }

    #[test]
    fn python_traceback_joins_its_log_line() {
        let lines = [
            "2024-01-15 10:30:00 - ERROR - api - failed",
            "Traceback (most recent call last):",
            "  File \"/app/x.py\", line 3, in f",
            "    g()",
            "ValueError: bad",
            "2024-01-15 10:30:01 - INFO - api - next",
            "INFO:root:not a traceback end",
        ];
        let out = join(MultilineMode::Auto, &lines);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].ends_with("ValueError: bad") && out[0].starts_with("2024"));
    }

    #[test]
    fn java_and_go_traces() {
        let java = [
            "ERROR Something broke",
            "java.lang.IllegalStateException: boom",
            "\tat com.x.A.f(A.java:10)",
            "Caused by: java.io.IOException: disk",
            "\t... 3 more",
            "INFO fine",
        ];
        assert_eq!(join(MultilineMode::Auto, &java).len(), 2);
        let go = [
            "panic: runtime error: invalid memory address",
            "[signal SIGSEGV: segmentation violation]",
            "",
            "goroutine 1 [running]:",
            "main.main()",
            "\t/tmp/x.go:8 +0x1d",
            "exit status 2",
            "next line",
        ];
        let out = join(MultilineMode::Auto, &go);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].ends_with("exit status 2"));
    }

    #[test]
    fn json_lines_are_records_at_once() {
        let mut m = Multiline::new(MultilineConfig::default()).unwrap();
        assert_eq!(m.push(b"plain before", 0), Vec::<Vec<u8>>::new());
        let out = m.push(br#"{"level":"ERROR","msg":"boom"}"#, 0);
        assert_eq!(out.len(), 2, "the pending line, then the JSON line");
        assert_eq!(m.pending_lines(), 0, "nothing waits for the timeout");
        // A trace line after a JSON line is a record of its own, not joined to it.
        assert_eq!(
            join(
                MultilineMode::Auto,
                &["{\"a\":1}", "\tat com.x.A.f(A.java:10)"]
            )
            .len(),
            2
        );
        // Inside a Python traceback an indented `{…}` source line still continues it.
        let py = [
            "ERROR failed",
            "Traceback (most recent call last):",
            "  File \"/app/x.py\", line 3, in f",
            "    {\"a\": 1}",
            "KeyError: 'b'",
        ];
        assert_eq!(join(MultilineMode::Auto, &py).len(), 1);
    }

    #[test]
    fn start_regex_bounds_and_timeout() {
        let mode: MultilineMode = r"^\d{4}-".parse().unwrap();
        let out = join(mode, &["2024-01-01 a", "  b", "c", "2024-01-02 d"]);
        assert_eq!(out, ["2024-01-01 a\n  b\nc", "2024-01-02 d"]);
        assert_eq!(join(MultilineMode::None, &["a", "\tat x"]).len(), 2);
        let mut m = Multiline::new(MultilineConfig {
            max_lines: 2,
            ..MultilineConfig::default()
        })
        .unwrap();
        assert!(m.push(b"x", 0).is_empty());
        assert!(m.push(b"\tat a", 0).is_empty());
        assert_eq!(
            m.push(b"\tat b", 0).len(),
            1,
            "the bound releases the record"
        );
        assert_eq!(m.flush(1_000), None);
        assert_eq!(m.flush(3_000_000_000), Some(b"\tat b".to_vec()));
        assert!("(".parse::<MultilineMode>().is_err());
    }
}
