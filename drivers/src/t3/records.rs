//! The packed records of a T3 panel, decoded from and encoded to their bytes.
//!
//! Layouts are the C structs T3000 and the T3 firmware share (`ud_str.h`: `#pragma pack(1)`, little
//! endian, strings NUL-terminated Latin-1). Every field of every record is kept, the ones we do not
//! interpret too, so a record read from a panel or a file can be changed in one field and written back
//! without disturbing the rest (only what follows the NUL inside a text field is not kept: T3000 ignores
//! it too).
//!
//! | record | struct | bytes |
//! |---|---|---|
//! | [`Input`] | `Str_in_point` | 46 |
//! | [`Output`] | `Str_out_point` | 45 |
//! | [`Variable`] | `Str_variable_point` | 39 |
//! | [`ProgramRecord`] | `Str_program_point` | 37 |
//! | [`Pid`] | `Str_controller_point` | 28 |
//! | [`WeeklyRoutine`] | `Str_weekly_routine_point` | 42 |
//! | [`AnnualRoutine`] | `Str_annual_routine_point` | 33 |
//! | [`Monitor`] | `Str_monitor_point` | 104 |
//! | [`AlarmSetPoint`] | `Alarm_set_point` | 30 |
//! | [`Alarm`] | `Alarm_point` | 102 |
//! | [`DigitalUnits`] | `Str_Units_element` | 25 |
//! | [`AnalogTable`] | `Str_table_point` | 105 |
//! | [`VariableUnit`] | `Str_variable_uint_point` | 20 |
//! | [`MultiState`] | `Str_MSV` | 184 |
//! | [`ScheduleTimes`] | `Str_schedual_time_point` (file order) | 144 |
//! | [`ScheduleFlags`] | `Str_schedual_time_flag` | 72 |
//! | [`HolidayBitmap`] | `g_DayState[i]` (`ANNUAL_CODE_SIZE`) | 46 |

use super::{latin1, latin1_field};

/// Fewer bytes than the record needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {record} record needs {needed} bytes, {got} given")]
pub struct ShortRecord {
    pub record: &'static str,
    pub needed: usize,
    pub got: usize,
}

/// A packed record of fixed size.
pub trait Record: Sized {
    /// Bytes of the record.
    const SIZE: usize;
    /// What T3000 calls it (for messages): "input", "weekly routine".
    const NAME: &'static str;

    /// Decodes from exactly [`Self::SIZE`] bytes (callers check the length; [`Record::decode`] does).
    fn read(r: &mut Reader<'_>) -> Self;
    /// Appends the record's [`Self::SIZE`] bytes.
    fn write(&self, w: &mut Vec<u8>);

    /// Decodes the record from the first [`Self::SIZE`] bytes of `bytes`.
    fn decode(bytes: &[u8]) -> Result<Self, ShortRecord> {
        let bytes =
            bytes.get(..Self::SIZE).ok_or(ShortRecord { record: Self::NAME, needed: Self::SIZE, got: bytes.len() })?;
        Ok(Self::read(&mut Reader { bytes, at: 0 }))
    }

    /// The record's bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        self.write(&mut out);
        debug_assert_eq!(out.len(), Self::SIZE, "{} encodes to its size", Self::NAME);
        out
    }
}

/// Reads a record's fields in order. Reads past the end give zeros (a record's `read` only ever sees a
/// slice of its own size, so that never happens for a correct layout; tests check every layout).
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.bytes.get(self.at..self.at + N) {
            out.copy_from_slice(src);
        }
        self.at += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take())
    }
    fn text<const N: usize>(&mut self) -> String {
        latin1(&self.take::<N>())
    }
    fn point(&mut self) -> PointRef {
        let [number, point_type, panel] = self.take();
        PointRef { number, point_type, panel }
    }
    fn net_point(&mut self) -> NetPoint {
        let [number, point_type, panel, sub_panel, network] = self.take();
        NetPoint { number, point_type, panel, sub_panel, network }
    }
}

fn put_text(w: &mut Vec<u8>, text: &str, size: usize) {
    w.extend(latin1_field(text, size));
}

/// T3000's point types (`Point_type_equate`) as a [`PointRef`] carries them (the stored byte is the
/// type + 1; 0 is "no point").
pub mod point_type {
    pub const OUTPUT: u8 = 0;
    pub const INPUT: u8 = 1;
    pub const VARIABLE: u8 = 2;
    pub const PID: u8 = 3;
    pub const SCHEDULE: u8 = 4;
    pub const HOLIDAY: u8 = 5;
    pub const PROGRAM: u8 = 6;
}

/// A reference to a point of a panel (`Point_T3000`): the point's number counts from 0; the type is
/// stored + 1 so that all zeros means "none".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PointRef {
    pub number: u8,
    pub point_type: u8,
    pub panel: u8,
}

impl PointRef {
    /// `(point type, 1-based number)` of the point referred to; `None` when unused.
    pub fn target(&self) -> Option<(u8, u16)> {
        (self.point_type != 0).then(|| (self.point_type - 1, u16::from(self.number) + 1))
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.extend([self.number, self.point_type, self.panel]);
    }
}

/// A reference to a point anywhere on the network (`Point_Net`): like [`PointRef`] (the type stored
/// plus one) plus the sub-panel and the network number. T3000 treats a reference with panel and
/// sub-panel both 0 as unused (`BacnetMonitor.cpp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetPoint {
    pub number: u8,
    pub point_type: u8,
    pub panel: u8,
    pub sub_panel: u8,
    pub network: u8,
}

impl NetPoint {
    /// `(point type, 1-based number)`; `None` when unused.
    pub fn target(&self) -> Option<(u8, u16)> {
        if self.point_type == 0 || (self.panel == 0 && self.sub_panel == 0) {
            return None;
        }
        Some(((self.point_type - 1) & 0x1F, u16::from(self.number) + 1))
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.extend([self.number, self.point_type, self.panel, self.sub_panel, self.network]);
    }
}

/// An input (`Str_in_point`, 46 bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    /// Full label, up to 20 characters.
    pub description: String,
    /// Label, up to 8 characters.
    pub label: String,
    /// Value x 1000.
    pub value: i32,
    pub filter: u8,
    /// Low nibble: 0 normal, 1 open, 2 shorted; high nibble: the input's jumper setting.
    pub decom: u8,
    pub sub_id: u8,
    pub sub_product: u8,
    pub control: u8,
    /// 0 auto, 1 manual.
    pub auto_manual: u8,
    /// 1 analog, 0 digital.
    pub digital_analog: u8,
    /// 0 positive, 1 negative.
    pub calibration_sign: u8,
    pub sub_number: u8,
    pub calibration_h: u8,
    pub calibration_l: u8,
    pub range: u8,
}

impl Input {
    /// The calibration offset as T3000 shows it: `(calibration_h * 256 + calibration_l) / 10`, negative
    /// when `calibration_sign` is 1.
    pub fn calibration(&self) -> f64 {
        let magnitude = f64::from(u16::from_be_bytes([self.calibration_h, self.calibration_l])) / 10.0;
        if self.calibration_sign == 1 { -magnitude } else { magnitude }
    }
    /// The status part of `decom`: 0 normal, 1 open, 2 shorted.
    pub fn decom_status(&self) -> u8 {
        self.decom & 0x0F
    }
}

impl Record for Input {
    const SIZE: usize = 46;
    const NAME: &'static str = "input";
    fn read(r: &mut Reader<'_>) -> Self {
        Input {
            description: r.text::<21>(),
            label: r.text::<9>(),
            value: r.i32(),
            filter: r.u8(),
            decom: r.u8(),
            sub_id: r.u8(),
            sub_product: r.u8(),
            control: r.u8(),
            auto_manual: r.u8(),
            digital_analog: r.u8(),
            calibration_sign: r.u8(),
            sub_number: r.u8(),
            calibration_h: r.u8(),
            calibration_l: r.u8(),
            range: r.u8(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_text(w, &self.description, 21);
        put_text(w, &self.label, 9);
        w.extend(self.value.to_le_bytes());
        w.extend([
            self.filter,
            self.decom,
            self.sub_id,
            self.sub_product,
            self.control,
            self.auto_manual,
            self.digital_analog,
            self.calibration_sign,
            self.sub_number,
            self.calibration_h,
            self.calibration_l,
            self.range,
        ]);
    }
}

/// An output (`Str_out_point`, 45 bytes). Its description field is 19 bytes (18 characters): the two
/// bytes after it hold the low and high voltage of the output's range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub description: String,
    pub low_voltage: u8,
    pub high_voltage: u8,
    pub label: String,
    pub value: i32,
    pub auto_manual: u8,
    pub digital_analog: u8,
    /// 0 OFF, 1 AUTO, 2 HAND.
    pub hw_switch_status: u8,
    pub control: u8,
    pub digital_control: u8,
    pub decom: u8,
    pub range: u8,
    pub sub_id: u8,
    pub sub_product: u8,
    pub sub_number: u8,
    pub pwm_period: u8,
}

impl Record for Output {
    const SIZE: usize = 45;
    const NAME: &'static str = "output";
    fn read(r: &mut Reader<'_>) -> Self {
        Output {
            description: r.text::<19>(),
            low_voltage: r.u8(),
            high_voltage: r.u8(),
            label: r.text::<9>(),
            value: r.i32(),
            auto_manual: r.u8(),
            digital_analog: r.u8(),
            hw_switch_status: r.u8(),
            control: r.u8(),
            digital_control: r.u8(),
            decom: r.u8(),
            range: r.u8(),
            sub_id: r.u8(),
            sub_product: r.u8(),
            sub_number: r.u8(),
            pwm_period: r.u8(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_text(w, &self.description, 19);
        w.extend([self.low_voltage, self.high_voltage]);
        put_text(w, &self.label, 9);
        w.extend(self.value.to_le_bytes());
        w.extend([
            self.auto_manual,
            self.digital_analog,
            self.hw_switch_status,
            self.control,
            self.digital_control,
            self.decom,
            self.range,
            self.sub_id,
            self.sub_product,
            self.sub_number,
            self.pwm_period,
        ]);
    }
}

/// A variable (`Str_variable_point`, 39 bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variable {
    pub description: String,
    pub label: String,
    pub value: i32,
    pub auto_manual: u8,
    pub digital_analog: u8,
    pub control: u8,
    pub unused: u8,
    pub range: u8,
}

impl Record for Variable {
    const SIZE: usize = 39;
    const NAME: &'static str = "variable";
    fn read(r: &mut Reader<'_>) -> Self {
        Variable {
            description: r.text::<21>(),
            label: r.text::<9>(),
            value: r.i32(),
            auto_manual: r.u8(),
            digital_analog: r.u8(),
            control: r.u8(),
            unused: r.u8(),
            range: r.u8(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_text(w, &self.description, 21);
        put_text(w, &self.label, 9);
        w.extend(self.value.to_le_bytes());
        w.extend([self.auto_manual, self.digital_analog, self.control, self.unused, self.range]);
    }
}

/// A program's entry in the panel's program table (`Str_program_point`, 37 bytes); its code is a
/// separate 2000-byte block.
///
/// The first 34 bytes are the same in every copy of the struct. The last three are not: T3000's
/// `com_prg`, `errcode`, `unused` (temcocontrols/T3000_Building_Automation_System at 2db71f86,
/// `T3000/CM5/ud_str.h` lines 519-530), the ESP32 firmware's `costtime` (the last scan's duration,
/// rewritten on every scan: temcocontrols/T3-programmable-controller-on-ESP32 at 1b83f7cb,
/// `main/tcp_server.c` lines 4441-4459) and a u16 `real_byte` (`main/ud_str.h` lines 522-532). They are kept as read ([`ProgramRecord::rest`]), so a record
/// changed in one field and written back leaves them as the panel had them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramRecord {
    pub description: String,
    pub label: String,
    /// Size of the compiled code in bytes; the firmware runs no program whose size is 0
    /// (`main/tcp_server.c` line 4443).
    pub bytes: u16,
    /// 0 off, 1 on: whether the panel runs the program.
    pub on_off: u8,
    /// 0 auto, 1 manual. In auto another program of the panel may start or stop it; in manual only
    /// an operator does (`temco_bacnet/private/POINT.C` lines 1142-1149).
    pub auto_manual: u8,
    /// Bytes 34..37, whose meaning differs between firmware copies (see above).
    pub rest: [u8; 3],
}

impl Record for ProgramRecord {
    const SIZE: usize = 37;
    const NAME: &'static str = "program";
    fn read(r: &mut Reader<'_>) -> Self {
        ProgramRecord {
            description: r.text::<21>(),
            label: r.text::<9>(),
            bytes: r.u16(),
            on_off: r.u8(),
            auto_manual: r.u8(),
            rest: r.take(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_text(w, &self.description, 21);
        put_text(w, &self.label, 9);
        w.extend(self.bytes.to_le_bytes());
        w.extend([self.on_off, self.auto_manual]);
        w.extend(self.rest);
    }
}

/// A PID controller (`Str_controller_point`, 28 bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pid {
    pub input: PointRef,
    pub input_value: i32,
    pub value: i32,
    pub setpoint: PointRef,
    pub setpoint_value: i32,
    pub units: u8,
    pub auto_manual: u8,
    /// 0 direct, 1 reverse.
    pub action: u8,
    pub repeats_per_min: u8,
    pub sample_time: u8,
    pub prop_high: u8,
    pub proportional: u8,
    pub reset: u8,
    pub bias: u8,
    pub rate: u8,
}

impl Record for Pid {
    const SIZE: usize = 28;
    const NAME: &'static str = "PID controller";
    fn read(r: &mut Reader<'_>) -> Self {
        Pid {
            input: r.point(),
            input_value: r.i32(),
            value: r.i32(),
            setpoint: r.point(),
            setpoint_value: r.i32(),
            units: r.u8(),
            auto_manual: r.u8(),
            action: r.u8(),
            repeats_per_min: r.u8(),
            sample_time: r.u8(),
            prop_high: r.u8(),
            proportional: r.u8(),
            reset: r.u8(),
            bias: r.u8(),
            rate: r.u8(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        self.input.write(w);
        w.extend(self.input_value.to_le_bytes());
        w.extend(self.value.to_le_bytes());
        self.setpoint.write(w);
        w.extend(self.setpoint_value.to_le_bytes());
        w.extend([
            self.units,
            self.auto_manual,
            self.action,
            self.repeats_per_min,
            self.sample_time,
            self.prop_high,
            self.proportional,
            self.reset,
            self.bias,
            self.rate,
        ]);
    }
}

/// A weekly routine (`Str_weekly_routine_point`, 42 bytes); its times are a [`ScheduleTimes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeeklyRoutine {
    pub description: String,
    pub label: String,
    /// The routine's output now: 0 off, 1 on.
    pub value: u8,
    pub auto_manual: u8,
    pub override_1_value: u8,
    pub override_2_value: u8,
    pub off: u8,
    pub unused: u8,
    /// The points that override the routine; T3000 links annual routines (holidays) here.
    pub override_1: PointRef,
    pub override_2: PointRef,
}

impl Record for WeeklyRoutine {
    const SIZE: usize = 42;
    const NAME: &'static str = "weekly routine";
    fn read(r: &mut Reader<'_>) -> Self {
        WeeklyRoutine {
            description: r.text::<21>(),
            label: r.text::<9>(),
            value: r.u8(),
            auto_manual: r.u8(),
            override_1_value: r.u8(),
            override_2_value: r.u8(),
            off: r.u8(),
            unused: r.u8(),
            override_1: r.point(),
            override_2: r.point(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_text(w, &self.description, 21);
        put_text(w, &self.label, 9);
        w.extend([self.value, self.auto_manual, self.override_1_value, self.override_2_value, self.off, self.unused]);
        self.override_1.write(w);
        self.override_2.write(w);
    }
}

/// An annual routine, T3000's holiday list (`Str_annual_routine_point`, 33 bytes); its days are a
/// [`HolidayBitmap`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnualRoutine {
    pub description: String,
    pub label: String,
    pub value: u8,
    pub auto_manual: u8,
    pub unused: u8,
}

impl Record for AnnualRoutine {
    const SIZE: usize = 33;
    const NAME: &'static str = "annual routine";
    fn read(r: &mut Reader<'_>) -> Self {
        AnnualRoutine {
            description: r.text::<21>(),
            label: r.text::<9>(),
            value: r.u8(),
            auto_manual: r.u8(),
            unused: r.u8(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_text(w, &self.description, 21);
        put_text(w, &self.label, 9);
        w.extend([self.value, self.auto_manual, self.unused]);
    }
}

/// Points one monitor can log.
pub const MONITOR_POINTS: usize = 14;

/// A monitor, T3000's trend log (`Str_monitor_point`, 104 bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Monitor {
    pub label: String,
    pub inputs: [NetPoint; MONITOR_POINTS],
    pub range: [u8; MONITOR_POINTS],
    pub second_interval: u8,
    pub minute_interval: u8,
    pub hour_interval: u8,
    pub max_time_length: u8,
    /// How many of `inputs` are used.
    pub num_inputs: u8,
    /// How many of them are analog.
    pub an_inputs: u8,
    /// 0 off, 1 on.
    pub status: u8,
    pub next_sample_time: i32,
}

impl Monitor {
    /// The sampling interval in seconds.
    pub fn interval_seconds(&self) -> u32 {
        u32::from(self.hour_interval) * 3600 + u32::from(self.minute_interval) * 60 + u32::from(self.second_interval)
    }
    /// The points logged: the first `num_inputs` inputs that refer to a point.
    pub fn points(&self) -> impl Iterator<Item = &NetPoint> {
        self.inputs.iter().take(usize::from(self.num_inputs).min(MONITOR_POINTS)).filter(|p| p.target().is_some())
    }
}

impl Record for Monitor {
    const SIZE: usize = 104;
    const NAME: &'static str = "monitor";
    fn read(r: &mut Reader<'_>) -> Self {
        Monitor {
            label: r.text::<9>(),
            inputs: std::array::from_fn(|_| r.net_point()),
            range: r.take(),
            second_interval: r.u8(),
            minute_interval: r.u8(),
            hour_interval: r.u8(),
            max_time_length: r.u8(),
            num_inputs: r.u8(),
            an_inputs: r.u8(),
            status: r.u8(),
            next_sample_time: r.i32(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_text(w, &self.label, 9);
        for p in &self.inputs {
            p.write(w);
        }
        w.extend(self.range);
        w.extend([
            self.second_interval,
            self.minute_interval,
            self.hour_interval,
            self.max_time_length,
            self.num_inputs,
            self.an_inputs,
            self.status,
        ]);
        w.extend(self.next_sample_time.to_le_bytes());
    }
}

/// An alarm set point (`Alarm_set_point`, 30 bytes): limits on a point, values x 1000.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmSetPoint {
    pub point: PointRef,
    pub point1: PointRef,
    pub cond1: u8,
    pub waylow: i32,
    pub low: i32,
    pub normal: i32,
    pub hi: i32,
    pub wayhi: i32,
    pub time: u8,
    pub nrmes: u8,
    pub count: u8,
}

impl Record for AlarmSetPoint {
    const SIZE: usize = 30;
    const NAME: &'static str = "alarm set point";
    fn read(r: &mut Reader<'_>) -> Self {
        AlarmSetPoint {
            point: r.point(),
            point1: r.point(),
            cond1: r.u8(),
            waylow: r.i32(),
            low: r.i32(),
            normal: r.i32(),
            hi: r.i32(),
            wayhi: r.i32(),
            time: r.u8(),
            nrmes: r.u8(),
            count: r.u8(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        self.point.write(w);
        self.point1.write(w);
        w.push(self.cond1);
        for v in [self.waylow, self.low, self.normal, self.hi, self.wayhi] {
            w.extend(v.to_le_bytes());
        }
        w.extend([self.time, self.nrmes, self.count]);
    }
}

/// An alarm of the panel's alarm list (`Alarm_point`, 102 bytes: its comment in `ud_str.h` says 88,
/// the fields add up to 102).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub point: NetPoint,
    /// modem, printer, alarm, restored, acknowledged, ddelete, type, cond_type, level.
    pub flags: [u8; 9],
    pub alarm_time: i32,
    pub alarm_count: u8,
    /// Up to 58 characters.
    pub message: String,
    pub none: [u8; 5],
    pub panel_type: u8,
    pub dest_panel_type: u8,
    pub alarm_id: u16,
    pub prg: u8,
    pub alarm_panel: u8,
    pub where_panels: [u8; 5],
    pub where_states: [u8; 5],
    pub change_flag: u8,
    pub original: u8,
    pub no: u8,
}

impl Record for Alarm {
    const SIZE: usize = 102;
    const NAME: &'static str = "alarm";
    fn read(r: &mut Reader<'_>) -> Self {
        Alarm {
            point: r.net_point(),
            flags: r.take(),
            alarm_time: r.i32(),
            alarm_count: r.u8(),
            message: r.text::<59>(),
            none: r.take(),
            panel_type: r.u8(),
            dest_panel_type: r.u8(),
            alarm_id: r.u16(),
            prg: r.u8(),
            alarm_panel: r.u8(),
            where_panels: r.take(),
            where_states: r.take(),
            change_flag: r.u8(),
            original: r.u8(),
            no: r.u8(),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        self.point.write(w);
        w.extend(self.flags);
        w.extend(self.alarm_time.to_le_bytes());
        w.push(self.alarm_count);
        put_text(w, &self.message, 59);
        w.extend(self.none);
        w.extend([self.panel_type, self.dest_panel_type]);
        w.extend(self.alarm_id.to_le_bytes());
        w.extend([self.prg, self.alarm_panel]);
        w.extend(self.where_panels);
        w.extend(self.where_states);
        w.extend([self.change_flag, self.original, self.no]);
    }
}

/// A custom digital range (`Str_Units_element`, 25 bytes): the texts of its two states. Panels have 8;
/// range codes 23..=30 of a digital point name them (`custom_digital1..8`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigitalUnits {
    /// 1: the range is inverted (the "on" text for 0).
    pub direct: u8,
    pub off: String,
    pub on: String,
}

impl DigitalUnits {
    pub fn is_empty(&self) -> bool {
        self.off.is_empty() && self.on.is_empty()
    }
}

impl Record for DigitalUnits {
    const SIZE: usize = 25;
    const NAME: &'static str = "custom digital range";
    fn read(r: &mut Reader<'_>) -> Self {
        DigitalUnits { direct: r.u8(), off: r.text::<12>(), on: r.text::<12>() }
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.push(self.direct);
        put_text(w, &self.off, 12);
        put_text(w, &self.on, 12);
    }
}

/// A custom analog input table (`Str_table_point`, 105 bytes): 16 (millivolts, value x 1000) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalogTable {
    /// Up to 8 characters; T3000 uses the last byte of the field as a precision marker, kept verbatim.
    pub name: [u8; 9],
    pub points: [(u16, i32); 16],
}

impl AnalogTable {
    pub fn name(&self) -> String {
        latin1(&self.name)
    }
}

impl Record for AnalogTable {
    const SIZE: usize = 105;
    const NAME: &'static str = "custom analog table";
    fn read(r: &mut Reader<'_>) -> Self {
        AnalogTable { name: r.take(), points: std::array::from_fn(|_| (r.u16(), r.i32())) }
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.extend(self.name);
        for (volts, value) in &self.points {
            w.extend(volts.to_le_bytes());
            w.extend(value.to_le_bytes());
        }
    }
}

/// A custom variable unit (`Str_variable_uint_point`, 20 bytes): a unit text; variable range codes
/// 34..=38 (`custom1..5` of `Analog_units_equate`) name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariableUnit {
    pub text: String,
}

impl Record for VariableUnit {
    const SIZE: usize = 20;
    const NAME: &'static str = "custom variable unit";
    fn read(r: &mut Reader<'_>) -> Self {
        VariableUnit { text: r.text::<20>() }
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_text(w, &self.text, 20);
    }
}

/// One state of a multi-state value: (status, name up to 19 characters, value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiStateEntry {
    pub status: u8,
    pub name: String,
    pub value: u16,
}

/// A multi-state value's state texts (`Str_MSV`, 8 x 23 = 184 bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiState {
    pub states: [MultiStateEntry; 8],
}

impl Record for MultiState {
    const SIZE: usize = 184;
    const NAME: &'static str = "multi-state value";
    fn read(r: &mut Reader<'_>) -> Self {
        MultiState {
            states: std::array::from_fn(|_| MultiStateEntry { status: r.u8(), name: r.text::<20>(), value: r.u16() }),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        for s in &self.states {
            w.push(s.status);
            put_text(w, &s.name, 20);
            w.extend(s.value.to_le_bytes());
        }
    }
}

/// Day types of a weekly routine, in T3000's order.
pub const DAY_TYPES: [&str; 9] =
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Holiday1", "Holiday2"];
/// Events per day type: four on/off pairs (on at even indexes, off at odd ones).
pub const EVENTS: usize = 8;

/// The times of one weekly routine: for each of the 9 [`DAY_TYPES`], 8 events of (hours, minutes).
/// 144 bytes in the order a `.prog` file keeps them: day type by day type, each event as minutes then
/// hours (`SaveBacnetBinaryFile` writes `Schedual_Day_Time[event][day]` in that order). An unused event
/// is 00:00.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleTimes {
    /// `days[day][event] = (hours, minutes)`.
    pub days: [[(u8, u8); EVENTS]; 9],
}

impl Record for ScheduleTimes {
    const SIZE: usize = 144;
    const NAME: &'static str = "weekly routine times";
    fn read(r: &mut Reader<'_>) -> Self {
        ScheduleTimes {
            days: std::array::from_fn(|_| {
                std::array::from_fn(|_| {
                    let minutes = r.u8();
                    (r.u8(), minutes)
                })
            }),
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        for day in &self.days {
            for &(hours, minutes) in day {
                w.extend([minutes, hours]);
            }
        }
    }
}

/// Per-event flags of a weekly routine (`Str_schedual_time_flag`, `Time_flag[8][9]`, 72 bytes, version-8
/// files): kept verbatim, `flags[event][day]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleFlags {
    pub flags: [[u8; 9]; EVENTS],
}

impl Record for ScheduleFlags {
    const SIZE: usize = 72;
    const NAME: &'static str = "weekly routine flags";
    fn read(r: &mut Reader<'_>) -> Self {
        ScheduleFlags { flags: std::array::from_fn(|_| r.take()) }
    }
    fn write(&self, w: &mut Vec<u8>) {
        for row in &self.flags {
            w.extend(row);
        }
    }
}

/// The days of an annual routine: one bit per day of the year, day `d` (1-based) at bit `(d-1) % 8` of
/// byte `(d-1) / 8` (T3000's `g_DayState`, `ANNUAL_CODE_SIZE` = 46 bytes, 368 bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayBitmap {
    pub bits: [u8; 46],
}

impl Default for HolidayBitmap {
    fn default() -> Self {
        HolidayBitmap { bits: [0; 46] }
    }
}

impl HolidayBitmap {
    /// Whether day `day_of_year` (1..=366) is set.
    pub fn contains(&self, day_of_year: u16) -> bool {
        let Some(i) = day_of_year.checked_sub(1).map(usize::from) else { return false };
        self.bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
    /// Sets day `day_of_year` (1..=366; others are ignored).
    pub fn insert(&mut self, day_of_year: u16) {
        if let Some(i) = day_of_year.checked_sub(1).map(usize::from)
            && let Some(b) = self.bits.get_mut(i / 8)
        {
            *b |= 1 << (i % 8);
        }
    }
    /// The days set (1-based days of the year, at most 366).
    pub fn days(&self) -> Vec<u16> {
        (1..=366).filter(|&d| self.contains(d)).collect()
    }
}

impl Record for HolidayBitmap {
    const SIZE: usize = 46;
    const NAME: &'static str = "annual routine days";
    fn read(r: &mut Reader<'_>) -> Self {
        HolidayBitmap { bits: r.take() }
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.extend(self.bits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layout reads and writes exactly its size and round-trips its fields.
    fn round_trips<R: Record + std::fmt::Debug + PartialEq>() {
        // Varied bytes, a NUL every fifth so that every text field ends inside its field.
        let bytes: Vec<u8> = (0..R::SIZE).map(|i| if i % 5 == 4 { 0 } else { (i * 7 % 200 + 33) as u8 }).collect();
        let mut reader = Reader { bytes: &bytes, at: 0 };
        let record = R::read(&mut reader);
        assert_eq!(reader.at, R::SIZE, "{} reads {} bytes", R::NAME, R::SIZE);
        let again = R::decode(&record.encode()).unwrap();
        assert_eq!(again, record, "{}", R::NAME);
        assert_eq!(record.encode().len(), R::SIZE);
        assert!(R::decode(&bytes[..R::SIZE - 1]).is_err());
        // All zeros: byte-exact.
        let zeros = vec![0u8; R::SIZE];
        assert_eq!(R::decode(&zeros).unwrap().encode(), zeros, "{}", R::NAME);
    }

    #[test]
    fn every_layout_has_its_size_and_round_trips() {
        round_trips::<Input>();
        round_trips::<Output>();
        round_trips::<Variable>();
        round_trips::<ProgramRecord>();
        round_trips::<Pid>();
        round_trips::<WeeklyRoutine>();
        round_trips::<AnnualRoutine>();
        round_trips::<Monitor>();
        round_trips::<AlarmSetPoint>();
        round_trips::<Alarm>();
        round_trips::<DigitalUnits>();
        round_trips::<AnalogTable>();
        round_trips::<VariableUnit>();
        round_trips::<MultiState>();
        round_trips::<ScheduleTimes>();
        round_trips::<ScheduleFlags>();
        round_trips::<HolidayBitmap>();
    }

    #[test]
    fn fields_sit_where_the_structs_put_them() {
        // Input: value at 30, range last.
        let mut b = vec![0u8; Input::SIZE];
        b[..4].copy_from_slice(b"Room");
        b[21..24].copy_from_slice(b"RM1");
        b[30..34].copy_from_slice(&21_500i32.to_le_bytes());
        b[39] = 1; // auto_manual
        b[40] = 1; // digital_analog
        b[41] = 1; // calibration sign
        b[43] = 0x01;
        b[44] = 0x02; // calibration 258 / 10
        b[45] = 4;
        let i = Input::decode(&b).unwrap();
        assert_eq!((i.description.as_str(), i.label.as_str(), i.value, i.range), ("Room", "RM1", 21_500, 4));
        assert_eq!((i.auto_manual, i.digital_analog), (1, 1));
        assert!((i.calibration() + 25.8).abs() < 1e-9);
        // Output: 19-byte description, voltages, label at 21, range at 40.
        let mut b = vec![0u8; Output::SIZE];
        b[19] = 2;
        b[20] = 10;
        b[21..24].copy_from_slice(b"FAN");
        b[40] = 1;
        let o = Output::decode(&b).unwrap();
        assert_eq!((o.low_voltage, o.high_voltage, o.label.as_str(), o.range), (2, 10, "FAN", 1));
        // Program: size (little endian) at 30, on/off at 32, auto/manual at 33, three bytes kept.
        let mut b = vec![0u8; ProgramRecord::SIZE];
        b[..3].copy_from_slice(b"AHU");
        b[21..24].copy_from_slice(b"AHU");
        b[30..32].copy_from_slice(&412u16.to_le_bytes());
        b[32] = 1;
        b[34..37].copy_from_slice(&[7, 0x34, 0x12]);
        let p = ProgramRecord::decode(&b).unwrap();
        assert_eq!((p.bytes, p.on_off, p.auto_manual, p.rest), (412, 1, 0, [7, 0x34, 0x12]));
        assert_eq!(p.encode(), b);
        // Monitor: interval bytes after 9 + 70 + 14.
        let mut b = vec![0u8; Monitor::SIZE];
        b[9..14].copy_from_slice(&[4, 2, 1, 0, 0]); // IN5 of panel 1
        b[93..100].copy_from_slice(&[30, 1, 0, 0, 1, 1, 1]);
        let m = Monitor::decode(&b).unwrap();
        assert_eq!(m.interval_seconds(), 90);
        assert_eq!(m.points().map(|p| p.target().unwrap()).collect::<Vec<_>>(), vec![(point_type::INPUT, 5)]);
    }

    #[test]
    fn schedule_times_are_day_major_minutes_first() {
        let mut b = vec![0u8; ScheduleTimes::SIZE];
        // Tuesday (day 1), event 0 on at 07:30: bytes 16, 17.
        b[16] = 30;
        b[17] = 7;
        let t = ScheduleTimes::decode(&b).unwrap();
        assert_eq!(t.days[1][0], (7, 30));
        assert_eq!(t.encode(), b);
    }

    #[test]
    fn holiday_bits_count_days_from_the_low_bit() {
        let mut h = HolidayBitmap::default();
        h.insert(1);
        h.insert(10);
        h.insert(366);
        assert_eq!(h.bits[0], 1);
        assert_eq!(h.bits[1], 0b10);
        assert_eq!(h.days(), vec![1, 10, 366]);
        assert!(!h.contains(0) && !h.contains(400));
    }
}
