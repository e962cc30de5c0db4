//! Sizes and durations as a configuration writes them, read the same way by every section.
//!
//! A size is a number of bytes, or a number and a unit: `B`; `KB`, `MB`, `GB`, `TB` (powers
//! of 1000); `KiB`, `MiB`, `GiB`, `TiB` or `Ki`, `Mi`, `Gi`, `Ti` (powers of 1024); and the
//! single letters `k`, `M`, `G`, `T` as logrotate writes them (powers of 1024). Units are
//! read without regard to case, so `10M`, `10m` and `10MiB` are all 10,485,760 bytes and
//! `10MB` is 10,000,000. A duration is [`crate::parse_duration`]'s: `500ms`, `30s`, `5m`,
//! `1h`, `7d`, `2w`, or a number of seconds.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Parses a size (see the module's documentation) into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!(
            "invalid size {text:?}: expected a number and a unit, as in 512, 64KiB, 100MB, 10M or 2GiB"
        )
    };
    let num: f64 = num.parse().map_err(|_| bad())?;
    const KI: f64 = 1024.0;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "ki" | "kib" => KI,
        "m" | "mi" | "mib" => KI * KI,
        "g" | "gi" | "gib" => KI * KI * KI,
        "t" | "ti" | "tib" => KI * KI * KI * KI,
        _ => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {:?}; use B, KB, MB, GB, TB (powers of \
                 1000) or KiB, MiB, GiB, TiB, k, M, G, T (powers of 1024)",
                unit.trim()
            ))
        }
    };
    let v = num * mult;
    if !v.is_finite() || v > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as u64)
}

/// A size in bytes, written as a number or as text with a unit ([`parse_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64KiB\", \"100MB\", \"10M\" or a number of bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration, written as text with a unit (`500ms`, `30s`, `7d`) or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(pub std::time::Duration);

/// Deserialises a duration above zero (a [`Duration`] that is not `0s`), for a
/// `deserialize_with` attribute.
pub fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let Duration(duration) = Duration::deserialize(d)?;
    if duration.is_zero() {
        return Err(de::Error::custom("a duration must be above zero"));
    }
    Ok(duration)
}

/// Parses a duration that may not be negative.
pub fn parse_std_duration(text: &str) -> Result<std::time::Duration, String> {
    let ns = crate::parse_duration(text).map_err(|e| e.to_string())?;
    u64::try_from(ns)
        .map(std::time::Duration::from_nanos)
        .map_err(|_| format!("invalid duration {text:?}: it cannot be negative"))
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"30s\", \"7d\" or a number of seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(|s| Duration(std::time::Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration(std::time::Duration::from_secs(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_std_duration(v).map(Duration).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_of_sizes() {
        for (text, bytes) in [
            ("512", 512),
            ("10M", 10 << 20),
            ("10m", 10 << 20),
            ("10MiB", 10 << 20),
            ("10Mi", 10 << 20),
            ("10MB", 10_000_000),
            ("10mb", 10_000_000),
            ("100k", 100 << 10),
            ("64KiB", 64 << 10),
            ("2GiB", 2 << 30),
            ("2G", 2 << 30),
            ("1.5KB", 1500),
            ("1T", 1 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "12 parsecs", "MB", "-1k", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_sizes_from_toml_values() {
        #[derive(Deserialize)]
        struct S {
            a: Size,
            b: Size,
            c: Duration,
            d: Duration,
        }
        let s: S = serde_json::from_str(r#"{"a": 1024, "b": "10M", "c": "1d", "d": 30}"#).unwrap();
        assert_eq!(s.a, Size(1024));
        assert_eq!(s.b, Size(10 << 20));
        assert_eq!(s.c.0, std::time::Duration::from_secs(86_400));
        assert_eq!(s.d.0, std::time::Duration::from_secs(30));
        assert!(serde_json::from_str::<S>(r#"{"a": -1, "b": 1, "c": "1s", "d": 1}"#).is_err());
        assert!(serde_json::from_str::<S>(r#"{"a": 1, "b": 1, "c": "-1s", "d": 1}"#).is_err());
    }
}
