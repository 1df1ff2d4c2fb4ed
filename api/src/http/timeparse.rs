//! Parsing the instants and durations that requests carry.
//!
//! Instants: epoch microseconds (`1764150000000000`), RFC 3339 (`2026-11-26T10:00:00Z`), `now`, or
//! `now-<duration>` / `now+<duration>`. Durations: an integer with a unit, `us`, `ms`, `s`, `m`,
//! `h`, `d` or `w` (`15m`, `1h`, `7d`). Their rules, which the OpenAPI document states too, are in
//! [`crate::http::rules`].
//!
//! A sample's integer time stamp must be epoch microseconds; [`check_epoch_us`] refuses one whose
//! magnitude shows another unit.

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

/// A duration (`15m`, `1h`, `7d`): see [`crate::http::rules::DURATION`].
pub fn parse_duration(s: &str) -> Result<i64, String> {
    crate::http::rules::DURATION.parse(s)
}

/// An instant (`now-24h`, RFC 3339, epoch microseconds): see [`crate::http::rules::INSTANT_PATTERN`].
pub fn parse_instant(s: &str, now_us: i64) -> Result<i64, String> {
    crate::http::rules::parse_instant(s, now_us)
}

/// Parses a comma-separated list of point ids (spaces around each allowed): see
/// [`crate::http::rules::POINT_LIST_PATTERN`].
pub fn parse_points(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(|p| p.trim_matches(' ')) {
        let id = part
            .parse::<u32>()
            .ok()
            .filter(|_| part.bytes().all(|b| b.is_ascii_digit()) && (!part.starts_with('0') || part == "0"));
        out.push(id.ok_or_else(|| {
            format!("'{part}' is not a point id (0 .. 4294967295 without leading zeros; ids separated by commas)")
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_lists_parse_exactly_when_the_pattern_matches() {
        let re = regex::Regex::new(&crate::http::rules::POINT_LIST_PATTERN).unwrap();
        for s in [
            "1",
            "1,2,3",
            " 1 , 2 ",
            "0",
            "4294967295",
            "4294967296",
            "01",
            "1,,2",
            "1,",
            ",1",
            "",
            " ",
            "+1",
            "1\t",
            "a",
            "1;2",
        ] {
            let parsed = parse_points(s);
            assert_eq!(re.is_match(s), parsed.is_ok(), "{s:?}: {parsed:?}");
        }
    }

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
        assert_eq!(parse_points("1, 2 ,3"), Ok(vec![1, 2, 3]));
        assert_eq!(parse_points("0,4294967295"), Ok(vec![0, 4294967295]));
        for bad in ["1,x", "", "1,,2", "1,", "+1", "01", "4294967296", "1\t", "-1"] {
            assert!(parse_points(bad).is_err(), "{bad}");
        }
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
