//! Units (and scales) of register-library points, from what Temco's register library says.
//!
//! The library's `unit` column is empty in every row of the bundled copy; the units are stated in the
//! `description` text, in many ways: "co2 value (ppm)", "unit.℃", "Light intensity unit:Lux", "Velocity,
//! unit 0.1m/s", "RH humidity", "Temperature at celsius", "You need to divide by 10. For example, 123 means
//! 12.3 ma", "a number from 0-1000 representing 0% (closed) to 100% (open)". [`stated`] reads them, in this
//! order, and [`fill_units`] applies the result to the profiles:
//!
//! 1. the `unit` column, when it has something, normalised to the canonical spelling ("degC" -> "°C");
//! 2. explicit statements, even in a description that also lists codes: a unit marker (`unit: X`,
//!    `(Unit:X)`, `unit.X`, `units are 0.1 X`, `the units is X`), worked examples (`123 means 12.3 V`,
//!    `1102 is 110.2V`, `divide by 10`) and `A-B representing C X to D X`;
//! 3. in a description that does not list codes (`0 = ...`, `1: ...`, `NONE ->0`): a unit in parentheses
//!    (`(ppm)`, `( % )`, `(sec)`), a quantity followed by its unit (`co2 ppm`, `humidity %`), a unit after a
//!    default value (`default value: 0 PPM`), a text ending in a range of numbers with its unit (`HUMIDITY
//!    OUTPUT 0-10 volts`), a unit that cannot be read as anything else anywhere in the text (`℃`, `lux`,
//!    `ppm`), one of the words celsius / fahrenheit (not both), a text that starts by naming relative
//!    humidity (`RH humidity`, `the relative humidity`);
//! 4. a register with none of these whose name, in rows of other products with the same scale, has a unit
//!    stated, and always the same one (`MODBUS_CO2` of the CO2 sensor says only "CO2 "; CO2_Node's
//!    `MODBUS_CO2` says "co2 value (ppm)").
//!
//! No unit is given to a register whose name says it is an identity, a communication setting, a selector or
//! a filter (`MODBUS_ADDRESS`, `..._SERIALNUMBER`, `..._BAUDRATE`, `..._UNIT`, `..._FILTER`, ...), to a range
//! selector that lists its ranges, to text, bits and coils, nor where the text names two units of one kind
//! ("DegC or F", "DEGREE C/F", a bare "deg") or a count ("unit number"). A `%` of a humidity register is `%RH`.
//! Of the bundled library's 4,536 registers, 125 get a unit this way.
//!
//! Scale: a stated scale (`unit 0.1m/s`, `123 means 12.3`, `divide by 10`, `0-1000 representing 0% to
//! 100%`) is applied to a point whose `data_format` has none; where the format has one it is left alone
//! (the library's formats and texts agree wherever both say something).

use crate::codec::ValueType;
use crate::profile::{PointType, Profile};
use std::collections::HashMap;

/// What a register's texts say about its unit and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Stated {
    /// The canonical unit; `None` when nothing says one (or what is said is ambiguous, or a count).
    pub unit: Option<&'static str>,
    /// Engineering value = raw x `scale`, when the text states it.
    pub scale: Option<f64>,
    /// The text says something about the unit (a unit, an ambiguous one, a count), so no other
    /// product's row of the same name is asked.
    pub explicit: bool,
    /// The unit as the `unit` column spells it, when the column has one this table does not know.
    pub column: Option<String>,
}

impl Stated {
    const NOTHING: Stated = Stated { unit: None, scale: None, explicit: false, column: None };
}

/// Unit spellings (lower case) and their canonical form; `None`: the spelling says "no unit" (a count)
/// or names no single unit (degrees of either scale).
const SPELLINGS: &[(&str, Option<&str>)] = &[
    ("ppm", Some("ppm")),
    ("ppb", Some("ppb")),
    ("% rh", Some("%RH")),
    ("%rh", Some("%RH")),
    ("% r.h.", Some("%RH")),
    ("%", Some("%")),
    ("percent", Some("%")),
    ("percentage", Some("%")),
    ("℃", Some("°C")),
    ("°c", Some("°C")),
    ("° c", Some("°C")),
    ("degc", Some("°C")),
    ("deg c", Some("°C")),
    ("deg.c", Some("°C")),
    ("degree c", Some("°C")),
    ("degrees c", Some("°C")),
    ("degree celsius", Some("°C")),
    ("degrees celsius", Some("°C")),
    ("celsius degree", Some("°C")),
    ("celsius", Some("°C")),
    ("c", Some("°C")),
    ("℉", Some("°F")),
    ("°f", Some("°F")),
    ("° f", Some("°F")),
    ("degf", Some("°F")),
    ("deg f", Some("°F")),
    ("deg.f", Some("°F")),
    ("degree f", Some("°F")),
    ("degrees f", Some("°F")),
    ("degree fahrenheit", Some("°F")),
    ("degrees fahrenheit", Some("°F")),
    ("fahrenheit degree", Some("°F")),
    ("fahrenheit", Some("°F")),
    ("f", Some("°F")),
    ("degc or f", None),
    ("degc/f", None),
    ("deg c/f", None),
    ("deg c or f", None),
    ("degree c/f", None),
    ("degrees c/f", None),
    ("c/f", None),
    ("deg", None),
    ("degree", None),
    ("degrees", None),
    ("pa", Some("Pa")),
    ("pascal", Some("Pa")),
    ("pascals", Some("Pa")),
    ("kpa", Some("kPa")),
    ("hpa", Some("hPa")),
    ("mpa", Some("MPa")),
    ("bar", Some("bar")),
    ("mbar", Some("mbar")),
    ("psi", Some("psi")),
    ("inwc", Some("inWC")),
    ("in wc", Some("inWC")),
    ("in.wc", Some("inWC")),
    ("in. wc", Some("inWC")),
    ("in_w", Some("inWC")),
    ("in.water", Some("inWC")),
    ("inches of water", Some("inWC")),
    ("mmhg", Some("mmHg")),
    ("inhg", Some("inHg")),
    ("v", Some("V")),
    ("volt", Some("V")),
    ("volts", Some("V")),
    ("mv", Some("mV")),
    ("millivolt", Some("mV")),
    ("millivolts", Some("mV")),
    ("kv", Some("kV")),
    ("a", Some("A")),
    ("amp", Some("A")),
    ("amps", Some("A")),
    ("ampere", Some("A")),
    ("amperes", Some("A")),
    ("ma", Some("mA")),
    ("w", Some("W")),
    ("watt", Some("W")),
    ("watts", Some("W")),
    ("kw", Some("kW")),
    ("kwh", Some("kWh")),
    ("wh", Some("Wh")),
    ("hz", Some("Hz")),
    ("khz", Some("kHz")),
    ("rpm", Some("rpm")),
    ("ms", Some("ms")),
    ("millisecond", Some("ms")),
    ("milliseconds", Some("ms")),
    ("s", Some("s")),
    ("sec", Some("s")),
    ("secs", Some("s")),
    ("second", Some("s")),
    ("seconds", Some("s")),
    ("second(s)", Some("s")),
    ("min", Some("min")),
    ("mins", Some("min")),
    ("minute", Some("min")),
    ("minutes", Some("min")),
    ("minute(s)", Some("min")),
    ("minuts", Some("min")),
    ("h", Some("h")),
    ("hr", Some("h")),
    ("hrs", Some("h")),
    ("hour", Some("h")),
    ("hours", Some("h")),
    ("hour(s)", Some("h")),
    ("day", Some("d")),
    ("days", Some("d")),
    ("lux", Some("lux")),
    ("lx", Some("lux")),
    ("cfm", Some("CFM")),
    ("fpm", Some("FPM")),
    ("m/s", Some("m/s")),
    ("m3/h", Some("m³/h")),
    ("m³/h", Some("m³/h")),
    ("m3/s", Some("m³/s")),
    ("m³/s", Some("m³/s")),
    ("l/s", Some("L/s")),
    ("l/min", Some("L/min")),
    ("l/h", Some("L/h")),
    ("gpm", Some("GPM")),
    ("ug/m3", Some("µg/m³")),
    ("ug/m³", Some("µg/m³")),
    ("μg/m3", Some("µg/m³")),
    ("μg/m³", Some("µg/m³")),
    ("µg/m3", Some("µg/m³")),
    ("µg/m³", Some("µg/m³")),
    ("1/cm3", Some("#/cm³")),
    ("1/cm³", Some("#/cm³")),
    ("#/cm3", Some("#/cm³")),
    ("#/cm³", Some("#/cm³")),
    ("g/kg", Some("g/kg")),
    ("kj/kg", Some("kJ/kg")),
    ("btu", Some("BTU")),
    ("kg", Some("kg")),
    ("cm", Some("cm")),
    ("mm", Some("mm")),
    ("m", Some("m")),
    ("db", Some("dB")),
    ("ohm", Some("Ω")),
    ("ohms", Some("Ω")),
    ("number", None),
    ("count", None),
    ("counts", None),
];

/// Spellings that are a unit only after a number or a unit marker (`7 days`, not `(Day)Occupied`).
const NEEDS_NUMBER: &[&str] = &["day", "days"];

/// Spellings that mean a unit wherever they stand in a text (no other reading).
const DISTINCTIVE: &[&str] = &[
    "ppm", "ppb", "rpm", "lux", "kwh", "cfm", "hpa", "kpa", "inwc", "℃", "℉", "°c", "°f", "% rh", "%rh", "ug/m3",
    "ug/m³", "μg/m3", "μg/m³", "µg/m3", "µg/m³", "g/kg", "kj/kg", "m3/h", "m³/h",
];

/// Words of a register name that make it an identity, a communication setting, a selector or a filter:
/// never a unit.
const NO_UNIT_WORDS: &[&str] = &[
    "ADDRESS",
    "SERIAL",
    "SERIALNUMBER",
    "SN",
    "MODEL",
    "VERSION",
    "VER",
    "REV",
    "BAUD",
    "BAUDRATE",
    "PROTOCOL",
    "INSTANCE",
    "STATION",
    "MAC",
    "IP",
    "SUBNET",
    "MASK",
    "GATEWAY",
    "PORT",
    "UNIT",
    "UNITS",
    "FILTER",
    "TYPE",
    "MODE",
    "SELECT",
    "ENABLE",
    "EXIST",
    "PASSWORD",
    "LOCK",
    "RESET",
    "DEFAULTS",
    "FLAG",
    "ID",
    "TABLE",
];

/// The text of one row, lower case, as characters (so positions are character positions).
struct Text {
    c: Vec<char>,
}

impl Text {
    fn new(s: &str) -> Text {
        Text { c: s.chars().map(|ch| ch.to_lowercase().next().unwrap_or(ch)).collect() }
    }

    fn len(&self) -> usize {
        self.c.len()
    }

    fn at(&self, i: usize) -> Option<char> {
        self.c.get(i).copied()
    }

    fn letter_at(&self, i: usize) -> bool {
        self.at(i).is_some_and(|ch| ch.is_alphabetic())
    }

    /// `word` starts at `i` as a whole word (no letter before or after it).
    fn word_at(&self, i: usize, word: &str) -> bool {
        let w: Vec<char> = word.chars().collect();
        self.c.get(i..i + w.len()).is_some_and(|s| s == w.as_slice())
            && (i == 0 || !self.letter_at(i - 1))
            && !self.letter_at(i + w.len())
    }

    /// Every position where `word` stands as a whole word.
    fn words(&self, word: &str) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.word_at(i, word)).collect()
    }

    fn contains(&self, s: &str) -> bool {
        let w: Vec<char> = s.chars().collect();
        self.c.windows(w.len().max(1)).any(|x| x == w.as_slice())
    }

    fn skip_spaces(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        i
    }

    /// A number (digits, an optional fraction) at `i`: its value and the position after it.
    fn number_at(&self, i: usize) -> Option<(f64, usize)> {
        let mut j = i;
        while self.at(j).is_some_and(|c| c.is_ascii_digit()) {
            j += 1;
        }
        if j == i {
            return None;
        }
        if self.at(j) == Some('.') && self.at(j + 1).is_some_and(|c| c.is_ascii_digit()) {
            j += 1;
            while self.at(j).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
            }
        }
        let s: String = self.c[i..j].iter().collect();
        s.parse().ok().map(|v| (v, j))
    }

    /// A number ending just before `end` (spaces skipped): its value.
    fn number_before(&self, end: usize) -> Option<f64> {
        let mut j = end;
        while j > 0 && self.c[j - 1].is_whitespace() {
            j -= 1;
        }
        let mut i = j;
        while i > 0 && (self.c[i - 1].is_ascii_digit() || self.c[i - 1] == '.') {
            i -= 1;
        }
        // "eg.1102": the dot before the digits is not part of the number.
        while i < j && self.c[i] == '.' {
            i += 1;
        }
        self.number_at(i).filter(|&(_, after)| after == j).map(|(v, _)| v)
    }

    /// The longest unit spelling at `i` (single letters only when `short`): its meaning and the position
    /// after it. A spelling ending in a letter or digit must not run on into one.
    fn unit_at(&self, i: usize, short: bool) -> Option<(Option<&'static str>, usize)> {
        if i > 0 && self.letter_at(i - 1) {
            return None;
        }
        let mut best: Option<(Option<&'static str>, usize)> = None;
        for &(spelling, unit) in SPELLINGS {
            let w: Vec<char> = spelling.chars().collect();
            if (!short && (w.len() == 1 && w[0].is_ascii_alphabetic() || NEEDS_NUMBER.contains(&spelling)))
                || self.c.get(i..i + w.len()).is_none_or(|s| s != w.as_slice())
            {
                continue;
            }
            let end = i + w.len();
            let runs_on =
                w.last().is_some_and(|c| c.is_alphanumeric()) && self.at(end).is_some_and(char::is_alphanumeric);
            if !runs_on && best.is_none_or(|(_, e)| end > e) {
                best = Some((unit, end));
            }
        }
        best
    }
}

/// One rule's findings: every unit it read (ambiguous ones as `None`).
fn agree(found: &[Option<&'static str>]) -> Option<Option<&'static str>> {
    let first = *found.first()?;
    Some(if found.iter().all(|u| *u == first) { first } else { None })
}

/// Equal within rounding.
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// `unit: X`, `(Unit:X)`, `unit.X`, `units are 0.1 X`, `the units is X`, `units are in X`: the first marker
/// followed by a unit, with the number between them as the scale.
fn marker(t: &Text) -> Option<(Option<&'static str>, Option<f64>)> {
    for start in t.words("unit").into_iter().chain(t.words("units")) {
        let mut i = start + if t.word_at(start, "units") { 5 } else { 4 };
        loop {
            i = t.skip_spaces(i);
            if let Some(w) = ["is", "are", "of", "in"].iter().find(|w| t.word_at(i, w)) {
                i += w.len();
            } else if t.at(i).is_some_and(|c| matches!(c, ':' | '.' | '=' | '：')) {
                i += 1;
            } else {
                break;
            }
        }
        // "unit:1/cm3" is a unit; "unit 0.1m/s" a scale and a unit.
        if let Some((unit, _)) = t.unit_at(i, true) {
            return Some((unit, None));
        }
        if let Some((scale, after)) = t.number_at(i)
            && let Some((unit, _)) = t.unit_at(t.skip_spaces(after), true)
        {
            return Some((unit, Some(scale).filter(|&s| s != 0.0)));
        }
    }
    None
}

/// Worked examples: `123 means 12.3 V`, `1102 is 110.2V`, `divide by 10`, `0-1000 representing 0% ... to
/// 100%`. The units and scales they agree on.
fn examples(t: &Text) -> (Option<Option<&'static str>>, Option<f64>) {
    let mut units = Vec::new();
    let mut scales = Vec::new();
    for verb in ["means", "is"] {
        for at in t.words(verb) {
            let Some(raw) = t.number_before(at).filter(|&v| v != 0.0) else { continue };
            // `range_min = 10 means 0V`: a mapping, not a scale.
            let Some((value, after)) = t.number_at(t.skip_spaces(at + verb.len())).filter(|&(v, _)| v != 0.0) else {
                continue;
            };
            let Some((unit, _)) = t.unit_at(t.skip_spaces(after), true) else { continue };
            units.push(unit);
            scales.push(value / raw);
        }
    }
    for at in t.words("divide").into_iter().chain(t.words("divided")) {
        let mut i = t.skip_spaces(at + if t.word_at(at, "divided") { 7 } else { 6 });
        if t.word_at(i, "by") {
            i = t.skip_spaces(i + 2);
        }
        if let Some((n, _)) = t.number_at(i).filter(|&(n, _)| n > 1.0) {
            scales.push(1.0 / n);
        }
    }
    for at in t.words("representing") {
        // "<lo>-<hi> representing <a><unit> ... to <b><unit>"
        let Some(hi) = t.number_before(at) else { continue };
        let mut i = at;
        while i > 0 && t.c[i - 1].is_whitespace() {
            i -= 1;
        }
        while i > 0 && (t.c[i - 1].is_ascii_digit() || t.c[i - 1] == '.') {
            i -= 1;
        }
        let lo = if i > 0 && matches!(t.c[i - 1], '-' | '~') { t.number_before(i - 1) } else { None };
        let Some(lo) = lo else { continue };
        let Some((a, after)) = t.number_at(t.skip_spaces(at + "representing".len())) else { continue };
        let Some((unit_a, after)) = t.unit_at(t.skip_spaces(after), true) else { continue };
        let Some(to) = t.words("to").into_iter().find(|&p| p >= after) else { continue };
        let Some((b, after)) = t.number_at(t.skip_spaces(to + 2)) else { continue };
        let Some((unit_b, _)) = t.unit_at(t.skip_spaces(after), true) else { continue };
        if unit_a == unit_b && hi != lo {
            units.push(unit_a);
            scales.push((b - a) / (hi - lo));
        }
    }
    let scale = scales.first().copied().filter(|&s| scales.iter().all(|&x| same(x, s)));
    (agree(&units), scale)
}

/// The text maps numbers to words (`0 = off`, `1: on`, `NONE ->0`, `on=1000`, `0 = 0-100 ug/m3`): a list of
/// codes, whose units say nothing about the register's own value.
fn lists_codes(t: &Text) -> bool {
    for i in 0..t.len() {
        let c = t.c[i];
        // A number, then `=`, `:` or `->`, then a word (or, after `=`, a range of numbers).
        if c.is_ascii_digit() && !t.at(i + 1).is_some_and(|n| n.is_ascii_digit() || n == '.') {
            let j = t.skip_spaces(i + 1);
            let (op, len) = match (t.at(j), t.at(j + 1)) {
                (Some('-'), Some('>')) => ('>', 2),
                (Some(op @ ('=' | ':' | '：')), _) => (op, 1),
                _ => continue,
            };
            let k = t.skip_spaces(j + len);
            let to_word = t.at(k).is_some_and(char::is_alphabetic);
            // `0 = 0-100`: a code for a range (`10 = 1deg`, a worked example, is not one).
            let to_range = op == '=' && t.number_at(k).is_some_and(|(_, after)| matches!(t.at(after), Some('-' | '~')));
            if to_word || to_range {
                return true;
            }
        }
        // A word, then `=` or `->`, then a number.
        if c.is_alphabetic() {
            let j = t.skip_spaces(i + 1);
            let len = match (t.at(j), t.at(j + 1)) {
                (Some('-'), Some('>')) => 2,
                (Some('='), _) => 1,
                _ => continue,
            };
            if t.at(t.skip_spaces(j + len)).is_some_and(|n| n.is_ascii_digit()) {
                return true;
            }
        }
    }
    false
}

/// What the weaker rules find in a text that lists no codes (see the module docs, step 3).
fn weak(t: &Text) -> Option<Option<&'static str>> {
    // A unit in parentheses: "(ppm)", "( % )", "(sec)".
    let mut found = Vec::new();
    for i in 0..t.len() {
        if t.at(i) == Some('(')
            && let Some((unit, after)) = t.unit_at(t.skip_spaces(i + 1), false)
            && t.at(t.skip_spaces(after)) == Some(')')
        {
            found.push(unit);
        }
    }
    if let Some(u) = agree(&found) {
        return Some(u);
    }
    // A measured quantity followed by its unit: "co2 ppm", "humidity %".
    for word in ["co2", "humidity", "temperature", "pressure", "voltage", "current", "light", "flow", "velocity"] {
        for at in t.words(word) {
            if let Some((unit, _)) = t.unit_at(t.skip_spaces(at + word.len()), false) {
                found.push(unit);
            }
        }
    }
    if let Some(u) = agree(&found) {
        return Some(u);
    }
    // After a default value: "default value: 0 PPM", "default is 400ppm", "default: 1 second".
    for at in t.words("default") {
        let mut i = t.skip_spaces(at + 7);
        if t.word_at(i, "value") {
            i = t.skip_spaces(i + 5);
        }
        if t.word_at(i, "is") {
            i += 2;
        } else if matches!(t.at(i), Some(':' | '=')) {
            i += 1;
        }
        if let Some((_, after)) = t.number_at(t.skip_spaces(i))
            && let Some((unit, _)) = t.unit_at(t.skip_spaces(after), true)
        {
            found.push(unit);
        }
    }
    if let Some(u) = agree(&found) {
        return Some(u);
    }
    // A text that ends in a range of numbers with its unit: "HUMIDITY OUTPUT   0-10 volts" (a range inside a
    // text is often something else: "4-20mA input table", "the rate of calibrate(0-10A)").
    for i in 0..t.len() {
        if i > 0 && (t.c[i - 1].is_ascii_digit() || t.c[i - 1] == '.') {
            continue;
        }
        let Some((_, mut j)) = t.number_at(i) else { continue };
        j = t.skip_spaces(j);
        if t.word_at(j, "to") {
            j += 2;
        } else if matches!(t.at(j), Some('-' | '~')) {
            while matches!(t.at(j), Some('-' | '~')) {
                j += 1;
            }
        } else {
            continue;
        }
        if let Some((_, after)) = t.number_at(t.skip_spaces(j))
            && let Some((unit, end)) = t.unit_at(t.skip_spaces(after), true)
            && t.skip_spaces(end) == t.len()
        {
            found.push(unit);
        }
    }
    if let Some(u) = agree(&found) {
        return Some(u);
    }
    // Spellings with no other reading, anywhere.
    for i in 0..t.len() {
        if let Some((unit, end)) = t.unit_at(i, false) {
            let spelled: String = t.c[i..end].iter().collect();
            if DISTINCTIVE.contains(&spelled.as_str()) {
                found.push(unit);
            }
        }
    }
    if let Some(u) = agree(&found) {
        return Some(u);
    }
    // Degrees of either scale ("DegC or F", "C/F"): stated, but not one unit.
    for i in 0..t.len() {
        if let Some((None, end)) = t.unit_at(i, false) {
            let spelled: String = t.c[i..end].iter().collect();
            if spelled.ends_with("/f") || spelled.ends_with(" or f") {
                return Some(None);
            }
        }
    }
    // Celsius or fahrenheit, not both.
    let c = t.contains("celsius") || !t.words("degc").is_empty();
    let f = t.contains("fahrenheit") || !t.words("degf").is_empty();
    if c != f {
        return Some(Some(if c { "°C" } else { "°F" }));
    }
    // A text that starts by naming relative humidity: "RH humidity", "the relative humidity".
    let start = if t.word_at(t.skip_spaces(0), "the") { t.skip_spaces(t.skip_spaces(0) + 3) } else { t.skip_spaces(0) };
    if t.word_at(start, "rh")
        || t.c.get(start..start + 17).is_some_and(|s| s.iter().collect::<String>() == "relative humidity")
    {
        return Some(Some("%RH"));
    }
    None
}

/// The words of a register name (letters and digits; trailing digits dropped: `RANGE3` -> `RANGE`).
fn name_words(name: &str) -> impl Iterator<Item = String> + '_ {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_end_matches(|c: char| c.is_ascii_digit()).to_ascii_uppercase())
}

/// The name says the register has no unit (an identity, a communication setting, a selector, a filter).
pub fn name_says_no_unit(name: &str) -> bool {
    name_words(name).any(|w| NO_UNIT_WORDS.contains(&w.as_str()))
}

/// What a library row's `unit` column, `description` and `register_name` say about its unit and scale
/// (see the module docs), without looking at other rows.
pub fn stated(name: &str, description: &str, unit_column: &str) -> Stated {
    let column = unit_column.trim();
    if !column.is_empty() {
        let t = Text::new(column);
        return match t.unit_at(0, true) {
            Some((unit, end)) if t.skip_spaces(end) == t.len() => {
                Stated { unit, scale: None, explicit: true, column: None }
            }
            _ => Stated { unit: None, scale: None, explicit: true, column: Some(column.to_owned()) },
        };
    }
    if name_says_no_unit(name) {
        return Stated::NOTHING;
    }
    let t = Text::new(description);
    let humid = |u: Option<&'static str>| match u {
        Some("%") if t.contains("humid") || name.to_ascii_uppercase().contains("HUM") => Some("%RH"),
        u => u,
    };
    // A range selector lists its ranges, with their unit: the register holds the code.
    if name_words(name).any(|w| w == "RANGE") && lists_codes(&t) {
        return Stated::NOTHING;
    }
    let (example_unit, example_scale) = examples(&t);
    if let Some((unit, scale)) = marker(&t) {
        let unit = unit.or(example_unit.flatten());
        return Stated { unit: humid(unit), scale: scale.or(example_scale), explicit: true, column: None };
    }
    if let Some(unit) = example_unit {
        return Stated { unit: humid(unit), scale: example_scale, explicit: true, column: None };
    }
    if lists_codes(&t) {
        return Stated { scale: example_scale, ..Stated::NOTHING };
    }
    match weak(&t) {
        Some(unit) => Stated { unit: humid(unit), scale: example_scale, explicit: true, column: None },
        None => Stated { scale: example_scale, ..Stated::NOTHING },
    }
}

/// Gives every numeric register point of the library profiles the unit its row states, else the unit the
/// rows of the same name in other products agree on, and applies a stated scale where the register's
/// format has none (see the module docs). Points whose row states nothing keep `unit: None`.
pub fn fill_units(profiles: &mut [Profile]) {
    let numeric = |vt: &ValueType| !matches!(vt, ValueType::Str { .. } | ValueType::Bool | ValueType::Bit { .. });
    // Per point: what its own row says. Per register name: the units those rows state.
    // Keyed by name and scale: a row with another scale may count in other units (CO2's MODBUS_OUTPUT_CO2 is
    // volts /100, CO2_Node's a plain number).
    let key = |p: &crate::profile::ProfilePoint| {
        (p.name.to_ascii_uppercase(), p.codec.multiplier.to_bits(), p.codec.divisor.to_bits())
    };
    let mut by_name: HashMap<(String, u64, u64), Vec<&'static str>> = HashMap::new();
    let mut found: Vec<Vec<Stated>> = Vec::with_capacity(profiles.len());
    for profile in profiles.iter() {
        let mut here = Vec::with_capacity(profile.points.len());
        for p in &profile.points {
            let s = if p.point_type == PointType::Register && numeric(&p.codec.value_type) {
                stated(&p.name, &p.description, p.unit.as_deref().unwrap_or(""))
            } else {
                Stated::NOTHING
            };
            if let Some(u) = s.unit {
                by_name.entry(key(p)).or_default().push(u);
            }
            here.push(s);
        }
        found.push(here);
    }
    for (profile, stated) in profiles.iter_mut().zip(found) {
        for (p, s) in profile.points.iter_mut().zip(stated) {
            if p.point_type != PointType::Register {
                continue;
            }
            let borrowed = || {
                let units = by_name.get(&key(p))?;
                let first = *units.first()?;
                units.iter().all(|&u| u == first).then_some(first)
            };
            let unit = match (&s.column, s.unit) {
                (Some(column), _) => Some(column.clone()),
                (None, Some(u)) => Some(u.to_owned()),
                (None, None)
                    if !s.explicit
                        && numeric(&p.codec.value_type)
                        && !name_says_no_unit(&p.name)
                        && !lists_codes(&Text::new(&p.description)) =>
                {
                    borrowed().map(str::to_owned)
                }
                _ => None,
            };
            p.unit = unit;
            if let Some(scale) = s.scale.filter(|&x| x > 0.0 && !same(x, 1.0))
                && p.codec.is_unscaled()
            {
                // A divisor when the scale is 1/10^n, so that 123 x 0.1 reads 12.3 exactly.
                let divisor = 1.0 / scale;
                p.codec = if same(divisor, divisor.round()) {
                    p.codec.clone().scaled(1.0, divisor.round(), 0.0)
                } else {
                    p.codec.clone().scaled(scale, 1.0, 0.0)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileLibrary;

    fn unit(name: &str, description: &str) -> Option<&'static str> {
        stated(name, description, "").unit
    }

    #[test]
    fn units_stated_in_words() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("MODBUS_CO2", "co2 value (ppm). It will be calibrated if write to it.", Some("ppm")),
            ("MODBUS_CO2_SENSOR", "CO2 value ,(Unit:ppm) ", Some("ppm")),
            ("MODBUS_EXTERNAL_SENSOR1", "co2 ppm(optional)", Some("ppm")),
            ("MODBUS_EXTERNAL_SENSOR2", "humidity % (optional)", Some("%RH")),
            ("MODBUS_HUMIDITY", "RH humidity ", Some("%RH")),
            ("MODBUS_HUMIDITY", "the relative humidity", Some("%RH")),
            ("MODBUS_HUMIDITY_SENSOR", "Relative humidity  ( % )", Some("%RH")),
            ("MODBUS_TEMPERATURE_CELSIUS", "Temperature at celsius", Some("°C")),
            ("MODBUS_TEMPERATURE_FAHRENHEIT", "Temperature at fahrenheit", Some("°F")),
            ("MODBUS_HUMIDITY_TEMP_C", "degree celsius temperature value of the humidity sensor", Some("°C")),
            ("MODBUS_DEW_PT", "unit.℃", Some("°C")),
            ("MODBUS_DEW_PT", "unit.C", Some("°C")),
            ("MODBUS_DEW_PT_F", "unit.F  ", Some("°F")),
            ("MODBUS_PWS", "unit.hPa", Some("hPa")),
            ("MODBUS_ENTHALPY", "unit.kJ/kg ", Some("kJ/kg")),
            ("MODBUS_HUM_LIGHT_VALUE", "Light intensity unit:Lux", Some("lux")),
            (
                "MODBUS_DIFF_PRESSURE_VALUE",
                "The differential pressure value obtained by the sensor,unit: Pascal",
                Some("Pa"),
            ),
            ("MODBUS_INPUT_VOLTAGE", "0-10V input port voltage, unit:mV", Some("mV")),
            ("MODBUS_PM2.5_WEIGHT_VALUE", "PM2.5 real value, unit : ug/m3", Some("µg/m³")),
            ("MODBUS_PM25_NUMBER_0_5", "0.3 to 0.5        Number concentration  Unit:1/cm3", Some("#/cm³")),
            ("MODBUS_OUTPUT_HUM", "HUMIDITY OUTPUT   0-10 volts", Some("V")),
            ("MODBUS_OUTPUT_RANGE_MAX_CO2", "CO2 output range  MAX   default value: 2000 PPM", Some("ppm")),
            ("MODBUS_OUTPUT_RANGE_MIN_TEM", "Temperature output range MIX   default value:0℃", Some("°C")),
            ("MODBUS_OUTPUT_RANGE_MAX_HUM", "Humidity output range  MAX  default value: 100% RH", Some("%RH")),
            ("MODBUS_OUTPUT1_DELAY_OFF_TO_ON", "delay time for output1 going from OFF to ON (sec)", Some("s")),
            ("MODBUS_CO2_TIMER", "CO2 TIMER (Unit:minute)", Some("min")),
            ("MODBUS_VALVE_TRAVEL_TIME", "Valve travel time. ... The units is second.", Some("s")),
            (
                "MODBUS_LCD_BACKLIGHT_TURN_ON_TIME",
                "Backlight ON timer ,Valid Value 0-255 ,Unit: minute(s) , 0 = always OFF , 255=always ON",
                Some("min"),
            ),
            ("FRC_MIN_FRESH_AIR", " MINIMAL FRESH AIR, UNIT PERCENTAGE 0-100%", Some("%")),
            ("FRC_SPACETEM_LASTUPDATE", " FREE COOLING SPACE TEMPERATURE LAST UPDATE TIME, UNIT: MINUTS", Some("min")),
            ("MODBUS_SPEED_TACH", "rpm, fan speed counter, 1/min", Some("rpm")),
            ("MODBUS_VOC_SENSIRION_VALUE", "Tvoc sensor real value,(Unit:ppb  )", Some("ppb")),
            // Stated but not one unit, or a count: nothing.
            ("MODBUS_TEMPRATURE", "TEMPERATURE  reading in DegC or F from the sensor ", None),
            ("FRC_MIN_FRESH_AIRTEM", "MINIMAL FRESH AIR TEMPERATURE, UNIT DEGREE C/F", None),
            ("MODBUS_PM0.5_NUMBER_VALUE", "PM0.5 real value, unit number", None),
            ("MODBUS_NIGHT_COOLING_DEADBAND", "Unoccupied cooling setpoint dead band ... Units of 1 deg.", None),
            // Code lists and selectors: nothing.
            (
                "MODBUS_TEMPERATURE_DEGREE_C_OR_F",
                "Temperature display unit ,0= CELSIUS DEGREE , 1= FAHRENHEIT DEGREE",
                None,
            ),
            (
                "MODBUS_PRESSURE_UNIT",
                "0= in.water ,1= KPa ,2=psi ,3=mmHg.4=inHg, 5= kg/cm2 , 6= atmosphere ,7= bar ,8= Pa .",
                None,
            ),
            ("MODBUS_PM25_OUTPUT_RANGE", "PM2.5  output range ,0 = 0-100ug/m3, 1 = 0-1000ug/m3", None),
            (
                "MODBUS_TEMPERATURE_DEGREE",
                "select the temperature unit direct to analog output:0: degree celsius;1: degree fahrenheit",
                None,
            ),
            ("MODBUS_SWITCH_RSP_TIME_RANGE", "Sensor response time,4 sec or 10 sec", None),
            ("MODBUS_CO2_FILTER", "Fitler times, make the ppm value go smooth. The default value is 5.", None),
            (
                "MODBUS_TEMPERATURE_FILTER",
                "fahrenheit  degree temperature value of the on board thermistor sensor",
                None,
            ),
            ("MODBUS_ADDRESS", "Modbus device address", None),
            ("MODBUS_SERIALNUMBER", "Serial Number - 4 byte value.  Read-only", None),
            ("MODBUS_TABLE1_HALFONE", "Lookup Table 1 - 0.5V value   Sensor value that corresponds to 0.5V", None),
            ("MODBUS_DAC_OUTPUT", "DAC output, 0-min, 255-max", None),
            ("MIN_HOLIDAY_SP", "min holiday setpoint   >5C", None),
            ("MODBUS_DAY_SETPOINT", "(Day)Occupied   setpoint", None),
            ("MODBUS_4TO20MA_BOTTOM,", "the lowest value for 4-20mA input table", None),
            ("MODBUS_RATE_CALI_0_10A", "Range:0-5000;the rate of calibrate(0-10A)", None),
            ("MODBUS_TRANSDUCER_RANGE_MIN", "range_min = 10 means 0V accodrding to 10C", None),
            ("MODBUS_SWITCH_DP_RANGE", "if sensor is spd31(Reg29 = 60):0=0-50,1=0-100,2=0-250,3=0-500; unit: Pa", None),
            (
                "MODBUS_WBGT",
                "Wet bulb globe temperature. It estimates the effect of temperature, relative humidity, wind",
                None,
            ),
            ("MODBUS_CO2_CAL_DAYS", "Number of days to watch for minimum, default is 7 days.", Some("d")),
            ("MODBUS_CO2", "CO2 ", None),
        ];
        for &(name, description, want) in cases {
            assert_eq!(unit(name, description), want, "{name}: {description:?}");
        }
    }

    #[test]
    fn scales_stated_in_words() {
        let s = stated("MODBUS_FLOW_SPEED", "Velocity, unit 0.1m/s", "");
        assert_eq!((s.unit, s.scale), (Some("m/s"), Some(0.1)));
        let s = stated(
            "MODBUS_OUTPUT_CUR",
            "vale of output current , You need to divide by 10. For example, 123 means 12.3 ma",
            "",
        );
        assert_eq!(s.unit, Some("mA"));
        assert!(same(s.scale.unwrap(), 0.1));
        let s = stated(
            "MODBUS_VOLTAGE_VALUE",
            "Range:AC:0-260V;DC:0-380V.The voltage sensor reading, calibrated value.eg.1102 is 110.2V(0.1V)",
            "",
        );
        assert_eq!(s.unit, Some("V"));
        assert!(same(s.scale.unwrap(), 0.1));
        // Two examples with different scales (AC and DC): the unit, no scale.
        let s = stated(
            "MODBUS_CURRENT_VALUE",
            "Range:AC:0-50A;DC:0-100A.The current sensor reading, calibrated value;AC:eg.102 is 1.02A(0.01A)DC:eg.102 is 10.2A(0.1A)",
            "",
        );
        assert_eq!((s.unit, s.scale), (Some("A"), None));
        let s = stated(
            "MODBUS_COOLING_VALVE",
            "Output6, Analog output1, a number from 0-1000 representing 0% (closed) to 100% (open). When Range = On/Off mode, On=1000, Off=0.",
            "",
        );
        assert_eq!(s.unit, Some("%"));
        assert!(same(s.scale.unwrap(), 0.1));
        let s =
            stated("MODBUS_DAY_COOLING_DEADBAND", "offset from setpoint for cooling to begin. Units are 0.1 deg.", "");
        assert_eq!((s.unit, s.scale), (None, Some(0.1)));
        // The column wins and is normalised; a spelling it does not know is kept as written.
        assert_eq!(stated("X", "co2 ppm", "degC").unit, Some("°C"));
        assert_eq!(stated("X", "co2 ppm", " furlongs ").column.as_deref(), Some("furlongs"));
    }

    /// Over the bundled library: how many registers get a unit, specific ones pinned.
    #[test]
    fn the_library_gets_its_units() {
        let lib = ProfileLibrary::builtin();
        let point = |profile: &str, name: &str| lib.get(profile).unwrap().point(name).unwrap().clone();
        let registers: Vec<_> = lib.profiles().skip(1).flat_map(|p| p.points.iter()).collect();
        let with_unit = registers.iter().filter(|p| p.unit.is_some()).count();
        let mut counts: Vec<(String, usize)> = registers
            .iter()
            .filter_map(|p| p.unit.clone())
            .fold(HashMap::new(), |mut m, u| {
                *m.entry(u).or_insert(0) += 1;
                m
            })
            .into_iter()
            .collect();
        counts.sort();
        println!("{with_unit} of {} registers have a unit: {counts:?}", registers.len());
        assert_eq!(with_unit, 125, "{counts:?}");

        // The CO2 sensor's CO2 says only "CO2 ": ppm from CO2_Node's MODBUS_CO2 ("co2 value (ppm)").
        assert_eq!(point("CO2", "MODBUS_CO2").unit.as_deref(), Some("ppm"));
        assert_eq!(point("CO2", "MODBUS_TEMPERATURE_CELSIUS").unit.as_deref(), Some("°C"));
        assert_eq!(point("CO2", "MODBUS_TEMPERATURE_FAHRENHEIT").unit.as_deref(), Some("°F"));
        assert_eq!(point("CO2", "MODBUS_HUMIDITY").unit.as_deref(), Some("%RH"));
        // "CO2 alarm setpoint": CO2_Node's row of that name says "The poor alarm ppm setpoint".
        assert_eq!(point("CO2", "MODBUS_CO2_ALARM_SETPOINT").unit.as_deref(), Some("ppm"));
        // CO2_Node's MODBUS_OUTPUT_CO2 is a plain u16, the CO2 sensor's (0-10 volts) is /100: not borrowed.
        assert_eq!(point("CO2_Node", "MODBUS_OUTPUT_CO2").unit, None);
        assert_eq!(point("HUM", "MODBUS_HUMIDITY").unit.as_deref(), Some("%RH"));
        assert_eq!(point("HUM", "MODBUS_HUM_LIGHT_VALUE").unit.as_deref(), Some("lux"));
        assert_eq!(point("HUM", "MODBUS_DEW_PT").unit.as_deref(), Some("°C"));
        assert_eq!(point("AirLab", "MODBUS_PM2.5_WEIGHT_VALUE").unit.as_deref(), Some("µg/m³"));
        // Pressure is configurable (MODBUS_PRESSURE_UNIT): no unit is invented.
        assert_eq!(point("Pressure", "MODBUS_PRESSURE_VALUE_ORG").unit, None);
        assert_eq!(point("TSTAT8", "MODBUS_TEMPRATURE_CHIP").unit, None, "DegC or F");
        for profile in lib.profiles().skip(1) {
            for p in &profile.points {
                let n = p.name.to_ascii_uppercase();
                if n.contains("MODBUS_ADDRESS") || n.contains("SERIALNUMBER") || n.contains("BAUDRATE") {
                    assert_eq!(p.unit, None, "{}: {}", profile.name, p.name);
                }
                if p.codec.is_text() || matches!(p.codec.value_type, ValueType::Bool) {
                    assert_eq!(p.unit, None, "{}: {}", profile.name, p.name);
                }
            }
        }
        // The T3 controller's points get their units from their range codes, not from here.
        assert!(lib.get("T3-controller").unwrap().points.iter().all(|p| p.unit.is_none()));
    }

    #[test]
    fn stated_scales_apply_where_the_format_has_none() {
        let lib = ProfileLibrary::builtin();
        let codec = |profile: &str, name: &str| lib.get(profile).unwrap().point(name).unwrap().codec.to_string();
        // "a number from 0-1000 representing 0% (closed) to 100% (open)", format "16 Bit Unsigned Integer".
        assert_eq!(codec("TSTAT8", "MODBUS_COOLING_VALVE"), "u16 ABCD /10");
        let valve = lib.get("TSTAT8").unwrap().point("MODBUS_COOLING_VALVE").unwrap();
        assert_eq!(valve.unit.as_deref(), Some("%"));
        assert_eq!(valve.codec.decode(&[1000]).unwrap().as_f64(), Some(100.0));
        // "eg.1102 is 110.2V(0.1V)".
        assert_eq!(codec("SPM1", "MODBUS_VOLTAGE_VALUE"), "u16 ABCD /10");
        // "unit 0.1m/s".
        assert_eq!(codec("AFS", "MODBUS_FLOW_SPEED"), "u16 ABCD /10");
        // "Units are 0.1Deg, 10 = 1Deg" (the unit is either degree, the scale is stated).
        assert_eq!(codec("TSTAT8", "MODBUS_SETPOINT_INCREASE"), "u16 ABCD /10");
        // "You need to divide by 10. For example, 123 means 12.3 ma" on an "8 Bit Unsigned Integer".
        assert_eq!(codec("Transducer2", "MODBUS_OUTPUT_CUR_TEMP"), "u8lo ABCD /10");
        // Formats that have a scale keep it: "Units are 0.1 deg." on a "/10" format.
        assert_eq!(codec("TSTAT8", "MODBUS_DAY_COOLING_DEADBAND"), "i16 ABCD /10");
        // "AC: 102 is 1.02A, DC: 102 is 10.2A": no scale.
        assert_eq!(codec("SPM1", "MODBUS_CURRENT_VALUE"), "u16 ABCD");
        // T3BB's values "divide 1000" on a "/1000" format: unchanged.
        assert_eq!(codec("T3BB", "MODBUS_INPUT_VALUE_1"), codec("T3-controller", "IN1"));
    }
}
