//! Unit tests of the parent module.
use super::*;

const T: i64 = 1_705_314_600_000_000_000; // 2024-01-15T10:30:00Z
const NOW: i64 = T + 3600 * NS;

fn ok(text: &str, zone: TimeZone) -> i64 {
    match parse_stamp(text, zone, NOW) {
        Stamp::Ok(ns) => ns,
        Stamp::Invalid(e) => panic!("{text}: invalid: {e}"),
        Stamp::Unknown => panic!("{text}: unknown"),
    }
}

#[test]
fn iso_forms() {
    for text in [
        "2024-01-15T10:30:00Z",
        "2024-01-15 10:30:00",
        "2024-01-15T12:30:00+02:00",
        "2024-01-15T12:30:00+0200",
        "2024-01-15T03:30:00 -0700",
        "2024-01-15 10:30:00 UTC",
        "2024/01/15 10:30:00",
        "2024-01-15t10:30:00z",
    ] {
        assert_eq!(ok(text, TimeZone::Utc), T, "{text}");
    }
    assert_eq!(
        ok("2024-01-15 10:30:00,123", TimeZone::Utc),
        T + 123_000_000
    );
    assert_eq!(
        ok("2024-01-15T10:30:00.123456789Z", TimeZone::Utc),
        T + 123_456_789
    );
    assert_eq!(
        ok("2024-01-15T10:30:00.1234567891Z", TimeZone::Utc),
        T + 123_456_789
    );
}

#[test]
fn other_forms() {
    assert_eq!(ok("15/Jan/2024:03:30:00 -0700", TimeZone::Utc), T);
    assert_eq!(ok("[Mon Jan 15 10:30:00 2024]", TimeZone::Utc), T);
    assert_eq!(
        ok("Mon Jan 15 10:30:00.250000 2024", TimeZone::Utc),
        T + 250_000_000
    );
    assert_eq!(ok("Jan 15 10:30:00", TimeZone::Utc), T);
    assert_eq!(ok("20240115T103000Z", TimeZone::Utc), T);
    assert_eq!(ok("240115 10:30:00", TimeZone::Utc), T);
    assert_eq!(ok("240115 103000", TimeZone::Utc), T);
    assert_eq!(ok("1705314600", TimeZone::Utc), T);
    assert_eq!(ok("1705314600123", TimeZone::Utc), T + 123_000_000);
    assert_eq!(ok("1705314600.5", TimeZone::Utc), T + 500_000_000);
    assert_eq!(ok("1705314600000000", TimeZone::Utc), T);
    assert_eq!(ok("1705314600000000000", TimeZone::Utc), T);
}

#[test]
fn zones() {
    let paris: TimeZone = "Europe/Paris".parse().unwrap();
    assert_eq!(ok("2024-01-15 11:30:00", paris), T);
    assert_eq!(
        ok("2024-07-15 12:30:00", paris),
        ok("2024-07-15 10:30:00", TimeZone::Utc)
    );
    let fixed: TimeZone = "+02:00".parse().unwrap();
    assert_eq!(fixed, TimeZone::Fixed(7200));
    assert_eq!(ok("2024-01-15 12:30:00", fixed), T);
    assert_eq!(
        ok("2024-01-15T10:30:00Z", fixed),
        T,
        "an explicit zone wins"
    );
    assert_eq!("utc".parse::<TimeZone>().unwrap(), TimeZone::Utc);
    assert_eq!(fixed.to_string(), "+02:00");
    assert_eq!(paris.to_string(), "Europe/Paris");
    assert!("Mars/Olympus".parse::<TimeZone>().is_err());
}

#[test]
fn impossible_dates_are_invalid_not_unknown() {
    for text in [
        "2024-02-30 10:00:00",
        "2023-02-29T00:00:00Z",
        "2024-13-01 00:00:00",
        "2024-01-15 25:00:00",
    ] {
        assert!(
            matches!(parse_stamp(text, TimeZone::Utc, NOW), Stamp::Invalid(_)),
            "{text}"
        );
    }
    assert!(matches!(
        parse_stamp("2024-02-29 10:00:00", TimeZone::Utc, NOW),
        Stamp::Ok(_)
    ));
    assert!(matches!(
        parse_stamp("hello", TimeZone::Utc, NOW),
        Stamp::Unknown
    ));
    assert!(matches!(
        parse_stamp("9999-01-01T00:00:00Z", TimeZone::Utc, NOW),
        Stamp::Invalid(_)
    ));
}

#[test]
fn syslog_year_is_inferred_before_now() {
    let (c, _) = scan_syslog(b"Dec 31 23:59:59").unwrap();
    // Received on 2024-01-15: December is last year's.
    let want = days_from_civil(2023, 12, 31) * DAY_NS + (23 * 3600 + 59 * 60 + 59) * NS;
    assert_eq!(infer_year(c, TimeZone::Utc, NOW), Ok(want));
    let (c, _) = scan_syslog(b"Jan 16 00:10:00").unwrap();
    // Within a day after now (clock skew): this year.
    assert_eq!(year_of(infer_year(c, TimeZone::Utc, NOW).unwrap()), 2024);
    let (c, _) = scan_syslog(b"Feb 29 00:00:00").unwrap();
    assert_eq!(year_of(infer_year(c, TimeZone::Utc, NOW).unwrap()), 2020);
    assert_eq!(scan_syslog(b"Jan  5 01:02:03 host").unwrap().0.day, 5);
}
