//! T3000's range codes: what a T3 controller's range register says about a point's value (its
//! units, or the names of a digital point's two states). Inputs, outputs and variables number their
//! analog ranges differently; digital ranges are shared (1-22, the second half the first half's
//! pairs inverted).

use std::borrow::Cow;

/// Which table a range code is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeTable {
    Input,
    Output,
    Variable,
}

/// What a range code means. The texts are T3000's own tables (borrowed) or a panel's custom
/// ranges (owned: its digital texts, variable units, analog table names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeMeaning {
    /// An analog value in these units (`None` for a custom table).
    Analog { name: Cow<'static, str>, units: Option<Cow<'static, str>> },
    /// A digital value: the names of 0 and of 1.
    Digital { off: Cow<'static, str>, on: Cow<'static, str> },
}

impl RangeMeaning {
    /// The units of an analog value.
    pub fn units(&self) -> Option<&str> {
        match self {
            RangeMeaning::Analog { units, .. } => units.as_deref(),
            RangeMeaning::Digital { .. } => None,
        }
    }

    /// The names of a digital value's states, 0 then 1.
    pub fn states(&self) -> Option<(&str, &str)> {
        match self {
            RangeMeaning::Digital { off, on } => Some((off, on)),
            RangeMeaning::Analog { .. } => None,
        }
    }

    /// How T3000 shows the range: `°C`, `0-10 V`, `Off/On` (a digital range: its states, 0 then 1).
    pub fn name(&self) -> String {
        match self {
            RangeMeaning::Analog { name, .. } => name.to_string(),
            RangeMeaning::Digital { off, on } => format!("{off}/{on}"),
        }
    }
}

const DIGITAL: [(&str, &str); 11] = [
    ("Off", "On"),
    ("Close", "Open"),
    ("Stop", "Start"),
    ("Disable", "Enable"),
    ("Normal", "Alarm"),
    ("Normal", "High"),
    ("Normal", "Low"),
    ("No", "Yes"),
    ("Cool", "Heat"),
    ("Unoccupied", "Occupied"),
    ("Low", "High"),
];

/// The meaning of range `code` of a point in `table` that is `digital` (as its analog/digital
/// register says); `None` for 0 (unused) and codes outside T3000's tables (custom digital ranges).
pub fn t3_range(table: RangeTable, digital: bool, code: u16) -> Option<RangeMeaning> {
    if digital {
        let i = usize::from(code).checked_sub(1)?;
        return match (DIGITAL.get(i), DIGITAL.get(i.wrapping_sub(DIGITAL.len()))) {
            (Some(&(off, on)), _) => Some(RangeMeaning::Digital { off: off.into(), on: on.into() }),
            (None, Some(&(off, on))) => Some(RangeMeaning::Digital { off: on.into(), on: off.into() }),
            _ => None,
        };
    }
    let a = |name: &'static str, units: &'static str| {
        Some(RangeMeaning::Analog { name: name.into(), units: Some(units.into()) })
    };
    match (table, code) {
        (_, 0) => None,
        // Thermistor and PT1K curves, each in °C then °F.
        (RangeTable::Input, 1..=10) if code % 2 == 1 => a("°C", "°C"),
        (RangeTable::Input, 1..=10) => a("°F", "°F"),
        (RangeTable::Input, 11) => a("0-5 V", "V"),
        (RangeTable::Input, 12) => a("0-100 A", "A"),
        (RangeTable::Input, 13) => a("4-20 mA", "mA"),
        (RangeTable::Input, 14) => a("psi", "psi"),
        (RangeTable::Input, 15) => a("pulse", "pulses"),
        (RangeTable::Input, 16..=18) => a("0-100 %", "%"),
        (RangeTable::Input, 19) => a("0-10 V", "V"),
        (RangeTable::Input, 20..=24) => Some(RangeMeaning::Analog { name: "custom table".into(), units: None }),
        (RangeTable::Input, 25) => a("fast pulse", "pulses"),
        (RangeTable::Input, 26) => a("Hz", "Hz"),
        (RangeTable::Input, 27) => a("%RH", "%RH"),
        (RangeTable::Input, 28) => a("CO2 ppm", "ppm"),
        (RangeTable::Input, 29) => a("RPM", "RPM"),
        (RangeTable::Input, 30) => a("TVOC ppb", "ppb"),
        (RangeTable::Input, 31) => a("µg/m³", "µg/m³"),
        (RangeTable::Input, 32) => a("#/cm³", "#/cm³"),
        (RangeTable::Input, 33) => a("dB", "dB"),
        (RangeTable::Input, 34) => a("Lux", "lx"),
        (RangeTable::Output, 1) => a("0-10 V", "V"),
        (RangeTable::Output, 2) => a("%Open", "%"),
        (RangeTable::Output, 3) => a("psi", "psi"),
        (RangeTable::Output, 4) => a("%", "%"),
        (RangeTable::Output, 5) => a("%Closed", "%"),
        (RangeTable::Output, 6) => a("mA", "mA"),
        (RangeTable::Output, 7) => a("PWM", "%"),
        (RangeTable::Output, 8) => a("2-10 V", "V"),
        (RangeTable::Variable, c) => {
            const UNITS: [&str; 33] = [
                "°C", "°F", "FPM", "Pa", "kPa", "psi", "inWC", "W", "kW", "kWh", "V", "kV", "A", "mA", "CFM", "s",
                "min", "h", "d", "time", "ohm", "%", "%RH", "ppm", "counts", "%Open", "kg", "L/h", "GPH", "GAL", "CF",
                "BTU", "m³/h",
            ];
            let u = *UNITS.get(usize::from(c) - 1)?;
            let units = match u {
                "time" => None,
                "%Open" => Some("%"),
                u => Some(u),
            };
            Some(RangeMeaning::Analog { name: u.into(), units: units.map(Cow::Borrowed) })
        }
        _ => None,
    }
}

/// The values a write to a point may carry: `min ..= max`, in the point's units.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Span {
    pub min: f64,
    pub max: f64,
}

impl Span {
    /// `None` unless `min <= max`, both finite.
    pub fn new(min: f64, max: f64) -> Option<Span> {
        (min.is_finite() && max.is_finite() && min <= max).then_some(Span { min, max })
    }

    pub fn contains(&self, v: f64) -> bool {
        (self.min..=self.max).contains(&v)
    }

    /// The values both allow; `None` when none.
    pub fn intersect(self, other: Span) -> Option<Span> {
        Span::new(self.min.max(other.min), self.max.min(other.max))
    }

    /// The values both of two optional spans allow (either alone when the other is `None`; `b`
    /// when they do not overlap).
    pub fn both(a: Option<Span>, b: Option<Span>) -> Option<Span> {
        match (a, b) {
            (Some(a), Some(b)) => a.intersect(b).or(Some(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The values a point with range `code` in `table` takes when it is written: 0 and 1 for a
/// digital point; the span of an analog range whose span is fixed (0-10 V, 0-100 %, 0-20 mA,
/// %RH); `None` for ranges without one (temperatures, pressures, counters, custom tables). The
/// spans are the ones the controller's firmware works in (an output's 2-10 V range is written in
/// volts 0-10, its 4-20 mA range in mA 0-20).
pub fn t3_span(table: RangeTable, digital: bool, code: u16) -> Option<Span> {
    let span = |min, max| Span::new(min, max);
    if digital {
        return span(0.0, 1.0);
    }
    match (table, code) {
        (RangeTable::Input, 11) => span(0.0, 5.0),
        (RangeTable::Input, 13) => span(0.0, 20.0),
        (RangeTable::Input, 16..=18 | 27) => span(0.0, 100.0),
        (RangeTable::Input, 19) => span(0.0, 10.0),
        (RangeTable::Output, 1 | 8) => span(0.0, 10.0),
        (RangeTable::Output, 2 | 4 | 5 | 7) => span(0.0, 100.0),
        (RangeTable::Output, 6) => span(0.0, 20.0),
        // %, %RH, %Open.
        (RangeTable::Variable, 22 | 23 | 26) => span(0.0, 100.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t3000_range_codes() {
        use RangeTable::*;
        let units = |t, c| t3_range(t, false, c).and_then(|m| m.units().map(str::to_owned));
        assert_eq!(units(Input, 1).as_deref(), Some("°C"));
        assert_eq!(units(Input, 4).as_deref(), Some("°F"));
        assert_eq!(units(Input, 27).as_deref(), Some("%RH"));
        assert_eq!(units(Input, 28).as_deref(), Some("ppm"));
        assert_eq!(units(Output, 1).as_deref(), Some("V"));
        assert_eq!(units(Output, 7).as_deref(), Some("%"));
        assert_eq!(units(Variable, 1).as_deref(), Some("°C"));
        assert_eq!(units(Variable, 10).as_deref(), Some("kWh"));
        assert_eq!(units(Variable, 33).as_deref(), Some("m³/h"));
        assert_eq!(t3_range(Variable, false, 20).map(|m| m.name()), Some("time".into()));
        assert_eq!(units(Variable, 20).as_deref(), None);
        assert_eq!(t3_range(Input, false, 0), None);
        assert_eq!(t3_range(Input, false, 35), None);
        assert_eq!(t3_range(Variable, false, 34), None);
        assert_eq!(t3_range(Input, false, 22), Some(RangeMeaning::Analog { name: "custom table".into(), units: None }));
        assert_eq!(t3_range(Input, true, 12).as_ref().and_then(RangeMeaning::states), Some(("On", "Off")));
        // Digital: 1-11 as listed, 12-22 the same pairs inverted, custom ranges after.
        assert_eq!(t3_range(Output, true, 1).map(|m| m.name()), Some("Off/On".into()));
        assert_eq!(t3_range(Variable, true, 10).map(|m| m.name()), Some("Unoccupied/Occupied".into()));
        assert_eq!(t3_range(Input, true, 12).map(|m| m.name()), Some("On/Off".into()));
        assert_eq!(t3_range(Input, true, 22).map(|m| m.name()), Some("High/Low".into()));
        assert_eq!(t3_range(Input, true, 23), None);
        assert_eq!(t3_range(Input, true, 0), None);
        assert_eq!(t3_range(Output, true, 1).as_ref().and_then(RangeMeaning::units), None);
    }

    #[test]
    fn spans_of_range_codes() {
        use RangeTable::*;
        let s = |t, d, c| t3_span(t, d, c).map(|s| (s.min, s.max));
        assert_eq!(s(Output, false, 4), Some((0.0, 100.0)));
        assert_eq!(s(Output, false, 2), Some((0.0, 100.0)));
        assert_eq!(s(Output, false, 1), Some((0.0, 10.0)));
        assert_eq!(s(Output, false, 6), Some((0.0, 20.0)));
        assert_eq!(s(Output, true, 1), Some((0.0, 1.0)));
        assert_eq!(s(Input, false, 27), Some((0.0, 100.0)));
        assert_eq!(s(Input, false, 1), None, "a temperature has no fixed span");
        assert_eq!(s(Variable, false, 22), Some((0.0, 100.0)));
        assert_eq!(s(Variable, false, 1), None);
        assert_eq!(s(Output, false, 0), None);
        let a = Span::new(0.0, 100.0).unwrap();
        let b = Span::new(-5.0, 50.0).unwrap();
        assert_eq!(a.intersect(b), Span::new(0.0, 50.0));
        assert_eq!(Span::both(Some(a), None), Some(a));
        assert_eq!(Span::both(None, Some(b)), Some(b));
        assert_eq!(Span::both(Some(a), Span::new(200.0, 300.0)), Span::new(200.0, 300.0), "disjoint: the second wins");
        assert!(a.contains(100.0) && !a.contains(150.0) && !a.contains(-0.1));
        assert_eq!(Span::new(1.0, 0.0), None);
        assert_eq!(Span::new(f64::NAN, 0.0), None);
    }
}
