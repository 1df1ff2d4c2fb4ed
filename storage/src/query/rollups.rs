//! Rollups: per-minute and per-hour aggregates of every point, kept as their own Parquet tables
//! (`rollups_1m/day=.../`, `rollups_1h/day=.../`) so long trends never scan raw samples.
//!
//! A day's rollups are computed by maintenance once the day is over ([`crate::engine`]). Each rollup
//! file records a digest of the set of sample files it was computed from (`source_files`); any
//! change of that set (a late sample's file, compaction, a quarantined file, a deletion) makes the
//! day's rollups stale, queries stop using them at once, and the next maintenance pass recomputes
//! them.
//!
//! A rollup row carries `count, min, max, avg, first, last, twa, covered_us`: everything needed to
//! merge rows into wider buckets exactly (see [`Partial::merge`]).

use crate::buffer::RowFilter;
use crate::error::Result;
use crate::files::LiveFile;
use crate::files::manifest::{FileMeta, Table, source_digest};
use crate::query::analytics::{self, Partial, Series};
use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

pub const MINUTE_US: i64 = 60_000_000;
pub const HOUR_US: i64 = 3_600_000_000;

/// The two rollup tables and their bucket widths.
pub const TABLES: [(Table, i64); 2] = [(Table::Rollups1m, MINUTE_US), (Table::Rollups1h, HOUR_US)];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        Field::new("point_id", DataType::UInt32, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("count", DataType::UInt64, false),
        f("min"),
        f("max"),
        f("avg"),
        f("first"),
        f("last"),
        f("twa"),
        Field::new("covered_us", DataType::Int64, false),
    ]))
});

pub fn rollup_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Rows of a rollup table, built point by point.
#[derive(Default)]
pub(crate) struct RollupRows {
    point: Vec<u32>,
    ts: Vec<i64>,
    count: Vec<u64>,
    min: Vec<Option<f64>>,
    max: Vec<Option<f64>>,
    avg: Vec<Option<f64>>,
    first: Vec<Option<f64>>,
    last: Vec<Option<f64>>,
    twa: Vec<Option<f64>>,
    covered: Vec<i64>,
}

impl RollupRows {
    pub(crate) fn is_empty(&self) -> bool {
        self.point.is_empty()
    }

    pub(crate) fn push(&mut self, point: u32, ts: i64, p: &Partial) {
        use analytics::Agg;
        self.point.push(point);
        self.ts.push(ts);
        self.count.push(p.count);
        self.min.push(p.finish(Agg::Min));
        self.max.push(p.finish(Agg::Max));
        self.avg.push(p.finish(Agg::Avg));
        self.first.push(p.first);
        self.last.push(p.last);
        self.twa.push(p.finish(Agg::Twa));
        self.covered.push(p.covered);
    }

    pub(crate) fn into_batch(self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(self.point)),
            Arc::new(TimestampMicrosecondArray::from(self.ts)),
            Arc::new(UInt64Array::from(self.count)),
            Arc::new(Float64Array::from(self.min)),
            Arc::new(Float64Array::from(self.max)),
            Arc::new(Float64Array::from(self.avg)),
            Arc::new(Float64Array::from(self.first)),
            Arc::new(Float64Array::from(self.last)),
            Arc::new(Float64Array::from(self.twa)),
            Arc::new(Int64Array::from(self.covered)),
        ];
        Ok(RecordBatch::try_new(rollup_schema(), cols)?)
    }
}

/// Turns a rollup row back into a [`Partial`].
#[allow(clippy::too_many_arguments)]
pub fn partial_of(
    count: u64,
    min: Option<f64>,
    max: Option<f64>,
    avg: Option<f64>,
    first: Option<f64>,
    last: Option<f64>,
    twa: Option<f64>,
    covered: i64,
) -> Partial {
    Partial {
        count,
        sum: avg.unwrap_or(0.0) * count as f64,
        min: min.unwrap_or(f64::INFINITY),
        max: max.unwrap_or(f64::NEG_INFINITY),
        first,
        last,
        area: twa.unwrap_or(0.0) * covered as f64,
        covered,
    }
}

/// The rollup files of `table` that are up to date: computed from exactly the sample files that
/// now cover the days the rollup file covers.
pub(crate) fn fresh_rollups(files: &[Arc<LiveFile>], table: Table) -> Vec<Arc<LiveFile>> {
    let by_day = sample_days(files);
    files
        .iter()
        .filter(|f| f.meta.table == table)
        .filter(|f| range_digest(&by_day, f.meta.day, f.meta.last_day()) == Some(f.meta.source_files))
        .cloned()
        .collect()
}

/// Sample files under each day they cover.
pub(crate) fn sample_days(files: &[Arc<LiveFile>]) -> BTreeMap<i32, Vec<&FileMeta>> {
    let mut by_day: BTreeMap<i32, Vec<&FileMeta>> = BTreeMap::new();
    for f in files.iter().filter(|f| f.meta.table == Table::Samples) {
        for d in f.meta.day..=f.meta.last_day() {
            by_day.entry(d).or_default().push(&f.meta);
        }
    }
    by_day
}

/// The [`source_digest`] of the sample files covering any of the days `first ..= last` (`None` if
/// there is none).
pub(crate) fn range_digest(by_day: &BTreeMap<i32, Vec<&FileMeta>>, first: i32, last: i32) -> Option<u64> {
    let files: BTreeMap<u64, &FileMeta> =
        by_day.range(first..=last).flat_map(|(_, fs)| fs.iter().map(|f| (f.seq, *f))).collect();
    (!files.is_empty()).then(|| source_digest(files.into_values()))
}

/// What the rollups of a day are computed from.
#[derive(Debug)]
pub(crate) struct DaySeries {
    /// The rows of every point that has rows that day, by point.
    pub series: Vec<Series>,
    /// The value in force at the start of the day, per point that has one.
    pub prior: std::collections::HashMap<u32, f64>,
}

pub(crate) fn all_points_filter(from: i64, to: i64) -> RowFilter<'static> {
    RowFilter { points: None, from, to }
}
