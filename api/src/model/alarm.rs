//! Alarm rules, their transitions and their present state.

use serde::{Deserialize, Serialize};
use t3_core::alarm::{AlarmRule, Transition};

/// An alarm rule (stored).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlarmRuleRecord {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    /// The point watched (limit and digital rules).
    pub point_id: Option<u32>,
    /// The device watched (`device_offline` rules), by catalog id.
    pub device_id: Option<i64>,
    /// `{"condition": {"kind": "limits", "waylow", "low", "high", "wayhigh", "deadband"} |
    /// {"kind": "digital", "alarm_when": true} | {"kind": "device_offline"}, "delay_secs", "message"}`
    #[schema(schema_with = alarm_rule_schema)]
    pub rule: AlarmRule,
    pub enabled: bool,
    pub updated_us: i64,
}

record!(AlarmRuleRecord, "alarm_rule");

/// One transition as stored and published.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlarmEvent {
    pub rule_id: i64,
    pub name: String,
    pub point_id: Option<u32>,
    pub device_id: Option<i64>,
    pub message: Option<String>,
    /// `at_us`, `from`, `to` (`normal`, `active`, `acknowledged`, `cleared`), `level`, `value`,
    /// `kind` (`raised`, `level_changed`, `acknowledged` with `by`, `cleared`, `normal`).
    #[schema(value_type = Object)]
    pub transition: Transition,
}

/// The present state of a rule's alarm.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlarmView {
    pub rule_id: i64,
    pub name: String,
    pub point_id: Option<u32>,
    pub device_id: Option<i64>,
    pub message: Option<String>,
    /// `normal`, `active`, `acknowledged` or `cleared` (gone, not yet acknowledged).
    pub state: String,
    /// `waylow`, `low`, `high`, `wayhigh`, `state`, `offline`.
    pub level: Option<String>,
    /// Since when it is in this state (epoch microseconds): after an acknowledgement, the time of
    /// the acknowledgement; when the alarm started is `started_us`.
    pub since_us: Option<i64>,
    /// When the present alarm was raised (epoch microseconds), kept through its acknowledgement,
    /// level changes and clearing; `null` when the state is `normal`.
    pub started_us: Option<i64>,
    /// When the present alarm was acknowledged (epoch microseconds); `null` unless it is
    /// `acknowledged`.
    pub acknowledged_us: Option<i64>,
    /// Who acknowledged the present alarm; `null` unless it is `acknowledged`.
    pub acknowledged_by: Option<String>,
}

/// The rule id of the built-in storage alarm: active while a data file that failed a check
/// (quarantined, its rows missing from answers) is not acknowledged. Acknowledging it acknowledges
/// every such file.
pub const STORAGE_ALARM: i64 = 0;

/// An alarm rule: [`t3_core::alarm::AlarmRule`]. The limits that are set must be in the order
/// `waylow <= low < high <= wayhigh`, which JSON Schema cannot say; the description does.
pub fn alarm_rule_schema() -> serde_json::Value {
    let limit = serde_json::json!({"type": ["number", "null"]});
    let set = |k: &str| serde_json::json!({"required": [k], "properties": {k: {"type": "number"}}});
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["condition"],
        "properties": {
            "condition": {
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["kind"],
                        "description": "Analog limits: at least one set, in the order waylow <= low < high <= wayhigh.",
                        "properties": {
                            "kind": {"const": "limits"},
                            "waylow": limit, "low": limit, "high": limit, "wayhigh": limit,
                            "deadband": {"type": "number", "minimum": 0},
                        },
                        "anyOf": [set("waylow"), set("low"), set("high"), set("wayhigh")],
                    },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["kind", "alarm_when"],
                        "properties": {"kind": {"const": "digital"}, "alarm_when": {"type": "boolean"}},
                    },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["kind"],
                        "properties": {"kind": {"const": "device_offline"}},
                    },
                ],
            },
            "delay_secs": {"type": "integer", "minimum": 0, "maximum": t3_core::alarm::MAX_DELAY_SECS},
            "message": {"type": ["string", "null"]},
        },
    })
}
