//! The write buffer: acknowledged samples not yet in Parquet, held in Arrow builders.
//!
//! The WAL thread appends to the *active* buffer after every group commit. A flush *freezes* it (at
//! a WAL segment boundary) into an immutable [`Frozen`] batch that stays visible to queries until
//! its Parquet files are published.

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, Float64Array, Float64Builder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder, UInt8Array, UInt8Builder, UInt32Array, UInt32Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use std::sync::{Arc, LazyLock};
use t3_core::Sample;

pub const DAY_US: i64 = 86_400_000_000;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("point_id", DataType::UInt32, false),
        // Plain TIMESTAMP (no time zone; UTC by convention): DuckDB's bundled build has no ICU, and
        // TIMESTAMPTZ would make time_bucket try to download it.
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("value", DataType::Float64, false),
        Field::new("quality", DataType::UInt8, false),
    ]))
});

/// The Arrow schema of samples, in memory and in Parquet.
pub fn sample_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The active write buffer.
#[derive(Debug, Default)]
pub struct WriteBuffer {
    point: UInt32Builder,
    ts: TimestampMicrosecondBuilder,
    value: Float64Builder,
    quality: UInt8Builder,
    /// When the first sample of this buffer arrived (clock microseconds), for the time-based flush.
    pub first_insert_us: Option<i64>,
}

impl WriteBuffer {
    pub fn len(&self) -> usize {
        self.point.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn append(&mut self, samples: &[Sample], now_us: i64) {
        if self.first_insert_us.is_none() && !samples.is_empty() {
            self.first_insert_us = Some(now_us);
        }
        for s in samples {
            self.point.append_value(s.point_id.0);
            self.ts.append_value(s.ts);
            self.value.append_value(s.value);
            self.quality.append_value(s.quality.0);
        }
    }

    /// Empties the buffer into an immutable batch.
    pub fn freeze(&mut self) -> RecordBatch {
        self.first_insert_us = None;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.point.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.quality.finish()),
        ];
        RecordBatch::try_new(sample_schema(), cols).expect("buffer columns match the schema")
    }

    /// Copies out the rows that match `filter`, in arrival order.
    pub fn select(&self, filter: &RowFilter<'_>, out: &mut Columns) {
        select_rows(
            self.point.values_slice(),
            self.ts.values_slice(),
            self.value.values_slice(),
            self.quality.values_slice(),
            filter,
            out,
        );
    }
}

/// Which rows a query wants: a set of points (all if `None`) and a time range `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct RowFilter<'a> {
    /// Sorted point ids, or `None` for every point.
    pub points: Option<&'a [u32]>,
    pub from: i64,
    pub to: i64,
}

impl RowFilter<'_> {
    #[inline]
    pub fn matches(&self, point: u32, ts: i64) -> bool {
        ts >= self.from && ts < self.to && self.points.is_none_or(|p| p.binary_search(&point).is_ok())
    }
}

/// Plain column vectors, used to gather buffered rows for a query.
#[derive(Debug, Default, Clone)]
pub struct Columns {
    pub point: Vec<u32>,
    pub ts: Vec<i64>,
    pub value: Vec<f64>,
    pub quality: Vec<u8>,
}

impl Columns {
    pub fn len(&self) -> usize {
        self.point.len()
    }

    pub fn is_empty(&self) -> bool {
        self.point.is_empty()
    }

    pub fn push(&mut self, point: u32, ts: i64, value: f64, quality: u8) {
        self.point.push(point);
        self.ts.push(ts);
        self.value.push(value);
        self.quality.push(quality);
    }

    /// Sorts by (point, ts) and keeps the last-arrived row of each duplicate (point, ts).
    pub fn sort_dedup(self) -> Columns {
        let idx = sorted_dedup_indices(&self.point, &self.ts);
        let mut out = Columns::default();
        for i in idx {
            let i = i as usize;
            out.push(self.point[i], self.ts[i], self.value[i], self.quality[i]);
        }
        out
    }

    pub fn into_batch(self) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(self.point)),
            Arc::new(TimestampMicrosecondArray::from(self.ts)),
            Arc::new(Float64Array::from(self.value)),
            Arc::new(UInt8Array::from(self.quality)),
        ];
        RecordBatch::try_new(sample_schema(), cols).expect("columns match the schema")
    }
}

fn select_rows(point: &[u32], ts: &[i64], value: &[f64], quality: &[u8], f: &RowFilter<'_>, out: &mut Columns) {
    for i in 0..point.len() {
        if f.matches(point[i], ts[i]) {
            out.push(point[i], ts[i], value[i], quality[i]);
        }
    }
}

/// Row indices that sort `(point, ts)` ascending, keeping only the last-arrived row of each key.
pub fn sorted_dedup_indices(point: &[u32], ts: &[i64]) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..point.len() as u32).collect();
    idx.sort_unstable_by_key(|&i| (point[i as usize], ts[i as usize], i));
    let mut out = Vec::with_capacity(idx.len());
    for (k, &i) in idx.iter().enumerate() {
        let is_last =
            idx.get(k + 1).is_none_or(|&j| point[j as usize] != point[i as usize] || ts[j as usize] != ts[i as usize]);
        if is_last {
            out.push(i);
        }
    }
    out
}

/// A frozen buffer waiting for its Parquet files.
#[derive(Debug)]
pub struct Frozen {
    pub batch: RecordBatch,
    /// The first and the last WAL segment that may hold any of these samples.
    pub wal_from: u64,
    pub wal_through: u64,
}

impl Frozen {
    pub fn select(&self, filter: &RowFilter<'_>, out: &mut Columns) {
        let b = &self.batch;
        select_rows(
            as_u32(b.column(0)).values(),
            as_ts(b.column(1)).values(),
            as_f64(b.column(2)).values(),
            as_u8(b.column(3)).values(),
            filter,
            out,
        );
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn as_u32(a: &ArrayRef) -> &UInt32Array {
    a.as_any().downcast_ref().expect("point_id column is UInt32")
}
pub fn as_ts(a: &ArrayRef) -> &TimestampMicrosecondArray {
    a.as_any().downcast_ref().expect("ts column is Timestamp(us)")
}
pub fn as_f64(a: &ArrayRef) -> &Float64Array {
    a.as_any().downcast_ref().expect("value column is Float64")
}
pub fn as_u8(a: &ArrayRef) -> &UInt8Array {
    a.as_any().downcast_ref().expect("quality column is UInt8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_last_arrival() {
        let point = [2, 1, 2, 1, 2];
        let ts = [5, 9, 5, 3, 1];
        let idx = sorted_dedup_indices(&point, &ts);
        assert_eq!(idx, vec![3, 1, 4, 2]);
    }

    #[test]
    fn select_filters_points_and_range() {
        let mut b = WriteBuffer::default();
        b.append(&[Sample::good(1, 10, 1.0), Sample::good(2, 10, 2.0), Sample::good(1, 20, 3.0)], 0);
        let mut out = Columns::default();
        b.select(&RowFilter { points: Some(&[1]), from: 0, to: 20 }, &mut out);
        assert_eq!(out.value, vec![1.0]);
        let frozen = Frozen { batch: b.freeze(), wal_from: 1, wal_through: 1 };
        assert!(b.is_empty());
        let mut out = Columns::default();
        frozen.select(&RowFilter { points: None, from: 0, to: 100 }, &mut out);
        assert_eq!(out.len(), 3);
    }
}
