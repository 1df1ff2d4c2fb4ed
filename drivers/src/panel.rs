//! The configuration a T3 controller keeps for its points, read and written over Modbus: what hardware
//! sync compares with the catalog.
//!
//! For every input, output and variable the panel keeps a label and a description (its point record,
//! see [`crate::labels`]), a range (unit) code, whether it is digital or analog, and whether it is in
//! auto or manual, each in the holding registers of the T3 register map:
//!
//! | field | outputs | inputs | variables |
//! |---|---|---|---|
//! | description, label | record at 10000 (23 registers each) | record at 11472 (23) | record at 12944 (20) |
//! | range | 7292 + n | 7804 + n, low byte | 8532 + n |
//! | digital / analog | 7420 + n (1 analog) | 7804 + n, high byte (1 analog) | 8660 + n (1 analog) |
//! | auto / manual | 7356 + n (1 manual) | 7868 + n | 8348 + n |
//!
//! (n = point number - 1; the addresses come from the T3 profile, these are its values.)
//!
//! Its weekly and annual routines ([`PanelRoutines`]) and its program table ([`PanelProgramState`])
//! are whole packed records ([`crate::t3::records`]), two bytes a register, in the blocks of the
//! firmware's `modbus.h`:
//!
//! | block | first register | registers a record | records |
//! |---|---|---|---|
//! | program table (`Str_program_point`, 37 bytes) | 15504 | 19 | 16 |
//! | weekly routines (`Str_weekly_routine_point`) | 15808 | 21 | 8 |
//! | annual routines (`Str_annual_routine_point`, 33 bytes) | 15976 | 17 | 4 |
//! | weekly routine times (`wr_times`) | 32044 | 72 | 8 |
//! | annual routine days (`ar_dates`) | 32620 | 23 | 4 |
//! | weekly routine event flags (`wr_time_on_off`, newer firmware) | 33201 | 36 | 8 |
//!
//! and the panel number, which point references carry, is byte 73 of the settings block (9800): the
//! low half of register 9836. The firmware takes a record written whole (function 16 from its first
//! register), which is how they are written here.
//!
//! How the firmware serves these blocks (temcocontrols/T3-programmable-controller-on-ESP32 at
//! 1b83f7cb, `main/modbus.c`; T3000's reader agrees):
//! - Record i starts at register `first + i * ((size + 1) / 2)`: a whole number of registers each
//!   (`modbus.h` lines 352-353; `read_user_data_by_block`, lines 1582-1587). T3000 reads the program
//!   table 100 registers at a time from 15504 and takes record i from register `i * 19`
//!   (temcocontrols/T3000_Building_Automation_System at 2db71f86, `T3000/BacnetView.cpp` lines
//!   7327-7361).
//! - Within a register the record's first byte is the high half: the firmware reads the struct as
//!   little-endian u16s and sends the low byte first (`modbus.c` lines 1218-1220, 1256-1257), as
//!   [`crate::t3::to_registers`] packs.
//! - The block is the packed C array seen through those addresses, so a record of odd size (a program,
//!   an annual routine) shares its last register with the next record: its low half is the next
//!   record's first byte (what follows the array for the last record).
//! - A write (function 16) is taken only from a record's first register and copies the record's own
//!   bytes from the request (`write_user_data_by_block`, lines 1416-1422 for programs); a write from
//!   any other register is ignored, and every block write is saved to flash (line 2010). The
//!   neighbour's byte in a shared register is written back as read all the same.
//!
//! Reads here fail as a whole when any request fails: a sync must never take a register it could not
//! read for an empty label. The one exception is the event flags block, which older firmware does not
//! have: a Modbus exception there reads as "no flags". The program table is read on its own
//! ([`Collector::read_programs`]), and a Modbus exception there is [`CollectError::Refused`]. A
//! device that is not a T3 controller is refused before anything is sent. Writes are read back and
//! confirmed. Auto / manual is read here and written with [`Collector::set_mode`], which the server's
//! control service wraps (the arbiter and the audit log follow the mode).

use crate::codec::RegisterKind;
use crate::collector::{CollectError, Collector, DeviceSpec, first, point_index};
use crate::driver::{Driver, DriverError, RawData};
use crate::labels::{self, PointText};
use crate::planner::{self, Limits, PlanItem, ReadRequest};
use crate::profile::{PointType, ProfilePoint};
use crate::t3::records::{AnnualRoutine, EVENTS, HolidayBitmap, ProgramRecord, Record, ScheduleTimes, WeeklyRoutine};
use crate::t3::{from_registers, routines, to_registers};
use std::collections::HashMap;

/// Weekly routines a T3 panel has.
pub const WEEKLY_ROUTINES: usize = 8;
/// Annual routines a T3 panel has.
pub const ANNUAL_ROUTINES: usize = 4;
/// Programs a T3 panel has.
pub const PROGRAMS: usize = 16;
/// (first register, registers a record) of the program table: 16 `Str_program_point` records of 37
/// bytes, 19 registers each (ESP32 firmware `main/modbus.h` lines 352-353; T3000
/// `T3000/global_define.h` lines 29 and 2039).
pub const PROGRAM_TABLE: (u16, u16) = (15504, 19);

/// (first register, registers a record) of each routine block.
const WEEKLY_RECORDS: (u16, u16) = (15808, 21);
const ANNUAL_RECORDS: (u16, u16) = (15976, 17);
const WEEKLY_TIMES: (u16, u16) = (32044, 72);
const ANNUAL_DAYS: (u16, u16) = (32620, 23);
const WEEKLY_FLAGS: (u16, u16) = (33201, 36);
/// The settings register whose low byte is the panel number (settings byte 73).
const PANEL_NUMBER: u16 = 9836;

/// Every holding register of a T3 panel's routines and settings: (first, count) per block (what the
/// simulator serves).
pub fn routine_blocks() -> [(u16, u16); 6] {
    let whole = |(first, size): (u16, u16), n: usize| (first, size * n as u16);
    [
        whole(WEEKLY_RECORDS, WEEKLY_ROUTINES),
        whole(ANNUAL_RECORDS, ANNUAL_ROUTINES),
        whole(WEEKLY_TIMES, WEEKLY_ROUTINES),
        whole(ANNUAL_DAYS, ANNUAL_ROUTINES),
        whole(WEEKLY_FLAGS, WEEKLY_ROUTINES),
        (9800, 200),
    ]
}

/// What a T3 controller keeps for one weekly routine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelWeekly {
    pub record: WeeklyRoutine,
    pub times: ScheduleTimes,
    /// The event flags (`[day][event]`: 1 ON, 0 OFF, 0xFF unused); none on firmware without them.
    pub flags: Option<[[u8; EVENTS]; 9]>,
}

/// What a T3 controller keeps for one annual routine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelAnnual {
    pub record: AnnualRoutine,
    pub days: HolidayBitmap,
}

/// A T3 controller's weekly and annual routines (`WR1..8`, `AR1..4`, in order) and its panel number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelRoutines {
    pub panel: u8,
    pub weekly: Vec<PanelWeekly>,
    pub annual: Vec<PanelAnnual>,
}

/// A program of a T3 controller's program table, as the panel has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelProgramState {
    /// 1..=16: `PRG1`.
    pub number: u16,
    pub label: String,
    pub description: String,
    /// Size of its compiled code in bytes; 0 is an empty slot, which the panel never runs.
    pub code_bytes: u16,
    /// Switched on (`on_off`): the panel runs it on every scan (if it has code).
    pub running: bool,
    /// In manual only an operator starts or stops it; in auto another program of the panel may too
    /// (`START PRG2`).
    pub manual: bool,
}

impl PanelProgramState {
    fn of(number: u16, r: ProgramRecord) -> PanelProgramState {
        PanelProgramState {
            number,
            label: r.label,
            description: r.description,
            code_bytes: r.bytes,
            running: r.on_off != 0,
            manual: r.auto_manual != 0,
        }
    }
}

/// `n` records of `(first, size)`: (address, count) items.
fn records_of((first, size): (u16, u16), n: usize) -> Vec<(u16, u16)> {
    (0..n as u16).map(|i| (first + i * size, size)).collect()
}

/// The record of `items[i]` from a read's words.
fn decode_at<R: Record>(words: &HashMap<u16, Vec<u16>>, items: &[(u16, u16)], i: usize) -> Result<R, CollectError> {
    let w = words.get(&items[i].0).map(Vec::as_slice).unwrap_or_default();
    R::decode(&from_registers(w)).map_err(|e| DriverError::Protocol(e.to_string()).into())
}

/// What a T3 controller keeps for one of its points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelPoint {
    /// The point's id (the collector's).
    pub point: u32,
    /// `IN1`, `OUT3`, `VAR12`.
    pub name: String,
    pub point_type: PointType,
    /// The label and description of its point record.
    pub text: PointText,
    /// T3000's range (unit) code.
    pub range: Option<u16>,
    /// Digital (a raw 0 / 1) rather than analog.
    pub digital: Option<bool>,
    /// In manual (its controller does not drive it).
    pub manual: Option<bool>,
}

/// Registers of one point's fields.
#[derive(Debug, Clone, Copy)]
struct Fields {
    record: u16,
    range: Option<u16>,
    /// The analog/digital register of an output or variable (an input keeps the flag in its range
    /// register's high byte).
    analog_digital: Option<u16>,
    auto_manual: Option<u16>,
}

impl Fields {
    fn of(p: &ProfilePoint) -> Option<Fields> {
        Some(Fields {
            record: labels::record(p)?,
            range: p.range,
            analog_digital: if p.point_type == PointType::Input { None } else { p.analog_digital },
            auto_manual: p.auto_manual,
        })
    }
}

/// Reads `items` (address, count) of holding registers in as few requests as `limits` allow; any
/// request that fails fails the whole read. The words of each item, by its address.
async fn read_all(
    spec: &DeviceSpec,
    driver: &dyn Driver,
    items: &[(u16, u16)],
    limits: &Limits,
) -> Result<HashMap<u16, Vec<u16>>, CollectError> {
    if items.is_empty() {
        return Ok(HashMap::new());
    }
    let plan_items: Vec<PlanItem> =
        items.iter().map(|&(address, count)| PlanItem { kind: RegisterKind::Holding, address, count }).collect();
    let plan = planner::plan(&plan_items, limits).map_err(|e| CollectError::Plan(e.to_string()))?;
    let results = driver.read(spec.config.unit_id, &plan).await;
    let mut out = HashMap::new();
    for (req, result) in plan.iter().zip(results) {
        let words = match result? {
            RawData::Words(w) => w,
            other => return Err(DriverError::Protocol(format!("registers {}: {other:?}", req.start)).into()),
        };
        for &(item, offset) in &req.points {
            let (address, count) = items[item];
            let start = usize::from(offset);
            let w = words.get(start..start + usize::from(count)).ok_or_else(|| {
                DriverError::Protocol(format!("registers {address}..{}: short answer", address + count))
            })?;
            out.insert(address, w.to_vec());
        }
    }
    Ok(out)
}

async fn read_one(spec: &DeviceSpec, driver: &dyn Driver, address: u16, count: u16) -> Result<Vec<u16>, CollectError> {
    let req = ReadRequest { kind: RegisterKind::Holding, start: address, count, points: Vec::new() };
    match first(driver.read(spec.config.unit_id, std::slice::from_ref(&req)).await)? {
        RawData::Words(w) if w.len() == usize::from(count) => Ok(w),
        other => Err(DriverError::Protocol(format!("registers {address}: {other:?}")).into()),
    }
}

/// Writes `words` at `address`, reads them back and confirms they are the same.
async fn write_confirmed(
    spec: &DeviceSpec,
    driver: &dyn Driver,
    address: u16,
    words: Vec<u16>,
) -> Result<(), CollectError> {
    write_checked(spec, driver, address, words, |written, back| written == back).await
}

/// Writes `words` at `address`, reads them back and confirms with `same(written, read back)`.
async fn write_checked(
    spec: &DeviceSpec,
    driver: &dyn Driver,
    address: u16,
    words: Vec<u16>,
    same: impl Fn(&[u16], &[u16]) -> bool,
) -> Result<(), CollectError> {
    let count = u16::try_from(words.len()).map_err(|_| CollectError::Plan("too many registers".into()))?;
    driver.write(spec.config.unit_id, RegisterKind::Holding, address, RawData::Words(words.clone())).await?;
    let back = read_one(spec, driver, address, count).await?;
    if !same(&words, &back) {
        return Err(DriverError::NotConfirmed {
            written: format!("{address}: {words:?}"),
            read_back: format!("{address}: {back:?}"),
        }
        .into());
    }
    Ok(())
}

/// Refuses a device without T3 points (a library profile, a plugin): it has no `what`.
fn t3_only(spec: &DeviceSpec, device: &str, what: &'static str) -> Result<(), CollectError> {
    if spec.points.iter().any(|cp| labels::record(spec.point_of(cp)).is_some()) {
        Ok(())
    } else {
        Err(CollectError::NotT3 { device: device.to_owned(), what })
    }
}

/// A Modbus exception from the controller itself (not a gateway's: the device is unreachable then)
/// to a request in the block `(first, count)`: the firmware does not serve it.
fn refused(e: CollectError, device: &str, what: &'static str, (first, count): (u16, u16)) -> CollectError {
    match e {
        CollectError::Driver(DriverError::Exception(exception)) if !exception.is_gateway() => {
            CollectError::Refused { device: device.to_owned(), what, first, last: first + count - 1, exception }
        }
        e => e,
    }
}

/// The program table's holding registers: (first, count) (what the simulator serves).
pub fn program_block() -> (u16, u16) {
    (PROGRAM_TABLE.0, PROGRAM_TABLE.1 * PROGRAMS as u16)
}

/// The program table as the messages name it.
const PROGRAM_TABLE_NAME: &str = "program table";

impl Collector {
    /// Reads a T3 controller's weekly and annual routines, their times and days, and its panel
    /// number, in planned batches. A device without T3 points (a library profile, a plugin) is
    /// refused without a request.
    pub async fn read_routines(&self, device: &str) -> Result<PanelRoutines, CollectError> {
        let (spec, driver) = self.handle(device)?;
        t3_only(&spec, device, "weekly and annual routines")?;
        let driver = driver.as_ref();
        let weekly_items = records_of(WEEKLY_RECORDS, WEEKLY_ROUTINES);
        let annual_items = records_of(ANNUAL_RECORDS, ANNUAL_ROUTINES);
        let times_items = records_of(WEEKLY_TIMES, WEEKLY_ROUTINES);
        let days_items = records_of(ANNUAL_DAYS, ANNUAL_ROUTINES);
        let mut items = vec![(PANEL_NUMBER, 1)];
        for list in [&weekly_items, &annual_items, &times_items, &days_items] {
            items.extend_from_slice(list);
        }
        let words = read_all(&spec, driver, &items, &spec.limits()).await?;
        let flag_items = records_of(WEEKLY_FLAGS, WEEKLY_ROUTINES);
        let flags = match read_all(&spec, driver, &flag_items, &spec.limits()).await {
            Ok(w) => Some(w),
            Err(CollectError::Driver(DriverError::Exception(_))) => None,
            Err(e) => return Err(e),
        };
        let mut weekly = Vec::with_capacity(WEEKLY_ROUTINES);
        for (i, &(flags_at, _)) in flag_items.iter().enumerate() {
            let flags = flags.as_ref().map(|f| {
                let bytes = from_registers(f.get(&flags_at).map(Vec::as_slice).unwrap_or_default());
                std::array::from_fn(|d| std::array::from_fn(|e| bytes.get(d * EVENTS + e).copied().unwrap_or(0xFF)))
            });
            weekly.push(PanelWeekly {
                record: decode_at(&words, &weekly_items, i)?,
                times: decode_at(&words, &times_items, i)?,
                flags,
            });
        }
        let mut annual = Vec::with_capacity(ANNUAL_ROUTINES);
        for i in 0..ANNUAL_ROUTINES {
            annual.push(PanelAnnual {
                record: decode_at(&words, &annual_items, i)?,
                days: decode_at(&words, &days_items, i)?,
            });
        }
        let panel = words.get(&PANEL_NUMBER).and_then(|w| w.first()).map_or(0, |w| (w & 0xFF) as u8);
        Ok(PanelRoutines { panel, weekly, annual })
    }

    /// Writes weekly routine `n` (1..=8): its record, then (if given) its times and, where the panel
    /// keeps them (`with_flags`), the event flags that agree with them; each written whole and
    /// confirmed.
    pub async fn write_weekly(
        &self,
        device: &str,
        n: usize,
        record: &WeeklyRoutine,
        times: Option<&ScheduleTimes>,
        with_flags: bool,
    ) -> Result<(), CollectError> {
        let (spec, driver) = self.handle(device)?;
        let i = record_index(n, WEEKLY_ROUTINES, "weekly routines")?;
        let at = |(first, size): (u16, u16)| first + i * size;
        write_confirmed(&spec, driver.as_ref(), at(WEEKLY_RECORDS), to_registers(&record.encode())).await?;
        let Some(times) = times else { return Ok(()) };
        write_confirmed(&spec, driver.as_ref(), at(WEEKLY_TIMES), to_registers(&times.encode())).await?;
        if with_flags {
            let bytes: Vec<u8> = routines::flags_of(times).iter().flatten().copied().collect();
            write_confirmed(&spec, driver.as_ref(), at(WEEKLY_FLAGS), to_registers(&bytes)).await?;
        }
        Ok(())
    }

    /// Writes annual routine `n` (1..=4): its record, then its days, each whole and confirmed.
    pub async fn write_annual(
        &self,
        device: &str,
        n: usize,
        record: &AnnualRoutine,
        days: &HolidayBitmap,
    ) -> Result<(), CollectError> {
        let (spec, driver) = self.handle(device)?;
        let i = record_index(n, ANNUAL_ROUTINES, "annual routines")?;
        let at = |(first, size): (u16, u16)| first + i * size;
        // 33 bytes in 17 registers: the last register's low half is the next record's first byte
        // (the firmware serves the packed array), so it is written back as the panel has it.
        let (first, size) = (at(ANNUAL_RECORDS), ANNUAL_RECORDS.1);
        let current = read_one(&spec, driver.as_ref(), first, size).await?;
        let mut bytes = record.encode();
        bytes.push(current.last().map_or(0, |w| (w & 0xFF) as u8));
        write_confirmed(&spec, driver.as_ref(), first, to_registers(&bytes)).await?;
        write_confirmed(&spec, driver.as_ref(), at(ANNUAL_DAYS), to_registers(&days.encode())).await
    }

    /// Reads a T3 controller's program table (`PRG1..16`, in order): label, description, code size,
    /// on/off and auto/manual of each, in planned batches. A device without T3 points (a library
    /// profile, a plugin) is refused without a request; a Modbus exception (firmware without the
    /// table) is [`CollectError::Refused`].
    pub async fn read_programs(&self, device: &str) -> Result<Vec<PanelProgramState>, CollectError> {
        let (spec, driver) = self.handle(device)?;
        t3_only(&spec, device, PROGRAM_TABLE_NAME)?;
        let items = records_of(PROGRAM_TABLE, PROGRAMS);
        let words = read_all(&spec, driver.as_ref(), &items, &spec.limits())
            .await
            .map_err(|e| refused(e, device, PROGRAM_TABLE_NAME, program_block()))?;
        (0..PROGRAMS)
            .map(|i| decode_at::<ProgramRecord>(&words, &items, i).map(|r| PanelProgramState::of(i as u16 + 1, r)))
            .collect()
    }

    /// Switches program `n` (1..=16) of a T3 controller on or off: reads its record, and unless it
    /// is so already (every block write is saved to the panel's flash: `main/modbus.c` line 2010)
    /// writes it back whole with only `on_off` changed (function 16 from its first register, the
    /// only write the firmware takes), then reads it back and confirms. The last register's low half
    /// is the next program's first byte (see the module docs): it is written back as read. A program
    /// in auto may be started again by another program of the panel; one in manual stays as set.
    /// Refused like [`Collector::read_programs`].
    pub async fn set_program_running(&self, device: &str, n: usize, on: bool) -> Result<(), CollectError> {
        let (spec, driver) = self.handle(device)?;
        t3_only(&spec, device, PROGRAM_TABLE_NAME)?;
        let i = record_index(n, PROGRAMS, "programs")?;
        let driver = driver.as_ref();
        let (table, size) = PROGRAM_TABLE;
        let first = table + i * size;
        let why = |e| refused(e, device, PROGRAM_TABLE_NAME, program_block());
        let current = from_registers(&read_one(&spec, driver, first, size).await.map_err(why)?);
        let mut record = ProgramRecord::decode(&current).map_err(|e| DriverError::Protocol(e.to_string()))?;
        if record.on_off == u8::from(on) {
            return Ok(());
        }
        record.on_off = u8::from(on);
        let mut bytes = record.encode();
        bytes.extend_from_slice(&current[ProgramRecord::SIZE..]);
        let confirm = |written: &[u16], back: &[u16]| {
            let decode = |w: &[u16]| ProgramRecord::decode(&from_registers(w));
            matches!((decode(written), decode(back)), (Ok(a), Ok(b)) if same_program(&a, &b))
        };
        write_checked(&spec, driver, first, to_registers(&bytes), confirm).await.map_err(why)
    }

    /// Reads the label, description, range code, digital flag and auto/manual of every polled input,
    /// output and variable of a T3 controller: one planned batch for the point records (running
    /// through the rest of each record), one for the single registers. A device without point records
    /// (a library profile, a plugin) gives an empty list without a request; a request that fails
    /// fails the whole read.
    pub async fn read_panel(&self, device: &str) -> Result<Vec<PanelPoint>, CollectError> {
        let (spec, driver) = self.handle(device)?;
        let points: Vec<(u32, &ProfilePoint, Fields)> = spec
            .points
            .iter()
            .filter_map(|cp| {
                let p = spec.point_of(cp);
                Fields::of(p).map(|f| (cp.id, p, f))
            })
            .collect();
        if points.is_empty() {
            return Ok(Vec::new());
        }
        let gap = points.iter().map(|(_, p, _)| labels::record_gap(p)).max().unwrap_or(0);
        let text_items: Vec<(u16, u16)> = points.iter().map(|(_, _, f)| (f.record, labels::TEXT_REGISTERS)).collect();
        let text_limits = Limits { max_gap: spec.limits().max_gap.max(gap), ..spec.limits() };
        let texts = read_all(&spec, driver.as_ref(), &text_items, &text_limits).await?;
        let mut flag_items: Vec<(u16, u16)> = points
            .iter()
            .flat_map(|(_, _, f)| [f.range, f.analog_digital, f.auto_manual].into_iter().flatten())
            .map(|a| (a, 1))
            .collect();
        flag_items.sort_unstable();
        flag_items.dedup();
        let flags = read_all(&spec, driver.as_ref(), &flag_items, &spec.limits()).await?;
        let word = |a: Option<u16>| a.and_then(|a| flags.get(&a)).and_then(|w| w.first().copied());
        Ok(points
            .into_iter()
            .map(|(id, p, f)| {
                let range_word = word(f.range);
                let (range, digital) = if p.point_type == PointType::Input {
                    (range_word.map(|w| w & 0xFF), range_word.map(|w| w >> 8 == 0))
                } else {
                    (range_word, word(f.analog_digital).map(|w| w == 0))
                };
                PanelPoint {
                    point: id,
                    name: p.name.clone(),
                    point_type: p.point_type,
                    text: texts.get(&f.record).map(|w| PointText::decode(p.point_type, w)).unwrap_or_default(),
                    range,
                    digital,
                    manual: word(f.auto_manual).map(|w| w != 0),
                }
            })
            .collect())
    }

    /// Writes a T3 point's label and / or description (those given; the other is kept as the panel
    /// has it) into its point record, reads the record back and confirms. Returns what the panel
    /// holds now (cut to 8 and 20 Latin-1 characters).
    pub async fn write_point_text(
        &self,
        device: &str,
        point: &str,
        label: Option<&str>,
        description: Option<&str>,
    ) -> Result<PointText, CollectError> {
        let (spec, driver) = self.handle(device)?;
        let p = spec.point_of(&spec.points[point_index(&spec, point)?]);
        let f = Fields::of(p).ok_or_else(|| CollectError::ReadOnly(format!("{point} has no label record")))?;
        let current = read_one(&spec, driver.as_ref(), f.record, labels::TEXT_REGISTERS).await?;
        let mut text = PointText::decode(p.point_type, &current);
        if let Some(l) = label {
            l.clone_into(&mut text.label);
        }
        if let Some(d) = description {
            d.clone_into(&mut text.description);
        }
        let words = text.encode(p.point_type, &current);
        write_confirmed(&spec, driver.as_ref(), f.record, words.clone()).await?;
        Ok(PointText::decode(p.point_type, &words))
    }

    /// Writes a T3 point's range code and / or its digital flag (those given), each read back and
    /// confirmed. An input keeps both in one register (analog flag in the high byte), so the other
    /// half is read first and kept.
    pub async fn write_range(
        &self,
        device: &str,
        point: &str,
        range: Option<u16>,
        digital: Option<bool>,
    ) -> Result<(), CollectError> {
        let (spec, driver) = self.handle(device)?;
        let p = spec.point_of(&spec.points[point_index(&spec, point)?]);
        let f = Fields::of(p).ok_or_else(|| CollectError::ReadOnly(format!("{point} has no range register")))?;
        let bad = |reason: &str| CollectError::BadValue {
            point: point.to_owned(),
            value: f64::from(range.unwrap_or(0)),
            reason: reason.to_owned(),
        };
        if range.is_some_and(|r| r > 0xFF) {
            return Err(bad("a range code is one byte (0-255)"));
        }
        let driver = driver.as_ref();
        if p.point_type == PointType::Input {
            let Some(a) = f.range else { return Err(bad("the point has no range register")) };
            let old = read_one(&spec, driver, a, 1).await?[0];
            let analog = digital.map_or(old >> 8, |d| u16::from(!d));
            let code = range.unwrap_or(old & 0xFF);
            return write_confirmed(&spec, driver, a, vec![(analog << 8) | code]).await;
        }
        if let Some(r) = range {
            let Some(a) = f.range else { return Err(bad("the point has no range register")) };
            write_confirmed(&spec, driver, a, vec![r]).await?;
        }
        if let Some(d) = digital {
            let Some(a) = f.analog_digital else { return Err(bad("the point has no analog/digital register")) };
            write_confirmed(&spec, driver, a, vec![u16::from(!d)]).await?;
        }
        Ok(())
    }
}

/// The 0-based index of record `n` (1..=`count`) of a panel table (`what`: "programs").
fn record_index(n: usize, count: usize, what: &'static str) -> Result<u16, CollectError> {
    if (1..=count).contains(&n) { Ok((n - 1) as u16) } else { Err(CollectError::NoRecord { what, count, n }) }
}

/// Two program records agree in what a write sets (the trailing bytes are not compared: the ESP32
/// firmware rewrites its `costtime` there on every scan, see [`ProgramRecord`]).
fn same_program(a: &ProgramRecord, b: &ProgramRecord) -> bool {
    (&a.description, &a.label, a.bytes, a.on_off, a.auto_manual)
        == (&b.description, &b.label, b.bytes, b.on_off, b.auto_manual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_write_is_confirmed_by_what_it_sets_not_by_the_scan_time() {
        let written =
            ProgramRecord { label: "AHU".into(), bytes: 412, on_off: 0, rest: [2, 0, 0], ..Default::default() };
        let scanned = ProgramRecord { rest: [0, 0, 0], ..written.clone() };
        assert!(same_program(&written, &scanned), "the firmware rewrites the trailing bytes on every scan");
        assert!(!same_program(&written, &ProgramRecord { on_off: 1, ..written.clone() }));
        assert!(!same_program(&written, &ProgramRecord { label: "AHU2".into(), ..written.clone() }));
    }

    #[test]
    fn the_program_table_fills_its_block() {
        assert_eq!(usize::from(PROGRAM_TABLE.1), ProgramRecord::SIZE.div_ceil(2));
        assert_eq!(program_block(), (15504, 304));
        // It ends where the weekly routines begin (15808).
        assert_eq!(program_block().0 + program_block().1, WEEKLY_RECORDS.0);
    }
}
