//! T3000's panel file, the `.prog`: a binary backup of one T3 controller's whole configuration.
//!
//! T3000 writes it in `SaveBacnetBinaryFile` and reads it in `LoadBacnetBinaryFile`: the bytes `55 FF`,
//! a version byte, then the panel's records back to back, each block a fixed number of packed records
//! ([`records`](super::records)):
//!
//! | block | records x bytes |
//! |---|---|
//! | inputs | 64 x 46 |
//! | outputs | 64 x 45 |
//! | variables | 128 x 39 |
//! | programs | 16 x 37 |
//! | PID controllers | 16 x 28 |
//! | screens (graphic groups) | 16 x 46 (skipped) |
//! | graphic labels | 240 x 70 (skipped) |
//! | users | 8 x 48 (skipped: names and passwords stay in the file) |
//! | custom digital ranges | 8 x 25 |
//! | custom analog tables | 5 x 105 |
//! | settings | 1 x 400 (panel name at 52, panel number at 73) |
//! | weekly routines | 8 x 42 |
//! | annual routines | 4 x 33 |
//! | monitors | 12 x 104 |
//! | weekly routine times | 8 x 144 |
//! | annual routine days | 4 x 46 |
//! | program code | 16 x 2000 |
//! | custom variable units | 5 x 20 |
//! | multi-state values (version 7 on) | 3 x 184 |
//! | weekly routine flags (version 8) | 8 x 72 |
//!
//! A version-6 file is 66,056 bytes, a version-7 one 66,608, a version-8 one 67,184 (what T3000 writes
//! today). Version 5 files lack the custom variable units (65,956 bytes); T3000 before version 5 wrote an
//! INI text XOR-scrambled with 1 (`[Setting]` / `Version=2..4`). Both are refused with a message saying
//! so, as is anything else: [`parse`] never panics and every error names the byte offset.

use t3_core::basic::ast::{PointKind, PointRef, Program as BasicProgram};
use t3_core::basic::bytecode::{self, DecodeError};
use t3_core::basic::print::print;

use super::latin1;
use super::records::{
    AnalogTable, AnnualRoutine, DigitalUnits, HolidayBitmap, Input, Monitor, MultiState, Output, Pid, ProgramRecord,
    Record, ScheduleFlags, ScheduleTimes, Variable, VariableUnit, WeeklyRoutine,
};

/// The two bytes every binary `.prog` starts with.
pub const MAGIC: [u8; 2] = [0x55, 0xFF];
/// The versions [`parse`] reads.
pub const VERSIONS: [u8; 3] = [6, 7, 8];
/// Bytes of one program's code block.
pub const CODE_BYTES: usize = 2000;
/// Bytes of the settings block.
pub const SETTINGS_BYTES: usize = 400;

/// The panel's settings block, what the importer uses of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The panel's name (T3000's "Panel Name"), up to 19 characters.
    pub panel_name: String,
    /// The panel number (1..=254) its points' references carry.
    pub panel_number: u8,
    /// IPv4 address the panel had when the file was saved.
    pub ip: [u8; 4],
}

/// A parsed `.prog` file.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgFile {
    pub version: u8,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
    pub variables: Vec<Variable>,
    pub programs: Vec<ProgramRecord>,
    pub pids: Vec<Pid>,
    /// Custom digital ranges 1..=8 (digital range codes 23..=30).
    pub digital_units: Vec<DigitalUnits>,
    /// Custom analog input tables 1..=5 (input range codes 20..=24).
    pub analog_tables: Vec<AnalogTable>,
    pub settings: Settings,
    pub weekly_routines: Vec<WeeklyRoutine>,
    pub annual_routines: Vec<AnnualRoutine>,
    pub monitors: Vec<Monitor>,
    /// One per weekly routine.
    pub schedule_times: Vec<ScheduleTimes>,
    /// One per annual routine.
    pub holiday_days: Vec<HolidayBitmap>,
    /// One 2000-byte block per program, verbatim.
    pub program_code: Vec<Vec<u8>>,
    /// Custom variable units 1..=5 (variable range codes 34..=38).
    pub variable_units: Vec<VariableUnit>,
    /// Version 7 on; empty before.
    pub multi_states: Vec<MultiState>,
    /// Version 8; empty before.
    pub schedule_flags: Vec<ScheduleFlags>,
}

impl ProgFile {
    /// The label this panel gives a point, as T3000's decompiled text shows it: outputs, inputs,
    /// variables, weekly and annual routines, programs and monitors of this panel (no panel named,
    /// or this panel's number) that have one. `None` for other points, empty labels, and a label
    /// two of these points share (upper and lower case alike): it would not say which one.
    pub fn label_of(&self, p: &PointRef) -> Option<String> {
        let own = match (p.panel, p.sub_panel) {
            (None, None) => true,
            (Some(panel), sub) => panel == u32::from(self.settings.panel_number) && sub.is_none_or(|s| s == panel),
            (None, Some(_)) => false,
        };
        if !own || p.index.is_some() {
            return None;
        }
        let i = usize::try_from(p.number).ok()?.checked_sub(1)?;
        let label = match p.kind {
            PointKind::Out => &self.outputs.get(i)?.label,
            PointKind::In => &self.inputs.get(i)?.label,
            PointKind::Var => &self.variables.get(i)?.label,
            PointKind::Sch => &self.weekly_routines.get(i)?.label,
            PointKind::Hol => &self.annual_routines.get(i)?.label,
            PointKind::Prg => &self.programs.get(i)?.label,
            PointKind::Amon => &self.monitors.get(i)?.label,
            _ => return None,
        };
        let label = label.trim_end();
        let shared = self.labels().filter(|l| l.trim_end().eq_ignore_ascii_case(label)).nth(1).is_some();
        (!label.is_empty() && !shared).then(|| label.to_owned())
    }

    /// Every label of the points [`ProgFile::label_of`] names.
    fn labels(&self) -> impl Iterator<Item = &str> {
        let outputs = self.outputs.iter().map(|x| x.label.as_str());
        let inputs = self.inputs.iter().map(|x| x.label.as_str());
        let variables = self.variables.iter().map(|x| x.label.as_str());
        let weekly = self.weekly_routines.iter().map(|x| x.label.as_str());
        let annual = self.annual_routines.iter().map(|x| x.label.as_str());
        let programs = self.programs.iter().map(|x| x.label.as_str());
        let monitors = self.monitors.iter().map(|x| x.label.as_str());
        outputs.chain(inputs).chain(variables).chain(weekly).chain(annual).chain(programs).chain(monitors)
    }

    /// Program `index` (0-based) decoded from its code block, with this panel's labels in place
    /// of its points' names (as T3000 shows it) and its texts on one line
    /// ([`bytecode::texts_on_one_line`]). A program without code is an empty program.
    pub fn program(&self, index: usize) -> Result<BasicProgram, DecodeError> {
        let Some(block) = self.program_code.get(index) else {
            return Err(DecodeError { offset: 0, message: format!("the panel has no program {}", index + 1) });
        };
        let mut program = bytecode::decode(block)?;
        bytecode::texts_on_one_line(&mut program);
        bytecode::apply_labels(&mut program, &|p| self.label_of(p));
        Ok(program)
    }

    /// Program `index` (0-based) as T3000 shows it: decoded, with labels, printed one numbered
    /// line after another. What the import stores as the program's source.
    pub fn program_source(&self, index: usize) -> Result<String, DecodeError> {
        Ok(print(&self.program(index)?))
    }
}

/// Why a file is not a `.prog` this reader reads, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (at byte offset {offset})")]
pub struct ProgError {
    /// Byte offset in the file where the problem is.
    pub offset: usize,
    /// What is wrong, in words.
    pub what: String,
}

fn err(offset: usize, what: impl Into<String>) -> ProgError {
    ProgError { offset, what: what.into() }
}

/// The size of a file of `version` (6, 7 or 8).
pub fn file_size(version: u8) -> usize {
    let mut layout = Layout { bytes: &[], at: 3, measure_only: true };
    let _ = layout.body(version);
    layout.at
}

/// Parses a `.prog` file.
pub fn parse(bytes: &[u8]) -> Result<ProgFile, ProgError> {
    if bytes.is_empty() {
        return Err(err(0, "the file is empty, not a T3000 .prog panel file"));
    }
    if bytes.len() < 3 || bytes[..2] != MAGIC {
        return Err(err(0, not_prog(bytes)));
    }
    let version = bytes[2];
    if !VERSIONS.contains(&version) {
        let what = match version {
            0..=4 => format!("a T3000 .prog panel file of version {version}, a layout this importer does not read"),
            5 => "a T3000 .prog panel file of version 5 (before T3000 added custom variable units), which this \
                  importer does not read: open it in T3000 and save it again to get a version-8 file"
                .to_owned(),
            _ => format!("a T3000 .prog panel file of version {version}, newer than this importer knows"),
        };
        return Err(err(2, format!("{what}; versions 6, 7 and 8 are read")));
    }
    let mut layout = Layout { bytes, at: 3, measure_only: false };
    let file = layout.body(version)?;
    if layout.at != bytes.len() {
        return Err(err(
            layout.at,
            format!(
                "{} bytes follow the last block of this version-{version} .prog file (a version-{version} file is \
                 {} bytes): the version byte does not match the contents",
                bytes.len() - layout.at,
                layout.at
            ),
        ));
    }
    Ok(file)
}

/// What a file that does not start with `55 FF` is, as far as its first bytes tell.
fn not_prog(bytes: &[u8]) -> String {
    let unscrambled: Vec<u8> = bytes.iter().take(64).map(|b| b ^ 1).collect();
    if unscrambled.starts_with(b"[Setting]") {
        let text = String::from_utf8_lossy(&unscrambled);
        let version = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Version="))
            .map(|v| format!(" (Version={})", v.trim()))
            .unwrap_or_default();
        return format!(
            "an old T3000 panel file in the XOR-scrambled INI layout{version}, which T3000 no longer writes and this \
             importer does not read: open it in T3000 and save it again to get a binary version-8 .prog file"
        );
    }
    let kind = [
        (&b"SQLite format 3\0"[..], "an SQLite database"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"%PDF", "a PDF document"),
        (b"MZ", "a Windows program"),
        (b"\x7FELF", "an ELF program"),
    ]
    .iter()
    .find(|(magic, _)| bytes.starts_with(magic))
    .map(|(_, kind)| *kind);
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02X}")).collect();
    match kind {
        Some(kind) => format!("not a T3000 .prog panel file: this is {kind}"),
        None if bytes.len() < 3 => format!("not a T3000 .prog panel file: only {} bytes", bytes.len()),
        None => format!(
            "not a T3000 .prog panel file: it starts with {} instead of 55 FF and a version byte",
            head.join(" ")
        ),
    }
}

/// Walks the blocks of a file (or, `measure_only`, just adds up their sizes).
struct Layout<'a> {
    bytes: &'a [u8],
    at: usize,
    measure_only: bool,
}

impl<'a> Layout<'a> {
    /// `count` records of `R`, named `block` in errors.
    fn records<R: Record>(&mut self, count: usize, block: &str) -> Result<Vec<R>, ProgError> {
        let mut out = Vec::with_capacity(if self.measure_only { 0 } else { count });
        for i in 0..count {
            let start = self.at;
            if let Some(slice) = self.take(R::SIZE, block, i, count)? {
                out.push(R::decode(slice).map_err(|e| err(start, e.to_string()))?);
            }
        }
        Ok(out)
    }

    /// The next `size` bytes: record `i` of `count` of `block`.
    fn take(&mut self, size: usize, block: &str, i: usize, count: usize) -> Result<Option<&'a [u8]>, ProgError> {
        let start = self.at;
        self.at += size;
        if self.measure_only {
            return Ok(None);
        }
        match self.bytes.get(start..start + size) {
            Some(slice) => Ok(Some(slice)),
            None => Err(err(
                self.bytes.len(),
                format!(
                    "the file ends inside {block} ({} of {count}, bytes {start}..{}): truncated .prog file of {} bytes",
                    i + 1,
                    start + size,
                    self.bytes.len()
                ),
            )),
        }
    }

    fn body(&mut self, version: u8) -> Result<ProgFile, ProgError> {
        let inputs = self.records(64, "the inputs")?;
        let outputs = self.records(64, "the outputs")?;
        let variables = self.records(128, "the variables")?;
        let programs = self.records(16, "the programs")?;
        let pids = self.records(16, "the PID controllers")?;
        for (count, size, block) in [(16, 46, "the screens"), (240, 70, "the graphic labels"), (8, 48, "the users")] {
            for i in 0..count {
                self.take(size, block, i, count)?;
            }
        }
        let digital_units = self.records(8, "the custom digital ranges")?;
        let analog_tables = self.records(5, "the custom analog tables")?;
        let settings = self.take(SETTINGS_BYTES, "the settings", 0, 1)?.map(|s| Settings {
            panel_name: latin1(&s[52..72]),
            panel_number: s[73],
            ip: [s[0], s[1], s[2], s[3]],
        });
        let weekly_routines = self.records(8, "the weekly routines")?;
        let annual_routines = self.records(4, "the annual routines")?;
        let monitors = self.records(12, "the monitors")?;
        let schedule_times = self.records(8, "the weekly routine times")?;
        let holiday_days = self.records(4, "the annual routine days")?;
        let mut program_code = Vec::new();
        for i in 0..16 {
            if let Some(code) = self.take(CODE_BYTES, "the program code", i, 16)? {
                program_code.push(code.to_vec());
            }
        }
        let variable_units = self.records(5, "the custom variable units")?;
        let multi_states = if version >= 7 { self.records(3, "the multi-state values")? } else { Vec::new() };
        let schedule_flags = if version >= 8 { self.records(8, "the weekly routine flags")? } else { Vec::new() };
        Ok(ProgFile {
            version,
            inputs,
            outputs,
            variables,
            programs,
            pids,
            digital_units,
            analog_tables,
            settings: settings.unwrap_or(Settings { panel_name: String::new(), panel_number: 0, ip: [0; 4] }),
            weekly_routines,
            annual_routines,
            monitors,
            schedule_times,
            holiday_days,
            program_code,
            variable_units,
            multi_states,
            schedule_flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_versions() {
        assert_eq!(file_size(6), 66_056);
        assert_eq!(file_size(7), 66_056 + 3 * 184);
        assert_eq!(file_size(8), 66_056 + 3 * 184 + 8 * 72);
    }

    #[test]
    fn any_bytes_of_the_right_size_parse() {
        for version in VERSIONS {
            let mut bytes = vec![0xA5; file_size(version)];
            bytes[..3].copy_from_slice(&[0x55, 0xFF, version]);
            let f = parse(&bytes).unwrap();
            assert_eq!((f.inputs.len(), f.outputs.len(), f.variables.len()), (64, 64, 128));
            assert_eq!(f.program_code.len(), 16);
            assert_eq!(f.multi_states.len(), if version >= 7 { 3 } else { 0 });
            assert_eq!(f.schedule_flags.len(), if version == 8 { 8 } else { 0 });
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = parse(&[]).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.what.contains("empty"), "{e}");
        let e = parse(b"SQLite format 3\0rest").unwrap_err();
        assert!(e.to_string().contains("SQLite database"), "{e}");
        let e = parse(&[0x55, 0xFF, 5, 0, 0]).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.what.contains("version 5"), "{e}");
        let e = parse(&[0x55, 0xFF, 9]).unwrap_err();
        assert!(e.what.contains("version 9"), "{e}");
        let ini: Vec<u8> = b"[Setting]\r\nVersion=4\r\n[Input0]\r\n".iter().map(|b| b ^ 1).collect();
        let e = parse(&ini).unwrap_err();
        assert!(e.what.contains("XOR-scrambled INI layout (Version=4)"), "{e}");
        let mut short = vec![0u8; 3 + 64 * 46 + 10];
        short[..3].copy_from_slice(&[0x55, 0xFF, 6]);
        let e = parse(&short).unwrap_err();
        assert_eq!(e.offset, short.len());
        assert!(e.what.contains("the outputs (1 of 64"), "{e}");
        let mut long = vec![0u8; file_size(6) + 1];
        long[..3].copy_from_slice(&[0x55, 0xFF, 6]);
        let e = parse(&long).unwrap_err();
        assert_eq!(e.offset, file_size(6));
    }
}
