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

/// Sets the level from a number: syslog severities 0 to 7, or the 10-to-60 scale of
/// bunyan and pino (10 trace … 60 fatal).
pub(crate) fn set_level_number(rec: &mut Record, n: i64) {
    rec.level = match n {
        0..=7 => Level::from_syslog_severity(n as u8),
        10 => Some(Level::Trace),
        20 => Some(Level::Debug),
        30 => Some(Level::Info),
        40 => Some(Level::Warning),
        50 => Some(Level::Error),
        60 => Some(Level::Critical),
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
        set_level_number(&mut r, 3);
        assert_eq!(r.level, Some(Level::Error));
        set_level_number(&mut r, 40);
        assert_eq!(r.level, Some(Level::Warning));
        assert_eq!(from_http_status(503), Level::Error);
        assert_eq!(from_http_status(404), Level::Warning);
        assert_eq!(from_http_status(301), Level::Info);
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
