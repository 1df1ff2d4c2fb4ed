//! The behaviour model: what each point of a simulated device stands for, and the building physics
//! that moves those values as time passes.
//!
//! A T3 controller is laid out as a small air handler with four zones:
//!
//! | points | role | range |
//! |---|---|---|
//! | IN1-IN4 | zone temperatures (°C): follow the time of day, their heating valve, the cooling valve, people | 1 (thermistor °C) |
//! | IN5 | outside air temperature, warmest mid-afternoon, a different weather every day | 1 |
//! | IN6 | relative humidity | 27 (%RH) |
//! | IN7 | CO2, up with people, down with the outside-air damper | 28 (ppm) |
//! | IN8 | supply air temperature | 1 |
//! | IN9 | occupancy sensor (digital), busy in occupied hours | 10 (Unoccupied/Occupied) |
//! | IN10 | door contact (digital), opens now and then | 2 (Close/Open) |
//! | OUT1-OUT4 | zone heating valves, 0-100 % | 4 (%) |
//! | OUT5 | cooling valve, 0-100 % | 2 (%Open) |
//! | OUT6 | supply fan (digital) | 1 (Off/On) |
//! | OUT7 | outside-air damper, 0-10 V | 1 (0-10 V) |
//! | OUT8 | lights (digital) | 1 (Off/On) |
//! | VAR1-VAR4 | zone set points (°C) | unit 1 (°C) |
//! | VAR5 | occupied mode (digital), Mon-Fri 07:00-19:00 local time | 10 (Unoccupied/Occupied) |
//! | VAR6 | CO2 limit (ppm) | unit 24 (ppm) |
//! | VAR7 | heating energy (kWh), only increases, with the heating valves | unit 10 (kWh) |
//!
//! Everything else is unused (range 0, value 0). Outputs and set points hold what was written.
//!
//! Each of those points has a T3000-style label and description ([`t3_text`]: "ZN1 TEMP" / "Zone 1
//! temperature", "SUP TEMP" / "Supply air temp", "FAN CMD" / "Supply fan command", ...) that names what the
//! model makes of it; the device serves them in its point records like a panel.
//!
//! Library products get roles from their read-only registers' names (and units, see [`crate::units`]):
//! temperature (°C or °F, the room's), humidity, CO2, pressure, particles, light, occupancy, and counters (energy, totals) that
//! only increase, also when split over two registers (`..._HIGH`/`..._LOW`: upper and lower word,
//! `..._INTEGER`/`..._FLOAT`: whole units and thousandths); the rest keeps a fixed value. Temco's
//! library marks many measurements writable, so a name decides, not writability; what is written to a
//! moving register is overwritten at the next tick.
//!
//! Time: the model integrates in steps of at most a minute between two ticks, drawing the same number
//! of random numbers per step whatever the outputs are, so two devices with the same seed and tick
//! times differ only by what was written to them. A jump of more than two days restarts from the
//! steady state.

use crate::codec::ValueType;
use crate::profile::{PointType, Profile, ProfilePoint};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::f64::consts::PI;

/// Zones of a T3 controller.
pub(crate) const ZONES: usize = 4;
/// Longest integration step, seconds.
const STEP_S: f64 = 60.0;
/// A longer gap between ticks restarts from the steady state.
const MAX_CATCH_UP_S: f64 = 2.0 * 86_400.0;

/// What a point stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Role {
    /// Nothing moves it but writes.
    Hold,
    /// Room temperature of a zone, °C.
    Zone(usize),
    /// The room temperature of zone 0, °F.
    ZoneF,
    Outside,
    Supply,
    Humidity,
    Co2,
    Particles,
    Light,
    /// A pressure around `base` (engineering units).
    Pressure {
        base: f64,
    },
    /// Digital: people present.
    Occupancy,
    /// Digital: door open.
    Door,
    /// Digital: the occupied hours of the schedule.
    Schedule,
    /// Heating energy, kWh, from the heating valves.
    HeatEnergy,
    /// A counter that increases by `per_hour`.
    Counter {
        per_hour: f64,
    },
    /// One register of a counter split over two points (`..._HIGH` / `..._LOW`, `..._INTEGER` /
    /// `..._FLOAT`): the counter lives at point `total`; `high` is the upper part.
    CounterPart {
        total: usize,
        part: Part,
    },
}

/// Which half of a split counter a point shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// `floor(total / 65536)`.
    High,
    /// `total mod 65536`.
    Low,
    /// `floor(total)`.
    Integer,
    /// The fraction, in thousandths.
    Fraction,
}

/// Suffix pairs that split one counter over two registers: (upper, lower, upper part, lower part).
const SPLIT_SUFFIXES: [(&str, &str, Part, Part); 3] = [
    ("_HIGH", "_LOW", Part::High, Part::Low),
    ("_HI", "_LO", Part::High, Part::Low),
    ("_INTEGER", "_FLOAT", Part::Integer, Part::Fraction),
];

/// Turns counters named as the two halves of one value into [`Role::CounterPart`]s of one counter,
/// kept at the lower half's index.
fn pair_split_counters(profile: &Profile, roles: &mut [Role]) {
    let names: Vec<String> = profile.points.iter().map(|p| p.name.to_ascii_uppercase()).collect();
    for upper in 0..roles.len() {
        if !matches!(roles[upper], Role::Counter { .. }) {
            continue;
        }
        for (hi, lo, hi_part, lo_part) in SPLIT_SUFFIXES {
            let Some(stem) = names[upper].strip_suffix(hi) else { continue };
            let lower_name = format!("{stem}{lo}");
            if let Some(lower) = names.iter().position(|n| *n == lower_name) {
                roles[upper] = Role::CounterPart { total: lower, part: hi_part };
                roles[lower] = Role::CounterPart { total: lower, part: lo_part };
                break;
            }
        }
    }
}

/// How a T3 point is configured at start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct T3Setup {
    pub role: Role,
    pub range: u16,
    pub analog: bool,
    /// Initial engineering value (digital: 0 / 1) for held points.
    pub initial: f64,
}

/// Output values the physics reads, taken from the registers once per tick.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outputs {
    /// Heating valve per zone, 0-100 %.
    pub heat: [f64; ZONES],
    /// Cooling valve, 0-100 %.
    pub cool: f64,
    pub fan_on: bool,
    /// Outside-air damper, 0-10 V.
    pub damper_v: f64,
}

/// The hidden physical state of one device.
#[derive(Debug, Clone)]
pub(crate) struct Physics {
    pub zones: [f64; ZONES],
    pub outside: f64,
    pub supply: f64,
    pub humidity: f64,
    pub co2: f64,
    pub particles: f64,
    pub occupancy: bool,
    pub door: bool,
    pub energy_kwh: f64,
}

/// One device's behaviour.
#[derive(Debug)]
pub(crate) struct Model {
    pub roles: Vec<Role>,
    /// Counter values, per point (at the point itself for [`Role::Counter`], at `total` for
    /// [`Role::CounterPart`]).
    pub counters: Vec<f64>,
    /// Counter increase per hour, per point (0 for everything else).
    rates: Vec<f64>,
    pub physics: Physics,
    zone_offset: [f64; ZONES],
    seed: u64,
    rng: StdRng,
    last_t: Option<f64>,
}

/// Local time of day in hours, 0..24.
pub(crate) fn local_hours(t: f64, utc_offset_s: f64) -> f64 {
    ((t + utc_offset_s) / 3600.0).rem_euclid(24.0)
}

/// +1 at 15:00, -1 at 03:00.
fn diurnal(hours: f64) -> f64 {
    (2.0 * PI * (hours - 9.0) / 24.0).sin()
}

/// Mon-Fri 07:00-19:00 local time.
pub(crate) fn occupied_hours(t: f64, utc_offset_s: f64) -> bool {
    let local = t + utc_offset_s;
    let day = (local / 86_400.0).floor() as i64;
    // 1970-01-01 was a Thursday: 0 = Sunday.
    let weekday = (day + 4).rem_euclid(7);
    let h = local_hours(t, utc_offset_s);
    (1..=5).contains(&weekday) && (7.0..19.0).contains(&h)
}

/// A well-mixed 64-bit hash (SplitMix64's finaliser).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from a hash of `parts`.
pub(crate) fn unit_hash(parts: &[u64]) -> f64 {
    let h = parts.iter().fold(0x6A09_E667_F3BC_C908u64, |acc, &p| mix(acc ^ p));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The T3 layout of the module docs for one point; `seed` varies the initial values.
pub(crate) fn t3_setup(p: &ProfilePoint, seed: u64) -> T3Setup {
    let n = p.point_number as usize;
    let r = |salt: u64| unit_hash(&[seed, salt, p.point_number.into(), p.point_type as u64]);
    let unused = T3Setup { role: Role::Hold, range: 0, analog: true, initial: 0.0 };
    let analog = |role, range, initial| T3Setup { role, range, analog: true, initial };
    let digital = |role, range, initial| T3Setup { role, range, analog: false, initial };
    match (p.point_type, n) {
        (PointType::Input, 1..=4) => analog(Role::Zone(n - 1), 1, 0.0),
        (PointType::Input, 5) => analog(Role::Outside, 1, 0.0),
        (PointType::Input, 6) => analog(Role::Humidity, 27, 0.0),
        (PointType::Input, 7) => analog(Role::Co2, 28, 0.0),
        (PointType::Input, 8) => analog(Role::Supply, 1, 0.0),
        (PointType::Input, 9) => digital(Role::Occupancy, 10, 0.0),
        (PointType::Input, 10) => digital(Role::Door, 2, 0.0),
        // Heating valves start somewhere between 0 and 40 %, in steps of 5.
        (PointType::Output, 1..=4) => analog(Role::Hold, 4, (r(1) * 9.0).floor() * 5.0),
        (PointType::Output, 5) => analog(Role::Hold, 2, 0.0),
        (PointType::Output, 6) => digital(Role::Hold, 1, 1.0),
        (PointType::Output, 7) => analog(Role::Hold, 1, 3.0 + (r(2) * 7.0).floor() * 0.5),
        (PointType::Output, 8) => digital(Role::Hold, 1, 1.0),
        // Set points 20.5-22.5 °C in half degrees.
        (PointType::Variable, 1..=4) => analog(Role::Hold, 1, 20.5 + (r(3) * 5.0).floor() * 0.5),
        (PointType::Variable, 5) => digital(Role::Schedule, 10, 0.0),
        (PointType::Variable, 6) => analog(Role::Hold, 24, 1000.0),
        (PointType::Variable, 7) => analog(Role::HeatEnergy, 10, 0.0),
        _ => unused,
    }
}

/// The label (8 characters at most) and description (20 at most, 18 for an output) of a T3 point of the layout of the module
/// docs; `None` for unused points.
pub(crate) fn t3_text(p: &ProfilePoint) -> Option<(String, String)> {
    let n = p.point_number as usize;
    let fixed = |label: &str, description: &str| Some((label.to_owned(), description.to_owned()));
    match (p.point_type, n) {
        (PointType::Input, 1..=ZONES) => Some((format!("ZN{n} TEMP"), format!("Zone {n} temperature"))),
        (PointType::Input, 5) => fixed("OA TEMP", "Outside air temp"),
        (PointType::Input, 6) => fixed("ZONE RH", "Zone humidity"),
        (PointType::Input, 7) => fixed("ZONE CO2", "Zone CO2"),
        (PointType::Input, 8) => fixed("SUP TEMP", "Supply air temp"),
        (PointType::Input, 9) => fixed("OCC SENS", "Occupancy sensor"),
        (PointType::Input, 10) => fixed("DOOR", "Door contact"),
        (PointType::Output, 1..=ZONES) => Some((format!("ZN{n} HTG"), format!("Zone {n} heat valve"))),
        (PointType::Output, 5) => fixed("CHW VLV", "Chilled wtr valve"),
        (PointType::Output, 6) => fixed("FAN CMD", "Supply fan command"),
        (PointType::Output, 7) => fixed("OA DMPR", "Outside air damper"),
        (PointType::Output, 8) => fixed("LIGHTS", "Lighting"),
        (PointType::Variable, 1..=ZONES) => Some((format!("ZN{n} SP"), format!("Zone {n} setpoint"))),
        (PointType::Variable, 5) => fixed("OCC MODE", "Occupied mode"),
        (PointType::Variable, 6) => fixed("CO2 LIM", "CO2 limit"),
        (PointType::Variable, 7) => fixed("HTG KWH", "Heating energy"),
        _ => None,
    }
}

/// The routines a simulated T3 controller starts with, as (first register, words) of each record
/// written: weekly routine 1 "OCC" (occupied hours: Monday to Friday 07:00-18:00, Saturday
/// 08:00-12:00, holidays off) linked to annual routine 1 "HOLIDAYS" (01-01, 07-04, 12-25) as its
/// first holiday, with event flags that agree. The other routines are empty.
pub(crate) fn t3_routines(panel: u8) -> Vec<(u16, Vec<u16>)> {
    use crate::t3::records::{AnnualRoutine, PointRef, Record, ScheduleTimes, WeeklyRoutine, point_type};
    use crate::t3::{routines, to_registers};
    use t3_core::schedule::MonthDay;
    let [weekly_at, annual_at, times_at, days_at, flags_at, _] = crate::panel::routine_blocks().map(|(first, _)| first);
    let weekly = WeeklyRoutine {
        description: "Occupied hours".into(),
        label: "OCC".into(),
        override_1: PointRef { number: 0, point_type: point_type::HOLIDAY + 1, panel },
        ..WeeklyRoutine::default()
    };
    let mut times = ScheduleTimes::default();
    for day in &mut times.days[..5] {
        day[0] = (7, 0);
        day[1] = (18, 0);
    }
    times.days[5][0] = (8, 0);
    times.days[5][1] = (12, 0);
    let annual =
        AnnualRoutine { description: "Public holidays".into(), label: "HOLIDAYS".into(), ..AnnualRoutine::default() };
    let days: Vec<MonthDay> =
        [(1, 1), (7, 4), (12, 25)].into_iter().filter_map(|(m, d)| MonthDay::new(m, d).ok()).collect();
    let flags: Vec<u8> = routines::flags_of(&times).iter().flatten().copied().collect();
    let mut empty_flags = Vec::new();
    for i in 1..crate::panel::WEEKLY_ROUTINES as u16 {
        empty_flags.push((flags_at + i * 36, to_registers(&[0xFF; 72])));
    }
    let mut out = vec![
        (weekly_at, to_registers(&weekly.encode())),
        (annual_at, to_registers(&annual.encode())),
        (times_at, to_registers(&times.encode())),
        (days_at, to_registers(&routines::bitmap_of(&days).encode())),
        (flags_at, to_registers(&flags)),
    ];
    out.extend(empty_flags);
    out
}

/// The program table a simulated T3 controller starts with (`PRG1..16`): PRG1 "AHU" (air handler
/// sequence, 412 bytes of code) running, PRG2 "BOILER" (boiler plant, 236 bytes) stopped, PRG3
/// "LIGHTS" (lighting by occupancy, 98 bytes) running in manual. The rest are empty as the firmware
/// initialises them: on, auto, no code (temcocontrols/T3-programmable-controller-on-ESP32
/// `temco_bacnet/private/user_data.c` lines 564-571). A running program's first trailing byte is its
/// last scan's duration in milliseconds (the ESP32 firmware's `costtime`).
pub(crate) fn t3_programs() -> Vec<crate::t3::records::ProgramRecord> {
    use crate::t3::records::ProgramRecord;
    let program = |label: &str, description: &str, bytes: u16, on: bool, manual: bool| ProgramRecord {
        description: description.into(),
        label: label.into(),
        bytes,
        on_off: u8::from(on),
        auto_manual: u8::from(manual),
        rest: [if on { 2 } else { 0 }, 0, 0],
    };
    let mut table = vec![
        program("AHU", "Air handler sequence", 412, true, false),
        program("BOILER", "Boiler plant", 236, false, false),
        program("LIGHTS", "Lights by occupancy", 98, true, true),
    ];
    table.resize(crate::panel::PROGRAMS, ProgramRecord { on_off: 1, ..ProgramRecord::default() });
    table
}

/// Words in a name (digits at the end ignored) that make a register a setting, a test value or a
/// configuration rather than a measurement.
const SETTING_WORDS: &[&str] = &[
    "SET",
    "SP",
    "OFFSET",
    "CALIB",
    "CAL",
    "CALIBRATION",
    "ALARM",
    "MIN",
    "MAX",
    "RANGE",
    "LIMIT",
    "FILTER",
    "SELECT",
    "DSELECT",
    "MODE",
    "TYPE",
    "UNIT",
    "DEADBAND",
    "ENABLE",
    "VERSION",
    "ADDRESS",
    "BAUD",
    "DELAY",
    "DEFAULT",
    "DEF",
    "RESET",
    "CLEAR",
    "EXIST",
    "STATUS",
    "FLAG",
    "ERROR",
    "FAULT",
    "CONFIG",
    "INDEX",
    "ID",
    "SERIAL",
    "MODEL",
    "REV",
    "SCALE",
    "ZERO",
    "SPAN",
    "SLOPE",
    "DISPLAY",
    "DISP",
    "ITEM",
    "OUTPUT",
    "CUSTOMER",
    "WHICH",
    "MANUAL",
    "TEST",
    "BKCAL",
    "NATURE",
    "REMAIN",
    "CTR",
    "TIMER",
    "TIME",
    "SENSETIVITY",
    "SENSITIVITY",
    "BACKLIGHT",
    "KEEP",
    "SECONDS",
    "SWITCH",
    "ZONE",
    "DEGREE",
    "FORCED",
    "DELTA",
    "DUTY",
    "PWM",
    "AD",
    "ONOFF",
    "LOWVALUE",
    "DATA",
];

/// The role of a library register, from the words of its name and its unit (see the module docs).
pub(crate) fn library_role(p: &ProfilePoint, seed: u64) -> Role {
    // Temco's library marks many measurements writable (03_06), so writability says little here.
    if matches!(p.codec.value_type, ValueType::Str { .. } | ValueType::Bit { .. }) {
        return Role::Hold;
    }
    let name = p.name.to_ascii_uppercase();
    let unit = p.unit.as_deref().unwrap_or("").to_ascii_uppercase();
    let words: Vec<&str> = name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let stem = |w: &&str| w.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned();
    let any_word = |f: &dyn Fn(&str, &str) -> bool| words.iter().any(|w| f(w, &stem(w)));
    if any_word(&|_, s| SETTING_WORDS.contains(&s)) || name.contains("SETPOINT") {
        return Role::Hold;
    }
    if any_word(&|w, _| w == "PIR" || w.starts_with("OCCUP")) {
        return Role::Occupancy;
    }
    if matches!(p.codec.value_type, ValueType::Bool) {
        return Role::Hold;
    }
    if any_word(&|_, s| matches!(s, "TEMP" | "TEMPERATURE" | "TEMPRATURE")) {
        let fahrenheit = words.iter().any(|w| matches!(*w, "F" | "FAHRENHEIT")) || unit.contains("°F") || unit == "F";
        return if fahrenheit { Role::ZoneF } else { Role::Zone(0) };
    }
    // A light level in lux, whatever else its name says (the humidity sensor's MODBUS_HUM_LIGHT_VALUE).
    if unit == "LUX" {
        return Role::Light;
    }
    if any_word(&|_, s| matches!(s, "HUM" | "HUMI" | "HUMIDITY" | "RH")) || unit.contains("RH") {
        return Role::Humidity;
    }
    if words.contains(&"CO2") {
        return Role::Co2;
    }
    let pm =
        |w: &str| w.strip_prefix("PM").is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()));
    if any_word(&|w, _| pm(w) || w.starts_with("PARTICLE") || w == "DUST") {
        return Role::Particles;
    }
    if any_word(&|w, _| matches!(w, "LUX" | "LIGHT" | "LIGHTING")) {
        return Role::Light;
    }
    if any_word(&|w, _| w.starts_with("PRESS")) {
        let base = match unit.as_str() {
            u if u.contains("KPA") => 101.3,
            u if u.contains("PSI") => 14.7,
            u if u.contains("BAR") => 1.013,
            u if u.contains("IN") => 1.0,
            _ => 250.0,
        };
        return Role::Pressure { base };
    }
    if any_word(&|w, _| matches!(w, "ENERGY" | "KWH" | "TOTAL" | "ACCUM" | "CONSUMPTION" | "VOLUME")) {
        let per_hour = 1.0 + 4.0 * unit_hash(&[seed, p.address.into(), 7]);
        return Role::Counter { per_hour };
    }
    Role::Hold
}

/// True when the profile is laid out as a T3 controller (IN/OUT/VAR points).
pub(crate) fn is_t3(profile: &Profile) -> bool {
    profile.points.iter().any(|p| p.point_type != PointType::Register)
}

impl Model {
    pub(crate) fn new(profile: &Profile, seed: u64) -> Model {
        let t3 = is_t3(profile);
        let mut roles: Vec<Role> =
            profile
                .points
                .iter()
                .map(|p| {
                    if t3 && p.point_type != PointType::Register {
                        t3_setup(p, seed).role
                    } else {
                        library_role(p, seed)
                    }
                })
                .collect();
        pair_split_counters(profile, &mut roles);
        let mut rng = StdRng::seed_from_u64(seed);
        let zone_offset = std::array::from_fn(|_| rng.random_range(-0.8..0.8));
        let mut counters = vec![0.0; roles.len()];
        let mut rates = vec![0.0; roles.len()];
        for (i, role) in roles.iter().enumerate() {
            match *role {
                Role::Counter { per_hour } => {
                    rates[i] = per_hour;
                    counters[i] = rng.random_range(100.0..10_000.0f64).round();
                }
                Role::CounterPart { total, part } if total == i => {
                    rates[i] = 1.0 + 4.0 * unit_hash(&[seed, i as u64, 13]);
                    // A word pair starts above 65,535 so that both words show something.
                    let start = if part == Part::Low { 100_000.0..300_000.0 } else { 100.0..10_000.0f64 };
                    counters[i] = rng.random_range(start).round();
                }
                _ => {}
            }
        }
        let energy_kwh = rng.random_range(1_000.0..20_000.0f64).round();
        Model {
            roles,
            counters,
            rates,
            physics: Physics {
                zones: [21.0; ZONES],
                outside: 10.0,
                supply: 16.0,
                humidity: 45.0,
                co2: 450.0,
                particles: 10.0,
                occupancy: false,
                door: false,
                energy_kwh,
            },
            zone_offset,
            seed,
            rng,
            last_t: None,
        }
    }

    /// Time of the last tick, if any.
    pub(crate) fn last_tick(&self) -> Option<f64> {
        self.last_t
    }

    /// Day-to-day weather: an outside temperature offset for the local day, ±4 °C.
    fn weather(&self, t: f64, utc_offset_s: f64) -> f64 {
        let day = ((t + utc_offset_s) / 86_400.0).floor() as i64;
        (unit_hash(&[self.seed, day as u64, 11]) - 0.5) * 8.0
    }

    fn outside_target(&self, t: f64, off: f64) -> f64 {
        9.0 + 6.0 * diurnal(local_hours(t, off)) + self.weather(t, off)
    }

    fn zone_target(&self, z: usize, t: f64, off: f64, out: &Outputs) -> f64 {
        let people = if self.physics.occupancy { 0.5 } else { 0.0 };
        20.8 + self.zone_offset[z]
            + 1.0 * diurnal(local_hours(t, off))
            + 0.05 * (self.physics.outside - 9.0)
            + people
            + 5.0 * out.heat[z] / 100.0
            - 3.5 * out.cool / 100.0
    }

    fn supply_target(&self, out: &Outputs) -> f64 {
        let room = self.physics.zones.iter().sum::<f64>() / ZONES as f64;
        if out.fan_on {
            let heat = out.heat.iter().sum::<f64>() / ZONES as f64;
            14.0 + 0.25 * heat - 0.06 * out.cool + 0.1 * (self.physics.outside - 9.0)
        } else {
            room
        }
    }

    fn humidity_target(&self, t: f64, off: f64) -> f64 {
        let people = if self.physics.occupancy { 4.0 } else { 0.0 };
        45.0 - 7.0 * diurnal(local_hours(t, off)) + people
    }

    fn co2_target(&self, t: f64, off: f64, out: &Outputs) -> f64 {
        if occupied_hours(t, off) || self.physics.occupancy {
            420.0 + 550.0 * (1.0 - 0.6 * (out.damper_v / 10.0).clamp(0.0, 1.0))
        } else {
            420.0
        }
    }

    /// Relaxes `x` toward `target` with time constant `tau` over `dt`, plus noise of `sigma` per minute.
    fn relax(x: f64, target: f64, tau: f64, dt: f64, noise: f64, sigma: f64) -> f64 {
        x + (target - x) * (1.0 - (-dt / tau).exp()) + noise * sigma * (dt / 60.0).sqrt()
    }

    /// Puts the physics at the steady state for time `t`.
    fn settle(&mut self, t: f64, off: f64, out: &Outputs) {
        self.physics.outside = self.outside_target(t, off);
        self.physics.occupancy = occupied_hours(t, off) && self.rng.random_bool(0.7);
        self.physics.door = false;
        for z in 0..ZONES {
            self.physics.zones[z] = self.zone_target(z, t, off, out);
        }
        self.physics.supply = self.supply_target(out);
        self.physics.humidity = self.humidity_target(t, off);
        self.physics.co2 = self.co2_target(t, off, out);
        self.physics.particles = 8.0 + if self.physics.occupancy { 6.0 } else { 0.0 };
    }

    /// One integration step of `dt` seconds ending at `t`. Draws the same random numbers whatever
    /// the state and outputs are.
    fn step(&mut self, t: f64, dt: f64, off: f64, out: &Outputs) {
        let mut noise = [0.0f64; ZONES + 5];
        for n in &mut noise {
            *n = self.rng.random_range(-1.0..1.0);
        }
        let (u_occ, u_door): (f64, f64) = (self.rng.random(), self.rng.random());

        let outside_target = self.outside_target(t, off);
        self.physics.outside = Self::relax(self.physics.outside, outside_target, 2.0 * 3600.0, dt, noise[ZONES], 0.03);
        for (z, &n) in noise.iter().enumerate().take(ZONES) {
            let target = self.zone_target(z, t, off, out);
            self.physics.zones[z] = Self::relax(self.physics.zones[z], target, 45.0 * 60.0, dt, n, 0.02);
        }
        let supply = self.supply_target(out);
        self.physics.supply = Self::relax(self.physics.supply, supply, 10.0 * 60.0, dt, noise[ZONES + 1], 0.05);
        let humidity = self.humidity_target(t, off);
        self.physics.humidity =
            Self::relax(self.physics.humidity, humidity, 3600.0, dt, noise[ZONES + 2], 0.1).clamp(15.0, 90.0);
        let co2 = self.co2_target(t, off, out);
        self.physics.co2 = Self::relax(self.physics.co2, co2, 30.0 * 60.0, dt, noise[ZONES + 3], 3.0).max(380.0);
        let particles = 8.0 + if self.physics.occupancy { 6.0 } else { 0.0 };
        self.physics.particles =
            Self::relax(self.physics.particles, particles, 30.0 * 60.0, dt, noise[ZONES + 4], 0.3).max(0.5);

        // Two-state switches: mean time in each state, by occupied hours.
        let busy = occupied_hours(t, off);
        let flip = |u: f64, mean_s: f64| u < 1.0 - (-dt / mean_s).exp();
        let (occ_on, occ_off) = if busy { (10.0 * 60.0, 30.0 * 60.0) } else { (6.0 * 3600.0, 10.0 * 60.0) };
        if flip(u_occ, if self.physics.occupancy { occ_off } else { occ_on }) {
            self.physics.occupancy = !self.physics.occupancy;
        }
        let door_closed_mean = if busy { 45.0 * 60.0 } else { 8.0 * 3600.0 };
        if flip(u_door, if self.physics.door { 2.0 * 60.0 } else { door_closed_mean }) {
            self.physics.door = !self.physics.door;
        }

        let heat_kw = 4.0 * out.heat.iter().map(|h| h.clamp(0.0, 100.0)).sum::<f64>() / 100.0;
        self.physics.energy_kwh += heat_kw * dt / 3600.0;
        for (value, rate) in self.counters.iter_mut().zip(&self.rates) {
            *value += rate * dt / 3600.0;
        }
    }

    /// Advances the model to `now`. Returns false when `now` is not after the last tick.
    pub(crate) fn advance(&mut self, now: f64, off: f64, out: &Outputs) -> bool {
        match self.last_t {
            Some(last) if now <= last => return false,
            Some(last) if now - last <= MAX_CATCH_UP_S => {
                let steps = ((now - last) / STEP_S).ceil().max(1.0);
                let dt = (now - last) / steps;
                for i in 1..=steps as u64 {
                    self.step(last + dt * i as f64, dt, off, out);
                }
            }
            _ => self.settle(now, off, out),
        }
        self.last_t = Some(now);
        true
    }

    /// The engineering value a point with `role` shows now (`None` for held points).
    pub(crate) fn value_of(&self, index: usize, t: f64, off: f64) -> Option<f64> {
        let p = &self.physics;
        let round = |v: f64, step: f64| (v / step).round() * step;
        Some(match self.roles[index] {
            Role::Hold => return None,
            Role::Zone(z) => round(p.zones[z], 0.1),
            Role::ZoneF => round(p.zones[0] * 1.8 + 32.0, 0.1),
            Role::Outside => round(p.outside, 0.1),
            Role::Supply => round(p.supply, 0.1),
            Role::Humidity => round(p.humidity, 0.1),
            Role::Co2 => p.co2.round(),
            Role::Particles => round(p.particles, 0.1),
            Role::Light => {
                let h = local_hours(t, off);
                let daylight = (PI * (h - 6.0) / 12.0).sin().max(0.0) * 600.0;
                (daylight + if p.occupancy { 300.0 } else { 0.0 }).round()
            }
            Role::Pressure { base } => {
                let wave = (2.0 * PI * t / (37.0 * 60.0)).sin() * 0.06 * base;
                let precision = if base >= 100.0 { 1.0 } else { 0.01 };
                round(base + wave, precision)
            }
            Role::Occupancy => f64::from(u8::from(p.occupancy)),
            Role::Door => f64::from(u8::from(p.door)),
            Role::Schedule => f64::from(u8::from(occupied_hours(t, off))),
            Role::HeatEnergy => round(p.energy_kwh, 0.001),
            Role::Counter { .. } => round(self.counters[index], 0.001),
            Role::CounterPart { total, part } => {
                let c = self.counters[total].max(0.0);
                match part {
                    Part::High => (c.floor() / 65_536.0).floor(),
                    Part::Low => c.floor() % 65_536.0,
                    Part::Integer => c.floor(),
                    Part::Fraction => ((c - c.floor()) * 1000.0).floor(),
                }
            }
        })
    }

    /// Sets the physical quantity behind a point, as if the field changed. False for held points.
    pub(crate) fn set_field(&mut self, index: usize, v: f64) -> bool {
        let p = &mut self.physics;
        match self.roles[index] {
            Role::Hold | Role::Light | Role::Pressure { .. } | Role::Schedule => return false,
            Role::Zone(z) => p.zones[z] = v,
            Role::ZoneF => p.zones[0] = (v - 32.0) / 1.8,
            Role::Outside => p.outside = v,
            Role::Supply => p.supply = v,
            Role::Humidity => p.humidity = v,
            Role::Co2 => p.co2 = v,
            Role::Particles => p.particles = v,
            Role::Occupancy => p.occupancy = v != 0.0,
            Role::Door => p.door = v != 0.0,
            Role::HeatEnergy => p.energy_kwh = v,
            Role::Counter { .. } => self.counters[index] = v,
            Role::CounterPart { total, part } => {
                let c = self.counters[total];
                self.counters[total] = match part {
                    Part::High => v * 65_536.0 + c.floor() % 65_536.0,
                    Part::Low => (c.floor() / 65_536.0).floor() * 65_536.0 + v,
                    Part::Integer => v + (c - c.floor()),
                    Part::Fraction => c.floor() + v / 1000.0,
                };
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every point the model uses has a label and description that fit a panel's fields, and names what
    /// the point is in the model (its range and role).
    #[test]
    fn t3_points_are_named_for_what_they_are() {
        let t3 = crate::profile::ProfileLibrary::builtin().get("T3-controller").unwrap();
        let mut named = 0;
        for p in &t3.points {
            let setup = t3_setup(p, 1);
            let Some((label, description)) = t3_text(p) else {
                assert_eq!(setup.range, 0, "{} is used but has no label", p.name);
                continue;
            };
            named += 1;
            assert_ne!(setup.range, 0, "{} is unused but labelled", p.name);
            let most = crate::labels::description_bytes(p.point_type) - 1;
            assert!(label.len() <= 8 && description.len() <= most, "{}: {label:?} {description:?}", p.name);
            let label_says = |w: &str| label.contains(w);
            match setup.role {
                Role::Zone(z) => assert_eq!(label, format!("ZN{} TEMP", z + 1)),
                Role::Outside => assert!(label_says("OA") && label_says("TEMP")),
                Role::Supply => assert_eq!(label, "SUP TEMP"),
                Role::Humidity => assert_eq!((label_says("RH"), setup.range), (true, 27)),
                Role::Co2 => assert_eq!((label_says("CO2"), setup.range), (true, 28)),
                Role::Occupancy => assert!(label_says("OCC") && !setup.analog),
                Role::Door => assert!(label_says("DOOR") && !setup.analog),
                Role::Schedule => assert!(label_says("OCC") && !setup.analog),
                Role::HeatEnergy => assert_eq!((label_says("KWH"), setup.range), (true, 10)),
                _ => {}
            }
        }
        assert_eq!(named, 10 + 8 + 7);
    }

    #[test]
    fn clock_arithmetic() {
        // 2026-06-03 (a Wednesday) 15:00 UTC.
        let wed_15 = 1_780_498_800.0;
        assert!((local_hours(wed_15, 0.0) - 15.0).abs() < 1e-9);
        assert!((local_hours(wed_15, 7200.0) - 17.0).abs() < 1e-9);
        assert!(occupied_hours(wed_15, 0.0));
        assert!(!occupied_hours(wed_15 + 6.0 * 3600.0, 0.0));
        // Saturday.
        assert!(!occupied_hours(wed_15 + 3.0 * 86_400.0, 0.0));
        assert!(diurnal(15.0) > 0.99 && diurnal(3.0) < -0.99);
    }
}
