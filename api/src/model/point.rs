//! What people add to a point: labels, units, retention, how its trend line is drawn.

use serde::{Deserialize, Serialize};

/// What people add to a point (stored, keyed by the point id).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PointRecord {
    #[serde(default)]
    pub id: i64,
    /// The device it belongs to; none for a manual point.
    pub device_id: Option<i64>,
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub units: Option<String>,
    /// Days of history kept for this point (retention), overriding `retention.max_age_days`.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// How charts draw the point, as someone chose it; none: [`TrendLine::default_for`] decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<TrendLine>,
    /// A T3 point's range (unit) code as the server has it configured (hardware sync, imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<u16>,
    /// A T3 point configured digital (true) or analog (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digital: Option<bool>,
    /// A T3 point configured in manual (true) or auto (false) at its controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<bool>,
}

/// How a chart draws a point between two of its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrendLine {
    /// The value holds until the next sample (a step at each sample): what a sample means for a
    /// point recorded on change, a command, a setpoint or a digital state.
    Step,
    /// A straight line from each sample to the next (a measurement sampled at every poll).
    Linear,
}

/// What a point's default trend line follows.
#[derive(Debug, Clone, Copy)]
pub struct LineFacts<'a> {
    /// `input`, `output`, `variable`, `register` or `manual`.
    pub point_type: &'a str,
    /// Whether the point takes writes (a library register that does is a setpoint, a command or a
    /// configuration value).
    pub writable: bool,
    /// A 0/1 point: the device says so, or a coil, discrete input or single bit.
    pub digital: bool,
    /// The collector records the point on change (a deadband and heartbeat), not at every poll.
    pub on_change: bool,
}

impl TrendLine {
    /// The line a point is drawn with when nobody chose one: `step` for digital points, outputs,
    /// variables (setpoints), writable registers, points recorded on change and manual points
    /// (their values are pushed, the server cannot tell how they were taken); `linear` only for a
    /// measurement (an input or read-only register) recorded at every poll, whose samples are
    /// readings of a value that moves between them. The one place this rule lives: the API
    /// serves its result, so every client draws the same.
    pub fn default_for(f: LineFacts<'_>) -> TrendLine {
        let commanded = matches!(f.point_type, "output" | "variable") || (f.point_type == "register" && f.writable);
        if f.digital || commanded || f.on_change || f.point_type == "manual" {
            TrendLine::Step
        } else {
            TrendLine::Linear
        }
    }
}

record!(PointRecord, "point");

/// What a point is to the people who run the building (`t3_drivers::classify`): what the device
/// measures, what an operator sets, or how the device is set up (admins only write those).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointClass {
    /// Temperatures, humidity, CO2, inputs, states, counters; manual points.
    Measurement,
    /// Setpoints and commands: outputs, variables, occupied / unoccupied setpoints, fan and
    /// heat / cool modes, manual values.
    Setpoint,
    /// The device's set-up: its address, communication, factory defaults, calibration, ranges,
    /// PID tuning, names. Writing one needs the admin role.
    Configuration,
}

impl From<t3_drivers::classify::PointClass> for PointClass {
    fn from(c: t3_drivers::classify::PointClass) -> Self {
        use t3_drivers::classify::PointClass as C;
        match c {
            C::Measurement => PointClass::Measurement,
            C::Setpoint => PointClass::Setpoint,
            C::Configuration => PointClass::Configuration,
        }
    }
}

/// The name a point goes by in exports and reports: its label if it has one, else
/// `<device> <point>` (`AHU-1 IN1`) for a device point, else its own name.
pub fn display_name(device: Option<&str>, name: &str, label: Option<&str>) -> String {
    match (label.map(str::trim).filter(|l| !l.is_empty()), device) {
        (Some(l), _) => l.to_owned(),
        (None, Some(d)) => format!("{d} {name}"),
        (None, None) => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{LineFacts, TrendLine, display_name};

    #[test]
    fn default_lines() {
        let f = |point_type, writable, digital, on_change| {
            TrendLine::default_for(LineFacts { point_type, writable, digital, on_change })
        };
        // A measurement read at every poll moves between its samples.
        assert_eq!(f("input", true, false, false), TrendLine::Linear);
        assert_eq!(f("register", false, false, false), TrendLine::Linear);
        // Everything whose sample holds until the next one.
        assert_eq!(f("input", true, false, true), TrendLine::Step, "recorded on change");
        assert_eq!(f("input", true, true, false), TrendLine::Step, "digital");
        assert_eq!(f("output", true, false, false), TrendLine::Step);
        assert_eq!(f("variable", true, false, false), TrendLine::Step);
        assert_eq!(f("register", true, false, false), TrendLine::Step, "a writable register: a setpoint");
        assert_eq!(f("manual", false, false, false), TrendLine::Step);
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name(Some("AHU-1"), "IN1", None), "AHU-1 IN1");
        assert_eq!(display_name(Some("AHU-1"), "IN1", Some("")), "AHU-1 IN1");
        assert_eq!(display_name(Some("AHU-1"), "IN1", Some("Supply air")), "Supply air");
        assert_eq!(display_name(None, "outdoor", None), "outdoor");
    }
}
