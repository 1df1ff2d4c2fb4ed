//! The page index of a live file, and reading exactly the rows of a filter from a file with it.
//!
//! A file's footer and offset index are parsed once and kept with the file (`FileIndex`, cached in
//! [`LiveFile`]; a retired or quarantined file takes its index with it), with the per-page min/max
//! of point_id and ts taken from its column index. To read the rows of a [`RowFilter`], row groups
//! are pruned by their point_id and ts statistics; in the remaining groups, the page index (the
//! offset index gives every page's first row, the column index the min/max of point_id and ts per
//! page) yields the row ranges that may hold the requested points in the requested range, only the
//! pages covering them are read and decoded (a [`RowSelection`] of whole pages), and the decoded
//! rows are filtered exactly. The direct read path ([`crate::query::direct`]) and the flush's check
//! for keys shared with live files read through it.
//!
//! Memory: the kept footer and offset index of a daily file of 1.44 M rows (44 row groups) take
//! about 120 KiB, so 90 daily files take about 11 MiB and a year about 42 MiB.

use super::LiveFile;
use crate::buffer::RowFilter;
use crate::error::{Error, Result};
use arrow::array::{BooleanArray, RecordBatch, TimestampMicrosecondArray, UInt32Array};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelectionPolicy,
};
use parquet::file::metadata::{ColumnChunkMask, PageIndexPolicy, ParquetMetaDataReader};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::Statistics;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows per decoded batch: one page.
const BATCH_ROWS: usize = 8192;

/// The parsed footer and offset index of one file, and per row group and page the point_id and ts
/// bounds used for pruning.
pub(crate) struct FileIndex {
    reader: ArrowReaderMetadata,
    groups: Vec<GroupIndex>,
}

impl std::fmt::Debug for FileIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileIndex").field("row_groups", &self.groups.len()).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct GroupIndex {
    rows: usize,
    /// Min/max of point_id and ts over the row group; `None` when the statistics are missing.
    point: Option<(u32, u32)>,
    ts: Option<(i64, i64)>,
    /// Per page of point_id / ts: its first row in the group and its min/max (if known); `None`
    /// without a page index.
    point_pages: Option<Vec<PageStat<u32>>>,
    ts_pages: Option<Vec<PageStat<i64>>>,
}

#[derive(Debug, Clone, Copy)]
struct PageStat<T> {
    first_row: usize,
    bounds: Option<(T, T)>,
}

impl FileIndex {
    /// Parses the footer and page index of the file at `path`. Columns 0 and 1 must be point_id
    /// (UInt32, stored as INT32) and ts (INT64), as in the sample and rollup tables. A file without
    /// statistics or page index is still read, only less selectively.
    pub(crate) fn load(path: &Path) -> Result<FileIndex> {
        let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        // Kept: the footer and the offset index of every column (page locations, to skip pages).
        let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
        let reader = ArrowReaderMetadata::load(&file, options)?;
        let descr = reader.metadata().file_metadata().schema_descr();
        if descr.num_columns() < 2 || descr.column(0).name() != "point_id" || descr.column(1).name() != "ts" {
            return Err(Error::Internal("the first two columns are not point_id and ts".into()));
        }
        // Read once for the page bounds of point_id and ts, then dropped: the column index is a
        // third of the parsed metadata and the reader does not need it.
        let bounds = ParquetMetaDataReader::new()
            .with_column_index_policy(PageIndexPolicy::Optional)
            .with_column_index_mask(ColumnChunkMask::columns([0, 1]))
            .parse_and_finish(&file)?;
        let md = reader.metadata().clone();
        let offsets = md.page_index();
        let columns = bounds.page_index();
        let mut groups = Vec::with_capacity(md.num_row_groups());
        for (g, rg) in md.row_groups().iter().enumerate() {
            let point = match rg.column(0).statistics() {
                Some(Statistics::Int32(s)) => s.min_opt().zip(s.max_opt()).map(|(a, b)| (*a as u32, *b as u32)),
                _ => None,
            };
            let ts = match rg.column(1).statistics() {
                Some(Statistics::Int64(s)) => s.min_opt().zip(s.max_opt()).map(|(a, b)| (*a, *b)),
                _ => None,
            };
            let pages = |col: usize| -> Option<(Vec<usize>, Option<&ColumnIndexMetaData>)> {
                let first: Vec<usize> = offsets?
                    .offset_index(g, col)?
                    .page_locations()
                    .iter()
                    .map(|l| l.first_row_index as usize)
                    .collect();
                let ci = columns.and_then(|c| c.column_index(g, col)).filter(|c| c.num_pages() as usize == first.len());
                Some((first, ci))
            };
            let point_pages = pages(0).map(|(first, ci)| {
                let ix = match ci {
                    Some(ColumnIndexMetaData::INT32(ix)) => Some(ix),
                    _ => None,
                };
                first
                    .iter()
                    .enumerate()
                    .map(|(i, &first_row)| PageStat {
                        first_row,
                        bounds: ix
                            .and_then(|ix| ix.min_value(i).zip(ix.max_value(i)))
                            .map(|(a, b)| (*a as u32, *b as u32)),
                    })
                    .collect()
            });
            let ts_pages = pages(1).map(|(first, ci)| {
                let ix = match ci {
                    Some(ColumnIndexMetaData::INT64(ix)) => Some(ix),
                    _ => None,
                };
                first
                    .iter()
                    .enumerate()
                    .map(|(i, &first_row)| PageStat {
                        first_row,
                        bounds: ix.and_then(|ix| ix.min_value(i).zip(ix.max_value(i))).map(|(a, b)| (*a, *b)),
                    })
                    .collect()
            });
            groups.push(GroupIndex { rows: rg.num_rows() as usize, point, ts, point_pages, ts_pages });
        }
        Ok(FileIndex { reader, groups })
    }

    /// Bytes held by this index (the parsed metadata, estimated by the parquet crate, plus the
    /// pruning bounds).
    pub(crate) fn memory_size(&self) -> usize {
        let pages: usize = self
            .groups
            .iter()
            .map(|g| {
                g.point_pages.as_ref().map_or(0, |p| p.len() * size_of::<PageStat<u32>>())
                    + g.ts_pages.as_ref().map_or(0, |p| p.len() * size_of::<PageStat<i64>>())
            })
            .sum();
        self.reader.metadata().memory_size() + self.groups.len() * size_of::<GroupIndex>() + pages
    }

    /// The row groups to read and, over their concatenated rows, the row ranges that may hold
    /// rows of `filter`; `None` if none can.
    fn plan(&self, filter: &RowFilter<'_>) -> Option<(Vec<usize>, RowSelection)> {
        let mut groups = Vec::new();
        let mut ranges: Vec<Range<usize>> = Vec::new();
        let mut base = 0;
        for (i, g) in self.groups.iter().enumerate() {
            let Some(local) = g.ranges(filter) else { continue };
            groups.push(i);
            ranges.extend(local.into_iter().map(|r| r.start + base..r.end + base));
            base += g.rows;
        }
        if groups.is_empty() {
            return None;
        }
        Some((groups, RowSelection::from_consecutive_ranges(ranges.into_iter(), base)))
    }
}

/// Whether any of `points` (sorted; `None` is every point) lies in `[lo, hi]`.
fn any_point_in(points: Option<&[u32]>, lo: u32, hi: u32) -> bool {
    points.is_none_or(|p| {
        let i = p.partition_point(|&x| x < lo);
        i < p.len() && p[i] <= hi
    })
}

impl GroupIndex {
    /// Row ranges of this group (sorted, disjoint, relative to its first row) that may hold rows of
    /// `filter`, or `None` if it cannot hold any.
    fn ranges(&self, f: &RowFilter<'_>) -> Option<Vec<Range<usize>>> {
        if self.rows == 0
            || self.point.is_some_and(|(lo, hi)| !any_point_in(f.points, lo, hi))
            || self.ts.is_some_and(|(lo, hi)| hi < f.from || lo >= f.to)
        {
            return None;
        }
        let by_point = page_ranges(self.point_pages.as_deref(), self.rows, |(lo, hi)| any_point_in(f.points, lo, hi));
        let by_ts = page_ranges(self.ts_pages.as_deref(), self.rows, |(lo, hi)| hi >= f.from && lo < f.to);
        let out = intersect(&by_point, &by_ts);
        (!out.is_empty()).then_some(out)
    }
}

/// The row ranges of the pages that `keep` (given a page's min/max) may hold rows of; pages
/// without bounds are kept. Adjacent ranges are joined.
fn page_ranges<T: Copy>(
    pages: Option<&[PageStat<T>]>,
    rows: usize,
    keep: impl Fn((T, T)) -> bool,
) -> Vec<Range<usize>> {
    let Some(pages) = pages else { return std::iter::once(0..rows).collect() };
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        if !p.bounds.is_none_or(&keep) {
            continue;
        }
        let end = pages.get(i + 1).map_or(rows, |n| n.first_row).min(rows);
        let start = p.first_row.min(end);
        match out.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ if start < end => out.push(start..end),
            _ => {}
        }
    }
    out
}

/// The intersection of two sorted lists of disjoint ranges.
fn intersect(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let (mut i, mut j) = (0, 0);
    let mut out: Vec<Range<usize>> = Vec::new();
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            match out.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => out.push(start..end),
            }
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Wraps a failure to read `file` so the query can check the file and quarantine it.
pub(crate) fn file_error(file: &LiveFile, e: impl std::fmt::Display) -> Error {
    Error::DataFile { path: file.path.clone(), message: e.to_string() }
}

/// Reads the rows of `filter` from `file` (exactly those, in file order), all columns.
pub(crate) fn read_rows(file: &LiveFile, filter: &RowFilter<'_>, cancel: &AtomicBool) -> Result<Vec<RecordBatch>> {
    let index = file.index().map_err(|e| file_error(file, e))?;
    let Some((groups, selection)) = index.plan(filter) else { return Ok(Vec::new()) };
    let f = std::fs::File::open(&file.path).map_err(|e| file_error(file, e))?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(f, index.reader.clone())
        .with_row_groups(groups)
        .with_row_selection(selection)
        .with_row_selection_policy(RowSelectionPolicy::Selectors)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| file_error(file, e))?;
    let mut out = Vec::new();
    for batch in reader {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Timeout(0));
        }
        let batch = batch.map_err(|e| file_error(file, e))?;
        if let Some(b) = filter_batch(&batch, filter).map_err(|e| file_error(file, e))? {
            out.push(b);
        }
    }
    Ok(out)
}

/// The rows of `batch` (point_id and ts first) that `filter` matches; `None` if none does.
fn filter_batch(batch: &RecordBatch, filter: &RowFilter<'_>) -> Result<Option<RecordBatch>> {
    let point = downcast::<UInt32Array>(batch, 0, "point_id")?.values();
    let ts = downcast::<TimestampMicrosecondArray>(batch, 1, "ts")?.values();
    let mask = BooleanArray::from(point.iter().zip(ts.iter()).map(|(&p, &t)| filter.matches(p, t)).collect::<Vec<_>>());
    let n = mask.true_count();
    Ok(match n {
        0 => None,
        n if n == batch.num_rows() => Some(batch.clone()),
        _ => Some(arrow::compute::filter_record_batch(batch, &mask)?),
    })
}

pub(crate) fn downcast<'a, T: 'static>(batch: &'a RecordBatch, i: usize, name: &str) -> Result<&'a T> {
    batch
        .columns()
        .get(i)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| Error::Internal(format!("unexpected type of column {i} ({name})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges_and_intersection() {
        let pages = [
            PageStat { first_row: 0, bounds: Some((0u32, 5)) },
            PageStat { first_row: 10, bounds: Some((5, 9)) },
            PageStat { first_row: 20, bounds: None },
            PageStat { first_row: 30, bounds: Some((12, 20)) },
        ];
        let one = |r: Range<usize>| vec![r];
        let r = page_ranges(Some(&pages), 40, |(lo, hi)| lo <= 5 && 5 <= hi);
        assert_eq!(r, one(0..30));
        let r = page_ranges(Some(&pages), 40, |(lo, hi)| lo <= 15 && 15 <= hi);
        assert_eq!(r, one(20..40));
        assert_eq!(page_ranges::<u32>(None, 7, |_| false), one(0..7));
        assert_eq!(intersect(&[0..10, 20..30], &one(5..25)), vec![5..10, 20..25]);
        assert_eq!(intersect(&[0..10, 10..30], &one(0..40)), one(0..30));
        assert!(intersect(&one(0..10), &one(10..20)).is_empty());
    }

    #[test]
    fn point_bounds() {
        assert!(any_point_in(Some(&[3, 9]), 4, 9));
        assert!(!any_point_in(Some(&[3, 9]), 4, 8));
        assert!(any_point_in(None, 4, 8));
        assert!(any_point_in(Some(&[u32::MAX]), 0, u32::MAX));
    }
}
