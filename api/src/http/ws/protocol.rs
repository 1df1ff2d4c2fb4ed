//! The messages of `/api/t3000/ws`: JSON text frames, each an object tagged by `type`.
//!
//! The server's messages are [`ServerMessage`]; the client's are parsed by [`parse_client`] into
//! [`ClientMessage`] (unknown fields and types are refused with an `Error` carrying the message's
//! `request_id`). [`schema_document`] is the JSON Schema of both directions, served at
//! `GET /api/t3000/ws/schema.json`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What a client sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Subscribe(Selection),
    Unsubscribe(Selection),
    AckAlarm(AckAlarm),
    WriteValue(WriteValue),
    Ping,
}

/// Ids, or every one (`"all"`).
#[derive(Debug, Clone, PartialEq)]
pub enum IdsOrAll<T> {
    All,
    Ids(Vec<T>),
}

/// Most ids one message may list.
pub const MAX_IDS: usize = 100_000;

fn ids_or_all<'de, D, T>(d: D) -> Result<Option<IdsOrAll<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw<T> {
        Word(String),
        Ids(Vec<T>),
    }
    match Option::<Raw<T>>::deserialize(d) {
        Ok(None) => Ok(None),
        Ok(Some(Raw::Word(w))) if w == "all" => Ok(Some(IdsOrAll::All)),
        Ok(Some(Raw::Ids(ids))) if ids.len() <= MAX_IDS => Ok(Some(IdsOrAll::Ids(ids))),
        Ok(Some(Raw::Ids(_))) => Err(serde::de::Error::custom(format!("at most {MAX_IDS} ids"))),
        _ => Err(serde::de::Error::custom("must be a list of ids or \"all\"")),
    }
}

/// What to follow (`Subscribe`) or stop following (`Unsubscribe`). Absent fields leave things as
/// they are.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Point ids, or `"all"`: `PointUpdate`s of these points.
    #[serde(default, deserialize_with = "ids_or_all")]
    #[schema(value_type = Option<Object>, example = json!([101, 102]))]
    pub points: Option<IdsOrAll<u32>>,
    /// Catalog device ids, or `"all"`: `DeviceStatus` of these devices.
    #[serde(default, deserialize_with = "ids_or_all")]
    #[schema(value_type = Option<Object>, example = json!("all"))]
    pub devices: Option<IdsOrAll<i64>>,
    /// Room ids: `PointUpdate`s and `DeviceStatus` of the devices placed in them.
    pub rooms: Option<Vec<i64>>,
    /// Floor ids, as rooms.
    pub floors: Option<Vec<i64>>,
    /// Building ids, as rooms.
    pub buildings: Option<Vec<i64>>,
    /// `AlarmNotification`s (every alarm transition).
    pub alarms: Option<bool>,
    /// `ScheduleUpdate`s (state changes, schedules created, changed or deleted).
    pub schedules: Option<bool>,
    /// `ProgramUpdate`s (status, error or enabled changes; programs created, changed or deleted).
    pub programs: Option<bool>,
    /// `SystemStatus` every `websocket.system_status_interval_secs`.
    pub system: Option<bool>,
    /// `Subscribe` only: at most this many `PointUpdate`s per second per point (0.01 ..= 1000);
    /// faster changes are coalesced to the latest value. Applies to the connection; absent: every
    /// change.
    pub max_rate_hz: Option<f64>,
    /// `Subscribe` only: `true` sends point changes as `PointUpdates` frames (the changes written
    /// at once, up to 1,000 per frame) instead of one `PointUpdate` frame each; for clients that
    /// follow many points. Applies to the connection.
    pub batch: Option<bool>,
}

/// `AckAlarm`: acknowledges a rule's alarm (operator), as `POST /api/t3000/alarms/{id}/ack`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckAlarm {
    /// The alarm rule's id (`alarm_id` of `AlarmNotification`).
    pub alarm_id: i64,
}

/// `WriteValue`: commands a value through the arbiter (operator), as
/// `POST /api/t3000/points/{id}/value`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteValue {
    pub point_id: u32,
    pub value: f64,
    /// 1 ..= 16; 8 (operator) by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
    #[serde(default)]
    pub switch_to_manual: bool,
}

/// A client message that could not be taken: its `request_id` (if it had one), the error code
/// and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub request_id: Value,
    pub code: &'static str,
    pub message: String,
}

/// Parses one text frame: `(request_id, message)`.
pub fn parse_client(text: &str) -> Result<(Value, ClientMessage), Refused> {
    let refuse = |request_id: &Value, code, message: String| Refused { request_id: request_id.clone(), code, message };
    let value: Value =
        serde_json::from_str(text).map_err(|e| refuse(&Value::Null, "invalid_json", format!("not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(refuse(&Value::Null, "invalid_message", "a message is a JSON object with a `type`".into()));
    };
    let request_id = obj.remove("request_id").unwrap_or(Value::Null);
    if !matches!(request_id, Value::Null | Value::String(_) | Value::Number(_)) {
        return Err(refuse(&Value::Null, "invalid_message", "request_id must be a string or a number".into()));
    }
    let kind = match obj.remove("type") {
        Some(Value::String(t)) => t,
        _ => return Err(refuse(&request_id, "invalid_message", "a message needs a string `type`".into())),
    };
    let rest = Value::Object(obj);
    fn body<T: serde::de::DeserializeOwned>(kind: &str, rest: Value) -> Result<T, String> {
        serde_path_to_error::deserialize(rest).map_err(|e| {
            let path = e.path().to_string();
            if path == "." { format!("{kind}: {}", e.inner()) } else { format!("{kind}.{path}: {}", e.inner()) }
        })
    }
    let parsed = match kind.as_str() {
        "Subscribe" => body::<Selection>(&kind, rest).and_then(|s| {
            if s.max_rate_hz.is_some_and(|r| !(0.01..=1000.0).contains(&r)) {
                return Err("Subscribe.max_rate_hz: must be 0.01 to 1000".into());
            }
            Ok(ClientMessage::Subscribe(s))
        }),
        "Unsubscribe" => body::<Selection>(&kind, rest).and_then(|s| {
            if s.max_rate_hz.is_some() {
                return Err("Unsubscribe.max_rate_hz: only Subscribe sets a rate".into());
            }
            if s.batch.is_some() {
                return Err("Unsubscribe.batch: only Subscribe sets batching".into());
            }
            Ok(ClientMessage::Unsubscribe(s))
        }),
        "AckAlarm" => body::<AckAlarm>(&kind, rest).map(ClientMessage::AckAlarm),
        "WriteValue" => body::<WriteValue>(&kind, rest).map(ClientMessage::WriteValue),
        "Ping" => body::<Empty>(&kind, rest).map(|_| ClientMessage::Ping),
        other => {
            return Err(refuse(
                &request_id,
                "unknown_type",
                format!("unknown message type \"{other}\" (Subscribe, Unsubscribe, AckAlarm, WriteValue, Ping)"),
            ));
        }
    };
    parsed.map(|m| (request_id.clone(), m)).map_err(|message| refuse(&request_id, "invalid_message", message))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

// ---- server messages ----

/// What the server sends: one JSON object per text frame, tagged by `type`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type")]
pub enum ServerMessage {
    Welcome(Welcome),
    Subscribed(Subscribed),
    Unsubscribed(Reply),
    PointUpdate(PointUpdate),
    PointUpdates(PointUpdates),
    DeviceStatus(DeviceStatus),
    AlarmNotification(AlarmNotification),
    ScheduleUpdate(ScheduleUpdate),
    ProgramUpdate(ProgramUpdate),
    SystemStatus(SystemStatus),
    Lagged(Lagged),
    AlarmAcknowledged(AlarmAcknowledged),
    ValueWritten(ValueWritten),
    Pong(Reply),
    Error(ErrorMessage),
}

/// The first message of a connection.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Welcome {
    pub username: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    pub server_version: String,
    /// The server pings every this many seconds; a client silent for `client_timeout_secs` is dropped.
    pub ping_interval_secs: u64,
    pub client_timeout_secs: u64,
    /// Messages queued for this client before it lags.
    pub queue_messages: usize,
}

/// A reply that says only which request it answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reply {
    #[schema(value_type = Option<Object>)]
    pub request_id: Value,
}

/// The answer to `Subscribe`; the snapshot (`PointUpdate` and `DeviceStatus` with
/// `snapshot: true`) follows it, then changes only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Subscribed {
    #[schema(value_type = Option<Object>)]
    pub request_id: Value,
    /// Points followed now (`null` when every point is).
    pub points: Option<usize>,
    pub all_points: bool,
    /// Devices whose status is followed now (`null` when every device is).
    pub devices: Option<usize>,
    pub alarms: bool,
    pub schedules: bool,
    pub programs: bool,
    pub system: bool,
    /// Current values in the snapshot that follows.
    pub snapshot_points: usize,
    pub max_rate_hz: Option<f64>,
    /// Point changes come as `PointUpdates` frames.
    pub batch: bool,
}

/// A sample of a point: its current value on subscription (`snapshot: true`), then every change
/// (every sample stored, collected or pushed). The fields of the plan's `PointUpdate` (A2.1) have
/// its names and types; the others add to them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointUpdate {
    pub point_id: u32,
    /// `input`, `output`, `variable`, `register` or `manual`.
    pub point_type: &'static str,
    /// The catalog device, none for a manual point.
    pub device_id: Option<i64>,
    /// The value; 0 when the sample carries none (`has_value: false`, a failed read).
    pub value: f64,
    /// Whether the sample carries a value.
    pub has_value: bool,
    /// When the sample was taken: milliseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// The same instant in microseconds since the Unix epoch.
    pub ts_us: i64,
    /// The same instant, RFC 3339 (UTC, milliseconds).
    pub time: String,
    /// The OPC quality byte: 192 (0xC0) and above good, 64 ..= 127 uncertain, below 64 bad.
    pub quality: u8,
    /// The quality by name: `good`, `good/local_override`, `bad/comm_failure`, ...
    pub quality_name: &'static str,
    /// Part of a snapshot (subscription or after `Lagged`), not a change.
    pub snapshot: bool,
}

/// Several point changes in one frame (after `Subscribe` with `batch: true`), oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointUpdates {
    /// Each a `PointUpdate` message, `type` included.
    pub updates: Vec<PointUpdate>,
}

/// A device's communication status: on subscription, at once when it goes on- or offline, and
/// at most every few seconds otherwise.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceStatus {
    /// The catalog device id.
    pub device_id: i64,
    pub name: String,
    pub online: bool,
    /// `connecting`, `online`, `offline`, `disabled`.
    pub state: String,
    /// Last answer of any kind: milliseconds since the Unix epoch (UTC); 0 when it never answered.
    pub last_seen: i64,
    /// The same instant, RFC 3339 (UTC); null when it never answered.
    pub last_seen_time: Option<String>,
    /// Share of the last 100 polls that succeeded, 0 ..= 1.
    pub connection_quality: f32,
    pub rtt_ms: Option<f64>,
    pub last_error: Option<String>,
    pub snapshot: bool,
}

/// An alarm transition (stored in the alarm history before it is sent).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlarmNotification {
    /// The alarm rule's id (acknowledge with `AckAlarm`).
    pub alarm_id: i64,
    pub name: String,
    /// The catalog device: the rule's, or the device of the rule's point; 0 when none (a rule on a
    /// manual point).
    pub device_id: i64,
    /// The rule's point; 0 when none (a rule on a device's status).
    pub point_id: u32,
    /// What happened: `raised`, `level_changed`, `acknowledged`, `cleared`, `normal`. A system
    /// alarm that gathers several faults (devices offline, program in error, plugin refused) is
    /// `raised` again by a new fault while it is on, and `cleared` with `state` still `active` or
    /// `acknowledged` when one fault ends while others remain.
    pub alarm_type: String,
    /// The state after: `active`, `acknowledged`, `cleared`, `normal`.
    pub state: String,
    /// `waylow`, `low`, `high`, `wayhigh`, `state`, `offline`; built-in alarms `data_loss`,
    /// `warning`, `fault`.
    pub level: String,
    /// The rule's message, else its name.
    pub message: String,
    /// 2 critical (way limits, device offline, data loss, a system fault), 1 warning (low, high,
    /// digital state, a system warning).
    pub severity: u8,
    /// `critical` or `warning`.
    pub severity_name: &'static str,
    pub value: Option<f64>,
    /// Who acknowledged it (`acknowledged`).
    pub by: Option<String>,
    /// When: milliseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// The same instant, RFC 3339 (UTC).
    pub time: String,
}

impl AlarmNotification {
    /// The message of an alarm event: `kind` is what happened, `by` who acknowledged it.
    pub fn of(e: &crate::model::alarm::AlarmEvent, device_id: Option<i64>, kind: &str, by: Option<String>) -> Self {
        let t = &e.transition;
        let critical = t.level.severity() >= 2;
        AlarmNotification {
            alarm_id: e.rule_id,
            name: e.name.clone(),
            device_id: device_id.unwrap_or(0),
            point_id: e.point_id.unwrap_or(0),
            alarm_type: kind.to_owned(),
            state: t.to.as_str().to_owned(),
            level: t.level.as_str().to_owned(),
            message: e.message.clone().unwrap_or_else(|| e.name.clone()),
            severity: t.level.severity(),
            severity_name: if critical { "critical" } else { "warning" },
            value: t.value,
            by,
            timestamp: ms_of_us(t.at_us),
            time: rfc3339_us(t.at_us),
        }
    }
}

/// A schedule changed state (its outputs were written), or was created, changed or deleted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleUpdate {
    pub schedule_id: i64,
    pub name: String,
    /// `state` (the scheduler wrote a new state), `created`, `updated`, `deleted`.
    pub change: String,
    /// `active` (enabled), `inactive` (disabled) or `deleted`.
    pub status: String,
    /// Whether the output is ON now.
    pub on: bool,
    /// The next change of the output: milliseconds since the Unix epoch (UTC); 0 when none.
    pub next_run: i64,
    /// The same instant, RFC 3339 (UTC); null when none.
    pub next_run_time: Option<String>,
    /// When: milliseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// The same instant, RFC 3339 (UTC).
    pub time: String,
}

/// A program changed status (running, stopped, error), error or `enabled`, or was created,
/// changed or deleted. Not sent for every scan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgramUpdate {
    pub program_id: i64,
    pub name: String,
    /// `state` (status, error or enabled changed), `created`, `updated`, `deleted`.
    pub change: String,
    /// `running`, `stopped`, `error` or `deleted`.
    pub status: String,
    pub enabled: bool,
    /// Where and why it stopped (`status: error`); null otherwise.
    pub error: Option<crate::model::program::ProgramErrorView>,
    /// Its last scan, RFC 3339 (UTC); null before the first.
    pub last_scan: Option<String>,
    /// How long its last scan took, in microseconds.
    pub scan_us: Option<u64>,
    /// When: milliseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// The same instant, RFC 3339 (UTC).
    pub time: String,
}

/// The server's health, every `websocket.system_status_interval_secs` (and on subscription).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemStatus {
    /// Devices online now.
    pub active_devices: usize,
    pub total_devices: usize,
    /// Points with at least one sample in the last interval.
    pub active_points: usize,
    /// Device polls per second over the last interval.
    pub collection_rate: f64,
    /// Samples stored per second over the last interval (collected and pushed).
    pub ingest_rate: f64,
    /// The errors of the last interval (failed polls, failed flushes, refused writes), one line
    /// per source.
    pub system_errors: Vec<String>,
    /// How many errors those lines count.
    pub error_count: u64,
    pub websocket_clients: usize,
    pub interval_secs: f64,
    /// When: milliseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// The same instant, RFC 3339 (UTC).
    pub time: String,
}

/// This client fell behind: `missed` messages were dropped for it. A fresh snapshot of its
/// subscriptions follows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Lagged {
    pub missed: u64,
}

/// The answer to `AckAlarm`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlarmAcknowledged {
    #[schema(value_type = Option<Object>)]
    pub request_id: Value,
    pub alarm: AlarmNotification,
}

/// The answer to `WriteValue`: what `POST /api/t3000/points/{id}/value` answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValueWritten {
    #[schema(value_type = Option<Object>)]
    pub request_id: Value,
    /// `point_id`, `effective`, `written`, `read_back`, `switched_to_manual`.
    #[schema(value_type = Object)]
    pub result: Value,
}

/// A client message that was not carried out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorMessage {
    /// The request's `request_id`; `null` when it had none or was not JSON.
    #[schema(value_type = Option<Object>)]
    pub request_id: Value,
    /// `invalid_json`, `invalid_message`, `unknown_type`, `forbidden`, `unauthorized`,
    /// `not_found`, ... (the REST API's codes for writes and acknowledgements).
    pub code: String,
    pub message: String,
}

impl ServerMessage {
    /// The message as a text frame.
    pub fn frame(&self) -> axum::extract::ws::Utf8Bytes {
        // Serializing these types cannot fail (no maps with non-string keys, no failing Serialize).
        serde_json::to_string(self).unwrap_or_default().into()
    }

    pub fn error(request_id: Value, code: impl Into<String>, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error(ErrorMessage { request_id, code: code.into(), message: message.into() })
    }
}

/// Most changes in one `PointUpdates` frame.
pub const MAX_BATCH_UPDATES: usize = 1000;

/// `PointUpdates` frames of `PointUpdate` frames (encoded once by the hub and shared between
/// clients), by joining their text: at most [`MAX_BATCH_UPDATES`] each.
pub fn pack_point_updates(frames: &[axum::extract::ws::Utf8Bytes]) -> Vec<axum::extract::ws::Utf8Bytes> {
    frames
        .chunks(MAX_BATCH_UPDATES)
        .map(|chunk| {
            let len: usize = chunk.iter().map(|f| f.len() + 1).sum();
            let mut text = String::with_capacity(len + 40);
            text.push_str(r#"{"type":"PointUpdates","updates":["#);
            for (i, f) in chunk.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(f.as_str());
            }
            text.push_str("]}");
            text.into()
        })
        .collect()
}

/// Epoch milliseconds of epoch microseconds (rounded down, also before 1970).
pub fn ms_of_us(us: i64) -> i64 {
    us.div_euclid(1000)
}

/// Epoch milliseconds of an RFC 3339 time; 0 when it is none or not one.
pub fn ms_of_rfc3339(t: Option<&str>) -> i64 {
    t.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map_or(0, |t| t.timestamp_millis())
}

/// RFC 3339 (UTC, milliseconds) of epoch microseconds.
pub fn rfc3339_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    ServerMessage,
    Welcome,
    Reply,
    Subscribed,
    PointUpdate,
    PointUpdates,
    DeviceStatus,
    AlarmNotification,
    ScheduleUpdate,
    ProgramUpdate,
    SystemStatus,
    Lagged,
    AlarmAcknowledged,
    ValueWritten,
    ErrorMessage,
    Selection,
    AckAlarm,
    WriteValue
)))]
struct Schemas;

/// The JSON Schema (2020-12) of the messages, in both directions.
pub fn schema_document() -> Value {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(Schemas::openapi()).unwrap_or_default();
    let defs = doc["components"]["schemas"].clone();
    let text = serde_json::to_string(&defs).unwrap_or_default().replace("#/components/schemas/", "#/$defs/");
    let defs: Value = serde_json::from_str(&text).unwrap_or_default();
    let tagged = |t: &str, def: Option<&str>| {
        let mut props = serde_json::json!({
            "type": {"const": t},
            "request_id": {"type": ["string", "number", "null"], "description": "Echoed in the reply or Error."}
        });
        let mut s = serde_json::json!({"type": "object", "required": ["type"], "properties": props.clone()});
        if let Some(def) = def {
            props = serde_json::json!({"$ref": format!("#/$defs/{def}")});
            s = serde_json::json!({"allOf": [s, props]});
        }
        s
    };
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "/api/t3000/ws/schema.json",
        "title": "T3000 live updates (WebSocket /api/t3000/ws)",
        "description": "Connect to ws(s)://HOST/api/t3000/ws?ticket=<ticket>, with a single-use ticket \
            from POST /api/t3000/ws/ticket (asked for with `Authorization: Bearer <token>` right before \
            connecting; it opens one connection within `expires_in_secs`), or with `Authorization: \
            Bearer <token>` where the client can send headers. A token in the URL (`?token=`) is \
            refused with 401 `token_in_url`. Every frame is a JSON text message tagged by `type`. The client sends \
            `client_message`s; every one gets a reply (Subscribed, Unsubscribed, AlarmAcknowledged, \
            ValueWritten, Pong) or an Error with its `request_id`. The server sends `server_message`s. \
            Unknown fields are refused. DeviceStatus, PointUpdate (also inside PointUpdates), \
            AlarmNotification, ScheduleUpdate and SystemStatus carry the fields of the plan's \
            T3000Message (A2.1) with its names and types: times (`timestamp`, `last_seen`, \
            `next_run`) are integers, milliseconds since the Unix epoch (UTC; JavaScript's \
            `Date.now()` unit; 0 when there is no such time), `quality` is the OPC quality byte, \
            `severity` a number (2 critical, 1 warning), `system_errors` the list of error lines. \
            The same facts in other forms are in fields of their own (`time`, `last_seen_time`, \
            `next_run_time` in RFC 3339; `ts_us` in microseconds; `quality_name`, \
            `severity_name`, `error_count`).",
        "$defs": defs,
        "properties": {
            "client_message": {
                "oneOf": CLIENT_KINDS.iter().map(|(kind, def)| tagged(kind, *def)).collect::<Vec<_>>()
            },
            "server_message": {"$ref": "#/$defs/ServerMessage"}
        }
    })
}

/// The kinds of server message, as `ServerMessage` tags them.
pub const SERVER_KINDS: [&str; 15] = [
    "Welcome",
    "Subscribed",
    "Unsubscribed",
    "PointUpdate",
    "PointUpdates",
    "DeviceStatus",
    "AlarmNotification",
    "ScheduleUpdate",
    "ProgramUpdate",
    "SystemStatus",
    "Lagged",
    "AlarmAcknowledged",
    "ValueWritten",
    "Pong",
    "Error",
];

/// The client messages and the schema each body follows (`None`: no fields but `type`).
const CLIENT_KINDS: [(&str, Option<&str>); 5] = [
    ("Subscribe", Some("Selection")),
    ("Unsubscribe", Some("Selection")),
    ("AckAlarm", Some("AckAlarm")),
    ("WriteValue", Some("WriteValue")),
    ("Ping", None),
];

/// The AsyncAPI 3.0 document of the socket (served at `GET /api/t3000/ws/asyncapi.json`): one
/// channel, the server's messages (it sends them) and the client's (it receives them), with the
/// payload schemas of [`schema_document`]. `host` is the server's `host:port`.
pub fn asyncapi_document(host: &str) -> Value {
    use serde_json::json;
    let doc = schema_document();
    let text = doc["$defs"].to_string().replace("#/$defs/", "#/components/schemas/");
    let schemas: Value = serde_json::from_str(&text).unwrap_or_default();
    let payload = |kind: &str, def: Option<&str>| {
        let tag = json!({"type": "object", "required": ["type"], "properties": {"type": {"const": kind}}});
        match def {
            Some(def) => json!({"allOf": [tag, {"$ref": format!("#/components/schemas/{def}")}]}),
            None => tag,
        }
    };
    // Each server kind's body schema has the kind's name, except Error's and the two that share
    // `Reply`.
    fn server_def(kind: &str) -> &str {
        match kind {
            "Unsubscribed" | "Pong" => "Reply",
            "Error" => "ErrorMessage",
            k => k,
        }
    }
    let mut messages = serde_json::Map::new();
    let mut channel = serde_json::Map::new();
    let mut sent = Vec::new();
    let mut received = Vec::new();
    for kind in SERVER_KINDS {
        messages.insert(kind.into(), json!({"name": kind, "payload": payload(kind, Some(server_def(kind)))}));
        channel.insert(kind.into(), json!({"$ref": format!("#/components/messages/{kind}")}));
        sent.push(json!({"$ref": format!("#/channels/live/messages/{kind}")}));
    }
    for (kind, def) in CLIENT_KINDS {
        messages.insert(kind.into(), json!({"name": kind, "payload": payload(kind, def)}));
        channel.insert(kind.into(), json!({"$ref": format!("#/components/messages/{kind}")}));
        received.push(json!({"$ref": format!("#/channels/live/messages/{kind}")}));
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "T3000 live updates",
            "version": env!("CARGO_PKG_VERSION"),
            "description": doc["description"],
        },
        "servers": {
            "t3000": {
                "host": host,
                "protocol": "ws",
                "pathname": "/api/t3000/ws",
                "description": "`?ticket=<ticket>` (a single-use ticket from POST /api/t3000/ws/ticket) or \
                    `Authorization: Bearer <token>`; viewer role or above. `?token=` is refused (401).",
            }
        },
        "defaultContentType": "application/json",
        "channels": {"live": {
            "address": "/api/t3000/ws",
            "messages": channel,
            "bindings": {"ws": {
                "method": "GET",
                "query": {
                    "type": "object",
                    "properties": {"ticket": {
                        "type": "string",
                        "description": "A single-use ticket from POST /api/t3000/ws/ticket: opens one \
                            connection within its `expires_in_secs`, as the token that asked for it. \
                            Not needed with `Authorization: Bearer <token>`.",
                    }},
                },
                "bindingVersion": "0.1.0",
            }},
        }},
        "operations": {
            "sendServerMessages": {
                "action": "send",
                "channel": {"$ref": "#/channels/live"},
                "summary": "What the server sends: replies, snapshots and changes.",
                "messages": sent,
            },
            "receiveClientMessages": {
                "action": "receive",
                "channel": {"$ref": "#/channels/live"},
                "summary": "What a client sends; each gets a reply or an Error with its request_id.",
                "messages": received,
            }
        },
        "components": {"messages": messages, "schemas": schemas}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_point_updates_are_the_pointupdates_message() {
        let update = |point_id| PointUpdate {
            point_id,
            point_type: "input",
            device_id: Some(3),
            value: 21.5,
            has_value: true,
            timestamp: 1_000,
            ts_us: 1_000_000,
            time: rfc3339_us(1_000_000),
            quality: 192,
            quality_name: "good",
            snapshot: false,
        };
        let updates: Vec<PointUpdate> = (1..=2500).map(update).collect();
        let frames: Vec<_> = updates.iter().map(|u| ServerMessage::PointUpdate(u.clone()).frame()).collect();
        let packed = pack_point_updates(&frames);
        assert_eq!(packed.len(), 3, "1000 + 1000 + 500");
        let mut all = Vec::new();
        for (frame, chunk) in packed.iter().zip(updates.chunks(MAX_BATCH_UPDATES)) {
            let direct = ServerMessage::PointUpdates(PointUpdates { updates: chunk.to_vec() }).frame();
            let mut direct: Value = serde_json::from_str(direct.as_str()).unwrap();
            // Each packed update keeps its own `type`; otherwise the two encodings are equal.
            let got: Value = serde_json::from_str(frame.as_str()).unwrap();
            for (u, g) in direct["updates"].as_array_mut().unwrap().iter_mut().zip(got["updates"].as_array().unwrap()) {
                u["type"] = "PointUpdate".into();
                assert_eq!(u, g);
            }
            assert_eq!(got["type"], "PointUpdates");
            all.extend(got["updates"].as_array().unwrap().iter().map(|u| u["point_id"].as_u64().unwrap()));
        }
        assert_eq!(all, (1..=2500).collect::<Vec<u64>>());
        assert!(pack_point_updates(&[]).is_empty());
    }

    #[test]
    fn client_messages_parse_and_refuse_with_their_request_id() {
        let (id, m) = parse_client(r#"{"type":"Subscribe","request_id":"a","points":[1,2],"alarms":true}"#).unwrap();
        assert_eq!(id, Value::from("a"));
        let ClientMessage::Subscribe(s) = m else { panic!() };
        assert_eq!(s.points, Some(IdsOrAll::Ids(vec![1, 2])));
        assert_eq!(s.alarms, Some(true));
        let (_, m) = parse_client(r#"{"type":"Unsubscribe","request_id":7,"points":"all"}"#).unwrap();
        assert_eq!(m, ClientMessage::Unsubscribe(Selection { points: Some(IdsOrAll::All), ..Default::default() }));
        let e = parse_client(r#"{"type":"Subscribe","request_id":3,"pionts":[1]}"#).unwrap_err();
        assert_eq!((e.request_id, e.code), (Value::from(3), "invalid_message"));
        assert!(e.message.contains("pionts"), "{}", e.message);
        let e = parse_client(r#"{"type":"Subscribe","request_id":3,"points":"some"}"#).unwrap_err();
        assert!(e.message.contains("points"), "{}", e.message);
        let e = parse_client(r#"{"type":"Dance","request_id":"x"}"#).unwrap_err();
        assert_eq!((e.request_id, e.code), (Value::from("x"), "unknown_type"));
        assert_eq!(parse_client("{nope").unwrap_err().code, "invalid_json");
        assert_eq!(parse_client("[1]").unwrap_err().code, "invalid_message");
        let e = parse_client(r#"{"type":"Subscribe","max_rate_hz":0}"#).unwrap_err();
        assert!(e.message.contains("max_rate_hz"), "{}", e.message);
        let (_, m) = parse_client(r#"{"type":"WriteValue","request_id":1,"point_id":5,"value":2.5}"#).unwrap();
        assert!(matches!(m, ClientMessage::WriteValue(WriteValue { point_id: 5, .. })));
        assert_eq!(parse_client(r#"{"type":"Ping"}"#).unwrap(), (Value::Null, ClientMessage::Ping));
        let e = parse_client(r#"{"type":"Unsubscribe","batch":true}"#).unwrap_err();
        assert!(e.message.contains("batch"), "{}", e.message);
    }

    #[test]
    fn server_messages_are_tagged_and_the_schema_resolves() {
        let m = ServerMessage::Lagged(Lagged { missed: 3 });
        assert_eq!(serde_json::to_value(&m).unwrap(), serde_json::json!({"type": "Lagged", "missed": 3}));
        let doc = schema_document();
        let text = doc.to_string();
        assert!(!text.contains("#/components/"), "{text}");
        for def in ["PointUpdate", "ServerMessage", "Selection", "SystemStatus", "AlarmNotification"] {
            assert!(doc["$defs"][def].is_object(), "{def} missing: {text}");
        }
        // The schema's server messages are exactly SERVER_KINDS.
        let mut tags: Vec<String> =
            doc["$defs"]["ServerMessage"]["oneOf"].as_array().unwrap().iter().filter_map(type_tag).collect();
        tags.sort();
        let mut kinds: Vec<String> = SERVER_KINDS.iter().map(|k| k.to_string()).collect();
        kinds.sort();
        assert_eq!(tags, kinds, "{text}");
    }

    /// The `type` a tagged schema fixes (utoipa writes `enum: [Kind]` inside the variant).
    fn type_tag(v: &Value) -> Option<String> {
        if let Some(t) = v["properties"]["type"]["enum"][0].as_str() {
            return Some(t.to_owned());
        }
        v.as_object()?.values().find_map(|x| match x {
            Value::Array(a) => a.iter().find_map(type_tag),
            Value::Object(_) => type_tag(x),
            _ => None,
        })
    }

    #[test]
    fn the_asyncapi_document_names_every_message_and_its_references_resolve() {
        let doc = asyncapi_document("127.0.0.1:9103");
        assert_eq!(doc["asyncapi"], "3.0.0");
        let names: Vec<&str> =
            doc["channels"]["live"]["messages"].as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), SERVER_KINDS.len() + CLIENT_KINDS.len(), "{names:?}");
        // Every $ref points at something in the document.
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 40, "{all:?}");
        for r in all {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("not local: {r}"));
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        let point = &doc["components"]["schemas"]["PointUpdate"]["properties"];
        assert_eq!(point["timestamp"]["type"], "integer", "{point}");
        assert_eq!(point["quality"]["type"], "integer", "{point}");
    }
}
