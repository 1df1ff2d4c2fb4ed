//! The testkit's device configuration: which faults to inject, read from the JSON object the
//! server passes to `check_config` and `open`.

use serde_json::{Map, Value};
use t3_plugin_abi::export::Error;

/// The functions a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Open,
    Points,
    Read,
    Write,
    Health,
}

impl Stage {
    const ALL: [(&'static str, Stage); 5] = [
        ("open", Stage::Open),
        ("points", Stage::Points),
        ("read", Stage::Read),
        ("write", Stage::Write),
        ("health", Stage::Health),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Open => "open",
            Stage::Points => "points",
            Stage::Read => "read",
            Stage::Write => "write",
            Stage::Health => "health",
        }
    }
}

/// What `garbage_in` makes the device answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// `points` answers bytes that are not JSON.
    Points,
    /// `points` answers valid JSON of the wrong shape (an object, not an array).
    PointsShape,
    /// `read` answers samples whose point numbers are out of range or not the ones asked for.
    Read,
}

impl Garbage {
    const ALL: [(&'static str, Garbage); 3] =
        [("points", Garbage::Points), ("points_shape", Garbage::PointsShape), ("read", Garbage::Read)];
}

/// The most points a device may have.
pub const MAX_POINTS: u32 = 1000;
/// The default number of points.
pub const DEFAULT_POINTS: u32 = 3;
/// The default interval of pushed samples.
pub const DEFAULT_PUSH_MS: u64 = 100;
/// The longest push interval.
pub const MAX_PUSH_MS: u64 = 60_000;

/// One device's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The device's name (the server's `name` key), for messages.
    pub name: String,
    /// Analog points `P0` .. `P{points-1}`.
    pub points: u32,
    /// The function that panics.
    pub panic_in: Option<Stage>,
    /// The function that never returns.
    pub hang_in: Option<Stage>,
    /// The answer that is garbage.
    pub garbage_in: Option<Garbage>,
    /// After this many successful reads, every read answers `STATUS_UNREACHABLE`.
    pub fail_reads_after: Option<u64>,
    /// Whether `subscribe` succeeds (else it answers `STATUS_UNSUPPORTED`).
    pub subscribe: bool,
    /// The interval of pushed samples, 1 ..= 60 000 ms.
    pub push_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: String::new(),
            points: DEFAULT_POINTS,
            panic_in: None,
            hang_in: None,
            garbage_in: None,
            fail_reads_after: None,
            subscribe: false,
            push_ms: DEFAULT_PUSH_MS,
        }
    }
}

/// The testkit's own keys, as `describe` lists them: name, type, default, description.
pub const KEYS: &[(&str, &str, &str, &str)] = &[
    ("point_count", "integer", "3", "How many analog points (P0, P1, ...) the device has, 1 to 1000."),
    ("panic_in", "string", "null", "A function that panics: open, points, read, write or health."),
    ("hang_in", "string", "null", "A function that never returns: open, points, read, write or health."),
    (
        "garbage_in",
        "string",
        "null",
        "An answer that is garbage: points (not JSON), points_shape (JSON, not a point list) or read \
         (samples with wrong point numbers).",
    ),
    ("fail_reads_after", "integer", "null", "After this many successful reads, every read finds the device offline."),
    ("subscribe", "boolean", "false", "Whether subscribe succeeds and pushes samples."),
    ("push_ms", "integer", "100", "The interval of pushed samples, 1 to 60000 ms."),
];

/// The server's keys, accepted alongside the testkit's own.
const SERVER_KEYS: &[&str] = &["name", "ip_address", "port", "timeout_ms", "retries"];

impl Config {
    /// Reads and checks a configuration; an error names the key at fault (`""` for the whole).
    pub fn parse(bytes: &[u8]) -> Result<Config, Error> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::config("", &format!("the configuration is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(Error::config("", "the configuration must be a JSON object"));
        };
        let mut c = Config::default();
        for (key, value) in &map {
            if value.is_null() && (KEYS.iter().any(|k| k.0 == key) || SERVER_KEYS.contains(&key.as_str())) {
                continue; // null is absent
            }
            match key.as_str() {
                "point_count" => c.points = integer(key, value, 1, u64::from(MAX_POINTS))? as u32,
                "panic_in" => c.panic_in = Some(one_of(key, value, &Stage::ALL)?),
                "hang_in" => c.hang_in = Some(one_of(key, value, &Stage::ALL)?),
                "garbage_in" => c.garbage_in = Some(one_of(key, value, &Garbage::ALL)?),
                "fail_reads_after" => c.fail_reads_after = Some(integer(key, value, 0, u64::MAX)?),
                "subscribe" => {
                    c.subscribe = value.as_bool().ok_or_else(|| Error::config(key, "must be true or false"))?
                }
                "push_ms" => c.push_ms = integer(key, value, 1, MAX_PUSH_MS)?,
                "name" => c.name = string(key, value)?,
                "ip_address" => {
                    string(key, value)?;
                }
                "port" => {
                    integer(key, value, 1, 65_535)?;
                }
                "timeout_ms" | "retries" => {
                    integer(key, value, 0, u64::MAX)?;
                }
                _ => {
                    let own: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
                    return Err(Error::config(
                        key,
                        &format!(
                            "is not a key of the testkit protocol (its keys: {}; and the server's {})",
                            own.join(", "),
                            SERVER_KEYS.join(", ")
                        ),
                    ));
                }
            }
        }
        if c.panic_in.is_some() && c.panic_in == c.hang_in {
            return Err(Error::config("hang_in", "cannot name the same function as panic_in"));
        }
        Ok(c)
    }
}

fn integer(key: &str, value: &Value, min: u64, max: u64) -> Result<u64, Error> {
    value
        .as_u64()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| Error::config(key, &format!("must be an integer from {min} to {max}")))
}

fn string(key: &str, value: &Value) -> Result<String, Error> {
    value.as_str().map(str::to_owned).ok_or_else(|| Error::config(key, "must be a string"))
}

fn one_of<T: Copy>(key: &str, value: &Value, choices: &[(&str, T)]) -> Result<T, Error> {
    let names: Vec<&str> = choices.iter().map(|c| c.0).collect();
    value
        .as_str()
        .and_then(|s| choices.iter().find(|c| c.0 == s))
        .map(|c| c.1)
        .ok_or_else(|| Error::config(key, &format!("must be one of {}", names.join(", "))))
}

/// The `keys` array of `describe`.
pub fn describe_keys() -> Value {
    Value::Array(
        KEYS.iter()
            .map(|(name, kind, default, description)| {
                let mut key = Map::new();
                key.insert("name".into(), (*name).into());
                key.insert("type".into(), (*kind).into());
                key.insert("required".into(), false.into());
                key.insert("default".into(), serde_json::from_str(default).unwrap_or(Value::Null));
                key.insert("description".into(), (*description).into());
                Value::Object(key)
            })
            .collect(),
    )
}
