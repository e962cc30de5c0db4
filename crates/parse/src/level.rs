//! Levels: normalising level text (through [`Level::normalize`]), HTTP statuses, numeric
//! levels, and finding a level word in free text.

use logyard_model::{Level, Record, Value};

/// The field that keeps the level as written when it is not the canonical name.
pub const LEVEL_RAW: &str = "level_raw";

/// Normalises level text like [`Level::normalize`], without allocating for the common
/// spellings.
pub(crate) fn normalize(text: &str) -> Option<Level> {
    match text {
        "INFO" | "info" | "Info" => Some(Level::Info),
        "DEBUG" | "debug" | "Debug" => Some(Level::Debug),
        "WARNING" | "warning" | "Warning" | "WARN" | "warn" | "Warn" => Some(Level::Warning),
        "ERROR" | "error" | "Error" => Some(Level::Error),
        "CRITICAL" | "critical" | "Critical" | "FATAL" | "fatal" | "crit" => Some(Level::Critical),
        "TRACE" | "trace" => Some(Level::Trace),
        _ => Level::normalize(text),
    }
}

/// Sets the record's level from level text; keeps the text in `level_raw` when it is
/// unknown or differs from the canonical name (case aside).
pub(crate) fn set_level(rec: &mut Record, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let level = normalize(text);
    rec.level = level;
    if level.is_none_or(|l| !l.as_str().eq_ignore_ascii_case(text)) {
        rec.fields
            .insert(LEVEL_RAW.into(), Value::Str(text.to_string()));
    }
}

/// The scale of a numeric level, chosen by the key that carries it (see `docs/parsing.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// bunyan and pino (`level`): 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal;
    /// 0 to 7 are syslog severities (GELF's `level`).
    Pino,
    /// Python's `levelno`: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL.
    Python,
    /// Syslog severities (`severity`): 0 emerg … 7 debug.
    Syslog,
}

/// Sets the level from a number on the key's scale; keeps the number in `level_raw`. A
/// number off the scale leaves the level empty.
pub(crate) fn set_level_scaled(rec: &mut Record, n: i64, scale: Scale) {
    rec.level = match (scale, n) {
        (Scale::Pino | Scale::Syslog, 0..=7) => Level::from_syslog_severity(n as u8),
        (Scale::Pino, 10) => Some(Level::Trace),
        (Scale::Pino, 20) | (Scale::Python, 10) => Some(Level::Debug),
        (Scale::Pino, 30) | (Scale::Python, 20) => Some(Level::Info),
        (Scale::Pino, 40) | (Scale::Python, 30) => Some(Level::Warning),
        (Scale::Pino, 50) | (Scale::Python, 40) => Some(Level::Error),
        (Scale::Pino, 60) | (Scale::Python, 50) => Some(Level::Critical),
        _ => None,
    };
    rec.fields.insert(LEVEL_RAW.into(), Value::Int(n));
}

/// Maps an HTTP status to a level: 5xx ERROR, 4xx WARNING, anything else INFO.
pub(crate) fn from_http_status(status: i64) -> Level {
    match status {
        500..=599 => Level::Error,
        400..=499 => Level::Warning,
        _ => Level::Info,
    }
}

/// Returns the level of a token when it is a level word as loggers print it (upper case, or
/// capitalised), else `None`. Single letters are not taken here: too ambiguous in prose.
pub(crate) fn word_level(w: &str) -> Option<Level> {
    if w.len() < 3 || w.len() > 8 {
        return None;
    }
    let b = w.as_bytes();
    let upper = b.iter().all(|c| c.is_ascii_uppercase());
    let capital = b[0].is_ascii_uppercase() && b[1..].iter().all(|c| c.is_ascii_lowercase());
    if !upper && !capital {
        return None;
    }
    if !upper
        && !matches!(
            w,
            "Error" | "Warning" | "Warn" | "Info" | "Debug" | "Fatal" | "Critical" | "Trace"
        )
    {
        return None;
    }
    match w.to_ascii_uppercase().as_str() {
        "TRACE" | "DEBUG" | "INFO" | "WARN" | "WARNING" | "ERROR" | "FATAL" | "CRITICAL"
        | "CRIT" | "PANIC" | "SEVERE" | "EMERG" | "NOTICE" => normalize(w),
        _ => None,
    }
}

/// Finds a level word anywhere in free text; returns it when every level word found agrees.
pub(crate) fn find_level(text: &str) -> Option<(Level, &str)> {
    let mut found: Option<(Level, &str)> = None;
    for w in text.split(|c: char| !c.is_ascii_alphabetic()).take(400) {
        if let Some(l) = word_level(w) {
            match found {
                Some((f, _)) if f != l => return None,
                Some(_) => {}
                None => found = Some((l, w)),
            }
        }
    }
    found
}

/// Header tokens looked at, at most: enough for Blue Gene/L's
/// `- 1117838570 2005.06.03 NODE 2005-06-03-15.42.50.675872 NODE RAS KERNEL INFO`.
const HEADER_TOKENS: usize = 12;

/// The level of a line: the one its header writes (see [`header_level`]), else a level word
/// anywhere in it when every one agrees (see [`find_level`]).
pub(crate) fn line_level(text: &str) -> Option<(Level, &str)> {
    header_level(text).or_else(|| find_level(text))
}

/// The level of a logcat letter: `V D I W E F A` (verbose, debug, info, warning, error,
/// fatal, assert).
fn logcat_letter(c: u8) -> Option<Level> {
    Some(match c {
        b'V' => Level::Trace,
        b'D' => Level::Debug,
        b'I' => Level::Info,
        b'W' => Level::Warning,
        b'E' => Level::Error,
        b'F' | b'A' => Level::Critical,
        _ => return None,
    })
}

/// The level of a header word in any case (`INFO`, `info`, `Warning`, `FAILURE`, `ERR`…).
fn header_word(w: &str) -> Option<Level> {
    let b = w.as_bytes();
    if !(3..=9).contains(&b.len()) {
        return None;
    }
    let mut up = [0u8; 9];
    for (u, c) in up.iter_mut().zip(b) {
        if !c.is_ascii_alphabetic() {
            return None;
        }
        *u = c.to_ascii_uppercase();
    }
    Some(match &up[..b.len()] {
        b"TRACE" => Level::Trace,
        b"DEBUG" | b"DBG" => Level::Debug,
        b"INFO" | b"INF" | b"NOTICE" => Level::Info,
        b"WARN" | b"WARNING" | b"WRN" => Level::Warning,
        b"ERROR" | b"ERR" => Level::Error,
        b"CRIT" | b"CRITICAL" | b"ALERT" | b"EMERG" | b"EMERGENCY" | b"FATAL" | b"SEVERE"
        | b"FAILURE" | b"PANIC" => Level::Critical,
        _ => return None,
    })
}

/// Finds the level a line's header writes: among its first tokens (time stamps, numbers,
/// hosts, components, a `tag:`), before the message. Taken there:
/// - an upper-case level word (`INFO`, `KERNEL FATAL`, `- WARN [`, `SEVERE`, `FAILURE`);
/// - a level word in any case in brackets (`[notice]`, `<warn>`), after a comma or a lone
///   dash (`2016-09-28 04:30:31, Warning`, `- info -`), after tokens that all hold digits
///   (`10:30:00 Error …`), or followed by a colon (`Warning:`);
/// - logcat's letters: `PID TID L Tag:` after the time (`threadtime`) and `L/Tag(PID):`
///   (`brief`, `time`); glog's `I0512` as the first token.
///
/// The header ends at a token that ends with a colon (`sshd[12]:`, `WindowManager:`) or
/// opens a quote: level words after it belong to the message.
pub(crate) fn header_level(text: &str) -> Option<(Level, &str)> {
    let first = match memchr::memchr(b'\n', text.as_bytes()) {
        Some(i) => &text[..i],
        None => text,
    };
    // The three tokens before this one, nearest first.
    let mut before: [&str; 3] = [""; 3];
    let mut all_digits = true;
    for (i, tok) in first
        .split(' ')
        .filter(|t| !t.is_empty())
        .take(HEADER_TOKENS)
        .enumerate()
    {
        let b = tok.as_bytes();
        if b[0] == b'"' {
            return None;
        }
        // Logcat `brief` and `time`: `I/ActivityManager(  585):`, `E/AndroidRuntime:`.
        if b.len() >= 3
            && b[1] == b'/'
            && b[2].is_ascii_alphanumeric()
            && (i == 0 || before[0].contains(':'))
            && (tok.contains('(') || tok.ends_with(':'))
        {
            if let Some(l) = logcat_letter(b[0]) {
                return Some((l, &tok[..1]));
            }
        }
        // glog: `I0512 10:30:00.123456 …` (or `I20240512` with the year).
        if i == 0
            && matches!(b.len(), 5 | 9)
            && matches!(b[0], b'I' | b'W' | b'E' | b'F')
            && b[1..].iter().all(u8::is_ascii_digit)
        {
            return logcat_letter(b[0]).map(|l| (l, &tok[..1]));
        }
        // Logcat `threadtime`: `03-17 16:13:38.811  1702  2395 D WindowManager: …`.
        if b.len() == 1
            && i >= 3
            && is_number(before[0])
            && is_number(before[1])
            && before[2].contains(':')
        {
            if let Some(l) = logcat_letter(b[0]) {
                return Some((l, tok));
            }
        }
        let bracketed = matches!(b[0], b'[' | b'(' | b'<');
        let colon = tok.ends_with(':');
        let word = tok
            .trim_start_matches(['[', '(', '<'])
            .trim_end_matches([']', ')', '>', ':', ',']);
        if let Some(level) = header_word(word) {
            let wb = word.as_bytes();
            let upper = wb.iter().all(u8::is_ascii_uppercase);
            let capital = wb[0].is_ascii_uppercase();
            let after_separator = before[0] == "-" || before[0] == "|" || before[0].ends_with(',');
            if upper
                || bracketed
                || after_separator
                || (capital && (colon || (i > 0 && all_digits)))
            {
                return Some((level, word));
            }
        }
        if colon && b.iter().any(u8::is_ascii_alphabetic) {
            return None;
        }
        all_digits &= b.iter().any(u8::is_ascii_digit);
        before = [tok, before[0], before[1]];
    }
    None
}

/// True for a non-empty run of ASCII digits (a pid, a thread id).
fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_original_only_when_it_differs() {
        let mut r = Record::default();
        set_level(&mut r, "warn");
        assert_eq!(r.level, Some(Level::Warning));
        assert_eq!(r.fields[LEVEL_RAW], Value::Str("warn".into()));
        let mut r = Record::default();
        set_level(&mut r, "error");
        assert_eq!(r.level, Some(Level::Error));
        assert!(r.fields.is_empty());
        let mut r = Record::default();
        set_level(&mut r, "verbose");
        assert_eq!(r.level, None);
        assert_eq!(r.fields[LEVEL_RAW], Value::Str("verbose".into()));
        for (text, want) in [
            ("E", Level::Error),
            ("W", Level::Warning),
            ("I", Level::Info),
            ("D", Level::Debug),
            ("EMERG", Level::Critical),
            ("crit", Level::Critical),
        ] {
            let mut r = Record::default();
            set_level(&mut r, text);
            assert_eq!(r.level, Some(want), "{text}");
        }
    }

    #[test]
    fn numbers_and_statuses() {
        let mut r = Record::default();
        set_level_scaled(&mut r, 3, Scale::Pino);
        assert_eq!(r.level, Some(Level::Error));
        set_level_scaled(&mut r, 40, Scale::Pino);
        assert_eq!(r.level, Some(Level::Warning));
        assert_eq!(from_http_status(503), Level::Error);
        assert_eq!(from_http_status(404), Level::Warning);
        assert_eq!(from_http_status(301), Level::Info);
    }

    /// Lines from the documentation and sample logs of well-known projects (Android logcat,
    /// glog, Windows CBS, Blue Gene/L, ZooKeeper, HDFS, OpenStack, Apache), each with the
    /// level its header gives.
    #[test]
    fn the_header_level_wins() {
        let cases = [
            ("03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs", Level::Debug),
            ("03-17 16:13:38.839  1702  2113 V WindowManager: Skipping AppWindowToken", Level::Trace),
            ("03-17 16:15:20.177  2227  2227 E Zygote  : Exit zygote, INFO follows", Level::Error),
            ("01-01 00:00:01.000  100  100 A DEBUG   : Abort message: 'assertion failed'", Level::Critical),
            ("01-01 00:00:01.000  100  100 F libc    : Fatal signal 6 (SIGABRT)", Level::Critical),
            ("I/ActivityManager(  585): Start proc com.android.vending", Level::Info),
            ("W/dalvikvm( 1234): threadid=1: thread exiting with uncaught exception", Level::Warning),
            ("E/AndroidRuntime: FATAL EXCEPTION: main", Level::Error),
            ("03-17 16:13:38.811 D/WindowManager( 1702): printFreezingDisplayLogs", Level::Debug),
            ("I0512 10:30:00.123456 1234 main.go:12] Listening, but an ERROR later", Level::Info),
            ("2016-09-28 04:30:31, Warning               CBS    Unable to get session, Error: 0x80070002", Level::Warning),
            ("2016-09-28 04:30:30, info CBS Loaded Servicing Stack", Level::Info),
            ("2024-01-15 10:30:00 - warning - something lowercase", Level::Warning),
            ("- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected", Level::Info),
            ("- 1117838570 2005.06.03 R02-M1-N0 2005-06-03-15.42.50.675872 R02-M1-N0 RAS MMCS FAILURE idoproxy communication failure", Level::Critical),
            ("2015-07-29 19:04:12,394 - WARN  [RecvWorker:188978561024:QuorumCnxManager$RecvWorker@765] - Interrupting SendWorker, ERROR", Level::Warning),
            ("081109 204005 35 WARN dfs.FSNamesystem: Warning: user-level quota exceeded, ERROR ahead", Level::Warning),
            ("2017-05-16 00:00:00.008 25746 INFO nova.compute.manager [req-x] Warning: instance ERROR state", Level::Info),
            ("2024-01-15 10:30:00 INFO netd: configured user-level firewall", Level::Info),
            ("[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok, ERROR none", Level::Info),
            ("2024-01-15 10:30:00,123 ALERT disk", Level::Critical),
            ("2024-01-15 10:30:00,123 EMERG system down", Level::Critical),
            ("2024-01-15 10:30:00,123 SEVERE pool exhausted", Level::Critical),
            ("2024-01-15 10:30:00 [main] NOTICE org.x.Y - notice level", Level::Info),
            ("INFO then ERROR", Level::Info),
        ];
        for (line, want) in cases {
            assert_eq!(line_level(line).map(|x| x.0), Some(want), "{line}");
        }
    }

    #[test]
    fn no_header_level_in_prose() {
        for line in [
            "wrote 5 A records: done",
            "A/B test started for 3 users",
            "12:00 the user said: INFO then ERROR",
            "an error occurred",
            "Scheduled job with cron '*/5 * * * *'",
        ] {
            assert_eq!(line_level(line), None, "{line}");
        }
        assert_eq!(
            header_level("Listening on port 80, then warning users"),
            None
        );
    }

    #[test]
    fn numeric_levels_by_scale() {
        let mut r = Record::default();
        for (scale, n, want) in [
            (Scale::Python, 10, Some(Level::Debug)),
            (Scale::Python, 20, Some(Level::Info)),
            (Scale::Python, 30, Some(Level::Warning)),
            (Scale::Python, 40, Some(Level::Error)),
            (Scale::Python, 50, Some(Level::Critical)),
            (Scale::Python, 60, None),
            (Scale::Pino, 10, Some(Level::Trace)),
            (Scale::Pino, 40, Some(Level::Warning)),
            (Scale::Pino, 50, Some(Level::Error)),
            (Scale::Pino, 60, Some(Level::Critical)),
            (Scale::Pino, 3, Some(Level::Error)),
            (Scale::Syslog, 5, Some(Level::Info)),
            (Scale::Syslog, 40, None),
        ] {
            set_level_scaled(&mut r, n, scale);
            assert_eq!(r.level, want, "{scale:?} {n}");
            assert_eq!(r.fields[LEVEL_RAW], Value::Int(n));
        }
    }

    #[test]
    fn level_anywhere_only_when_unambiguous() {
        assert_eq!(
            find_level("12:00 worker ERROR disk full").map(|x| x.0),
            Some(Level::Error)
        );
        assert_eq!(
            find_level("Warning: low memory").map(|x| x.0),
            Some(Level::Warning)
        );
        assert_eq!(find_level("INFO then ERROR"), None);
        assert_eq!(find_level("an error occurred"), None);
        assert_eq!(find_level("Scheduled job with cron '*/5 * * * *'"), None);
    }
}
