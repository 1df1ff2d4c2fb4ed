//! Device profiles: the points a kind of Temco device exposes over Modbus, with their addresses and codecs.
//!
//! Two sources feed the [`ProfileLibrary`]:
//! - [`t3_controller`]: the point model of a programmable T3 controller (T3-BB, T3-LB, T3-TB, T3-Nano and their
//!   ESP32 versions): IN1..64, OUT1..64 and VAR1..128, each a signed 32-bit value x1000 in two holding registers,
//!   with the registers that hold its auto/manual flag, range and analog/digital flag.
//! - Temco's register library (`drivers/profiles/*.csv`, exported from T3000 WebView's register database): one
//!   profile per product, one [`PointType::Register`] point per register row.
//!
//! Discovery reads register 7 (the product model) and calls [`ProfileLibrary::by_product_model`]. The T3 controller
//! profile comes first, so it answers for the controller models even though the library's "T3BB" profile maps them
//! too; "T3BB" remains available by name for its 1,500 configuration registers.
//!
//! Library rows become points as follows (see [`ProfileLibrary::from_temco_csv`]):
//! - kind from the function codes at the start of `operation` (03/06/16 holding, 04 input, 01/05/15 coil,
//!   02 discrete input); writable if a write code (05/06/15/16) is among them. Write-only rows ("06 Write Single
//!   Register") are kept: Temco devices answer reads across their whole map (T3000 reads them in blocks of 100
//!   from address 0).
//! - codec from `data_format` and `register_length` by [`Codec::parse_temco`]; rows it does not understand are
//!   skipped, and so are rows with a non-numeric address, length or device, and a second row at an address already
//!   taken (the T3-32I library lists FILTER31/32 at the addresses of RANGE3/4). Skipped rows are listed by
//!   [`ProfileLibrary::skipped`].
//! - names are the library's `register_name`; a name seen before in the same product gets `_<address>` appended
//!   (the library repeats MODBUS_FIRMWARE_VERSION for the low and high register), so names are unique,
//!   case-insensitively, within a profile.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use t3_core::config::{ConfigError, DeviceConfig};

use crate::codec::{Codec, RegisterKind, ValueType};
use crate::planner::{self, Limits, PlanError, PlanItem, ReadRequest};

/// Name of the T3 controller profile.
pub const T3_CONTROLLER: &str = "T3-controller";

/// Product models (holding register 7) of the programmable T3 controllers, from T3000's `T3000/ProductModel.h`:
/// 35 `PM_MINIPANEL` (T3-BB/LB/TB), 74 `PM_MINIPANEL_ARM` (ARM T3-BB/LB/TB/Nano), 88 `PM_ESP32_T3_SERIES` ("used for
/// the latest ESP32 version of T3 BB LB TB Nano"). T3000 treats exactly these three as controllers ("Mini Panel")
/// when it builds its device tree (`T3000/MainFrm.cpp`).
pub const T3_CONTROLLER_MODELS: [u16; 3] = [35, 74, 88];

/// Registers per request for the built-in profiles: T3000 itself reads Temco devices in blocks of 100.
pub const TEMCO_MAX_REGISTERS: u16 = 100;

/// What a point is on its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointType {
    /// A T3 controller input (IN1..).
    Input,
    /// A T3 controller output (OUT1..).
    Output,
    /// A T3 controller variable (VAR1..).
    Variable,
    /// A register of a library profile.
    Register,
}

impl PointType {
    /// The name prefix T3000 uses: "IN", "OUT", "VAR"; empty for registers.
    pub fn prefix(self) -> &'static str {
        match self {
            PointType::Input => "IN",
            PointType::Output => "OUT",
            PointType::Variable => "VAR",
            PointType::Register => "",
        }
    }
}

/// One readable value of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfilePoint {
    /// "IN1", "OUT3", "VAR12", or the library's register_name; unique within the profile.
    pub name: String,
    pub point_type: PointType,
    /// 1-based within its type (for registers: the row's position among the profile's points).
    pub point_number: u32,
    pub kind: RegisterKind,
    pub address: u16,
    pub codec: Codec,
    pub writable: bool,
    pub unit: Option<String>,
    pub description: String,
    /// Holding register with 0 = auto, 1 = manual.
    pub auto_manual: Option<u16>,
    /// Holding register with the range (unit) code.
    pub range: Option<u16>,
    /// Holding register with the analog (1) / digital (0) flag.
    pub analog_digital: Option<u16>,
    /// A plugin device's point as the plugin describes it; its index in the plugin's list is
    /// `address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Box<crate::plugin::PluginPoint>>,
}

impl ProfilePoint {
    /// What the planner needs to read this point.
    pub fn plan_item(&self) -> PlanItem {
        PlanItem { kind: self.kind, address: self.address, count: self.codec.registers() }
    }

    /// Measurement, setpoint / command or configuration ([`crate::classify`]).
    pub fn class(&self) -> crate::classify::PointClass {
        crate::classify::classify(self)
    }
}

/// The profile of a plugin device: one point per point of the plugin's list, in its order
/// (its index is the point's `address`, read one "register" each), named as the plugin names it.
/// Inputs, outputs and variables keep that role; a point without a class is a register.
pub fn plugin_profile(protocol: &str, points: &[crate::plugin::PluginPoint]) -> Profile {
    let points = points
        .iter()
        .enumerate()
        .map(|(i, p)| ProfilePoint {
            name: p.name.clone(),
            point_type: match p.class.as_deref() {
                Some("input") => PointType::Input,
                Some("output") => PointType::Output,
                Some("variable") => PointType::Variable,
                _ => PointType::Register,
            },
            point_number: i as u32 + 1,
            kind: RegisterKind::Holding,
            address: i as u16,
            codec: Codec::new(ValueType::U16),
            writable: p.writable,
            unit: p.units.clone().filter(|u| !u.trim().is_empty()),
            description: p.description.clone().unwrap_or_default(),
            auto_manual: None,
            range: None,
            analog_digital: None,
            plugin: Some(Box::new(p.clone())),
        })
        .collect();
    Profile {
        name: protocol.to_owned(),
        description: format!("points read from the device by the {protocol} plugin"),
        product_models: Vec::new(),
        // Point indexes in one call each; a plugin batches them as its protocol allows.
        limits: Limits { max_gap: 0, ..Limits::default() },
        points,
    }
}

/// The points of one kind of device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Values of holding register 7 that identify this device.
    pub product_models: Vec<u16>,
    /// How to batch reads for this device.
    pub limits: Limits,
    pub points: Vec<ProfilePoint>,
}

impl Profile {
    /// The point called `name`; exact match first, then ignoring ASCII case.
    pub fn point(&self, name: &str) -> Option<&ProfilePoint> {
        self.points
            .iter()
            .find(|p| p.name == name)
            .or_else(|| self.points.iter().find(|p| p.name.eq_ignore_ascii_case(name)))
    }

    /// Points with a numeric value (everything but text).
    pub fn numeric_points(&self) -> impl Iterator<Item = &ProfilePoint> {
        self.points.iter().filter(|p| !p.codec.is_text())
    }

    /// One plan item per point, in point order (so request point indices index [`Profile::points`]).
    pub fn plan_items(&self) -> Vec<PlanItem> {
        self.points.iter().map(ProfilePoint::plan_item).collect()
    }

    /// The reads that fetch every point, under this profile's limits.
    pub fn plan(&self) -> Result<Vec<ReadRequest>, PlanError> {
        planner::plan(&self.plan_items(), &self.limits)
    }
}

/// A register-library row that did not become a point, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedRow {
    /// 1-based line of the row in `modbus_register.csv`.
    pub line: u64,
    pub device_id: String,
    pub register_name: String,
    pub reason: String,
}

/// Why the register library cannot be read at all (single bad rows are skipped, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{file}: {source}")]
    Csv { file: &'static str, source: csv::Error },
    #[error("{file}: no column {column:?}")]
    MissingColumn { file: &'static str, column: &'static str },
}

/// All known profiles.
#[derive(Debug)]
pub struct ProfileLibrary {
    /// Shared, so that every device polled with a profile holds the same copy.
    profiles: Vec<Arc<Profile>>,
    skipped: Vec<SkippedRow>,
}

impl ProfileLibrary {
    /// The T3 controller profile and every product of the bundled Temco register library, parsed once.
    pub fn builtin() -> &'static ProfileLibrary {
        static LIBRARY: OnceLock<ProfileLibrary> = OnceLock::new();
        LIBRARY.get_or_init(|| {
            ProfileLibrary::from_temco_csv(
                include_str!("../profiles/modbus_register.csv"),
                include_str!("../profiles/modbus_register_devices.csv"),
                include_str!("../profiles/modbus_register_product_device_mapping.csv"),
            )
            .expect("the bundled register library parses (tested)")
        })
    }

    /// A library from the three CSV files of Temco's register library (`modbus_register.csv`,
    /// `modbus_register_devices.csv`, `modbus_register_product_device_mapping.csv`), with [`t3_controller`] first.
    /// Every device of the devices file becomes a profile, even one without registers.
    pub fn from_temco_csv(
        registers_csv: &str,
        devices_csv: &str,
        mapping_csv: &str,
    ) -> Result<ProfileLibrary, ProfileError> {
        const DEVICES: &str = "modbus_register_devices.csv";
        const MAPPING: &str = "modbus_register_product_device_mapping.csv";
        const REGISTERS: &str = "modbus_register.csv";

        let devices = Table::read(DEVICES, devices_csv, &["remote_id", "name", "description"])?;
        let mut profiles: Vec<Profile> = Vec::new();
        let mut by_device: HashMap<String, usize> = HashMap::new();
        for (_, row) in &devices.rows {
            let (id, name, description) = (row[0].trim(), row[1].trim(), row[2].trim());
            if id.is_empty() || name.is_empty() || by_device.contains_key(id) {
                continue;
            }
            by_device.insert(id.to_owned(), profiles.len());
            profiles.push(Profile {
                name: name.to_owned(),
                description: if description.is_empty() {
                    format!("Temco {name}, from T3000's Modbus register library")
                } else {
                    description.to_owned()
                },
                product_models: Vec::new(),
                limits: Limits { max_registers: TEMCO_MAX_REGISTERS, ..Limits::default() },
                points: Vec::new(),
            });
        }

        let mapping = Table::read(MAPPING, mapping_csv, &["product_id", "device_id"])?;
        for (_, row) in &mapping.rows {
            if let (Ok(model), Some(&i)) = (row[0].trim().parse::<u16>(), by_device.get(row[1].trim()))
                && !profiles[i].product_models.contains(&model)
            {
                profiles[i].product_models.push(model);
            }
        }
        for p in &mut profiles {
            p.product_models.sort_unstable();
        }

        let registers = Table::read(
            REGISTERS,
            registers_csv,
            &[
                "register_address",
                "operation",
                "register_length",
                "register_name",
                "data_format",
                "description",
                "device_id",
                "unit",
            ],
        )?;
        let mut skipped = Vec::new();
        // Per profile: names taken (upper case) and addresses taken.
        let mut names: Vec<HashSet<String>> = vec![HashSet::new(); profiles.len()];
        let mut addresses: Vec<HashMap<(RegisterKind, u16), String>> = vec![HashMap::new(); profiles.len()];
        for (line, row) in &registers.rows {
            let [address, operation, length, name, format, description, device, unit] =
                std::array::from_fn(|i| row[i].trim());
            let mut skip = |reason: String| {
                skipped.push(SkippedRow {
                    line: *line,
                    device_id: device.to_owned(),
                    register_name: name.to_owned(),
                    reason,
                });
            };
            let Some(&pi) = by_device.get(device) else {
                skip(format!("unknown device_id {device:?}"));
                continue;
            };
            let Ok(address) = address.parse::<u16>() else {
                skip(format!("register_address {address:?} is not a register"));
                continue;
            };
            let Ok(length) = length.parse::<u16>() else {
                skip(format!("register_length {length:?} is not a number"));
                continue;
            };
            let Some(codec) = Codec::parse_temco(format, length) else {
                skip(format!("data_format {format:?} (length {length}) is not a known format"));
                continue;
            };
            let Some((kind, write)) = parse_operation(operation) else {
                skip(format!("operation {operation:?} is not a known function"));
                continue;
            };
            // A coil or discrete input is one bit whatever the format column says.
            let codec = if kind.is_bit() { Codec::new(ValueType::Bool) } else { codec };
            if u32::from(address) + u32::from(codec.registers()) > 65536 || codec.registers() == 0 {
                skip(format!("{codec} at {address} does not fit the address space"));
                continue;
            }
            if let Some(first) = addresses[pi].get(&(kind, address)) {
                skip(format!("{kind} {address} is already {first}"));
                continue;
            }
            let base = if name.is_empty() { format!("REG{address}") } else { name.to_owned() };
            let mut unique = base.clone();
            if names[pi].contains(&unique.to_ascii_uppercase()) {
                unique = format!("{base}_{address}");
                let mut n = 2;
                while names[pi].contains(&unique.to_ascii_uppercase()) {
                    unique = format!("{base}_{address}_{n}");
                    n += 1;
                }
            }
            names[pi].insert(unique.to_ascii_uppercase());
            addresses[pi].insert((kind, address), unique.clone());
            let profile = &mut profiles[pi];
            profile.points.push(ProfilePoint {
                name: unique,
                point_type: PointType::Register,
                point_number: profile.points.len() as u32 + 1,
                kind,
                address,
                writable: write && kind.is_writable() && codec.is_writable(),
                codec,
                unit: (!unit.is_empty()).then(|| unit.to_owned()),
                description: description.to_owned(),
                auto_manual: None,
                range: None,
                analog_digital: None,
                plugin: None,
            });
        }

        crate::units::fill_units(&mut profiles);
        let all = std::iter::once(t3_controller()).chain(profiles).map(Arc::new).collect();
        Ok(ProfileLibrary { profiles: all, skipped })
    }

    /// The profile called `name`, ignoring case; failing that, ignoring everything but letters and digits
    /// ("t3 controller", "PM2.5" for "PM2_5").
    pub fn get(&self, name: &str) -> Option<&Arc<Profile>> {
        let name = name.trim();
        self.profiles.iter().find(|p| p.name.eq_ignore_ascii_case(name)).or_else(|| {
            let key = squash(name);
            self.profiles.iter().find(|p| squash(&p.name) == key)
        })
    }

    /// The configuration check that needs the profile library: every device names a known
    /// profile and every point override a point of it. Errors name the key (so the configuration
    /// file's line can be found), e.g. `devices[0].points[2].name`.
    pub fn check_devices(&self, devices: &[DeviceConfig]) -> Result<(), ConfigError> {
        for (i, d) in devices.iter().enumerate() {
            // A plugin device's points come from its plugin (checked when it is opened).
            if d.protocol.plugin().is_some() {
                continue;
            }
            let Some(profile) = self.get(&d.profile) else {
                let mut names: Vec<&str> = self.profiles().map(|p| p.name.as_str()).collect();
                names.sort_unstable();
                return Err(ConfigError::new(
                    format!("devices[{i}].profile"),
                    format!("unknown profile `{}`; known profiles: {}", d.profile, names.join(", ")),
                ));
            };
            for (j, p) in d.points.iter().enumerate() {
                if profile.point(&p.name).is_none() {
                    return Err(ConfigError::new(
                        format!("devices[{i}].points[{j}].name"),
                        format!("profile `{}` has no point `{}`", profile.name, p.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The first profile that lists `model` (the value of holding register 7).
    pub fn by_product_model(&self, model: u16) -> Option<&Profile> {
        self.all_by_product_model(model).next()
    }

    /// Every profile that lists `model`, preferred first.
    pub fn all_by_product_model(&self, model: u16) -> impl Iterator<Item = &Profile> {
        self.profiles().filter(move |p| p.product_models.contains(&model))
    }

    /// All profiles: the T3 controller first, then the library's products in their file order.
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter().map(|p| &**p)
    }

    /// Register-library rows that did not become points.
    pub fn skipped(&self) -> &[SkippedRow] {
        &self.skipped
    }
}

/// The T3 controller profile: IN1..64, OUT1..64, VAR1..128 (see the module documentation).
pub fn t3_controller() -> Profile {
    // (type, count, value base, auto/manual base, range base, analog/digital base, description)
    let blocks = [
        (PointType::Input, 64u16, 7484u16, 7868u16, 7804u16, None, "Input"),
        (PointType::Output, 64, 7100, 7356, 7292, Some(7420u16), "Output"),
        (PointType::Variable, 128, 8092, 8348, 8532, Some(8660), "Variable"),
    ];
    let mut points = Vec::with_capacity(256);
    for (point_type, count, value, auto_manual, range, analog_digital, what) in blocks {
        for i in 0..count {
            let n = i + 1;
            points.push(ProfilePoint {
                name: format!("{}{n}", point_type.prefix()),
                point_type,
                point_number: u32::from(n),
                kind: RegisterKind::Holding,
                address: value + 2 * i,
                codec: Codec::t3_value(),
                // Outputs and variables are written in manual; T3000 lets an input be written in manual too.
                writable: true,
                unit: None,
                description: format!("{what} {n}"),
                auto_manual: Some(auto_manual + i),
                range: Some(range + i),
                analog_digital: analog_digital.map(|base| base + i),
                plugin: None,
            });
        }
    }
    Profile {
        name: T3_CONTROLLER.to_owned(),
        description: "Temco T3 programmable controller (T3-BB, T3-LB, T3-TB, T3-Nano, ARM and ESP32): 64 inputs, \
                      64 outputs and 128 variables, each a signed 32-bit value x1000 in two holding registers"
            .to_owned(),
        product_models: T3_CONTROLLER_MODELS.to_vec(),
        limits: Limits { max_registers: TEMCO_MAX_REGISTERS, ..Limits::default() },
        points,
    }
}

/// `(kind, writable)` from the function codes that start an `operation` cell: "03_06 Read Holding and Write
/// Single" -> holding, writable. `None` when there are no codes or they name different tables.
fn parse_operation(operation: &str) -> Option<(RegisterKind, bool)> {
    let codes = operation.split_whitespace().next()?;
    let mut kind = None;
    let mut writable = false;
    for code in codes.split('_') {
        let (k, w) = match code.parse::<u8>().ok()? {
            1 => (RegisterKind::Coil, false),
            2 => (RegisterKind::DiscreteInput, false),
            3 => (RegisterKind::Holding, false),
            4 => (RegisterKind::Input, false),
            5 | 15 => (RegisterKind::Coil, true),
            6 | 16 => (RegisterKind::Holding, true),
            _ => return None,
        };
        if kind.is_some_and(|prev| prev != k) {
            return None;
        }
        kind = Some(k);
        writable |= w;
    }
    kind.map(|k| (k, writable))
}

fn squash(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// The wanted columns of a CSV file, by header name, with each record's line. Records too short to hold every
/// column are padded with empty cells (and then skipped as junk by the caller).
struct Table {
    rows: Vec<(u64, Vec<String>)>,
}

impl Table {
    fn read(file: &'static str, text: &str, columns: &[&'static str]) -> Result<Table, ProfileError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|source| ProfileError::Csv { file, source })?.clone();
        let index: Vec<usize> = columns
            .iter()
            .map(|&column| {
                headers
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(column))
                    .ok_or(ProfileError::MissingColumn { file, column })
            })
            .collect::<Result<_, _>>()?;
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|source| ProfileError::Csv { file, source })?;
            let line = record.position().map_or(0, |p| p.line());
            rows.push((line, index.iter().map(|&i| record.get(i).unwrap_or("").to_owned()).collect()));
        }
        Ok(Table { rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Value;

    fn lib() -> &'static ProfileLibrary {
        ProfileLibrary::builtin()
    }

    #[test]
    fn every_product_loads_with_its_count() {
        // Rows per device in modbus_register.csv, minus the two T3-32I rows at addresses already taken.
        let expected: [(&str, usize, &[u16]); 24] = [
            ("BTU Meter", 23, &[121]),
            ("T322AI", 249, &[43]),
            ("CO2", 88, &[210, 211]),
            ("FAN_MODULE", 40, &[97]),
            ("AFS", 58, &[96]),
            ("PM2_5", 73, &[52]),
            ("HUM", 72, &[212, 213]),
            ("Pressure", 54, &[]),
            ("T38I8O6DO", 191, &[44]),
            ("TSTAT8", 478, &[9]),
            ("ZIGBEE_REPEATER", 8, &[63]),
            ("T3_8AI13O", 86, &[20]),
            ("Transducer2", 37, &[90]),
            ("T3PT12", 107, &[46]),
            ("CO2_Node", 113, &[216]),
            ("PM5E_ARM", 1024, &[51]),
            ("T3BB", 1513, &[10, 35, 50, 74, 88]),
            ("T3_32I", 102, &[22]),
            ("CM5", 0, &[]),
            ("MultipleSensor", 0, &[]),
            ("T36CTA", 83, &[95]),
            ("AirLab", 89, &[60, 62]),
            ("CS", 14, &[36, 37]),
            ("SPM1", 34, &[24]),
        ];
        let names: Vec<&str> = lib().profiles().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), 25);
        assert_eq!(names[0], T3_CONTROLLER);
        for (i, (name, count, models)) in expected.iter().enumerate() {
            assert_eq!(names[i + 1], *name);
            let p = lib().get(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(p.points.len(), *count, "{name}");
            assert_eq!(p.product_models, models.to_vec(), "{name}");
        }
        let total: usize = lib().profiles().skip(1).map(|p| p.points.len()).sum();
        assert_eq!(total, 4536);
        assert_eq!(lib().skipped().len(), 2, "{:#?}", lib().skipped());
        assert!(lib().skipped().iter().all(|s| s.device_id == "18" && s.reason.contains("already")));
    }

    #[test]
    fn names_are_unique_and_points_sane() {
        for p in lib().profiles() {
            let mut seen = HashSet::new();
            for (i, pt) in p.points.iter().enumerate() {
                assert!(seen.insert(pt.name.to_ascii_uppercase()), "{}: {} twice", p.name, pt.name);
                assert!(!pt.name.is_empty());
                assert!(u32::from(pt.address) + u32::from(pt.codec.registers()) <= 65536);
                assert!(!pt.writable || pt.kind.is_writable());
                assert_eq!(p.point(&pt.name), Some(pt));
                if pt.point_type == PointType::Register {
                    assert_eq!(pt.point_number as usize, i + 1);
                }
            }
        }
        let squashed: HashSet<String> = lib().profiles().map(|p| squash(&p.name)).collect();
        assert_eq!(squashed.len(), 25, "get() fallback must not be ambiguous");
    }

    #[test]
    fn library_rows_become_points() {
        let tstat = lib().get("tstat8").unwrap();
        let serial = tstat.point("MODBUS_SERIALNUMBER").unwrap();
        assert_eq!((serial.kind, serial.address, serial.writable), (RegisterKind::Holding, 0, false));
        assert_eq!(serial.codec.value_type, ValueType::U32Bytes);
        let addr = tstat.point("MODBUS_ADDRESS").unwrap();
        assert!(addr.writable);
        assert_eq!(addr.codec.to_string(), "u8lo ABCD");
        let name = tstat.point("MODBUS_TSTAT_NAME").unwrap();
        assert_eq!(name.codec.value_type, ValueType::Str { registers: 10 });
        assert!(tstat.numeric_points().all(|p| !p.codec.is_text()));
        assert_eq!(tstat.numeric_points().count(), tstat.points.len() - 17);

        let t3bb = lib().get("T3BB").unwrap();
        let in1 = t3bb.point("MODBUS_INPUT_VALUE_1").unwrap();
        assert_eq!((in1.address, &in1.codec), (7484, &Codec::t3_value()));
        // Duplicate names get the address appended.
        assert_eq!(t3bb.point("MODBUS_FIRMWARE_VERSION").unwrap().address, 4);
        assert_eq!(t3bb.point("MODBUS_FIRMWARE_VERSION_5").unwrap().address, 5);
        // Write-only rows are kept as writable holding registers.
        let reset = t3bb.point("MODBUS_RESET").unwrap();
        assert_eq!((reset.kind, reset.writable), (RegisterKind::Holding, true));
        let fan = lib().get("FAN_MODULE").unwrap().point("MODBUS_TEMPRATURE").unwrap();
        assert_eq!(fan.codec.to_string(), "i16 ABCD /10");
        assert_eq!(fan.codec.decode(&[0xFFF6]).unwrap(), Value::Number(-1.0));
        let t332 = lib().get("T3_32I").unwrap();
        assert_eq!(t332.point("T332I_RANGE3").unwrap().address, 230);
        assert!(t332.point("T332I_FILTER31").is_none());
    }

    #[test]
    fn t3_controller_points() {
        let t3 = lib().get("t3-controller").unwrap();
        assert_eq!(**t3, t3_controller());
        assert_eq!(t3.points.len(), 256);
        let at = |name: &str| t3.point(name).unwrap();
        assert_eq!(at("IN1").address, 7484);
        assert_eq!(at("IN64").address, 7610);
        assert_eq!(at("OUT1").address, 7100);
        assert_eq!(at("OUT64").address, 7226);
        assert_eq!(at("VAR1").address, 8092);
        assert_eq!(at("VAR128").address, 8346);
        assert_eq!((at("IN1").auto_manual, at("IN1").range, at("IN1").analog_digital), (Some(7868), Some(7804), None));
        assert_eq!((at("IN64").auto_manual, at("IN64").range), (Some(7931), Some(7867)));
        assert_eq!(
            (at("OUT2").auto_manual, at("OUT2").range, at("OUT2").analog_digital),
            (Some(7357), Some(7293), Some(7421))
        );
        assert_eq!(
            (at("VAR128").auto_manual, at("VAR128").range, at("VAR128").analog_digital),
            (Some(8475), Some(8659), Some(8787))
        );
        assert_eq!(at("var12").name, "VAR12");
        assert_eq!(at("VAR12").point_type, PointType::Variable);
        assert_eq!(at("VAR12").point_number, 12);
        assert!(
            t3.points.iter().all(|p| p.writable && p.codec == Codec::t3_value() && p.kind == RegisterKind::Holding)
        );
        assert_eq!(t3.numeric_points().count(), 256);
        // Values sit in contiguous runs: 64 + 64 + 128 points, 2 registers each, 100 per read.
        let reqs = t3.plan().unwrap();
        assert_eq!(reqs.len(), 2 + 2 + 3);
        assert!(reqs.iter().all(|r| r.count <= 100));
    }

    #[test]
    fn lookups() {
        for model in T3_CONTROLLER_MODELS {
            assert_eq!(lib().by_product_model(model).unwrap().name, T3_CONTROLLER);
            let all: Vec<_> = lib().all_by_product_model(model).map(|p| p.name.as_str()).collect();
            assert_eq!(all, vec![T3_CONTROLLER, "T3BB"]);
        }
        assert_eq!(lib().by_product_model(9).unwrap().name, "TSTAT8");
        assert_eq!(lib().by_product_model(121).unwrap().name, "BTU Meter");
        assert_eq!(lib().by_product_model(210).unwrap().name, "CO2");
        assert_eq!(lib().by_product_model(10).unwrap().name, "T3BB");
        assert!(lib().by_product_model(0).is_none());
        assert!(lib().by_product_model(254).is_none());
        assert_eq!(lib().get("btu meter").unwrap().name, "BTU Meter");
        assert_eq!(lib().get("T3-Controller").unwrap().name, T3_CONTROLLER);
        assert_eq!(lib().get("PM2.5").unwrap().name, "PM2_5");
        assert_eq!(lib().get("t3bb").unwrap().name, "T3BB");
        assert!(lib().get("nope").is_none());
        assert!(lib().get("").is_none());
    }

    #[test]
    fn every_profile_plans() {
        for p in lib().profiles() {
            for limits in [Limits::default(), p.limits, Limits { max_gap: 0, ..Limits::default() }] {
                let reqs = planner::plan(&p.plan_items(), &limits).unwrap_or_else(|e| panic!("{}: {e}", p.name));
                let covered: usize = reqs.iter().map(|r| r.points.len()).sum();
                assert_eq!(covered, p.points.len(), "{}", p.name);
            }
        }
    }

    #[test]
    fn junk_rows_are_skipped() {
        let registers = "register_address,operation,register_length,register_name,data_format,description,device_id,unit\n\
            0,03 Read Holding Registers (4x),1,A,16 Bit Unsigned Integer,ok,1,\n\
            x,03 Read Holding Registers (4x),1,B,16 Bit Unsigned Integer,bad address,1,\n\
            1,03 Read Holding Registers (4x),1,C,\"see the manual,\nreally\",bad format,1,\n\
            2,07 Read Something,1,D,16 Bit Unsigned Integer,bad op,1,\n\
            3,03_04 Mixed,1,E,16 Bit Unsigned Integer,mixed op,1,\n\
            4,03 Read Holding Registers (4x),1,F,16 Bit Unsigned Integer,unknown device,99,\n\
            5,03 Read Holding Registers (4x),1,a,16 Bit Unsigned Integer,dup name,1,degC\n\
            0,03 Read Holding Registers (4x),1,G,16 Bit Unsigned Integer,dup address,1,\n\
            6,04 Read Input Registers (3x),2,H,32 Bit Float_ABCD,input float,1,\n\
            7,01 Read Coils (0x),1,I,16 Bit Unsigned Integer,coil,1,\n\
            65535,03 Read Holding Registers (4x),2,J,32 Bit Unsigned Integer HI_LO,past the end,1,\n\
            short row\n";
        let devices = "remote_id,name,description\n1,Thing,\n";
        let mapping = "product_id,device_id\n200,1\nx,1\n201,7\n";
        let lib = ProfileLibrary::from_temco_csv(registers, devices, mapping).unwrap();
        let p = lib.get("thing").unwrap();
        assert_eq!(p.product_models, vec![200]);
        let names: Vec<_> = p.points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["A", "a_5", "H", "I"]);
        assert_eq!(p.point("a_5").unwrap().unit.as_deref(), Some("°C"));
        assert_eq!(p.point("H").unwrap().kind, RegisterKind::Input);
        assert_eq!(p.point("I").unwrap().kind, RegisterKind::Coil);
        assert_eq!(p.point("I").unwrap().codec, Codec::new(ValueType::Bool));
        assert_eq!(lib.skipped().len(), 8, "{:#?}", lib.skipped());
        let c = lib.skipped().iter().find(|s| s.register_name == "C").unwrap();
        assert_eq!(c.line, 4);
        assert!(ProfileLibrary::from_temco_csv("a,b\n", devices, mapping).is_err());
    }

    #[test]
    fn device_checks_name_the_key() {
        let device = |profile: &str, points: serde_json::Value| -> DeviceConfig {
            serde_json::from_value(serde_json::json!({
                "name": "d", "protocol": "modbus-tcp", "ip_address": "x", "unit_id": 1,
                "profile": profile, "points": points
            }))
            .unwrap()
        };
        let ok = device("t3 controller", serde_json::json!([{ "name": "IN1" }]));
        assert_eq!(lib().check_devices(std::slice::from_ref(&ok)), Ok(()));

        let err = lib().check_devices(&[ok.clone(), device("T9-nothing", serde_json::json!([]))]).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("devices[1].profile"));
        assert!(err.message.starts_with("unknown profile `T9-nothing`; known profiles: "), "{err}");
        assert!(err.message.contains(&t3_controller().name), "{err}");

        let err = lib()
            .check_devices(&[device("t3 controller", serde_json::json!([{ "name": "IN1" }, { "name": "NOPE" }]))])
            .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("devices[0].points[1].name"));
        assert!(err.message.ends_with("has no point `NOPE`"), "{err}");
    }
}
