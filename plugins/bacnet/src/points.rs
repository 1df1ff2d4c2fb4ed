//! BACnet objects as t3000 points: which objects become points, their kind, class, JSON, and how
//! present values and status flags become sample values and qualities.

use crate::codec::enums::{object_type, object_type_name};
use crate::codec::tags::{ObjectId, Value};
use serde_json::{Value as Json, json};
use t3_plugin_abi::{
    QUALITY_BAD_DEVICE_FAILURE, QUALITY_BAD_OUT_OF_SERVICE, QUALITY_GOOD, QUALITY_GOOD_LOCAL_OVERRIDE,
};

/// A point's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Analog,
    Digital,
    Multistate,
}

impl Kind {
    /// The kind of an object type this plugin serves, or `None`.
    pub fn of(kind: u16) -> Option<Kind> {
        use object_type::*;
        match kind {
            ANALOG_INPUT | ANALOG_OUTPUT | ANALOG_VALUE => Some(Kind::Analog),
            BINARY_INPUT | BINARY_OUTPUT | BINARY_VALUE => Some(Kind::Digital),
            MULTI_STATE_INPUT | MULTI_STATE_OUTPUT | MULTI_STATE_VALUE => Some(Kind::Multistate),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Analog => "analog",
            Kind::Digital => "digital",
            Kind::Multistate => "multistate",
        }
    }

    /// The sample value of a present value of this kind: analog as the number, binary inactive
    /// 0 / active 1, multistate its state number.
    pub fn sample_value(self, v: &Value) -> Option<f64> {
        match (self, v) {
            (Kind::Analog, Value::Real(_) | Value::Double(_) | Value::Unsigned(_) | Value::Signed(_)) => v.as_f64(),
            (Kind::Digital, Value::Enumerated(e @ (0 | 1))) => Some(f64::from(*e)),
            (Kind::Digital, Value::Boolean(b)) => Some(f64::from(u8::from(*b))),
            (Kind::Multistate, Value::Unsigned(_)) => v.as_f64(),
            _ => None,
        }
    }

    /// The value WriteProperty carries for `value`, or a message why it cannot.
    pub fn write_value(self, value: f64) -> Result<Value, String> {
        match self {
            Kind::Analog if value.is_finite() && value.abs() <= f64::from(f32::MAX) => Ok(Value::Real(value as f32)),
            Kind::Analog => Err(format!("{value} is not a finite REAL")),
            Kind::Digital if value == 0.0 || value == 1.0 => Ok(Value::Enumerated(value as u32)),
            Kind::Digital => Err(format!("{value} is not 0 (inactive) or 1 (active)")),
            Kind::Multistate if value.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&value) => {
                Ok(Value::Unsigned(value as u64))
            }
            Kind::Multistate => Err(format!("{value} is not a state number (1, 2, ...)")),
        }
    }
}

/// A point's class from its object type.
pub fn class_of(kind: u16) -> &'static str {
    use object_type::*;
    match kind {
        ANALOG_INPUT | BINARY_INPUT | MULTI_STATE_INPUT => "input",
        ANALOG_OUTPUT | BINARY_OUTPUT | MULTI_STATE_OUTPUT => "output",
        _ => "variable",
    }
}

/// Whether the object type is an output (always commandable).
pub fn is_output(kind: u16) -> bool {
    class_of(kind) == "output"
}

/// The point's address: "analog-input,1" (a number for a proprietary type).
pub fn address(object: ObjectId) -> String {
    match object_type_name(object.kind) {
        Some(name) => format!("{name},{}", object.instance),
        None => format!("{},{}", object.kind, object.instance),
    }
}

/// The quality of status flags `[in-alarm, fault, overridden, out-of-service]`.
pub fn quality(flags: Option<&[bool]>) -> u8 {
    let flag = |i: usize| flags.and_then(|f| f.get(i)).copied().unwrap_or(false);
    if flag(1) {
        QUALITY_BAD_DEVICE_FAILURE
    } else if flag(3) {
        QUALITY_BAD_OUT_OF_SERVICE
    } else if flag(2) {
        QUALITY_GOOD_LOCAL_OVERRIDE
    } else {
        QUALITY_GOOD
    }
}

/// One point of the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub object: ObjectId,
    pub kind: Kind,
    pub name: String,
    pub description: Option<String>,
    pub units: Option<&'static str>,
    pub writable: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub states: Vec<String>,
}

impl Point {
    pub fn to_json(&self) -> Json {
        json!({
            "name": self.name,
            "description": self.description,
            "kind": self.kind.name(),
            "units": self.units,
            "writable": self.writable,
            "min": self.min,
            "max": self.max,
            "states": self.states,
            "address": address(self.object),
            "class": class_of(self.object.kind),
        })
    }
}

/// The longest point name the ABI allows, in characters.
pub const MAX_NAME_CHARS: usize = 64;

fn truncate(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

/// Gives every point a unique, non-empty name of at most 64 characters: an object whose name
/// another object shares (or that has none) gets its address appended, " (analog-input,3)".
pub fn disambiguate(points: &mut [Point]) {
    use std::collections::HashMap;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for p in points.iter_mut() {
        p.name = truncate(p.name.trim(), MAX_NAME_CHARS);
        *counts.entry(p.name.clone()).or_default() += 1;
    }
    for p in points.iter_mut() {
        if p.name.is_empty() {
            p.name = truncate(&address(p.object), MAX_NAME_CHARS);
        } else if counts[&p.name] > 1 {
            let suffix = format!(" ({})", address(p.object));
            let keep = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
            p.name = format!("{}{suffix}", truncate(&p.name, keep).trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(kind: u16, instance: u32, name: &str) -> Point {
        Point {
            object: ObjectId::new(kind, instance),
            kind: Kind::of(kind).unwrap(),
            name: name.into(),
            description: None,
            units: None,
            writable: false,
            min: None,
            max: None,
            states: vec![],
        }
    }

    #[test]
    fn names_are_made_unique() {
        let long = "x".repeat(70);
        let mut ps = vec![
            point(0, 1, "T"),
            point(0, 3, "T"),
            point(2, 1, "U"),
            point(1, 2, ""),
            point(0, 4, &long),
            point(2, 9, &long),
        ];
        disambiguate(&mut ps);
        let names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(&names[..4], &["T (analog-input,1)", "T (analog-input,3)", "U", "analog-output,2"]);
        assert!(names[4].ends_with(" (analog-input,4)") && names[4].chars().count() == 64);
        assert!(names[5].ends_with(" (analog-value,9)") && names[5].chars().count() == 64);
    }

    #[test]
    fn flags_become_qualities() {
        assert_eq!(quality(None), QUALITY_GOOD);
        assert_eq!(quality(Some(&[true, false, false, false])), QUALITY_GOOD);
        assert_eq!(quality(Some(&[false, true, false, true])), QUALITY_BAD_DEVICE_FAILURE);
        assert_eq!(quality(Some(&[false, false, true, true])), QUALITY_BAD_OUT_OF_SERVICE);
        assert_eq!(quality(Some(&[false, false, true, false])), QUALITY_GOOD_LOCAL_OVERRIDE);
    }

    #[test]
    fn values_by_kind() {
        assert_eq!(Kind::Analog.sample_value(&Value::Real(2.5)), Some(2.5));
        assert_eq!(Kind::Digital.sample_value(&Value::Enumerated(1)), Some(1.0));
        assert_eq!(Kind::Digital.sample_value(&Value::Enumerated(2)), None);
        assert_eq!(Kind::Multistate.sample_value(&Value::Unsigned(3)), Some(3.0));
        assert_eq!(Kind::Analog.sample_value(&Value::Null), None);
        assert_eq!(Kind::Analog.write_value(21.5), Ok(Value::Real(21.5)));
        assert!(Kind::Analog.write_value(f64::NAN).is_err());
        assert_eq!(Kind::Digital.write_value(1.0), Ok(Value::Enumerated(1)));
        assert!(Kind::Digital.write_value(0.5).is_err());
        assert_eq!(Kind::Multistate.write_value(2.0), Ok(Value::Unsigned(2)));
        assert!(Kind::Multistate.write_value(0.0).is_err());
        assert_eq!(address(ObjectId::new(19, 7)), "multi-state-value,7");
        assert_eq!(address(ObjectId::new(600, 7)), "600,7");
    }
}
