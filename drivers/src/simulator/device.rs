//! One simulated device: its register banks, the Modbus request handler, and writes taken as the
//! Temco firmware takes them.
//!
//! # Address space
//! Every register of every profile point exists; so do the point's auto/manual, range and
//! analog/digital registers (T3 controllers) and the Temco header at holding 0-8 (serial number one
//! byte per register, lowest first, at 0-3; firmware 4; Modbus address 6; product model 7; hardware
//! revision 8). A T3 controller also has its point records (outputs from 10000, inputs from 11472,
//! variables from 12944, see [`crate::labels`]), holding each point's description and label, which take
//! writes (functions 06 / 16, as T3000 renames a point; the rest of a record reads 0 and is read-only), and
//! its weekly and annual routines, their times, days and event flags (see [`crate::panel`]; they take any
//! write, where the firmware takes only a whole record from its first register), its program table
//! (15504, 16 records of 19 registers, see [`crate::panel`]) served and written as the firmware does: the
//! packed array of 37-byte records (a record's last register ends with the next record's first byte),
//! written only a whole record from the record's first register (the rest of the request ignored, a write
//! from any other register changes nothing, one too short for the record is refused with exception 03,
//! where the firmware would copy what followed in its buffer), and a read-only settings
//! block at 9800 holding the panel name and number (the device's name and Modbus address). Gaps of up to the profile's `limits.max_gap` between two existing registers exist too
//! (read-only, 0), because the read planner bridges them and Temco devices answer such reads.
//! Anything else answers exception 02.
//!
//! # Writes (functions 05, 06, 15, 16, 22, 23)
//! - Every register written must exist and be writable (per profile), else exception 02 and nothing
//!   changes. Header registers are read-only unless the profile makes one writable; the Modbus address
//!   register then takes only the current address (re-addressing is not simulated: exception 03).
//! - T3 points (as temcocontrols/T3-programmable-controller-on-ESP32 `main/modbus.c` does at commit
//!   1b83f7cb: `read_IO_reg` line 2464, `Write_IO_reg` line 2850, the input range register's analog
//!   flag at lines 2667 and 3125): a digital point stores 0 or
//!   1 (any non-zero word is on) in the low word, high word 0; an analog output outside its range's
//!   span (0-10 V, 0-100 %, 0-20 mA) is refused with exception 03 (the firmware stores anything;
//!   refusing gives clients a real 03 to handle); an input written in auto is taken
//!   but the next tick overwrites it, in manual it stays. Auto/manual and analog/digital registers
//!   take 0 or 1, range registers one byte (inputs: analog flag in the high byte, range in the low
//!   byte, as the firmware reports them), else exception 03.
//! - A write that fails part-way changes nothing.

use super::model::{self, Model, Outputs, Role, ZONES};
use super::{Fault, Outcome, SimDeviceSpec};
use crate::codec::{Codec, RegisterKind, Value, ValueType};
use crate::labels::{self, PointText};
use crate::panel;
use crate::profile::{PointType, Profile, ProfilePoint};
use crate::t3::records::{ProgramRecord, Record};
use crate::t3::{from_registers, to_registers};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_modbus::{ExceptionCode, Request, Response};

/// Firmware revision in holding register 4.
const FIRMWARE_REV: u16 = 64;
/// Hardware revision in holding register 8.
const HARDWARE_REV: u16 = 3;

/// A point name or value a device cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointError {
    /// The device's profile has no such point.
    #[error("device `{device}` has no point `{point}`")]
    Unknown { device: String, point: String },
    /// The value does not fit the point's register encoding.
    #[error("point `{point}` of `{device}` cannot hold {value}: {reason}")]
    BadValue { device: String, point: String, value: String, reason: String },
}

#[derive(Debug, Clone, Copy)]
struct Cell<T> {
    value: T,
    writable: bool,
}

/// One Modbus table: the addresses that exist, their values and whether they can be written.
#[derive(Debug)]
struct Bank<T> {
    cells: BTreeMap<u16, Cell<T>>,
}

impl<T: Copy + Default> Bank<T> {
    fn new() -> Self {
        Bank { cells: BTreeMap::new() }
    }

    fn define(&mut self, address: u16, writable: bool) {
        let cell = self.cells.entry(address).or_insert(Cell { value: T::default(), writable });
        cell.writable |= writable;
    }

    fn get(&self, address: u16) -> Option<T> {
        self.cells.get(&address).map(|c| c.value)
    }

    fn set(&mut self, address: u16, value: T) {
        if let Some(c) = self.cells.get_mut(&address) {
            c.value = value;
        }
    }

    fn read(&self, address: u16, count: u16) -> Result<Vec<T>, ExceptionCode> {
        (0..count)
            .map(|i| address.checked_add(i).and_then(|a| self.get(a)).ok_or(ExceptionCode::IllegalDataAddress))
            .collect()
    }

    /// The addresses `address..address + count`, all existing and writable, else exception 02.
    fn check_writable(&self, address: u16, count: usize) -> Result<(), ExceptionCode> {
        for i in 0..count {
            let a = u16::try_from(usize::from(address) + i).map_err(|_| ExceptionCode::IllegalDataAddress)?;
            match self.cells.get(&a) {
                Some(c) if c.writable => {}
                _ => return Err(ExceptionCode::IllegalDataAddress),
            }
        }
        Ok(())
    }

    /// Makes gaps of up to `max_gap` addresses between existing ones readable (read-only).
    fn fill_gaps(&mut self, max_gap: u16) {
        let keys: Vec<u16> = self.cells.keys().copied().collect();
        for w in keys.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b - a > 1 && b - a - 1 <= max_gap {
                for gap in a + 1..b {
                    self.define(gap, false);
                }
            }
        }
    }
}

/// What a holding register means for write validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Value(usize),
    AutoManual(usize),
    Range(usize),
    AnalogDigital(usize),
    UnitId,
}

#[derive(Debug)]
struct Inner {
    holding: Bank<u16>,
    input: Bank<u16>,
    coils: Bank<bool>,
    discrete: Bank<bool>,
    model: Model,
}

/// One simulated controller: its register banks behind a lock, its profile and its fault.
#[derive(Debug)]
pub struct SimDevice {
    spec: SimDeviceSpec,
    profile: &'static Profile,
    product_model: u16,
    /// Laid out as a T3 controller (IN/OUT/VAR).
    t3: bool,
    owners: HashMap<(RegisterKind, u16), Vec<Owner>>,
    fault: Mutex<Fault>,
    requests: AtomicU64,
    writes: AtomicU64,
    inner: Mutex<Inner>,
}

/// True for requests that write (05, 06, 15, 16, 22, 23).
pub(crate) fn is_write(request: &Request<'_>) -> bool {
    matches!(
        request,
        Request::WriteSingleCoil(..)
            | Request::WriteMultipleCoils(..)
            | Request::WriteSingleRegister(..)
            | Request::WriteMultipleRegisters(..)
            | Request::MaskWriteRegister(..)
            | Request::ReadWriteMultipleRegisters(..)
    )
}

fn check_quantity(count: usize, max: usize) -> Result<(), ExceptionCode> {
    if (1..=max).contains(&count) { Ok(()) } else { Err(ExceptionCode::IllegalDataValue) }
}

/// The codec without its scale: reads and writes the raw integer.
fn unscaled(codec: &Codec) -> Codec {
    Codec { multiplier: 1.0, divisor: 1.0, offset: 0.0, ..codec.clone() }
}

/// Latin-1 text cut to `chars` characters.
fn fit_text(text: &str, chars: usize) -> String {
    text.chars().map(|c| if u32::from(c) <= 0xFF && c != '\0' { c } else { '?' }).take(chars).collect()
}

impl SimDevice {
    pub(crate) fn new(spec: SimDeviceSpec, profile: &'static Profile) -> SimDevice {
        let t3 = model::is_t3(profile);
        let product_model = profile.product_models.first().copied().unwrap_or(0);
        let mut owners: HashMap<(RegisterKind, u16), Vec<Owner>> = HashMap::new();
        let (mut holding, mut input, mut coils, mut discrete) = (Bank::new(), Bank::new(), Bank::new(), Bank::new());
        for (i, p) in profile.points.iter().enumerate() {
            for k in 0..p.codec.registers() {
                let Some(a) = p.address.checked_add(k) else { break };
                match p.kind {
                    RegisterKind::Holding => holding.define(a, p.writable),
                    RegisterKind::Input => input.define(a, false),
                    RegisterKind::Coil => coils.define(a, p.writable),
                    RegisterKind::DiscreteInput => discrete.define(a, false),
                }
                owners.entry((p.kind, a)).or_default().push(Owner::Value(i));
            }
            for (reg, owner) in [
                (p.auto_manual, Owner::AutoManual(i)),
                (p.range, Owner::Range(i)),
                (p.analog_digital, Owner::AnalogDigital(i)),
            ] {
                if let Some(a) = reg {
                    holding.define(a, true);
                    owners.entry((RegisterKind::Holding, a)).or_default().push(owner);
                }
            }
        }
        // The Temco header, read-only unless the profile says otherwise.
        for a in 0..=8 {
            holding.define(a, false);
        }
        // A T3 controller's point records: the description and label at the start of each take writes
        // (as T3000 renames a point), the rest of the record is read-only.
        if t3 {
            for (first, count) in labels::record_blocks() {
                for a in first..first + count {
                    holding.define(a, false);
                }
            }
            for p in &profile.points {
                if let Some(first) = labels::record(p) {
                    for a in first..first + labels::TEXT_REGISTERS {
                        holding.define(a, true);
                    }
                }
            }
            // Its routines take writes; the settings block is read-only.
            for (first, count) in panel::routine_blocks() {
                let writable = first != 9800;
                for a in first..first + count {
                    holding.define(a, writable);
                }
            }
            // Its program table is written only as the firmware takes it (`write_program`).
            let (first, count) = panel::program_block();
            for a in first..first + count {
                holding.define(a, false);
            }
        }
        owners.entry((RegisterKind::Holding, 6)).or_default().push(Owner::UnitId);
        let max_gap = profile.limits.max_gap;
        holding.fill_gaps(max_gap);
        input.fill_gaps(max_gap);
        coils.fill_gaps(max_gap);
        discrete.fill_gaps(max_gap);

        let model = Model::new(profile, spec.seed);
        let device = SimDevice {
            product_model,
            t3,
            owners,
            fault: Mutex::new(Fault::None),
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            inner: Mutex::new(Inner { holding, input, coils, discrete, model }),
            profile,
            spec,
        };
        device.initialise();
        device
    }

    /// Configuration, held values and the header; then a first rendering of the model's values.
    fn initialise(&self) {
        let mut inner = self.inner.lock();
        for (i, p) in self.profile.points.iter().enumerate() {
            if self.t3 && p.point_type != PointType::Register {
                let setup = model::t3_setup(p, self.spec.seed);
                if let Some(a) = p.auto_manual {
                    inner.holding.set(a, 0);
                }
                if let Some(a) = p.analog_digital {
                    inner.holding.set(a, u16::from(setup.analog));
                }
                if let Some(a) = p.range {
                    let range = if p.point_type == PointType::Input {
                        (u16::from(setup.analog) << 8) | setup.range
                    } else {
                        setup.range
                    };
                    inner.holding.set(a, range);
                }
                if setup.role == Role::Hold {
                    self.store(&mut inner, i, &Value::Number(setup.initial));
                }
                if let Some((label, description)) = model::t3_text(p) {
                    Self::write_text(&mut inner, p, &PointText::new(&label, &description));
                }
            } else if inner.model.roles[i] == Role::Hold {
                let v = self.fixed_value(p);
                if self.store_checked(&mut inner, i, &v).is_err() {
                    let _ = self.store_checked(&mut inner, i, &Value::Number(0.0));
                }
            }
        }
        // A register too narrow for what its name suggests (a CO2 flag in one byte) keeps a fixed value.
        for i in 0..self.profile.points.len() {
            let Some(v) = inner.model.value_of(i, 0.0, 0.0) else { continue };
            if self.store_checked(&mut inner, i, &Value::Number(v)).is_err() {
                inner.model.roles[i] = Role::Hold;
                let fixed = self.fixed_value(&self.profile.points[i]);
                self.store(&mut inner, i, &fixed);
            }
        }
        if self.t3 {
            self.write_settings(&mut inner);
            for (first, words) in model::t3_routines(self.spec.unit_id) {
                for (k, w) in words.into_iter().enumerate() {
                    inner.holding.set(first + k as u16, w);
                }
            }
            let table: Vec<u8> = model::t3_programs().iter().flat_map(Record::encode).collect();
            Self::store_programs(&mut inner, &table);
        }
        self.write_header(&mut inner);
        self.render(&mut inner, 0.0, 0.0);
    }

    /// The settings block of a T3 controller: the panel name (bytes 52..72, the device's name) and
    /// the panel number (byte 73, its Modbus address).
    fn write_settings(&self, inner: &mut Inner) {
        let mut bytes = vec![0u8; 400];
        bytes[52..72].copy_from_slice(&crate::t3::latin1_field(&self.spec.name, 20));
        bytes[73] = self.spec.unit_id;
        for (k, w) in crate::t3::to_registers(&bytes).into_iter().enumerate() {
            inner.holding.set(9800 + k as u16, w);
        }
    }

    /// Serves the packed program table `table` (16 records of 37 bytes) as the firmware does
    /// (`main/modbus.c` lines 1582-1587): record i from register i * 19, two bytes a register, so its
    /// last register's low half is the next record's first byte (0 after the last record).
    fn store_programs(inner: &mut Inner, table: &[u8]) {
        let (first, size) = panel::PROGRAM_TABLE;
        let span = usize::from(size) * 2;
        for i in 0..panel::PROGRAMS {
            let mut bytes: Vec<u8> = table.iter().skip(i * ProgramRecord::SIZE).take(span).copied().collect();
            bytes.resize(span, 0);
            let at = first + i as u16 * size;
            for (k, w) in to_registers(&bytes).into_iter().enumerate() {
                inner.holding.set(at + k as u16, w);
            }
        }
    }

    /// The packed program table behind the registers (empty on a device without one).
    fn programs(inner: &Inner) -> Vec<u8> {
        let (first, count) = panel::program_block();
        let words = inner.holding.read(first, count).unwrap_or_default();
        words
            .chunks(usize::from(panel::PROGRAM_TABLE.1))
            .flat_map(|w| from_registers(w).into_iter().take(ProgramRecord::SIZE))
            .collect()
    }

    /// A write into the program table, taken as the firmware takes it (`main/modbus.c` lines
    /// 1416-1422): from a record's first register, that record's 37 bytes (the rest of the request is
    /// ignored); from any other register, nothing. A request too short for the record is refused
    /// with exception 03.
    fn write_program(inner: &mut Inner, address: u16, words: &[u16]) -> Result<(), ExceptionCode> {
        let (first, size) = panel::PROGRAM_TABLE;
        let offset = address - first;
        if !offset.is_multiple_of(size) {
            return Ok(());
        }
        let bytes = from_registers(words);
        let record = bytes.get(..ProgramRecord::SIZE).ok_or(ExceptionCode::IllegalDataValue)?;
        let mut table = Self::programs(inner);
        let at = usize::from(offset / size) * ProgramRecord::SIZE;
        table[at..at + ProgramRecord::SIZE].copy_from_slice(record);
        Self::store_programs(inner, &table);
        Ok(())
    }

    /// Program `n` (1..=16) of a T3 controller's program table as it serves it; `None` for another
    /// number or a device that is not a T3 controller.
    pub fn program(&self, n: usize) -> Option<ProgramRecord> {
        if !self.t3 || !(1..=panel::PROGRAMS).contains(&n) {
            return None;
        }
        let table = Self::programs(&self.inner.lock());
        ProgramRecord::decode(table.get((n - 1) * ProgramRecord::SIZE..)?).ok()
    }

    /// Writes a T3 point's description and label into its record.
    fn write_text(inner: &mut Inner, p: &ProfilePoint, text: &PointText) {
        if let Some(first) = labels::record(p) {
            let current = inner.holding.read(first, labels::TEXT_REGISTERS).unwrap_or_default();
            for (k, w) in text.encode(p.point_type, &current).into_iter().enumerate() {
                inner.holding.set(first + k as u16, w);
            }
        }
    }

    /// The label and description a T3 point's record holds; `None` for a point without a record (a
    /// library register) or an unknown point.
    pub fn point_text(&self, point_name: &str) -> Option<PointText> {
        let i = self.point_index(point_name).ok()?;
        let first = labels::record(&self.profile.points[i]).filter(|_| self.t3)?;
        let inner = self.inner.lock();
        let kind = self.profile.points[i].point_type;
        inner.holding.read(first, labels::TEXT_REGISTERS).ok().map(|w| PointText::decode(kind, &w))
    }

    /// Renames a T3 point on the panel (as T3000 does when someone edits its label): its record's
    /// description and label, cut to 20 and 8 characters.
    pub fn set_point_text(&self, point_name: &str, text: &PointText) -> Result<(), PointError> {
        let i = self.point_index(point_name)?;
        let p = &self.profile.points[i];
        if !self.t3 || labels::record(p).is_none() {
            return Err(PointError::BadValue {
                device: self.spec.name.clone(),
                point: p.name.clone(),
                value: format!("{text:?}"),
                reason: "only T3 inputs, outputs and variables have a label record".into(),
            });
        }
        Self::write_text(&mut self.inner.lock(), p, text);
        Ok(())
    }

    /// What the behaviour model makes of each point (for tests).
    #[cfg(test)]
    pub(crate) fn roles(&self) -> Vec<Role> {
        self.inner.lock().model.roles.clone()
    }

    /// Serial number, firmware, Modbus address, product model, hardware revision: through the
    /// profile's codec where a point sits at the address, else one plain word (the serial number one
    /// byte per register, lowest first, as the firmware keeps it).
    fn write_header(&self, inner: &mut Inner) {
        let fields = [
            (0u16, f64::from(self.spec.serial_number)),
            (4, f64::from(FIRMWARE_REV)),
            (6, f64::from(self.spec.unit_id)),
            (7, f64::from(self.product_model)),
            (8, f64::from(HARDWARE_REV)),
        ];
        for (address, value) in fields {
            let point = self
                .profile
                .points
                .iter()
                .position(|p| p.kind == RegisterKind::Holding && p.address == address && !p.codec.is_text());
            let stored = point.is_some_and(|i| self.store_checked(inner, i, &Value::Number(value)).is_ok());
            if !stored {
                if address == 0 {
                    for (k, byte) in self.spec.serial_number.to_le_bytes().into_iter().enumerate() {
                        inner.holding.set(k as u16, u16::from(byte));
                    }
                } else {
                    inner.holding.set(address, value as u16);
                }
            }
        }
    }

    /// A fixed, plausible value for a library register that nothing moves.
    fn fixed_value(&self, p: &ProfilePoint) -> Value {
        let name = p.name.to_ascii_uppercase();
        if let ValueType::Str { registers } = p.codec.value_type {
            let chars = usize::from(registers) * 2;
            let text = if ["NAME", "LABEL", "TITLE", "DESCRIPTION"].iter().any(|w| name.contains(w)) {
                self.spec.name.clone()
            } else {
                name.trim_start_matches("MODBUS_").replace('_', " ").to_ascii_lowercase()
            };
            return Value::Text(fit_text(&text, chars));
        }
        // A set point in tenths of a degree ("16 Bit Signed Integer/10": a thermostat's DAY_SETPOINT,
        // COOLING_SETPOINT, SLEEP_SP...) is a room temperature set point.
        let words: Vec<&str> = name.split('_').collect();
        let tenths = matches!(p.codec.value_type, ValueType::I16) && p.codec.divisor == 10.0;
        let temp_setpoint = tenths
            && (name.contains("SETPOINT") || words.contains(&"SP"))
            && !words.contains(&"DB")
            && !["HUM", "CO2", "PRESS", "DEADBAND"].iter().any(|w| name.contains(w));
        let v = if temp_setpoint && name.contains("COOL") {
            24.0
        } else if temp_setpoint && name.contains("HEAT") {
            20.0
        } else if temp_setpoint || (name.contains("TEMP") && name.contains("SET")) {
            22.0
        } else if name.contains("HUM") && name.contains("SET") {
            50.0
        } else if name.contains("CO2") && (name.contains("SET") || name.contains("ALARM")) {
            1000.0
        } else if matches!(p.codec.value_type, ValueType::Bool | ValueType::Bit { .. }) {
            0.0
        } else {
            (model::unit_hash(&[self.spec.seed, u64::from(p.address), 3]) * 10.0).floor()
        };
        Value::Number(v)
    }

    pub fn spec(&self) -> &SimDeviceSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn unit_id(&self) -> u8 {
        self.spec.unit_id
    }

    pub fn serial_number(&self) -> u32 {
        self.spec.serial_number
    }

    /// The value of holding register 7: the profile's first product model.
    pub fn product_model(&self) -> u16 {
        self.product_model
    }

    pub fn profile(&self) -> &'static Profile {
        self.profile
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock() = fault;
    }

    pub fn fault(&self) -> Fault {
        *self.fault.lock()
    }

    /// Modbus requests addressed to this device so far, whatever became of them.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Write requests (05, 06, 15, 16, 22, 23) addressed to this device so far, taken or not.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn point_index(&self, name: &str) -> Result<usize, PointError> {
        let point = self
            .profile
            .point(name)
            .ok_or_else(|| PointError::Unknown { device: self.spec.name.clone(), point: name.to_owned() })?;
        Ok(self.profile.points.iter().position(|p| std::ptr::eq(p, point)).unwrap_or(0))
    }

    /// The decoded current value of a profile point: for a digital T3 point 0 or 1, for a coil or
    /// discrete input 0 or 1. `None` for an unknown point or a text point.
    pub fn value(&self, point_name: &str) -> Option<f64> {
        let i = self.point_index(point_name).ok()?;
        let inner = self.inner.lock();
        self.load(&inner, i).ok()?.as_f64()
    }

    /// The text of a string point.
    pub fn text(&self, point_name: &str) -> Option<String> {
        let i = self.point_index(point_name).ok()?;
        let inner = self.inner.lock();
        self.load(&inner, i).ok()?.as_str().map(str::to_owned)
    }

    /// Changes a point as if the field changed: a sensor's physical value (which the model then
    /// carries on from), a counter, or a held value; the registers show it at once, even in manual.
    /// Digital points take 0 / non-zero.
    pub fn set_value(&self, point_name: &str, v: f64) -> Result<(), super::SimError> {
        let i = self.point_index(point_name)?;
        let mut inner = self.inner.lock();
        inner.model.set_field(i, v);
        self.store_checked(&mut inner, i, &Value::Number(v)).map_err(|reason| {
            super::SimError::Point(PointError::BadValue {
                device: self.spec.name.clone(),
                point: self.profile.points[i].name.clone(),
                value: v.to_string(),
                reason,
            })
        })
    }

    /// True when a T3 point is in manual (its auto/manual register is 1).
    pub fn is_manual(&self, point_name: &str) -> bool {
        let Ok(i) = self.point_index(point_name) else { return false };
        let inner = self.inner.lock();
        self.manual(&inner, i)
    }

    /// Raw registers (holding or input) or bits as 0/1 (coils, discrete inputs), if they all exist.
    pub fn registers(&self, kind: RegisterKind, address: u16, count: u16) -> Option<Vec<u16>> {
        let inner = self.inner.lock();
        match kind {
            RegisterKind::Holding => inner.holding.read(address, count).ok(),
            RegisterKind::Input => inner.input.read(address, count).ok(),
            RegisterKind::Coil => inner.coils.read(address, count).ok().map(|b| b.into_iter().map(u16::from).collect()),
            RegisterKind::DiscreteInput => {
                inner.discrete.read(address, count).ok().map(|b| b.into_iter().map(u16::from).collect())
            }
        }
    }

    fn manual(&self, inner: &Inner, i: usize) -> bool {
        self.profile.points[i].auto_manual.and_then(|a| inner.holding.get(a)).is_some_and(|v| v == 1)
    }

    /// A T3 point that is digital: outputs and variables by their analog/digital register, inputs by
    /// the high byte of their range register (as the firmware reports it).
    fn digital(&self, inner: &Inner, i: usize) -> bool {
        let p = &self.profile.points[i];
        if !self.t3 || p.point_type == PointType::Register {
            return false;
        }
        if let Some(a) = p.analog_digital {
            return inner.holding.get(a) == Some(0);
        }
        if p.point_type == PointType::Input
            && let Some(a) = p.range
        {
            return inner.holding.get(a).is_some_and(|v| v >> 8 == 0);
        }
        false
    }

    fn words(&self, inner: &Inner, i: usize) -> Result<Vec<u16>, ExceptionCode> {
        let p = &self.profile.points[i];
        let n = p.codec.registers();
        match p.kind {
            RegisterKind::Holding => inner.holding.read(p.address, n),
            RegisterKind::Input => inner.input.read(p.address, n),
            RegisterKind::Coil => inner.coils.read(p.address, 1).map(|b| vec![u16::from(b[0])]),
            RegisterKind::DiscreteInput => inner.discrete.read(p.address, 1).map(|b| vec![u16::from(b[0])]),
        }
    }

    fn load(&self, inner: &Inner, i: usize) -> Result<Value, String> {
        let p = &self.profile.points[i];
        let words = self.words(inner, i).map_err(|e| format!("{e:?}"))?;
        if p.kind.is_bit() {
            return Ok(Value::Number(f64::from(words[0])));
        }
        let codec = if self.digital(inner, i) { unscaled(&p.codec) } else { p.codec.clone() };
        codec.decode(&words).map_err(|e| e.to_string())
    }

    /// Writes a value into a point's registers; digital T3 points store 0 / 1 raw.
    fn store_checked(&self, inner: &mut Inner, i: usize, v: &Value) -> Result<(), String> {
        let p = &self.profile.points[i];
        if p.kind.is_bit() {
            let on = v.as_f64().ok_or("a bit takes a number")? != 0.0;
            match p.kind {
                RegisterKind::Coil => inner.coils.set(p.address, on),
                _ => inner.discrete.set(p.address, on),
            }
            return Ok(());
        }
        let words = if self.digital(inner, i) {
            let on = v.as_f64().ok_or("a digital point takes a number")? != 0.0;
            unscaled(&p.codec).encode(&Value::Number(f64::from(u8::from(on))))
        } else {
            p.codec.encode(v)
        }
        .map_err(|e| e.to_string())?;
        let bank = if p.kind == RegisterKind::Input { &mut inner.input } else { &mut inner.holding };
        for (k, w) in words.into_iter().enumerate() {
            bank.set(p.address.wrapping_add(k as u16), w);
        }
        Ok(())
    }

    fn store(&self, inner: &mut Inner, i: usize, v: &Value) {
        if let Err(e) = self.store_checked(inner, i, v) {
            tracing::debug!(device = %self.spec.name, point = %self.profile.points[i].name, %e, "simulator: value not stored");
        }
    }

    /// Writes the model's values into the registers of every point it moves, except points in manual.
    fn render(&self, inner: &mut Inner, t: f64, utc_offset_s: f64) {
        for i in 0..self.profile.points.len() {
            if inner.model.roles[i] == Role::Hold || self.manual(inner, i) {
                continue;
            }
            if let Some(v) = inner.model.value_of(i, t, utc_offset_s) {
                self.store(inner, i, &Value::Number(v));
            }
        }
    }

    /// The outputs the physics reads (T3 layout: OUT1-4 heating, OUT5 cooling, OUT6 fan, OUT7 damper).
    fn outputs(&self, inner: &Inner) -> Outputs {
        let mut out = Outputs { fan_on: true, ..Outputs::default() };
        if !self.t3 {
            return out;
        }
        for (i, p) in self.profile.points.iter().enumerate() {
            if p.point_type != PointType::Output || p.point_number > 7 {
                continue;
            }
            let v = self.load(inner, i).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
            match p.point_number as usize {
                n @ 1..=ZONES => out.heat[n - 1] = v,
                5 => out.cool = v,
                6 => out.fan_on = v != 0.0,
                7 => out.damper_v = v,
                _ => {}
            }
        }
        out
    }

    pub(crate) fn tick(&self, now: f64, utc_offset_s: f64) {
        let mut inner = self.inner.lock();
        let out = self.outputs(&inner);
        if inner.model.advance(now, utc_offset_s, &out) {
            self.render(&mut inner, now, utc_offset_s);
        }
    }

    /// Time of the last tick (Unix seconds), if any.
    pub fn last_tick(&self) -> Option<f64> {
        self.inner.lock().model.last_tick()
    }

    /// Applies the fault and, where the device gets to do its work, the request.
    pub(crate) fn outcome(&self, request: Result<&Request<'_>, ExceptionCode>) -> Outcome {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if request.is_ok_and(is_write) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        let run = || request.and_then(|r| self.handle(r));
        match self.fault() {
            Fault::None => Outcome::Reply(run()),
            Fault::NoAnswer => Outcome::Silent,
            Fault::LateAnswer { delay_ms } => Outcome::Late(Duration::from_millis(delay_ms), run()),
            Fault::Exception { code } => Outcome::Reply(Err(ExceptionCode::new(code))),
            Fault::DropConnection => Outcome::Drop,
            Fault::Garbage => Outcome::Garbage(run()),
            Fault::CrcError => Outcome::CrcError(run()),
        }
    }

    /// Answers one request from the registers, as the device would.
    pub fn handle(&self, request: &Request<'_>) -> Result<Response, ExceptionCode> {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        match request {
            Request::ReadCoils(a, n) => {
                check_quantity(usize::from(*n), 2000)?;
                inner.coils.read(*a, *n).map(Response::ReadCoils)
            }
            Request::ReadDiscreteInputs(a, n) => {
                check_quantity(usize::from(*n), 2000)?;
                inner.discrete.read(*a, *n).map(Response::ReadDiscreteInputs)
            }
            Request::ReadHoldingRegisters(a, n) => {
                check_quantity(usize::from(*n), 125)?;
                inner.holding.read(*a, *n).map(Response::ReadHoldingRegisters)
            }
            Request::ReadInputRegisters(a, n) => {
                check_quantity(usize::from(*n), 125)?;
                inner.input.read(*a, *n).map(Response::ReadInputRegisters)
            }
            Request::WriteSingleCoil(a, on) => {
                self.write_bits(inner, *a, &[*on])?;
                Ok(Response::WriteSingleCoil(*a, *on))
            }
            Request::WriteMultipleCoils(a, bits) => {
                check_quantity(bits.len(), 1968)?;
                self.write_bits(inner, *a, bits)?;
                Ok(Response::WriteMultipleCoils(*a, bits.len() as u16))
            }
            Request::WriteSingleRegister(a, w) => {
                self.write_words(inner, *a, &[*w])?;
                Ok(Response::WriteSingleRegister(*a, *w))
            }
            Request::WriteMultipleRegisters(a, words) => {
                check_quantity(words.len(), 123)?;
                self.write_words(inner, *a, words)?;
                Ok(Response::WriteMultipleRegisters(*a, words.len() as u16))
            }
            Request::MaskWriteRegister(a, and, or) => {
                let current = inner.holding.get(*a).ok_or(ExceptionCode::IllegalDataAddress)?;
                self.write_words(inner, *a, &[(current & and) | (or & !and)])?;
                Ok(Response::MaskWriteRegister(*a, *and, *or))
            }
            Request::ReadWriteMultipleRegisters(ra, rn, wa, words) => {
                check_quantity(usize::from(*rn), 125)?;
                check_quantity(words.len(), 121)?;
                inner.holding.read(*ra, *rn)?; // check before writing
                self.write_words(inner, *wa, words)?;
                inner.holding.read(*ra, *rn).map(Response::ReadWriteMultipleRegisters)
            }
            Request::ReportServerId => {
                let mut data = self.spec.name.as_bytes().to_vec();
                data.truncate(240);
                Ok(Response::ReportServerId(self.product_model as u8, true, data))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }

    fn write_bits(&self, inner: &mut Inner, address: u16, bits: &[bool]) -> Result<(), ExceptionCode> {
        inner.coils.check_writable(address, bits.len())?;
        for (k, &b) in bits.iter().enumerate() {
            inner.coils.set(address + k as u16, b);
        }
        Ok(())
    }

    fn write_words(&self, inner: &mut Inner, address: u16, words: &[u16]) -> Result<(), ExceptionCode> {
        let (programs, count) = panel::program_block();
        if self.t3 && (programs..programs + count).contains(&address) {
            return Self::write_program(inner, address, words);
        }
        inner.holding.check_writable(address, words.len())?;
        let addresses: Vec<u16> = (0..words.len()).map(|k| address + k as u16).collect();
        let old: Vec<u16> = addresses.iter().map(|&a| inner.holding.get(a).unwrap_or(0)).collect();
        for (&a, &w) in addresses.iter().zip(words) {
            inner.holding.set(a, w);
        }
        let touched: BTreeSet<Owner> =
            addresses.iter().filter_map(|&a| self.owners.get(&(RegisterKind::Holding, a))).flatten().copied().collect();
        for &owner in &touched {
            if let Err(e) = self.validate(inner, owner) {
                for (&a, &w) in addresses.iter().zip(&old) {
                    inner.holding.set(a, w);
                }
                return Err(e);
            }
        }
        for &owner in &touched {
            if let Owner::Value(i) = owner
                && self.digital(inner, i)
            {
                // Any non-zero word switches a digital point on; it reads back as 1.
                let on = self.words(inner, i).is_ok_and(|w| w.iter().any(|&x| x != 0));
                self.store(inner, i, &Value::Number(f64::from(u8::from(on))));
            }
        }
        Ok(())
    }

    fn validate(&self, inner: &Inner, owner: Owner) -> Result<(), ExceptionCode> {
        let bad = ExceptionCode::IllegalDataValue;
        let word = |a: Option<u16>| a.and_then(|a| inner.holding.get(a)).unwrap_or(0);
        match owner {
            Owner::UnitId => {
                if word(Some(6)) != u16::from(self.spec.unit_id) {
                    return Err(bad);
                }
            }
            Owner::AutoManual(i) => {
                if word(self.profile.points[i].auto_manual) > 1 {
                    return Err(bad);
                }
            }
            Owner::AnalogDigital(i) => {
                if word(self.profile.points[i].analog_digital) > 1 {
                    return Err(bad);
                }
            }
            Owner::Range(i) => {
                let p = &self.profile.points[i];
                let w = word(p.range);
                let ok = if p.point_type == PointType::Input { w >> 8 <= 1 } else { w <= 0xFF };
                if !ok {
                    return Err(bad);
                }
            }
            Owner::Value(i) => {
                let p = &self.profile.points[i];
                if self.t3 && p.point_type == PointType::Output && !self.digital(inner, i) {
                    let range = word(p.range) & 0xFF;
                    let span = match range {
                        1 | 8 => Some(10.0),          // 0-10 V, 2-10 V
                        2 | 4 | 5 | 7 => Some(100.0), // %Open, %, %Closed, PWM
                        6 => Some(20.0),              // mA
                        _ => None,
                    };
                    let v = self.load(inner, i).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
                    if span.is_some_and(|max| !(0.0..=max).contains(&v)) {
                        return Err(bad);
                    }
                }
            }
        }
        Ok(())
    }
}
