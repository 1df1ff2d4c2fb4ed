//! Alarm rules, their transitions and their present state.

use serde::{Deserialize, Serialize};
use t3_core::alarm::{AlarmRule, Level, Transition};

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
    /// The rule's id; 0 is the storage alarm, 4294967290 ..= 4294967295 the system alarms
    /// ([`SystemAlarm`]), from 2147483648 up the alarms of programs' ALARM / DALARM statements
    /// ([`program_alarm_id`]).
    pub rule_id: i64,
    pub name: String,
    pub point_id: Option<u32>,
    pub device_id: Option<i64>,
    pub message: Option<String>,
    /// `at_us`, `from`, `to` (`normal`, `active`, `acknowledged`, `cleared`), `level`, `value`,
    /// `kind` (`raised`, `level_changed`, `acknowledged` with `by`, `cleared`, `normal`). The
    /// system alarms that gather several faults (devices offline, program in error, plugin
    /// refused) are `raised` again by a new fault while they are on (`from` `active` or
    /// `acknowledged`), and `cleared` with `to` still `active` or `acknowledged` when one fault
    /// ends while others remain; the message names what is new or what ended.
    #[schema(value_type = Object)]
    pub transition: Transition,
}

/// The present state of a rule's alarm.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlarmView {
    /// The rule's id. Built-in alarms: 0 the storage alarm (quarantined data files); the server's
    /// own faults -1 disk space low, -2 disk floor reached (writes refused), -3 write-ahead log
    /// refusing writes, -4 plugin refused, -5 devices offline (not watched by a rule), -6 program
    /// in error. They are listed only while not `normal`. The ALARM / DALARM statements of
    /// programs raise alarms with ids from 2147483648 up (2147483648 + program id x 65536 + line
    /// number), listed while not `normal` too.
    pub rule_id: i64,
    pub name: String,
    pub point_id: Option<u32>,
    pub device_id: Option<i64>,
    pub message: Option<String>,
    /// `normal`, `active`, `acknowledged` or `cleared` (gone, not yet acknowledged).
    pub state: String,
    /// `waylow`, `low`, `high`, `wayhigh`, `state`, `offline`; the built-in alarms also
    /// `data_loss`, `warning` (severity 1) and `fault` (severity 2).
    pub level: Option<String>,
    /// Since when it is in this state (epoch microseconds): after an acknowledgement, the time of
    /// the acknowledgement; when the alarm started is `started_us`.
    pub since_us: Option<i64>,
    /// When the present alarm was raised (epoch microseconds), kept through its acknowledgement,
    /// level changes, clearing and new faults of a system alarm that gathers several; `null` when
    /// the state is `normal`.
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
/// The storage alarm's name.
pub const STORAGE_ALARM_NAME: &str = "Storage: data files quarantined";

/// The built-in alarms on the server's own faults, each with a reserved rule id. They
/// are raised and cleared by the server ([`crate::service::alarms::AlarmService::set_system`]),
/// stored in the alarm history, published and acknowledged like the alarms of rules, and listed
/// while they are not normal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SystemAlarm {
    /// Rule id 4294967295, level `warning`: the data directory's free space is below the alarm threshold
    /// (`storage.disk_alarm_free_mb` / `disk_alarm_free_percent`).
    DiskLow,
    /// Rule id 4294967294, level `fault`: free space is below the floor (`storage.disk_floor_free_mb`);
    /// writes of samples are refused with 503 until space returns.
    DiskFloor,
    /// Rule id 4294967293, level `fault`: the write-ahead log refuses writes (it cannot create a segment,
    /// or an I/O failure poisoned it until restart).
    WalRefusing,
    /// Rule id 4294967292, level `warning`: a file in a plugin folder was refused (wrong ABI, not a
    /// plugin, a duplicate protocol).
    PluginRefused,
    /// Rule id 4294967291, level `offline`: devices polled by the server do not answer, and no enabled
    /// `device_offline` rule watches them (those raise their own alarm).
    DevicesOffline,
    /// Rule id 4294967290, level `fault`: a control program is in error (raised by the program runner).
    ProgramError,
}

impl SystemAlarm {
    /// Every system alarm.
    pub const ALL: [SystemAlarm; 6] = [
        SystemAlarm::DiskLow,
        SystemAlarm::DiskFloor,
        SystemAlarm::WalRefusing,
        SystemAlarm::PluginRefused,
        SystemAlarm::DevicesOffline,
        SystemAlarm::ProgramError,
    ];

    /// Its reserved rule id: the top of the 32-bit range, 4294967295 (disk low) down to
    /// 4294967290 (program in error), so that it fits the `alarm_id: u32` of the plan's WebSocket
    /// messages and never meets a rule's id (the catalog numbers rules from 1).
    pub fn rule_id(self) -> i64 {
        let n = match self {
            SystemAlarm::DiskLow => 0,
            SystemAlarm::DiskFloor => 1,
            SystemAlarm::WalRefusing => 2,
            SystemAlarm::PluginRefused => 3,
            SystemAlarm::DevicesOffline => 4,
            SystemAlarm::ProgramError => 5,
        };
        i64::from(u32::MAX) - n
    }

    /// Whether `id` is a system alarm's.
    pub fn is_system(id: i64) -> bool {
        SystemAlarm::from_rule_id(id).is_some()
    }

    /// The system alarm with this rule id.
    pub fn from_rule_id(id: i64) -> Option<SystemAlarm> {
        SystemAlarm::ALL.into_iter().find(|a| a.rule_id() == id)
    }

    /// The name shown in the alarm list.
    pub fn name(self) -> &'static str {
        match self {
            SystemAlarm::DiskLow => "System: disk space low",
            SystemAlarm::DiskFloor => "System: disk floor reached, writes refused",
            SystemAlarm::WalRefusing => "System: write-ahead log refuses writes",
            SystemAlarm::PluginRefused => "System: plugin refused",
            SystemAlarm::DevicesOffline => "System: devices offline",
            SystemAlarm::ProgramError => "System: program in error",
        }
    }

    /// Whether it gathers several faults of its kind in one alarm (every device that does not
    /// answer, every program in error, every plugin file refused): a new one raises it again,
    /// one that ends while others remain is published as `cleared` with the alarm still on.
    pub fn gathers(self) -> bool {
        matches!(self, SystemAlarm::PluginRefused | SystemAlarm::DevicesOffline | SystemAlarm::ProgramError)
    }

    /// The message of its transition when its fault ended (cleared, or normal once acknowledged):
    /// what is right again, never the fault's text.
    pub fn ended(self) -> &'static str {
        match self {
            SystemAlarm::DiskLow => "free space is back above the alarm threshold",
            SystemAlarm::DiskFloor => "free space is back above the floor; writes resume",
            SystemAlarm::WalRefusing => "the write-ahead log takes writes again",
            SystemAlarm::PluginRefused => "no plugin file is refused any more",
            SystemAlarm::DevicesOffline => "every device answers again",
            SystemAlarm::ProgramError => "no program is in error any more",
        }
    }

    /// Its level: `warning` (severity 1) for what needs attention soon, `fault` or `offline`
    /// (severity 2) for what stops part of the server's work now.
    pub fn level(self) -> Level {
        match self {
            SystemAlarm::DiskLow | SystemAlarm::PluginRefused => Level::Warning,
            SystemAlarm::DiskFloor | SystemAlarm::WalRefusing | SystemAlarm::ProgramError => Level::Fault,
            SystemAlarm::DevicesOffline => Level::Offline,
        }
    }
}

/// The first rule id of the alarms that programs' `ALARM` and `DALARM` statements raise
/// ([`program_alarm_id`]): above every rule's id (the catalog numbers rules from 1), below the
/// system alarms'.
pub const PROGRAM_ALARMS: i64 = 1 << 31;

/// The highest program id whose statements get alarm ids of their own (the next would meet the
/// system alarms' ids).
pub const MAX_PROGRAM_ALARM_PROGRAM: i64 = 32_766;

/// The rule id of the alarm that the `ALARM` or `DALARM` statement on line `line_number` of
/// program `program_id` raises: 2147483648 + program id x 65536 + line number, so it stays the same
/// across edits and restarts and fits the `alarm_id: u32` of the WebSocket's messages. None for a
/// program id above [`MAX_PROGRAM_ALARM_PROGRAM`].
pub fn program_alarm_id(program_id: i64, line_number: u16) -> Option<i64> {
    (1..=MAX_PROGRAM_ALARM_PROGRAM)
        .contains(&program_id)
        .then(|| PROGRAM_ALARMS + program_id * 65_536 + i64::from(line_number))
}

/// The program and line of a program alarm's rule id.
pub fn program_of_alarm(id: i64) -> Option<(i64, u16)> {
    let off = id.checked_sub(PROGRAM_ALARMS)?;
    let program = off / 65_536;
    ((1..=MAX_PROGRAM_ALARM_PROGRAM).contains(&program) && off >= 0).then_some((program, (off % 65_536) as u16))
}

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
