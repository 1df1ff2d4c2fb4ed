//! What a profile point is to the people who run a building, and what a write to it may carry.
//!
//! # Classes
//! Every point is one of three [`PointClass`]es:
//! - **measurement**: what the device measures or reports (temperatures, humidity, CO2, inputs,
//!   states, counters, loop outputs it computes);
//! - **setpoint / command**: what an operator sets (setpoints, outputs, variables, occupied and
//!   unoccupied setpoints, manual values, fan speed and heat / cool mode, auto / manual);
//! - **configuration**: how the device is set up (its Modbus address, baud rate and network, factory
//!   defaults and resets, calibration, input and output ranges and types, filters, PID tuning,
//!   output tables, names, schedules stored in the device, serial number and firmware).
//!
//! A T3 controller's inputs are measurements, its outputs and variables setpoints / commands. A
//! register of Temco's library is classified from its row ([`register_class`]): a read-only one
//! (`operation` 03) is a measurement unless its name makes it the device's identity (serial number,
//! firmware, model, address, baud rate); a writable one by the words of its `register_name` and the
//! first sentence of its `description` (later sentences often say what a write does). Temco marks
//! most registers writable (`03_06`) whatever they hold, so writability alone says little; a
//! writable register that nothing identifies is configuration (the safe side: only admins write it).
//!
//! # Write spans
//! [`write_span`]: the values a write may carry as the profile says: what the register's format
//! holds ([`Codec::span`]: a `u16` 0 ..= 65535), 0 / 1 for a coil, and for a library register the
//! range its description states ("range: 0 to 3000", "a number from 0-1000"). The server narrows it
//! further with the range code the device reports ([`t3_core::range::t3_span`]).

use serde::{Deserialize, Serialize};
use t3_core::range::Span;

use crate::profile::{PointType, ProfilePoint};

/// What a point is to the people who run the building.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointClass {
    /// What the device measures or reports.
    Measurement,
    /// A setpoint or command: what an operator sets.
    Setpoint,
    /// How the device is set up; only admins write it.
    Configuration,
}

impl PointClass {
    /// In the order people look at them.
    pub const ALL: [PointClass; 3] = [PointClass::Measurement, PointClass::Setpoint, PointClass::Configuration];

    /// `measurement`, `setpoint`, `configuration` (as the API spells it).
    pub fn as_str(self) -> &'static str {
        match self {
            PointClass::Measurement => "measurement",
            PointClass::Setpoint => "setpoint",
            PointClass::Configuration => "configuration",
        }
    }

    /// The class `s` names (ASCII case ignored).
    pub fn parse(s: &str) -> Option<PointClass> {
        PointClass::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for PointClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of a profile point (see the module documentation).
pub fn classify(p: &ProfilePoint) -> PointClass {
    match p.point_type {
        PointType::Input => PointClass::Measurement,
        PointType::Output | PointType::Variable => PointClass::Setpoint,
        PointType::Register => register_class(&p.name, &p.description, p.writable),
    }
}

/// Name words of a read-only register that is the device's identity or set-up (serial number,
/// firmware, model, address, baud rate, network).
const IDENTITY: &[&str] = &[
    "SERIALNUMBER",
    "SERIAL",
    "FIRMWARE",
    "VERSION",
    "VER",
    "REV",
    "HARDWARE",
    "PRODUCT",
    "MODEL",
    "BAUDRATE",
    "BAUD",
    "ADDRESS",
    "PROTOCOL",
    "EEPROM",
    "MAC",
    "PORT",
    "INSTANCE",
    "PIC",
    "ISP",
];

/// Name words of a setpoint.
const SETPOINT: &[&str] = &["SETPOINT", "SP", "NIGHTSET", "SETP"];

/// Name words that make a setpoint's register a limit or a setting of setpoints (configuration).
const NOT_A_SETPOINT: &[&str] =
    &["MAX", "MIN", "DEFAULT", "POWERUP", "INCREASE", "UNLIMIT", "LIMIT", "DEADBAND", "DB", "STEP", "INCREMENT"];

/// Description phrases of a configuration register.
const CONFIG_PHRASES: &[&str] = &[
    "table",
    "calibration",
    "calibrate ",
    "calibrate,",
    "factory",
    "firmware",
    "dead band",
    "deadband",
    "default is",
    "default:",
    "default value",
    "as default",
    "select",
    "unit",
];

/// Name words of a configuration register.
const CONFIG: &[&str] = &[
    "ADDRESS",
    "ADDR",
    "ADJ",
    "BACKLIGHT",
    "BACNET",
    "BAND",
    "BAUD",
    "BAUDRATE",
    "BKCAL",
    "BUS",
    "CAL",
    "CALI",
    "CALIBRATE",
    "CALIBRATION",
    "CHAR",
    "CLEAR",
    "COM",
    "CONFIG",
    "CONFIGURE",
    "DATE",
    "DB",
    "DEAD",
    "DEADBAND",
    "DEADMASTER",
    "DEFAULT",
    "DEFAULTS",
    "DELAY",
    "DI",
    "DISPLAY",
    "DTERM",
    "DYNDNS",
    "EEPROM",
    "EN",
    "ENABLE",
    "FACTORY",
    "FILTER",
    "FIRMWARE",
    "FLASH",
    "FUNCTION",
    "GAIN",
    "GATEWAY",
    "GETWAY",
    "HARDWARE",
    "HYSTERESIS",
    "ICON",
    "ID",
    "INCREASE",
    "INCREMENT",
    "INSTANCE",
    "INTERLOCK",
    "IP",
    "ITERM",
    "JUMP",
    "KEYPAD",
    "LCD",
    "LIMIT",
    "LOCK",
    "LOGIN",
    "MAC",
    "MAX",
    "MIN",
    "MODE",
    "MODEL",
    "MSTP",
    "NAME",
    "NETWORK",
    "OFFSET",
    "PANEL",
    "PASSWORD",
    "PERIOD",
    "PID",
    "PORT",
    "POWERUP",
    "PRODUCT",
    "PROTECT",
    "PROTOCOL",
    "PTERM",
    "PWM",
    "RANGE",
    "RELINQUISH",
    "RESET",
    "RTC",
    "SCALE",
    "SCHEDULE",
    "SELECT",
    "SENSETIVITY",
    "SENSITIVITY",
    "SEQUENCE",
    "SERIAL",
    "SERIALNUMBER",
    "SETTING",
    "SHAPE",
    "SHOW",
    "SIGN",
    "SPAN",
    "SSID",
    "STAGE",
    "STATION",
    "STEP",
    "SUBNET",
    "SYNC",
    "TABLE",
    "TCP",
    "THRESHOLD",
    "TIME",
    "TIMER",
    "TRAVEL",
    "TYPE",
    "UART",
    "UNIT",
    "UNITS",
    "UNLIMIT",
    "UPDATE",
    "USERNAME",
    "VERSION",
    "WIFI",
    "ZERO",
    "ZIGBEE",
];

/// Name words of a state the device reports even where the register takes writes.
const STATE: &[&str] = &["STATUS", "SWITCH", "SWICH"];

/// Name words of a command.
const COMMAND: &[&str] = &[
    "AM",
    "AO",
    "CMD",
    "COMMAND",
    "COOL",
    "DAMPER",
    "DO",
    "FAN",
    "HEAT",
    "MANU",
    "MANUAL",
    "OCCUPANCY",
    "OCCUPIED",
    "OFF",
    "ON",
    "OUT",
    "OUTPUT",
    "OVERRIDE",
    "RELAY",
    "SPEED",
    "UNOCCUPIED",
    "VALVE",
    "VAR",
    "VARIABLE",
];

/// Name words of a measurement.
const MEASUREMENT: &[&str] = &[
    "AI",
    "ANALOG",
    "CO2",
    "COUNT",
    "COUNTER",
    "CURRENT",
    "DEW",
    "ENERGY",
    "ENTHALPY",
    "FLOW",
    "FREQUENCY",
    "HUM",
    "HUMIDITY",
    "INPUT",
    "KWH",
    "LIGHT",
    "LUX",
    "NOISE",
    "PM",
    "PM10",
    "PM25",
    "POWER",
    "PRESSURE",
    "PULSE",
    "READING",
    "RPM",
    "SENSOR",
    "TEMP",
    "TEMPERATURE",
    "TEMPRATURE",
    "THERMISTOR",
    "TVOC",
    "VALUE",
    "VOC",
    "VOLTAGE",
];

/// The words of a register name: `MODBUS_AI_CHANNLE0_HI` -> `AI`, `CHANNLE0`, `CHANNLE`, `HI`
/// (upper case, without the `MODBUS_` prefix; a word with digits at an end also without them).
fn words(name: &str) -> Vec<String> {
    let upper = name.trim().to_ascii_uppercase();
    let upper = upper.strip_prefix("MODBUS_").unwrap_or(&upper);
    let mut out = Vec::new();
    for w in upper.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        out.push(w.to_owned());
        let bare = w.trim_matches(|c: char| c.is_ascii_digit());
        if !bare.is_empty() && bare != w {
            out.push(bare.to_owned());
        }
    }
    out
}

/// The class of a row of Temco's register library: its `register_name`, `description` and whether
/// its `operation` writes (see the module documentation for the order of the rules).
pub fn register_class(name: &str, description: &str, writable: bool) -> PointClass {
    let words = words(name);
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    let upper = name.to_ascii_uppercase();
    let d = description.to_lowercase();
    let says = |phrases: &[&str]| phrases.iter().any(|p| d.contains(p));
    if !writable {
        return if has(IDENTITY) || d.contains("read-only register that is used by the microcontroller") {
            PointClass::Configuration
        } else {
            PointClass::Measurement
        };
    }
    // Whether a point is analog or digital, and bit fields ("bit0: ..., bit1: ..."), set a device up.
    if upper.contains("DIGITAL_ANALOG")
        || upper.contains("ANALOG_DIGITAL")
        || says(&["analog or digital", "digital or analog", "digital and analog", "bit0", "bit 0"])
    {
        return PointClass::Configuration;
    }
    if has(SETPOINT) && !has(NOT_A_SETPOINT) {
        return PointClass::Setpoint;
    }
    // The heating / cooling mode a user picks (not the one set at power-up).
    let heat_cool_mode = (words.iter().any(|w| w == "MODE") && has(&["COOL", "HEAT"]))
        || upper.contains("HEAT_COOL")
        || upper.contains("COOL_HEAT");
    if heat_cool_mode && !has(&["POWERUP", "DEFAULT", "CONFIG"]) {
        return PointClass::Setpoint;
    }
    // The first sentence says what a register is; later ones often say what writing it does
    // ("Writing a temperature value to this register will calibrate ...").
    let first = d.split(". ").next().unwrap_or("");
    if CONFIG_PHRASES.iter().any(|p| first.contains(p)) || has(CONFIG) {
        return PointClass::Configuration;
    }
    if has(STATE) {
        return PointClass::Measurement;
    }
    if has(COMMAND) {
        return PointClass::Setpoint;
    }
    if has(MEASUREMENT) {
        return PointClass::Measurement;
    }
    if says(&["occupied", "setpoint"]) {
        return PointClass::Setpoint;
    }
    if says(&["temperature", "humidity", "co2", "reading"]) {
        return PointClass::Measurement;
    }
    PointClass::Configuration
}

/// The values a write to `p` may carry as its profile says (see the module documentation); `None`
/// when nothing bounds them (floats, text).
pub fn write_span(p: &ProfilePoint) -> Option<Span> {
    // A plugin point takes what its plugin says: 0/1 digital, its states, its min and max.
    if let Some(pp) = &p.plugin {
        return match pp.kind {
            crate::plugin::PointKind::Digital => Span::new(0.0, 1.0),
            crate::plugin::PointKind::Multistate if !pp.states.is_empty() => Span::new(1.0, pp.states.len() as f64),
            _ => Span::new(pp.min?, pp.max?),
        };
    }
    let format = p.codec.span().and_then(|(min, max)| Span::new(min, max));
    if p.point_type != PointType::Register {
        return format;
    }
    Span::both(format, stated_span(&p.description))
}

/// A number at the start of `s` (`12`, `0.5`, `-3`): its value and the rest of `s`.
fn number(s: &str) -> Option<(f64, &str)> {
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let sign = usize::from(s.starts_with('-'));
    let int = digits(&s[sign..]);
    if int == 0 {
        return None;
    }
    let mut end = sign + int;
    if s[end..].starts_with('.') {
        let frac = digits(&s[end + 1..]);
        if frac > 0 {
            end += 1 + frac;
        }
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// The span a library description states: "range: 0 to 3000", "Range:0~3800", "range 11-26",
/// "range0 to 12", "a number from 0-1000". A span followed by `=` maps a range to another ("0-1000 =
/// 0-100 µg/m³") and is no limit.
pub fn stated_span(description: &str) -> Option<Span> {
    let d = description.to_lowercase();
    for key in ["range", "from"] {
        for (at, _) in d.match_indices(key) {
            let rest = d[at + key.len()..].trim_start_matches([' ', ':']);
            let Some((lo, rest)) = number(rest) else { continue };
            let rest = rest.trim_start();
            let Some(rest) = ["to", "~", "--", "-"].iter().find_map(|sep| rest.strip_prefix(sep)) else { continue };
            let Some((hi, rest)) = number(rest.trim_start()) else { continue };
            if rest.trim_start().starts_with('=') {
                continue;
            }
            if let Some(span) = Span::new(lo, hi).filter(|s| s.min < s.max) {
                return Some(span);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileLibrary;
    use std::collections::BTreeMap;

    /// Points per class of a profile.
    fn counts(profile: &str) -> BTreeMap<PointClass, usize> {
        let p = ProfileLibrary::builtin().get(profile).unwrap_or_else(|| panic!("{profile}"));
        let mut out = BTreeMap::new();
        for pt in &p.points {
            *out.entry(pt.class()).or_default() += 1;
        }
        out
    }

    fn class_of(profile: &str, point: &str) -> PointClass {
        let p = ProfileLibrary::builtin().get(profile).unwrap();
        p.point(point).unwrap_or_else(|| panic!("{profile} has no {point}")).class()
    }

    use PointClass::*;

    /// Over the whole bundled register library (the real CSV): the counts per class are pinned, so
    /// a change of the rules shows what it moves.
    #[test]
    fn classes_over_the_register_library() {
        let want: &[(&str, [usize; 3])] = &[
            // [measurement, setpoint / command, configuration]
            ("T3-controller", [64, 192, 0]),
            ("TSTAT8", [45, 38, 395]),
            ("T3BB", [181, 472, 860]),
            ("T38I8O6DO", [44, 36, 111]),
            ("CO2", [13, 2, 73]),
            ("HUM", [12, 0, 60]),
            ("Pressure", [2, 0, 52]),
            ("BTU Meter", [7, 2, 14]),
        ];
        for (profile, [m, s, c]) in want {
            let got = counts(profile);
            let n = |k| got.get(&k).copied().unwrap_or(0);
            assert_eq!([n(Measurement), n(Setpoint), n(Configuration)], [*m, *s, *c], "{profile}");
        }
        // The count: 412 of a TSTAT8's 461 numeric points take writes; by class.
        let tstat = ProfileLibrary::builtin().get("TSTAT8").unwrap();
        let writable: Vec<PointClass> =
            tstat.numeric_points().filter(|p| p.writable).map(ProfilePoint::class).collect();
        let n = |k| writable.iter().filter(|c| **c == k).count();
        assert_eq!((writable.len(), [n(Measurement), n(Setpoint), n(Configuration)]), (412, [13, 38, 361]));
    }

    #[test]
    fn tstat8_registers() {
        let t = |n| class_of("TSTAT8", n);
        // The registers of the issue: its Modbus address and factory defaults are configuration.
        for name in [
            "MODBUS_ADDRESS",
            "MODBUS_FACTORY_DEFAULTS",
            "MODBUS_UPDATE_STATUS",
            "MODBUS_BAUDRATE",
            "MODBUS_PROTOCOL",
            "MODBUS_SERIALNUMBER",
            "MODBUS_VERSION_NUMBER_LO",
            "MODBUS_PRODUCT_MODEL",
            "MODBUS_CALIBRATION_TERM",
            "MODBUS_CALIBRATION_ANALOG1",
            "MODBUS_ANALOG1_RANGE",
            "MODBUS_FILTER",
            "MODBUS_UNIVERSAL_PTERM",
            "MODBUS_DTERM",
            "MODBUS_MAX_SETPOINT",
            "MODBUS_MIN_SETPOINT",
            "MODBUS_DAY_COOLING_DEADBAND",
            "MODBUS_VALVE_OPER_TABLE_COOL1",
            "MODBUS_UNIVERSAL_OUTPUT_COOL1",
            "MODBUS_OUTPUT1_DELAY_OFF_TO_ON",
            "MODBUS_TSTAT_NAME",
            "MODBUS_CLEAR_EEPROM",
            "MODBUS_SOFTWARE_RESET",
            "MODBUS_WIFI_PASSWORD",
            "SCHEDULE_MONDAY_EVENT",
        ] {
            assert_eq!(t(name), Configuration, "{name}");
        }
        for name in [
            "MODBUS_DAY_SETPOINT",
            "MODBUS_DAY_COOLING_SETPOINT",
            "MODBUS_NIGHT_HEATING_SETPOINT",
            "MODBUS_UNIVERSAL_SET",
            "MODBUS_UNIVERSAL_NIGHTSET",
            "MODBUS_SLEEP_SP",
            "MODBUS_PID3_DAY_SP",
            "MODBUS_COOL_HEAT_MODE",
            "MODBUS_HEAT_COOL",
            "MODBUS_INFO_BYTE",
            "MODBUS_FAN_SPEED",
            "MODBUS_COOLING_VALVE",
            "MODBUS_HEATING_VALVE",
            "MODBUS_MANUAL_AO1",
        ] {
            assert_eq!(t(name), Setpoint, "{name}");
        }
        for name in [
            "MODBUS_TEMPRATURE_CHIP",
            "MODBUS_INTERNAL_THERMISTOR",
            "MODBUS_ANALOG_INPUT1",
            "MODBUS_EXTERNAL_SENSOR1",
            "MODBUS_EXTERNAL_SENSOR2",
            "MODBUS_MODE_OPERATION",
            "MODBUS_VALVE_PERCENT",
            "MODBUS_COOLING_PID",
            "MODBUS_LIGHT_SENSOR",
            "MODBUS_DELTA_TEMPERATURE",
        ] {
            assert_eq!(t(name), Measurement, "{name}");
        }
    }

    #[test]
    fn t3_controllers() {
        assert_eq!(class_of("T3-controller", "IN1"), Measurement);
        assert_eq!(class_of("T3-controller", "OUT1"), Setpoint);
        assert_eq!(class_of("T3-controller", "VAR128"), Setpoint);
        // The library's T3BB: its IN / OUT / VAR blocks and their set-up registers.
        let t = |n| class_of("T3BB", n);
        assert_eq!(t("MODBUS_INPUT_VALUE_1"), Measurement);
        assert_eq!(t("MODBUS_OUTPUT_VALUE_1"), Setpoint);
        assert_eq!(t("MODBUS_VAR_VALUE_1"), Setpoint);
        assert_eq!(t("MODBUS_OUTPUT_AM_1"), Setpoint);
        assert_eq!(t("MODBUS_OUTPUT_SWICH_1"), Measurement);
        for name in [
            "MODBUS_ADDRESS",
            "MODBUS_INPUT_RANGE_1",
            "MODBUS_OUTPUT_RANGE_1",
            "MODBUS_INPUT_FILTER_1",
            "MODBUS_INPUT_CALIBRATION_1",
            "MODBUS_VAR_DIGITAL_ANALOG1",
            "MODBUS_OUTPUT_TYPE_1",
            "MODBUS_RESET",
            "MODBUS_IP_1",
            "MODBUS_UART1_BAUDRATE",
        ] {
            assert_eq!(t(name), Configuration, "{name}");
        }
    }

    #[test]
    fn rules_on_made_up_rows() {
        assert_eq!(register_class("MODBUS_ROOM_TEMP", "", false), Measurement);
        assert_eq!(register_class("MODBUS_FIRMWARE_VER", "", false), Configuration);
        assert_eq!(register_class("MODBUS_THING", "", true), Configuration, "unknown writable: admin only");
        assert_eq!(register_class("MODBUS_THING", "", false), Measurement);
        assert_eq!(register_class("MODBUS_THING", "occupied setpoint", true), Setpoint);
        assert_eq!(register_class("MODBUS_HUM_SP", "bit0: on", true), Configuration, "a bit field");
        assert_eq!(PointClass::parse(" Setpoint "), Some(Setpoint));
        assert_eq!(PointClass::parse("nope"), None);
        assert_eq!(serde_json::to_value(Configuration).unwrap(), "configuration");
    }

    #[test]
    fn stated_spans() {
        let s = |d| stated_span(d).map(|s| (s.min, s.max));
        assert_eq!(s("CO2 sensor manual input value, range: 0 to 3000"), Some((0.0, 3000.0)));
        assert_eq!(s("when calibrate,need to set R139=11 and R140=22.Range:0~3800"), Some((0.0, 3800.0)));
        assert_eq!(s("Channel of Zigbee, default channel is channel 13, range 11-26"), Some((11.0, 26.0)));
        assert_eq!(s("LCD screen1, select which information will display on LCD, range0 to 12"), Some((0.0, 12.0)));
        assert_eq!(s("Output6, Analog output1, a number from 0-1000 representing 0% (closed)"), Some((0.0, 1000.0)));
        assert_eq!(s("PM10  Output range :  0--1000 = 0-100μg/m3  , 0-10000 = 0-1000μg/m3"), None);
        assert_eq!(s("ANALOG INPUT1 RANGE. 0 = raw data, 1 = thermistor"), None);
        assert_eq!(s("Temperature, -40 to 120"), None);
        assert_eq!(s(""), None);
    }

    #[test]
    fn write_spans_of_real_points() {
        let lib = ProfileLibrary::builtin();
        let span = |profile: &str, point: &str| {
            write_span(lib.get(profile).unwrap().point(point).unwrap()).map(|s| (s.min, s.max))
        };
        assert_eq!(span("TSTAT8", "MODBUS_ADDRESS"), Some((0.0, 255.0)), "u8");
        assert_eq!(span("TSTAT8", "MODBUS_FILTER"), Some((0.0, 65535.0)), "u16");
        assert_eq!(span("TSTAT8", "MODBUS_DAY_SETPOINT"), Some((-3276.8, 3276.7)), "i16 /10");
        assert_eq!(span("TSTAT8", "MODBUS_COOLING_VALVE"), Some((0.0, 1000.0)), "stated");
        assert_eq!(span("TSTAT8", "MODBUS_CO2_INPUT_VALUE"), Some((0.0, 3000.0)), "stated");
        assert_eq!(span("T3-controller", "OUT1"), Some((-2_147_483.648, 2_147_483.647)));
    }
}
