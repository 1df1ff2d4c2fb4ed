//! The rules what is stored must follow, each stated once: names, time zones and the ranges of
//! numbers. The handlers and services check values with them; `http::rules` states them in the
//! OpenAPI document.

/// A value the model refuses: a stable, machine-readable code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// `invalid_name`, `invalid_time_zone`, ...
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(code: &'static str, message: impl Into<String>) -> Invalid {
        Invalid { code, message: message.into() }
    }
}

// ---- names ----

/// Longest name of anything named (building, floor, room, point, user, token, schedule, ...), in
/// characters (Unicode scalar values, which is how JSON Schema's `maxLength` counts).
pub const NAME_MAX: usize = 128;

/// A name as stored: 1 to [`NAME_MAX`] characters as sent, not only white space; stored trimmed.
pub fn check_name(what: &str, name: &str) -> Result<String, Invalid> {
    let trimmed = name.trim();
    if trimmed.is_empty() || name.chars().count() > NAME_MAX {
        return Err(Invalid::new(
            "invalid_name",
            format!("{what} name must be 1 to {NAME_MAX} characters, not only white space"),
        ));
    }
    Ok(trimmed.to_owned())
}

// ---- time zones ----

/// A time zone: one of the IANA names of the time zone database, as written (`Europe/Berlin`).
pub fn check_time_zone(tz: &str) -> Result<(), Invalid> {
    if t3_core::schedule::time_zone_names().any(|n| n == tz) {
        Ok(())
    } else {
        Err(Invalid::new(
            "invalid_time_zone",
            format!("unknown time zone \"{tz}\": use an IANA name as written, such as Europe/Berlin or UTC"),
        ))
    }
}

// ---- numbers ----
// The document states these with `minimum` / `maximum` on the fields (utoipa's attributes take
// literals); `openapi::tests` checks that it states these values.

/// `trend.interval_ms` of a point: 100 ms to 24 h.
pub const TREND_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=86_400_000;
/// `trend.retention_days` of a point: up to 100 years.
pub const RETENTION_DAYS: std::ops::RangeInclusive<u32> = 1..=36_500;

/// A point's recording settings, those given: its poll interval, deadband and days of history.
pub fn check_trend(
    interval_ms: Option<u64>,
    deadband: Option<f64>,
    retention_days: Option<u32>,
) -> Result<(), Invalid> {
    let bad = |m: &str| Err(Invalid::new("invalid_trend", m));
    if interval_ms.is_some_and(|i| !TREND_INTERVAL_MS.contains(&i)) {
        return bad("trend.interval_ms must be 100 to 86400000");
    }
    if deadband.is_some_and(|d| !d.is_finite() || d < 0.0) {
        return bad("trend.deadband must be a number >= 0");
    }
    if retention_days.is_some_and(|d| !RETENTION_DAYS.contains(&d)) {
        return bad("trend.retention_days must be 1 to 36500");
    }
    Ok(())
}
/// `expires_in_secs` of a write: up to 366 days.
pub const EXPIRES_IN_SECS: std::ops::RangeInclusive<u64> = 1..=366 * 86_400;
/// `interval_ms` of a trend log: 1 s to 24 h.
pub const TRENDLOG_INTERVAL_MS: std::ops::RangeInclusive<u64> = 1_000..=86_400_000;
/// Lifetime of an API token in days: up to 100 years.
pub const TOKEN_DAYS: std::ops::RangeInclusive<u32> = 1..=36_500;
/// Length of a password in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=256;
/// Longest program source, in characters.
pub const PROGRAM_CHARS: usize = 1 << 20;
/// Points of a trend log.
pub const TRENDLOG_POINTS: std::ops::RangeInclusive<usize> = 1..=64;
