//! CSV configuration (devices, points) and history (samples): what a spreadsheet writes, read
//! with every mistake reported by row and column, and what the server exports, written so that
//! a spreadsheet reads it and an unchanged file imports as "nothing to do".
//!
//! What is accepted: UTF-8 with or without a byte order mark (Excel's "CSV UTF-8" writes one),
//! LF or CRLF line ends, `,`, `;` or tab as the separator (told by the header row: a spreadsheet in
//! a comma-decimal locale writes `;`), fields quoted with `"` (commas, separators and line breaks
//! inside, `""` for a quote), rows whose cells are all empty (skipped). Numbers are written with
//! a decimal point (`1.5`); in a file separated by `;` a decimal comma (`1,5`) is read too,
//! as such a spreadsheet writes it; thousands separators never. UTF-16 and Latin-1 / Windows-1252
//! files are refused with a message naming the encoding and the row (nothing is guessed).
//!
//! Rows are numbered as a spreadsheet numbers them: the header is row 1, the first record row 2
//! (`line` says where the record starts in the file, which differs when a quoted cell holds a
//! line break). Columns are named by their header and located as a cell (`F4`).
//!
//! This module reads and writes the files and says what a file would change ([`plan_devices`],
//! [`plan_points`]); the rules a device or point must follow are the API's own, checked by its
//! caller with the same functions the REST handlers use, which also applies the plan.

use crate::model::check::check_name;
use crate::model::point::TrendLine;
use chrono::TimeZone;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use t3_core::config::{DeviceConfig, IngestConfig, RecordConfig, RecordMode};
use t3_core::schedule::Tz;
use t3_core::{PointId, Quality, Sample};

/// The columns of `devices.csv`, in the order they are exported. `source` is shown, not imported.
pub const DEVICE_COLUMNS: &[&str] = &[
    "name",
    "device_type",
    "protocol",
    "ip_address",
    "port",
    "serial_port",
    "baud_rate",
    "parity",
    "unit_id",
    "profile",
    "poll_interval_ms",
    "timeout_ms",
    "enabled",
    "max_registers",
    "max_gap",
    "one_request_per_point",
    "record",
    "deadband",
    "deadband_percent",
    "heartbeat_secs",
    "options",
    "building",
    "floor",
    "room",
    "description",
    "source",
];

/// The columns of `points.csv`, in the order they are exported. `id` is shown, not imported (a
/// point is found by its device and name).
pub const POINT_COLUMNS: &[&str] = &[
    "id",
    "device",
    "name",
    "label",
    "description",
    "units",
    "interval_ms",
    "record",
    "deadband",
    "deadband_percent",
    "heartbeat_secs",
    "retention_days",
    "line",
];

/// The columns of a samples file: `point_id` or `point` (or both), `time`, `value`, `quality`.
pub const SAMPLE_COLUMNS: &[&str] = &["point_id", "point", "time", "value", "quality"];

/// Most errors listed one by one; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 1000;

/// What is wrong with one row (or the header, row 1, or the file as a whole, row 0).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The row as a spreadsheet numbers it: 1 is the header, 2 the first record.
    pub row: usize,
    /// The line of the file the record starts on (1-based).
    pub line: u64,
    /// The column's header (`unit_id`); none when the row as a whole is wrong.
    pub column: Option<String>,
    /// The cell as a spreadsheet names it (`F4`), when the column is in the file.
    pub cell: Option<String>,
    /// The device or point the row is about (`AHU-1`, `AHU-1 IN3`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}", self.row)?;
        if let Some(c) = &self.column {
            write!(f, ", column {c}")?;
        }
        if let Some(c) = &self.cell {
            write!(f, " ({c})")?;
        }
        if let Some(k) = &self.key {
            write!(f, " [{k}]")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a CSV import did nothing.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file is wrong: every error found (up to [`MAX_LISTED_ERRORS`]), by row and column.
    #[error("{}", summary(.errors, *.total))]
    Invalid { errors: Vec<RowError>, total: usize },
    /// The file could not be read.
    #[error("reading the CSV: {0}")]
    Io(#[from] std::io::Error),
}

fn summary(errors: &[RowError], total: usize) -> String {
    let shown: Vec<String> = errors.iter().take(5).map(ToString::to_string).collect();
    let more = if total > shown.len() { format!("; and {} more", total - shown.len()) } else { String::new() };
    let s = if total == 1 { "" } else { "s" };
    format!("{total} error{s} in the CSV, nothing was applied: {}{more}", shown.join("; "))
}

/// Errors gathered over a whole file.
#[derive(Debug, Default)]
pub struct Errors {
    list: Vec<RowError>,
    total: usize,
}

impl Errors {
    pub fn push(&mut self, e: RowError) {
        self.total += 1;
        if self.list.len() < MAX_LISTED_ERRORS {
            self.list.push(e);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// `Ok` when nothing was found, else every error in row order.
    pub fn finish(mut self) -> Result<(), CsvError> {
        if self.total == 0 {
            return Ok(());
        }
        self.list.sort_by_key(|e| e.row);
        Err(CsvError::Invalid { errors: self.list, total: self.total })
    }
}

fn file_error(row: usize, message: impl Into<String>) -> CsvError {
    CsvError::Invalid {
        errors: vec![RowError { row, line: row as u64, column: None, cell: None, key: None, message: message.into() }],
        total: 1,
    }
}

/// `A`, `B`, ... `Z`, `AA`, ...: a spreadsheet's name of column `i` (0-based).
pub fn column_letter(mut i: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn not_utf8(bytes: &[u8], e: std::str::Utf8Error) -> String {
    let at = e.valid_up_to();
    let byte = bytes.get(at).copied().unwrap_or(0);
    let chars = String::from_utf8_lossy(&bytes[..at]).chars().count() + 1;
    format!(
        "not UTF-8 text: byte 0x{byte:02X} at character {chars} of the cell; the file looks like Latin-1 / \
         Windows-1252 (a spreadsheet's plain \"CSV\"): save it as \"CSV UTF-8\" (Excel) or with the character \
         set \"Unicode (UTF-8)\" (LibreOffice)"
    )
}

/// Cell `i` of `record` without the CR of a CRLF line end (on the record's last cell).
fn without_cr<'a>(record: &csv::ByteRecord, i: usize, cell: &'a [u8]) -> &'a [u8] {
    if i + 1 == record.len() { cell.strip_suffix(b"\r").unwrap_or(cell) } else { cell }
}

/// The separator of a file, from its header line: the most frequent of `,`, `;` and tab outside
/// quotes (`,` when none).
fn sniff(first_line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for b in first_line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let seps = [b',', b';', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    if counts[best] == 0 { b',' } else { seps[best] }
}

/// One record of a file, its cells decoded.
#[derive(Debug, Clone)]
pub struct Row {
    pub row: usize,
    pub line: u64,
    pub cells: Vec<String>,
}

/// A CSV file read record by record (a large file is never held whole).
pub struct Table<R: Read> {
    reader: csv::Reader<std::io::Chain<Cursor<Vec<u8>>, R>>,
    /// The header's cells, trimmed.
    pub header: Vec<String>,
    /// `,`, `;` or tab.
    pub delimiter: u8,
    record: csv::ByteRecord,
    row: usize,
}

impl<R: Read> std::fmt::Debug for Table<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("header", &self.header).field("row", &self.row).finish()
    }
}

fn csv_error(e: csv::Error, row: usize) -> CsvError {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => CsvError::Io(e),
        other => file_error(row, format!("{other:?}")),
    }
}

impl<R: Read> Table<R> {
    /// Reads the header: refuses UTF-16 and other non-UTF-8 text, drops a UTF-8 byte order mark,
    /// finds the separator.
    pub fn open(mut input: R) -> Result<Table<R>, CsvError> {
        let mut prefix = Vec::new();
        let mut buf = [0u8; 8192];
        while prefix.len() < 1 << 16 && !prefix.contains(&b'\n') {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            prefix.extend_from_slice(&buf[..n]);
        }
        if prefix.starts_with(&[0xFF, 0xFE]) || prefix.starts_with(&[0xFE, 0xFF]) {
            return Err(file_error(
                1,
                "the file is UTF-16 (it starts with a UTF-16 byte order mark: Excel's \"Unicode Text\"); save it \
                 as \"CSV UTF-8\" (Excel) or with the character set \"Unicode (UTF-8)\" (LibreOffice)",
            ));
        }
        if prefix.contains(&0) {
            return Err(file_error(
                1,
                "the file holds NUL bytes: UTF-16 text without a byte order mark, or not text at all; save it \
                 as \"CSV UTF-8\"",
            ));
        }
        if prefix.starts_with(&[0xEF, 0xBB, 0xBF]) {
            prefix.drain(..3);
        }
        let first_line = prefix.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let delimiter = sniff(first_line);
        // Records end at LF only, so that the line numbers of records after a CRLF are right (with
        // CR as a terminator too, a record's start is counted on the line before); the CR of a CRLF
        // stays on a record's last cell and is taken off there.
        let mut reader = csv::ReaderBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(Cursor::new(prefix).chain(input));
        let mut record = csv::ByteRecord::new();
        if !reader.read_byte_record(&mut record).map_err(|e| csv_error(e, 1))? {
            return Err(file_error(1, "the file is empty: it needs a header row naming the columns"));
        }
        let mut errors = Errors::default();
        let mut header = Vec::new();
        for (i, cell) in record.iter().enumerate() {
            match std::str::from_utf8(without_cr(&record, i, cell)) {
                Ok(s) => header.push(s.trim().to_owned()),
                Err(e) => errors.push(RowError {
                    row: 1,
                    line: 1,
                    column: None,
                    cell: Some(format!("{}1", column_letter(i))),
                    key: None,
                    message: not_utf8(cell, e),
                }),
            }
        }
        errors.finish()?;
        // A spreadsheet may pad the header with empty cells.
        while header.last().is_some_and(String::is_empty) {
            header.pop();
        }
        Ok(Table { reader, header, delimiter, record, row: 1 })
    }

    /// The next record with as many cells as the header; `Ok(None)` at the end. A record that
    /// cannot be read (not UTF-8, another number of cells) goes to `errors` and is skipped.
    pub fn next_row(&mut self, errors: &mut Errors) -> Result<Option<Row>, CsvError> {
        loop {
            if !self.reader.read_byte_record(&mut self.record).map_err(|e| csv_error(e, self.row + 1))? {
                return Ok(None);
            }
            self.row += 1;
            let line = self.record.position().map_or(self.row as u64, |p| p.line());
            if self.record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
                continue;
            }
            let mut cells = Vec::with_capacity(self.header.len());
            let mut bad = false;
            for (i, c) in self.record.iter().enumerate() {
                match std::str::from_utf8(without_cr(&self.record, i, c)) {
                    Ok(s) => cells.push(s.to_owned()),
                    Err(e) => {
                        bad = true;
                        errors.push(RowError {
                            row: self.row,
                            line,
                            column: self.header.get(i).cloned(),
                            cell: Some(format!("{}{}", column_letter(i), self.row)),
                            key: None,
                            message: not_utf8(c, e),
                        });
                    }
                }
            }
            if bad {
                continue;
            }
            while cells.len() > self.header.len() && cells.last().is_some_and(|c| c.trim().is_empty()) {
                cells.pop();
            }
            if cells.len() != self.header.len() {
                let sep = match self.delimiter {
                    b';' => "`;`",
                    b'\t' => "tab",
                    _ => "`,`",
                };
                errors.push(RowError {
                    row: self.row,
                    line,
                    column: None,
                    cell: None,
                    key: None,
                    message: format!(
                        "the row has {} cells, the header names {} columns (separator {sep}; a cell holding the \
                         separator must be quoted)",
                        cells.len(),
                        self.header.len()
                    ),
                });
                continue;
            }
            return Ok(Some(Row { row: self.row, line, cells }));
        }
    }
}

/// Where each known column is in a file.
#[derive(Debug, Clone)]
pub struct Sheet {
    index: HashMap<&'static str, usize>,
    delimiter: u8,
}

impl Sheet {
    /// Maps the header to the known columns; an unknown, repeated or missing required column is
    /// an error of row 1.
    fn new(
        header: &[String],
        known: &[&'static str],
        required: &[&'static str],
        delimiter: u8,
    ) -> Result<Sheet, CsvError> {
        let mut errors = Errors::default();
        let mut index = HashMap::new();
        let head_error = |i: Option<usize>, column: &str, message: String| RowError {
            row: 1,
            line: 1,
            column: Some(column.to_owned()),
            cell: i.map(|i| format!("{}1", column_letter(i))),
            key: None,
            message,
        };
        for (i, h) in header.iter().enumerate() {
            let name = if h.eq_ignore_ascii_case("ts") && known.contains(&"time") { "time" } else { h.as_str() };
            match known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
                Some(k) => {
                    if index.insert(*k, i).is_some() {
                        errors.push(head_error(Some(i), k, format!("the column `{k}` is named twice")));
                    }
                }
                None => errors.push(head_error(
                    Some(i),
                    h,
                    format!("unknown column `{h}`; the columns are {}", known.join(", ")),
                )),
            }
        }
        for r in required {
            if !index.contains_key(r) {
                errors.push(head_error(None, r, format!("the column `{r}` is missing")));
            }
        }
        errors.finish()?;
        Ok(Sheet { index, delimiter })
    }

    /// An error of `row` in `column` (or of the whole row).
    pub fn error(&self, row: &Row, column: Option<&str>, key: Option<&str>, message: impl Into<String>) -> RowError {
        RowError {
            row: row.row,
            line: row.line,
            column: column.map(str::to_owned),
            cell: column.and_then(|c| self.index.get(c)).map(|i| format!("{}{}", column_letter(*i), row.row)),
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    fn has(&self, column: &str) -> bool {
        self.index.contains_key(column)
    }

    fn get<'a>(&self, row: &'a Row, column: &str) -> Option<&'a str> {
        self.index.get(column).map(|i| row.cells[*i].as_str())
    }
}

/// A number as a spreadsheet writes it: `1.5`, `-2`, `1e3`; `1,5` in a file separated by `;`.
fn parse_number(s: &str, delimiter: u8) -> Result<f64, String> {
    let t = s.trim();
    let owned;
    let t = if delimiter == b';' && t.matches(',').count() == 1 && !t.contains('.') {
        owned = t.replace(',', ".");
        owned.as_str()
    } else {
        t
    };
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!(
            "\"{s}\" is not a number (write 1.5{}; no thousands separators)",
            if delimiter == b';' { " or 1,5" } else { "; a decimal comma is read only in a file separated by `;`" }
        )),
    }
}

fn parse_uint(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| format!("\"{s}\" is not a whole number >= 0"))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("\"{s}\" is not true or false")),
    }
}

/// A number written back: the shortest text that reads as the same number.
fn num(v: f64) -> String {
    format!("{v}")
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The cells of one row in the order of a column list, with what the file has and what it lacks.
struct Cells<'a> {
    cols: &'static [&'static str],
    values: Vec<String>,
    sheet: &'a Sheet,
    row: &'a Row,
    key: Option<String>,
    errors: Vec<RowError>,
}

impl<'a> Cells<'a> {
    /// `base` (the current object's cells, or all empty for a new one) overlaid with the columns
    /// the file has: a column missing from the file leaves the field as it is.
    fn new(cols: &'static [&'static str], base: Vec<String>, sheet: &'a Sheet, row: &'a Row, key: &str) -> Self {
        let mut values = base;
        for (i, c) in cols.iter().enumerate() {
            if let Some(v) = sheet.get(row, c) {
                values[i] = v.to_owned();
            }
        }
        Cells { cols, values, sheet, row, key: Some(key.to_owned()), errors: Vec::new() }
    }

    fn raw(&self, col: &str) -> &str {
        let i = self.cols.iter().position(|c| *c == col).expect("a known column");
        &self.values[i]
    }

    fn fail(&mut self, col: &str, message: impl Into<String>) {
        let e = self.sheet.error(self.row, Some(col), self.key.as_deref(), message);
        self.errors.push(e);
    }

    /// Trimmed; none when empty.
    fn text(&self, col: &str) -> Option<String> {
        Some(self.raw(col).trim().to_owned()).filter(|s| !s.is_empty())
    }

    fn uint(&mut self, col: &str) -> Option<u64> {
        let s = self.text(col)?;
        parse_uint(&s).map_err(|m| self.fail(col, m)).ok()
    }

    fn number(&mut self, col: &str) -> Option<f64> {
        let s = self.text(col)?;
        parse_number(&s, self.sheet.delimiter).map_err(|m| self.fail(col, m)).ok()
    }

    fn boolean(&mut self, col: &str) -> Option<bool> {
        let s = self.text(col)?;
        parse_bool(&s).map_err(|m| self.fail(col, m)).ok()
    }

    /// `record`, `deadband`, `deadband_percent`, `heartbeat_secs`: none when `record` is empty.
    fn record(&mut self) -> Option<RecordConfig> {
        let mode = match self.text("record").map(|s| s.to_ascii_lowercase()) {
            None => None,
            Some(m) if m == "every" => Some(RecordMode::Every),
            Some(m) if m == "change" => Some(RecordMode::Change),
            Some(m) => {
                self.fail("record", format!("\"{m}\" is not a recording mode: write every or change"));
                None
            }
        };
        let deadband = self.number("deadband");
        let deadband_percent = self.number("deadband_percent");
        let heartbeat_secs = self.uint("heartbeat_secs");
        let Some(mode) = mode else {
            if self.text("record").is_none() {
                for c in ["deadband", "deadband_percent", "heartbeat_secs"] {
                    if self.text(c).is_some() {
                        self.fail(c, "set `record` (every or change) too: without it the recording is inherited");
                    }
                }
            }
            return None;
        };
        Some(RecordConfig {
            mode,
            deadband: deadband.unwrap_or(0.0),
            deadband_percent: deadband_percent.unwrap_or(0.0),
            heartbeat_secs: heartbeat_secs.unwrap_or(0),
        })
    }
}

fn record_cells(r: Option<&RecordConfig>) -> [String; 4] {
    match r {
        None => Default::default(),
        Some(r) => [
            match r.mode {
                RecordMode::Every => "every".into(),
                RecordMode::Change => "change".into(),
            },
            num(r.deadband),
            num(r.deadband_percent),
            r.heartbeat_secs.to_string(),
        ],
    }
}

// ---- what a file would change ----

/// What a row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = CsvAction)]
pub enum Action {
    Create,
    Change,
    Unchanged,
}

/// One cell that changes.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = CsvFieldChange)]
pub struct FieldChange {
    pub column: String,
    /// As exported now (`""` for a row that creates).
    pub old: String,
    pub new: String,
}

/// What one row does, cell by cell.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowPlan {
    pub row: usize,
    /// The device's name, or `<device> <point>` (a manual point: its name).
    pub key: String,
    pub action: Action,
    /// The cells that change (for `create`: every cell that is not empty).
    pub fields: Vec<FieldChange>,
}

/// A row read, with what it would change.
#[derive(Debug, Clone)]
pub struct Planned<T> {
    pub plan: RowPlan,
    pub row: Row,
    /// What the row asks for.
    pub entry: T,
    /// Index of the current object in the list given to the planner; none for a new one.
    pub current: Option<usize>,
}

/// A whole file planned: the rows that could be read, and the errors of those that could not
/// (the caller adds what its own checks find, then [`Errors::finish`]es).
#[derive(Debug)]
pub struct Plan<T> {
    pub sheet: Sheet,
    pub rows: Vec<Planned<T>>,
    pub errors: Errors,
}

fn diff(cols: &[&str], skip: &[&str], old: Option<&[String]>, new: &[String]) -> (Action, Vec<FieldChange>) {
    let mut fields = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        if skip.contains(c) {
            continue;
        }
        let o = old.map_or("", |o| o[i].as_str());
        if o != new[i] {
            fields.push(FieldChange { column: (*c).to_owned(), old: o.to_owned(), new: new[i].clone() });
        }
    }
    let action = match (old, fields.is_empty()) {
        (None, _) => Action::Create,
        (Some(_), true) => Action::Unchanged,
        (Some(_), false) => Action::Change,
    };
    (action, fields)
}

// ---- devices ----

/// A device as `devices.csv` has it: its definition, where it is (by name) and its description.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEntry {
    pub config: DeviceConfig,
    pub building: Option<String>,
    pub floor: Option<String>,
    pub room: Option<String>,
    pub description: Option<String>,
    /// `config` or `api` (shown only).
    pub source: String,
}

/// A device's cells, in the order of [`DEVICE_COLUMNS`].
pub fn device_cells(d: &DeviceEntry) -> Vec<String> {
    let c = &d.config;
    let [mode, deadband, percent, heartbeat] = record_cells(Some(&c.record));
    let options =
        if c.options.is_empty() { String::new() } else { serde_json::to_string(&c.options).unwrap_or_default() };
    vec![
        c.name.clone(),
        c.device_type.clone(),
        c.protocol.name().to_owned(),
        opt(c.ip_address.as_ref()),
        opt(c.port),
        opt(c.serial_port.as_ref()),
        c.baud_rate.to_string(),
        serde_json::to_value(c.parity).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        c.unit_id.to_string(),
        c.profile.clone(),
        c.poll_interval_ms.to_string(),
        opt(c.timeout_ms),
        c.enabled.to_string(),
        opt(c.max_registers),
        opt(c.max_gap),
        c.one_request_per_point.to_string(),
        mode,
        deadband,
        percent,
        heartbeat,
        options,
        opt(d.building.as_ref()),
        opt(d.floor.as_ref()),
        opt(d.room.as_ref()),
        opt(d.description.as_ref()),
        d.source.clone(),
    ]
}

/// The column a key of a device's JSON form is written in.
pub fn device_column(path: &str) -> &'static str {
    let first = path.split(['.', '[']).next().unwrap_or("");
    let second = path.split('.').nth(1).unwrap_or("");
    match first {
        "record" => DEVICE_COLUMNS.iter().find(|c| **c == second).copied().unwrap_or("record"),
        other => DEVICE_COLUMNS.iter().find(|c| **c == other).copied().unwrap_or("name"),
    }
}

fn device_from(cells: &mut Cells<'_>, points: Vec<t3_core::config::PointOverride>) -> Option<DeviceEntry> {
    let mut m = serde_json::Map::new();
    for col in ["name", "device_type", "protocol", "ip_address", "serial_port", "parity", "profile"] {
        if let Some(v) = cells.text(col) {
            m.insert(col.into(), v.into());
        }
    }
    for col in ["port", "baud_rate", "unit_id", "poll_interval_ms", "timeout_ms", "max_registers", "max_gap"] {
        if let Some(v) = cells.uint(col) {
            m.insert(col.into(), v.into());
        }
    }
    for col in ["enabled", "one_request_per_point"] {
        if let Some(v) = cells.boolean(col) {
            m.insert(col.into(), v.into());
        }
    }
    if let Some(r) = cells.record() {
        m.insert("record".into(), serde_json::to_value(r).unwrap_or_default());
    }
    if let Some(o) = cells.text("options") {
        match serde_json::from_str::<serde_json::Value>(&o) {
            Ok(v @ serde_json::Value::Object(_)) => {
                m.insert("options".into(), v);
            }
            _ => cells.fail("options", "the plugin options must be a JSON object, such as {\"device_instance\": 1234}"),
        }
    }
    // A plugin device has no unit id (as for POST /devices).
    let plugin = m.get("protocol").and_then(|p| p.as_str()).and_then(|p| p.parse::<t3_core::config::Protocol>().ok());
    if plugin.is_some_and(|p| p.plugin().is_some()) {
        m.entry("unit_id").or_insert(0.into());
    }
    m.insert("points".into(), serde_json::to_value(points).unwrap_or_default());
    if !cells.errors.is_empty() {
        return None;
    }
    let config: DeviceConfig = match serde_path_to_error::deserialize(serde_json::Value::Object(m)) {
        Ok(c) => c,
        Err(e) => {
            let path = e.path().to_string();
            let column = if path == "." {
                // `missing field `unit_id``: the key is in the message.
                let msg = e.inner().to_string();
                DEVICE_COLUMNS.iter().find(|c| msg.contains(&format!("`{c}`"))).copied().unwrap_or("name")
            } else {
                device_column(&path)
            };
            cells.fail(column, e.inner().to_string());
            return None;
        }
    };
    Some(DeviceEntry {
        config,
        building: cells.text("building"),
        floor: cells.text("floor"),
        room: cells.text("room"),
        description: Some(cells.raw("description").to_owned()).filter(|s| !s.trim().is_empty()),
        source: cells.raw("source").to_owned(),
    })
}

/// Reads a devices file and says what each row would do against `current` (the devices there
/// are, matched by name). A column missing from the file leaves that field as it is; an empty
/// cell means the field's default (none for the optional ones). A device's per-point settings
/// are not columns here (they are in `points.csv`) and stay as they are.
pub fn plan_devices<R: Read>(input: R, current: &[DeviceEntry]) -> Result<Plan<DeviceEntry>, CsvError> {
    let mut table = Table::open(input)?;
    let sheet = Sheet::new(&table.header, DEVICE_COLUMNS, &["name"], table.delimiter)?;
    let mut errors = Errors::default();
    let mut rows = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    while let Some(row) = table.next_row(&mut errors)? {
        let name = sheet.get(&row, "name").unwrap_or("").trim().to_owned();
        if name.is_empty() {
            errors.push(sheet.error(&row, Some("name"), None, "the device needs a name"));
            continue;
        }
        if let Some(first) = seen.insert(name.clone(), row.row) {
            errors.push(sheet.error(
                &row,
                Some("name"),
                Some(&name),
                format!("device \"{name}\" is also in row {first}"),
            ));
            continue;
        }
        let found = current.iter().position(|d| d.config.name == name);
        let base = found.map_or_else(|| vec![String::new(); DEVICE_COLUMNS.len()], |i| device_cells(&current[i]));
        let points = found.map(|i| current[i].config.points.clone()).unwrap_or_default();
        let mut cells = Cells::new(DEVICE_COLUMNS, base, &sheet, &row, &name);
        let entry = device_from(&mut cells, points);
        for e in std::mem::take(&mut cells.errors) {
            errors.push(e);
        }
        let Some(mut entry) = entry else { continue };
        entry.source = found.map_or_else(|| "api".to_owned(), |i| current[i].source.clone());
        let old = found.map(|i| device_cells(&current[i]));
        let (action, fields) = diff(DEVICE_COLUMNS, &["source"], old.as_deref(), &device_cells(&entry));
        rows.push(Planned { plan: RowPlan { row: row.row, key: name, action, fields }, row, entry, current: found });
    }
    Ok(Plan { sheet, rows, errors })
}

/// Writes devices as CSV (UTF-8 with a byte order mark, CRLF, quoted where needed).
pub fn write_devices(devices: &[DeviceEntry]) -> Vec<u8> {
    write(DEVICE_COLUMNS, devices.iter().map(device_cells))
}

// ---- points ----

/// A point as `points.csv` has it: what people add to it and how it is recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PointEntry {
    /// The stored id (shown only).
    pub id: Option<u32>,
    /// Its device's name; none for a manual point.
    pub device: Option<String>,
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub units: Option<String>,
    /// The point's own poll interval; none: its device's.
    pub interval_ms: Option<u64>,
    /// The point's own recording; none: its device's.
    pub record: Option<RecordConfig>,
    pub retention_days: Option<u32>,
    /// The trend line someone chose; none: the server's default.
    pub line: Option<TrendLine>,
}

impl PointEntry {
    /// `AHU-1 IN3`, or a manual point's name.
    pub fn key(&self) -> String {
        match &self.device {
            Some(d) => format!("{d} {}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A point's cells, in the order of [`POINT_COLUMNS`].
pub fn point_cells(p: &PointEntry) -> Vec<String> {
    let [mode, deadband, percent, heartbeat] = record_cells(p.record.as_ref());
    vec![
        opt(p.id),
        opt(p.device.as_ref()),
        p.name.clone(),
        opt(p.label.as_ref()),
        opt(p.description.as_ref()),
        opt(p.units.as_ref()),
        opt(p.interval_ms),
        mode,
        deadband,
        percent,
        heartbeat,
        opt(p.retention_days),
        match p.line {
            None => String::new(),
            Some(TrendLine::Step) => "step".into(),
            Some(TrendLine::Linear) => "linear".into(),
        },
    ]
}

fn point_from(cells: &mut Cells<'_>, id: Option<u32>) -> Option<PointEntry> {
    let name = match check_name("point", cells.raw("name")) {
        Ok(n) => n,
        Err(e) => {
            cells.fail("name", e.message);
            return None;
        }
    };
    let retention_days = cells
        .uint("retention_days")
        .and_then(|d| u32::try_from(d).map_err(|_| cells.fail("retention_days", format!("{d} is too large"))).ok());
    let line = match cells.text("line").map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("default") => None,
        Some("step") => Some(TrendLine::Step),
        Some("linear") => Some(TrendLine::Linear),
        Some(other) => {
            cells.fail("line", format!("\"{other}\" is not a trend line: write step, linear, or leave it empty"));
            None
        }
    };
    let entry = PointEntry {
        id,
        device: cells.text("device"),
        name,
        label: cells.text("label"),
        description: cells.text("description"),
        units: cells.text("units"),
        interval_ms: cells.uint("interval_ms"),
        record: cells.record(),
        retention_days,
        line,
    };
    cells.errors.is_empty().then_some(entry)
}

/// Reads a points file and says what each row would do against `current` (the points there
/// are, matched by device and name, case-insensitively). A column missing from the file leaves
/// that field as it is; an empty cell clears it (the point shows its device's label again,
/// records as its device does).
pub fn plan_points<R: Read>(input: R, current: &[PointEntry]) -> Result<Plan<PointEntry>, CsvError> {
    let mut table = Table::open(input)?;
    let sheet = Sheet::new(&table.header, POINT_COLUMNS, &["device", "name"], table.delimiter)?;
    let mut errors = Errors::default();
    let mut rows = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let key_of = |d: Option<&str>, n: &str| (d.unwrap_or("").trim().to_lowercase(), n.trim().to_lowercase());
    let index: HashMap<(String, String), usize> =
        current.iter().enumerate().map(|(i, p)| (key_of(p.device.as_deref(), &p.name), i)).collect();
    while let Some(row) = table.next_row(&mut errors)? {
        let k = key_of(sheet.get(&row, "device"), sheet.get(&row, "name").unwrap_or(""));
        let shown = format!(
            "{} {}",
            sheet.get(&row, "device").unwrap_or("").trim(),
            sheet.get(&row, "name").unwrap_or("").trim()
        );
        let shown = shown.trim().to_owned();
        if let Some(first) = seen.insert(k.clone(), row.row) {
            errors.push(sheet.error(&row, Some("name"), Some(&shown), format!("the point is also in row {first}")));
            continue;
        }
        let found = index.get(&k).copied();
        let base = found.map_or_else(|| vec![String::new(); POINT_COLUMNS.len()], |i| point_cells(&current[i]));
        let mut cells = Cells::new(POINT_COLUMNS, base, &sheet, &row, &shown);
        let entry = point_from(&mut cells, found.and_then(|i| current[i].id));
        for e in std::mem::take(&mut cells.errors) {
            errors.push(e);
        }
        let Some(mut entry) = entry else { continue };
        if let Some(i) = found {
            // The names as stored (`IN1`, not `in1`).
            entry.device.clone_from(&current[i].device);
            entry.name.clone_from(&current[i].name);
        }
        let old = found.map(|i| point_cells(&current[i]));
        let (action, fields) = diff(POINT_COLUMNS, &["id"], old.as_deref(), &point_cells(&entry));
        rows.push(Planned {
            plan: RowPlan { row: row.row, key: entry.key(), action, fields },
            row,
            entry,
            current: found,
        });
    }
    Ok(Plan { sheet, rows, errors })
}

/// Writes points as CSV (UTF-8 with a byte order mark, CRLF, quoted where needed).
pub fn write_points(points: &[PointEntry]) -> Vec<u8> {
    write(POINT_COLUMNS, points.iter().map(point_cells))
}

fn write(columns: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Vec<u8> {
    let mut out = vec![0xEF, 0xBB, 0xBF];
    {
        let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(&mut out);
        // Writing to a Vec cannot fail.
        let _ = w.write_record(columns);
        for r in rows {
            let _ = w.write_record(&r);
        }
        let _ = w.flush();
    }
    out
}

// ---- samples ----

/// The points samples may name: by id, or by name (`<device> <point>`, a label, a manual point's
/// name; case-insensitive).
#[derive(Debug, Default)]
pub struct KnownPoints {
    ids: HashSet<u32>,
    names: HashMap<String, Vec<u32>>,
}

impl KnownPoints {
    /// A point and the names it goes by.
    pub fn add(&mut self, id: u32, names: impl IntoIterator<Item = String>) {
        self.ids.insert(id);
        for n in names {
            let ids = self.names.entry(n.trim().to_lowercase()).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }

    fn by_name(&self, name: &str) -> Result<u32, String> {
        match self.names.get(&name.trim().to_lowercase()).map(Vec::as_slice) {
            Some([id]) => Ok(*id),
            Some(ids) if ids.len() > 1 => Err(format!(
                "\"{name}\" names {} points (ids {}): use the point_id column",
                ids.len(),
                ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            )),
            _ => Err(format!("no point is named \"{name}\" (write `<device> <point>`, a label, or use point_id)")),
        }
    }
}

/// What a samples file is checked against.
#[derive(Debug, Clone)]
pub struct SampleRules {
    /// The time zone of times written without an offset.
    pub tz: Tz,
    /// The server's clock now (epoch microseconds), for `ingest.max_future_secs`.
    pub now_us: i64,
    pub ingest: IngestConfig,
}

/// What a samples file holds.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SampleSummary {
    /// Samples (rows) read.
    pub samples: u64,
    /// Distinct points.
    pub points: usize,
    /// The earliest and latest time (RFC 3339, UTC); none for an empty file.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A time: RFC 3339 (`T` or a space between date and time), or `YYYY-MM-DD HH:MM[:SS[.fff]]`
/// in `tz`.
pub fn parse_time(s: &str, tz: Tz) -> Result<i64, String> {
    let s = s.trim();
    let t = if s.len() > 10 && s.as_bytes()[10] == b' ' { format!("{}T{}", &s[..10], &s[11..]) } else { s.to_owned() };
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(&t) {
        return Ok(d.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(&t, fmt) {
            return match tz.from_local_datetime(&n) {
                chrono::LocalResult::Single(d) => Ok(d.timestamp_micros()),
                chrono::LocalResult::Ambiguous(a, b) => Err(format!(
                    "{s} happens twice in {tz} (the clocks go back): write it with its offset ({} or {})",
                    a.to_rfc3339(),
                    b.to_rfc3339()
                )),
                chrono::LocalResult::None => Err(format!("{s} does not exist in {tz} (the clocks go forward)")),
            };
        }
    }
    Err(format!(
        "\"{s}\" is not a time: write RFC 3339 (2026-11-26T10:00:00Z, 2026-11-26T11:00:00+01:00) or \
         YYYY-MM-DD HH:MM:SS in the import's time zone ({tz})"
    ))
}

/// A quality: our code (`192`, `0xC0`) or its name (`good`, `bad/comm_failure`); empty: good.
pub fn parse_quality(s: &str) -> Result<Quality, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(Quality::GOOD);
    }
    let code = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u8::from_str_radix(hex, 16).ok()
    } else if t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u8>().ok()
    } else {
        (0..=255u8).map(Quality).find(|q| q.name().eq_ignore_ascii_case(t)).map(|q| q.0)
    };
    code.map(Quality).ok_or_else(|| {
        format!("\"{s}\" is not a quality: write a code 0..255 (192 = good) or a name (good, uncertain, bad/comm_failure, ...)")
    })
}

/// Reads a samples file row by row (never whole), checks every row as `POST /samples` would
/// (the point exists, the time is one and not too far ahead, a value or a bad quality), and
/// gives each good sample to `each`. Every error is gathered; when there is one, the result is
/// [`CsvError::Invalid`] after the whole file was read (a caller that stores only after a first
/// clean pass stores nothing of a bad file).
pub fn read_samples<R: Read>(
    input: R,
    known: &KnownPoints,
    rules: &SampleRules,
    mut each: impl FnMut(Sample) -> Result<(), CsvError>,
) -> Result<SampleSummary, CsvError> {
    let mut table = Table::open(input)?;
    let sheet = Sheet::new(&table.header, SAMPLE_COLUMNS, &["time", "value"], table.delimiter)?;
    if !sheet.has("point_id") && !sheet.has("point") {
        let e = RowError {
            row: 1,
            line: 1,
            column: Some("point_id".into()),
            cell: None,
            key: None,
            message: "the column `point_id` or `point` is missing".into(),
        };
        return Err(CsvError::Invalid { errors: vec![e], total: 1 });
    }
    let mut errors = Errors::default();
    let mut summary = SampleSummary::default();
    let (mut points, mut from, mut to) = (HashSet::new(), i64::MAX, i64::MIN);
    while let Some(row) = table.next_row(&mut errors)? {
        let mut bad = |column: &str, message: String| errors.push(sheet.error(&row, Some(column), None, message));
        let id = match (sheet.get(&row, "point_id").map(str::trim).filter(|s| !s.is_empty()), sheet.get(&row, "point"))
        {
            (Some(id), _) => match id.parse::<u32>() {
                Ok(id) if known.ids.contains(&id) => Some(id),
                Ok(id) => {
                    bad("point_id", format!("no point {id}"));
                    None
                }
                Err(_) => {
                    bad("point_id", format!("\"{id}\" is not a point id"));
                    None
                }
            },
            (None, Some(name)) if !name.trim().is_empty() => known.by_name(name).map_err(|m| bad("point", m)).ok(),
            _ => {
                bad(if sheet.has("point_id") { "point_id" } else { "point" }, "no point given".into());
                None
            }
        };
        let ts = parse_time(sheet.get(&row, "time").unwrap_or(""), rules.tz).map_err(|m| bad("time", m)).ok();
        let raw = sheet.get(&row, "value").unwrap_or("");
        let value = if raw.trim().is_empty() {
            Some(f64::NAN)
        } else {
            parse_number(raw, sheet.delimiter).map_err(|m| bad("value", m)).ok()
        };
        let quality =
            sheet.get(&row, "quality").map_or(Ok(Quality::GOOD), parse_quality).map_err(|m| bad("quality", m)).ok();
        let (Some(id), Some(ts), Some(value), Some(quality)) = (id, ts, value, quality) else { continue };
        let sample = Sample { point_id: PointId(id), ts, value, quality };
        if let Err(e) = t3_storage::validate_samples(std::slice::from_ref(&sample), rules.now_us, &rules.ingest) {
            let (column, reason) = match e {
                t3_storage::Error::InvalidSample { reason, .. } if reason.starts_with("ts") => ("time", reason),
                t3_storage::Error::InvalidSample { reason, .. } => ("value", reason),
                t3_storage::Error::AheadOfClock { reason, .. } => ("time", reason),
                other => ("time", other.to_string()),
            };
            bad(column, reason);
            continue;
        }
        if !errors.is_empty() {
            // Only counted: nothing will be stored.
            continue;
        }
        summary.samples += 1;
        points.insert(id);
        from = from.min(ts);
        to = to.max(ts);
        each(sample)?;
    }
    errors.finish()?;
    let rfc = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    summary.points = points.len();
    if summary.samples > 0 {
        summary.from = rfc(from);
        summary.to = rfc(to);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_core::config::Protocol;

    fn device(name: &str, unit: u8) -> DeviceEntry {
        let config: DeviceConfig = serde_json::from_value(serde_json::json!({
            "name": name, "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": 1502,
            "unit_id": unit, "profile": "T3-controller",
        }))
        .unwrap();
        DeviceEntry {
            config,
            building: Some("HQ".into()),
            floor: Some("Level 1".into()),
            room: None,
            description: Some("Air handler, \"north\"\nsecond line".into()),
            source: "api".into(),
        }
    }

    fn points() -> Vec<PointEntry> {
        vec![
            PointEntry {
                id: Some(7),
                device: Some("AHU-1".into()),
                name: "IN1".into(),
                label: Some("SUP TEMP".into()),
                description: Some("Supply air; after the coil, °C".into()),
                units: Some("°C".into()),
                interval_ms: Some(5000),
                record: Some(RecordConfig {
                    mode: RecordMode::Change,
                    deadband: 0.5,
                    deadband_percent: 0.0,
                    heartbeat_secs: 900,
                }),
                retention_days: Some(365),
                line: Some(TrendLine::Step),
            },
            PointEntry { id: Some(8), device: Some("AHU-1".into()), name: "OUT1".into(), ..Default::default() },
            PointEntry {
                id: Some(9),
                device: None,
                name: "outdoor".into(),
                units: Some("%".into()),
                ..Default::default()
            },
        ]
    }

    /// A plan whose rows all read.
    fn clean<T>(p: Result<Plan<T>, CsvError>) -> Plan<T> {
        let mut p = p.unwrap();
        let errors = std::mem::take(&mut p.errors);
        errors.finish().unwrap();
        p
    }

    /// The errors of a plan (or of the file).
    fn plan_errors<T: std::fmt::Debug>(p: Result<Plan<T>, CsvError>) -> Vec<RowError> {
        match p {
            Ok(p) => errors(p.errors.finish().unwrap_err()),
            Err(e) => errors(e),
        }
    }

    fn errors(e: CsvError) -> Vec<RowError> {
        match e {
            CsvError::Invalid { errors, .. } => errors,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn exported_files_import_as_nothing_to_do() {
        let devices = vec![device("AHU-1", 1), device("AHU-2", 2)];
        let csv = write_devices(&devices);
        assert!(csv.starts_with(&[0xEF, 0xBB, 0xBF]), "a byte order mark for Excel");
        assert!(String::from_utf8_lossy(&csv).contains("\r\n"), "CRLF");
        let plan = clean(plan_devices(&csv[..], &devices));
        assert_eq!(plan.rows.len(), 2);
        for r in &plan.rows {
            assert_eq!(r.plan.action, Action::Unchanged, "{:?}", r.plan.fields);
            assert_eq!(r.entry, devices[r.current.unwrap()]);
        }
        let pts = points();
        let plan = clean(plan_points(&write_points(&pts)[..], &pts));
        assert!(plan.rows.iter().all(|r| r.plan.action == Action::Unchanged), "{:?}", plan.rows);
        assert_eq!(plan.rows.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(), pts);
    }

    #[test]
    fn a_spreadsheet_edit_shows_as_that_change() {
        // As LibreOffice in a German locale writes it: `;`, decimal commas, CRLF, quoted cells.
        let pts = points();
        let text = "\u{feff}id;device;name;label;description;units;interval_ms;record;deadband;deadband_percent;heartbeat_secs;retention_days;line\r\n\
            7;AHU-1;IN1;SUP TEMP;\"Supply air; after the coil, °C\";°C;5000;change;0,75;0;900;365;step\r\n\
            8;ahu-1;out1;\"Valve \"\"A\"\"\";;;;;;;;;\r\n\
            ;;;;;;;;;;;;\r\n";
        let plan = clean(plan_points(text.as_bytes(), &pts));
        assert_eq!(plan.rows.len(), 2);
        let first = &plan.rows[0].plan;
        assert_eq!((first.row, first.action), (2, Action::Change));
        assert_eq!(
            first.fields,
            vec![FieldChange { column: "deadband".into(), old: "0.5".into(), new: "0.75".into() }]
        );
        let second = &plan.rows[1];
        assert_eq!((second.plan.action, second.plan.key.as_str()), (Action::Change, "AHU-1 OUT1"));
        assert_eq!(second.entry.label.as_deref(), Some("Valve \"A\""));
    }

    #[test]
    fn a_missing_column_leaves_the_field_as_it_is() {
        let pts = points();
        let plan = clean(plan_points("device,name,label\nAHU-1,IN1,Supply\n".as_bytes(), &pts));
        let r = &plan.rows[0];
        assert_eq!(r.plan.fields.len(), 1);
        assert_eq!(r.entry.units.as_deref(), Some("°C"));
        assert_eq!(r.entry.interval_ms, Some(5000));
    }

    #[test]
    fn every_bad_row_is_named_with_its_column() {
        let devices = vec![device("AHU-1", 1)];
        let text = "name,protocol,ip_address,unit_id,profile,enabled,poll_interval_ms,record,deadband\n\
            AHU-1,modbus-tcp,127.0.0.1,1,T3-controller,true,1000,every,0\n\
            NEW-1,modbus-tcp,10.0.0.9,300,T3-controller,true,1000,,\n\
            NEW-2,modbus-tcp,10.0.0.9,2,T3-controller,maybe,1000,,\n\
            NEW-3,modbus-tcp,10.0.0.9,3,T3-controller,true,1,5s,\n\
            NEW-4,modbus-tcp,10.0.0.9,4,T3-controller,true,1000,,1\n\
            AHU-1,modbus-tcp,127.0.0.1,1,T3-controller,true,1000,every,0\n";
        let e = plan_errors(plan_devices(text.as_bytes(), &devices));
        let got: Vec<(usize, Option<&str>, Option<&str>)> =
            e.iter().map(|e| (e.row, e.column.as_deref(), e.cell.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (3, Some("unit_id"), Some("D3")),
                (4, Some("enabled"), Some("F4")),
                (5, Some("record"), Some("H5")),
                (6, Some("deadband"), Some("I6")),
                (7, Some("name"), Some("A7")),
            ],
            "{e:#?}"
        );
        assert!(e[0].message.contains("300"), "{}", e[0].message);
        assert_eq!(e[0].key.as_deref(), Some("NEW-1"));
        assert!(e[4].message.contains("row 2"), "{}", e[4].message);
    }

    #[test]
    fn wrong_columns_are_named() {
        let e = errors(plan_points("device;nam;label\r\nAHU-1;IN1;x\r\n".as_bytes(), &points()).unwrap_err());
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_eq!((e[0].row, e[0].column.as_deref(), e[0].cell.as_deref()), (1, Some("nam"), Some("B1")));
        assert!(e[0].message.contains("unknown column"));
        assert_eq!((e[1].row, e[1].column.as_deref()), (1, Some("name")));
        assert!(e[1].message.contains("missing"));
        // A row with a separator too many (an unquoted comma).
        let e = plan_errors(plan_points("device,name,label\nAHU-1,IN1,Supply, north\n".as_bytes(), &points()));
        assert_eq!((e[0].row, e[0].column.as_ref()), (2, None));
        assert!(e[0].message.contains("4 cells"), "{}", e[0].message);
    }

    #[test]
    fn other_encodings_are_refused_by_name_and_row() {
        // UTF-16 LE with a byte order mark (Excel's "Unicode Text").
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "device,name\r\nAHU-1,IN1\r\n".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let e = plan_errors(plan_points(&utf16[..], &points()));
        assert_eq!(e[0].row, 1);
        assert!(e[0].message.contains("UTF-16"), "{}", e[0].message);
        // Latin-1: "°C" as the single byte 0xB0 in row 3.
        let latin1 = b"device,name,units\nAHU-1,IN1,C\nAHU-1,OUT1,\xB0C\n";
        let e = plan_errors(plan_points(&latin1[..], &points()));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].row, e[0].column.as_deref(), e[0].cell.as_deref()), (3, Some("units"), Some("C3")));
        assert!(e[0].message.contains("Latin-1") && e[0].message.contains("0xB0"), "{}", e[0].message);
    }

    #[test]
    fn quoted_cells_keep_line_breaks_and_rows_count_records() {
        let pts = points();
        let text = "device,name,description\n\"AHU-1\",IN1,\"two\nlines, and a comma\"\nAHU-1,OUT1,x\nNOPE,IN1,\n";
        let plan = clean(plan_points(text.as_bytes(), &pts));
        assert_eq!(plan.rows[0].entry.description.as_deref(), Some("two\nlines, and a comma"));
        assert_eq!((plan.rows[1].row.row, plan.rows[1].row.line), (3, 4));
        assert_eq!(plan.rows[2].plan.action, Action::Create);
    }

    #[test]
    fn crlf_files_number_their_lines_as_lf_files_do() {
        let pts = points();
        let text = "device,name,description\r\nAHU-1,IN1,\"quoted, last\"\r\n\"AHU-1\",OUT1,x\r\nNOPE,IN1,\r\n";
        let plan = clean(plan_points(text.as_bytes(), &pts));
        assert_eq!(plan.rows[0].entry.description.as_deref(), Some("quoted, last"), "no CR left on the last cell");
        assert_eq!(plan.rows[1].entry.description.as_deref(), Some("x"));
        let lines: Vec<(usize, u64)> = plan.rows.iter().map(|r| (r.row.row, r.row.line)).collect();
        assert_eq!(lines, [(2, 2), (3, 3), (4, 4)]);
    }

    #[test]
    fn plugin_devices_keep_their_options() {
        let config: DeviceConfig = serde_json::from_value(serde_json::json!({
            "name": "bac-1", "protocol": "bacnet-ip", "ip_address": "127.0.0.1", "unit_id": 0,
            "options": {"device_instance": 1234},
        }))
        .unwrap();
        assert!(matches!(config.protocol, Protocol::Plugin(_)));
        let d =
            DeviceEntry { config, building: None, floor: None, room: None, description: None, source: "api".into() };
        let csv = write_devices(std::slice::from_ref(&d));
        assert!(String::from_utf8_lossy(&csv).contains(r#""{""device_instance"":1234}""#));
        let plan = clean(plan_devices(&csv[..], std::slice::from_ref(&d)));
        assert_eq!(plan.rows[0].plan.action, Action::Unchanged);
        let e = plan_errors(plan_devices("name,protocol,options\nb,bacnet-ip,[1]\n".as_bytes(), &[]));
        assert_eq!(e[0].column.as_deref(), Some("options"));
    }

    #[test]
    fn numbers_times_and_qualities() {
        assert_eq!(parse_number("1,5", b';'), Ok(1.5));
        assert!(parse_number("1,5", b',').is_err());
        assert!(parse_number("1.000,5", b';').is_err());
        assert_eq!(parse_quality("bad/comm_failure"), Ok(Quality::BAD_COMM_FAILURE));
        assert_eq!(parse_quality("192"), Ok(Quality::GOOD));
        assert_eq!(parse_quality("0x18"), Ok(Quality::BAD_COMM_FAILURE));
        assert_eq!(parse_quality(""), Ok(Quality::GOOD));
        assert!(parse_quality("fine").is_err());
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let utc = parse_time("2026-07-01T10:00:00Z", berlin).unwrap();
        assert_eq!(parse_time("2026-07-01 12:00:00", berlin), Ok(utc));
        assert_eq!(parse_time("2026-07-01 12:00:00+02:00", chrono_tz_utc()), Ok(utc));
        assert!(parse_time("2026-10-25 02:30:00", berlin).unwrap_err().contains("twice"));
        assert!(parse_time("2026-03-29 02:30:00", berlin).unwrap_err().contains("does not exist"));
        assert!(parse_time("01/07/2026 12:00", berlin).unwrap_err().contains("not a time"));
    }

    fn chrono_tz_utc() -> Tz {
        "UTC".parse().unwrap()
    }

    #[test]
    fn samples_are_checked_row_by_row() {
        let mut known = KnownPoints::default();
        known.add(7, ["AHU-1 IN1".to_owned(), "SUP TEMP".to_owned()]);
        known.add(8, ["AHU-1 OUT1".to_owned(), "dup".to_owned()]);
        known.add(9, ["dup".to_owned()]);
        let rules = SampleRules { tz: chrono_tz_utc(), now_us: 1_800_000_000_000_000, ingest: IngestConfig::default() };
        let good = "\u{feff}point;time;value;quality\r\nsup temp;2026-07-01 10:00:00;21,5;good\r\nAHU-1 OUT1;2026-07-01T10:00:01Z;;bad/comm_failure\r\n";
        let mut got = Vec::new();
        let s = read_samples(good.as_bytes(), &known, &rules, |s| {
            got.push(s);
            Ok(())
        })
        .unwrap();
        assert_eq!((s.samples, s.points), (2, 2));
        assert_eq!((got[0].point_id.0, got[0].value, got[0].quality), (7, 21.5, Quality::GOOD));
        assert!(got[1].value.is_nan());
        let bad = "point_id,point,time,value,quality\n\
            7,,2026-07-01 10:00:00,1,\n\
            99,,2026-07-01 10:00:00,1,\n\
            ,dup,2026-07-01 10:00:00,1,\n\
            7,,yesterday,1,\n\
            7,,2026-07-01 10:00:00,,good\n\
            7,,2026-07-01 10:00:00,1,great\n\
            7,,2099-07-01 10:00:00,1,\n";
        let mut stored = 0;
        let e = errors(
            read_samples(bad.as_bytes(), &known, &rules, |_| {
                stored += 1;
                Ok(())
            })
            .unwrap_err(),
        );
        let got: Vec<(usize, &str)> = e.iter().map(|e| (e.row, e.column.as_deref().unwrap())).collect();
        assert_eq!(
            got,
            vec![(3, "point_id"), (4, "point"), (5, "time"), (6, "value"), (7, "quality"), (8, "time")],
            "{e:#?}"
        );
        assert!(e[1].message.contains("ids 8, 9"), "{}", e[1].message);
        assert_eq!(stored, 1, "only the rows before the first error were handed on");
    }
}
