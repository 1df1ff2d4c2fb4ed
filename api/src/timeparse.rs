//! Parsing the instants and durations that requests carry.
//!
//! Instants: epoch microseconds (`1764150000000000`), RFC 3339 (`2026-11-26T10:00:00Z`), `now`, or
//! `now-<duration>` / `now+<duration>`. Durations: an integer with a unit, `us`, `ms`, `s`, `m`,
//! `h`, `d` or `w` (`15m`, `1h`, `7d`).
//!
//! A sample's integer time stamp must be epoch microseconds; [`check_epoch_us`] refuses one whose
//! magnitude shows another unit.

use t3_core::model::{MAX_TS, MIN_TS};

/// The integers taken as epoch microseconds: 1973-03-03T09:46:40Z up to 5138-11-16T09:46:40Z.
///
/// Epoch seconds, milliseconds, microseconds and nanoseconds of any time in that span each fall in
/// a band of their own, three decimal orders apart: `[1e8, 1e11)` seconds, `[1e11, 1e14)`
/// milliseconds, `[1e14, 1e17)` microseconds, `[1e17, ...)` nanoseconds. So a 2025 time stamp sent
/// in the wrong unit is told apart instead of being stored in January 1970 (or refused as past
/// 9999). Earlier or later times can still be sent as RFC 3339.
pub const EPOCH_US_RANGE: std::ops::Range<i64> = 100_000_000_000_000..100_000_000_000_000_000;

/// Checks that an integer time stamp `v` of a sample is epoch microseconds by its magnitude (see
/// [`EPOCH_US_RANGE`]); the error says which unit it looks like and what to send instead.
/// Negative values pass: the range check refuses them as before 1970.
pub fn check_epoch_us(v: i64) -> Result<(), String> {
    if v < 0 || EPOCH_US_RANGE.contains(&v) {
        return Ok(());
    }
    let (unit, as_us) = if v < 100_000_000_000 {
        ("seconds", v * 1_000_000)
    } else if v < EPOCH_US_RANGE.start {
        ("milliseconds", v * 1_000)
    } else {
        ("nanoseconds", v / 1_000)
    };
    let when = chrono::DateTime::from_timestamp_micros(as_us)
        .map_or_else(String::new, |t| format!(" ({})", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
    Err(format!(
        "ts {v} looks like epoch {unit}{when}, but integer time stamps are epoch microseconds \
         (1973-03-03 .. 5138-11-16); send {as_us} or an RFC 3339 string"
    ))
}

pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| format!("'{s}' is not a duration (examples: 30s, 15m, 1h, 7d)"))?;
    let mult: i64 = match unit {
        "us" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        "w" => 604_800_000_000,
        _ => return Err(format!("'{s}' has no known unit (us, ms, s, m, h, d, w)")),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("duration '{s}' must be positive and at most 292,000 years"))
}

pub fn parse_instant(s: &str, now_us: i64) -> Result<i64, String> {
    let s = s.trim();
    let v = if let Ok(us) = s.parse::<i64>() {
        us
    } else if s == "now" {
        now_us
    } else if let Some(rest) = s.strip_prefix("now-") {
        now_us - parse_duration(rest)?
    } else if let Some(rest) = s.strip_prefix("now+") {
        now_us + parse_duration(rest)?
    } else {
        chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("'{s}' is not an instant ({e}); use RFC 3339, epoch microseconds or now-24h"))?
            .timestamp_micros()
    };
    if !(MIN_TS..=MAX_TS + 1).contains(&v) {
        return Err(format!("instant '{s}' is outside 1970-01-01 .. 9999-12-31"));
    }
    Ok(v)
}

/// Parses a comma-separated list of point ids.
pub fn parse_points(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.push(part.parse::<u32>().map_err(|_| format!("'{part}' is not a point id (0 .. 4294967295)"))?);
    }
    if out.is_empty() {
        return Err("no point ids given".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_durations() {
        assert_eq!(parse_duration("15m"), Ok(900_000_000));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_instant("now-1h", 10_000_000_000), Ok(10_000_000_000 - 3_600_000_000));
        assert_eq!(parse_instant("1970-01-01T00:00:01Z", 0), Ok(1_000_000));
        assert_eq!(parse_instant("2026-11-26T10:00:00+01:00", 0), Ok(1_795_683_600_000_000));
        assert!(parse_instant("-5", 0).is_err());
        assert!(parse_instant("yesterday", 0).is_err());
        assert_eq!(parse_points("1, 2,3"), Ok(vec![1, 2, 3]));
        assert!(parse_points("1,x").is_err());
        assert!(parse_points("").is_err());
    }

    #[test]
    fn integer_time_stamps_in_another_unit_are_told_apart() {
        let unit = |v: i64| match check_epoch_us(v) {
            Ok(()) => "us".to_string(),
            Err(e) => e.split_whitespace().nth(5).unwrap_or("?").to_string(),
        };
        // 2025-01-01T00:00:00Z in each unit.
        assert_eq!(unit(1_735_689_600), "seconds");
        assert_eq!(unit(1_735_689_600_000), "milliseconds");
        assert_eq!(unit(1_735_689_600_000_000), "us");
        assert_eq!(unit(1_735_689_600_000_000_000), "nanoseconds");
        // The band edges.
        assert_eq!(unit(0), "seconds");
        assert_eq!(unit(99_999_999_999), "seconds");
        assert_eq!(unit(100_000_000_000), "milliseconds");
        assert_eq!(unit(99_999_999_999_999), "milliseconds");
        assert_eq!(unit(100_000_000_000_000), "us");
        assert_eq!(unit(99_999_999_999_999_999), "us");
        assert_eq!(unit(100_000_000_000_000_000), "nanoseconds");
        assert_eq!(unit(i64::MAX), "nanoseconds");
        // Negative values are left to the range check.
        assert_eq!(unit(-5), "us");
        let e = check_epoch_us(1_735_689_600_000).unwrap_err();
        assert_eq!(
            e,
            "ts 1735689600000 looks like epoch milliseconds (2025-01-01T00:00:00Z), but integer time stamps are \
             epoch microseconds (1973-03-03 .. 5138-11-16); send 1735689600000000 or an RFC 3339 string"
        );
        let e = check_epoch_us(1_735_689_600_123_456_789).unwrap_err();
        assert!(e.contains("(2025-01-01T00:00:00.123456Z)") && e.contains("send 1735689600123456 "), "{e}");
    }
}
