//! A T3 panel's own ranges, stored per device: the texts of its custom digital ranges, its custom
//! variable units and the names of its custom analog tables. A `.prog` import writes them
//! (`service::import::prog`); the server reads them wherever it says what a point's range code
//! means (`service::ranges`), so a point in custom digital range 1 shows the panel's texts
//! ("Stopped/Running"), not a bare code.
//!
//! T3000's numbering (its range dialog, the controller firmware's `custom_digital1..8`): a digital
//! point's codes 23..=30 are custom digital ranges 1..=8; an analog variable's codes 34..=38 its
//! custom units 1..=5; an analog input's codes 20..=24 its custom tables 1..=5.

use serde::{Deserialize, Serialize};
use t3_core::range::{RangeMeaning, RangeTable, t3_range};

/// The first range code of a digital point that names a custom digital range (1).
pub const DIGITAL_FIRST: u16 = 23;
/// How many custom digital ranges a panel has (codes 23..=30).
pub const DIGITAL_COUNT: u16 = 8;
/// The first range code of an analog variable that names a custom unit (1); there are 5 (34..=38).
pub const VARIABLE_FIRST: u16 = 34;
/// The first range code of an analog input that names a custom table (1); there are 5 (20..=24).
pub const TABLE_FIRST: u16 = 20;

/// The custom ranges of one device's panel (stored, keyed by the device id); empty lists when it
/// has none. Only the ranges the panel gave a text are listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomRanges {
    /// The device's id.
    #[serde(default, rename = "device_id")]
    pub id: i64,
    /// The custom digital ranges (codes 23..=30 of a digital input, output or variable).
    pub digital: Vec<CustomDigitalRange>,
    /// The custom units of analog variables (codes 34..=38).
    pub variable_units: Vec<CustomRangeName>,
    /// The custom tables of analog inputs (codes 20..=24), by name (T3000 shows the name as the
    /// input's units: `Pa`).
    pub analog_tables: Vec<CustomRangeName>,
    /// When they were last written (µs since the Unix epoch); null when none were.
    #[serde(default)]
    pub updated_us: Option<i64>,
}

/// One custom digital range: its two texts as the panel keeps them, and its direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomDigitalRange {
    /// The range code it is (23..=30).
    pub code: u16,
    /// The "off" text (up to 11 characters).
    pub off: String,
    /// The "on" text.
    pub on: String,
    /// T3000's `direct` flag: true makes the range inverse like the built-in codes 12..=22 (the
    /// controller reports the value inverted), so a value of 0 is the "on" text.
    pub direct: bool,
}

impl CustomDigitalRange {
    /// The names of its values, 0 then 1.
    pub fn states(&self) -> (&str, &str) {
        if self.direct { (&self.on, &self.off) } else { (&self.off, &self.on) }
    }
}

/// A custom variable unit or analog table: its range code and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomRangeName {
    /// The range code it is (variable units 34..=38, input tables 20..=24).
    pub code: u16,
    pub name: String,
}

record!(CustomRanges, "custom_ranges");

impl CustomRanges {
    /// Whether the panel has none.
    pub fn is_empty(&self) -> bool {
        self.digital.is_empty() && self.variable_units.is_empty() && self.analog_tables.is_empty()
    }

    /// What range `code` means to a point in `table` that is `digital`, when it is one of these
    /// custom ranges (a custom code the panel gave no text: `None`).
    fn custom(&self, table: RangeTable, digital: bool, code: u16) -> Option<RangeMeaning> {
        let named = |list: &[CustomRangeName]| list.iter().find(|c| c.code == code).map(|c| c.name.clone());
        if digital {
            let r = self.digital.iter().find(|r| r.code == code)?;
            let (off, on) = r.states();
            return Some(RangeMeaning::Digital { off: off.to_owned().into(), on: on.to_owned().into() });
        }
        let units = match table {
            RangeTable::Variable => named(&self.variable_units),
            RangeTable::Input => named(&self.analog_tables),
            RangeTable::Output => None,
        }?;
        Some(RangeMeaning::Analog { name: units.clone().into(), units: Some(units.into()) })
    }
}

/// What range `code` means to a point in `table` that is `digital`: the panel's custom range
/// (`custom`: its device's, if it has any) when the code is one of them, else T3000's tables.
pub fn range_meaning(
    custom: Option<&CustomRanges>,
    table: RangeTable,
    digital: bool,
    code: u16,
) -> Option<RangeMeaning> {
    custom.and_then(|c| c.custom(table, digital, code)).or_else(|| t3_range(table, digital, code))
}

/// A custom range's text as the panel keeps it, or `None` when it has none: empty, blank, or
/// never written (flash left at 0xFF reads as `ÿÿÿ…`).
pub fn panel_text(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && !s.chars().all(|c| c == 'ÿ')).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges() -> CustomRanges {
        CustomRanges {
            id: 7,
            digital: vec![
                CustomDigitalRange { code: 23, off: "Stopped".into(), on: "Running".into(), direct: false },
                CustomDigitalRange { code: 24, off: "TANK1".into(), on: "TANK2".into(), direct: true },
            ],
            variable_units: vec![CustomRangeName { code: 34, name: "PSI".into() }],
            analog_tables: vec![CustomRangeName { code: 20, name: "Pa".into() }],
            updated_us: Some(1),
        }
    }

    #[test]
    fn custom_codes_mean_the_panels_texts() {
        let c = ranges();
        let m = |t, d, code| range_meaning(Some(&c), t, d, code);
        assert_eq!(m(RangeTable::Variable, true, 23).map(|m| m.name()).as_deref(), Some("Stopped/Running"));
        assert_eq!(
            m(RangeTable::Output, true, 23).as_ref().and_then(RangeMeaning::states),
            Some(("Stopped", "Running"))
        );
        // direct: inverse, 0 is the "on" text.
        assert_eq!(m(RangeTable::Input, true, 24).as_ref().and_then(RangeMeaning::states), Some(("TANK2", "TANK1")));
        // A custom code the panel gave no text: T3000's tables do not know it either.
        assert_eq!(m(RangeTable::Input, true, 25), None);
        assert_eq!(m(RangeTable::Variable, false, 34).as_ref().and_then(RangeMeaning::units), Some("PSI"));
        assert_eq!(m(RangeTable::Variable, false, 35), None);
        assert_eq!(m(RangeTable::Input, false, 20).map(|m| m.name()).as_deref(), Some("Pa"));
        assert_eq!(m(RangeTable::Input, false, 21).map(|m| m.name()).as_deref(), Some("custom table"));
        // Everything else: T3000's own tables, with or without custom ranges.
        assert_eq!(m(RangeTable::Output, true, 1).map(|m| m.name()).as_deref(), Some("Off/On"));
        assert_eq!(m(RangeTable::Variable, false, 1).as_ref().and_then(RangeMeaning::units), Some("°C"));
        assert_eq!(range_meaning(None, RangeTable::Variable, true, 23), None);
        assert!(!c.is_empty() && CustomRanges::default().is_empty());
    }

    #[test]
    fn panel_texts() {
        assert_eq!(panel_text(" PSI "), Some("PSI".into()));
        assert_eq!(panel_text(""), None);
        assert_eq!(panel_text("   "), None);
        assert_eq!(panel_text(&"ÿ".repeat(20)), None);
    }

    #[test]
    fn stored_with_the_device_id() {
        let v = serde_json::to_value(ranges()).unwrap();
        assert_eq!(v["device_id"], 7);
        let back: CustomRanges = serde_json::from_value(v).unwrap();
        assert_eq!(back, ranges());
    }
}
