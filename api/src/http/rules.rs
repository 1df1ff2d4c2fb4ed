//! The rules a request's values must follow, each stated once: the validators in the handlers use
//! them and the OpenAPI document states them (as `maxLength`, `pattern`, `enum`, `minimum` /
//! `maximum`), so the document and the server cannot drift apart. Client generators and
//! property-based testers (`tests/tests/schemathesis.rs`) take the document at its word: every
//! request it calls valid is accepted, every request the server refuses breaks a rule it states.
//!
//! A textual rule is a regular expression used by both sides: the server matches it with the
//! `regex` crate (whose syntax for what is used here, `^`, `$`, `(?:...)`, classes, `{m,n}`,
//! `\uXXXX`, agrees with the ECMA-262 dialect of JSON Schema), then parses the value, which cannot
//! fail for a string the expression matches (the unit tests below check that, for each rule).

pub use crate::model::alarm::alarm_rule_schema;
pub use crate::model::check::{
    EXPIRES_IN_SECS, NAME_MAX, PASSWORD_CHARS, PROGRAM_CHARS, RETENTION_DAYS, TOKEN_DAYS, TREND_INTERVAL_MS,
    TRENDLOG_INTERVAL_MS, TRENDLOG_POINTS, check_name, check_time_zone,
};
use std::sync::LazyLock;
use t3_core::model::MAX_TS;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

// ---- names ----

/// The characters `str::trim` removes: Unicode's White_Space property.
pub const WHITESPACE: &[char] = &[
    '\t', '\n', '\u{0B}', '\u{0C}', '\r', ' ', '\u{85}', '\u{A0}', '\u{1680}', '\u{2000}', '\u{2001}', '\u{2002}',
    '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}', '\u{200A}', '\u{2028}',
    '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
];

/// The inside of a character class of [`WHITESPACE`] (`\u0009\u000A...`).
fn whitespace_class() -> String {
    WHITESPACE.iter().map(|c| format!("\\u{:04X}", u32::from(*c))).collect()
}

/// A name has a character that is not white space (somewhere: JSON Schema patterns search).
pub static NAME_PATTERN: LazyLock<String> = LazyLock::new(|| format!("[^{}]", whitespace_class()));

/// The schema of a name (see [`check_name`]).
pub fn name_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(NAME_MAX))
        .pattern(Some(NAME_PATTERN.as_str()))
        .description(Some(format!("1 to {NAME_MAX} characters, not only white space (which is trimmed off)")))
        .into()
}

// ---- numbers: see `model::check` ----

// ---- time zones ----

/// The schema of an optional time zone (see [`check_time_zone`]).
pub fn time_zone_schema() -> Schema {
    let names = t3_core::schedule::time_zone_names().map(serde_json::Value::from);
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .enum_values(Some(names.chain([serde_json::Value::Null])))
        .description(Some("An IANA time zone name as written (`Europe/Berlin`); `UTC` when absent or null."))
        .into()
}

/// A type or `null`.
pub fn nullable(t: Type) -> utoipa::openapi::schema::SchemaType {
    utoipa::openapi::schema::SchemaType::from_iter([t, Type::Null])
}

// ---- integers in text ----

/// A regular expression (without anchors) matching exactly the decimal numbers `lo ..= hi`, without
/// leading zeros.
pub fn uint_range(lo: u64, hi: u64) -> String {
    assert!(lo <= hi, "an empty range {lo}..={hi}");
    let mut parts = Vec::new();
    let mut lo = lo;
    loop {
        let digits = lo.to_string().len() as u32;
        let top = if digits >= 20 { u64::MAX } else { 10u64.pow(digits) - 1 };
        let end = top.min(hi);
        same_length(lo.to_string().as_bytes(), end.to_string().as_bytes(), String::new(), &mut parts);
        if end == hi {
            break;
        }
        lo = end + 1;
    }
    if parts.len() == 1 { parts.pop().unwrap_or_default() } else { format!("(?:{})", parts.join("|")) }
}

fn digit_class(a: u8, b: u8) -> String {
    match (a, b) {
        _ if a == b => (a as char).to_string(),
        (b'0', b'9') => "[0-9]".to_owned(),
        _ => format!("[{}-{}]", a as char, b as char),
    }
}

/// Alternatives matching the numbers `lo ..= hi`, both of the same number of digits, after `prefix`.
fn same_length(lo: &[u8], hi: &[u8], prefix: String, out: &mut Vec<String>) {
    let n = lo.len();
    if n == 1 {
        out.push(format!("{prefix}{}", digit_class(lo[0], hi[0])));
        return;
    }
    if lo[0] == hi[0] {
        same_length(&lo[1..], &hi[1..], format!("{prefix}{}", lo[0] as char), out);
        return;
    }
    let any = |k: usize| if k == 1 { "[0-9]".to_owned() } else { format!("[0-9]{{{k}}}") };
    let lo_rest_zero = lo[1..].iter().all(|&d| d == b'0');
    let hi_rest_nine = hi[1..].iter().all(|&d| d == b'9');
    let mut first = lo[0];
    if !lo_rest_zero {
        let nines = vec![b'9'; n - 1];
        same_length(&lo[1..], &nines, format!("{prefix}{}", lo[0] as char), out);
        first += 1;
    }
    let last = if hi_rest_nine { hi[0] } else { hi[0] - 1 };
    if first <= last {
        out.push(format!("{prefix}{}{}", digit_class(first, last), any(n - 1)));
    }
    if !hi_rest_nine {
        let zeros = vec![b'0'; n - 1];
        same_length(&zeros, &hi[1..], format!("{prefix}{}", hi[0] as char), out);
    }
}

// ---- durations ----

/// The units of a duration and their length in microseconds.
pub const DURATION_UNITS: [(&str, i64); 7] = [
    ("us", 1),
    ("ms", 1_000),
    ("s", 1_000_000),
    ("m", 60_000_000),
    ("h", 3_600_000_000),
    ("d", 86_400_000_000),
    ("w", 604_800_000_000),
];

/// A span of time given as a whole number (without leading zeros) and a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRule {
    /// Shortest, microseconds.
    pub min_us: i64,
    /// Longest, microseconds.
    pub max_us: i64,
    /// The same span for messages (`1m`).
    pub min_text: &'static str,
    pub max_text: &'static str,
}

/// Any duration (`bucket`, `max_gap`): 1 µs up to about 292,000 years.
pub const DURATION: DurationRule = DurationRule { min_us: 1, max_us: i64::MAX, min_text: "1us", max_text: "292000y" };
/// The time range a trend log's chart opens with.
pub const TREND_RANGE: DurationRule =
    DurationRule { min_us: 60_000_000, max_us: 3660 * 86_400_000_000, min_text: "1m", max_text: "3660d" };
/// The bucket of an export's averages: at least a second. (Buckets are computed densely, a day
/// at a time within the row limit: shorter ones would cost a query for every few seconds of each
/// day with data. For finer detail, export the samples themselves.)
pub const EXPORT_BUCKET: DurationRule =
    DurationRule { min_us: 1_000_000, max_us: i64::MAX, min_text: "1s", max_text: "292000y" };
/// The span of `now-<span>` and `now+<span>` in an instant: at most about ten years.
pub const RELATIVE: DurationRule =
    DurationRule { min_us: 1, max_us: 3660 * 86_400_000_000, min_text: "1us", max_text: "3660d" };

impl DurationRule {
    /// The expression (without anchors) of the durations of this rule.
    pub fn expression(&self) -> String {
        let alternatives: Vec<String> = DURATION_UNITS
            .iter()
            .filter_map(|&(unit, us)| {
                let lo = (self.min_us + us - 1) / us;
                let hi = self.max_us / us;
                (lo <= hi).then(|| format!("{}{unit}", uint_range(lo as u64, hi as u64)))
            })
            .collect();
        format!("(?:{})", alternatives.join("|"))
    }

    /// The anchored pattern the document states.
    pub fn pattern(&self) -> String {
        format!("^{}$", self.expression())
    }

    /// Parses a duration of this rule, in microseconds.
    pub fn parse(&self, s: &str) -> Result<i64, String> {
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let us = DURATION_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, us)| *us)
            .ok_or_else(|| format!("'{s}' is not a duration: a whole number and a unit, us, ms, s, m, h, d or w (examples: 30s, 15m, 1h, 7d)"))?;
        let n: i64 = num.parse().ok().filter(|_| !num.starts_with('0') || num == "0").ok_or_else(|| {
            format!(
                "'{s}' is not a duration: a whole number without leading zeros and a unit (examples: 30s, 15m, 1h, 7d)"
            )
        })?;
        n.checked_mul(us)
            .filter(|v| (self.min_us..=self.max_us).contains(v))
            .ok_or_else(|| format!("duration '{s}' must be {} to {}", self.min_text, self.max_text))
    }
}

// ---- instants ----

/// A year as RFC 3339 instants may write it.
const YEARS: (u64, u64) = (1970, 9999);

/// An RFC 3339 date and time (`2026-11-26T10:00:00Z`, `2026-11-26t10:00:00.5+01:00`) of the years
/// 1970 to 9999, of a day that exists (29 February only in leap years), with a leap second (`:60`)
/// allowed.
fn rfc3339_expression() -> String {
    let year = uint_range(YEARS.0, YEARS.1);
    // Leap years from 1972 on: divisible by 4 and not by 100, or by 400.
    let leap = "(?:19(?:7[26]|8[048]|9[26])|[2-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)";
    let month_day = "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))";
    let time = "[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\\.[0-9]+)?";
    let offset = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
    format!("(?:{year}-{month_day}|{leap}-02-29){time}{offset}")
}

/// An RFC 3339 time stamp of the years 1970 to 9999 (see [`rfc3339_expression`]).
pub static RFC3339_PATTERN: LazyLock<String> = LazyLock::new(|| format!("^{}$", rfc3339_expression()));

/// An instant: `now`, `now-<duration>` or `now+<duration>` (at most [`RELATIVE`]), epoch
/// microseconds up to 9999-12-31, or RFC 3339 (see [`rfc3339_expression`]).
pub static INSTANT_PATTERN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "^(?:now|now[+-]{}|{}|{})$",
        RELATIVE.expression(),
        uint_range(0, (MAX_TS + 1) as u64),
        rfc3339_expression()
    )
});

static INSTANT: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(&INSTANT_PATTERN).expect("the instant pattern compiles"));

/// Parses an instant (see [`INSTANT_PATTERN`]) to epoch microseconds. An RFC 3339 time whose
/// offset puts it just outside 1970 .. 9999 counts as that end of the range.
pub fn parse_instant(s: &str, now_us: i64) -> Result<i64, String> {
    if !INSTANT.is_match(s) {
        return Err(format!(
            "'{s}' is not an instant: RFC 3339 of the years 1970 to 9999 (2026-11-26T10:00:00Z), epoch \
             microseconds, now, or now-<duration> / now+<duration> of at most {} (now-24h)",
            RELATIVE.max_text
        ));
    }
    let v = if s == "now" {
        now_us
    } else if let Some(rest) = s.strip_prefix("now-") {
        now_us - RELATIVE.parse(rest)?
    } else if let Some(rest) = s.strip_prefix("now+") {
        now_us + RELATIVE.parse(rest)?
    } else if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<i64>().map_err(|e| format!("'{s}': {e}"))?
    } else {
        let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| format!("'{s}' is not an instant ({e})"))?;
        t.timestamp_micros().clamp(t3_core::model::MIN_TS, MAX_TS + 1)
    };
    if !(t3_core::model::MIN_TS..=MAX_TS + 1).contains(&v) {
        return Err(format!("instant '{s}' is outside 1970-01-01 .. 9999-12-31"));
    }
    Ok(v)
}

// ---- point id lists ----

/// Point ids separated by commas, spaces around each allowed (`1,2,3`, `1, 2, 3`).
pub static POINT_LIST_PATTERN: LazyLock<String> = LazyLock::new(|| {
    let id = uint_range(0, u64::from(u32::MAX));
    format!("^ *{id} *(?:, *{id} *)*$")
});

// ---- pages ----

/// The largest page a list endpoint returns.
pub const MAX_PAGE: usize = 10_000;

/// The schema of `limit`.
pub fn limit_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE as f64))
        .description(Some(format!("At most this many (1 to {MAX_PAGE}; 100 by default).")))
        .into()
}

// ---- history ----

/// The aggregates of `agg`, as they are spelled.
pub fn aggregate_names() -> Vec<&'static str> {
    t3_storage::analytics::Agg::ALL.iter().map(|a| a.name()).collect()
}

/// Aggregate names separated by commas, spaces around each allowed (`avg,max`).
pub static AGGREGATES_PATTERN: LazyLock<String> = LazyLock::new(|| {
    let one = format!("(?:{})", aggregate_names().join("|"));
    format!("^ *{one} *(?:, *{one} *)*$")
});

/// The interpolations of `fill`.
pub const FILLS: [&str; 2] = ["linear", "step"];

// ---- exports ----

/// A pattern matching exactly the given words in any case (`^(?:[Cc][Ss][Vv]|...)$`).
pub fn any_case(words: &[&str]) -> String {
    let word = |w: &str| -> String {
        w.chars()
            .map(|c| {
                let (l, u) = (c.to_ascii_lowercase(), c.to_ascii_uppercase());
                if l == u { regex::escape(&c.to_string()) } else { format!("[{u}{l}]") }
            })
            .collect()
    };
    format!("^(?:{})$", words.iter().map(|w| word(w)).collect::<Vec<_>>().join("|"))
}

/// Export formats, as `format` names them (any case).
pub const EXPORT_FORMATS: [t3_storage::export::ExportFormat; 3] = [
    t3_storage::export::ExportFormat::Csv,
    t3_storage::export::ExportFormat::Xlsx,
    t3_storage::export::ExportFormat::Parquet,
];
/// Export layouts (any case).
pub const EXPORT_LAYOUTS: [t3_storage::export::Layout; 2] =
    [t3_storage::export::Layout::Long, t3_storage::export::Layout::Wide];

pub fn export_format_param() -> Schema {
    let names: Vec<&str> = EXPORT_FORMATS.iter().map(|f| f.as_str()).collect();
    string_schema(false, Some(&any_case(&names)), None)
}
pub fn export_layout_param() -> Schema {
    let names: Vec<&str> = EXPORT_LAYOUTS.iter().map(|f| f.as_str()).collect();
    string_schema(false, Some(&any_case(&names)), None)
}

// ---- schedules, calendars, alarm rules ----

// utoipa's schema model has no `oneOf` beside `properties`, no `const` and no `propertyNames`:
// these schemas are JSON, put in the document by `openapi::document`.

/// White space around a value that the parser trims (`str::trim`).
fn padded(expression: &str) -> String {
    let ws = whitespace_class();
    format!("^[{ws}]*(?:{expression})[{ws}]*$")
}

/// `HH:MM` (or `H:MM`), 00:00 to 24:00: [`t3_core::schedule::TimeOfDay`].
pub static TIME_OF_DAY_PATTERN: LazyLock<String> = LazyLock::new(|| padded("(?:[01]?[0-9]|2[0-3]):[0-5][0-9]|24:00"));

/// `MM-DD` (one or two digits each) of a day some year has: [`t3_core::schedule::MonthDay`].
pub static MONTH_DAY_PATTERN: LazyLock<String> = LazyLock::new(|| {
    padded(
        "(?:0?[13578]|1[02])-(?:0?[1-9]|[12][0-9]|3[01])|(?:0?[469]|11)-(?:0?[1-9]|[12][0-9]|30)|0?2-(?:0?[1-9]|[12][0-9])",
    )
});

/// `YYYY-MM-DD` of a day that exists, years 0000 to 9999 (as chrono's `NaiveDate` reads it).
pub const DATE_PATTERN: &str = "^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)$";

/// The body of a schedule's `weekly_schedule`: [`t3_core::schedule::WeeklySchedule`]. Each ON time
/// must be before its OFF time and a day type's pairs must not overlap (they may touch), which
/// JSON Schema cannot say; the descriptions do.
pub fn weekly_schedule_schema() -> serde_json::Value {
    let days: Vec<&str> =
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "holiday1", "holiday2"].to_vec();
    let time = serde_json::json!({"type": "string", "pattern": *TIME_OF_DAY_PATTERN});
    serde_json::json!({
        "type": "object",
        "description": "The ON/OFF pairs of each day type: `{\"days\": {\"monday\": [{\"on\": \"08:00\", \"off\": \"17:00\"}]}}`. \
            At most 4 pairs a day type; each ON before its OFF; the pairs of a day type do not overlap (they may touch).",
        "properties": {
            "days": {
                "type": "object",
                "propertyNames": {"enum": days},
                "additionalProperties": {
                    "type": "array",
                    "maxItems": t3_core::schedule::MAX_PERIODS_PER_DAY,
                    "items": {
                        "type": "object",
                        "required": ["on", "off"],
                        "properties": {"on": time, "off": time},
                    },
                },
            },
        },
    })
}

/// The body of POST / PUT of a holiday calendar: [`t3_core::schedule::AnnualRoutine`].
pub fn calendar_body_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["name", "holiday"],
        "properties": {
            "name": serde_json::to_value(name_schema()).expect("a schema serialises"),
            "holiday": {"type": "string", "enum": ["holiday1", "holiday2"]},
            "dates": {"type": "array", "items": {"type": "string", "pattern": DATE_PATTERN}, "description": "Single dates (`2026-12-24`)."},
            "recurring": {"type": "array", "items": {"type": "string", "pattern": *MONTH_DAY_PATTERN}, "description": "Days marked every year (`12-25`)."},
        },
    })
}

// ---- history modes ----

/// How `agg`, `fill`, `bucket`, `max_gap`, `max_points` and `prior` combine (the validator is
/// `routes::history::mode_of`): with `fill`, values interpolated on the `bucket` grid (`bucket`
/// required; `agg` and `max_points` ignored); else with `agg`, aggregates per `bucket` or per
/// range split into `max_points` buckets (one of them required); else raw rows, thinned to
/// `max_points` if given (`bucket` and `max_gap` refused). `prior` only with raw rows. As
/// `oneOf` over a body whose fields may be null (null counts as absent).
pub fn history_modes() -> serde_json::Value {
    let set = |t: &str| serde_json::json!({"type": t});
    let absent = serde_json::json!({"type": "null"});
    let no_prior = serde_json::json!({"enum": [false, null]});
    serde_json::json!([
        {
            "title": "interpolated",
            "required": ["fill", "bucket"],
            "properties": {"fill": set("string"), "bucket": set("string"), "prior": no_prior},
        },
        {
            "title": "aggregated",
            "required": ["agg"],
            "properties": {"agg": set("string"), "fill": absent, "prior": no_prior},
            "anyOf": [
                {"required": ["bucket"], "properties": {"bucket": set("string")}},
                {"required": ["max_points"], "properties": {"max_points": set("integer")}},
            ],
        },
        {
            "title": "raw",
            "properties": {"agg": absent, "fill": absent, "bucket": absent, "max_gap": absent},
        },
    ])
}

/// The same rules in words, for the operations whose query parameters JSON Schema cannot relate.
pub const HISTORY_MODES_TEXT: &str = "How the parameters combine: with `fill`, values interpolated on the \
    `bucket` grid (`bucket` required; `agg` and `max_points` ignored); else with `agg`, aggregates per \
    `bucket`, or per range split into `max_points` buckets (one of the two required); else raw rows, \
    thinned to at most `max_points` (M4) if given, and `bucket` or `max_gap` are refused (400). `prior` \
    only with raw rows. A `from` at or after `to` is an empty range: series without rows.";

// ---- samples ----

/// The largest quality byte that is bad (OPC major quality `00`): a sample without a value has
/// one of these.
pub fn bad_quality_max() -> u8 {
    (0..=u8::MAX).filter(|q| t3_core::Quality(*q).major() == t3_core::model::Major::Bad).max().unwrap_or(0)
}

// ---- devices ----

/// A name of one of the built-in device profiles, as the profile library looks names up: any
/// case, and anything but ASCII letters and digits ignored (`t3 controller` is `T3-controller`).
pub static PROFILE_PATTERN: LazyLock<String> = LazyLock::new(|| {
    let alternatives: Vec<String> = profile_names()
        .iter()
        .map(|name| {
            let letters: Vec<String> = name
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| {
                    let (l, u) = (c.to_ascii_lowercase(), c.to_ascii_uppercase());
                    if l == u { c.to_string() } else { format!("[{u}{l}]") }
                })
                .collect();
            format!("[^A-Za-z0-9]*{}[^A-Za-z0-9]*", letters.join("[^A-Za-z0-9]*"))
        })
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
});

fn profile_names() -> Vec<String> {
    t3_drivers::profile::ProfileLibrary::builtin().profiles().map(|p| p.name.clone()).collect()
}

/// A scan target of `POST /devices/discover` as `t3_drivers::discovery::expand_targets` takes it:
/// a host name or address (no `/`, not only white space), or an IPv4 CIDR block of at most 65,536
/// addresses (`/16` to `/32`; white space around allowed).
pub static HOST_PATTERN: LazyLock<String> = LazyLock::new(|| {
    let ws = whitespace_class();
    let octet = uint_range(0, 255);
    format!(
        "^(?:[^/]*[^/{ws}][^/]*|[{ws}]*{octet}\\.{octet}\\.{octet}\\.{octet}/\\+?0*(?:1[6-9]|2[0-9]|3[0-2])[{ws}]*)$"
    )
});

fn range_schema<T: Into<serde_json::Value> + Copy>(r: &std::ops::RangeInclusive<T>) -> serde_json::Value {
    serde_json::json!({"type": "integer", "minimum": (*r.start()).into(), "maximum": (*r.end()).into()})
}

/// Recording settings: [`t3_core::config::RecordConfig`].
fn record_schema() -> serde_json::Value {
    use t3_core::config::{DEADBAND_PERCENT, HEARTBEAT_SECS};
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "description": "Recording: `every` poll, or on `change` (past a deadband, or after heartbeat_secs).",
        "properties": {
            "mode": {"enum": ["every", "change"]},
            "deadband": {"type": "number", "minimum": 0},
            "deadband_percent": {"type": "number", "minimum": *DEADBAND_PERCENT.start(), "maximum": *DEADBAND_PERCENT.end()},
            "heartbeat_secs": range_schema(&HEARTBEAT_SECS),
        },
    })
}

/// The body of `POST /devices` and `PUT /devices/{id}` for one protocol: the fields of a
/// `[[devices]]` table ([`t3_core::config::DeviceConfig`]) plus the place and a description.
/// Which points a `points` entry may name depends on the profile, and names may not repeat
/// (in any case): the description says so.
pub fn device_body_schema(protocol: t3_core::config::Protocol) -> serde_json::Value {
    use t3_core::config::*;
    let tcp = protocol == Protocol::ModbusTcp;
    let text = serde_json::json!({"type": "string", "pattern": *NAME_PATTERN});
    let optional = |v: serde_json::Value| {
        let mut v = v;
        v["type"] = serde_json::json!([v["type"].clone(), "null"]);
        v
    };
    let ignored = serde_json::json!({"description": "Ignored (a field of the GET answer, which may be sent back)."});
    let point = serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "description": "A point of the profile (`IN1`, `VAR5`, a register name); each at most once, in any case."},
            "enabled": {"type": "boolean"},
            "poll_interval_ms": optional(range_schema(&POLL_INTERVAL_MS)),
            "record": {"oneOf": [record_schema(), {"type": "null"}]},
        },
    });
    let mut names = profile_names();
    names.sort_unstable();
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "title": if tcp { "Modbus TCP device" } else { "Modbus RTU device" },
        "required": if tcp { serde_json::json!(["name", "protocol", "unit_id", "profile", "ip_address"]) }
            else { serde_json::json!(["name", "protocol", "unit_id", "profile", "serial_port"]) },
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": DEVICE_NAME_MAX, "pattern": *NAME_PATTERN,
                "description": format!("Unique: 1 to {DEVICE_NAME_MAX} characters, not only white space (a name another device has: 409).")},
            "device_type": {"type": "string", "description": "What the device is, for people (`controller` when absent)."},
            "protocol": {"const": if tcp { "modbus-tcp" } else { "modbus-rtu" }},
            "ip_address": if tcp { text.clone() } else { serde_json::json!({"type": ["string", "null"], "description": "Not used on RTU."}) },
            "port": {"type": "integer", "minimum": if tcp { 1 } else { 0 }, "maximum": u16::MAX},
            "serial_port": if tcp { serde_json::json!({"type": ["string", "null"], "description": "Not used on TCP."}) } else {
                serde_json::json!({"type": "string", "pattern": *NAME_PATTERN, "description": "The serial device (`/dev/ttyUSB0`); the devices on one port share its baud_rate and parity (else 409)."}) },
            "baud_rate": if tcp { serde_json::json!({"type": "integer", "minimum": 0, "maximum": u32::MAX}) } else { range_schema(&BAUD_RATES) },
            "parity": {"enum": ["none", "even", "odd"]},
            "unit_id": if tcp { serde_json::json!({"type": "integer", "minimum": 0, "maximum": u8::MAX}) } else { range_schema(&RTU_UNIT_IDS) },
            "profile": {"type": "string", "pattern": *PROFILE_PATTERN,
                "description": format!("A built-in profile, in any case, punctuation ignored: {}.", names.join(", "))},
            "poll_interval_ms": range_schema(&POLL_INTERVAL_MS),
            "timeout_ms": optional(range_schema(&DEVICE_TIMEOUT_MS)),
            "enabled": {"type": "boolean"},
            "max_registers": optional(range_schema(&MAX_REGISTERS)),
            "max_gap": optional(range_schema(&MAX_GAP)),
            "one_request_per_point": {"type": "boolean"},
            "record": record_schema(),
            "points": {"type": "array", "items": point,
                "description": "Per-point settings: each names a point of the profile, at most once (else 422)."},
            "building_id": {"type": ["integer", "null"], "format": "int64"},
            "floor_id": {"type": ["integer", "null"], "format": "int64"},
            "room_id": {"type": ["integer", "null"], "format": "int64"},
            "description": {"type": ["string", "null"]},
            "id": ignored, "source": ignored, "online": ignored, "last_seen": ignored,
            "point_counts": ignored, "status": ignored, "config": ignored,
        },
    })
}

/// The body of `POST /devices/discover` for one protocol: `routes::devices::DiscoverRequest`.
pub fn discover_schema(protocol: t3_core::config::Protocol) -> serde_json::Value {
    let tcp = protocol == t3_core::config::Protocol::ModbusTcp;
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "title": if tcp { "Modbus TCP scan" } else { "Modbus RTU scan" },
        "required": if tcp { serde_json::json!(["protocol", "hosts"]) } else { serde_json::json!(["protocol", "serial_port"]) },
        "properties": {
            "protocol": {"const": if tcp { "modbus-tcp" } else { "modbus-rtu" }},
            "hosts": if tcp {
                serde_json::json!({"type": "array", "minItems": 1, "items": {"type": "string", "pattern": *HOST_PATTERN},
                    "description": "Host names, addresses or IPv4 CIDR blocks of at most 65,536 addresses (`192.168.1.0/24`)."})
            } else { serde_json::json!({"type": "array", "items": {"type": "string"}, "description": "Not used on RTU."}) },
            "port": {"type": "integer", "minimum": 0, "maximum": u16::MAX, "description": "502 when absent."},
            "serial_port": if tcp { serde_json::json!({"type": ["string", "null"], "description": "Not used on TCP."}) }
                else { serde_json::json!({"type": "string", "description": "The serial device (`/dev/ttyUSB0`)."}) },
            "baud_rate": {"type": "integer", "minimum": 0, "maximum": u32::MAX, "description": "9600 when absent."},
            "parity": {"enum": ["none", "even", "odd"]},
            "unit_ids": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": u8::MAX},
                "description": "Unit ids to try; by default 1 on TCP and 1 to 247 on RTU."},
            "timeout_ms": range_schema(&DISCOVER_TIMEOUT_MS),
        },
    })
}

/// The JSON Schema of one key of a plugin protocol, as its `describe` types it. The server keeps a
/// plugin device's own keys as TOML values: never null, integers within i64.
fn plugin_key_schema(key: &t3_drivers::plugin::ConfigKey) -> serde_json::Value {
    use serde_json::json;
    let mut s = match key.kind.as_str() {
        "string" => json!({"type": "string"}),
        "integer" => json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
        "number" => json!({"type": "number"}),
        "boolean" => json!({"type": "boolean"}),
        "array" => json!({"type": "array", "items": {"type": ["string", "number", "boolean"]}}),
        _ => json!({"not": {"type": "null"}}),
    };
    if !key.description.is_empty() {
        s["description"] = json!(key.description);
    }
    if let Some(default) = key.default.as_ref().filter(|d| !d.is_null()) {
        s["default"] = default.clone();
    }
    s
}

/// The keys of a plugin protocol a body must have: those its `describe` calls required and gives
/// no default.
pub fn plugin_required_keys(info: &t3_drivers::plugin::ProtocolInfo) -> Vec<&str> {
    info.keys
        .iter()
        .filter(|k| k.required && k.default.as_ref().is_none_or(|d| d.is_null()))
        .map(|k| k.name.as_str())
        .collect()
}

/// The body of `POST /devices` and `PUT /devices/{id}` for the protocol of a loaded plugin: the
/// common fields of a `[[devices]]` table, the place, and the plugin's own keys (written beside
/// the others, or in `options`), typed as its `describe` states them. The server gathers the keys
/// it does not read itself into `options` and the plugin checks them (a key it does not know, a
/// value it refuses: 422 naming the key). The Modbus fields (`serial_port`, `baud_rate`, `parity`,
/// `unit_id`, `profile`, `max_registers`, `max_gap`, `one_request_per_point`) are taken and not
/// used.
pub fn plugin_device_body_schema(protocol: &str, info: &t3_drivers::plugin::ProtocolInfo) -> serde_json::Value {
    use serde_json::json;
    use t3_core::config::{DEVICE_KEYS, Protocol};
    let mut s = device_body_schema(Protocol::ModbusTcp);
    s["title"] = json!(format!("{} device (plugin protocol {protocol})", info.title));
    if !info.description.is_empty() {
        s["description"] = json!(info.description);
    }
    let unused = |t: serde_json::Value| json!({"type": t, "description": "Not used by a plugin device."});
    let props = &mut s["properties"];
    props["protocol"] = json!({"const": protocol});
    props["ip_address"] =
        json!({"type": ["string", "null"], "description": "The device's address, for plugins that use one."});
    props["port"] = json!({"type": ["integer", "null"], "minimum": 1, "maximum": u16::MAX,
        "description": "The device's port, for plugins that use one (the plugin's default when absent)."});
    props["serial_port"] = unused(json!(["string", "null"]));
    props["profile"] = unused(json!("string"));
    props["one_request_per_point"] = unused(json!("boolean"));
    for k in ["baud_rate", "parity", "unit_id", "max_registers", "max_gap"] {
        props[k]["description"] = json!("Not used by a plugin device.");
    }
    props["points"]["description"] =
        json!("Per-point settings: each names a point of the plugin's list, at most once (else 422).");
    props["points"]["items"]["properties"]["name"]["description"] = json!("A point of the plugin's list.");
    let mut own = serde_json::Map::new();
    for key in &info.keys {
        if DEVICE_KEYS.contains(&key.name.as_str()) {
            // A common field the plugin reads too: the server's type, the plugin's words.
            if !key.description.is_empty() {
                props[key.name.as_str()]["description"] = json!(key.description);
            }
        } else {
            own.insert(key.name.clone(), plugin_key_schema(key));
        }
    }
    for (name, schema) in &own {
        props[name.as_str()] = schema.clone();
    }
    props["options"] = json!({"type": "object", "additionalProperties": false, "properties": own,
        "description": "The plugin's own keys, as an object (a key written beside the others as well wins)."});
    let mut required = vec![json!("name"), json!("protocol")];
    for k in plugin_required_keys(info) {
        if !required.contains(&json!(k)) {
            required.push(json!(k));
        }
    }
    s["required"] = json!(required);
    s
}

/// The body of `POST /devices/discover` for the protocol of a loaded plugin that can look for
/// devices: `options` is handed to the plugin; the Modbus fields are taken and not used, and
/// `timeout_ms` is checked as for a Modbus scan.
pub fn plugin_discover_schema(protocol: &str, info: &t3_drivers::plugin::ProtocolInfo) -> serde_json::Value {
    use serde_json::json;
    let mut s = discover_schema(t3_core::config::Protocol::ModbusTcp);
    s["title"] = json!(format!("{} scan (plugin protocol {protocol})", info.title));
    s["required"] = json!(["protocol"]);
    let props = &mut s["properties"];
    props["protocol"] = json!({"const": protocol});
    props["options"] = json!({"type": "object",
        "description": "The plugin's discovery options (BACnet/IP: `port`, `broadcast`, `low`, `high`, `timeout_ms`)."});
    props["hosts"] = json!({"type": "array", "items": {"type": "string"}, "description": "Not used by a plugin scan."});
    for k in ["port", "serial_port", "baud_rate", "parity", "unit_ids"] {
        props[k]["description"] = json!("Not used by a plugin scan.");
    }
    s
}

/// `timeout_ms` of a scan.
pub const DISCOVER_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 10..=5000;

// ---- SQL ----

/// A SQL text the server tries: after white space and trailing semicolons are trimmed off, not
/// empty and without a `;` (one statement). Whether DuckDB takes it is for DuckDB to say.
pub static SQL_PATTERN: LazyLock<String> = LazyLock::new(|| {
    let ws = whitespace_class();
    format!("^[{ws}]*[^;{ws}](?:[^;]*[^;{ws}])?[{ws}]*;*[{ws}]*$")
});

// ---- schemas of the rules (for `schema_with`: query parameters are never null, body fields may be) ----

fn string_schema(nullable_: bool, pattern: Option<&str>, values: Option<&[&str]>) -> Schema {
    let mut b = ObjectBuilder::new().schema_type(if nullable_ { nullable(Type::String) } else { Type::String.into() });
    if let Some(p) = pattern {
        b = b.pattern(Some(p));
    }
    if let Some(v) = values {
        let mut all: Vec<serde_json::Value> = v.iter().map(|s| serde_json::Value::from(*s)).collect();
        if nullable_ {
            all.push(serde_json::Value::Null);
        }
        b = b.enum_values(Some(all));
    }
    b.into()
}

pub fn instant_param() -> Schema {
    string_schema(false, Some(&INSTANT_PATTERN), None)
}
pub fn optional_instant() -> Schema {
    string_schema(true, Some(&INSTANT_PATTERN), None)
}
pub fn duration_param() -> Schema {
    string_schema(false, Some(&DURATION.pattern()), None)
}
pub fn optional_duration() -> Schema {
    string_schema(true, Some(&DURATION.pattern()), None)
}
pub fn export_bucket_param() -> Schema {
    string_schema(false, Some(&EXPORT_BUCKET.pattern()), None)
}
pub fn optional_trend_range() -> Schema {
    string_schema(true, Some(&TREND_RANGE.pattern()), None)
}
pub fn aggregates_param() -> Schema {
    string_schema(false, Some(&AGGREGATES_PATTERN), None)
}
pub fn optional_aggregates() -> Schema {
    string_schema(true, Some(&AGGREGATES_PATTERN), None)
}
pub fn fill_param() -> Schema {
    string_schema(false, None, Some(&FILLS))
}
pub fn optional_fill() -> Schema {
    string_schema(true, None, Some(&FILLS))
}
pub fn point_list_param() -> Schema {
    string_schema(false, Some(&POINT_LIST_PATTERN), None)
}

/// The schema of a query parameter as a type, for `#[param(value_type = ..., inline)]`: utoipa
/// drops `required` and the description of a parameter whose schema comes from `schema_with`, so
/// a parameter names one of these types instead (`Option<...>` when it may be absent).
macro_rules! param_type {
    ($($(#[$doc:meta])* $name:ident => $schema:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema.into()
            }
        }
        impl utoipa::ToSchema for $name {}
    )*};
}
pub(crate) use param_type;

param_type! {
    /// [`instant_param`].
    InstantParam => instant_param();
    /// [`duration_param`].
    DurationParam => duration_param();
    /// [`aggregates_param`].
    AggregatesParam => aggregates_param();
    /// [`fill_param`].
    FillParam => fill_param();
    /// [`point_list_param`].
    PointListParam => point_list_param();
    /// [`export_format_param`].
    ExportFormatParam => export_format_param();
    /// [`export_layout_param`].
    ExportLayoutParam => export_layout_param();
    /// [`limit_schema`].
    LimitParam => limit_schema();
    /// [`export_bucket_param`].
    ExportBucketParam => export_bucket_param();
}

/// A schema of one of the given strings.
pub fn one_of(values: &[&str]) -> Schema {
    string_schema(false, None, Some(values))
}

/// A schema of one of the given strings, or null.
pub fn optional_one_of(values: &[&str]) -> Schema {
    string_schema(true, None, Some(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(pattern: &str) -> regex::Regex {
        regex::Regex::new(&format!("^(?:{pattern})$")).unwrap()
    }

    #[test]
    fn the_white_space_list_is_what_trim_removes() {
        let all: Vec<char> = (0..=0x10FFFFu32).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect();
        assert_eq!(all, WHITESPACE);
        let re = regex::Regex::new(&NAME_PATTERN).unwrap();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = format!("  {c}\t");
            assert_eq!(re.is_match(&s), !s.trim().is_empty(), "{c:?}");
        }
    }

    #[test]
    fn scan_targets_match_exactly_what_the_scanner_takes() {
        let re = regex::Regex::new(&HOST_PATTERN).unwrap();
        let mut cases: Vec<String> = [
            "plc-1",
            "192.168.1.10",
            " 192.168.1.0/24 ",
            "192.168.1.0/16",
            "10.0.0.0/15",
            "10.0.0.0/8",
            "10.0.0.0/32",
            "10.0.0.0/33",
            "10.0.0.0/+24",
            "10.0.0.0/024",
            "10.0.0.0/ 24",
            "10.0.0.0 /24",
            "10.0.0.300/24",
            "10.0.0.01/24",
            "10.0.0/24",
            "/24",
            "a/b",
            "",
            " ",
            "\u{3000}",
            "\u{3000}x",
            "host name with spaces",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for bits in 0..=40 {
            cases.push(format!("172.16.0.0/{bits}"));
        }
        for s in &cases {
            let taken = t3_drivers::discovery::expand_targets(std::slice::from_ref(s)).is_ok();
            assert_eq!(re.is_match(s), taken, "{s:?}");
        }
    }

    #[test]
    fn profile_names_match_exactly_what_the_library_finds() {
        let re = regex::Regex::new(&PROFILE_PATTERN).unwrap();
        let lib = t3_drivers::profile::ProfileLibrary::builtin();
        let mut cases = vec![String::new(), " ".into(), "T3".into(), "controller".into(), "T3-controllers".into()];
        for p in lib.profiles() {
            let n = &p.name;
            cases.extend([
                n.clone(),
                n.to_lowercase(),
                n.to_uppercase(),
                format!(" {n}\t"),
                n.replace('-', " "),
                n.chars().flat_map(|c| [c, '_']).collect(),
                format!("{n}x"),
                format!("x{n}"),
                n.chars().skip(1).collect(),
                format!("{n}é"),
            ]);
        }
        for s in &cases {
            assert_eq!(re.is_match(s), lib.get(s).is_some(), "{s:?}");
        }
    }

    #[test]
    fn sql_texts_match_exactly_what_the_server_tries() {
        let re = regex::Regex::new(&SQL_PATTERN).unwrap();
        for s in [
            "SELECT 1",
            " SELECT 1 ; ",
            "SELECT 1;;",
            "SELECT 1; ;",
            "SELECT 1 ;\n",
            "SELECT ';'",
            "a;b",
            "",
            " ",
            ";",
            " ; ",
            "\u{3000}x\u{3000}",
            "x",
            ";x",
            "x;",
        ] {
            assert_eq!(re.is_match(s), t3_storage::query::sql_statement(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn the_bad_qualities_are_those_up_to_the_largest() {
        let max = bad_quality_max();
        assert_eq!(max, 63);
        for q in 0..=u8::MAX {
            let bad = t3_core::Quality(q).major() == t3_core::model::Major::Bad;
            assert_eq!(bad, q <= max, "{q}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(check_name("room", " Lab 1 ").unwrap(), "Lab 1");
        assert!(check_name("room", "").is_err());
        assert!(check_name("room", " \u{3000}\n").is_err());
        assert!(check_name("room", &"x".repeat(NAME_MAX)).is_ok());
        assert!(check_name("room", &"é".repeat(NAME_MAX)).is_ok());
        assert!(check_name("room", &"x".repeat(NAME_MAX + 1)).is_err());
        // Counted as sent, as maxLength counts: white space around counts too.
        assert!(check_name("room", &format!(" {} ", "x".repeat(NAME_MAX - 1))).is_err());
    }

    #[test]
    fn integer_ranges_match_exactly_their_numbers() {
        let ranges =
            [(0, 0), (0, 9), (1, 1), (3, 7), (0, 1000), (7, 321), (1970, 9999), (99, 100), (123, 45_678), (10, 99)];
        for (lo, hi) in ranges {
            let re = full(&uint_range(lo, hi));
            for n in 0..=60_000u64 {
                assert_eq!(re.is_match(&n.to_string()), (lo..=hi).contains(&n), "{n} in {lo}..={hi}: {re}");
            }
            assert!(!re.is_match(&format!("0{lo}")), "leading zero, {lo}..={hi}");
        }
        let big = [(1, i64::MAX as u64), (0, (MAX_TS + 1) as u64), (60_000_000, 316_224_000_000_000), (1, u64::MAX)];
        for (lo, hi) in big {
            let re = full(&uint_range(lo, hi));
            for n in [lo, hi, lo + 1, hi - 1, (lo + hi) / 2, hi / 3 + 7, 10, 99, 100, 1_000_000_007] {
                assert_eq!(re.is_match(&n.to_string()), (lo..=hi).contains(&n), "{n} in {lo}..={hi}");
            }
            if let Some(n) = hi.checked_add(1) {
                assert!(!re.is_match(&n.to_string()), "{n} past {hi}");
            }
            if lo > 0 {
                assert!(!re.is_match(&(lo - 1).to_string()), "{} before {lo}", lo - 1);
            }
            assert!(!re.is_match(&format!("{hi}0")));
        }
    }

    #[test]
    fn durations_parse_exactly_when_the_pattern_matches() {
        let mut cases: Vec<String> = [
            "15m", "1h", "7d", "1us", "0s", "015m", " 1h", "1h ", "1H", "1", "h", "-1s", "1.5h", "3660d", "3661d",
            "523w", "1000w",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (unit, us) in DURATION_UNITS {
            for rule in [DURATION, TREND_RANGE, RELATIVE, EXPORT_BUCKET] {
                for n in [rule.min_us / us, rule.min_us / us + 1, rule.max_us / us, rule.max_us / us + 1] {
                    for m in [n.saturating_sub(1), n, n.saturating_add(1)] {
                        cases.push(format!("{m}{unit}"));
                    }
                }
            }
            cases.push(format!("99999999999999999999{unit}"));
        }
        for rule in [DURATION, TREND_RANGE, RELATIVE, EXPORT_BUCKET] {
            let re = regex::Regex::new(&rule.pattern()).unwrap();
            for s in &cases {
                let parsed = rule.parse(s);
                assert_eq!(re.is_match(s), parsed.is_ok(), "{s} under {rule:?}: {parsed:?}");
                if let Ok(v) = parsed {
                    assert!((rule.min_us..=rule.max_us).contains(&v));
                }
            }
        }
        assert_eq!(DURATION.parse("15m"), Ok(900_000_000));
        assert_eq!(DURATION.parse("1ms"), Ok(1_000));
        assert_eq!(TREND_RANGE.parse("365d"), Ok(365 * 86_400_000_000));
        assert!(TREND_RANGE.parse("59s").is_err());
    }

    #[test]
    fn word_lists_parse_exactly_when_the_pattern_matches() {
        let formats: Vec<&str> = EXPORT_FORMATS.iter().map(|f| f.as_str()).collect();
        let re = regex::Regex::new(&any_case(&formats)).unwrap();
        for s in ["csv", "CSV", "xLsX", "parquet", "PARQUET", "", "cs", "csvx", " csv", "json"] {
            let parsed = s.parse::<t3_storage::export::ExportFormat>();
            assert_eq!(re.is_match(s), parsed.is_ok(), "{s:?}");
        }
        let layouts: Vec<&str> = EXPORT_LAYOUTS.iter().map(|f| f.as_str()).collect();
        let re = regex::Regex::new(&any_case(&layouts)).unwrap();
        for s in ["long", "Wide", "WIDE", "", "tall", "longwide"] {
            assert_eq!(re.is_match(s), s.parse::<t3_storage::export::Layout>().is_ok(), "{s:?}");
        }
        let re = regex::Regex::new(&AGGREGATES_PATTERN).unwrap();
        for s in [
            "avg",
            "avg,max",
            " avg , twa ",
            "integral,count,first,last,min",
            "",
            "avg,",
            ",avg",
            "AVG",
            "avg;max",
            "median",
        ] {
            let ok = s.split(',').all(|a| t3_storage::analytics::Agg::parse(a.trim_matches(' ')).is_some());
            assert_eq!(re.is_match(s), ok, "{s:?}");
        }
    }

    #[test]
    fn schedule_texts_parse_exactly_when_the_pattern_matches() {
        use t3_core::schedule::{MonthDay, TimeOfDay};
        let time = regex::Regex::new(&TIME_OF_DAY_PATTERN).unwrap();
        let mut times: Vec<String> =
            ["24:00", "24:01", " 8:00 ", "8:0", "08:60", "\u{3000}07:30", "007:30", "7:30x", ""]
                .iter()
                .map(|s| s.to_string())
                .collect();
        for h in 0..=25 {
            for m in [0, 5, 59, 60] {
                times.push(format!("{h:02}:{m:02}"));
                times.push(format!("{h}:{m:02}"));
            }
        }
        for s in &times {
            assert_eq!(time.is_match(s), s.parse::<TimeOfDay>().is_ok(), "{s:?}");
        }
        let md = regex::Regex::new(&MONTH_DAY_PATTERN).unwrap();
        for m in 0..=13 {
            for d in 0..=32 {
                for s in [format!("{m:02}-{d:02}"), format!("{m}-{d}"), format!(" {m}-{d:02}\t")] {
                    assert_eq!(md.is_match(&s), s.parse::<MonthDay>().is_ok(), "{s:?}");
                }
            }
        }
        let date = regex::Regex::new(DATE_PATTERN).unwrap();
        let parse = |s: &str| serde_json::from_value::<chrono::NaiveDate>(serde_json::Value::from(s)).is_ok();
        for y in [0, 4, 100, 400, 1900, 1970, 2000, 2024, 2026, 2100, 9999] {
            for m in 1..=12 {
                for d in [1, 28, 29, 30, 31, 32] {
                    let s = format!("{y:04}-{m:02}-{d:02}");
                    assert_eq!(date.is_match(&s), parse(&s), "{s}");
                }
            }
        }
        // The document is stricter than chrono about spelling (chrono also takes `2026-1-5`), never looser.
        for s in ["2026-1-5", "2026-01-05 ", "12026-01-05", "2026/01/05"] {
            assert!(!date.is_match(s), "{s}");
        }
    }

    #[test]
    fn instants_parse_exactly_when_the_pattern_matches() {
        let now = 1_795_683_600_000_000;
        let re = regex::Regex::new(&INSTANT_PATTERN).unwrap();
        let mut cases: Vec<String> = [
            "now",
            "now-24h",
            "now+1h",
            "now-3660d",
            "now-3661d",
            "now-0s",
            "now - 1h",
            "NOW",
            "now-",
            "0",
            "00",
            "1",
            "253402300800000000",
            "253402300800000001",
            "-5",
            "+5",
            "1764150000000000",
            "2026-11-26T10:00:00Z",
            "2026-11-26t10:00:00z",
            "2026-11-26 10:00:00Z",
            "2026-11-26T10:00:00.5+01:00",
            "2026-11-26T10:00:00.123456789123Z",
            "2026-11-26T10:00:00.Z",
            "2026-11-26T10:00Z",
            "2026-11-26T10:00:00",
            "2026-11-26T24:00:00Z",
            "2026-11-26T23:60:00Z",
            "2016-12-31T23:59:60Z",
            "2026-11-26T10:00:60Z",
            "2026-02-29T00:00:00Z",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "1972-02-29T00:00:00Z",
            "1970-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-23:59",
            "9999-12-31T23:59:59.999999Z",
            "2026-11-26T10:00:00+24:00",
            "2026-11-26T10:00:00+01:60",
            "2026-11-26T10:00:00+0100",
            "2026-11-26T10:00:00-00:00",
            "26-11-26T10:00:00Z",
            "2026-1-26T10:00:00Z",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for y in [1970, 1971, 1972, 1980, 1996, 1999, 2000, 2004, 2024, 2100, 2400, 2800, 3000, 9996, 9999] {
            for (m, d) in [(2, 28), (2, 29), (2, 30), (4, 30), (4, 31), (12, 31), (1, 32)] {
                cases.push(format!("{y:04}-{m:02}-{d:02}T12:00:00Z"));
            }
        }
        for s in &cases {
            let parsed = parse_instant(s, now);
            assert_eq!(re.is_match(s), parsed.is_ok(), "{s:?}: {parsed:?}");
            // What the document allows, chrono (or the integer parser) takes.
            if re.is_match(s) && s.contains('-') && !s.starts_with("now") {
                assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), "{s}");
            }
        }
        assert_eq!(parse_instant("now-1h", now), Ok(now - 3_600_000_000));
        assert_eq!(parse_instant("1970-01-01T00:00:01Z", 0), Ok(1_000_000));
        assert_eq!(parse_instant("2026-11-26T10:00:00+01:00", 0), Ok(1_795_683_600_000_000));
        assert_eq!(parse_instant("1970-01-01T00:00:00+01:00", 0), Ok(0));
        assert_eq!(parse_instant("9999-12-31T23:59:59-23:59", 0), Ok(MAX_TS + 1));
    }
}
