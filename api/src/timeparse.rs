//! Parsing the instants and durations that requests carry.
//!
//! Instants: epoch microseconds (`1764150000000000`), RFC 3339 (`2026-11-26T10:00:00Z`), `now`, or
//! `now-<duration>` / `now+<duration>`. Durations: an integer with a unit, `us`, `ms`, `s`, `m`,
//! `h`, `d` or `w` (`15m`, `1h`, `7d`).

use t3_core::model::{MAX_TS, MIN_TS};

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
}
