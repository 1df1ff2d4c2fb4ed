//! Exports: the history of some points over a time range as CSV, Excel (xlsx) or Parquet, in
//! bounded memory whatever the range.
//!
//! # Data flow
//! The engine's entry point, `Storage::export_blocking`, runs `export` on a blocking thread with
//! itself as the `Source` of rows:
//!
//! ```text
//! validate ─► occupied UTC days (file metadata + write buffer)
//!          ─► for each chunk of [from, to) that holds data:
//!                 Source::history(chunk)             (the engine's history, Handle::block_on)
//!              ─► Chunk: per point, sorted by time  (empty buckets dropped)
//!              ─► format writer ─► CSV:     rows, flushed to `out` after every chunk
//!                               ─► Parquet: a record batch; finished pages drained to `out`
//!                               ─► xlsx:    rows into constant-memory worksheets (temp files),
//!                                           plus the chart's per-interval means
//!              ─► progress(rows so far, time covered so far)
//!          ─► finish: Parquet footer / xlsx zip assembled in a temp file and copied to `out`
//! ```
//!
//! A chunk is one UTC day of raw rows, or a whole number of buckets of about a day (fewer if the
//! query row limit needs it), so a bucket is never split between two queries and a chunk's rows
//! are written out before the next chunk is read. Memory is bounded by one chunk (at most
//! `query.max_rows` rows; a raw day with more rows is split in halves until it fits) plus, for
//! xlsx, the chart's small summary. Days without any data for the points are skipped without a
//! query, so an open-ended range costs nothing for its empty stretches. Rows ingested while an
//! export runs may or may not be in it.

use crate::buffer::DAY_US;
use crate::error::{Error, Result};
use crate::query::analytics::Agg;
use crate::query::{Column, HistoryMode, HistoryRequest, HistoryResult, SeriesResult};
use arrow::array::{
    ArrayRef, Float64Builder, StringBuilder, TimestampMicrosecondBuilder, UInt8Builder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use rust_xlsxwriter::{Chart, ChartEmptyCells, ChartType, ExcelDateTime, Format, Workbook, Worksheet, XlsxError};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::io::{self, Seek, SeekFrom, Write};
use std::str::FromStr;
use std::sync::Arc;
use t3_core::model::{MAX_TS, MIN_TS, Quality};

/// Rows of an Excel worksheet, the header row included.
const XLSX_SHEET_ROWS: u64 = 1_048_576;
/// Data rows per worksheet: one row of each sheet is the header.
const XLSX_DATA_ROWS: u64 = XLSX_SHEET_ROWS - 1;
/// Columns of an Excel worksheet.
const XLSX_MAX_COLS: usize = 16_384;
/// Points drawn in the xlsx chart; more lines than this are unreadable anyway.
const CHART_MAX_SERIES: usize = 50;
/// Time intervals the chart's x axis is divided into (each point's mean per interval is drawn).
const CHART_INTERVALS: i64 = 2_000;
/// The first data sheet; later ones are "Data 2", "Data 3", ...
const DATA_SHEET: &str = "Data";
const CHART_SHEET: &str = "Chart";
/// Hidden sheet holding the chart's per-interval means.
const CHART_DATA_SHEET: &str = "Chart data";
/// Excel's serial day number of 1970-01-01 (days since 1899-12-30).
const EXCEL_UNIX_EPOCH_DAYS: i64 = 25_569;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Comma-separated values, UTF-8, RFC 4180 quoting.
    Csv,
    /// An Excel workbook with the data sheets and a chart sheet.
    Xlsx,
    /// Apache Parquet, zstd; always the long layout.
    Parquet,
}

impl ExportFormat {
    /// The name used in requests: `csv`, `xlsx` or `parquet`.
    pub fn as_str(self) -> &'static str {
        self.extension()
    }

    /// The MIME type of the file.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Parquet => "parquet",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = Error;

    /// Parses `csv`, `xlsx` or `parquet` (any case).
    fn from_str(s: &str) -> Result<Self> {
        [ExportFormat::Csv, ExportFormat::Xlsx, ExportFormat::Parquet]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::InvalidQuery(format!("unknown export format {s:?}; use csv, xlsx or parquet")))
    }
}

impl std::fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How rows are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One row per (time, point), ordered by time then point id.
    #[default]
    Long,
    /// One row per distinct time, one column per point (in the requested order). Parquet exports
    /// ignore this and are always long.
    Wide,
}

impl Layout {
    /// The name used in requests: `long` or `wide`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Long => "long",
            Layout::Wide => "wide",
        }
    }
}

impl FromStr for Layout {
    type Err = Error;

    /// Parses `long` or `wide` (any case).
    fn from_str(s: &str) -> Result<Self> {
        [Layout::Long, Layout::Wide]
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::InvalidQuery(format!("unknown layout {s:?}; use long or wide")))
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    /// Points to export; duplicates are ignored. In the wide layout the columns follow this order.
    pub points: Vec<u32>,
    /// Start of the range, microseconds since the Unix epoch (UTC), inclusive.
    pub from: i64,
    /// End of the range, exclusive.
    pub to: i64,
    /// The file format.
    pub format: ExportFormat,
    /// Long or wide rows (CSV and xlsx; Parquet is always long).
    pub layout: Layout,
    /// `None`: every raw row. `Some(width)`: per bucket of `width` microseconds (aligned to the
    /// epoch, like [`crate::query::analytics::aggregate`]) the average, and in the long layout also the
    /// min, max and count. Buckets without a usable value are left out.
    pub bucket_us: Option<i64>,
}

/// The display name and unit of a point.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PointLabel {
    pub name: String,
    pub unit: String,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportSummary {
    /// Data rows written (header rows not counted): (time, point) rows in the long layout,
    /// distinct times in the wide layout.
    pub rows: u64,
    /// Some data could not be read (a damaged file was quarantined during the export).
    pub partial: bool,
}

/// How far an export has got: reported after every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportProgress {
    /// Rows written so far.
    pub rows: u64,
    /// Everything before this instant (epoch microseconds) has been written.
    pub done_until: i64,
}

/// Knobs the tests turn; production uses [`Tuning::default`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Data rows per xlsx worksheet.
    pub(crate) xlsx_rows_per_sheet: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { xlsx_rows_per_sheet: XLSX_DATA_ROWS }
    }
}

/// Where an export's rows come from: the storage engine (see `Storage::export_blocking`).
pub(crate) trait Source {
    /// `query.max_rows`: the most rows one history query may answer.
    fn max_rows(&self) -> usize;
    /// `storage.zstd_level`, for Parquet exports.
    fn zstd_level(&self) -> i32;
    /// UTC days (since the epoch) on which any of `points` (sorted) may have rows in `[from, to)`;
    /// queries for other days would only come back empty.
    fn occupied_days(&self, points: &[u32], from: i64, to: i64) -> BTreeSet<i64>;
    /// Answers a history request, blocking until it is done.
    fn history(&self, req: HistoryRequest) -> Result<HistoryResult>;
}

/// Refuses an export that [`export`] would refuse before writing anything (no points, too many
/// points for the layout or the row limit, a bucket that is not positive): callers that stream
/// the file check first, so the refusal can be an answer of its own rather than a broken file.
pub(crate) fn check(req: &ExportRequest, max_rows: usize) -> Result<()> {
    validate(req)?;
    chunk_len(req.bucket_us, dedup_in_order(&req.points).len(), max_rows).map(|_| ())
}

/// Writes the history of `req.points` over `[req.from, req.to)` from `source` to `out` in
/// `req.format`, calling `progress` after every chunk (see `Storage::export_blocking`).
pub(crate) fn export(
    source: &dyn Source,
    req: &ExportRequest,
    labels: &HashMap<u32, PointLabel>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(ExportProgress),
    tuning: Tuning,
) -> Result<ExportSummary> {
    validate(req)?;
    let shape = Shape::new(req, labels);
    let mut sorted = shape.ids.clone();
    sorted.sort_unstable();
    let chunk_us = chunk_len(req.bucket_us, sorted.len(), source.max_rows())?;
    // Nothing exists outside what a sample's timestamp may be.
    let from = req.from.max(MIN_TS);
    let to = req.to.min(MAX_TS + 1);
    let days = if from < to { source.occupied_days(&sorted, from, to) } else { BTreeSet::new() };

    let mut writer: Box<dyn FormatWriter + '_> = match req.format {
        ExportFormat::Csv => Box::new(CsvWriter::new(out, &shape)?),
        ExportFormat::Parquet => Box::new(ParquetSink::new(out, &shape, source.zstd_level())?),
        ExportFormat::Xlsx => {
            let chart = ChartData::new(data_span(&days, from, to), req.bucket_us, shape.points.len());
            Box::new(XlsxWriter::new(out, &shape, chart, tuning.xlsx_rows_per_sheet)?)
        }
    };

    let mut summary = ExportSummary::default();
    let mut pos = from;
    while let Some((a, b)) = next_chunk(pos, to, chunk_us, &days) {
        // A raw day with more rows than one query may return is split in halves until each
        // part fits; the parts are written in time order.
        let mut pending = vec![(a, b)];
        while let Some((x, y)) = pending.pop() {
            match fetch_chunk(source, &shape, &sorted, x, y) {
                Ok((chunk, partial)) => {
                    summary.partial |= partial;
                    summary.rows += writer.write_chunk(&chunk)?;
                    progress(ExportProgress { rows: summary.rows, done_until: y });
                }
                Err(Error::TooManyRows(_)) if shape.bucket.is_none() && y - x > 1 => {
                    let mid = x + (y - x) / 2;
                    pending.push((mid, y));
                    pending.push((x, mid));
                }
                Err(e) => return Err(e),
            }
        }
        pos = b;
    }
    writer.finish()?;
    if summary.partial {
        tracing::warn!(rows = summary.rows, "export is incomplete: a damaged file was quarantined while it ran");
    }
    Ok(summary)
}

/// Queries one chunk and shapes it. Returns the chunk and whether the query was partial.
fn fetch_chunk(source: &dyn Source, shape: &Shape, sorted: &[u32], from: i64, to: i64) -> Result<(Chunk, bool)> {
    let mode = match shape.bucket {
        Some(bucket_us) => HistoryMode::Aggregate { bucket_us, aggs: vec![Agg::Avg, Agg::Min, Agg::Max, Agg::Count] },
        None => HistoryMode::Raw,
    };
    let req = HistoryRequest { points: sorted.to_vec(), from, to, mode, prior: false };
    let result = source.history(req)?;
    Ok((Chunk::from_series(result.series, shape)?, result.partial))
}

fn validate(req: &ExportRequest) -> Result<()> {
    if req.points.is_empty() {
        return Err(Error::InvalidQuery("no points requested".into()));
    }
    if let Some(b) = req.bucket_us
        && b <= 0
    {
        return Err(Error::InvalidQuery(format!("bucket must be positive, got {b} µs")));
    }
    if req.format == ExportFormat::Xlsx && req.layout == Layout::Wide {
        let n = dedup_in_order(&req.points).len();
        if n + 1 > XLSX_MAX_COLS {
            return Err(Error::InvalidQuery(format!(
                "{n} points do not fit an Excel sheet ({} columns); use the long layout",
                XLSX_MAX_COLS
            )));
        }
    }
    Ok(())
}

fn dedup_in_order(points: &[u32]) -> Vec<u32> {
    let mut seen = std::collections::HashSet::new();
    points.iter().copied().filter(|p| seen.insert(*p)).collect()
}

/// Length of a chunk in microseconds: a UTC day for raw rows; with a bucket, a whole number of
/// buckets of about a day, fewer if [`Storage::history`]'s row limit demands it (it refuses
/// `(buckets + 1) x points > max_rows`), and at least one bucket.
fn chunk_len(bucket: Option<i64>, points: usize, max_rows: usize) -> Result<i64> {
    let Some(b) = bucket else { return Ok(DAY_US) };
    let per_day = (DAY_US / b).max(1);
    let fit = i64::try_from(max_rows / points.max(1)).unwrap_or(i64::MAX) - 1;
    if fit < 1 {
        // Not even one bucket of every point fits the row limit.
        return Err(Error::TooManyRows(max_rows));
    }
    // per_day > 1 only when b < a day, so the product stays within a day; otherwise it is b.
    Ok(per_day.min(fit) * b)
}

fn align_down(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}

/// The next chunk to query at or after `pos`: the `len`-aligned window holding the first
/// occupied day at or after `pos`'s day, clipped to `[pos, to)`. Windows are aligned to multiples
/// of `len` since the epoch, and `len` is a multiple of the bucket, so no bucket is ever split.
fn next_chunk(pos: i64, to: i64, len: i64, days: &BTreeSet<i64>) -> Option<(i64, i64)> {
    if pos >= to {
        return None;
    }
    let day = *days.range(pos.div_euclid(DAY_US)..).next()?;
    let start = pos.max(align_down(day.saturating_mul(DAY_US), len));
    if start >= to {
        return None;
    }
    let end = align_down(start, len).checked_add(len).map_or(to, |e| e.min(to));
    Some((start, end))
}

/// The part of `[from, to)` covered by occupied days, if any.
fn data_span(days: &BTreeSet<i64>, from: i64, to: i64) -> Option<(i64, i64)> {
    let first = *days.first()?;
    let last = *days.last()?;
    let lo = from.max(first.saturating_mul(DAY_US));
    let hi = to.min((last + 1).saturating_mul(DAY_US));
    (lo < hi).then_some((lo, hi))
}

/// One exported point.
#[derive(Debug, Clone)]
struct PointMeta {
    id: u32,
    name: String,
    unit: String,
    /// The wide-layout column title: `name (unit)`, or just the name without a unit.
    title: String,
}

/// The columns of an export, fixed for its whole run.
#[derive(Debug)]
pub(crate) struct Shape {
    /// In the requested order (duplicates dropped): the wide layout's column order.
    points: Vec<PointMeta>,
    ids: Vec<u32>,
    index: HashMap<u32, usize>,
    bucket: Option<i64>,
    layout: Layout,
}

impl Shape {
    pub(crate) fn new(req: &ExportRequest, labels: &HashMap<u32, PointLabel>) -> Shape {
        let ids = dedup_in_order(&req.points);
        let points: Vec<PointMeta> = ids
            .iter()
            .map(|&id| {
                let (name, unit) = match labels.get(&id) {
                    Some(l) if !l.name.is_empty() => (l.name.clone(), l.unit.clone()),
                    Some(l) => (format!("point {id}"), l.unit.clone()),
                    None => (format!("point {id}"), String::new()),
                };
                let title = if unit.is_empty() { name.clone() } else { format!("{name} ({unit})") };
                PointMeta { id, name, unit, title }
            })
            .collect();
        let index = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        Shape { points, ids, index, bucket: req.bucket_us, layout: req.layout }
    }

    /// Column titles of the long layout.
    fn long_header(&self) -> &'static [&'static str] {
        if self.bucket.is_some() {
            &["ts", "point_id", "point_name", "unit", "avg", "min", "max", "count"]
        } else {
            &["ts", "point_id", "point_name", "unit", "value", "quality", "quality_name"]
        }
    }
}

/// One point's rows in a chunk, sorted by time.
#[derive(Debug, Default)]
struct PointRows {
    ts: Vec<i64>,
    data: Rows,
}

#[derive(Debug)]
enum Rows {
    Raw { value: Vec<Option<f64>>, quality: Vec<u8> },
    Buckets { avg: Vec<Option<f64>>, min: Vec<Option<f64>>, max: Vec<Option<f64>>, count: Vec<u64> },
}

impl Default for Rows {
    fn default() -> Self {
        Rows::Raw { value: Vec::new(), quality: Vec::new() }
    }
}

/// A value as written: NaN and infinities (which storage never returns, but a division could)
/// become an empty cell.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

impl PointRows {
    /// The wide-layout value of row `i`: the raw value or the bucket's average.
    fn value(&self, i: usize) -> Option<f64> {
        finite(match &self.data {
            Rows::Raw { value, .. } => value[i],
            Rows::Buckets { avg, .. } => avg[i],
        })
    }

    fn raw(s: SeriesResult) -> Result<PointRows> {
        let mut cols = s.columns;
        let value = take_f64(&mut cols, "value")?;
        let quality = match take(&mut cols, "quality")? {
            Column::U8(q) => q,
            Column::F64(_) => return Err(Error::Internal("export: quality column is not u8".into())),
        };
        if value.len() != s.ts.len() || quality.len() != s.ts.len() {
            return Err(Error::Internal("export: raw columns differ in length".into()));
        }
        Ok(PointRows { ts: s.ts, data: Rows::Raw { value, quality } })
    }

    /// Keeps the buckets that hold at least one usable sample: an empty bucket is no row, the
    /// way a raw export has no row where nothing was recorded.
    fn buckets(s: SeriesResult) -> Result<PointRows> {
        let mut cols = s.columns;
        let avg = take_f64(&mut cols, "avg")?;
        let min = take_f64(&mut cols, "min")?;
        let max = take_f64(&mut cols, "max")?;
        let count = take_f64(&mut cols, "count")?;
        let n = s.ts.len();
        if [avg.len(), min.len(), max.len(), count.len()].iter().any(|&l| l != n) {
            return Err(Error::Internal("export: bucket columns differ in length".into()));
        }
        let (mut ts, mut oavg, mut omin, mut omax, mut ocount) = (vec![], vec![], vec![], vec![], vec![]);
        let rows = s.ts.into_iter().zip(avg).zip(min).zip(max).zip(count);
        for ((((t, a), lo), hi), c) in rows {
            let c = c.unwrap_or(0.0);
            if c >= 1.0 {
                ts.push(t);
                oavg.push(a);
                omin.push(lo);
                omax.push(hi);
                ocount.push(c as u64);
            }
        }
        let out = PointRows { ts, data: Rows::Buckets { avg: oavg, min: omin, max: omax, count: ocount } };
        Ok(out)
    }
}

fn take(cols: &mut Vec<(String, Column)>, name: &str) -> Result<Column> {
    let i = cols
        .iter()
        .position(|(n, _)| n == name)
        .ok_or_else(|| Error::Internal(format!("export: history result has no {name} column")))?;
    Ok(cols.swap_remove(i).1)
}

fn take_f64(cols: &mut Vec<(String, Column)>, name: &str) -> Result<Vec<Option<f64>>> {
    match take(cols, name)? {
        Column::F64(v) => Ok(v),
        Column::U8(_) => Err(Error::Internal(format!("export: {name} column is not f64"))),
    }
}

/// One chunk's rows: one entry per exported point, in [`Shape::points`] order.
#[derive(Debug)]
pub(crate) struct Chunk {
    series: Vec<PointRows>,
}

impl Chunk {
    pub(crate) fn from_series(series: Vec<SeriesResult>, shape: &Shape) -> Result<Chunk> {
        let mut out: Vec<PointRows> = (0..shape.points.len()).map(|_| PointRows::default()).collect();
        for s in series {
            let Some(&i) = shape.index.get(&s.point_id) else { continue };
            out[i] = if shape.bucket.is_some() { PointRows::buckets(s)? } else { PointRows::raw(s)? };
        }
        Ok(Chunk { series: out })
    }

    /// Calls `f(ts, series, row)` for every row, ordered by time, then point id.
    fn for_each_long(&self, ids: &[u32], mut f: impl FnMut(i64, usize, usize) -> Result<()>) -> Result<()> {
        // A k-way merge: each point's rows are already sorted.
        let mut heap = BinaryHeap::with_capacity(self.series.len());
        for (s, rows) in self.series.iter().enumerate() {
            if let Some(&t) = rows.ts.first() {
                heap.push(Reverse((t, ids[s], s, 0usize)));
            }
        }
        while let Some(Reverse((t, id, s, i))) = heap.pop() {
            f(t, s, i)?;
            if let Some(&next) = self.series[s].ts.get(i + 1) {
                heap.push(Reverse((next, id, s, i + 1)));
            }
        }
        Ok(())
    }

    /// Calls `f(ts, values)` once per distinct time, `values[s]` being point `s`'s value at that
    /// time (`None` if it has no row there or the row has no value).
    fn for_each_wide(&self, mut f: impl FnMut(i64, &[Option<f64>]) -> Result<()>) -> Result<()> {
        let mut cursor = vec![0usize; self.series.len()];
        let mut values = vec![None; self.series.len()];
        loop {
            let next = self.series.iter().zip(&cursor).filter_map(|(s, &i)| s.ts.get(i).copied()).min();
            let Some(t) = next else { return Ok(()) };
            for (s, rows) in self.series.iter().enumerate() {
                let i = cursor[s];
                values[s] = if rows.ts.get(i) == Some(&t) {
                    cursor[s] += 1;
                    rows.value(i)
                } else {
                    None
                };
            }
            f(t, &values)?;
        }
    }
}

/// A format's writer: takes the chunks in time order, then finishes the file.
pub(crate) trait FormatWriter {
    /// Writes one chunk and returns how many data rows that made.
    fn write_chunk(&mut self, chunk: &Chunk) -> Result<u64>;
    /// Completes the file and writes whatever is still pending to the output.
    fn finish(self: Box<Self>) -> Result<()>;
}

fn out_err(e: io::Error) -> Error {
    Error::io("write export", "export output", e)
}

fn xlsx_err(e: XlsxError) -> Error {
    match e {
        XlsxError::IoError(e) => Error::io("write xlsx", "temporary file", e),
        XlsxError::TempFileError(path, e) => Error::io("create temporary file", path, e),
        other => Error::Internal(format!("xlsx: {other}")),
    }
}

/// Appends `ts` as RFC 3339 UTC with microseconds: `2026-11-26T10:15:00.000000Z`.
fn push_ts(line: &mut String, ts: i64) {
    match chrono::DateTime::from_timestamp_micros(ts) {
        Some(dt) => {
            let _ = write!(line, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
        }
        // Unreachable for stored samples (their range is checked at ingest).
        None => {
            let _ = write!(line, "{ts}");
        }
    }
}

/// Appends a CSV field, quoted (RFC 4180) if it contains a comma, quote or line break.
fn push_field(line: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&s.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(s);
    }
}

/// Appends a number, or nothing for a missing one (an empty cell).
fn push_num(line: &mut String, v: Option<f64>) {
    if let Some(v) = finite(v) {
        // Display gives the shortest text that reads back as the same f64, never an exponent.
        let _ = write!(line, "{v}");
    }
}

/// CSV: each chunk's lines are written and flushed before the next chunk is read.
pub(crate) struct CsvWriter<'a> {
    out: io::BufWriter<&'a mut dyn Write>,
    shape: &'a Shape,
    line: String,
}

impl<'a> CsvWriter<'a> {
    pub(crate) fn new(out: &'a mut dyn Write, shape: &'a Shape) -> Result<Self> {
        let mut w = CsvWriter { out: io::BufWriter::with_capacity(64 * 1024, out), shape, line: String::new() };
        match shape.layout {
            Layout::Long => w.line.push_str(&shape.long_header().join(",")),
            Layout::Wide => {
                w.line.push_str("ts");
                for p in &shape.points {
                    w.line.push(',');
                    push_field(&mut w.line, &p.title);
                }
            }
        }
        w.line.push('\n');
        w.out.write_all(w.line.as_bytes()).map_err(out_err)?;
        Ok(w)
    }
}

impl FormatWriter for CsvWriter<'_> {
    fn write_chunk(&mut self, chunk: &Chunk) -> Result<u64> {
        let CsvWriter { out, shape, line } = self;
        let mut rows = 0u64;
        match shape.layout {
            Layout::Long => chunk.for_each_long(&shape.ids, |t, s, i| {
                let p = &shape.points[s];
                line.clear();
                push_ts(line, t);
                let _ = write!(line, ",{},", p.id);
                push_field(line, &p.name);
                line.push(',');
                push_field(line, &p.unit);
                match &chunk.series[s].data {
                    Rows::Raw { value, quality } => {
                        line.push(',');
                        push_num(line, value[i]);
                        let q = quality[i];
                        let _ = write!(line, ",{q},{}", Quality(q).name());
                    }
                    Rows::Buckets { avg, min, max, count } => {
                        for v in [avg[i], min[i], max[i]] {
                            line.push(',');
                            push_num(line, v);
                        }
                        let _ = write!(line, ",{}", count[i]);
                    }
                }
                line.push('\n');
                rows += 1;
                out.write_all(line.as_bytes()).map_err(out_err)
            })?,
            Layout::Wide => chunk.for_each_wide(|t, values| {
                line.clear();
                push_ts(line, t);
                for &v in values {
                    line.push(',');
                    push_num(line, v);
                }
                line.push('\n');
                rows += 1;
                out.write_all(line.as_bytes()).map_err(out_err)
            })?,
        }
        // Hand the chunk to the client now rather than when the buffer happens to fill.
        out.flush().map_err(out_err)?;
        Ok(rows)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out.flush().map_err(out_err)
    }
}

/// Parquet: one record batch per chunk into an [`ArrowWriter`] over a byte buffer that is drained
/// to the output after every chunk. (The output is a `dyn Write` without `Send`, which
/// `ArrowWriter` requires of its writer; the buffer holds only what the writer has finished.)
struct ParquetSink<'a> {
    out: &'a mut dyn Write,
    writer: ArrowWriter<Vec<u8>>,
    schema: SchemaRef,
    shape: &'a Shape,
}

pub(crate) fn parquet_schema(bucketed: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("point_id", DataType::UInt32, false),
    ];
    if bucketed {
        fields.extend([
            Field::new("avg", DataType::Float64, true),
            Field::new("min", DataType::Float64, true),
            Field::new("max", DataType::Float64, true),
            Field::new("count", DataType::UInt64, false),
        ]);
    } else {
        fields.extend([
            Field::new("value", DataType::Float64, true),
            Field::new("quality", DataType::UInt8, false),
            Field::new("quality_name", DataType::Utf8, false),
        ]);
    }
    Arc::new(Schema::new(fields))
}

impl<'a> ParquetSink<'a> {
    fn new(out: &'a mut dyn Write, shape: &'a Shape, zstd_level: i32) -> Result<Self> {
        let schema = parquet_schema(shape.bucket.is_some());
        // Parquet has no place for names and units in the rows; they travel in the footer.
        let labels: Vec<serde_json::Value> = shape
            .points
            .iter()
            .map(|p| serde_json::json!({ "point_id": p.id, "name": p.name, "unit": p.unit }))
            .collect();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level)?))
            .set_key_value_metadata(Some(vec![KeyValue::new(
                "t3000.points".to_string(),
                serde_json::Value::Array(labels).to_string(),
            )]))
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))?;
        Ok(ParquetSink { out, writer, schema, shape })
    }

    fn drain(&mut self) -> Result<()> {
        let buf = self.writer.inner_mut();
        self.out.write_all(buf).map_err(out_err)?;
        buf.clear();
        Ok(())
    }
}

impl FormatWriter for ParquetSink<'_> {
    fn write_chunk(&mut self, chunk: &Chunk) -> Result<u64> {
        let mut ts = TimestampMicrosecondBuilder::new();
        let mut point = UInt32Builder::new();
        let mut v1 = Float64Builder::new();
        let mut v2 = Float64Builder::new();
        let mut v3 = Float64Builder::new();
        let mut quality = UInt8Builder::new();
        let mut quality_name = StringBuilder::new();
        let mut count = UInt64Builder::new();
        let shape = self.shape;
        let mut rows = 0u64;
        chunk.for_each_long(&shape.ids, |t, s, i| {
            rows += 1;
            ts.append_value(t);
            point.append_value(shape.ids[s]);
            match &chunk.series[s].data {
                Rows::Raw { value, quality: q } => {
                    v1.append_option(finite(value[i]));
                    quality.append_value(q[i]);
                    quality_name.append_value(Quality(q[i]).name());
                }
                Rows::Buckets { avg, min, max, count: c } => {
                    v1.append_option(finite(avg[i]));
                    v2.append_option(finite(min[i]));
                    v3.append_option(finite(max[i]));
                    count.append_value(c[i]);
                }
            }
            Ok(())
        })?;
        if rows == 0 {
            return Ok(0);
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(ts.finish()), Arc::new(point.finish()), Arc::new(v1.finish())];
        if shape.bucket.is_some() {
            columns.extend([Arc::new(v2.finish()) as ArrayRef, Arc::new(v3.finish()), Arc::new(count.finish())]);
        } else {
            columns.extend([Arc::new(quality.finish()) as ArrayRef, Arc::new(quality_name.finish())]);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.writer.write(&batch)?;
        self.drain()?;
        Ok(rows)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let ParquetSink { out, writer, .. } = *self;
        // Writes the last row group and the footer.
        let rest = writer.into_inner()?;
        out.write_all(&rest).map_err(out_err)?;
        out.flush().map_err(out_err)
    }
}

/// Where data row `data_row` (0-based, over the whole export) goes: the 0-based data sheet and
/// the 0-based worksheet row. Row 0 of every sheet is its header, so a sheet holds
/// `rows_per_sheet` data rows in worksheet rows `1 ..= rows_per_sheet`.
fn sheet_for_row(data_row: u64, rows_per_sheet: u64) -> (usize, u32) {
    ((data_row / rows_per_sheet) as usize, (data_row % rows_per_sheet) as u32 + 1)
}

/// The name of data sheet `index` (0-based): "Data", "Data 2", "Data 3", ...
fn data_sheet_name(index: usize) -> String {
    if index == 0 { DATA_SHEET.to_string() } else { format!("{DATA_SHEET} {}", index + 1) }
}

/// `ts` as an Excel serial date-time (days since 1899-12-30, UTC). Whole days and the fraction
/// are converted apart so the fraction keeps its microseconds.
fn excel_datetime(ts: i64) -> Result<ExcelDateTime> {
    let days = ts.div_euclid(DAY_US) + EXCEL_UNIX_EPOCH_DAYS;
    let frac = ts.rem_euclid(DAY_US) as f64 / DAY_US as f64;
    ExcelDateTime::from_serial_datetime(days as f64 + frac).map_err(xlsx_err)
}

/// The chart's data: each charted point's mean over fixed time intervals spanning the exported
/// data, accumulated while the chunks stream by.
///
/// Why not chart the data sheets: `rust_xlsxwriter` copies every charted cell into the chart's
/// cache when the file is assembled (up to a million rows per series, far beyond constant
/// memory), and Excel is unusable with a million points per line anyway. At most
/// [`CHART_INTERVALS`] intervals x [`CHART_MAX_SERIES`] points stay small whatever the range.
#[derive(Debug)]
struct ChartData {
    first: i64,
    width: i64,
    intervals: usize,
    series: usize,
    sum: Vec<f64>,
    count: Vec<u32>,
}

impl ChartData {
    /// `span`: the part of the range that has data (`None`: no chart).
    fn new(span: Option<(i64, i64)>, bucket: Option<i64>, points: usize) -> Option<ChartData> {
        let (lo, hi) = span?;
        let series = points.min(CHART_MAX_SERIES);
        // lo < hi, so every quantity here is positive; u128 cannot overflow.
        let mut width = ((hi - lo) as u128).div_ceil(CHART_INTERVALS as u128).max(1);
        if let Some(b) = bucket {
            // Whole buckets per interval, so every bucket falls into one interval.
            width = width.div_ceil(b as u128) * b as u128;
        }
        let width = i64::try_from(width).unwrap_or(i64::MAX);
        let first = align_down(lo, width);
        let intervals = usize::try_from(((hi - first) as u128).div_ceil(width as u128)).unwrap_or(1).max(1);
        Some(ChartData {
            first,
            width,
            intervals,
            series,
            sum: vec![0.0; intervals * series],
            count: vec![0; intervals * series],
        })
    }

    fn add(&mut self, chunk: &Chunk) {
        for (s, rows) in chunk.series.iter().take(self.series).enumerate() {
            for (i, &t) in rows.ts.iter().enumerate() {
                if let Some(v) = rows.value(i) {
                    let k = (t.saturating_sub(self.first) / self.width).clamp(0, self.intervals as i64 - 1) as usize;
                    self.sum[k * self.series + s] += v;
                    self.count[k * self.series + s] += 1;
                }
            }
        }
    }

    /// The mean of series `s` in interval `k`.
    fn mean(&self, k: usize, s: usize) -> Option<f64> {
        let j = k * self.series + s;
        (self.count[j] > 0).then(|| self.sum[j] / f64::from(self.count[j]))
    }
}

/// A duration for the chart's note, in the largest unit that keeps it readable.
fn describe_duration(us: i64) -> String {
    let (v, unit) = if us >= DAY_US {
        (us as f64 / DAY_US as f64, "d")
    } else if us >= 3_600_000_000 {
        (us as f64 / 3.6e9, "h")
    } else if us >= 60_000_000 {
        (us as f64 / 6e7, "min")
    } else {
        (us as f64 / 1e6, "s")
    };
    let v = format!("{v:.3}");
    let v = v.trim_end_matches('0').trim_end_matches('.');
    format!("{v} {unit}")
}

/// xlsx: data rows stream into constant-memory worksheets ("Data", "Data 2", ... split at Excel's
/// row limit, each with the header), whose cells go to temporary files as each row is done. At
/// the end the "Chart" sheet (a line chart of each point's mean per interval, see [`ChartData`])
/// and the hidden "Chart data" sheet it plots are added, the workbook is zipped into a
/// temporary file, and that is copied to the output.
struct XlsxWriter<'a> {
    out: &'a mut dyn Write,
    shape: &'a Shape,
    workbook: Workbook,
    sheets: Vec<Worksheet>,
    rows: u64,
    rows_per_sheet: u64,
    ts_format: Format,
    header_format: Format,
    chart: Option<ChartData>,
}

impl<'a> XlsxWriter<'a> {
    fn new(out: &'a mut dyn Write, shape: &'a Shape, chart: Option<ChartData>, rows_per_sheet: u64) -> Result<Self> {
        let mut w = XlsxWriter {
            out,
            shape,
            workbook: Workbook::new(),
            sheets: Vec::new(),
            rows: 0,
            rows_per_sheet: rows_per_sheet.clamp(1, XLSX_DATA_ROWS),
            // Excel shows at most milliseconds.
            ts_format: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss.000"),
            header_format: Format::new().set_bold(),
            chart,
        };
        // The first sheet exists even if there are no rows.
        w.add_data_sheet()?;
        Ok(w)
    }

    fn headers(&self) -> Vec<&str> {
        match self.shape.layout {
            Layout::Long => self.shape.long_header().to_vec(),
            Layout::Wide => std::iter::once("ts").chain(self.shape.points.iter().map(|p| p.title.as_str())).collect(),
        }
    }

    fn add_data_sheet(&mut self) -> Result<()> {
        // Standalone sheets (pushed into the workbook at the end) so the chart sheets can follow
        // every data sheet however many there turn out to be.
        let mut ws = self.workbook.new_worksheet_with_constant_memory().map_err(xlsx_err)?;
        ws.set_name(data_sheet_name(self.sheets.len())).map_err(xlsx_err)?;
        // Column formats and panes live outside the row data, so constant memory mode allows them.
        ws.set_column_width(0, 23).map_err(xlsx_err)?;
        if self.shape.layout == Layout::Long {
            ws.set_column_width(2, 24).map_err(xlsx_err)?;
        }
        ws.set_freeze_panes(1, 1).map_err(xlsx_err)?;
        for (c, h) in self.headers().into_iter().enumerate() {
            ws.write_string_with_format(0, c as u16, h, &self.header_format).map_err(xlsx_err)?;
        }
        self.sheets.push(ws);
        Ok(())
    }

    /// The sheet and row of the next data row, starting a new sheet at the row limit.
    fn next_row(&mut self) -> Result<(usize, u32)> {
        let (sheet, row) = sheet_for_row(self.rows, self.rows_per_sheet);
        if sheet == self.sheets.len() {
            self.add_data_sheet()?;
        }
        self.rows += 1;
        Ok((sheet, row))
    }

    fn chart_sheets(&self) -> Result<(Worksheet, Option<Worksheet>)> {
        let mut chart_sheet = Worksheet::new();
        chart_sheet.set_name(CHART_SHEET).map_err(xlsx_err)?;
        let Some(data) = &self.chart else {
            chart_sheet.write_string(0, 0, "No data in the requested range.").map_err(xlsx_err)?;
            return Ok((chart_sheet, None));
        };
        let mut sheet = Worksheet::new();
        sheet.set_name(CHART_DATA_SHEET).map_err(xlsx_err)?;
        sheet.set_column_width(0, 23).map_err(xlsx_err)?;
        sheet.write_string_with_format(0, 0, "ts", &self.header_format).map_err(xlsx_err)?;
        for (s, p) in self.shape.points.iter().take(data.series).enumerate() {
            sheet.write_string_with_format(0, s as u16 + 1, &p.title, &self.header_format).map_err(xlsx_err)?;
        }
        let mut row = 0u32;
        for k in 0..data.intervals {
            if (0..data.series).all(|s| data.mean(k, s).is_none()) {
                continue;
            }
            row += 1;
            let t = data.first + k as i64 * data.width;
            sheet.write_datetime_with_format(row, 0, excel_datetime(t)?, &self.ts_format).map_err(xlsx_err)?;
            for s in 0..data.series {
                if let Some(v) = data.mean(k, s) {
                    sheet.write_number(row, s as u16 + 1, v).map_err(xlsx_err)?;
                }
            }
        }
        sheet.set_hidden(true);
        if row == 0 {
            chart_sheet.write_string(0, 0, "No values to chart in the requested range.").map_err(xlsx_err)?;
            return Ok((chart_sheet, Some(sheet)));
        }
        let mut note = format!(
            "Mean of each point per {} (interval start, UTC); the data sheets hold every row.",
            describe_duration(data.width)
        );
        if self.shape.points.len() > data.series {
            let _ = write!(note, " Only the first {} points are charted.", data.series);
        }
        chart_sheet.write_string(0, 0, note).map_err(xlsx_err)?;
        let mut chart = Chart::new(ChartType::ScatterStraight);
        chart.title().set_name("History");
        chart.x_axis().set_name("Time (UTC)").set_num_format("yyyy-mm-dd hh:mm");
        // Points sampled at different times leave holes in each other's columns; connect across
        // them rather than drawing nothing.
        chart.show_empty_cells_as(ChartEmptyCells::Connected);
        chart.set_width(1200).set_height(600);
        for s in 0..data.series {
            let col = s as u16 + 1;
            chart
                .add_series()
                .set_name((CHART_DATA_SHEET, 0, col))
                .set_categories((CHART_DATA_SHEET, 1, 0, row, 0))
                .set_values((CHART_DATA_SHEET, 1, col, row, col));
        }
        chart_sheet.insert_chart(2, 0, &chart).map_err(xlsx_err)?;
        Ok((chart_sheet, Some(sheet)))
    }
}

impl FormatWriter for XlsxWriter<'_> {
    fn write_chunk(&mut self, chunk: &Chunk) -> Result<u64> {
        let shape = self.shape;
        let before = self.rows;
        match shape.layout {
            Layout::Long => chunk.for_each_long(&shape.ids, |t, s, i| {
                let (sheet, row) = self.next_row()?;
                let dt = excel_datetime(t)?;
                let p = &shape.points[s];
                let ws = &mut self.sheets[sheet];
                ws.write_datetime_with_format(row, 0, dt, &self.ts_format).map_err(xlsx_err)?;
                ws.write_number(row, 1, p.id).map_err(xlsx_err)?;
                ws.write_string(row, 2, &p.name).map_err(xlsx_err)?;
                if !p.unit.is_empty() {
                    ws.write_string(row, 3, &p.unit).map_err(xlsx_err)?;
                }
                let mut cell = |col: u16, v: Option<f64>| -> Result<()> {
                    if let Some(v) = finite(v) {
                        ws.write_number(row, col, v).map_err(xlsx_err)?;
                    }
                    Ok(())
                };
                match &chunk.series[s].data {
                    Rows::Raw { value, quality } => {
                        cell(4, value[i])?;
                        cell(5, Some(f64::from(quality[i])))?;
                        ws.write_string(row, 6, Quality(quality[i]).name()).map_err(xlsx_err)?;
                    }
                    Rows::Buckets { avg, min, max, count } => {
                        cell(4, avg[i])?;
                        cell(5, min[i])?;
                        cell(6, max[i])?;
                        cell(7, Some(count[i] as f64))?;
                    }
                }
                Ok(())
            })?,
            Layout::Wide => chunk.for_each_wide(|t, values| {
                let (sheet, row) = self.next_row()?;
                let dt = excel_datetime(t)?;
                let ws = &mut self.sheets[sheet];
                ws.write_datetime_with_format(row, 0, dt, &self.ts_format).map_err(xlsx_err)?;
                for (c, v) in values.iter().enumerate() {
                    if let Some(v) = finite(*v) {
                        ws.write_number(row, c as u16 + 1, v).map_err(xlsx_err)?;
                    }
                }
                Ok(())
            })?,
        }
        if let Some(chart) = &mut self.chart {
            chart.add(chunk);
        }
        Ok(self.rows - before)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let (chart_sheet, chart_data) = self.chart_sheets()?;
        let XlsxWriter { out, mut workbook, sheets, .. } = *self;
        for ws in sheets {
            workbook.push_worksheet(ws);
        }
        workbook.push_worksheet(chart_sheet);
        if let Some(ws) = chart_data {
            workbook.push_worksheet(ws);
        }
        // The zip is assembled only now; build it in a temporary file (deleted when dropped) so
        // memory stays bounded, then stream it out.
        let mut file = tempfile::tempfile().map_err(|e| Error::io("create temporary file", std::env::temp_dir(), e))?;
        workbook.save_to_writer(&mut file).map_err(xlsx_err)?;
        file.seek(SeekFrom::Start(0)).map_err(|e| Error::io("seek", "temporary xlsx file", e))?;
        io::copy(&mut file, out).map_err(out_err)?;
        out.flush().map_err(out_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-26T00:00:00Z.
    const D1: i64 = 1_795_651_200_000_000;
    const H: i64 = 3_600_000_000;
    const MIN: i64 = 60_000_000;
    const S: i64 = 1_000_000;

    #[test]
    fn sheet_arithmetic() {
        assert_eq!(sheet_for_row(0, XLSX_DATA_ROWS), (0, 1));
        assert_eq!(sheet_for_row(1_048_574, XLSX_DATA_ROWS), (0, 1_048_575));
        assert_eq!(sheet_for_row(1_048_575, XLSX_DATA_ROWS), (1, 1));
        assert_eq!(sheet_for_row(2 * 1_048_575 + 4, XLSX_DATA_ROWS), (2, 5));
        // The last worksheet row is Excel's last row (0-based 1_048_575).
        assert_eq!(u64::from(sheet_for_row(XLSX_DATA_ROWS - 1, XLSX_DATA_ROWS).1), XLSX_SHEET_ROWS - 1);
        assert_eq!(data_sheet_name(0), "Data");
        assert_eq!(data_sheet_name(1), "Data 2");
        assert_eq!(data_sheet_name(2), "Data 3");
    }

    #[test]
    fn chunk_planning() {
        assert_eq!(chunk_len(None, 10, 5_000_000).unwrap(), DAY_US);
        assert_eq!(chunk_len(Some(H), 10, 5_000_000).unwrap(), DAY_US);
        assert_eq!(chunk_len(Some(7 * H), 10, 5_000_000).unwrap(), 21 * H);
        assert_eq!(chunk_len(Some(2 * DAY_US), 10, 5_000_000).unwrap(), 2 * DAY_US);
        assert_eq!(chunk_len(Some(S), 100, 5_000_000).unwrap(), 49_999 * S);
        assert!(matches!(chunk_len(Some(H), 10, 15), Err(Error::TooManyRows(15))));

        let days = BTreeSet::from([(D1 / DAY_US), (D1 / DAY_US) + 5]);
        // Starts mid-day at `from`, skips the empty days, ends at `to`.
        let from = D1 + 3 * H;
        let to = D1 + 5 * DAY_US + 2 * H;
        assert_eq!(next_chunk(from, to, DAY_US, &days), Some((from, D1 + DAY_US)));
        assert_eq!(next_chunk(D1 + DAY_US, to, DAY_US, &days), Some((D1 + 5 * DAY_US, to)));
        assert_eq!(next_chunk(to, to, DAY_US, &days), None);
        // 7 h chunks: aligned to the epoch, so the chunk holding day 5's start begins before it.
        let len = 21 * H;
        let (a, b) = next_chunk(D1 + DAY_US, to, len, &days).unwrap();
        assert_eq!(a % len, 0);
        assert!(a <= D1 + 5 * DAY_US && b > D1 + 5 * DAY_US);
        assert_eq!(b, (a + len).min(to));
        assert_eq!(data_span(&days, from, to), Some((from, to)));
        assert_eq!(data_span(&BTreeSet::new(), from, to), None);
    }

    #[test]
    fn csv_quoting() {
        let mut s = String::new();
        for f in ["plain", "a,b", "say \"hi\"", "two\nlines", ""] {
            push_field(&mut s, f);
            s.push('|');
        }
        assert_eq!(s, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"||");
        let mut s = String::new();
        push_ts(&mut s, D1 + 10 * H + 15 * MIN + 7);
        assert_eq!(s, "2026-11-26T10:15:00.000007Z");
    }

    #[test]
    fn names_and_types() {
        assert_eq!("csv".parse::<ExportFormat>().unwrap(), ExportFormat::Csv);
        assert_eq!("XLSX".parse::<ExportFormat>().unwrap(), ExportFormat::Xlsx);
        assert_eq!("parquet".parse::<ExportFormat>().unwrap(), ExportFormat::Parquet);
        assert!(matches!("json".parse::<ExportFormat>(), Err(Error::InvalidQuery(_))));
        assert_eq!("wide".parse::<Layout>().unwrap(), Layout::Wide);
        assert_eq!("long".parse::<Layout>().unwrap(), Layout::Long);
        assert!("tall".parse::<Layout>().is_err());
        assert_eq!(ExportFormat::Csv.content_type(), "text/csv; charset=utf-8");
        assert_eq!(ExportFormat::Parquet.extension(), "parquet");
        assert_eq!(
            ExportFormat::Xlsx.content_type(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
    }

    #[test]
    fn excel_dates() {
        // 1970-01-01 is serial 25569; noon is half a day.
        assert_eq!(excel_datetime(0).unwrap().to_excel(), 25_569.0);
        assert_eq!(excel_datetime(DAY_US / 2).unwrap().to_excel(), 25_569.5);
        assert_eq!(describe_duration(DAY_US), "1 d");
        assert_eq!(describe_duration(90 * MIN), "1.5 h");
        assert_eq!(describe_duration(86 * S + 400_000), "1.44 min");
    }

    #[test]
    fn chart_intervals_cover_the_span() {
        let c = ChartData::new(Some((D1, D1 + 2 * DAY_US)), None, 60).unwrap();
        assert_eq!(c.series, CHART_MAX_SERIES);
        assert!(c.intervals as i64 <= CHART_INTERVALS + 1);
        assert!(c.first <= D1 && c.first + c.intervals as i64 * c.width >= D1 + 2 * DAY_US);
        let c = ChartData::new(Some((D1, D1 + 2 * DAY_US)), Some(7 * H), 2).unwrap();
        assert_eq!(c.width % (7 * H), 0);
        assert!(ChartData::new(None, None, 2).is_none());
    }
}
